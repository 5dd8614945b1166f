#!/usr/bin/env bash
# Real clients over HTTPS: makes a throwaway CA and server certificates with the openssl CLI,
# starts `hibp-mirror serve` with --tls-cert/--tls-key and a --token-file on a free loopback
# port, then checks:
#   - curl --cacert: /range over HTTP/2 and HTTP/1.1; POST /checkhash with and without a token;
#   - the Python clients (pyhibp, pwnedpasswords) over https with the CA as their bundle
#     (REQUESTS_CA_BUNDLE, SSL_CERT_FILE), base URL changed only (tools/clients/check_python.py);
#   - SIGHUP with a replaced certificate: new connections get it; a mismatched pair is refused
#     with a log line and the previous certificate keeps serving; SIGHUP rotates the tokens;
#   - the server log holds neither the token nor the full hash.
# Exits non-zero on any failure. Nothing contacts the public API.
#
# Environment: HIBP_MIRROR_BIN (binary; default target/release or target/debug, built when
# missing), KEEP_TMP=1 (keep the temporary directory).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/tools/clients"
PYHIBP_VERSION="4.2.0"
PWNEDPASSWORDS_VERSION="3.1.0"
PASSWORD_SHA1="5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
PASSWORD_COUNT=9545824 # in the bundled sample

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
command -v openssl >/dev/null && command -v curl >/dev/null || { echo "needs openssl and curl"; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hibp-tls.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT
status=0
fail() { echo "  FAIL $*"; status=1; }
ok() { echo "  ok   $*"; }

echo "== throwaway CA and server certificates (openssl)"
cd "$tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout ca.key -out ca.pem -subj "/CN=hibp-mirror test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # NAME
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out "$1.pem" -extfile "$1.ext" 2>/dev/null
}
issue server-a
issue server-b
cp server-a.pem cert.pem
cp server-a.key key.pem
token="tls-check-token-$RANDOM$RANDOM"
printf '# tokens for the TLS check\n%s\n' "$token" >tokens

echo "== starting $bin serve with TLS and a token file"
env -u HIBP_MIRROR_INDEX -u HIBP_MIRROR_NTLM_INDEX -u HIBP_MIRROR_LISTEN RUST_LOG=info \
  "$bin" serve --listen 127.0.0.1:0 --log-format json --watch-interval 0 \
  --tls-cert cert.pem --tls-key key.pem --token-file tokens >server.log 2>&1 &
server_pid=$!
address=""
for _ in $(seq 1 200); do
  address="$(grep -o '"address":"[^"]*"' server.log | head -n1 | cut -d'"' -f4 || true)"
  [[ -n "$address" ]] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then cat server.log; echo "server exited"; exit 1; fi
  sleep 0.05
done
[[ -n "$address" ]] || { cat server.log; echo "server did not report its address"; exit 1; }
base="https://$address"
echo "   serving at $base"

echo "== curl --cacert"
for v in --http2 --http1.1; do
  out="$(curl -sS --max-time 10 --cacert ca.pem $v -w '\n%{http_code} %{http_version}' "$base/range/5BAA6")" || true
  if grep -q "^${PASSWORD_SHA1:5}:" <<<"$out" && [[ "$(tail -n1 <<<"$out")" == "200 "* ]]; then
    ok "curl $v /range/5BAA6: $(tail -n1 <<<"$out")"
  else fail "curl $v /range/5BAA6: $(tail -n1 <<<"$out")"; fi
done
code="$(curl -sS --max-time 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data "$PASSWORD_SHA1" "$base/checkhash")"
[[ "$code" == 401 ]] && ok "POST /checkhash without token: 401" || fail "POST /checkhash without token: $code"
out="$(curl -sS --max-time 10 --cacert ca.pem -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  --data "{\"hash\":\"$PASSWORD_SHA1\"}" "$base/checkhash")"
[[ "$out" == *"\"timesseen\":$PASSWORD_COUNT"* ]] && ok "POST /checkhash with token: $out" || fail "POST /checkhash with token: $out"

echo "== Python clients over https (CA bundle from REQUESTS_CA_BUNDLE / SSL_CERT_FILE)"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check \
  "pyhibp==$PYHIBP_VERSION" "pwnedpasswords==$PWNEDPASSWORDS_VERSION"
REQUESTS_CA_BUNDLE="$tmp/ca.pem" SSL_CERT_FILE="$tmp/ca.pem" \
  "$tmp/venv/bin/python" "$here/check_python.py" "$base" "$root/data/sample-sha1.txt" || status=1

# Control: without the CA bundle the same client must refuse the server's certificate.
if env -u REQUESTS_CA_BUNDLE -u SSL_CERT_FILE "$tmp/venv/bin/python" -c \
  'import sys, requests; requests.get(sys.argv[1] + "/range/5BAA6", timeout=10)' "$base" 2>/dev/null; then
  fail "requests without the CA bundle accepted the certificate"
else ok "requests without the CA bundle refuses the certificate"; fi

subject() { # the CN the server presents to a new connection
  openssl s_client -connect "$address" -CAfile ca.pem </dev/null 2>/dev/null | openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}
echo "== SIGHUP: certificate replaced"
[[ "$(subject)" == server-a ]] && ok "serving server-a" || fail "before reload: $(subject)"
cp server-b.key key.new && mv key.new key.pem
cp server-b.pem cert.new && mv cert.new cert.pem
kill -HUP "$server_pid"
for _ in $(seq 1 100); do [[ "$(subject)" == server-b ]] && break; sleep 0.05; done
[[ "$(subject)" == server-b ]] && ok "new connections get server-b after SIGHUP" || fail "after SIGHUP: $(subject)"
echo "== SIGHUP: mismatched pair refused"
cp server-a.pem cert.new && mv cert.new cert.pem # key is still server-b's
kill -HUP "$server_pid"
for _ in $(seq 1 100); do grep -q "TLS reload refused" server.log && break; sleep 0.05; done
grep -q "TLS reload refused" server.log && ok "refused: $(grep -o '"error":"[^"]*"' server.log | tail -n1)" || fail "no refusal logged"
[[ "$(subject)" == server-b ]] && ok "still serving server-b" || fail "after bad pair: $(subject)"
code="$(curl -sS --max-time 10 --cacert ca.pem -o /dev/null -w '%{http_code}' "$base/range/5BAA6")"
[[ "$code" == 200 ]] && ok "/range still 200" || fail "/range after bad pair: $code"

echo "== SIGHUP: token rotated"
printf 'rotated-%s\n' "$token" >tokens
kill -HUP "$server_pid"
for _ in $(seq 1 100); do grep -q "token file reloaded" server.log && break; sleep 0.05; done
old="$(curl -sS --max-time 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/metrics")"
new="$(curl -sS --max-time 10 --cacert ca.pem -o /dev/null -w '%{http_code}' -H "Authorization: Bearer rotated-$token" "$base/metrics")"
[[ "$old/$new" == 401/200 ]] && ok "old token 401, new token 200" || fail "tokens after rotation: old $old, new $new"

echo "== the log holds no token and no full hash"
if grep -q -e "$token" -e "$PASSWORD_SHA1" -i server.log; then fail "token or hash in server.log"; else ok "clean"; fi

if [[ $status -ne 0 ]]; then echo "--- server log"; tail -n 30 server.log; echo "TLS CLIENT CHECK FAILED"; exit 1; fi
echo "TLS CLIENT CHECK PASSED"
