#!/usr/bin/env bash
# Real-client check: starts `hibp-mirror serve` on a free loopback port against the bundled
# sample, installs real Pwned Passwords clients into a temporary directory (Python: pyhibp,
# pwnedpasswords; npm: hibp), points each at the server by changing only its base URL, and checks
# that "password" is found with the sample count and an unbreached password is not.
# Exits non-zero on any failure. Nothing contacts the public API: the check scripts refuse every
# connection that is not to the local server.
#
# Environment: HIBP_MIRROR_BIN (binary to test; default target/release or target/debug, built
# when missing), KEEP_TMP=1 (keep the temporary directory).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tools/clients"

# Client versions this check was written against.
PYHIBP_VERSION="4.2.0"
PWNEDPASSWORDS_VERSION="3.1.0"
NPM_HIBP_VERSION="15.2.1"

bin="${HIBP_MIRROR_BIN:-}"
if [[ -z "$bin" ]]; then
  for candidate in "$root/target/release/hibp-mirror" "$root/target/debug/hibp-mirror"; do
    if [[ -x "$candidate" ]]; then bin="$candidate"; break; fi
  done
fi
if [[ -z "$bin" ]]; then
  (cd "$root" && cargo build --release --bin hibp-mirror)
  bin="$root/target/release/hibp-mirror"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hibp-clients.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT

echo "== starting $bin serve (bundled sample) on a free port"
# Port 0: the kernel picks a free port; the server logs the address it got.
env -u HIBP_MIRROR_INDEX -u HIBP_MIRROR_NTLM_INDEX -u HIBP_MIRROR_LISTEN RUST_LOG=info \
  "$bin" serve --listen 127.0.0.1:0 --log-format json --watch-interval 0 >"$tmp/server.log" 2>&1 &
server_pid=$!
address=""
for _ in $(seq 1 200); do
  address="$(grep -o '"address":"[^"]*"' "$tmp/server.log" | head -n1 | cut -d'"' -f4 || true)"
  [[ -n "$address" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$tmp/server.log"; echo "server exited"; exit 1; fi
  sleep 0.05
done
[[ -n "$address" ]] || { cat "$tmp/server.log"; echo "server did not report its address"; exit 1; }
base="http://$address"
echo "   serving at $base"

status=0

echo "== Python clients"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
  "pyhibp==$PYHIBP_VERSION" "pwnedpasswords==$PWNEDPASSWORDS_VERSION"
"$tmp/venv/bin/python" "$here/check_python.py" "$base" "$root/data/sample-sha1.txt" || status=1

echo "== npm hibp"
mkdir -p "$tmp/node"
cp "$here/check_node.mjs" "$tmp/node/"
(cd "$tmp/node" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund "hibp@$NPM_HIBP_VERSION" >/dev/null 2>&1)
(cd "$tmp/node" && node check_node.mjs "$base") || status=1

echo "== requests the clients sent (access log)"
grep -o '"method":"[A-Z]*".*"status":[0-9]*' "$tmp/server.log" | sed 's/"latency_us".*//' | sort | uniq -c || true

if [[ $status -ne 0 ]]; then echo "REAL-CLIENT CHECK FAILED"; exit 1; fi
echo "REAL-CLIENT CHECK PASSED"
