//! Cold index reads: answers are the same whether index reads run inline, on the blocking pool,
//! or chosen per request by page-cache residency; and the residency check sees the page cache.
//! Real TCP on 127.0.0.1:0, real HTTP client, an index file on disk evicted from the page cache.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hibp_mirror::index::LOOKUP_SPAN;
use hibp_mirror::server::direct::DirectFile;
use hibp_mirror::server::uring::Ring;
use hibp_mirror::server::{
    App, ColdReads, Config, Handler, IndexSet, IndexSource, Metrics, ReadEngine, ReadOffload,
};
use hibp_mirror::server::{ResponseBody, Route};
use hibp_mirror::{Hash, HashKind, Prefix};
use hyper::body::Incoming;
use hyper::{Request, Response};
use support::{Synth, TestServer};

/// ~2,000 hashes in every 1,024th prefix: bodies span several pages, as real ones do, and the
/// records (~39 MB) reach well past what reading the prefix table at open reads ahead.
fn synth() -> Synth {
    Synth::new(20, 23, 1024, 2000)
}

/// A populated prefix near the end of the file.
const LATE_PREFIX: u32 = 1023 * 1024;

/// The index file, on disk (the target directory, not a tmpfs) so the page cache can be
/// dropped for it; deleted with the returned directory.
fn index_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = support::write_index(dir.path(), "sha1.idx", &synth(), 1_700_000_000);
    (dir, path)
}

/// Writes the file back and drops its pages from the page cache (those mapped by a live
/// process stay).
fn evict(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
}

/// `App`, counting the requests it reported as possibly blocking.
struct Counting {
    app: App,
    cold: AtomicUsize,
}

impl Handler for Counting {
    fn handle(&self, route: Route, req: &Request<Incoming>) -> Response<ResponseBody> {
        self.app.respond_route(route, req)
    }
    fn may_block(&self, route: Route, req: &Request<Incoming>) -> bool {
        let cold = self.app.may_block(route, req);
        if cold {
            self.cold.fetch_add(1, Ordering::Relaxed);
        }
        cold
    }
    fn read_cold(&self, route: Route, req: &mut Request<Incoming>) {
        self.app.read_cold(route, req)
    }
    async fn read_cold_async(&self, route: Route, req: &mut Request<Incoming>) -> bool {
        self.app.read_cold_async(route, req).await
    }
    fn config(&self) -> &Config {
        self.app.config()
    }
    fn metrics(&self) -> &Metrics {
        self.app.metrics()
    }
}

async fn start(path: &Path, read_offload: ReadOffload) -> TestServer<Counting> {
    start_with(path, read_offload, ColdReads::Cache, ReadEngine::Threads).await
}

async fn start_with(
    path: &Path,
    read_offload: ReadOffload,
    cold_reads: ColdReads,
    read_engine: ReadEngine,
) -> TestServer<Counting> {
    let indexes = IndexSet::open(Some(IndexSource::File(path.to_owned())), None).unwrap();
    let config = Config {
        read_offload,
        cold_reads,
        read_engine,
        reads_in_flight: 4,
        ..support::test_config()
    };
    TestServer::start_handler(Arc::new(Counting {
        app: App::new(Arc::new(indexes), config),
        cold: AtomicUsize::new(0),
    }))
    .await
}

/// Every answer for a fixed request list: populated and empty prefixes, present hashes and their
/// absent neighbours, asked 8 at a time so offloaded reads overlap.
async fn answers(server: &TestServer<Counting>, paths: &[String]) -> Vec<String> {
    let client = support::identity_client();
    let mut out = Vec::new();
    for batch in paths.chunks(8) {
        let replies = futures_join(batch.iter().map(|p| {
            let client = client.clone();
            let url = server.url(p);
            async move {
                let response = client.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.text().await.unwrap()
            }
        }))
        .await;
        out.extend(replies);
    }
    out
}

async fn futures_join<F: std::future::Future<Output = String> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<String> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn request_paths(synth: &Synth) -> (Vec<String>, Vec<(String, u32)>) {
    let mut paths = Vec::new();
    let mut expected = Vec::new();
    let mut rng = support::SplitMix64::new(99);
    for i in 0..24u32 {
        let prefix = if i % 4 == 3 {
            rng.below(1 << 20) as u32 | 1 // odd: never populated (step 1,024)
        } else {
            rng.below(u64::from((1 << 20) / synth.step)) as u32 * synth.step
        };
        paths.push(format!("/range/{prefix:05X}"));
        expected.push((format!("range {prefix:05X}"), 0));
        let entries = synth.prefix_entries(prefix);
        if let Some((hash, count)) = entries.get(rng.below(entries.len().max(1) as u64) as usize) {
            let hex = synth.hex(hash);
            paths.push(format!("/checkhash/{hex}"));
            expected.push((hex.clone(), *count));
            // The absent neighbour: last hex digit changed.
            let mut absent = hex.into_bytes();
            let last = absent.len() - 1;
            absent[last] = if absent[last] == b'0' { b'1' } else { b'0' };
            let absent = String::from_utf8(absent).unwrap();
            if !entries.iter().any(|(h, _)| synth.hex(h) == absent) {
                paths.push(format!("/checkhash/{absent}"));
                expected.push((absent, 0));
            }
        }
    }
    (paths, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_identical_inline_offloaded_and_auto() {
    let synth = synth();
    let (_dir, path) = index_file();
    let (paths, expected) = request_paths(&synth);
    let mut all = Vec::new();
    for mode in [ReadOffload::Never, ReadOffload::Always, ReadOffload::Auto] {
        evict(&path);
        let server = start(&path, mode).await;
        let got = answers(&server, &paths).await;
        // Ground truth, so "identical" cannot mean "identically wrong".
        for ((what, count), body) in expected.iter().zip(&got) {
            if let Some(prefix) = what.strip_prefix("range ") {
                let prefix = u32::from_str_radix(prefix, 16).unwrap();
                assert_eq!(
                    body,
                    &synth.range_body(prefix),
                    "{mode:?} /range/{prefix:05X}"
                );
            } else {
                assert!(
                    body.contains(&format!("\"timesseen\":{count},")),
                    "{mode:?}: {body}"
                );
            }
        }
        let cold = server.handler.cold.load(Ordering::Relaxed);
        match mode {
            // Auto (to move the read) and Never (to read the window ahead in one batch) found
            // the evicted pages cold; Always moves every read without asking.
            ReadOffload::Auto | ReadOffload::Never => {
                assert!(cold > 0, "{mode:?}: no request was seen as cold")
            }
            ReadOffload::Always => assert_eq!(cold, 0),
        }
        all.push(got);
        server.stop().await;
    }
    assert_eq!(all[0], all[1]);
    assert_eq!(all[1], all[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_window_is_cold_after_eviction_and_warm_after_a_read() {
    let synth = synth();
    let (_dir, path) = index_file();
    let index = support::open_index(&path);
    // After open: what the open-time table scan mapped stays, the records go.
    evict(&path);
    let prefix = Prefix::parse(format!("{LATE_PREFIX:05X}").as_bytes()).unwrap();
    let entries = synth.prefix_entries(LATE_PREFIX);
    let span = index.range_span(prefix);
    assert_eq!(span.len(), entries.len() * 19);
    assert!(span.len() > 2 * 4096, "a populated prefix spans pages");
    assert!(!index.data().is_resident(span.clone()));
    // A lookup's window is a small part of its prefix, and reading it makes it resident.
    let (hash, count) = entries[1000];
    let hash = Hash::from_bytes(HashKind::Sha1, &hash[..20]).unwrap();
    let window = index.lookup_span(&hash);
    assert!(span.start <= window.start && window.end <= span.end);
    assert!(window.len() < span.len() / 4, "{window:?} in {span:?}");
    assert!(!index.data().is_resident(window.clone()));
    assert_eq!(index.lookup(&hash), Some(count));
    // The lookup always reads the record at its interpolated position, mid-window.
    let guess = window.start + LOOKUP_SPAN * 19;
    assert!(index.data().is_resident(guess..guess + 19));
    assert!(
        !index.data().is_resident(span.clone()),
        "random advice: no readahead"
    );
    // Prefetching the whole prefix brings it in (WILLNEED completes asynchronously).
    index.data().prefetch(span.clone());
    let sum: u64 = index
        .range(prefix)
        .into_iter()
        .map(|e| u64::from(e.count()))
        .sum();
    assert_eq!(sum, entries.iter().map(|e| u64::from(e.1)).sum::<u64>());
    assert!(index.data().is_resident(span.clone()));
    // Empty and out-of-bounds ranges.
    assert!(index.data().is_resident(span.start..span.start));
    let len = index.data().as_ref().len();
    assert!(!index.data().is_resident(len - 10..len + 10));
}

/// Whether this file system reads `path` with O_DIRECT (tmpfs does not); says so when not.
fn direct_reads_work(path: &Path) -> bool {
    match DirectFile::reopen(&std::fs::File::open(path).unwrap()) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("no O_DIRECT for {}: {e}; not tested here", path.display());
            false
        }
    }
}

/// A file of `len` bytes in a fresh directory, with a pattern that repeats at no block size.
fn patterned_file(len: usize) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("f");
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    (dir, path, data)
}

/// Every span of a file, read directly at any offset, equals the same bytes read normally.
#[test]
fn direct_reads_match_the_file_at_any_offset() {
    const BLOCK: usize = 4096;
    let (_dir, path, data) = patterned_file(3 * BLOCK + 123);
    if !direct_reads_work(&path) {
        return;
    }
    let direct = DirectFile::reopen(&std::fs::File::open(&path).unwrap()).unwrap();
    for (start, end) in [
        (0, 0),
        (0, 1),
        (1, BLOCK),
        (BLOCK - 1, BLOCK + 1),
        (BLOCK, 2 * BLOCK),
        (5, data.len()),
        (data.len() - 3, data.len()),
    ] {
        let window = direct.read(start..end).unwrap();
        assert_eq!(window.span(), start..end);
        assert_eq!(
            window.get(start..end).unwrap(),
            &data[start..end],
            "{start}..{end}"
        );
        if end > start {
            assert_eq!(window.get(start + 1..end).unwrap(), &data[start + 1..end]);
        }
        assert!(window.get(start..end + 1).is_none());
    }
    assert!(direct.read(0..data.len() + 1).is_err());
}

/// The same spans read through io_uring; reads whose requests are dropped mid-flight (their
/// buffers stay with the ring until the kernel is done) do not disturb the others; reads past
/// the ring's capacity are refused, not queued without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_reads_match_the_file_and_survive_dropped_requests() {
    const BLOCK: usize = 4096;
    if let Err(e) = Ring::available() {
        eprintln!("no io_uring here ({e}): not tested");
        return;
    }
    let (_dir, path, data) = patterned_file(64 * BLOCK + 123);
    if !direct_reads_work(&path) {
        return;
    }
    let direct = Arc::new(DirectFile::reopen(&std::fs::File::open(&path).unwrap()).unwrap());
    let ring = Ring::start(8).unwrap();
    for (start, end) in [
        (0, 0),
        (1, BLOCK),
        (BLOCK - 1, BLOCK + 1),
        (5, data.len()),
        (data.len() - 3, data.len()),
    ] {
        let window = direct.read_on(&ring, start..end).await.unwrap();
        assert_eq!(
            window.get(start..end).unwrap(),
            &data[start..end],
            "{start}..{end}"
        );
    }
    assert!(direct.read_on(&ring, 0..data.len() + 1).await.is_err());
    // Started and dropped before they complete.
    for round in 0..4 {
        let mut reads = Vec::new();
        for k in 0..8 {
            let (direct, ring) = (direct.clone(), ring.clone());
            let start = (round * 8 + k) * BLOCK + 17;
            reads.push(tokio::spawn(async move {
                direct.read_on(&ring, start..start + 3 * BLOCK).await
            }));
        }
        for (k, read) in reads.into_iter().enumerate() {
            if k % 2 == 0 {
                read.abort();
            } else {
                let start = (round * 8 + k) * BLOCK + 17;
                let window = read.await.unwrap().unwrap();
                assert_eq!(
                    window.get(start..start + 3 * BLOCK).unwrap(),
                    &data[start..start + 3 * BLOCK]
                );
            }
        }
    }
    // Eight in flight at most: of 40 started at once, those refused are refused as such (how
    // many depends on timing), and every read that was accepted is right.
    let reads: Vec<_> = (0..40)
        .map(|k| {
            let (direct, ring) = (direct.clone(), ring.clone());
            tokio::spawn(async move { direct.read_on(&ring, k * BLOCK..(k + 1) * BLOCK).await })
        })
        .collect();
    let mut refused = 0;
    for (k, read) in reads.into_iter().enumerate() {
        match read.await.unwrap() {
            Ok(window) => assert_eq!(
                window.get(k * BLOCK..(k + 1) * BLOCK).unwrap(),
                &data[k * BLOCK..(k + 1) * BLOCK]
            ),
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
                refused += 1;
            }
        }
    }
    eprintln!("{refused} of 40 concurrent reads refused at capacity 8");
    // Still working after all that.
    let window = direct.read_on(&ring, 0..BLOCK).await.unwrap();
    assert_eq!(window.get(0..BLOCK).unwrap(), &data[..BLOCK]);
}

/// `--cold-reads direct`: the same right answers in every offload mode, each cold request read
/// directly, so the records stay out of the page cache: the same prefix asked again is still
/// cold. (Through the page cache, the second asking is warm.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_cold_reads_answer_right_and_leave_the_page_cache_alone() {
    let synth = synth();
    let (_dir, path) = index_file();
    if !direct_reads_work(&path) {
        return;
    }
    let (paths, expected) = request_paths(&synth);
    let index = support::open_index(&path);
    let range_spans: Vec<_> = expected
        .iter()
        .filter_map(|(what, _)| what.strip_prefix("range "))
        .map(|p| index.range_span(Prefix::parse(p.as_bytes()).unwrap()))
        .filter(|span| !span.is_empty())
        .collect();
    assert!(!range_spans.is_empty());
    let reading = paths
        .iter()
        .zip(&expected)
        .filter(|(_, (what, _))| {
            what.strip_prefix("range ").is_none_or(|p| {
                !index
                    .range_span(Prefix::parse(p.as_bytes()).unwrap())
                    .is_empty()
            })
        })
        .count();
    let uring = match Ring::available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("no io_uring here ({e}): the io-uring engine is not tested");
            false
        }
    };
    for (mode, cold_reads, engine) in [
        (ReadOffload::Auto, ColdReads::Direct, ReadEngine::Threads),
        (ReadOffload::Never, ColdReads::Direct, ReadEngine::Threads),
        (ReadOffload::Always, ColdReads::Direct, ReadEngine::Threads),
        (ReadOffload::Auto, ColdReads::Direct, ReadEngine::IoUring),
        (ReadOffload::Always, ColdReads::Direct, ReadEngine::IoUring),
        (ReadOffload::Auto, ColdReads::Cache, ReadEngine::Threads),
        (ReadOffload::Auto, ColdReads::Cache, ReadEngine::IoUring),
    ] {
        if engine == ReadEngine::IoUring && !uring {
            continue;
        }
        evict(&path);
        let server = start_with(&path, mode, cold_reads, engine).await;
        // Twice: the second round finds the pages cold again only if the first read directly.
        for round in 0..2 {
            let got = answers(&server, &paths).await;
            for ((what, count), body) in expected.iter().zip(&got) {
                if let Some(prefix) = what.strip_prefix("range ") {
                    let prefix = u32::from_str_radix(prefix, 16).unwrap();
                    assert_eq!(body, &synth.range_body(prefix), "{mode:?} {cold_reads:?}");
                } else {
                    assert!(
                        body.contains(&format!("\"timesseen\":{count},")),
                        "{mode:?} {cold_reads:?}: {body}"
                    );
                }
            }
            let cold = server.handler.cold.load(Ordering::Relaxed);
            match cold_reads {
                // Every request that reads records found them cold, both rounds.
                ColdReads::Direct => {
                    assert_eq!(cold, reading * (round + 1), "{mode:?} round {round}")
                }
                // The first round brought them in.
                ColdReads::Cache => assert!(round == 0 || cold < reading * 2, "{cold}"),
            }
        }
        let cached = range_spans
            .iter()
            .filter(|span| index.data().is_resident((*span).clone()))
            .count();
        match cold_reads {
            ColdReads::Direct => assert_eq!(cached, 0, "{mode:?}: bodies read into the page cache"),
            ColdReads::Cache => assert_eq!(cached, range_spans.len()),
        }
        // Every window read went through the engine asked for: a cold request read at least
        // once (a lookup the window does not settle reads its prefix too). Through the page
        // cache, the blocking pool faults the pages in (no window read), io_uring reads them.
        let metrics = server.handler.app.metrics();
        let (used, other) = match engine {
            ReadEngine::IoUring => (ReadEngine::IoUring, ReadEngine::Threads),
            _ => (ReadEngine::Threads, ReadEngine::IoUring),
        };
        if cold_reads == ColdReads::Direct {
            assert!(
                metrics.window_reads(used) >= 2 * reading as u64,
                "{mode:?} {engine:?}: {} direct reads",
                metrics.window_reads(used)
            );
        } else if engine == ReadEngine::IoUring {
            let cold = server.handler.cold.load(Ordering::Relaxed) as u64;
            assert!(
                cold > 0 && metrics.window_reads(used) >= cold,
                "{cold} cold requests"
            );
        } else {
            assert_eq!(metrics.window_reads(used), 0);
        }
        assert_eq!(metrics.window_reads(other), 0, "{mode:?} {engine:?}");
        server.stop().await;
    }
}

/// The real binary: `serve --cold-reads direct --read-engine io-uring` answers cold requests
/// right, from io_uring reads (its `/metrics` says so); an unknown engine is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_binary_reads_cold_windows_through_io_uring() {
    use std::process::Command;

    let synth = synth();
    let (_dir, path) = index_file();
    let refused = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["serve", "--cold-reads", "direct", "--read-engine", "fast"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("auto, io-uring or threads"), "{stderr}");
    if Ring::available().is_err() || !direct_reads_work(&path) {
        eprintln!("no io_uring or no O_DIRECT here: the binary's io_uring reads are not tested");
        return;
    }
    let server = support::ServeProcess::start(
        &path,
        &["--cold-reads", "direct", "--read-engine", "io-uring"],
    );
    let addr = &server.addr;
    evict(&path);
    let client = support::identity_client();
    let prefixes: Vec<u32> = (0..16).map(|i| i * 64 * synth.step).collect();
    for &prefix in &prefixes {
        let body = support::get_text(&client, format!("http://{addr}/range/{prefix:05X}")).await;
        assert_eq!(body, synth.range_body(prefix), "/range/{prefix:05X}");
    }
    let metrics = support::get_text(&client, format!("http://{addr}/metrics")).await;
    let reads = |engine: &str| -> u64 {
        let name = format!("hibp_mirror_window_reads_total{{engine=\"{engine}\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&name)).unwrap();
        line[name.len()..].parse().unwrap()
    };
    assert_eq!(reads("io_uring"), prefixes.len() as u64, "{metrics}");
    assert_eq!(reads("threads"), 0);
}
