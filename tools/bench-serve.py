#!/usr/bin/env python3
"""Load benchmark: hibp-mirror against nginx serving the same /range bodies as static files.

Run through tools/bench-serve.sh, which installs wrk and nginx and builds the release binaries.
Every figure is compared with a baseline measured in the same run, alternating A B A B, because
these machines are shared and noisy. Nothing about speed is asserted; the script prints a table.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"

WRK_SCRIPT = r"""
local step = tonumber(os.getenv("BENCH_STEP"))
local count = tonumber(os.getenv("BENCH_COUNT"))
local hashes_file = os.getenv("BENCH_HASHES")
local hashes = {}
if hashes_file ~= nil and hashes_file ~= "" then
  for line in io.lines(hashes_file) do hashes[#hashes + 1] = line end
end
if os.getenv("BENCH_PADDING") == "1" then wrk.headers["Add-Padding"] = "true" end
if os.getenv("BENCH_GZIP") == "1" then wrk.headers["Accept-Encoding"] = "gzip" end
local seeded = false
request = function()
  if not seeded then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000))
    seeded = true
  end
  if #hashes > 0 then
    return wrk.format("GET", "/checkhash/" .. hashes[math.random(1, #hashes)])
  end
  return wrk.format("GET", string.format("/range/%05X", math.random(0, count - 1) * step))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.3f %.3f %d\n", summary.requests, summary.bytes,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""

NGINX_CONF = """
worker_processes auto;
user root;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  sendfile on;
  tcp_nopush on;
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  default_type text/plain;
  server {{
    listen 127.0.0.1:{port};
    root {ranges};
    location ~ "^/range/([0-9A-F]{{5}})$" {{ try_files /$1.txt =404; }}
    location /checkhash/ {{
      default_type application/json;
      return 200 '{{"passwordhash":"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8","timesseen":9545824,"severity":"critical"}}';
    }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def best_time(cmd, rounds, fresh=None):
    """Best wall time of `rounds` runs; `fresh` is deleted (untimed) before each run."""
    best = None
    for _ in range(rounds):
        if fresh is not None and fresh.exists():
            fresh.unlink()
            run(["sync"])
        start = time.perf_counter()
        run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def wait_answer(port, path, deadline=30.0):
    """Polls until the server answers `path`; returns seconds waited."""
    start = time.perf_counter()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    while time.perf_counter() - start < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(request)
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.0005)
    raise RuntimeError(f"nothing answered on port {port}")


def wrk(port, seconds, env):
    out = run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", "-s", env["BENCH_SCRIPT"],
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, env={**os.environ, **env},
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    requests, nbytes, duration_us, p50, p99, errors = line.split()[1:]
    secs = int(duration_us) / 1e6
    return {
        "requests": int(requests),
        "rps": int(requests) / secs,
        "mbps": int(nbytes) / secs / 1e6,
        "p50": float(p50),
        "p99": float(p99),
        "errors": int(errors),
    }


def sequential_latency(port, hashes, n):
    """p50/p99 milliseconds of `n` sequential keep-alive /checkhash requests."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for h in hashes[:n]:
        start = time.perf_counter()
        conn.request("GET", "/checkhash/" + h)
        resp = conn.getresponse()
        resp.read()
        times.append((time.perf_counter() - start) * 1000)
        if resp.status != 200:
            raise RuntimeError(f"/checkhash answered {resp.status}")
    conn.close()
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.99)]


def drop_caches():
    """Drops the page cache if permitted (root on Linux); returns whether it did."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def cpu_seconds(pids):
    """User plus system CPU seconds used so far by the processes `pids` (all their threads)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def nginx_workers(master_pid):
    """PIDs of nginx's worker processes (the master only supervises)."""
    try:
        children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN
        children = run(["pgrep", "-P", str(master_pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children]


def mean(runs, key):
    return sum(r[key] for r in runs) / len(runs)


def rss_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny data, 2-second runs (CI)")
    ap.add_argument("--prefixes", type=int, default=16384)
    ap.add_argument("--per-prefix", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if args.quick:
        args.prefixes, args.per_prefix, args.seconds, args.rounds = 64, 200, 2, 1
    step = (1 << 20) // args.prefixes

    data = Path(os.environ.get("BENCH_DIR", ROOT / "bench-data")) / f"serve-{args.prefixes}x{args.per_prefix}"
    data.mkdir(parents=True, exist_ok=True)
    dump, ranges, index = data / "dump.txt", data / "ranges", data / "sha1.idx"
    gen = [str(BIN / "hibp-gen")]
    shape = ["--prefixes", str(args.prefixes), "--per-prefix", str(args.per_prefix)]
    if not dump.exists():
        run(gen + ["dump", *shape, "-o", str(dump)])
    if not ranges.exists():
        run(gen + ["range-dir", *shape, "-o", str(ranges)])
    run(["cat", str(dump)], stdout=subprocess.DEVNULL)  # warm the page cache
    rounds = 1 if args.quick else 3
    wc_s = best_time(["wc", "-l", str(dump)], rounds)
    import_s = best_time([str(BIN / "hibp-mirror"), "import", "--quiet", str(dump), "-o", str(index)], rounds, fresh=index)
    records = sum(1 for _ in open(dump, "rb"))
    bytes_per_record = index.stat().st_size / max(records, 1)

    # Present hashes for /checkhash: a random sample of dump lines.
    rng = random.Random(1)
    hashes_file = data / "hashes.txt"
    with open(dump, "rb") as f:
        lines = f.read().split(b"\n")
    sample = [l.split(b":")[0].decode() for l in rng.sample([l for l in lines if l], min(20000, records))]
    hashes_file.write_text("\n".join(sample) + "\n")
    del lines

    work = Path(tempfile.mkdtemp(prefix="hibp-bench-"))
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    nginx_port, mirror_port = free_port(), free_port()
    (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=nginx_port, ranges=ranges))
    run(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)])
    wait_answer(nginx_port, "/range/00000")

    start = time.perf_counter()
    mirror = subprocess.Popen(
        [str(BIN / "hibp-mirror"), "serve", "--index", str(index), "--listen", f"127.0.0.1:{mirror_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        wait_answer(mirror_port, "/range/00000")
        first_answer_ms = (time.perf_counter() - start) * 1000

        base = {"BENCH_SCRIPT": str(script), "BENCH_STEP": str(step), "BENCH_COUNT": str(args.prefixes)}
        cases = {
            "nginx /range": (nginx_port, base),
            "mirror /range": (mirror_port, base),
            "mirror /range padded": (mirror_port, {**base, "BENCH_PADDING": "1"}),
            "mirror /range gzip": (mirror_port, {**base, "BENCH_GZIP": "1"}),
            "nginx return 200": (nginx_port, {**base, "BENCH_HASHES": str(hashes_file)}),
            "mirror /checkhash": (mirror_port, {**base, "BENCH_HASHES": str(hashes_file)}),
        }
        # Both sides start warm: every nginx body file and the whole index read once, then a
        # short untimed run each. (Without this, nginx's first round read its files from disk
        # while the just-written index was still cached: earlier headline ratios had that edge.)
        for path in sorted(ranges.rglob("*")):
            if path.is_file():
                path.read_bytes()
        run(["cat", str(index)], stdout=subprocess.DEVNULL)
        for port in (nginx_port, mirror_port):
            wrk(port, min(2, args.seconds), base)
        # Server CPU per request: wrk shares the two cores with the server, so req/s also depends
        # on how the scheduler splits them; CPU time per answered request does not.
        workers = nginx_workers(int((work / "nginx.pid").read_text()))
        servers = {nginx_port: workers, mirror_port: [mirror.pid]}
        results = {name: [] for name in cases}
        for r in range(args.rounds):
            for name, (port, env) in cases.items():
                before = cpu_seconds(servers[port])
                result = wrk(port, args.seconds, env)
                result["cpu_us"] = 1e6 * (cpu_seconds(servers[port]) - before) / max(result["requests"], 1)
                results[name].append(result)
                print(f"round {r + 1}: {name}: {results[name][-1]['rps']:.0f} req/s", file=sys.stderr)
        anon_kib = rss_kib(mirror.pid, "RssAnon")
        peak_kib = rss_kib(mirror.pid, "VmHWM")
        # /checkhash latency with a cold page cache, then warm, on hashes not used above.
        probe = sample[-1000:] if args.quick else sample[-5000:]
        cold = sequential_latency(mirror_port, probe, len(probe)) if drop_caches() else None
        warm = sequential_latency(mirror_port, probe, len(probe))
    finally:
        mirror.send_signal(signal.SIGTERM)
        mirror.wait(timeout=10)
        subprocess.run(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work), "-s", "quit"])
        time.sleep(0.2)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"data: {records} records over {args.prefixes} prefixes (~{args.per_prefix}/prefix), "
          f"dump {dump.stat().st_size / 1e9:.2f} GB; wrk -t2 -c64 -d{args.seconds}s, {args.rounds} alternating rounds")
    print(f"{'case':<22} {'req/s':>10} {'MB/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>10}  ratio (req/s; CPU per request)")
    baselines = {
        "nginx /range": None, "mirror /range": "nginx /range", "mirror /range padded": "nginx /range",
        "mirror /range gzip": "nginx /range", "nginx return 200": None, "mirror /checkhash": "nginx return 200",
    }
    for name, runs in results.items():
        ratio = ""
        if baselines[name]:
            baseline = results[baselines[name]]
            ratio = (f"{mean(runs, 'rps') / mean(baseline, 'rps'):.2f}x {baselines[name]}; "
                     f"CPU {mean(runs, 'cpu_us') / mean(baseline, 'cpu_us'):.2f}x")
        print(f"{name:<22} {mean(runs, 'rps'):>10.0f} {mean(runs, 'mbps'):>9.0f} {mean(runs, 'p50'):>8.2f} "
              f"{mean(runs, 'p99'):>8.2f} {sum(r['errors'] for r in runs):>7} {mean(runs, 'cpu_us'):>10.1f}  {ratio}")
    print()
    print(f"import: {import_s:.2f} s vs wc -l {wc_s:.2f} s = {import_s / max(wc_s, 1e-9):.1f}x (best of {rounds}, with fsync)")
    print(f"index: {bytes_per_record:.2f} bytes per record")
    print(f"server: anonymous RSS after load {anon_kib / 1024:.1f} MiB, peak RSS (incl. mapped index pages) {peak_kib / 1024:.1f} MiB")
    print(f"server: first answered request {first_answer_ms:.1f} ms after process start")
    if cold:
        print(f"/checkhash sequential latency, {len(probe)} requests: cold page cache p50 {cold[0]:.3f} ms "
              f"p99 {cold[1]:.3f} ms; warm p50 {warm[0]:.3f} ms p99 {warm[1]:.3f} ms")
    else:
        print(f"/checkhash sequential latency (warm only; dropping caches not permitted): "
              f"p50 {warm[0]:.3f} ms p99 {warm[1]:.3f} ms")


if __name__ == "__main__":
    main()
