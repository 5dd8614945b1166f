#!/usr/bin/env bash
# Two `hibp-mirror serve` replicas behind real nginx, configured with deploy/nginx-hibp-mirror.conf
# itself (ports and log paths substituted), all on 127.0.0.1 with their own temp files. Under wrk
# load, three phases of equal length:
#   baseline  nothing happens;
#   kill      replica 1 is killed with SIGKILL, and restarted later;
#   reload    each replica's index file is replaced by a rename (a new index version), replica 1
#             first, replica 2 once replica 1 serves the new version; the servers hot-reload.
# Beside wrk, a Python client checks every answer it gets: status 200 and a body equal to what
# the dump of the index version named by the ETag holds for that prefix (never the other
# version's data under a tag). It also sends /checkhash requests with full hashes, and at the end
# every log (nginx access and error, both replicas) is searched for those hashes.
# Prints, per phase: requests, failed requests (wrk non-2xx + socket errors, and the client's
# failures), p50/p99 latency, and the ETag check. Exits non-zero if any request failed, any
# answer did not match its version, or a full hash reached a log.
#
#   tools/replicas.sh [--quick]     (--quick: smaller corpus, 6 s phases; default 20 s phases)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    PHASE=6; PREFIXES=1024; PER_PREFIX=200
else
    PHASE=20; PREFIXES=4096; PER_PREFIX=800
fi
WRK_CONNECTIONS=32

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --bin hibp-mirror --bin hibp-gen
BIN=$PWD/target/release/hibp-mirror

W=$(mktemp -d /tmp/hibp-replicas.XXXXXX)
PIDS=()
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    [ -f "$W/nginx/nginx.pid" ] && kill "$(cat "$W/nginx/nginx.pid")" 2>/dev/null
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== data: two index versions"
# Version A: a synthetic dump; version B: the same hashes, every count + 1, so every non-empty
# range body differs between the versions.
target/release/hibp-gen dump --prefixes "$PREFIXES" --per-prefix "$PER_PREFIX" --seed 7 -o "$W/a.txt"
awk -F: '{ printf "%s:%d\n", $1, $2 + 1 }' "$W/a.txt" >"$W/b.txt"
$BIN import "$W/a.txt" --output "$W/a.idx" --quiet 2>/dev/null
$BIN import "$W/b.txt" --output "$W/b.idx" --quiet 2>/dev/null
echo "$(wc -l <"$W/a.txt") records per version"

P1=$(free_port); P2=$(free_port); P0=$(free_port)
start_replica() { # N PORT
    mkdir -p "$W/r$1"
    $BIN serve --listen "127.0.0.1:$2" --index "$W/r$1/sha1.idx" --workers 1 --log-format json \
        >>"$W/r$1/serve.log" 2>&1 &
    PIDS+=($!)
    eval "R$1_PID=$!"
    for _ in $(seq 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$2/healthz" && return 0
        sleep 0.05
    done
    fail "replica $1 did not come up on port $2"
}
etag_of() { # PORT PREFIX
    curl -fsS -D - -o /dev/null "http://127.0.0.1:$1/range/$2" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p'
}
mkdir -p "$W/r1" "$W/r2"
cp "$W/a.idx" "$W/r1/sha1.idx"
cp "$W/a.idx" "$W/r2/sha1.idx"
start_replica 1 "$P1"
start_replica 2 "$P2"
PROBE=$(head -1 "$W/a.txt" | cut -c1-5)
TAG_A=$(etag_of "$P1" "$PROBE")
# Version B's tag, from a third server that serves b.idx for a moment.
PB=$(free_port)
$BIN serve --listen "127.0.0.1:$PB" --index "$W/b.idx" --workers 1 2>/dev/null &
pb=$!; PIDS+=("$pb")
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PB/healthz" && break; sleep 0.05; done
TAG_B=$(etag_of "$PB" "$PROBE")
[ -n "$TAG_A" ] && [ -n "$TAG_B" ] && [ "$TAG_A" != "$TAG_B" ] || fail "ETags A='$TAG_A' B='$TAG_B'"
echo "replicas on :$P1 and :$P2; version A $TAG_A, version B $TAG_B"

echo "== nginx (deploy/nginx-hibp-mirror.conf) on :$P0"
mkdir -p "$W/nginx/logs"
sed -e "s#127.0.0.1:8081#127.0.0.1:$P1#; s#127.0.0.1:8082#127.0.0.1:$P2#" \
    -e "s#listen 80;#listen 127.0.0.1:$P0;#; s#/var/log/nginx/#$W/nginx/logs/#g" \
    deploy/nginx-hibp-mirror.conf >"$W/nginx/hibp-mirror.conf"
grep -q "127.0.0.1:$P1" "$W/nginx/hibp-mirror.conf" && grep -q "127.0.0.1:$P2" "$W/nginx/hibp-mirror.conf" \
    || fail "could not point the snippet's upstream at the replicas"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/main-error.log;
events { worker_connections 1024; }
http {
    include $W/nginx/hibp-mirror.conf;
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf"
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$P0/healthz" && break; sleep 0.05; done
curl -fsS -o /dev/null "http://127.0.0.1:$P0/healthz" || fail "nginx does not answer"

# Prefixes for the load: those present in the dump, plus as many absent ones.
cut -c1-5 "$W/a.txt" | uniq | shuf -n 256 --random-source=<(yes) >"$W/prefixes"
for _ in $(seq 64); do printf '%05X\n' $((RANDOM * 32 + RANDOM % 32)); done >>"$W/prefixes"
{
    echo "local prefixes = {"
    sed 's/.*/"&",/' "$W/prefixes"
    echo "}"
    echo 'request = function() return wrk.format("GET", "/range/" .. prefixes[math.random(#prefixes)]) end'
} >"$W/load.lua"

echo "== checking client"
cat >"$W/client.py" <<'EOF'
# Checks every answer through nginx: 200, an ETag naming version A or B of that prefix (ETags are
# per prefix: each is learnt from a server of each version at start), and a body equal to that
# version's lines for the prefix. Counts per phase (the phase file's content). Also sends
# /checkhash requests with full hashes whose appearance in any log is searched for afterwards.
import http.client, json, random, signal, sys, threading, time
port, port_a, port_b, a_txt, b_txt, prefix_file, phase_file, out, hashes_out = sys.argv[1:]
prefixes = [p.strip() for p in open(prefix_file) if p.strip()]
def tags_of(server_port):
    conn = http.client.HTTPConnection("127.0.0.1", int(server_port), timeout=10)
    tags = {}
    for p in prefixes:
        conn.request("GET", "/range/" + p)
        r = conn.getresponse(); r.read()
        tags[p] = r.getheader("ETag")
    return tags
tags_a, tags_b = tags_of(port_a), tags_of(port_b)
want = set(prefixes)
def load(path):
    bodies = {p: set() for p in prefixes}
    for line in open(path):
        if line[:5] in want:
            bodies[line[:5]].add(line[5:].strip())
    return bodies
bodies_a, bodies_b = load(a_txt), load(b_txt)
full = [line.split(":")[0] for line in open(a_txt) if line[:5] in want][:50]
open(hashes_out, "w").write("\n".join(full) + "\n")
open(out + ".ready", "w").close()
stats, lock, stop = {}, threading.Lock(), threading.Event()
phase = ["?"]
def phase_reader():
    while not stop.is_set():
        try: phase[0] = open(phase_file).read().strip()
        except OSError: pass
        time.sleep(0.1)
def note(key):
    with lock:
        s = stats.setdefault(phase[0], {})
        s[key] = s.get(key, 0) + 1
def worker(seed):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    n = 0
    while not stop.is_set():
        n += 1
        try:
            if n % 10 == 0:
                conn.request("GET", "/checkhash/" + rng.choice(full))
                r = conn.getresponse(); body = r.read()
                note("checkhash_ok" if r.status == 200 and b"timesseen" in body else "failed")
                continue
            p = rng.choice(prefixes)
            conn.request("GET", "/range/" + p)
            r = conn.getresponse(); body = r.read().decode()
            tag = r.getheader("ETag")
            if r.status != 200:
                note("failed"); continue
            if tag == tags_a[p]:
                version, want_lines = "A", bodies_a[p]
            elif tag == tags_b[p]:
                version, want_lines = "B", bodies_b[p]
            else:
                note("unknown_etag"); continue
            lines = set(l for l in body.split("\r\n") if l)
            if lines == want_lines:
                note("match_" + version)
            else:
                note("mismatch")
        except Exception:
            note("failed")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
threads = [threading.Thread(target=phase_reader)] + [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in threads: t.start()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.is_set(): time.sleep(0.1)
for t in threads: t.join()
json.dump(stats, open(out, "w"))
EOF
echo "warmup" >"$W/phase"
python3 "$W/client.py" "$P0" "$P1" "$PB" "$W/a.txt" "$W/b.txt" "$W/prefixes" "$W/phase" \
    "$W/client.json" "$W/hashes" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
for _ in $(seq 600); do [ -e "$W/client.json.ready" ] && break; sleep 0.1; done
[ -e "$W/client.json.ready" ] || fail "the checking client did not get ready (loading the dumps)"
kill "$pb"; wait "$pb" || true
sleep 1

run_wrk() { # PHASE -> wrk output in $W/wrk-PHASE.txt, in the background
    echo "$1" >"$W/phase"
    wrk -t2 -c"$WRK_CONNECTIONS" -d"${PHASE}s" --timeout 5s --latency -s "$W/load.lua" \
        "http://127.0.0.1:$P0" >"$W/wrk-$1.txt" 2>&1 &
    WRK_PID=$!
}
at() { # FRACTION_OF_PHASE T0: sleep until that point of the phase
    python3 -c "import time; time.sleep(max(0, $PHASE * $1 - (time.monotonic() - $2)))"
}
now() { python3 -c 'import time; print(time.monotonic())'; }
wait_for_tag() { # PORT TAG
    for _ in $(seq 200); do [ "$(etag_of "$1" "$PROBE")" = "$2" ] && return 0; sleep 0.05; done
    fail "replica on :$1 did not switch to $2"
}

echo "== phase baseline (${PHASE} s)"
run_wrk baseline; wait "$WRK_PID"

echo "== phase kill (${PHASE} s): SIGKILL replica 1 at 25%, restart it at 60%"
run_wrk kill; t0=$(now)
at 0.25 "$t0"
kill -KILL "$R1_PID"; wait "$R1_PID" 2>/dev/null || true
echo "  killed replica 1 (pid $R1_PID)"
at 0.6 "$t0"
start_replica 1 "$P1"
echo "  restarted replica 1 (pid $R1_PID)"
wait "$WRK_PID"

echo "== phase reload (${PHASE} s): new index renamed over replica 1's file at 25%, replica 2's at 55%"
cp "$W/b.idx" "$W/r1/next.idx"; cp "$W/b.idx" "$W/r2/next.idx"
run_wrk reload; t0=$(now)
at 0.25 "$t0"
mv "$W/r1/next.idx" "$W/r1/sha1.idx"; wait_for_tag "$P1" "$TAG_B"
echo "  replica 1 serves version B after $(python3 -c "print(f'{$(now) - $t0 - $PHASE * 0.25:.2f}')") s"
at 0.55 "$t0"
mv "$W/r2/next.idx" "$W/r2/sha1.idx"; wait_for_tag "$P2" "$TAG_B"
echo "  replica 2 serves version B"
wait "$WRK_PID"

echo "done" >"$W/phase"
kill -TERM "$CLIENT_PID"; wait "$CLIENT_PID"

echo
echo "== figures ($WRK_CONNECTIONS wrk connections + 4 checking connections through nginx; ${PHASE} s per phase)"
figures=0
python3 - "$W" <<'EOF' || figures=1
import json, re, sys
w = sys.argv[1]
client = json.load(open(f"{w}/client.json"))
def ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
bad = 0
print(f"{'phase':9} {'wrk req':>8} {'wrk failed':>10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} | {'checked':>7} {'failed':>6} {'A':>6} {'B':>6} {'mismatch':>8}")
for phase in ("baseline", "kill", "reload"):
    t = open(f"{w}/wrk-{phase}.txt").read()
    reqs = int(re.search(r"(\d+) requests in", t).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", t) or [0, 0])[1])
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    sock_n = sum(map(int, sock.groups())) if sock else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    lat = {m[0]: ms(m[1], m[2]) for m in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)}
    c = client.get(phase, {})
    checked = sum(c.values())
    cfail = c.get("failed", 0) + c.get("unknown_etag", 0)
    mismatch = c.get("mismatch", 0)
    bad += non2xx + sock_n + cfail + mismatch
    print(f"{phase:9} {reqs:8} {non2xx + sock_n:10} {rps:8.0f} {lat['50']:7.2f} {lat['99']:7.2f} | "
          f"{checked:7} {cfail:6} {c.get('match_A', 0):6} {c.get('match_B', 0):6} {mismatch:8}")
    if not checked:
        print(f"FAIL: the checking client got no answer in phase {phase}"); bad += 1
c = client.get("reload", {})
if not (c.get("match_A") and c.get("match_B")):
    print("note: the reload phase did not see both versions")
sys.exit(1 if bad else 0)
EOF
leaks=$(cat "$W"/nginx/logs/* "$W"/r1/serve.log "$W"/r2/serve.log | grep -c -i -F -f "$W/hashes" || true)
checkhash=$(python3 -c "import json; print(sum(p.get('checkhash_ok', 0) for p in json.load(open('$W/client.json')).values()))")
echo "/checkhash requests answered: $checkhash; lines with a full hash in nginx and replica logs: $leaks"
[ "$leaks" = 0 ] || fail "a full hash reached a log"
[ "$checkhash" -gt 0 ] || fail "no /checkhash request was answered"
retried=$(grep -c 'upstream=[^ ]*, ' "$W/nginx/logs/hibp-mirror.access.log" || true)
echo "requests nginx retried on the other replica: $retried; nginx error log lines: $(cat "$W"/nginx/logs/*error* | grep -c . || true)"
[ "$retried" -gt 0 ] || fail "no request was retried: the kill did not reach the traffic"
[ "$figures" = 0 ] || fail "failed requests or version mismatches (see the table)"
echo
echo "replicas test: passed"
