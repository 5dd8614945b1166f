#!/usr/bin/env bash
# Load benchmark of `hibp-mirror serve` against nginx serving the same /range bodies as static
# files (the layout the official downloader writes with -s false), plus import vs `wc -l`.
#
#   tools/bench-serve.sh            # 16,384 prefixes x ~2,000 hashes (32.8 M records), 15 s runs, 2 rounds
#   tools/bench-serve.sh --quick    # tiny data, 2 s runs (CI keeps it working; asserts nothing)
#
# Extra options go to tools/bench-serve.py (--prefixes, --per-prefix, --seconds, --rounds).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq wrk nginx-light >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq wrk nginx-light >/dev/null; }
fi
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
exec python3 tools/bench-serve.py "$@"
