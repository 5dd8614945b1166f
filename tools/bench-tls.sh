#!/usr/bin/env bash
# /range over TLS vs plain HTTP, same index, same run: two `hibp-mirror serve` processes (one with
# --tls-cert/--tls-key, one without) on loopback, wrk rounds alternating between them, and the
# TLS/plain ratio of requests per second printed at the end. wrk keeps its connections open, so
# this measures the steady-state cost of encryption, not handshakes.
#
#   tools/bench-tls.sh            # 4,096 prefixes x 2,000 hashes (~80 KB bodies), 10 s runs, 3 rounds
#   tools/bench-tls.sh --quick    # 64 x 200, 2 s runs, 1 round (CI keeps it working; asserts nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

prefixes=4096 per_prefix=2000 seconds=10 rounds=3
[[ "${1:-}" == --quick ]] && { prefixes=64 per_prefix=200 seconds=2 rounds=1; }

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v wrk >/dev/null || ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq wrk openssl >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk openssl >/dev/null; }
fi
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
bin=target/release

work="$(mktemp -d "${TMPDIR:-/tmp}/hibp-bench-tls.XXXXXX")"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$bin/hibp-gen" dump --prefixes "$prefixes" --per-prefix "$per_prefix" -o "$work/dump.txt"
"$bin/hibp-mirror" import --quiet "$work/dump.txt" -o "$work/sha1.idx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -keyout "$work/key.pem" \
  -out "$work/cert.pem" -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null

start() { # NAME EXTRA-ARGS...
  local name="$1"; shift
  "$bin/hibp-mirror" serve --index "$work/sha1.idx" --listen 127.0.0.1:0 --log-format json \
    --access-log false --watch-interval 0 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 200); do
    grep -q '"address"' "$work/$name.log" && break; sleep 0.05
  done
  grep -o '"address":"[^"]*"' "$work/$name.log" | head -n1 | cut -d'"' -f4
}
plain="http://$(start plain)"
tls="https://$(start tls --tls-cert "$work/cert.pem" --tls-key "$work/key.pem")"

step=$(( (1 << 20) / prefixes ))
cat >"$work/range.lua" <<LUA
local seeded = false
request = function()
  if not seeded then math.randomseed(os.time() + math.floor(os.clock() * 1000000)); seeded = true end
  return wrk.format("GET", string.format("/range/%05X", math.random(0, $prefixes - 1) * $step))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.0f %.3f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.status + e.timeout))
end
LUA

declare -A total
for name in plain tls; do total[$name]=0; done
echo "/range, $prefixes prefixes x $per_prefix hashes, wrk -t2 -c64 -d${seconds}s, $rounds alternating rounds"
for round in $(seq 1 "$rounds"); do
  for name in plain tls; do
    url="${!name}"
    read -r rps p99 errors < <(wrk -t2 -c64 -d"${seconds}s" --latency -s "$work/range.lua" "$url" | grep '^RESULT' | cut -d' ' -f2-)
    printf '  round %d %-5s %8d req/s  p99 %7.2f ms  errors %d\n' "$round" "$name" "$rps" "$p99" "$errors"
    total[$name]=$(( ${total[$name]} + rps ))
  done
done
python3 -c "import sys; p, t = int(sys.argv[1]), int(sys.argv[2]); print(f'TLS/plain /range throughput: {t / p:.2f} (mean {t // $rounds} vs {p // $rounds} req/s)')" "${total[plain]}" "${total[tls]}"
