//! Shared fixtures: the seeded generator from `tools/`, ground-truth checks, generated index
//! files, and a server on `127.0.0.1:0` that each test starts and stops itself.
#![allow(dead_code)] // each test binary uses a different part

#[path = "../../tools/synth.rs"]
pub mod synth;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hibp_mirror::server::{self, App, Config, Handler, IndexSet, IndexSource};
use hibp_mirror::{writer, HashKind, Index, IndexBytes, Prefix};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[allow(unused_imports)]
pub use synth::{SplitMix64, Synth};

/// The kind of a generated corpus.
/// Maps the index at `path` (panics if it does not open).
#[allow(dead_code)]
pub fn open_index(path: impl AsRef<Path>) -> Index<IndexBytes> {
    // SAFETY: test indexes live in the test's own temporary directory and are only replaced by
    // rename, never modified in place while mapped.
    unsafe { Index::open_path(path) }.unwrap()
}

pub fn kind_of(synth: &Synth) -> HashKind {
    match synth.hash_len {
        20 => HashKind::Sha1,
        _ => HashKind::Ntlm,
    }
}

/// A whole generated corpus as index bytes.
pub fn index_bytes(synth: &Synth, build_time: u64) -> Vec<u8> {
    let entries: Vec<_> = synth.entries().collect();
    writer::build_in_memory(
        kind_of(synth),
        entries.iter().map(|(h, c)| (&h[..synth.hash_len], *c)),
        &format!("synth seed {}", synth.seed),
        build_time,
    )
}

/// Writes `bytes` to `path` the way `import` does: a temporary file in the same directory, then
/// a rename over the target.
pub fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// Writes a generated corpus to `dir/name` and returns the path.
pub fn write_index(dir: &Path, name: &str, synth: &Synth, build_time: u64) -> PathBuf {
    let path = dir.join(name);
    replace_file(&path, &index_bytes(synth, build_time));
    path
}

/// Test settings: no SIGHUP handler and no file watching unless a test asks for them.
pub fn test_config() -> Config {
    Config {
        watch_interval: None,
        reload_on_sighup: false,
        ..Config::default()
    }
}

/// A server running on `127.0.0.1:0` until [`TestServer::stop`].
pub struct TestServer<H: Handler = App> {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The application, to reach indexes and metrics directly.
    pub handler: Arc<H>,
    /// Fires the shutdown future.
    stop: Option<oneshot::Sender<()>>,
    /// The server task; yields `run`'s result.
    task: Option<JoinHandle<Result<(), server::ServeError>>>,
}

impl TestServer<App> {
    /// Serves `indexes` with `config` through [`server::run`].
    pub async fn start(indexes: IndexSet, config: Config) -> TestServer<App> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, indexes, config)
    }

    /// Serves `indexes` with `config` on a listener the test bound itself.
    pub fn start_on(listener: TcpListener, indexes: IndexSet, config: Config) -> TestServer<App> {
        let app = Arc::new(App::new(Arc::new(indexes), config));
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            handler: app,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves index files at the given paths.
    pub async fn start_files(sha1: Option<&Path>, ntlm: Option<&Path>, config: Config) -> Self {
        let indexes = IndexSet::open(
            sha1.map(|p| IndexSource::File(p.to_owned())),
            ntlm.map(|p| IndexSource::File(p.to_owned())),
        )
        .unwrap();
        Self::start(indexes, config).await
    }
}

impl<H: Handler> TestServer<H> {
    /// Serves any handler through [`server::serve`] (no reload tasks).
    pub async fn start_handler(handler: Arc<H>) -> TestServer<H> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, handler.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            handler,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown without waiting.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) {
        self.begin_stop();
        self.task
            .take()
            .unwrap()
            .await
            .expect("server task")
            .expect("server result");
    }

    /// Waits for the server to return after [`TestServer::begin_stop`].
    pub async fn join(mut self) -> Result<(), server::ServeError> {
        self.task.take().unwrap().await.expect("server task")
    }
}

/// An HTTP client that never asks for compression, so bodies arrive as sent.
pub fn identity_client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

/// Sends raw bytes on a fresh connection and reads until the server closes it.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    out
}

/// Decodes a gzip body.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// The corpus as dump text.
pub fn dump_text(synth: &Synth, crlf: bool, final_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    synth.write_dump(&mut out, crlf, final_newline).unwrap();
    out
}

/// Asserts that every prefix's `range` and every entry's `lookup` match the generator exactly.
pub fn assert_matches<D: AsRef<[u8]> + Sync>(index: &Index<D>, synth: &Synth) {
    let kind = kind_of(synth);
    assert_eq!(index.kind(), kind);
    let mut total = 0u64;
    for p in 0..synth::PREFIXES {
        let prefix = Prefix::new(p).unwrap();
        let expected = synth.prefix_entries(p);
        let range = index.range(prefix);
        assert_eq!(range.len(), expected.len(), "prefix {prefix}: entry count");
        for (entry, (hash, count)) in range.iter().zip(&expected) {
            assert_eq!(entry.suffix_hex(), synth.hex(hash)[5..], "prefix {prefix}");
            assert_eq!(entry.count(), *count, "prefix {prefix}: count");
            assert_eq!(
                entry.hash(prefix, kind).as_bytes(),
                &hash[..kind.byte_len()]
            );
        }
        for (hash, count) in &expected {
            let present = hibp_mirror::Hash::from_bytes(kind, &hash[..kind.byte_len()]).unwrap();
            assert_eq!(index.lookup(&present), Some(*count), "lookup {present:?}");
            // A neighbour that differs in the last bit is absent unless generated too.
            let mut near = *hash;
            near[kind.byte_len() - 1] ^= 1;
            let absent = hibp_mirror::Hash::from_bytes(kind, &near[..kind.byte_len()]).unwrap();
            let expected_near = expected
                .binary_search_by(|(h, _)| h.cmp(&near))
                .ok()
                .map(|i| expected[i].1);
            assert_eq!(index.lookup(&absent), expected_near, "lookup {absent:?}");
        }
        total += expected.len() as u64;
    }
    assert_eq!(index.len(), total);
    index.verify().expect("a fresh index verifies");
}

/// `GET url` with `client`; panics on a transport error (the status is the caller's to check).
pub async fn get(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// The body of `GET url` as text.
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    get(client, url).await.text().await.unwrap()
}

/// The `hibp-mirror serve` binary on `127.0.0.1:0`, killed on drop; its log (stderr) is kept.
pub struct ServeProcess {
    child: std::process::Child,
    /// `host:port` the server said it listens on.
    pub addr: String,
    /// Every log line so far.
    pub log: Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    /// Starts `serve --index INDEX --listen 127.0.0.1:0 ARGS...` and waits for its listening line.
    pub fn start(index: &Path, args: &[&str]) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let mut child = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
            .arg("serve")
            .arg("--index")
            .arg(index)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let addr = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            log.lock().unwrap().push_str(&line);
            if let Some(at) = line.find("address=") {
                break line[at + 8..].split_whitespace().next().unwrap().to_owned();
            }
        };
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        ServeProcess { child, addr, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
