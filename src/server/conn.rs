//! Connection-level limits: the listening socket's backlog, the per-client-address cap, protocol
//! detection under the header timeout, and a watchdog that bounds every phase of a connection
//! (first request, idle time, stalled output, age), plus the global cap on rendered-but-unsent
//! response bytes.
//!
//! [`serve_stream`] takes any `AsyncRead + AsyncWrite` stream, so a TLS layer can wrap the
//! accepted socket without touching the limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, RETRY_AFTER};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use super::metrics::CloseReason;
use super::{app, respond, Config, Handler, ResponseBody, Route, ACCESS_LOG_TARGET};

/// The HTTP/2 connection preface a client sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Largest chunk a response body is handed over in: the unit of send progress (a peer must take
/// at least this much per `--send-timeout`). Larger than any `/range` body (~40-200 KB), so a
/// body goes out as one chunk in one `writev`: at 64 KiB a typical 78 KB body took two, and the
/// extra write and TCP push cost ~20% of warm `/range` throughput (measured 2026-11-23).
const TRACKED_CHUNK: usize = 1024 * 1024;

/// Time an idle connection gets to close by itself after a graceful shutdown is started.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Longest the watchdog sleeps between checks, whatever the timeouts.
const MAX_WATCH_TICK: Duration = Duration::from_secs(1);

/// `Retry-After` of a 503 answered because too many response bytes are waiting to be sent.
const BUSY_RETRY_AFTER: HeaderValue = HeaderValue::from_static("1");

/// Binds a TCP listener on `addr` with a listen backlog of `backlog` connections (capped by
/// `/proc/sys/net/core/somaxconn`, which the kernel applies anyway). Returns the listener and the
/// backlog actually requested.
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<(TcpListener, u32)> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let backlog = backlog.clamp(1, somaxconn().unwrap_or(u32::MAX));
    Ok((socket.listen(backlog)?, backlog))
}

/// The kernel's cap on listen backlogs, when it can be read.
fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Open connections per client address, capped.
pub(crate) struct PerIp {
    /// Open connections by address; an address leaves the map when its count drops to 0.
    counts: Mutex<HashMap<IpAddr, usize>>,
    /// Most connections one address may hold.
    cap: usize,
}

impl PerIp {
    /// A table allowing `cap` connections per address.
    pub(crate) fn new(cap: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            counts: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        })
    }

    /// Takes a slot for `ip`, or `None` when it already holds `cap` connections.
    pub(crate) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        // An IPv4 client on a dual-stack socket is the same host as on an IPv4 socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place in [`PerIp`], given back on drop.
pub(crate) struct IpSlot {
    /// The table it belongs to.
    table: Arc<PerIp>,
    /// The client address.
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Where shutdown stands, as seen by connection tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Accepting and serving.
    Serving,
    /// No longer accepting; connections finish what they are doing.
    Closing,
    /// The drain timed out: every remaining connection is dropped.
    Cut,
}

/// What every connection task shares: settings, protocol builders and shutdown state.
pub(crate) struct Shared<H> {
    /// The application.
    pub(crate) handler: Arc<H>,
    /// HTTP/1.1 connection settings.
    http1: http1::Builder,
    /// HTTP/2 connection settings.
    http2: http2::Builder<TokioExecutor>,
    /// Where shutdown stands.
    pub(crate) phase: watch::Receiver<Phase>,
    /// Permits for index reads on the blocking pool (see [`super::ReadOffload`]), shared by
    /// every connection.
    reads: Arc<Semaphore>,
    /// Never sent on: the drain ends when the last `Shared` (held by every connection task and
    /// its service) is dropped, closing the channel.
    _alive: mpsc::Sender<()>,
}

impl<H: Handler> Shared<H> {
    /// Settings for `handler`'s connections.
    pub(crate) fn new(
        handler: Arc<H>,
        phase: watch::Receiver<Phase>,
        alive: mpsc::Sender<()>,
    ) -> Shared<H> {
        let config = handler.config();
        let reads = Arc::new(Semaphore::new(config.reads_in_flight.max(1)));
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(super::MAX_REQUEST_HEAD_BYTES)
            .max_headers(super::MAX_REQUEST_HEADERS)
            .keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(super::MAX_REQUEST_HEAD_BYTES as u32)
            .max_concurrent_streams(config.h2_max_concurrent_streams.max(1))
            .keep_alive_interval(config.h2_keep_alive_interval)
            .keep_alive_timeout(config.h2_keep_alive_timeout);
        Shared {
            handler,
            http1,
            http2,
            phase,
            reads,
            _alive: alive,
        }
    }
}

/// Socket options for an accepted connection: no Nagle delay, and TCP keepalive probes so a
/// vanished peer is noticed even when nothing is being sent.
pub(crate) fn tune_socket(stream: &TcpStream, keepalive: Option<Duration>) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = keepalive {
        let probes = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval((idle / 4).max(Duration::from_secs(1)))
            .with_retries(4);
        let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&probes);
    }
}

/// Serves one accepted stream until it ends, a limit closes it, or shutdown cuts it.
///
/// Every phase is bounded: the protocol preface and the first request head within the header
/// timeout from accept; later request heads by hyper's header timeout; idle time by the header
/// timeout; output that makes no progress by the send timeout; the whole connection by the
/// optional maximum age; HTTP/2 peers by keep-alive pings.
pub(crate) async fn serve_stream<S, H>(mut io: S, shared: Arc<Shared<H>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let metrics = shared.handler.metrics();
    let config = shared.handler.config();
    let state = Arc::new(ConnState::new());
    let mut phase = shared.phase.clone();
    // Protocol detection: up to 24 bytes, all within the header timeout.
    let mut prefix = [0u8; H2_PREFACE.len()];
    let mut len = 0;
    let mut h2 = false;
    let detect_by = tokio::time::Instant::now() + config.header_read_timeout;
    if config.http2 {
        loop {
            tokio::select! {
                read = tokio::time::timeout_at(detect_by, io.read(&mut prefix[len..])) => match read {
                    Err(_) => {
                        metrics.connection_closed_for(CloseReason::HeadTimeout);
                        return;
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => {
                        len += n;
                        if prefix[..len] != H2_PREFACE[..len] {
                            break;
                        }
                        if len == H2_PREFACE.len() {
                            h2 = true;
                            break;
                        }
                    }
                },
                // Connections that have not sent a request yet do not hold up the drain.
                _ = phase.wait_for(|&p| p >= Phase::Closing) => return,
            }
        }
    }
    let io = TokioIo::new(Watched {
        inner: io,
        prefix: Bytes::copy_from_slice(&prefix[..len]),
        state: state.clone(),
    });
    let service_shared = shared.clone();
    let service_state = state.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = service_shared.clone();
        let state = service_state.clone();
        async move { Ok::<_, Infallible>(answer(&shared, &state, req).await) }
    });
    if h2 {
        let conn = shared.http2.serve_connection(io, service);
        drive(conn, true, &state, &shared, phase).await;
    } else {
        let conn = shared.http1.serve_connection(io, service);
        drive(conn, false, &state, &shared, phase).await;
    }
}

/// Polls `conn` to its end under the watchdog and the shutdown phase.
async fn drive<C, H>(
    conn: C,
    h2: bool,
    state: &ConnState,
    shared: &Shared<H>,
    mut phase: watch::Receiver<Phase>,
) where
    C: GracefulConnection<Error = hyper::Error>,
    H: Handler,
{
    let metrics = shared.handler.metrics();
    let config = shared.handler.config();
    tokio::pin!(conn);
    // Set once a graceful shutdown has begun: the time by which the connection must be gone.
    let mut closing_by: Option<Instant> = None;
    if *phase.borrow_and_update() >= Phase::Closing {
        conn.as_mut().graceful_shutdown();
        closing_by = Some(Instant::now() + Duration::from_secs(365 * 86400));
    }
    let tick = config
        .header_read_timeout
        .min(config.send_timeout)
        .checked_div(2)
        .unwrap_or_default()
        .clamp(Duration::from_millis(10), MAX_WATCH_TICK);
    loop {
        let now = Instant::now();
        let wake = match closing_by {
            Some(by) => by.min(now + tick),
            None => now + tick,
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    if let Some(reason) = hyper_close_reason(&err, h2, state) {
                        metrics.connection_closed_for(reason);
                    }
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if closing_by.is_some_and(|by| now >= by) {
                    return;
                }
                match state.verdict(now, config) {
                    Some(Verdict::Close(reason)) => {
                        metrics.connection_closed_for(reason);
                        tracing::debug!(reason = reason.name(), "connection closed by the watchdog");
                        return;
                    }
                    Some(Verdict::Shutdown(reason)) if closing_by.is_none() => {
                        metrics.connection_closed_for(reason);
                        conn.as_mut().graceful_shutdown();
                        let grace = match reason {
                            CloseReason::MaxAge => config.drain_timeout,
                            _ => IDLE_CLOSE_GRACE,
                        };
                        closing_by = Some(now + grace);
                    }
                    _ => {}
                }
            }
            changed = phase.changed() => {
                let now_phase = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Cut };
                match now_phase {
                    Phase::Serving => {}
                    Phase::Closing => if closing_by.is_none() {
                        conn.as_mut().graceful_shutdown();
                        closing_by = Some(Instant::now() + Duration::from_secs(365 * 86400));
                    },
                    Phase::Cut => return,
                }
            }
        }
    }
}

/// The reason to count for an error hyper ended a connection with, if it is one of the limits.
fn hyper_close_reason(err: &hyper::Error, h2: bool, state: &ConnState) -> Option<CloseReason> {
    if h2 {
        // hyper's only HTTP/2 timeout is the keep-alive ping's.
        return err.is_timeout().then_some(CloseReason::PingTimeout);
    }
    if err.is_timeout() {
        // hyper's header timer also runs on an idle keep-alive connection: without a byte of a
        // next request, that is an idle connection, not a slow request head.
        let idle = state.requests.load(Ordering::Relaxed) > 0
            && state.read.load(Ordering::Relaxed) == state.read_at_request.load(Ordering::Relaxed);
        Some(if idle {
            CloseReason::Idle
        } else {
            CloseReason::HeadTimeout
        })
    } else if err.is_parse_too_large() {
        Some(CloseReason::HeadTooLarge)
    } else if err.is_parse() {
        Some(CloseReason::BadRequest)
    } else {
        None
    }
}

/// Answers one request: refuses `/range` with 503 when too many response bytes wait to be sent,
/// otherwise responds and tracks the body's bytes until they are sent.
async fn answer<H: Handler>(
    shared: &Shared<H>,
    state: &Arc<ConnState>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let handler = &shared.handler;
    state.request_started();
    let route = Route::of(req.uri().path());
    if route == Route::Range && !admit(handler.as_ref(), state) {
        return busy(handler.as_ref(), &req);
    }
    let mut req = req;
    // POST /checkhash carries the hash in a small body, read here (bounded in size and time)
    // so the routing stays a pure function of the request.
    if req.method() == hyper::Method::POST && route == Route::CheckHash {
        let posted = super::post::read(&mut req, handler.config().header_read_timeout).await;
        req.extensions_mut().insert(posted);
    }
    let response = respond(handler.clone(), shared.reads.clone(), req).await;
    response.map(|body| {
        if body.is_empty() {
            return body;
        }
        ResponseBody::from_chunks(
            body.into_chunks().flat_map(split).map(|chunk| {
                Bytes::from_owner(Tracked::new(chunk, state.clone(), handler.clone()))
            }),
        )
    })
}

/// Whether a new `/range` body may be rendered: always under the cap; between the cap and
/// twice the cap only for a connection with nothing waiting to be sent (so clients that read
/// promptly are still served while stalled ones are refused); never beyond twice the cap.
fn admit<H: Handler>(handler: &H, state: &ConnState) -> bool {
    let cap = handler.config().max_unsent_bytes;
    let held = handler
        .metrics()
        .unsent_body_bytes()
        .load(Ordering::Relaxed);
    held < cap || (held < cap.saturating_mul(2) && state.held.load(Ordering::Relaxed) == 0)
}

/// The 503 answered when [`admit`] refuses.
fn busy<H: Handler>(handler: &H, req: &Request<Incoming>) -> Response<ResponseBody> {
    let mut response = app::text(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many responses waiting to be sent; retry shortly",
    );
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, BUSY_RETRY_AFTER);
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    handler.metrics().observe(Route::Range, 503, Duration::ZERO);
    if handler.config().access_log {
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %req.method(),
            route = Route::Range.name(),
            status = 503,
            "request refused: too many unsent response bytes"
        );
    }
    response
}

/// Splits a chunk into pieces of at most [`TRACKED_CHUNK`] bytes (no copy).
fn split(mut chunk: Bytes) -> impl Iterator<Item = Bytes> {
    std::iter::from_fn(move || {
        if chunk.is_empty() {
            None
        } else {
            Some(chunk.split_to(chunk.len().min(TRACKED_CHUNK)))
        }
    })
}

/// A body chunk counted as unsent (globally and on its connection) until it is dropped, which
/// hyper does once its bytes are written to the socket.
struct Tracked<H: Handler> {
    /// The bytes.
    bytes: Bytes,
    /// The connection's counters.
    conn: Arc<ConnState>,
    /// Holds the global counter (in the metrics).
    handler: Arc<H>,
}

impl<H: Handler> Tracked<H> {
    fn new(bytes: Bytes, conn: Arc<ConnState>, handler: Arc<H>) -> Self {
        let len = bytes.len() as u64;
        handler
            .metrics()
            .unsent_body_bytes()
            .fetch_add(len, Ordering::Relaxed);
        if conn.held.fetch_add(len, Ordering::Relaxed) == 0 {
            // Output starts waiting now: the stall clock starts here.
            conn.progress();
        }
        Tracked {
            bytes,
            conn,
            handler,
        }
    }
}

impl<H: Handler> AsRef<[u8]> for Tracked<H> {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl<H: Handler> Drop for Tracked<H> {
    fn drop(&mut self) {
        let len = self.bytes.len() as u64;
        self.handler
            .metrics()
            .unsent_body_bytes()
            .fetch_sub(len, Ordering::Relaxed);
        self.conn.held.fetch_sub(len, Ordering::Relaxed);
        self.conn.progress();
    }
}

/// What the watchdog decided about a connection.
enum Verdict {
    /// Drop it now.
    Close(CloseReason),
    /// Start a graceful shutdown (HTTP/2 GOAWAY, or close when idle for HTTP/1.1).
    Shutdown(CloseReason),
}

/// One connection's activity, shared by its I/O wrapper, its response bodies and its watchdog.
/// Times are milliseconds since `start`; 0 means "never" where noted.
struct ConnState {
    /// When the connection was accepted.
    start: Instant,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Last request start or body progress (for the idle limit).
    last_active: AtomicU64,
    /// Last time output made progress or started waiting (for the stall limit).
    last_progress: AtomicU64,
    /// Since when a socket write has been blocked, plus 1; 0 when not blocked.
    write_blocked_since: AtomicU64,
    /// Bytes of this connection's response bodies not yet sent.
    held: AtomicU64,
    /// Bytes read from the peer so far.
    read: AtomicU64,
    /// `read` when the last request started.
    read_at_request: AtomicU64,
}

impl ConnState {
    fn new() -> Self {
        ConnState {
            start: Instant::now(),
            requests: AtomicU64::new(0),
            last_active: AtomicU64::new(0),
            last_progress: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            held: AtomicU64::new(0),
            read: AtomicU64::new(0),
            read_at_request: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn request_started(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.read_at_request
            .store(self.read.load(Ordering::Relaxed), Ordering::Relaxed);
        self.last_active.store(self.now_ms(), Ordering::Relaxed);
    }

    fn progress(&self) {
        let now = self.now_ms();
        self.last_progress.store(now, Ordering::Relaxed);
        self.last_active.store(now, Ordering::Relaxed);
    }

    fn wrote(&self, n: usize) {
        if n > 0 {
            self.write_blocked_since.store(0, Ordering::Relaxed);
        }
    }

    fn write_blocked(&self) {
        let now = self.now_ms() + 1;
        let _ =
            self.write_blocked_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Which limit, if any, the connection has reached at `now`.
    fn verdict(&self, now: Instant, config: &Config) -> Option<Verdict> {
        let age = now.saturating_duration_since(self.start);
        let ms = |d: Duration| d.as_millis() as u64;
        let now_ms = ms(age);
        let since = |t: u64| Duration::from_millis(now_ms.saturating_sub(t));
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != 0 && since(blocked - 1) >= config.send_timeout {
            return Some(Verdict::Close(CloseReason::SendStalled));
        }
        let held = self.held.load(Ordering::Relaxed);
        if held > 0 && since(self.last_progress.load(Ordering::Relaxed)) >= config.send_timeout {
            return Some(Verdict::Close(CloseReason::SendStalled));
        }
        if self.requests.load(Ordering::Relaxed) == 0 {
            if age >= config.header_read_timeout {
                return Some(Verdict::Close(CloseReason::HeadTimeout));
            }
        } else if held == 0
            && blocked == 0
            && since(self.last_active.load(Ordering::Relaxed)) >= config.header_read_timeout
        {
            return Some(Verdict::Shutdown(CloseReason::Idle));
        }
        if config.max_connection_age.is_some_and(|max| age >= max) {
            return Some(Verdict::Shutdown(CloseReason::MaxAge));
        }
        None
    }
}

/// The accepted stream as hyper sees it: first the bytes read during protocol detection, then
/// the stream; writes are watched for stalls.
struct Watched<S> {
    /// The accepted stream.
    inner: S,
    /// Bytes read during detection, not yet handed to hyper.
    prefix: Bytes,
    /// Where write stalls are recorded.
    state: Arc<ConnState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        this.state.read.fetch_add(n, Ordering::Relaxed);
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S> Watched<S> {
    fn note(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Pending => self.state.write_blocked(),
            Poll::Ready(Ok(n)) => self.state.wrote(*n),
            Poll::Ready(Err(_)) => {}
        }
    }
}

/// Waits for every connection task to finish (all [`Shared::alive`] senders dropped).
pub(crate) async fn drained(mut alive: mpsc::Receiver<()>) {
    while alive.recv().await.is_some() {}
}
