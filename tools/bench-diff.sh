#!/usr/bin/env bash
# `hibp-mirror diff` benchmark: wall time against `cat OLD NEW > /dev/null` on the same warm
# files, for two pairs of indexes:
#   1%    NEW = OLD with the counts of 1% of the populated prefixes raised by one (the usual
#         "new corpus version" case: only prefixes with different tags are read);
#   all   NEW = an unrelated corpus of the same size (every populated prefix differs: the worst
#         case, a full merge of both indexes).
# Target: ratio <= 2x. Prints one table; the ratio is measured in the same run as its baseline.
# A dump also writes its output, which in the `all` case is larger than both inputs together
# (~46 bytes of text per 19-byte record); the last column is the dump against `cat OLD NEW OUT`
# on warm files, OUT being that dump's own output: reading the inputs and the output once.
#
#   tools/bench-diff.sh            # 16,384 prefixes x ~2,000 hashes (32.8 M records per index)
#   tools/bench-diff.sh --quick    # 64 prefixes (CI keeps the script working)
#
# Data goes to $BENCH_DIR (default: ./bench-data), reused across runs. Timings are the best of
# $ROUNDS runs (default 3); $PREFIXES overrides the populated prefix count of the full run.
set -euo pipefail
cd "$(dirname "$0")/.."

prefixes=${PREFIXES:-16384}; rounds=${ROUNDS:-3}
case "${1:-}" in
  --quick) prefixes=64; rounds=1 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
bin=target/release
dir=${BENCH_DIR:-bench-data}
mkdir -p "$dir"

best_of() {
  local best="" t0 t1
  for _ in $(seq "$rounds"); do
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s.%N)
    best=$(python3 -c "import sys; a=sys.argv[1]; t=float(sys.argv[3])-float(sys.argv[2]); print(t if a=='' else min(float(a), t))" "$best" "$t0" "$t1")
  done
  echo "$best"
}

old="$dir/diff-$prefixes-a.idx"; one="$dir/diff-$prefixes-1pct.idx"; other="$dir/diff-$prefixes-b.idx"
if [ ! -s "$old" ] || [ ! -s "$one" ] || [ ! -s "$other" ]; then
  "$bin/hibp-gen" dump --prefixes "$prefixes" --seed 1 -o "$dir/diff-a.txt"
  "$bin/hibp-gen" dump --prefixes "$prefixes" --seed 2 -o "$dir/diff-b.txt"
  # Populated prefixes are every (2^20 / prefixes)-th; raise the counts in every 100th of them.
  step=$(( 1048576 / prefixes ))
  python3 - "$dir/diff-a.txt" "$dir/diff-1pct.txt" "$step" <<'PY'
import sys
src, dst, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f, open(dst, "w") as g:
    for line in f:
        if (int(line[:5], 16) // step) % 100 == 0:
            h, c = line.rstrip("\n").split(":")
            c = int(c)
            line = f"{h}:{c + 1 if c < 4294967295 else c - 1}\n"
        g.write(line)
PY
  "$bin/hibp-mirror" import --quiet "$dir/diff-a.txt" -o "$old" >/dev/null
  "$bin/hibp-mirror" import --quiet "$dir/diff-1pct.txt" -o "$one" >/dev/null
  "$bin/hibp-mirror" import --quiet "$dir/diff-b.txt" -o "$other" >/dev/null
  rm -f "$dir/diff-a.txt" "$dir/diff-b.txt" "$dir/diff-1pct.txt"
fi

printf "%-6s %10s %8s %9s %8s %7s %7s %8s %12s  %s\n" case "MB (both)" "cat s" "diff s" ratio \
  "dump s" ratio "out MB" "vs +cat OUT" "changes"
out="$dir/diff-out.txt"
trap 'rm -f "$out"' EXIT
for case in 1% all; do
  new=$one; [ "$case" = all ] && new=$other
  "$bin/hibp-mirror" diff --format dump "$old" "$new" >"$out" 2>/dev/null
  cat "$old" "$new" "$out" >/dev/null # warm the page cache
  cat_s=$(best_of cat "$old" "$new")
  floor_s=$(best_of cat "$old" "$new" "$out")
  diff_s=$(best_of "$bin/hibp-mirror" diff "$old" "$new")
  dump_s=$(best_of "$bin/hibp-mirror" diff --format dump "$old" "$new")
  changes=$("$bin/hibp-mirror" diff --format json "$old" "$new")
  python3 - "$case" "$(( $(stat -c %s "$old") + $(stat -c %s "$new") ))" "$(stat -c %s "$out")" \
    "$cat_s" "$floor_s" "$diff_s" "$dump_s" "$changes" <<'PY'
import json, sys
case, size, out_size, cat_s, floor_s, diff_s, dump_s, changes = sys.argv[1:]
size, out_size = int(size), int(out_size)
cat_s, floor_s, diff_s, dump_s = float(cat_s), float(floor_s), float(diff_s), float(dump_s)
c = json.loads(changes)
ratio = lambda t, base=cat_s: f"{t / base:.2f}x" if base > 0 else "n/a"
print(f"{case:<6} {size / 1e6:10.0f} {cat_s:8.2f} {diff_s:9.2f} {ratio(diff_s):>8} {dump_s:7.2f} {ratio(dump_s):>7} "
      f"{out_size / 1e6:8.0f} {ratio(dump_s, floor_s):>12}  "
      f"{c['prefixes_changed']} prefixes, +{c['hashes_added']} -{c['hashes_removed']} ~{c['counts_changed']}")
PY
done
