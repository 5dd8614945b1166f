//! Hostile clients over real TCP on 127.0.0.1: connection bursts, slots held after one byte,
//! never-reading pipeliners, HTTP/2 zero-window streams, the per-address cap, and the HTTP edge
//! cases of issue 9. Every limit is checked by what a client sees (a slot freed, a connection
//! closed, a 503) and by `/metrics`.

mod support;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hibp_mirror::server::{self, Config, IndexSet, IndexSource};
use reqwest::StatusCode;
use support::{Synth, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Build time of the fixture index.
const BUILD_TIME: u64 = 1_700_000_000;

/// The HTTP/2 connection preface.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Every 4,096th prefix holds ~2,000 hashes (real-size bodies of ~80 KB); SHA-1 only.
fn synth() -> Synth {
    Synth::new(20, 21, 4096, 2000)
}

/// A populated prefix, `i` modulo 256.
fn populated(i: usize) -> String {
    format!("{:05X}", (i % 256) * 4096)
}

fn fixture() -> &'static (tempfile::TempDir, PathBuf) {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = support::write_index(dir.path(), "sha1.idx", &synth(), BUILD_TIME);
        (dir, path)
    })
}

fn indexes() -> IndexSet {
    IndexSet::open(Some(IndexSource::File(fixture().1.clone())), None).unwrap()
}

async fn start(config: Config) -> TestServer {
    TestServer::start(indexes(), config).await
}

/// A client whose connections come from `ip` (any 127.0.0.0/8 address works on loopback).
fn client_from(ip: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A TCP connection to `addr` from `ip`.
async fn connect_from(ip: Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the server closes `stream` (end of stream or reset) within `within`, reading and
/// discarding whatever it sends first.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 1 << 16];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The value of an unlabelled (or fully labelled) sample in a `/metrics` page.
fn metric(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_page(server: &TestServer) -> String {
    support::get_text(
        &client_from(Ipv4Addr::new(127, 0, 0, 9)),
        server.url("/metrics"),
    )
    .await
}

/// Raises the open-file limit to the hard limit (the burst test holds ~10,000 sockets).
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Finding 0: 5,000 connections opened as fast as four threads can are all accepted without a
/// SYN retransmit (a 1 s stall), and a normal request is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_5000_connections_never_waits_for_a_retransmit() {
    const CONNECTIONS: usize = 5000;
    let fds = raise_fd_limit();
    assert!(
        fds >= 2 * CONNECTIONS as u64 + 200,
        "the open-file limit ({fds}) is too low for this test; raise `ulimit -Hn`"
    );
    let config = Config {
        max_connections: 2 * CONNECTIONS,
        max_connections_per_ip: 2 * CONNECTIONS,
        header_read_timeout: Duration::from_secs(60),
        ..support::test_config()
    };
    let (listener, _) =
        server::bind("127.0.0.1:0".parse().unwrap(), server::DEFAULT_BACKLOG).unwrap();
    let server = TestServer::start_on(listener, indexes(), config);
    let addr = server.addr;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                let mut held = Vec::with_capacity(CONNECTIONS / 4);
                for _ in 0..CONNECTIONS / 4 {
                    let started = Instant::now();
                    let stream = std::net::TcpStream::connect(addr).unwrap();
                    slowest = slowest.max(started.elapsed());
                    held.push(stream);
                }
                (slowest, held)
            })
        })
        .collect();
    let mut held = Vec::new();
    let mut slowest = Duration::ZERO;
    for thread in threads {
        let (s, h) = thread.join().unwrap();
        slowest = slowest.max(s);
        held.extend(h);
    }
    assert_eq!(held.len(), CONNECTIONS);
    // A dropped SYN is retransmitted after 1 s; every connect here took far less.
    assert!(
        slowest < Duration::from_millis(700),
        "a connect waited {slowest:?} (a dropped SYN)"
    );
    let started = Instant::now();
    let response = support::get(&client_from(Ipv4Addr::LOCALHOST), server.url("/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(held);
    server.stop().await;
}

/// Finding 1: with four slots, four clients that send one byte, part of the HTTP/2 preface,
/// or the preface and SETTINGS and then nothing, lose their slots within the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_after_a_few_bytes_lose_their_slot() {
    let config = Config {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(500),
        ..support::test_config()
    };
    let server = start(config).await;
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    let openings: [Vec<u8>; 4] = [
        b"P".to_vec(),
        H2_PREFACE[..16].to_vec(),
        H2_PREFACE[..23].to_vec(),
        [H2_PREFACE, &settings[..]].concat(),
    ];
    let mut hostile = Vec::new();
    for opening in &openings {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(opening).await.unwrap();
        hostile.push(stream);
    }
    // All four slots are taken; a fifth client is served once they are freed.
    let started = Instant::now();
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        support::get(&client_from(Ipv4Addr::LOCALHOST), server.url("/healthz")),
    )
    .await
    .expect("a slot is freed within the header timeout");
    assert_eq!(answered.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));
    for (stream, opening) in hostile.iter_mut().zip(&openings) {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "a client that sent {} bytes is closed",
            opening.len()
        );
    }
    let page = metrics_page(&server).await;
    let timeouts = metric(
        &page,
        "hibp_mirror_connections_closed_total{reason=\"head_timeout\"}",
    );
    assert!(timeouts >= Some(3), "{page}");
    server.stop().await;
}

/// Finding 1: a client that pipelines 100 requests and never reads loses its slot after the
/// send timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeliner_that_never_reads_loses_its_slot() {
    let config = Config {
        max_connections: 1,
        send_timeout: Duration::from_millis(500),
        ..support::test_config()
    };
    let server = start(config).await;
    let mut requests = Vec::new();
    for i in 0..100 {
        write!(
            requests,
            "GET /range/{} HTTP/1.1\r\nHost: t\r\n\r\n",
            populated(i)
        )
        .unwrap();
    }
    let mut pipeliner = TcpStream::connect(server.addr).await.unwrap();
    pipeliner.write_all(&requests).await.unwrap();
    let answered = tokio::time::timeout(
        Duration::from_secs(15),
        support::get(&client_from(Ipv4Addr::LOCALHOST), server.url("/healthz")),
    )
    .await
    .expect("the pipeliner's slot is freed");
    assert_eq!(answered.status(), StatusCode::OK);
    let page = metrics_page(&server).await;
    assert!(
        metric(
            &page,
            "hibp_mirror_connections_closed_total{reason=\"send_stalled\"}"
        ) >= Some(1),
        "{page}"
    );
    // Nothing is left waiting to be sent once the connection is gone.
    assert_eq!(metric(&page, "hibp_mirror_unsent_body_bytes"), Some(0));
    drop(pipeliner);
    server.stop().await;
}

/// Finding 1: one client address cannot take more than its share of connections; others are
/// still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    let config = Config {
        max_connections: 8,
        max_connections_per_ip: 3,
        header_read_timeout: Duration::from_secs(60),
        ..support::test_config()
    };
    let server = start(config).await;
    let greedy = Ipv4Addr::new(127, 0, 0, 7);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(greedy, server.addr).await);
    }
    // Make sure the three are accepted before the fourth arrives.
    let ok = support::get(&client_from(Ipv4Addr::LOCALHOST), server.url("/healthz")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let mut fourth = connect_from(greedy, server.addr).await;
    assert!(
        closed_within(&mut fourth, Duration::from_secs(3)).await,
        "the fourth connection from one address is closed at once"
    );
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(100)).await,
            "the first three stay open"
        );
    }
    let other = support::get(
        &client_from(Ipv4Addr::new(127, 0, 0, 8)),
        server.url("/range/00000"),
    )
    .await;
    assert_eq!(other.status(), StatusCode::OK);
    let page = metrics_page(&server).await;
    assert_eq!(
        metric(
            &page,
            "hibp_mirror_connections_closed_total{reason=\"per_ip_limit\"}"
        ),
        Some(1),
        "{page}"
    );
    server.stop().await;
}

/// Finding 1: a connection that keeps sending requests is still closed at its maximum age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_closed_at_their_maximum_age() {
    let config = Config {
        max_connection_age: Some(Duration::from_millis(800)),
        drain_timeout: Duration::from_millis(500),
        ..support::test_config()
    };
    let server = start(config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut answered = 0;
    let mut buf = vec![0u8; 1 << 16];
    let closed = loop {
        if started.elapsed() > Duration::from_secs(10) {
            break false;
        }
        if stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .is_err()
        {
            break true;
        }
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(_)) => answered += 1,
            Err(_) => panic!("a request on a live connection went unanswered"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(closed, "the connection outlived its maximum age");
    assert!(
        answered >= 3,
        "requests were answered until then ({answered})"
    );
    let page = metrics_page(&server).await;
    assert!(
        metric(
            &page,
            "hibp_mirror_connections_closed_total{reason=\"max_age\"}"
        ) >= Some(1),
        "{page}"
    );
    server.stop().await;
}

/// An HTTP/2 connection that grants no flow-control window (`INITIAL_WINDOW_SIZE = 0`).
struct ZeroWindow {
    /// Responses whose headers arrived, by status.
    statuses: Vec<StatusCode>,
    /// Whether each 503 carried `Retry-After`.
    retry_after: bool,
    /// The responses, kept: dropping one would cancel its stream and free the server's bytes.
    _responses: Vec<hyper::Response<h2::RecvStream>>,
    /// Completes when the server closes the connection.
    closed: tokio::task::JoinHandle<()>,
    /// Keeps the client half alive.
    _client: h2::client::SendRequest<Bytes>,
}

/// Opens up to `streams` `/range` streams on a zero-window connection and collects the
/// response heads that arrive.
async fn zero_window(addr: SocketAddr, streams: usize, first: usize) -> ZeroWindow {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let closed = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..streams {
        let request = hyper::Request::get(format!("http://{addr}/range/{}", populated(first + i)))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        pending.push(response);
        // Beyond the server's stream cap, the client waits for a free stream.
        let ready = std::future::poll_fn(|cx| client.poll_ready(cx));
        match tokio::time::timeout(Duration::from_millis(300), ready).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    let mut statuses = Vec::new();
    let mut retry_after = true;
    let mut responses = Vec::new();
    for response in pending {
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_millis(500), response).await {
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                retry_after &= response.headers().contains_key("retry-after");
            }
            statuses.push(response.status());
            responses.push(response);
        }
    }
    ZeroWindow {
        statuses,
        retry_after,
        _responses: responses,
        closed,
        _client: client,
    }
}

/// Finding 2: zero-window HTTP/2 clients get at most 32 streams each, the rendered-but-unsent
/// bytes stay under the cap (further `/range` streams get 503 with `Retry-After`), stalled
/// connections are dropped after the send timeout, and a normal client is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_zero_window_clients_cannot_grow_memory() {
    const CAP: u64 = 1 << 20;
    let config = Config {
        max_unsent_bytes: CAP,
        send_timeout: Duration::from_secs(2),
        ..support::test_config()
    };
    let server = start(config).await;
    let mut hogs = Vec::new();
    for c in 0..4 {
        hogs.push(zero_window(server.addr, 64, c * 64).await);
    }
    for hog in &hogs {
        assert!(
            hog.statuses.len() <= 32,
            "{} streams answered on one connection",
            hog.statuses.len()
        );
        assert!(hog.retry_after, "every 503 carries Retry-After");
    }
    let page = metrics_page(&server).await;
    let unsent = metric(&page, "hibp_mirror_unsent_body_bytes").expect("unsent bytes gauge");
    // Under the cap, plus at most one body for a connection that held nothing.
    let body_len = synth().range_body(0).len() as u64;
    assert!(
        unsent <= 2 * CAP + body_len,
        "{unsent} bytes waiting to be sent"
    );
    let refused = hogs
        .iter()
        .flat_map(|h| &h.statuses)
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(refused > 0, "streams beyond the cap are refused with 503");
    // A client that reads is served while the hogs hold their bytes.
    let good = client_from(Ipv4Addr::new(127, 0, 0, 5));
    let body = support::get_text(&good, server.url("/range/01000")).await;
    assert_eq!(body, synth().range_body(0x1000));
    // The stalled connections are dropped after the send timeout, and their bytes freed.
    for hog in hogs {
        tokio::time::timeout(Duration::from_secs(10), hog.closed)
            .await
            .expect("a stalled HTTP/2 connection is closed")
            .unwrap();
    }
    let page = metrics_page(&server).await;
    assert_eq!(metric(&page, "hibp_mirror_unsent_body_bytes"), Some(0));
    assert!(
        metric(
            &page,
            "hibp_mirror_connections_closed_total{reason=\"send_stalled\"}"
        ) >= Some(4),
        "{page}"
    );
    server.stop().await;
}

/// Finding 1: an HTTP/2 peer that stops answering keep-alive pings is closed even while it has
/// a stream open (and the send timeout is far away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_peers_that_stop_answering_pings_are_closed() {
    let config = Config {
        h2_keep_alive_interval: Some(Duration::from_millis(200)),
        h2_keep_alive_timeout: Duration::from_millis(300),
        send_timeout: Duration::from_secs(3600),
        header_read_timeout: Duration::from_secs(3600),
        ..support::test_config()
    };
    let server = start(config).await;
    // Raw frames: preface, empty SETTINGS with a zero window, ACK of the server's SETTINGS, then
    // one GET stream; after that the client reads nothing and answers no ping.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut out = H2_PREFACE.to_vec();
    out.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
    // HEADERS (END_STREAM | END_HEADERS) on stream 1, HPACK literals without indexing.
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend_from_slice(&[0x04, 12]); // :path, 12 bytes
    block.extend_from_slice(b"/range/01000");
    block.extend_from_slice(&[0x01, 1, b't']); // :authority t
    let len = block.len();
    out.extend_from_slice(&[0, 0, len as u8, 1, 5, 0, 0, 0, 1]);
    out.extend_from_slice(&block);
    stream.write_all(&out).await.unwrap();
    // The server's SETTINGS, ACK and response HEADERS arrive; then it pings, and gives up.
    let started = Instant::now();
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "a peer that answers no ping is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let page = metrics_page(&server).await;
    assert!(
        metric(
            &page,
            "hibp_mirror_connections_closed_total{reason=\"ping_timeout\"}"
        ) >= Some(1),
        "{page}"
    );
    server.stop().await;
}

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Finding 10: the access log shows `/range` without the prefix unless `log_prefixes` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_prefixes_are_logged_only_when_asked_for() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("hibp_mirror::access=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let client = client_from(Ipv4Addr::LOCALHOST);
    let quiet = start(Config {
        access_log: true,
        ..support::test_config()
    })
    .await;
    assert_eq!(
        support::get(&client, quiet.url("/range/ABCDE"))
            .await
            .status(),
        StatusCode::OK
    );
    quiet.stop().await;
    let verbose = start(Config {
        access_log: true,
        log_prefixes: true,
        ..support::test_config()
    })
    .await;
    assert_eq!(
        support::get(&client, verbose.url("/range/BCDEF"))
            .await
            .status(),
        StatusCode::OK
    );
    verbose.stop().await;
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("path=/range/<prefix>"), "{log}");
    assert!(
        !log.contains("ABCDE"),
        "the prefix is logged by default:\n{log}"
    );
    assert!(log.contains("path=/range/BCDEF"), "{log}");
}

/// HTTP edge cases: `If-None-Match` over several header lines and with commas inside quoted
/// tags (RFC 9110), repeated `mode` refused, CORS on 400, and hyper's own refusals counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_edge_cases_follow_the_rfc_and_are_counted() {
    let server = start(Config {
        header_read_timeout: Duration::from_secs(2),
        ..support::test_config()
    })
    .await;
    let client = client_from(Ipv4Addr::LOCALHOST);
    let url = server.url("/range/01000");
    let etag = support::get(&client, &url).await.headers()["etag"].clone();

    // The matching tag on the second of two header lines.
    let two_lines = client
        .get(&url)
        .header("If-None-Match", "\"nope\"")
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(two_lines.status(), StatusCode::NOT_MODIFIED);
    // Commas inside a quoted tag do not split it: `"x, *, y"` is one tag, not a wildcard.
    let quoted = client
        .get(&url)
        .header("If-None-Match", "\"x, *, y\"")
        .send()
        .await
        .unwrap();
    assert_eq!(quoted.status(), StatusCode::OK);
    let list = format!("\"a,b\", W/\"c\", {}", etag.to_str().unwrap());
    let listed = client
        .get(&url)
        .header("If-None-Match", list)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);

    // `mode` given twice is refused, whatever the order; the reason is readable cross-origin.
    for query in ["?mode=ntlm&mode=sha1", "?mode=sha1&mode=ntlm"] {
        let response = support::get(&client, server.url(&format!("/range/01000{query}"))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert!(response.text().await.unwrap().contains("mode"));
    }
    let bad = support::get(&client, server.url("/range/XYZ")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.headers()["access-control-allow-origin"], "*");

    // hyper's own refusals: 431, 400 and the header timeout.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    let raw = support::raw_exchange(server.addr, big.as_bytes()).await;
    assert!(raw.starts_with(b"HTTP/1.1 431"));
    let raw = support::raw_exchange(server.addr, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    assert!(raw.starts_with(b"HTTP/1.1 400"));
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
    let page = metrics_page(&server).await;
    let closed = |reason: &str| {
        metric(
            &page,
            &format!("hibp_mirror_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(closed("head_too_large"), Some(1), "{page}");
    assert_eq!(closed("bad_request"), Some(1), "{page}");
    // At least the slow client (on a loaded machine another connection may be slow too).
    assert!(closed("head_timeout") >= Some(1), "{page}");
    server.stop().await;
}
