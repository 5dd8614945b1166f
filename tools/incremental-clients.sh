#!/usr/bin/env bash
# Incremental proof with real clients: a corpus A and B = A with 1% of the prefixes changed
# (records added, counts raised, one record removed); `hibp-mirror serve` serves A on a free
# loopback port; the Python `hibp-downloader` and a downstream `hibp-mirror sync` each download
# the slice; the upstream's index is replaced by B (rename, hot reload); both download again.
# Checked, from the server's /metrics: the second round of each client costs exactly one 200 per
# changed prefix and a 304 for every other. Also checked: `hibp-mirror diff A B --format dump`
# equals the ground truth of the change, and the synced index equals B after the header.
# Prints the bytes `sync` received on the full and on the incremental run (the bandwidth saving).
#
#   tools/incremental-clients.sh           # 8,192 prefixes x ~800 hashes
#   tools/incremental-clients.sh --quick   # 2,048 prefixes x ~100 hashes (CI)
#
# Environment: HIBP_MIRROR_BIN (binary to test; default: build target/release), KEEP_TMP=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

prefixes=8192; per_prefix=800
case "${1:-}" in
  --quick) prefixes=2048; per_prefix=100 ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
last=$(printf '%05x' $((prefixes - 1)))
HIBP_DOWNLOADER_VERSION="0.4.8"

bin="${HIBP_MIRROR_BIN:-}"
if [[ -z "$bin" ]]; then
  (cd "$root" && cargo build --release --quiet --bin hibp-mirror)
  bin="$root/target/release/hibp-mirror"
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/hibp-incremental.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT

echo "== corpus A ($prefixes prefixes x ~$per_prefix hashes) and B = A with 1% of prefixes changed"
python3 - "$tmp" "$prefixes" "$per_prefix" <<'PY'
import random, sys
tmp, prefixes, per_prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(11)
a, by_prefix = {}, []
for p in range(prefixes):
    mine = set()
    for _ in range(rng.randint(per_prefix * 9 // 10, per_prefix * 11 // 10)):
        h = f"{p:05X}" + f"{rng.getrandbits(140):035X}"
        a[h] = min(int(rng.paretovariate(0.6)), 50_000_000)
        mine.add(h)
    by_prefix.append(sorted(mine))
b = dict(a)
changed = sorted(rng.sample(range(prefixes), prefixes // 100))
truth = {}
for n, p in enumerate(changed):
    mine = by_prefix[p]
    if n % 3 != 1:  # a record added
        h = f"{p:05X}" + f"{rng.getrandbits(140):035X}"
        b[h] = truth[h] = rng.randint(1, 10)
    if n % 3 != 0:  # a count raised
        b[mine[1]] = truth[mine[1]] = a[mine[1]] + 1
    if n == 0:  # one record removed
        del b[mine[0]]
for name, corpus in (("a", a), ("b", b)):
    with open(f"{tmp}/{name}.txt", "w") as f:
        f.writelines(f"{h}:{c}\n" for h, c in sorted(corpus.items()))
with open(f"{tmp}/truth.txt", "w") as f:
    f.writelines(f"{h}:{c}\n" for h, c in sorted(truth.items()))
with open(f"{tmp}/changed.txt", "w") as f:
    f.write(f"{len(changed)}\n")
PY
changed=$(cat "$tmp/changed.txt")
"$bin" import --quiet "$tmp/a.txt" -o "$tmp/a.idx" >/dev/null
"$bin" import --quiet "$tmp/b.txt" -o "$tmp/b.idx" >/dev/null
echo "   $changed prefixes changed"

echo "== diff A B --format dump equals the ground truth"
"$bin" diff "$tmp/a.idx" "$tmp/b.idx" --format dump >"$tmp/dump.txt" 2>"$tmp/diff.txt"
cat "$tmp/diff.txt"
cmp "$tmp/dump.txt" "$tmp/truth.txt"
echo "   identical ($(wc -l <"$tmp/truth.txt") lines)"

mkdir -p "$tmp/up"
cp "$tmp/a.idx" "$tmp/up/sha1.idx"
env -u HIBP_MIRROR_INDEX -u HIBP_MIRROR_NTLM_INDEX -u HIBP_MIRROR_LISTEN RUST_LOG=info \
  "$bin" serve --listen 127.0.0.1:0 --log-format json --watch-interval 0.2 --gzip-level 6 \
  --index "$tmp/up/sha1.idx" >"$tmp/server.log" 2>&1 &
server_pid=$!
address=""
for _ in $(seq 1 200); do
  address="$(grep -o '"address":"[^"]*"' "$tmp/server.log" | head -n1 | cut -d'"' -f4 || true)"
  [[ -n "$address" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; echo "server exited"; exit 1; }
  sleep 0.05
done
[[ -n "$address" ]] || { cat "$tmp/server.log"; echo "server did not report its address"; exit 1; }
base="http://$address"
echo "   serving A at $base"

# answers STATUS: /range answers with STATUS so far, from /metrics.
answers() {
  python3 - "$base/metrics" "$1" <<'PY'
import sys, urllib.request
key = f'hibp_mirror_requests_total{{route="range",status="{sys.argv[2]}"}}'
page = urllib.request.urlopen(sys.argv[1]).read().decode()
print(next((int(l.split()[1]) for l in page.splitlines() if l.split(" ")[0] == key), 0))
PY
}
# reloads: successful SHA-1 index reloads so far, from /metrics (A and B may be built in the same
# second, so the build time cannot tell them apart).
reloads() {
  python3 - "$base/metrics" <<'PY'
import sys, urllib.request
key = 'hibp_mirror_index_reloads_total{kind="sha1",result="ok"}'
page = urllib.request.urlopen(sys.argv[1]).read().decode()
print(next((int(l.split()[1]) for l in page.splitlines() if l.split(" ")[0] == key), 0))
PY
}
status=0
# expect WHAT OK200 OK304 BEFORE200 BEFORE304: checks the /metrics deltas of one client run.
expect() {
  local got200=$(( $(answers 200) - $4 )) got304=$(( $(answers 304) - $5 ))
  if [[ $got200 -eq $2 && $got304 -eq $3 ]]; then
    echo "   $1: $got200 x 200, $got304 x 304: as expected"
  else
    echo "   $1: $got200 x 200, $got304 x 304; expected $2 x 200, $3 x 304: FAILED"; status=1
  fi
}

echo "== hibp-downloader $HIBP_DOWNLOADER_VERSION"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "hibp-downloader==$HIBP_DOWNLOADER_VERSION"
downloader() {
  "$tmp/venv/bin/python" "$root/tools/clients/incremental_downloader.py" "$base" "$tmp/dl" 00000 "$last" \
    >"$tmp/downloader.log" 2>&1 || { tail -n 20 "$tmp/downloader.log"; echo "hibp-downloader failed"; exit 1; }
}
b200=$(answers 200); b304=$(answers 304)
downloader
expect "hibp-downloader, first run on A" "$prefixes" 0 "$b200" "$b304"

echo "== hibp-mirror sync (downstream mirror), first run on A"
b200=$(answers 200); b304=$(answers 304)
"$bin" sync --upstream "$base" --output "$tmp/down.idx" --prefixes "00000-$last" --quiet --json | tee "$tmp/sync1.json"
expect "sync, first run on A" "$prefixes" 0 "$b200" "$b304"

echo "== upstream replaced by B (rename; the server reloads it)"
old_reloads=$(reloads)
cp "$tmp/b.idx" "$tmp/up/.next.idx" && mv "$tmp/up/.next.idx" "$tmp/up/sha1.idx"
for _ in $(seq 1 300); do [[ "$(reloads)" != "$old_reloads" ]] && break; sleep 0.1; done
[[ "$(reloads)" != "$old_reloads" ]] || { echo "the server did not reload"; exit 1; }

b200=$(answers 200); b304=$(answers 304)
downloader
expect "hibp-downloader, run after the swap" "$changed" $((prefixes - changed)) "$b200" "$b304"

b200=$(answers 200); b304=$(answers 304)
"$bin" sync --upstream "$base" --output "$tmp/down.idx" --prefixes "00000-$last" --quiet --json | tee "$tmp/sync2.json"
expect "sync, run after the swap" "$changed" $((prefixes - changed)) "$b200" "$b304"

echo "== the synced index equals B after the header (tables, tags, records, overflow)"
if cmp <(tail -c +257 "$tmp/down.idx") <(tail -c +257 "$tmp/b.idx"); then echo "   identical"; else echo "   DIFFERENT: FAILED"; status=1; fi

python3 - "$tmp/sync1.json" "$tmp/sync2.json" "$changed" <<'PY'
import json, sys
full, incr = (json.load(open(p)) for p in sys.argv[1:3])
changed = int(sys.argv[3])
c = incr["changes"]
assert c["prefixes_changed"] == changed, c
f, i = full["bytes_received"], incr["bytes_received"]
print(f"== bandwidth (body bytes, gzip level 6): full sync {f:,} B, after a 1% change {i:,} B "
      f"({i / f * 100:.2f}% of a full sync; {incr['not_modified']:,} bodiless 304s)")
PY

if [[ $status -ne 0 ]]; then echo "INCREMENTAL CLIENT CHECK FAILED"; exit 1; fi
echo "INCREMENTAL CLIENT CHECK PASSED"
