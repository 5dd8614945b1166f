//! `hibp-mirror sync` end to end: the real binary against a fault-injecting upstream on
//! 127.0.0.1 that serves generated (`Synth`) ranges.

#[path = "../tools/synth.rs"]
mod synth;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use hibp_mirror::{HashKind, Index, Prefix};
use synth::Synth;

/// One injected misbehaviour, served instead of (or before) the real answer.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 500.
    ServerError,
    /// Answer 429 with `Retry-After: seconds`.
    TooMany(u64),
    /// Close the connection without an answer.
    Drop,
    /// Answer 200 with LF line endings and a padding row.
    Malformed,
}

/// What the upstream serves.
struct Config {
    /// Hash kind served; requests for the other kind count as violations.
    kind: HashKind,
    /// The corpus.
    synth: Synth,
    /// Prefixes served from `changed_synth` instead (a changed upstream).
    changed: HashSet<u32>,
    /// The corpus of changed prefixes.
    changed_synth: Synth,
    /// Faults per prefix, consumed one per request.
    faults: Mutex<HashMap<u32, VecDeque<Fault>>>,
    /// Prefixes whose body is always malformed.
    always_bad: HashSet<u32>,
    /// Prefixes that never get an answer.
    hang: HashSet<u32>,
}

impl Config {
    fn new(kind: HashKind, synth: Synth) -> Config {
        Config {
            kind,
            changed_synth: synth.clone(),
            synth,
            changed: HashSet::new(),
            faults: Mutex::new(HashMap::new()),
            always_bad: HashSet::new(),
            hang: HashSet::new(),
        }
    }

    fn truth(&self, prefix: u32) -> &Synth {
        if self.changed.contains(&prefix) {
            &self.changed_synth
        } else {
            &self.synth
        }
    }

    fn faults_left(&self) -> usize {
        self.faults
            .lock()
            .unwrap()
            .values()
            .map(VecDeque::len)
            .sum()
    }
}

/// What the upstream saw.
#[derive(Default)]
struct Stats {
    /// Every request.
    requests: AtomicU64,
    /// 200s with the real body.
    ok: AtomicU64,
    /// 304s.
    not_modified: AtomicU64,
    /// Prefixes that got a 200 with their real body.
    served: Mutex<HashSet<u32>>,
    /// Requests without the User-Agent, without gzip, with Add-Padding or for the wrong mode.
    violations: AtomicU64,
}

struct Upstream {
    addr: SocketAddr,
    stats: Arc<Stats>,
    config: Arc<Config>,
    /// Keeps the server's runtime alive.
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    fn start(config: Config) -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let config = Arc::new(config);
        let (s, c) = (stats.clone(), config.clone());
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (s, c) = (s.clone(), c.clone());
                        async move { handle(&c, &s, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            stats,
            config,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self, counter: fn(&Stats) -> &AtomicU64) -> u64 {
        counter(&self.stats).load(Ordering::SeqCst)
    }
}

fn etag(synth: &Synth, prefix: u32) -> String {
    format!("\"{:x}-{prefix:05X}\"", synth.seed)
}

async fn handle(
    config: &Config,
    stats: &Stats,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    let headers = req.headers();
    let ua_ok = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("hibp-mirror/"));
    let gzip_ok = headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let wants_ntlm = req.uri().query() == Some("mode=ntlm");
    if !ua_ok
        || !gzip_ok
        || headers.contains_key("add-padding")
        || wants_ntlm != (config.kind == HashKind::Ntlm)
    {
        stats.violations.fetch_add(1, Ordering::SeqCst);
    }
    let Some(prefix) = req
        .uri()
        .path()
        .strip_prefix("/range/")
        .and_then(|p| Prefix::parse(p.as_bytes()).ok())
        .map(|p| p.value())
    else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let fault = config
        .faults
        .lock()
        .unwrap()
        .get_mut(&prefix)
        .and_then(VecDeque::pop_front);
    let synth = config.truth(prefix);
    let mut body = synth.range_body(prefix);
    match fault {
        Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::ServerError) => return Ok(status(StatusCode::INTERNAL_SERVER_ERROR)),
        Some(Fault::TooMany(seconds)) => {
            let mut resp = status(StatusCode::TOO_MANY_REQUESTS);
            resp.headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
            return Ok(resp);
        }
        Some(Fault::Drop) => return Err(std::io::Error::other("dropping the connection")),
        Some(Fault::Malformed) => body = malformed(&body),
        None => {}
    }
    if config.always_bad.contains(&prefix) {
        body = malformed(&body);
    }
    if config.hang.contains(&prefix) {
        std::future::pending::<()>().await;
    }
    let tag = etag(synth, prefix);
    if fault.is_none()
        && req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == tag.as_str())
    {
        stats.not_modified.fetch_add(1, Ordering::SeqCst);
        return Ok(status(StatusCode::NOT_MODIFIED));
    }
    if !matches!(fault, Some(Fault::Malformed)) && !config.always_bad.contains(&prefix) {
        // A slow answer counts too (the client may have given up on it already).
        stats.ok.fetch_add(1, Ordering::SeqCst);
        stats.served.lock().unwrap().insert(prefix);
    }
    // Even prefixes go gzipped, odd ones as identity: the client must store both compressed.
    let mut resp = if prefix % 2 == 0 {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        let mut resp = Response::new(Full::new(Bytes::from(enc.finish().unwrap())));
        resp.headers_mut()
            .insert("content-encoding", "gzip".parse().unwrap());
        resp
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    resp.headers_mut().insert("etag", tag.parse().unwrap());
    Ok(resp)
}

/// A body an upstream must never send: LF endings and a padding row.
fn malformed(body: &str) -> String {
    let padding = "0".repeat(35);
    format!("{}\n{padding}:0", body.replace("\r\n", "\n"))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = code;
    resp
}

fn sync_cmd(upstream: &Upstream, dir: &Path, range: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"));
    cmd.arg("sync")
        .arg("--upstream")
        .arg(upstream.url())
        .arg("--output")
        .arg(dir.join("out.idx"))
        .arg("--state")
        .arg(dir.join("state"))
        .args([
            "--prefixes",
            range,
            "--quiet",
            "--retry-base-ms",
            "10",
            "--concurrency",
            "8",
        ])
        .args(extra);
    cmd
}

fn run(mut cmd: Command) -> Output {
    let out = cmd.output().unwrap();
    eprintln!("stdout: {}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Asserts that the index at `path` holds exactly the upstream's entries for prefixes
/// `0..=last` (minus `gaps`, which must be empty) and nothing else.
fn assert_index_matches(path: &Path, config: &Config, last: u32, gaps: &[u32]) {
    // SAFETY: the index was written by this test into its own temporary directory and is not
    // modified while mapped.
    let index = unsafe { Index::open_path(path) }.unwrap();
    index.verify().unwrap();
    assert_eq!(index.kind(), config.kind);
    let hash_len = config.kind.byte_len();
    let mut total = 0u64;
    for value in 0..=last {
        let prefix = Prefix::new(value).unwrap();
        let got: Vec<(Vec<u8>, u32)> = index
            .range(prefix)
            .iter()
            .map(|e| (e.hash(prefix, config.kind).as_bytes().to_vec(), e.count()))
            .collect();
        if gaps.contains(&value) {
            assert!(got.is_empty(), "gap {prefix} should be empty");
            continue;
        }
        let want: Vec<(Vec<u8>, u32)> = config
            .truth(value)
            .prefix_entries(value)
            .into_iter()
            .map(|(h, c)| (h[..hash_len].to_vec(), c))
            .collect();
        assert_eq!(got, want, "prefix {prefix}");
        total += want.len() as u64;
    }
    assert_eq!(index.len(), total, "no entries outside the synced range");
}

#[test]
fn sync_survives_faults_and_second_run_fetches_only_changes() {
    const LAST: u32 = 0x3FF;
    let range = "00000-003FF";
    let synth = Synth::new(20, 7, 3, 40);
    let config = Config::new(HashKind::Sha1, synth.clone());
    config.faults.lock().unwrap().extend([
        (5, VecDeque::from([Fault::Slow(Duration::from_secs(3))])),
        (6, VecDeque::from([Fault::Slow(Duration::from_millis(200))])),
        (10, VecDeque::from([Fault::ServerError, Fault::ServerError])),
        (20, VecDeque::from([Fault::TooMany(1)])),
        (30, VecDeque::from([Fault::Drop])),
        (40, VecDeque::from([Fault::Malformed])),
        (0, VecDeque::from([Fault::ServerError])),
    ]);
    let upstream = Upstream::start(config);
    let dir = tempfile::tempdir().unwrap();

    let out = run(sync_cmd(&upstream, dir.path(), range, &["--timeout", "1"]));
    assert!(out.status.success());
    assert_eq!(upstream.config.faults_left(), 0, "every fault was served");
    assert_eq!(upstream.count(|s| &s.violations), 0);
    assert_eq!(
        upstream.stats.served.lock().unwrap().len(),
        (LAST + 1) as usize
    );
    assert_eq!(upstream.count(|s| &s.not_modified), 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1024 fetched, 0 not modified"), "{stdout}");
    assert_index_matches(&dir.path().join("out.idx"), &upstream.config, LAST, &[]);

    // Second run: three prefixes changed upstream; only they cost a body.
    let mut config = Config::new(HashKind::Sha1, synth);
    config.changed = HashSet::from([3, 300, LAST]);
    config.changed_synth = Synth::new(20, 8, 1, 40);
    let changed = Upstream::start(config);
    let out = run(sync_cmd(&changed, dir.path(), range, &[]));
    assert!(out.status.success());
    assert_eq!(changed.count(|s| &s.ok), 3);
    assert_eq!(changed.count(|s| &s.not_modified), u64::from(LAST + 1) - 3);
    assert_eq!(changed.count(|s| &s.violations), 0);
    assert_index_matches(&dir.path().join("out.idx"), &changed.config, LAST, &[]);
}

#[test]
fn persistent_failure_blocks_the_build_unless_gaps_are_allowed() {
    const LAST: u32 = 0xFF;
    let range = "00000-000FF";
    let mut config = Config::new(HashKind::Ntlm, Synth::new(16, 11, 2, 30));
    config.always_bad = HashSet::from([0x42]);
    let upstream = Upstream::start(config);
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("out.idx");

    let out = run(sync_cmd(
        &upstream,
        dir.path(),
        range,
        &["--ntlm", "--max-tries", "3"],
    ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("prefix 00042 failed: gave up after 3 tries: malformed body"),
        "{stderr}"
    );
    assert!(!index.exists(), "no index without every prefix");
    assert_eq!(upstream.count(|s| &s.violations), 0);

    let out = run(sync_cmd(
        &upstream,
        dir.path(),
        range,
        &["--ntlm", "--max-tries", "2", "--allow-gaps"],
    ));
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 prefixes missing, left empty in the index: 00042"),
        "{stderr}"
    );
    assert_index_matches(&index, &upstream.config, LAST, &[0x42]);
}

/// Files in the state directory that hold a prefix (not temporary files).
fn stored_prefixes(state: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(state) else {
        return 0;
    };
    dirs.flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| !f.file_name().to_string_lossy().starts_with('.'))
        .count()
}

#[test]
fn killed_sync_resumes_without_refetching_done_prefixes() {
    const LAST: u32 = 0xFF;
    let range = "00000-000FF";
    let synth = Synth::new(20, 21, 1, 20);
    let mut config = Config::new(HashKind::Sha1, synth.clone());
    config.hang = HashSet::from([LAST]);
    let hanging = Upstream::start(config);
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("state");

    let mut child = sync_cmd(&hanging, dir.path(), range, &["--timeout", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until everything but the hanging prefix is stored, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored_prefixes(&state) < LAST as usize {
        assert!(
            Instant::now() < deadline,
            "the first run never stored its prefixes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.path().join("out.idx").exists());

    let healthy = Upstream::start(Config::new(HashKind::Sha1, synth));
    let out = run(sync_cmd(&healthy, dir.path(), range, &[]));
    assert!(out.status.success());
    assert_eq!(
        healthy.count(|s| &s.requests),
        1,
        "only the unfinished prefix is requested"
    );
    assert_eq!(healthy.count(|s| &s.ok), 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("255 already done by the resumed run"),
        "{stdout}"
    );
    assert_index_matches(&dir.path().join("out.idx"), &healthy.config, LAST, &[]);

    // The resumed run finished, so the next one revalidates every prefix (all unchanged).
    let out = run(sync_cmd(&healthy, dir.path(), range, &[]));
    assert!(out.status.success());
    assert_eq!(healthy.count(|s| &s.not_modified), u64::from(LAST + 1));
}

/// The throughput figure in README-ops.md, not a pass/fail test:
/// `cargo test --release --test sync -- --ignored --nocapture`. Syncs `HIBP_SYNC_PREFIXES`
/// (default: all 1,048,576) from a local upstream serving a sparse corpus, then re-runs (all 304).
#[test]
#[ignore]
fn measure_sync_throughput() {
    let range = std::env::var("HIBP_SYNC_PREFIXES").unwrap_or_else(|_| "00000-FFFFF".into());
    let upstream = Upstream::start(Config::new(HashKind::Sha1, Synth::new(20, 5, 16, 100)));
    let dir = tempfile::tempdir().unwrap();
    let cmd = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"));
        cmd.arg("sync")
            .arg("--upstream")
            .arg(upstream.url())
            .arg("--output")
            .arg(dir.path().join("out.idx"))
            .args(["--prefixes", &range, "--quiet"]);
        cmd
    };
    for run_no in 1..=2 {
        let start = Instant::now();
        let out = run(cmd());
        assert!(out.status.success());
        eprintln!("run {run_no}: {:.1} s wall", start.elapsed().as_secs_f64());
    }
    assert_eq!(upstream.count(|s| &s.violations), 0);
}
