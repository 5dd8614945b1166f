#!/usr/bin/env bash
# Hostile-traffic run (issue 9): one release server with default limits, and at the same time
# idle connections, one-byte slowloris clients, HTTP/2 zero-window clients, never-reading
# pipeliners and malformed requests, while a well-behaved client checks /range and /checkhash.
#
#   tools/hostile.sh            # 5,000 idle, 500 slowloris, 200 h2, 100 pipeliners; 60 s
#   tools/hostile.sh --quick    # a tenth of that, 10 s (CI)
#
# Fails on a wrong or missing well-behaved answer, a dead server, or peak RSS over 256 MiB;
# p99 latency is printed against its 1 s target but not asserted (the machine is shared).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -c 'import h2' 2>/dev/null || python3 -m pip install --quiet 'h2>=4,<5'
# ~6,000 client sockets plus as many on the server side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 16384 ] || ulimit -n 16384 2>/dev/null ||
  echo "hostile: ulimit -n is $(ulimit -n); raise the hard limit for the full run" >&2
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
exec python3 tools/hostile.py "$@"
