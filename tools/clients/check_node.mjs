// Points the npm `hibp` package at a running hibp-mirror through its `baseUrl` option and checks
// what it reports. Usage: node check_node.mjs BASE_URL
// fetch is wrapped so that any request not aimed at the mirror fails: nothing can reach the
// public API.
import { pwnedPassword, pwnedPasswordRange } from 'hibp';

const base = process.argv[2].replace(/\/$/, '');
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === 'string' ? input : input.url ?? String(input);
  if (!url.startsWith(base + '/')) {
    throw new Error(`refusing to fetch ${url}: only the local mirror may be contacted`);
  }
  return realFetch(input, init);
};

const EXPECTED = 9545824;
const failures = [];
function check(name, got, want) {
  const ok = got === want;
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name}: got ${got}, want ${want}`);
  if (!ok) failures.push(name);
}

console.log(`npm hibp (baseUrl: '${base}')`);
const options = { baseUrl: base, userAgent: 'hibp-mirror client check' };
check('hibp password', await pwnedPassword('password', options), EXPECTED);
check('hibp password, padded', await pwnedPassword('password', { ...options, addPadding: true }), EXPECTED);
check('hibp unbreached', await pwnedPassword('hibp-mirror: surely never breached', options), 0);
// NTLM of "password" is 8846F7EAEE8FB117AD06BDD830B7586C.
const ntlm = await pwnedPasswordRange('8846F', { ...options, mode: 'ntlm' });
check('hibp ntlm range (mode=ntlm)', ntlm['7EAEE8FB117AD06BDD830B7586C'], EXPECTED);

if (failures.length > 0) {
  console.log(`FAILED: ${failures.join(', ')}`);
  process.exit(1);
}
console.log('npm hibp: all checks passed');
