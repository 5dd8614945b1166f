// The check page's script (served by hibp-mirror at /app.js).
//
// The password is hashed here (SHA-1 with Web Crypto when the browser offers it, else with the
// SHA-1 below; NTLM = MD4 of the UTF-16LE password, always below), and the only request made for a
// check is GET /range/<first 5 hex> with Add-Padding: true. The answer is matched here.
//
// The context rules follow docs/CONTEXT.md, as src/context.rs does; tests/data/context_cases.json
// holds the cases both must agree on. The pure functions are also exported for node (the test
// runs them there) and, read-only, as window.HibpPage (the browser test compares hashes there).
(function (root) {
  'use strict';

  // ---- Hashing ------------------------------------------------------------------------------

  function utf8(text) {
    return new TextEncoder().encode(text);
  }

  // UTF-16 code units, little-endian: what NTLM hashes.
  function utf16le(text) {
    var out = new Uint8Array(text.length * 2);
    for (var i = 0; i < text.length; i++) {
      var unit = text.charCodeAt(i);
      out[2 * i] = unit & 0xff;
      out[2 * i + 1] = unit >>> 8;
    }
    return out;
  }

  function hexUpper(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    }
    return out.toUpperCase();
  }

  // Message padding shared by SHA-1 (big-endian length) and MD4 (little-endian length).
  function padded(bytes, bigEndian) {
    var len = bytes.length;
    var total = (((len + 8) >>> 6) + 1) << 6;
    var out = new Uint8Array(total);
    out.set(bytes);
    out[len] = 0x80;
    var bitsLow = (len << 3) >>> 0;
    var bitsHigh = Math.floor(len / 0x20000000) >>> 0;
    for (var i = 0; i < 4; i++) {
      if (bigEndian) {
        out[total - 1 - i] = (bitsLow >>> (8 * i)) & 0xff;
        out[total - 5 - i] = (bitsHigh >>> (8 * i)) & 0xff;
      } else {
        out[total - 8 + i] = (bitsLow >>> (8 * i)) & 0xff;
        out[total - 4 + i] = (bitsHigh >>> (8 * i)) & 0xff;
      }
    }
    return out;
  }

  function rotl(x, n) {
    return (x << n) | (x >>> (32 - n));
  }

  // SHA-1 (FIPS 180-4), for pages served over plain http, where crypto.subtle does not exist.
  function sha1(bytes) {
    var m = padded(bytes, true);
    var h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
    var w = new Int32Array(80);
    for (var off = 0; off < m.length; off += 64) {
      for (var t = 0; t < 16; t++) {
        var j = off + 4 * t;
        w[t] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
      }
      for (t = 16; t < 80; t++) {
        w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
      }
      var a = h0, b = h1, c = h2, d = h3, e = h4;
      for (t = 0; t < 80; t++) {
        var f, k;
        if (t < 20) {
          f = (b & c) | (~b & d);
          k = 0x5a827999;
        } else if (t < 40) {
          f = b ^ c ^ d;
          k = 0x6ed9eba1;
        } else if (t < 60) {
          f = (b & c) | (b & d) | (c & d);
          k = 0x8f1bbcdc;
        } else {
          f = b ^ c ^ d;
          k = 0xca62c1d6;
        }
        var tmp = (rotl(a, 5) + f + e + k + w[t]) | 0;
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = tmp;
      }
      h0 = (h0 + a) | 0;
      h1 = (h1 + b) | 0;
      h2 = (h2 + c) | 0;
      h3 = (h3 + d) | 0;
      h4 = (h4 + e) | 0;
    }
    var out = new Uint8Array(20);
    [h0, h1, h2, h3, h4].forEach(function (h, i) {
      out[4 * i] = h >>> 24;
      out[4 * i + 1] = (h >>> 16) & 0xff;
      out[4 * i + 2] = (h >>> 8) & 0xff;
      out[4 * i + 3] = h & 0xff;
    });
    return out;
  }

  // MD4 (RFC 1320): Web Crypto has none, and NTLM needs it.
  function md4(bytes) {
    var m = padded(bytes, false);
    var a0 = 0x67452301, b0 = 0xefcdab89, c0 = 0x98badcfe, d0 = 0x10325476;
    var x = new Int32Array(16);
    var F = function (x, y, z) { return (x & y) | (~x & z); };
    var G = function (x, y, z) { return (x & y) | (x & z) | (y & z); };
    var H = function (x, y, z) { return x ^ y ^ z; };
    var R1 = [3, 7, 11, 19], R2 = [3, 5, 9, 13], R3 = [3, 9, 11, 15];
    var O2 = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    var O3 = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
    for (var off = 0; off < m.length; off += 64) {
      for (var i = 0; i < 16; i++) {
        var j = off + 4 * i;
        x[i] = m[j] | (m[j + 1] << 8) | (m[j + 2] << 16) | (m[j + 3] << 24);
      }
      var s = [a0, b0, c0, d0];
      // Each step updates one of a, b, c, d in turn (a, d, c, b), as the RFC lists them.
      var step = function (n, fn, word, shift, k) {
        var ia = (4 - (n % 4)) % 4;
        var va = s[ia], vb = s[(ia + 1) % 4], vc = s[(ia + 2) % 4], vd = s[(ia + 3) % 4];
        s[ia] = rotl((va + fn(vb, vc, vd) + word + k) | 0, shift);
      };
      for (i = 0; i < 16; i++) step(i, F, x[i], R1[i % 4], 0);
      for (i = 0; i < 16; i++) step(i, G, x[O2[i]], R2[i % 4], 0x5a827999);
      for (i = 0; i < 16; i++) step(i, H, x[O3[i]], R3[i % 4], 0x6ed9eba1);
      a0 = (a0 + s[0]) | 0;
      b0 = (b0 + s[1]) | 0;
      c0 = (c0 + s[2]) | 0;
      d0 = (d0 + s[3]) | 0;
    }
    var out = new Uint8Array(16);
    [a0, b0, c0, d0].forEach(function (h, i) {
      out[4 * i] = h & 0xff;
      out[4 * i + 1] = (h >>> 8) & 0xff;
      out[4 * i + 2] = (h >>> 16) & 0xff;
      out[4 * i + 3] = h >>> 24;
    });
    return out;
  }

  // Whether Web Crypto is there: only in secure contexts (https, or this computer).
  function webCryptoAvailable() {
    var c = root.crypto;
    return !!(c && c.subtle && typeof c.subtle.digest === 'function');
  }

  // SHA-1 of the UTF-8 password as upper-case hex, and which code computed it.
  function sha1Hex(password) {
    if (webCryptoAvailable()) {
      return root.crypto.subtle.digest('SHA-1', utf8(password)).then(function (digest) {
        return { hex: hexUpper(new Uint8Array(digest)), by: 'web-crypto' };
      });
    }
    return Promise.resolve({ hex: sha1HexJs(password), by: 'page' });
  }

  function sha1HexJs(password) {
    return hexUpper(sha1(utf8(password)));
  }

  function ntlmHex(password) {
    return hexUpper(md4(utf16le(password)));
  }

  function md4Hex(bytes) {
    return hexUpper(md4(bytes));
  }

  // ---- Matching a /range answer -------------------------------------------------------------

  // The count of `suffix` in a /range body (0 when absent). Padding rows have count 0 and are
  // skipped; lines may end in CRLF or LF.
  function countInRange(body, suffix) {
    var want = suffix.toUpperCase();
    var lines = body.split('\n');
    var rows = 0;
    var count = 0;
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i].trim();
      if (!line) continue;
      rows++;
      var colon = line.indexOf(':');
      if (colon < 0) continue;
      var n = parseInt(line.slice(colon + 1), 10);
      if (n > 0 && line.slice(0, colon).toUpperCase() === want) count = n;
    }
    return { count: count, rows: rows };
  }

  // ---- Severity tiers (src/severity.rs) -----------------------------------------------------

  function classify(count, t) {
    if (count >= t.critical) return 'critical';
    if (count >= t.high) return 'high';
    if (count >= t.medium) return 'medium';
    if (count >= t.low) return 'low';
    return 'none';
  }

  // ---- Context rules (docs/CONTEXT.md; the same list as src/context.rs) ---------------------

  var MIN_TOKEN_CHARS = 3;
  var NOT_ALNUM = /[^\p{Alphabetic}\p{N}]+/u;
  var ALNUM = /[\p{Alphabetic}\p{N}]/u;
  var EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
  var FOLD = {
    '4': 'a', '@': 'a', '8': 'b', '3': 'e', '6': 'g', '9': 'g',
    'l': 'i', '1': 'i', '!': 'i', '|': 'i', '0': 'o', '5': 's', '$': 's', '7': 't', '+': 't'
  };

  function chars(text) {
    return Array.from(text);
  }

  function fold(lower) {
    return chars(lower).map(function (c) { return FOLD[c] || c; }).join('');
  }

  function candidates(entry) {
    entry = entry.replace(EDGE_SPACE, '');
    var out = [entry];
    var tld = null;
    var at = entry.lastIndexOf('@');
    if (at >= 0) {
      var domain = entry.slice(at + 1);
      out.push(entry.slice(0, at), domain);
      var dot = domain.lastIndexOf('.');
      if (dot >= 0) tld = domain.slice(dot + 1);
    }
    var words = entry.split(NOT_ALNUM).filter(function (w) { return w !== ''; });
    // The e-mail's top-level domain is the last word (`com`): too common to warn about.
    if (tld !== null && words.length && words[words.length - 1] === tld) words.pop();
    out = out.concat(words);
    if (at < 0) {
      out.push(chars(entry).filter(function (c) { return ALNUM.test(c); }).join(''));
    }
    return out;
  }

  function contextTokens(entries) {
    var tokens = [];
    entries.forEach(function (text, entry) {
      candidates(text).forEach(function (candidate) {
        if (chars(candidate).length < MIN_TOKEN_CHARS) return;
        var lower = candidate.toLowerCase();
        if (tokens.some(function (t) { return t.lower === lower; })) return;
        var folded = fold(lower);
        tokens.push({
          text: candidate,
          entry: entry,
          lower: lower,
          folded: folded,
          reversed: chars(folded).reverse().join('')
        });
      });
    });
    return tokens;
  }

  // [{token, entry, kind}] for `password`; kind is exact, case, leet or reversed.
  function contextWarnings(password, entries) {
    var tokens = contextTokens(entries);
    var lower = password.toLowerCase();
    var folded = fold(lower);
    var matched = [];
    tokens.forEach(function (t) {
      var kind = null;
      if (password.includes(t.text)) kind = 'exact';
      else if (lower.includes(t.lower)) kind = 'case';
      else if (folded.includes(t.folded)) kind = 'leet';
      else if (folded.includes(t.reversed)) kind = 'reversed';
      if (kind) matched.push({ t: t, kind: kind });
    });
    return matched.filter(function (m) {
      var len = chars(m.t.folded).length;
      return !matched.some(function (longer) {
        return chars(longer.t.folded).length > len &&
          (longer.t.folded.includes(m.t.folded) || longer.t.folded.includes(m.t.reversed));
      });
    }).map(function (m) {
      return { token: m.t.text, entry: m.t.entry, kind: m.kind };
    });
  }

  var api = {
    sha1Hex: sha1Hex,
    sha1HexJs: sha1HexJs,
    ntlmHex: ntlmHex,
    md4Hex: md4Hex,
    webCryptoAvailable: webCryptoAvailable,
    countInRange: countInRange,
    classify: classify,
    contextTokens: function (entries) {
      return contextTokens(entries).map(function (t) { return t.text; });
    },
    contextWarnings: contextWarnings
  };

  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  }
  if (typeof document === 'undefined') return;
  root.HibpPage = Object.freeze(api);

  // ---- The page -----------------------------------------------------------------------------

  var TIER_TEXT = {
    critical: 'Never use this password. It is among the most common passwords there are: ' +
      'attackers try it first, and an account using it can be taken over in seconds.',
    high: 'Do not use this password. It is common, and it is in every general-purpose list ' +
      'that attackers use to guess passwords.',
    medium: 'Choose another password. It has been seen often enough to be in the lists ' +
      'attackers use for targeted guessing.',
    low: 'Choose another password. It has appeared in a data breach; once a password is ' +
      'public, attackers can try it against any account.',
    none: 'This password was not found in the corpus. That does not make it strong: a ' +
      'password nobody has leaked yet can still be easy to guess.'
  };
  var ADVICE = 'Prefer a long passphrase of several unrelated words, or let a password manager ' +
    'make and remember a unique random password for each account. NIST SP 800-63B, the US ' +
    'guideline on passwords, asks services to refuse passwords found in breach corpora, and ' +
    'favours length over rules such as "one digit and one symbol".';
  var CONTEXT_TEXT = 'Passwords built from a user name, e-mail address or organisation are ' +
    'among the first an attacker tries against that account, whatever is added to them ' +
    '(digits, a year, 4 for a). NIST SP 800-63B asks services to refuse them too.';
  var KIND_TEXT = {
    exact: 'as written', case: 'in another case', leet: 'with look-alike characters',
    reversed: 'reversed'
  };
  var ENTRY_NAMES = ['user name', 'e-mail address', 'organisation or service'];

  var config = null;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function formatCount(n) {
    return n.toLocaleString('en-US');
  }

  function tierRange(tier, t) {
    var next = { low: t.medium, medium: t.high, high: t.critical };
    if (tier === 'critical') return formatCount(t.critical) + ' times or more';
    return formatCount(t[tier]) + ' to ' + formatCount(next[tier] - 1) + ' times';
  }

  function showResult(nodes) {
    var region = $('result');
    region.replaceChildren.apply(region, nodes);
  }

  function showError(message) {
    var p = el('p', 'error', message);
    p.id = 'error';
    showResult([p]);
  }

  function selectedKind() {
    return $('kind-ntlm').checked ? 'ntlm' : 'sha1';
  }

  function contextEntries() {
    return [$('ctx-user').value, $('ctx-email').value, $('ctx-org').value];
  }

  function check(event) {
    event.preventDefault();
    if (!config) return;
    var password = $('password').value;
    if (password === '') {
      showError('Type a password first.');
      $('password').focus();
      return;
    }
    var kind = selectedKind();
    var warnings = contextWarnings(password, contextEntries());
    var hashing = kind === 'ntlm'
      ? Promise.resolve({ hex: ntlmHex(password), by: 'page' })
      : sha1Hex(password);
    password = null;
    $('submit').disabled = true;
    showResult([el('p', 'pending', 'Checking…')]);
    hashing.then(function (hash) {
      var prefix = hash.hex.slice(0, 5);
      // Relative, so the page also works behind a reverse proxy that serves it under a sub-path.
      var url = 'range/' + prefix + (kind === 'ntlm' ? '?mode=ntlm' : '');
      return fetch(url, {
        method: 'GET',
        headers: { 'Add-Padding': 'true' },
        // Not kept in the browser's cache: it would record which prefixes were checked here.
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
        referrerPolicy: 'no-referrer'
      }).then(function (response) {
        return response.text().then(function (body) {
          if (!response.ok) {
            throw new Error('The server answered ' + response.status + ': ' +
              body.split('\n')[0].slice(0, 200));
          }
          var found = countInRange(body, hash.hex.slice(5));
          render(kind, prefix, hash.by, found, warnings);
        });
      });
    }).catch(function (err) {
      showError('The check failed: ' + err.message + '. Nothing else was sent.');
    }).then(function () {
      $('submit').disabled = false;
    });
  }

  function render(kind, prefix, by, found, warnings) {
    var tier = classify(found.count, config.thresholds);
    var nodes = [];
    var mood = found.count > 0 ? 'bad' : warnings.length ? 'warn' : 'good';
    var head = el('h2', 'verdict ' + mood,
      found.count > 0 ? 'Found in breaches' : 'Not found in breaches');
    head.id = 'verdict';
    nodes.push(head);
    var facts = el('p', 'facts');
    facts.id = 'facts';
    if (found.count > 0) {
      facts.append('Seen ');
      var count = el('strong', null, formatCount(found.count));
      count.id = 'count';
      facts.append(count, ' times. Severity: ');
      var tierNode = el('strong', 'tier tier-' + tier, tier);
      tierNode.id = 'tier';
      facts.append(tierNode, ' (' + tierRange(tier, config.thresholds) + ').');
    } else {
      facts.append('Seen 0 times. Severity: ');
      var none = el('strong', 'tier tier-none', 'none');
      none.id = 'tier';
      facts.append(none, '.');
    }
    nodes.push(facts);
    var guidance = el('div', 'guidance');
    guidance.id = 'guidance';
    guidance.append(el('p', null, TIER_TEXT[tier]));
    guidance.append(el('p', null, ADVICE));
    nodes.push(guidance);
    if (warnings.length) {
      var box = el('div', 'context-warning');
      box.id = 'context-warning';
      box.append(el('h3', null, 'It contains details of the account'));
      var list = el('ul');
      warnings.forEach(function (w) {
        list.append(el('li', null, '“' + w.token + '” from the ' + ENTRY_NAMES[w.entry] + ', ' +
          KIND_TEXT[w.kind] + '.'));
      });
      box.append(list, el('p', null, CONTEXT_TEXT));
      nodes.push(box);
    }
    var sent = el('p', 'sent');
    sent.id = 'sent';
    sent.append('Sent: ');
    sent.append(el('code', null, '/range/' + prefix + (kind === 'ntlm' ? '?mode=ntlm' : '')));
    sent.append(' with padding; ' + formatCount(found.rows) + ' rows came back and were ' +
      'matched here. ' + (kind === 'ntlm' ? 'NTLM' : 'SHA-1') + ' computed by ' +
      (by === 'web-crypto' ? 'the browser’s Web Crypto.' : 'this page’s own code.'));
    sent.dataset.hashedBy = by;
    nodes.push(sent);
    showResult(nodes);
  }

  function toggle() {
    var input = $('password');
    var show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    $('toggle').setAttribute('aria-pressed', show ? 'true' : 'false');
    $('toggle').textContent = show ? 'Hide' : 'Show';
  }

  function clearResult() {
    if ($('result').childNodes.length) showResult([]);
  }

  function loadConfig() {
    fetch('config.json', { cache: 'no-store', credentials: 'omit', redirect: 'error' })
      .then(function (response) {
        if (!response.ok) throw new Error('status ' + response.status);
        return response.json();
      })
      .then(function (c) {
        config = c;
        var sha1 = c.kinds.indexOf('sha1') >= 0;
        var ntlm = c.kinds.indexOf('ntlm') >= 0;
        if (!sha1 && !ntlm) {
          showError('This server has no index loaded; it cannot check passwords now.');
          return;
        }
        $('kind-field').hidden = !(sha1 && ntlm);
        $('kind-sha1').disabled = !sha1;
        $('kind-ntlm').disabled = !ntlm;
        $('kind-ntlm').checked = !sha1;
        $('kind-sha1').checked = sha1;
        if (c.sample) {
          var notice = $('notice');
          notice.textContent = 'This server answers from the small sample bundled with ' +
            'hibp-mirror, not from the real corpus: results are for trying the page only.';
          notice.hidden = false;
        }
        $('submit').disabled = false;
      })
      .catch(function (err) {
        showError('Could not read this server’s settings (' + err.message + '); try reloading.');
      });
  }

  function init() {
    $('check').addEventListener('submit', check);
    $('toggle').addEventListener('click', toggle);
    ['password', 'ctx-user', 'ctx-email', 'ctx-org', 'kind-sha1', 'kind-ntlm'].forEach(
      function (id) { $(id).addEventListener('input', clearResult); });
    loadConfig();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})(typeof window !== 'undefined' ? window : globalThis);
