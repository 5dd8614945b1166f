//! The HTTP server: the upstream Pwned Passwords range API (`/range/{prefix}`), a full-hash check
//! for trusted callers (`/checkhash/{hash}`), `/healthz` and `/metrics`, over the indexes of an
//! [`IndexSet`] that can be swapped while serving.
//!
//! # Layout
//! - [`app`]: pure request -> response routing for every endpoint (no I/O).
//! - [`render`]: `/range` bodies, padding rows and gzip framing (the hot path).
//! - [`indexes`]: the hot-swappable indexes and their reload triggers (SIGHUP, file replaced).
//! - [`metrics`]: request counters and histograms in the Prometheus text format.
//! - [`route`]: route classification and the privacy-safe form of a path for logs.
//! - [`body`]: the response body type.
//! - [`healthcheck`]: the client side of `/healthz`, for container health checks.
//! - [`page`]: the check page at `/` (embedded HTML, script and style) and `/config.json`.
//! - [`conn`]: connection limits (backlog, per-address cap, timeouts of every phase, unsent
//!   bytes) around each accepted stream.
//! - [`tls`]: TLS (rustls) with a certificate reloaded while serving.
//! - [`access`]: routes switched on or off, bearer tokens for the sensitive ones.
//!
//! This module holds the connection loop: [`run`] takes a bound listener and a shutdown future,
//! so tests bind `127.0.0.1:0` and stop the server when they like.

pub mod access;
pub mod app;
pub mod body;
pub mod conn;
pub mod direct;
pub mod healthcheck;
pub mod indexes;
pub mod metrics;
pub mod page;
pub mod post;
pub mod render;
pub mod route;
pub mod tls;
pub mod uring;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::severity::Thresholds;
use conn::Phase;

pub use app::App;
pub use body::ResponseBody;
pub use conn::bind;
pub use indexes::{IndexSet, IndexSource, LoadError, ReloadOutcome, Served};
pub use metrics::{CloseReason, Metrics};
pub use route::Route;
pub use tls::{Tls, TlsFiles};

/// Address `serve` listens on by default: loopback only, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Default cap on concurrent connections; further clients wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Default listen backlog (capped by `/proc/sys/net/core/somaxconn`): room for a burst of
/// connections while the accept loop catches up, instead of dropped SYNs and 1 s retransmits.
pub const DEFAULT_BACKLOG: u32 = 4096;

/// Default cap on concurrent connections from one client address: well below
/// [`DEFAULT_MAX_CONNECTIONS`], so one host cannot take every slot.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;

/// Default time output may make no progress (a peer that reads nothing, or an HTTP/2 peer that
/// grants no window) before the connection is dropped.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Default interval of HTTP/2 keep-alive pings.
pub const DEFAULT_H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// Default time an HTTP/2 keep-alive ping may go unanswered before the connection is closed.
pub const DEFAULT_H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Default most concurrent HTTP/2 streams per connection.
pub const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 32;

/// Default cap on bytes of rendered response bodies not yet sent, across all connections.
pub const DEFAULT_MAX_UNSENT_BYTES: u64 = 64 << 20;

/// Default idle time before TCP keepalive probes start on an accepted connection.
pub const DEFAULT_TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Default time a client has to send a complete request head (slowloris defence).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default interval at which the index paths are checked for a replaced file.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Default gzip level: 0 = stored blocks (valid gzip, no compression, near-identity speed).
pub const DEFAULT_GZIP_LEVEL: u32 = 0;

/// Largest request head (request line plus headers) accepted, in bytes.
pub const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// Most request headers accepted.
pub const MAX_REQUEST_HEADERS: usize = 64;

/// Default cap on index reads running on the blocking pool at once (requests whose pages are
/// not in the page cache). Enough to keep a virtual disk's queue full (fio on this project's
/// test VM peaks at QD32-64); more only adds threads waiting in the same queue.
pub const DEFAULT_READS_IN_FLIGHT: usize = 64;

/// Where requests that read the index run. See [`Config::read_offload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOffload {
    /// Inline when the pages needed are in the page cache (checked with `mincore`), on the
    /// blocking pool otherwise: warm requests pay no thread hop, cold ones never stall a runtime
    /// worker on a page fault.
    #[default]
    Auto,
    /// Every request on the blocking pool (for comparisons and tests).
    Always,
    /// Every request inline on the runtime workers: a page fault blocks a worker, so at most
    /// `workers` requests wait for the disk at once (a cold window is still read ahead in one
    /// batch). Fine when the index fits in RAM and stays cached; with more workers than cores
    /// (16 here) it also serves a mostly cold index faster than `Auto`, at a cost to warm
    /// requests (README "Performance").
    Never,
}

impl std::str::FromStr for ReadOffload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ReadOffload::Auto),
            "always" => Ok(ReadOffload::Always),
            "never" => Ok(ReadOffload::Never),
            other => Err(format!(
                "unknown read offload mode {other:?} (auto, always or never)"
            )),
        }
    }
}

/// How index bytes that are not in the page cache are read. See [`Config::cold_reads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColdReads {
    /// Through the mapping and the page cache (one `MADV_WILLNEED` for the window, then page
    /// faults): what is read stays cached for the next request.
    #[default]
    Cache,
    /// One `O_DIRECT` read of the window into a buffer, answered from there (see
    /// [`direct`]): less CPU per cold request, but what is read is not cached. Falls back to
    /// `Cache` where the file system has no `O_DIRECT`.
    Direct,
}

impl std::str::FromStr for ColdReads {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cache" => Ok(ColdReads::Cache),
            "direct" => Ok(ColdReads::Direct),
            other => Err(format!(
                "unknown cold read mode {other:?} (cache or direct)"
            )),
        }
    }
}

/// What reads an index window that is not in the page cache. See [`Config::read_engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadEngine {
    /// io_uring where the kernel allows it (see [`uring`]), else `Threads`.
    #[default]
    Auto,
    /// io_uring: the request's task submits one read of the window and sleeps; no thread
    /// blocks. With [`ColdReads::Cache`] the read goes through the page cache (readahead off),
    /// with [`ColdReads::Direct`] around it. `serve` refuses to start where the kernel does not
    /// allow it.
    IoUring,
    /// The blocking pool: the request runs there and faults the window in through the mapping
    /// ([`ColdReads::Cache`], after one `MADV_WILLNEED`) or `pread`s it ([`ColdReads::Direct`]).
    Threads,
}

impl std::str::FromStr for ReadEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ReadEngine::Auto),
            "io-uring" => Ok(ReadEngine::IoUring),
            "threads" => Ok(ReadEngine::Threads),
            other => Err(format!(
                "unknown read engine {other:?} (auto, io-uring or threads)"
            )),
        }
    }
}

/// Tracing target of the access log, so it can be filtered on its own (`RUST_LOG`).
pub const ACCESS_LOG_TARGET: &str = "hibp_mirror::access";

/// Server settings. [`Config::default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// gzip level for clients that accept gzip: 0 sends stored blocks (no compression, cheap),
    /// 1-9 compress (smaller, much slower).
    pub gzip_level: u32,
    /// Count thresholds of the `/checkhash` severity tiers.
    pub thresholds: Thresholds,
    /// Cap on concurrent connections.
    pub max_connections: usize,
    /// Time a client gets to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish after shutdown begins.
    pub drain_timeout: Duration,
    /// Whether each request is logged (target [`ACCESS_LOG_TARGET`]).
    pub access_log: bool,
    /// How often [`run`] checks the index paths for a replaced file; `None` disables it.
    pub watch_interval: Option<Duration>,
    /// Whether [`run`] reloads the indexes on SIGHUP.
    pub reload_on_sighup: bool,
    /// Whether HTTP/2 with prior knowledge (h2c) is accepted besides HTTP/1.1.
    pub http2: bool,
    /// Whether the check page (`/`, its assets and `/config.json`) is served; 404 when off.
    pub page: bool,
    /// Where index reads run: inline, on the blocking pool, or chosen per request by page-cache
    /// residency (the default).
    pub read_offload: ReadOffload,
    /// How index bytes that are not in the page cache are read (through it, or directly).
    pub cold_reads: ColdReads,
    /// What reads cold index windows (io_uring or the blocking pool).
    pub read_engine: ReadEngine,
    /// Cap on index reads in flight at once, on the blocking pool or io_uring (the disk queue
    /// depth the server can drive); further cold requests wait their turn.
    pub reads_in_flight: usize,
    /// Cap on concurrent connections from one client address (IPv4-mapped IPv6 counts as
    /// IPv4); further connections from it are closed at accept.
    pub max_connections_per_ip: usize,
    /// Time output may make no progress before the connection is dropped: a socket write
    /// blocked this long, or response bytes waiting this long with none sent.
    pub send_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings; `None` sends none.
    pub h2_keep_alive_interval: Option<Duration>,
    /// Time an HTTP/2 keep-alive ping may go unanswered.
    pub h2_keep_alive_timeout: Duration,
    /// Most concurrent HTTP/2 streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// Cap on bytes of rendered-but-unsent response bodies across all connections; beyond it
    /// `/range` answers 503 with `Retry-After` (see [`conn`]).
    pub max_unsent_bytes: u64,
    /// Age at which a connection is asked to close (HTTP/2 GOAWAY) and then dropped after
    /// `drain_timeout`; `None` for no limit.
    pub max_connection_age: Option<Duration>,
    /// Idle time before TCP keepalive probes on accepted sockets; `None` disables them.
    pub tcp_keepalive: Option<Duration>,
    /// Whether the access log shows `/range` prefixes (off: a prefix plus a timestamp is 20
    /// bits of a user's hash).
    pub log_prefixes: bool,
    /// Whether [`run`] takes a read lease on each served index file (Linux), so a truncation or
    /// in-place overwrite waits until the mapping is dropped instead of crashing the process
    /// with `SIGBUS`. Off, in-place changes are caught only by the watch poll.
    pub file_leases: bool,
    /// TLS for every connection; `None` serves plain HTTP. Reloaded with SIGHUP and the watcher.
    pub tls: Option<Arc<Tls>>,
    /// Routes served; the others answer 404.
    pub routes: access::RouteSet,
    /// Bearer tokens; `None`: no route needs one. Reloaded with SIGHUP.
    pub tokens: Option<Arc<access::Tokens>>,
    /// Routes that need a token when `tokens` is set.
    pub token_routes: access::RouteSet,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gzip_level: DEFAULT_GZIP_LEVEL,
            thresholds: Thresholds::DEFAULT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            access_log: true,
            watch_interval: Some(DEFAULT_WATCH_INTERVAL),
            reload_on_sighup: true,
            http2: true,
            page: true,
            read_offload: ReadOffload::Auto,
            cold_reads: ColdReads::Cache,
            read_engine: ReadEngine::Auto,
            reads_in_flight: DEFAULT_READS_IN_FLIGHT,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            h2_keep_alive_interval: Some(DEFAULT_H2_KEEP_ALIVE_INTERVAL),
            h2_keep_alive_timeout: DEFAULT_H2_KEEP_ALIVE_TIMEOUT,
            h2_max_concurrent_streams: DEFAULT_H2_MAX_CONCURRENT_STREAMS,
            max_unsent_bytes: DEFAULT_MAX_UNSENT_BYTES,
            max_connection_age: None,
            tcp_keepalive: Some(DEFAULT_TCP_KEEPALIVE),
            log_prefixes: false,
            file_leases: true,
            tls: None,
            routes: access::RouteSet::ALL,
            tokens: None,
            token_routes: access::RouteSet::DEFAULT_TOKEN_ROUTES,
        }
    }
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The SIGHUP or shutdown signal handler could not be installed.
    #[error("cannot install a signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// What the connection loop needs from an application: routing, settings and counters.
///
/// [`App`] is the real one; tests wrap it to inject faults (a panicking route).
pub trait Handler: Send + Sync + 'static {
    /// Answers one request classified as `route`. A panic is caught and answered with 500.
    fn handle(&self, route: Route, req: &Request<Incoming>) -> Response<ResponseBody>;
    /// Whether answering may block on disk reads (index pages not in the page cache), so the
    /// connection loop runs [`Handler::handle`] on the blocking pool (with
    /// [`ReadOffload::Auto`]). Default: never.
    fn may_block(&self, _route: Route, _req: &Request<Incoming>) -> bool {
        false
    }
    /// Reads what `req` needs from disk ahead of [`Handler::handle`], where blocking is allowed,
    /// when [`Handler::may_block`] said it may block (with [`ColdReads::Direct`], a direct read
    /// of the window, left in the request's extensions). Default: nothing.
    fn read_cold(&self, _route: Route, _req: &mut Request<Incoming>) {}
    /// [`Handler::read_cold`] without blocking a thread (with [`ReadEngine`] io_uring):
    /// returns whether it left what `req` needs in its extensions, so that
    /// [`Handler::handle`] can run inline. Default: does nothing and returns false.
    fn read_cold_async(
        &self,
        _route: Route,
        _req: &mut Request<Incoming>,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// Connection settings.
    fn config(&self) -> &Config;
    /// Counters updated for every request and connection.
    fn metrics(&self) -> &Metrics;
}

impl Handler for App {
    fn handle(&self, route: Route, req: &Request<Incoming>) -> Response<ResponseBody> {
        self.respond_route(route, req)
    }

    fn may_block(&self, route: Route, req: &Request<Incoming>) -> bool {
        App::may_block(self, route, req)
    }

    fn read_cold(&self, route: Route, req: &mut Request<Incoming>) {
        App::read_cold(self, route, req)
    }

    fn read_cold_async(
        &self,
        route: Route,
        req: &mut Request<Incoming>,
    ) -> impl Future<Output = bool> + Send {
        App::read_cold_async(self, route, req)
    }

    fn config(&self) -> &Config {
        App::config(self)
    }

    fn metrics(&self) -> &Metrics {
        App::metrics(self)
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests for at
/// most `drain_timeout`. Also watches the index files and SIGHUP, as configured.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let mut reloaders = JoinSet::new();
    if let Some(interval) = app.config().watch_interval {
        reloaders.spawn(app.indexes().clone().watch(interval));
        if let Some(tls) = &app.config().tls {
            reloaders.spawn(tls.clone().watch(interval));
        }
    }
    if app.config().reload_on_sighup {
        // Install the handler now, so a SIGHUP right after start is not fatal to the process.
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(ServeError::Signal)?;
        let indexes = app.indexes().clone();
        let tls = app.config().tls.clone();
        let tokens = app.config().tokens.clone();
        reloaders.spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading indexes");
                let indexes = indexes.clone();
                let _ = tokio::task::spawn_blocking(move || indexes.reload_all(true)).await;
                // Errors are logged by `reload`; the previous certificate and tokens stay.
                if let Some(tls) = &tls {
                    let _ = tls.reload();
                }
                if let Some(tokens) = &tokens {
                    let _ = tokens.reload();
                }
            }
        });
    }
    if app.config().file_leases {
        // The handler first: SIGIO, sent when a writer breaks a lease, ends a process without one.
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::io()) {
            Ok(mut sigio) => {
                let indexes = app.indexes().clone();
                indexes.enable_leases();
                reloaders.spawn(async move {
                    while sigio.recv().await.is_some() {
                        indexes.check_in_place();
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "no SIGIO handler; index files get no lease"),
        }
    }
    let result = serve(listener, app, shutdown).await;
    reloaders.abort_all();
    result
}

/// The connection loop: accepts under the connection cap and the per-address cap, serves
/// HTTP/1.1 (and h2c when enabled) with `handler` until `shutdown` completes, then drains for at
/// most `drain_timeout`. Every connection runs under the limits of [`conn`].
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let config = handler.config().clone();
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_ip = conn::PerIp::new(config.max_connections_per_ip);
    // Tells connection tasks where shutdown stands: those still waiting for their first request
    // leave at `Closing`, so they do not hold up the drain; every connection left at `Cut` is
    // dropped, closing its socket.
    let (phase, phase_seen) = tokio::sync::watch::channel(Phase::Serving);
    let (alive, all_gone) = tokio::sync::mpsc::channel::<()>(1);
    let shared = Arc::new(conn::Shared::new(handler.clone(), phase_seen, alive));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        // The accept loop does as little as possible per connection (everything else happens in
        // the connection's task), so bursts drain from the backlog quickly.
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.acquire(peer.ip()) else {
            handler
                .metrics()
                .connection_closed_for(metrics::CloseReason::PerIpLimit);
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let handler = shared.handler.clone();
            let _open = OpenConnection::new(handler.metrics());
            conn::tune_socket(&stream, handler.config().tcp_keepalive);
            match handler.config().tls.clone() {
                None => conn::serve_stream(stream, shared).await,
                // The handshake gets the same bound as a request head.
                Some(tls) => match tls
                    .accept(stream, handler.config().header_read_timeout)
                    .await
                {
                    Ok(stream) => conn::serve_stream(stream, shared).await,
                    Err(err) => tracing::debug!(error = %err, "TLS handshake failed"),
                },
            }
        });
    }
    drop(listener);
    drop(shared);
    let _ = phase.send(Phase::Closing);
    tracing::info!(
        connections = handler.metrics().connections_open(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(config.drain_timeout, conn::drained(all_gone))
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_secs = config.drain_timeout.as_secs_f64(),
            "drain timed out; closing the remaining connections"
        );
        let _ = phase.send(Phase::Cut);
    }
    Ok(())
}

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Counts a connection as open for as long as it lives (also when its task is aborted).
struct OpenConnection<'a> {
    /// Where the open-connection gauge lives.
    metrics: &'a Metrics,
}

impl<'a> OpenConnection<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.connection_opened();
        OpenConnection { metrics }
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// Answers one request: routes it (on the blocking pool when its index reads may fault, see
/// [`ReadOffload`]), turns a panic into 500, counts it and logs it.
pub(crate) async fn respond<H: Handler>(
    handler: Arc<H>,
    reads: Arc<Semaphore>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let route = Route::of(req.uri().path());
    let config = handler.config();
    // Never: inline, but a cold window is still asked for in one batch (a `/range` body then
    // waits for one round of reads, not for a fault per page in turn) or read directly.
    // Always moves every read without asking, unless direct reads need to know which are cold.
    let cold = match config.read_offload {
        ReadOffload::Never | ReadOffload::Auto => handler.may_block(route, &req),
        ReadOffload::Always => {
            config.cold_reads == ColdReads::Direct && handler.may_block(route, &req)
        }
    };
    let offload = match config.read_offload {
        ReadOffload::Never => false,
        ReadOffload::Always => true,
        ReadOffload::Auto => cold,
    };
    let mut req = req;
    if cold {
        let permit = reads.acquire().await;
        if handler.read_cold_async(route, &mut req).await {
            drop(permit);
            let response = answer(&*handler, route, &req);
            return log_response(&*handler, route, &req, started, response);
        }
    }
    let (response, req) = if offload {
        let permit = reads.acquire_owned().await;
        let worker = handler.clone();
        let method = req.method().clone();
        let uri = req.uri().clone();
        match tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if cold {
                worker.read_cold(route, &mut req);
            }
            (answer(&*worker, route, &req), req)
        })
        .await
        {
            Ok(answered) => answered,
            // Only when the runtime shuts down under the request (panics are caught in `answer`).
            Err(_) => {
                let mut stub = Request::new(());
                *stub.method_mut() = method;
                *stub.uri_mut() = uri;
                let response = app::text(StatusCode::SERVICE_UNAVAILABLE, "Server shutting down");
                return log_response(&*handler, route, &stub, started, response);
            }
        }
    } else {
        if cold {
            handler.read_cold(route, &mut req);
        }
        (answer(&*handler, route, &req), req)
    };
    log_response(&*handler, route, &req, started, response)
}

/// Routes one request, turning a panic into 500.
fn answer<H: Handler>(
    handler: &H,
    route: Route,
    req: &Request<Incoming>,
) -> Response<ResponseBody> {
    match catch_unwind(AssertUnwindSafe(|| handler.handle(route, req))) {
        Ok(response) => response,
        Err(_) => {
            handler.metrics().panic_caught();
            tracing::error!(
                route = route.name(),
                "request handler panicked; answered 500"
            );
            app::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// Counts and logs an answered request.
fn log_response<H: Handler, B>(
    handler: &H,
    route: Route,
    req: &Request<B>,
    started: Instant,
    response: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let path = req.uri().path();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    handler.metrics().observe(route, status, elapsed);
    if handler.config().access_log {
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %req.method(),
            route = route.name(),
            path = %route.redact(path, handler.config().log_prefixes),
            status,
            latency_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    response
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when this is
/// called, so signals that arrive before the future is polled are not lost.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
        }
    })
}
