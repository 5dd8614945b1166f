"""Points the Python Pwned Passwords clients `pyhibp` and `pwnedpasswords` at a running
hibp-mirror by changing only their base URL, and checks what they report.

Usage: check_python.py BASE_URL SAMPLE_SHA1_FILE
Every socket connection to anything but loopback is refused, so nothing can reach the public API.
"""

import hashlib
import socket
import sys
from importlib.metadata import version

BASE = sys.argv[1].rstrip("/")
SAMPLE = sys.argv[2]
EXPECTED = 9545824  # count of "password" in the bundled sample

_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise RuntimeError(f"refusing to connect to {host!r}: only the local mirror may be contacted")
    return _connect(self, address)


socket.socket.connect = _loopback_only


def unbreached_password():
    """A password absent from the sample whose prefix is present (clients that cannot parse an
    empty range body still get a real one)."""
    hashes = set()
    with open(SAMPLE) as f:
        for line in f:
            hashes.add(line.split(":")[0].strip().upper())
    prefixes = {h[:5] for h in hashes}
    for i in range(10_000_000):
        candidate = f"hibp-mirror-not-breached-{i}"
        digest = hashlib.sha1(candidate.encode()).hexdigest().upper()
        if digest[:5] in prefixes and digest not in hashes:
            return candidate
    raise SystemExit("no candidate found")


failures = []


def check(name, got, want):
    status = "ok" if got == want else "FAIL"
    print(f"  {status:4} {name}: got {got!r}, want {want!r}")
    if got != want:
        failures.append(name)


clean = unbreached_password()

import pyhibp  # noqa: E402
import pyhibp.pwnedpasswords  # noqa: E402

pyhibp.set_user_agent(ua="hibp-mirror client check")
pyhibp.pwnedpasswords.PWNED_PASSWORDS_API_BASE_URI = BASE + "/"
print(f"pyhibp {version('pyhibp')} (PWNED_PASSWORDS_API_BASE_URI = {BASE}/)")
check("pyhibp password", pyhibp.pwnedpasswords.is_password_breached(password="password"), EXPECTED)
check(
    "pyhibp password, padded",
    pyhibp.pwnedpasswords.is_password_breached(password="password", add_padding=True),
    EXPECTED,
)
check("pyhibp unbreached", pyhibp.pwnedpasswords.is_password_breached(password=clean), 0)
check(
    "pyhibp unbreached, empty range",
    pyhibp.pwnedpasswords.is_password_breached(password="hibp-mirror empty range 0"),
    0,
)

import urllib.parse  # noqa: E402

import pwnedpasswords  # noqa: E402
from pwnedpasswords.pwnedpasswords import PwnedPasswordsAPI  # noqa: E402


def _mirror_url(*components, **kwargs):
    # The library's own URL builder with only the base URL changed.
    value = BASE + "/" + "/".join(components)
    if kwargs:
        value += "?" + urllib.parse.urlencode(kwargs)
    return value


PwnedPasswordsAPI.url = staticmethod(_mirror_url)
print(f"pwnedpasswords {version('pwnedpasswords')} (PwnedPasswordsAPI.url base = {BASE}/)")
check("pwnedpasswords password", pwnedpasswords.check("password"), EXPECTED)
check("pwnedpasswords unbreached", pwnedpasswords.check(clean), 0)

if failures:
    print(f"FAILED: {', '.join(failures)}")
    sys.exit(1)
print("python clients: all checks passed")
