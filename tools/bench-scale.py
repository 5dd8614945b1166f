#!/usr/bin/env python3
"""Cold-cache benchmark of `hibp-mirror serve` on a full-size index, against fio on the same file.

Run through tools/bench-scale.sh, which installs wrk and fio and builds the release binaries.
Generates a corpus with `hibp-gen corpus` piped into `hibp-mirror import -` (never a dump on
disk), then, with the page cache dropped before each measurement:
  - fio 4 KiB random reads at QD1 and QD64 and 64 KiB at QD64 (--direct=1): what the disk allows;
  - fio 4 KiB reads through the page cache by 64 threads (the path a mapped index takes), with
    the machine's CPU time per read;
  - a one-read server: a minimal HTTP server that does one direct 4 KiB read per request, seen
    by the same client as hibp-mirror (what a request/response round trip adds to fio QD1);
  - start to first answer; sequential /checkhash p50/p99; 64-connection /checkhash and /range;
  - the same server figures inside a memory-limited cgroup (page cache is charged to it): start-up
    from a cold cache, then random /range requests until the cgroup is 90% full, then the rest
    measured full, without dropping the cache (every page read then evicts one: the steady state
    of a host with less memory than the index).
Prints every figure and its ratio to the matching fio figure. Nothing is asserted.
Needs root (drop_caches, cgroups).
"""

import argparse
import contextlib
import json
import mmap
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
CGROUP_NAME = "hibp-bench-scale"

WRK_SCRIPT = r"""
local mode = os.getenv("BENCH_MODE")
local hex = "0123456789ABCDEF"
local seeded = false
local function rhex(n)
  local t = {}
  for i = 1, n do
    local k = math.random(1, 16)
    t[i] = hex:sub(k, k)
  end
  return table.concat(t)
end
request = function()
  if not seeded then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000) + math.random(1, 1000000))
    seeded = true
  end
  if mode == "range" then
    return wrk.format("GET", "/range/" .. rhex(5))
  end
  if mode == "range-hot" then
    return wrk.format("GET", "/range/00000")
  end
  if mode == "checkhash-hot" then
    return wrk.format("GET", "/checkhash/00000" .. rhex(35))
  end
  return wrk.format("GET", "/checkhash/" .. rhex(40))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.3f %.3f %d %d\n", summary.requests, summary.bytes,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, e.timeout))
end
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def drop_caches():
    run(["sync"])
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def generate(args, index):
    """hibp-gen corpus | hibp-mirror import -: the dump only ever exists in the pipe."""
    log(f"generating {args.records:,} records into {index} (piped, no dump on disk)")
    start = time.perf_counter()
    gen = subprocess.Popen(
        [str(BIN / "hibp-gen"), "corpus", "--records", str(args.records)],
        stdout=subprocess.PIPE,
    )
    imp = subprocess.run(
        [str(args.binary), "import", "-", "--output", str(index), "--no-fsync", "--quiet"],
        stdin=gen.stdout, capture_output=True, text=True,
    )
    gen.stdout.close()
    if gen.wait() != 0 or imp.returncode != 0:
        sys.exit(f"generation failed: {imp.stderr.strip()}")
    secs = time.perf_counter() - start
    size = index.stat().st_size
    log(imp.stderr.strip())
    print(f"generated + imported {args.records:,} records in {secs:.0f} s "
          f"({args.records / secs / 1e6:.1f} M records/s), index {size / 1e9:.1f} GB")


def machine_busy():
    """CPU seconds spent busy so far by all CPUs together (user, nice, system, irq and softirq;
    not idle, iowait or steal), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, fields)
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def fio(index, bs, qd, seconds, buffered=False):
    """fio random reads on the index file itself: direct (bypassing the page cache) with `qd`
    reads in flight, or, `buffered`, through the page cache by `qd` threads reading one block at
    a time, as page faults on a mapping do."""
    drop_caches()
    if buffered:
        engine = ["--ioengine=psync", f"--numjobs={qd}", "--thread", "--group_reporting",
                  "--direct=0", "--fadvise_hint=random"]
    else:
        engine = [f"--iodepth={qd}", "--ioengine=libaio", "--direct=1"]
    busy = machine_busy()
    out = run(
        # --randrepeat=0: fresh offsets every run, as the server's random requests are. fio's
        # default repeats one sequence, whose blocks the VM host then serves from its own cache
        # (87-119k IOPS at QD64 against 27k for fresh offsets, minutes apart, 2026-11-23).
        ["fio", "--name=r", f"--filename={index}", "--readonly", "--rw=randread", f"--bs={bs}",
         "--randrepeat=0", f"--runtime={seconds}", "--time_based", "--output-format=json"]
        + engine,
        capture_output=True, text=True,
    ).stdout
    busy = machine_busy() - busy
    job = json.loads(out)["jobs"][0]["read"]
    pct = job["clat_ns"]["percentile"]
    return {"iops": job["iops"], "p50": pct["50.000000"] / 1e6, "p99": pct["99.000000"] / 1e6,
            "cpu_us": busy / max(job["total_ios"], 1) * 1e6}


ONE_READ_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def one_read_server(index, port):
    """Serves HTTP/1.1 on 127.0.0.1:`port` forever, one connection at a time: every request gets
    `{}` after one direct 4 KiB read at a random offset of `index`. Nothing else happens per
    request, so a client sees the disk's latency plus the round trip and the wake-ups around it
    (what fio QD1, which never leaves its loop, does not pay)."""
    fd = os.open(index, os.O_RDONLY | os.O_DIRECT)
    blocks = os.fstat(fd).st_size // 4096
    buf = mmap.mmap(-1, 4096)  # page aligned, as O_DIRECT requires
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        # wrk resets its connections when it stops: that ends this one, not the server.
        with conn, contextlib.suppress(ConnectionError):
            while data := conn.recv(65536):
                pending += data
                while (end := pending.find(b"\r\n\r\n")) >= 0:
                    pending = pending[end + 4:]
                    os.preadv(fd, [buf], random.randrange(blocks) * 4096)
                    conn.sendall(ONE_READ_RESPONSE)


def one_read_reference(index, seconds, script):
    """Sequential latency of the one-read server under the same `wrk -t1 -c1` as hibp-mirror."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--one-read-server", str(index), str(port)])
    try:
        deadline = time.perf_counter() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    sys.exit("the one-read server did not start")
                time.sleep(0.05)
        return wrk(port, "checkhash", 1, 1, seconds, script, index)
    finally:
        proc.kill()
        proc.wait()


class Cgroup:
    """A memory-limited cgroup: v1 (`memory/NAME/memory.limit_in_bytes`), v2 (`NAME/memory.max`),
    or `systemd-run --scope -p MemoryMax=` where systemd runs. `wrap(cmd)` returns a command that
    runs `cmd` inside it."""

    def __init__(self, limit):
        self.limit = limit
        self.path = None
        self.systemd = False
        v1 = Path("/sys/fs/cgroup/memory")
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if Path("/run/systemd/system").is_dir() and shutil.which("systemd-run"):
            self.systemd = True
            self.kind = "systemd-run MemoryMax"
        elif v2.exists():
            self.path = Path("/sys/fs/cgroup") / CGROUP_NAME
            self.path.mkdir(exist_ok=True)
            (self.path / "memory.max").write_text(f"{limit}\n")
            (self.path / "memory.swap.max").write_text("0\n") if (self.path / "memory.swap.max").exists() else None
            self.kind = "cgroup v2 memory.max"
        elif v1.is_dir():
            self.path = v1 / CGROUP_NAME
            self.path.mkdir(exist_ok=True)
            (self.path / "memory.limit_in_bytes").write_text(f"{limit}\n")
            self.kind = "cgroup v1 memory.limit_in_bytes"
        else:
            raise RuntimeError("no memory cgroup controller found")

    def wrap(self, cmd):
        if self.systemd:
            return ["systemd-run", "--quiet", "--scope", "-p", f"MemoryMax={self.limit}",
                    "-p", "MemorySwapMax=0"] + cmd
        procs = self.path / "cgroup.procs"
        # The shell moves itself into the cgroup, then becomes the server (same PID).
        return ["sh", "-c", f'echo $$ > {procs} && exec "$@"', "sh"] + cmd

    def usage(self):
        """Bytes charged to the cgroup now (page cache included), or None under systemd-run."""
        for name in ("memory.usage_in_bytes", "memory.current"):
            if self.path and (self.path / name).exists():
                return int((self.path / name).read_text())
        return None

    def peak(self):
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if self.path and (self.path / name).exists():
                return int((self.path / name).read_text())
        return None

    def remove(self):
        if self.path:
            try:
                self.path.rmdir()
            except OSError:
                pass


class Server:
    def __init__(self, binary, index, workers, extra, wrap=None):
        self.port = free_port()
        cmd = [str(binary), "serve", "--index", str(index), "--listen", f"127.0.0.1:{self.port}",
               "--access-log", "false", "--watch-interval", "0"] + extra
        if workers:
            cmd += ["--workers", str(workers)]
        if wrap:
            cmd = wrap(cmd)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def first_answer(self, deadline=60.0):
        """Seconds from process start to the first 200 to a /checkhash."""
        path = "/checkhash/" + "".join(random.choice("0123456789ABCDEF") for _ in range(40))
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        while time.perf_counter() - self.started < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"server exited: {self.proc.stderr.read().decode()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.sendall(request)
                    if s.recv(12).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.0005)
        sys.exit("server never answered")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cached_bytes(index):
    """Bytes of `index` in the page cache (util-linux fincore), or None without fincore."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(index)],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return None


def wrk(port, mode, threads, conns, seconds, script, index, drop=True):
    if drop:
        drop_caches()
    before = cached_bytes(index)
    busy = machine_busy()
    out = run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         "-s", script, f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, env={**os.environ, "BENCH_MODE": mode},
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    requests, _nbytes, duration_us, p50, p99, errors, timeouts = line.split()[1:]
    secs = int(duration_us) / 1e6
    # The whole machine's CPU time per request: server, client and kernel (I/O, loopback TCP).
    cpu_us = (machine_busy() - busy) / max(int(requests), 1) * 1e6
    after = cached_bytes(index)
    # Index bytes brought into the page cache per request: what the disk had to deliver. A
    # readahead regression shows here first (e.g. 114 KB per /checkhash instead of one page).
    # Undefined when the cache was not dropped first: a full cache evicts as much as it reads.
    read = (after - before) / max(int(requests), 1) if drop and None not in (before, after) else None
    return {"rps": int(requests) / secs, "p50": float(p50), "p99": float(p99),
            "errors": int(errors), "timeouts": int(timeouts), "read_per_request": read,
            "cpu_us": cpu_us}


def fill(port, script, index, cgroup, share=0.9, limit_s=300):
    """Random /range requests until the page cache has filled `share` of the cgroup's limit (or
    `limit_s` passes): from then on every new page read evicts one, the steady state of a host
    whose memory is smaller than the index. Returns the seconds it took and the share reached."""
    start = time.perf_counter()
    while (used := cgroup.usage() or 0) < share * cgroup.limit:
        if time.perf_counter() - start > limit_s:
            break
        wrk(port, "range", 2, 64, 5, script, index, drop=False)
        # A server that reads around the page cache (`--cold-reads direct`) never fills it.
        if (cgroup.usage() or 0) < used + 16 * 2**20:
            break
    return time.perf_counter() - start, (cgroup.usage() or 0) / cgroup.limit


def caching_args(serve_args):
    """`serve_args` without `--cold-reads` (so the server reads through the page cache)."""
    out, skip = [], False
    for arg in serve_args:
        if skip:
            skip = False
        elif arg == "--cold-reads":
            skip = True
        elif not arg.startswith("--cold-reads="):
            out.append(arg)
    return out


def measure(args, binary, index, script, label, cgroup=None):
    """Start-up, sequential and 64-connection figures for one server configuration. Without a
    cgroup, each figure starts from an empty page cache. In `cgroup`, start-up is measured cold,
    then the cgroup is filled and the rest measured full, without dropping the cache."""
    drop_caches()
    load = os.getloadavg()[0]
    server = Server(binary, index, args.workers, args.serve_arg, cgroup.wrap if cgroup else None)
    filled = None
    try:
        startup = server.first_answer()
        # Only an index larger than the limit can fill it.
        full = (cgroup is not None and cgroup.usage() is not None
                and Path(index).stat().st_size > cgroup.limit)
        if full:
            filled = fill(server.port, script, index, cgroup)
            log(f"{label}: cgroup filled to {filled[1]:.0%} of its limit in {filled[0]:.0f} s")

        def run_wrk(mode, threads, conns):
            return wrk(server.port, mode, threads, conns, args.seconds, script, index,
                       drop=not full)

        seq = run_wrk("checkhash", 1, 1)
        check = run_wrk("checkhash", 2, 64)
        rng = run_wrk("range", 2, 64)
        # The same server with no I/O at all: every hash in one prefix, cached after the first
        # few requests. What this machine's CPU allows, the ceiling for the cold figures. A
        # server reading around the page cache would read that prefix from disk every time: the
        # ceiling runs use one that caches, otherwise configured the same.
        caching = caching_args(args.serve_arg)
        if caching != args.serve_arg:
            server.stop()
            server = Server(binary, index, args.workers, caching,
                            cgroup.wrap if cgroup else None)
            server.first_answer()
        hot = run_wrk("checkhash-hot", 2, 64)
        range_hot = run_wrk("range-hot", 2, 64)
    finally:
        server.stop()
    log(f"{label}: done (load average {load:.1f} -> {os.getloadavg()[0]:.1f})")
    if filled:
        label += f", full ({filled[1]:.0%} after {filled[0]:.0f} s)"
    return {"label": label, "startup_ms": startup * 1e3, "seq": seq, "check": check, "range": rng,
            "hot": hot, "range_hot": range_hot, "load": load}


def report(results, fio_figs, args):
    q1, q64, b64 = fio_figs["4k-qd1"], fio_figs["4k-qd64"], fio_figs["64k-qd64"]
    cached64, one = fio_figs["4k-cached-64"], fio_figs["one-read"]
    cores = os.cpu_count()
    print()
    print(f"fio on the index (direct, {args.seconds} s each): "
          f"4 KiB QD1 {q1['iops']:,.0f} IOPS p50 {q1['p50']:.2f} ms p99 {q1['p99']:.2f} ms; "
          f"4 KiB QD64 {q64['iops']:,.0f} IOPS p99 {q64['p99']:.2f} ms "
          f"({q64['cpu_us']:.1f} us of CPU per read); "
          f"64 KiB QD64 {b64['iops']:,.0f} IOPS p99 {b64['p99']:.2f} ms")
    print(f"fio 4 KiB through the page cache, 64 threads: {cached64['iops']:,.0f} IOPS, "
          f"{cached64['cpu_us']:.1f} us of CPU per read")
    print(f"one-read server (one direct 4 KiB read per request), wrk -t1 -c1: "
          f"p50 {one['p50']:.2f} ms, p99 {one['p99']:.2f} ms ({one['p99'] / q1['p99']:.1f}x fio QD1)")
    print()
    print("| measure (cold cache) | " + " | ".join(r["label"] for r in results) + " | target |")
    print("|---" * (len(results) + 2) + "|")

    def row(name, fmt, target):
        print(f"| {name} | " + " | ".join(fmt(r) for r in results) + f" | {target} |")

    row("load average at start (2 cores)", lambda r: f"{r['load']:.1f}", "")
    row("start to first answer", lambda r: f"{r['startup_ms']:.0f} ms", "<= 100 ms")
    row("sequential /checkhash p50 / p99",
        lambda r: f"{r['seq']['p50']:.2f} / {r['seq']['p99']:.2f} ms "
                  f"(p99 {r['seq']['p99'] / q1['p99']:.1f}x fio QD1, "
                  f"{r['seq']['p99'] / one['p99']:.1f}x the one-read server)",
        f"p99 <= 2x fio QD1 p99 ({q1['p99']:.2f} ms)")
    row("/checkhash, 64 conns",
        lambda r: f"{r['check']['rps']:,.0f} req/s ({r['check']['rps'] / q64['iops']:.3f}x fio), "
                  f"p99 {r['check']['p99']:.1f} ms" + errs(r["check"]),
        f">= 0.5x fio 4 KiB QD64 ({q64['iops']:,.0f} IOPS), p99 < 100 ms")
    row("/range, 64 conns",
        lambda r: f"{r['range']['rps']:,.0f} req/s ({r['range']['rps'] / b64['iops']:.3f}x fio), "
                  f"p99 {r['range']['p99']:.1f} ms" + errs(r["range"]),
        f">= 0.5x fio 64 KiB QD64 ({b64['iops']:,.0f} IOPS), p99 < 100 ms")
    row("/checkhash, 64 conns, cached (one prefix: the CPU ceiling, no I/O)",
        lambda r: f"{r['hot']['rps']:,.0f} req/s; cold is {r['check']['rps'] / r['hot']['rps']:.2f}x this",
        "")
    row("/range, 64 conns, cached (one prefix)",
        lambda r: f"{r['range_hot']['rps']:,.0f} req/s; cold is "
                  f"{r['range']['rps'] / r['range_hot']['rps']:.2f}x this", "")
    row("machine CPU per request, cold / cached (server, client and kernel)",
        lambda r: f"/checkhash {r['check']['cpu_us']:.0f} / {r['hot']['cpu_us']:.0f} us; "
                  f"/range {r['range']['cpu_us']:.0f} / {r['range_hot']['cpu_us']:.0f} us", "")

    def bound(cached, read):
        # Client and server share the machine: a cold request costs at least a cached one plus
        # its read, so the cores allow at most this many per second.
        return cores * 1e6 / (cached["cpu_us"] + read["cpu_us"])

    row(f"/checkhash ceiling from CPU: {cores} cores / (cached request + one read), "
        "the read through the page cache / direct",
        lambda r: f"{bound(r['hot'], cached64):,.0f} / {bound(r['hot'], q64):,.0f} req/s "
                  f"({bound(r['hot'], cached64) / q64['iops']:.2f}x / "
                  f"{bound(r['hot'], q64) / q64['iops']:.2f}x fio QD64); cold reaches "
                  f"{r['check']['rps'] / bound(r['hot'], cached64):.2f}x the first",
        "")
    row(f"/range ceiling from CPU: {cores} cores / (cached /range + one direct 64 KiB read)",
        lambda r: f"{bound(r['range_hot'], b64):,.0f} req/s "
                  f"({bound(r['range_hot'], b64) / b64['iops']:.2f}x fio 64 KiB QD64); cold "
                  f"reaches {r['range']['rps'] / bound(r['range_hot'], b64):.2f}x this", "")
    row("index bytes read per request (/checkhash, /range)",
        lambda r: f"{kib(r['check']['read_per_request'])} / {kib(r['range']['read_per_request'])}",
        "4 KiB / ~40 KiB (one page; one prefix's records)")
    print(json.dumps({"fio": fio_figs, "results": results}), file=sys.stderr)


def kib(value):
    return "n/a" if value is None else f"{value / 1024:.1f} KiB"


def errs(fig):
    return f", {fig['errors']} errors ({fig['timeouts']} timeouts)" if fig["errors"] else ""


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--one-read-server":
        one_read_server(sys.argv[2], int(sys.argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=float, default=2.1e9)
    p.add_argument("--quick", action="store_true", help="small corpus, short runs (CI)")
    p.add_argument("--seconds", type=int, default=15, help="length of each wrk and fio run")
    p.add_argument("--dir", type=Path, default=ROOT / "target" / "bench-scale",
                   help="where the index is written (needs ~19 bytes per record)")
    p.add_argument("--index", type=Path, help="reuse this index instead of generating one")
    p.add_argument("--keep", action="store_true", help="keep the generated index")
    p.add_argument("--binary", type=Path, default=BIN / "hibp-mirror")
    p.add_argument("--label", default="hibp-mirror")
    p.add_argument("--baseline-binary", type=Path,
                   help="also measure this build, alternating with --binary, for a before/after "
                        "table from one run")
    p.add_argument("--baseline-label", default="baseline")
    p.add_argument("--workers", type=int, help="serve --workers")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="extra argument for serve (repeat)")
    p.add_argument("--memory-limit", default="4G",
                   help="memory limit of the cgroup run (bytes, or with K/M/G); 'none' skips it")
    p.add_argument("--skip-fio", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.records = min(args.records, 2e7)
        args.seconds = 2
    args.records = int(args.records)
    if os.geteuid() != 0:
        sys.exit("bench-scale needs root: it drops the page cache and creates a cgroup")

    generated = args.index is None
    if generated:
        args.dir.mkdir(parents=True, exist_ok=True)
        index = args.dir / "scale.idx"
        free = shutil.disk_usage(args.dir).free
        if free < args.records * 19 * 1.05:
            sys.exit(f"{args.dir} has {free / 1e9:.0f} GB free; the index needs "
                     f"{args.records * 19 / 1e9:.0f} GB")
        generate(args, index)
    else:
        index = args.index
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        if args.skip_fio:
            nan = float("nan")
            zero = {"iops": nan, "p50": nan, "p99": nan, "cpu_us": nan}
            fio_figs = {k: zero for k in ("4k-qd1", "4k-qd64", "64k-qd64", "4k-cached-64",
                                          "one-read")}
        else:
            fio_figs = {
                "4k-qd1": fio(index, "4k", 1, args.seconds),
                "4k-qd64": fio(index, "4k", 64, args.seconds),
                "64k-qd64": fio(index, "64k", 64, args.seconds),
                "4k-cached-64": fio(index, "4k", 64, args.seconds, buffered=True),
                "one-read": one_read_reference(index, args.seconds, script),
            }
        builds = [(args.binary, args.label)]
        if args.baseline_binary:
            builds.insert(0, (args.baseline_binary, args.baseline_label))
        results = [measure(args, b, index, script, label) for b, label in builds]
        if args.memory_limit != "none":
            limit = parse_size(args.memory_limit)
            for binary, label in builds:
                try:
                    cgroup = Cgroup(limit)
                except (OSError, RuntimeError) as e:
                    # Containers without a writable memory controller: say so, keep the rest.
                    log(f"memory-limited run skipped: cannot create a cgroup ({e})")
                    break
                try:
                    r = measure(args, binary, index, script,
                                f"{label}, {args.memory_limit} limit", cgroup)
                    peak = cgroup.peak()
                    if peak:
                        r["label"] += f" (peak {peak / 2**30:.1f} GiB)"
                    results.append(r)
                finally:
                    cgroup.remove()
        report(results, fio_figs, args)
    finally:
        os.unlink(script)
        if generated and not args.keep:
            index.unlink(missing_ok=True)


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1:].upper()])
    return int(text)


if __name__ == "__main__":
    main()
