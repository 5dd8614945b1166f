#!/usr/bin/env bash
# Import benchmark: import wall time against `wc -l` on the same warm dump, index bytes per
# record and importer peak RSS, for one or more corpus sizes. Prints one table.
#
#   tools/bench-import.sh                 # 32.8 M records (16,384 prefixes x ~2,000), the issue's size
#   tools/bench-import.sh --scale         # 4 M, 16 M and 64 M records
#   tools/bench-import.sh --quick         # tiny corpus, one round (CI keeps the script working)
#
# Data goes to $BENCH_DIR (default: ./bench-data), reused across runs. Timings are the best of
# $ROUNDS runs (default 3), each tool run back to back with the other on the same warm file.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix_counts=(16384)
rounds=${ROUNDS:-3}
case "${1:-}" in
  --scale) prefix_counts=(2048 8192 32768) ;;
  --quick) prefix_counts=(64); rounds=1 ;;
  "") ;;
  *) echo "usage: $0 [--scale|--quick]" >&2; exit 2 ;;
esac

sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ ! -x /usr/bin/time ]; then
  export DEBIAN_FRONTEND=noninteractive
  ($sudo apt-get install -y -qq time >/dev/null 2>&1 ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq time; }) >/dev/null
fi
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
bin=target/release
dir=${BENCH_DIR:-bench-data}
mkdir -p "$dir"

# best_of CMD...: prints the best wall time in seconds over $rounds runs. When $fresh names a
# file, it is deleted (untimed) before each run, so every import writes a new file.
fresh=""
best_of() {
  local best=""
  for _ in $(seq "$rounds"); do
    if [ -n "$fresh" ]; then rm -f "$fresh"; sync; fi
    local t
    /usr/bin/time -o "$dir/.time" -f "%e" "$@" >/dev/null 2>&1
    t=$(tail -n1 "$dir/.time")
    best=$(python3 -c "import sys; a=sys.argv[1]; b=float(sys.argv[2]); print(b if a=='' else min(float(a), b))" "$best" "$t")
  done
  echo "$best"
}

printf "%-10s %8s %9s %11s %7s %14s %7s %10s %9s\n" \
  records "dump GB" "wc -l s" "import s" ratio "no-fsync s" ratio "B/record" "RSS MiB"
for prefixes in "${prefix_counts[@]}"; do
  dump="$dir/dense-$prefixes.txt"
  [ -s "$dump" ] || "$bin/hibp-gen" dump --prefixes "$prefixes" --per-prefix 2000 -o "$dump"
  cat "$dump" >/dev/null # warm the page cache
  out="$dir/dense-$prefixes.idx"
  wc_s=$(best_of wc -l "$dump")
  # Each timed import writes a fresh file (replacing an old index also frees its page cache).
  fresh=$out
  import_s=$(best_of "$bin/hibp-mirror" import --quiet "$dump" -o "$out")
  nosync_s=$(best_of "$bin/hibp-mirror" import --quiet --no-fsync "$dump" -o "$out")
  fresh=""
  /usr/bin/time -o "$dir/.time" -f "%M" "$bin/hibp-mirror" import --quiet "$dump" -o "$out" >/dev/null 2>&1
  rss_kb=$(tail -n1 "$dir/.time")
  records=$(grep -c '' "$dump")
  python3 - "$records" "$(stat -c %s "$dump")" "$wc_s" "$import_s" "$nosync_s" "$(stat -c %s "$out")" "$rss_kb" <<'PY'
import sys
records, dump_bytes, wc_s, imp_s, nosync_s, idx_bytes, rss_kb = sys.argv[1:]
records, dump_bytes, idx_bytes = int(records), int(dump_bytes), int(idx_bytes)
wc_s, imp_s, nosync_s = float(wc_s), float(imp_s), float(nosync_s)
ratio = lambda t: f"{t / wc_s:.1f}x" if wc_s > 0 else "n/a"
print(f"{records:<10} {dump_bytes / 1e9:8.2f} {wc_s:9.2f} {imp_s:11.2f} {ratio(imp_s):>7} "
      f"{nosync_s:14.2f} {ratio(nosync_s):>7} {idx_bytes / max(records, 1):10.2f} {int(rss_kb) / 1024:9.0f}")
PY
done
