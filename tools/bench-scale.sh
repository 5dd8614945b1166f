#!/usr/bin/env bash
# Cold-cache benchmark on a full-size index (larger than the page cache), against fio on the
# same file, plus a run inside a memory-limited cgroup. Needs root (drops the page cache).
#
#   tools/bench-scale.sh                     # 2.1e9 records (~40 GB index, deleted at the end), 15 s runs
#   tools/bench-scale.sh --records 2e8       # smaller corpus
#   tools/bench-scale.sh --quick             # 2e7 records, 2 s runs (CI keeps it working; asserts nothing)
#   tools/bench-scale.sh --index FILE        # reuse an existing index
#
# Other options: --seconds N, --memory-limit 4G|none, --workers N, --serve-arg ARG, --binary PATH,
# --dir DIR (default target/bench-scale), --keep. See tools/bench-scale.py.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v wrk >/dev/null || ! command -v fio >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq wrk fio >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk fio >/dev/null; }
fi
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
exec $sudo python3 tools/bench-scale.py "$@"
