// Browser test of the check page: a real `hibp-mirror serve` (bundled sample, both kinds) on
// 127.0.0.1, driven by Debian's chromium (headless, through playwright-core, which downloads no
// browser). Run it with tools/browser-test.sh.
//
//   node test.mjs --bin target/debug/hibp-mirror [--out DIR] [--screenshot docs/check-page.png]
//
// It checks, each as a named step (a failed step does not stop the others):
// - the page's JS (in node) against the shared context cases and the known hash vectors;
// - page load: only /, /app.js, /style.css, /config.json are asked for, no console or CSP error;
// - `password` -> breached, sample count, tier critical, guidance; a random 20-character
//   password -> not found; a password holding the user name -> context warning; NTLM;
// - each check: exactly one request, to /range/<5 hex> (the password hash's prefix) with
//   Add-Padding, seen by the browser's network events, the server's access log and /metrics;
// - nothing in the URL, history, storage or cookies; keyboard-only use; show/hide; phone width;
// - behind a reverse proxy that serves the page under /hibp/, the same check works;
// - the plain-http path: the page opened as http://hibp-mirror.test (resolved to 127.0.0.1 by
//   chromium, so not a secure context and without crypto.subtle) hashes with its own SHA-1, gives
//   the same hashes as Web Crypto on every vector, and finds `password` the same way.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const args = parseArgs(process.argv.slice(2));
const bin = resolve(args.bin ?? join(repo, 'target/debug/hibp-mirror'));
const out = resolve(args.out ?? join(repo, 'target/browser-test'));
const chromiumPath = args.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(out, { recursive: true });

const require = createRequire(import.meta.url);
const pageJs = require(join(repo, 'src/server/page/app.js'));
const contextCases = JSON.parse(readFileSync(join(repo, 'tests/data/context_cases.json'), 'utf8')).cases;
const vectors = JSON.parse(readFileSync(join(repo, 'tests/data/hash_vectors.json'), 'utf8')).vectors;

/** The count of `password` in the bundled sample (data/sample-sha1.txt). */
const SAMPLE_PASSWORD_COUNT = sampleCount('password');
const INSECURE_HOST = 'hibp-mirror.test';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(bin|out|screenshot|chromium)$/.exec(argv[i]);
    if (m) out[m[1]] = argv[++i];
    else if (argv[i] !== '--quick') throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

function sha1Upper(text) {
  return createHash('sha1').update(text, 'utf8').digest('hex').toUpperCase();
}

function sampleCount(password) {
  const hash = sha1Upper(password);
  const line = readFileSync(join(repo, 'data/sample-sha1.txt'), 'utf8')
    .split('\n')
    .find((l) => l.toUpperCase().startsWith(hash + ':'));
  if (!line) throw new Error(`${password} is not in the sample`);
  return Number(line.split(':')[1]);
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function assertEq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- The server ---------------------------------------------------------------------------

/** `hibp-mirror serve` on 127.0.0.1:0 with the bundled sample, JSON logs parsed as they come. */
async function startServer() {
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--log-format', 'json', '--watch-interval', '0'], {
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const server = { child, log: [], address: null, exited: null };
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        entry = { raw: line };
      }
      server.log.push(entry);
      if (entry.fields?.message === 'listening') server.address = entry.fields.address;
    }
  });
  child.on('exit', (code) => (server.exited = code));
  for (let i = 0; i < 600 && !server.address; i++) {
    if (server.exited !== null) throw new Error(`serve exited with ${server.exited}: ${JSON.stringify(server.log)}`);
    await sleep(50);
  }
  assert(server.address, 'serve did not report its address in 30 s');
  return server;
}

/** Access-log entries (route, path, status) from position `from` on. */
function accessSince(server, from) {
  return server.log
    .slice(from)
    .filter((e) => e.target === 'hibp_mirror::access')
    .map((e) => ({ route: e.fields.route, path: e.fields.path, status: e.fields.status }));
}

/** `/metrics` request counts by route (summed over statuses), fetched by node, not the browser. */
async function requestCounts(server) {
  const text = await (await fetch(`http://${server.address}/metrics`)).text();
  const counts = {};
  for (const m of text.matchAll(/^hibp_mirror_requests_total\{route="([a-z]+)",status="[^"]+"\} (\d+)$/gm)) {
    counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
  }
  return counts;
}

function diffCounts(before, after) {
  const out = {};
  for (const route of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[route] ?? 0) - (before[route] ?? 0);
    if (d && route !== 'metrics') out[route] = d;
  }
  return out;
}

// ---- The browser --------------------------------------------------------------------------

/** A page whose every request, console error and page error is recorded. */
async function openPage(browser, base, viewport = { width: 900, height: 1100 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const rec = { requests: [], errors: [], responses: [] };
  context.on('request', (r) => rec.requests.push(r));
  context.on('response', (r) => rec.responses.push(r));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') rec.errors.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => rec.errors.push(`page error: ${e.message}`));
  await page.goto(`${base}/`);
  await page.waitForSelector('#submit:not([disabled])', { timeout: 10_000 });
  return { context, page, rec, base };
}

/**
 * Runs one check through the page (`fillAndSubmit` does the typing) and returns what the browser
 * and the server saw meanwhile.
 */
async function runCheck(server, p, fillAndSubmit) {
  const countsBefore = await requestCounts(server);
  const logFrom = server.log.length;
  const reqFrom = p.rec.requests.length;
  const historyBefore = await p.page.evaluate(() => history.length);
  await fillAndSubmit();
  await p.page.waitForSelector('#verdict, #error', { timeout: 10_000 });
  await sleep(300); // let any stray request show up
  const requests = p.rec.requests.slice(reqFrom);
  const countsAfter = await requestCounts(server);
  const text = async (sel) => ((await p.page.locator(sel).count()) ? (await p.page.textContent(sel)).trim() : null);
  return {
    requests,
    access: accessSince(server, logFrom).filter((a) => a.route !== 'metrics'),
    counts: diffCounts(countsBefore, countsAfter),
    verdict: await text('#verdict'),
    error: await text('#error'),
    count: await text('#count'),
    tier: await text('#tier'),
    guidance: await text('#guidance'),
    warning: await text('#context-warning'),
    hashedBy: await p.page.getAttribute('#sent', 'data-hashed-by').catch(() => null),
    historyDelta: (await p.page.evaluate(() => history.length)) - historyBefore,
  };
}

/** Exactly one request for the check, to /range/<prefix> (+query) with Add-Padding, everywhere. */
async function assertOneRangeRequest(r, base, prefix, query = '') {
  assertEq(r.requests.map((q) => q.url()), [`${base}/range/${prefix}${query}`], 'browser requests during the check');
  const req = r.requests[0];
  assertEq(req.method(), 'GET', 'method');
  assertEq(req.postData(), null, 'request body');
  const headers = await req.allHeaders();
  assertEq(headers['add-padding'], 'true', 'Add-Padding header');
  // The server padded the answer, so it saw the header: padding rows have count 0.
  const body = await (await req.response()).text();
  assert(/:0(\r?\n|$)/.test(body), 'the answer has no padding rows');
  assertEq(r.access.map((a) => [a.route, a.status]), [['range', 200]], 'access log during the check');
  assertEq(r.counts, { range: 1 }, '/metrics request counts during the check (metrics excluded)');
  assertEq(r.historyDelta, 0, 'history entries added');
}

async function assertNothingKept(p, secret) {
  const state = await p.page.evaluate(() => ({
    url: location.href,
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
  }));
  assertEq(state.url, `${p.base}/`, 'page URL');
  assertEq([state.local, state.session, state.cookie], [0, 0, ''], 'storage and cookies');
  assert(!state.url.includes(encodeURIComponent(secret)), 'the password is in the URL');
  assertEq((await p.context.cookies()).length, 0, 'cookies');
}

async function hashesInPage(p) {
  return p.page.evaluate(async (vs) => {
    const out = [];
    for (const v of vs) {
      const viaDefault = await window.HibpPage.sha1Hex(v.password);
      out.push({
        sha1: viaDefault.hex,
        by: viaDefault.by,
        sha1Js: window.HibpPage.sha1HexJs(v.password),
        ntlm: window.HibpPage.ntlmHex(v.password),
      });
    }
    return out;
  }, vectors);
}

// ---- The steps ----------------------------------------------------------------------------

const steps = [];
const step = (name, fn) => steps.push({ name, fn });

step('node: page JS context rules agree with the shared case table', async () => {
  for (const c of contextCases) {
    if (c.tokens) assertEq(pageJs.contextTokens(c.context), c.tokens, `${c.name}: tokens`);
    assertEq(pageJs.contextWarnings(c.password, c.context), c.expect, c.name);
  }
});

step('node: page JS SHA-1 and NTLM agree with the known vectors and node crypto', async () => {
  for (const v of vectors) {
    assertEq(pageJs.sha1HexJs(v.password), v.sha1, `SHA-1 of ${JSON.stringify(v.password)}`);
    assertEq(pageJs.ntlmHex(v.password), v.ntlm, `NTLM of ${JSON.stringify(v.password)}`);
  }
  for (let n = 0; n < 200; n++) {
    const text = randomBytes(n).toString('latin1') + '\u00e9\u2603\u{1F600}';
    assertEq(pageJs.sha1HexJs(text), sha1Upper(text), `SHA-1 of ${n + 3} random characters`);
  }
});

let server;
let browser;
let secure; // the page on http://127.0.0.1:PORT (a secure context)
let insecure; // the page on http://hibp-mirror.test:PORT (plain http, no crypto.subtle)

step('start serve and chromium; the page loads only its own four files, without errors', async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`,
    ],
  });
  const logFrom = server.log.length;
  const base = `http://${server.address}`;
  secure = await openPage(browser, base);
  await sleep(300);
  const paths = secure.rec.requests.map((r) => new URL(r.url()).pathname).sort();
  assertEq(paths, ['/', '/app.js', '/config.json', '/style.css'], 'requests while loading');
  assert(secure.rec.requests.every((r) => r.url().startsWith(base + '/')), 'a request left the origin');
  assertEq(accessSince(server, logFrom).map((a) => a.route), ['page', 'page', 'page', 'page'], 'access log routes');
  assertEq(secure.rec.errors, [], 'console and page errors');
  assertEq(await secure.page.evaluate(() => window.isSecureContext), true, 'secure context');
  assertEq(await secure.page.evaluate(() => window.HibpPage.webCryptoAvailable()), true, 'Web Crypto');
  const notice = await secure.page.textContent('#notice');
  assert(/sample/.test(notice), 'no notice that the server serves the sample');
});

step('"password" typed with the keyboard only -> breached, sample count, critical, guidance', async () => {
  const p = secure;
  const r = await runCheck(server, p, async () => {
    // Tab from the top of the page to the password field, type, press Enter.
    await p.page.evaluate(() => document.activeElement && document.activeElement.blur());
    for (let i = 0; i < 10; i++) {
      await p.page.keyboard.press('Tab');
      if (await p.page.evaluate(() => document.activeElement.id === 'password')) break;
    }
    assertEq(await p.page.evaluate(() => document.activeElement.id), 'password', 'focus after Tab');
    await p.page.keyboard.type('password');
    await p.page.keyboard.press('Enter');
  });
  assertEq(r.error, null, 'error shown');
  assertEq(r.verdict, 'Found in breaches', 'verdict');
  assertEq(r.count, SAMPLE_PASSWORD_COUNT.toLocaleString('en-US'), 'count shown');
  assertEq(r.count, '9,545,824', 'count shown');
  assertEq(r.tier, 'critical', 'tier');
  assert(r.guidance.includes('Never use this password') && r.guidance.includes('NIST SP 800-63B'), `guidance: ${r.guidance}`);
  assertEq(r.hashedBy, 'web-crypto', 'hashed by');
  assertEq(r.warning, null, 'context warning');
  await assertOneRangeRequest(r, p.base, sha1Upper('password').slice(0, 5));
  await assertNothingKept(p, 'password');
  assertEq(await p.page.getAttribute('#result', 'aria-live'), 'polite', 'live region');
  if (args.screenshot) {
    await p.page.screenshot({ path: resolve(args.screenshot), fullPage: true });
  }
  await p.page.screenshot({ path: join(out, 'password-critical.png'), fullPage: true });
});

step('show/hide toggle switches the field type and aria-pressed', async () => {
  const page = secure.page;
  assertEq(await page.getAttribute('#password', 'type'), 'password', 'initial type');
  await page.focus('#toggle');
  await page.keyboard.press('Enter');
  assertEq([await page.getAttribute('#password', 'type'), await page.getAttribute('#toggle', 'aria-pressed')], ['text', 'true'], 'shown');
  await page.keyboard.press('Space');
  assertEq([await page.getAttribute('#password', 'type'), await page.getAttribute('#toggle', 'aria-pressed')], ['password', 'false'], 'hidden');
  assertEq(await page.getAttribute('#password', 'autocomplete'), 'off', 'autocomplete');
});

step('a random 20-character password -> not found', async () => {
  const p = secure;
  const password = randomBytes(15).toString('base64');
  assertEq(password.length, 20, 'length');
  const r = await runCheck(server, p, async () => {
    await p.page.fill('#password', password);
    await p.page.click('#submit');
  });
  assertEq([r.verdict, r.tier, r.count], ['Not found in breaches', 'none', null], 'result');
  assert(r.guidance.includes('not found'), `guidance: ${r.guidance}`);
  await assertOneRangeRequest(r, p.base, sha1Upper(password).slice(0, 5));
  await assertNothingKept(p, password);
});

step('a password holding the user name -> context warning (nothing of it sent)', async () => {
  const p = secure;
  const password = 'Alice-' + randomBytes(6).toString('hex');
  const r = await runCheck(server, p, async () => {
    await p.page.fill('#ctx-user', 'alice');
    await p.page.fill('#ctx-email', 'alice@example.com');
    await p.page.fill('#ctx-org', 'Acme');
    await p.page.fill('#password', password);
    await p.page.click('#submit');
  });
  assertEq(r.verdict, 'Not found in breaches', 'verdict');
  assert(r.warning && r.warning.includes('“alice” from the user name, in another case'), `warning: ${r.warning}`);
  await assertOneRangeRequest(r, p.base, sha1Upper(password).slice(0, 5));
  const url = r.requests[0].url();
  assert(!url.includes('alice') && !url.includes('Acme'), 'context sent');
  await p.page.screenshot({ path: join(out, 'context-warning.png'), fullPage: true });
});

step('NTLM chosen -> /range/<NTLM prefix>?mode=ntlm, same count', async () => {
  const p = secure;
  for (const id of ['#ctx-user', '#ctx-email', '#ctx-org']) await p.page.fill(id, '');
  const r = await runCheck(server, p, async () => {
    await p.page.check('#kind-ntlm');
    await p.page.fill('#password', 'password');
    await p.page.click('#submit');
  });
  assertEq([r.verdict, r.count, r.tier], ['Found in breaches', '9,545,824', 'critical'], 'result');
  const ntlm = vectors.find((v) => v.password === 'password').ntlm;
  await assertOneRangeRequest(r, p.base, ntlm.slice(0, 5), '?mode=ntlm');
  await p.page.check('#kind-sha1');
});

step('Web Crypto and the page’s own SHA-1/MD4 give the known hashes in the browser', async () => {
  const got = await hashesInPage(secure);
  got.forEach((g, i) => {
    const v = vectors[i];
    assertEq([g.sha1, g.by, g.sha1Js, g.ntlm], [v.sha1, 'web-crypto', v.sha1, v.ntlm], JSON.stringify(v.password));
  });
  for (const c of contextCases) {
    const w = await secure.page.evaluate(([pw, ctx]) => window.HibpPage.contextWarnings(pw, ctx), [c.password, c.context]);
    assertEq(w, c.expect, `in the browser: ${c.name}`);
  }
});

step('plain http on another host name: no crypto.subtle, the page’s SHA-1 gives the same hashes', async () => {
  const port = server.address.split(':').pop();
  insecure = await openPage(browser, `http://${INSECURE_HOST}:${port}`);
  assertEq(await insecure.page.evaluate(() => [window.isSecureContext, !!(window.crypto && window.crypto.subtle)]), [false, false], '[isSecureContext, crypto.subtle]');
  assertEq(await insecure.page.evaluate(() => window.HibpPage.webCryptoAvailable()), false, 'Web Crypto');
  const got = await hashesInPage(insecure);
  const secureGot = await hashesInPage(secure);
  got.forEach((g, i) => {
    const v = vectors[i];
    assertEq([g.sha1, g.by, g.ntlm], [v.sha1, 'page', v.ntlm], JSON.stringify(v.password));
    assertEq([g.sha1, g.ntlm], [secureGot[i].sha1, secureGot[i].ntlm], 'same as the secure path');
  });
  const p = insecure;
  const r = await runCheck(server, p, async () => {
    await p.page.fill('#password', 'password');
    await p.page.press('#password', 'Enter');
  });
  assertEq([r.verdict, r.count, r.tier, r.hashedBy], ['Found in breaches', '9,545,824', 'critical', 'page'], 'result');
  await assertOneRangeRequest(r, p.base, sha1Upper('password').slice(0, 5));
  await assertNothingKept(p, 'password');
  assertEq(p.rec.errors, [], 'console and page errors');
});

step('behind a reverse proxy under /hibp/: the same check works (relative URLs)', async () => {
  const [host, port] = server.address.split(':');
  const proxy = createServer((req, res) => {
    if (!req.url.startsWith('/hibp/')) {
      res.writeHead(404).end();
      return;
    }
    const upstream = httpRequest({ host, port, path: req.url.slice('/hibp'.length), method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise((ready) => proxy.listen(0, '127.0.0.1', ready));
  try {
    const p = await openPage(browser, `http://127.0.0.1:${proxy.address().port}/hibp`);
    const paths = p.rec.requests.map((r) => new URL(r.url()).pathname).sort();
    assertEq(paths, ['/hibp/', '/hibp/app.js', '/hibp/config.json', '/hibp/style.css'], 'requests while loading');
    const r = await runCheck(server, p, async () => {
      await p.page.fill('#password', 'password');
      await p.page.press('#password', 'Enter');
    });
    assertEq([r.verdict, r.count, r.tier], ['Found in breaches', '9,545,824', 'critical'], 'result');
    await assertOneRangeRequest(r, p.base, sha1Upper('password').slice(0, 5));
    assertEq(p.rec.errors, [], 'console and page errors');
    await p.context.close();
  } finally {
    proxy.close();
  }
});

step('phone width (360 px): nothing wider than the screen', async () => {
  const p = await openPage(browser, secure.base, { width: 360, height: 780 });
  await p.page.fill('#ctx-user', 'alice');
  await p.page.fill('#password', 'alice1234567890');
  await p.page.click('#submit');
  await p.page.waitForSelector('#verdict', { timeout: 10_000 });
  const widths = await p.page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert(widths[0] <= widths[1], `page is ${widths[0]} px wide on a ${widths[1]} px screen`);
  await p.page.screenshot({ path: join(out, 'phone.png'), fullPage: true });
  await p.context.close();
});

step('no console or CSP error in the secure page', async () => {
  assertEq(secure.rec.errors, [], 'console and page errors');
});

// ---- Run ----------------------------------------------------------------------------------

let passed = 0;
let failed = 0;
for (const { name, fn } of steps) {
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  }
}
if (browser) await browser.close();
if (server) {
  server.child.kill('SIGTERM');
  for (let i = 0; i < 100 && server.exited === null; i++) await sleep(50);
}
console.log(`screenshots in ${out}${args.screenshot ? ` and ${args.screenshot}` : ''}`);
console.log(`browser-test: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
