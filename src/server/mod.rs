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
//! - [`tls`]: TLS (rustls) with a certificate reloaded while serving.
//! - [`access`]: routes switched on or off, bearer tokens for the sensitive ones.
//!
//! This module holds the connection loop: [`run`] takes a bound listener and a shutdown future,
//! so tests bind `127.0.0.1:0` and stop the server when they like.

pub mod access;
pub mod app;
pub mod body;
pub mod healthcheck;
pub mod indexes;
pub mod metrics;
pub mod post;
pub mod render;
pub mod route;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::severity::Thresholds;

pub use app::App;
pub use body::ResponseBody;
pub use indexes::{IndexSet, IndexSource, LoadError, ReloadOutcome, Served};
pub use metrics::Metrics;
pub use route::Route;
pub use tls::{Tls, TlsFiles};

/// Address `serve` listens on by default: loopback only, so nothing is exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Default cap on concurrent connections; further clients wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

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

/// Most concurrent HTTP/2 streams per connection.
const H2_MAX_CONCURRENT_STREAMS: u32 = 256;

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
    /// Connection settings.
    fn config(&self) -> &Config;
    /// Counters updated for every request and connection.
    fn metrics(&self) -> &Metrics;
}

impl Handler for App {
    fn handle(&self, route: Route, req: &Request<Incoming>) -> Response<ResponseBody> {
        self.respond_route(route, req)
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
    let result = serve(listener, app, shutdown).await;
    reloaders.abort_all();
    result
}

/// The connection loop: accepts under the connection cap, serves HTTP/1.1 (and h2c when
/// enabled) with `handler` until `shutdown` completes, then drains for at most `drain_timeout`.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let config = handler.config().clone();
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(connection_builder(&config));
    // Tells connection tasks where shutdown stands: those still waiting for their first byte
    // (counted by `graceful` but not yet under its control) leave at `Closing`, so they do not
    // hold up the drain; every connection left at `Cut` is dropped, closing its socket.
    let (phase, phase_seen) = tokio::sync::watch::channel(Phase::Serving);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = config.header_read_timeout;
        let mut phase_seen = phase_seen.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _open = OpenConnection::new(handler.metrics());
            // hyper's header timer starts after protocol detection: bound the wait for the first
            // byte here so an idle connection cannot hold a slot forever.
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(header_read_timeout, stream.peek(&mut first)) => {
                    match peeked {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                }
                _ = phase_seen.wait_for(|&p| p >= Phase::Closing) => return,
            }
            // TLS: the handshake gets the same bound as the request head.
            let stream = match &handler.config().tls {
                None => tls::MaybeTls::Plain(stream),
                Some(tls) => match tls.accept(stream, header_read_timeout).await {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::debug!(error = %err, "TLS handshake failed");
                        return;
                    }
                },
            };
            let service_handler = handler.clone();
            let service = service_fn(move |mut req: Request<Incoming>| {
                let handler = service_handler.clone();
                async move {
                    // POST /checkhash carries the hash in a (small, bounded) body.
                    if req.method() == hyper::Method::POST
                        && Route::of(req.uri().path()) == Route::CheckHash
                    {
                        let posted = post::read(&mut req, header_read_timeout).await;
                        req.extensions_mut().insert(posted);
                    }
                    Ok::<_, Infallible>(respond(&*handler, &req))
                }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = watcher.watch(connection) => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                }
                _ = phase_seen.wait_for(|&p| p == Phase::Cut) => {}
            }
        });
    }
    drop(listener);
    let _ = phase.send(Phase::Closing);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining connections"
    );
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
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

/// Where shutdown stands, as seen by connection tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Accepting and serving.
    Serving,
    /// No longer accepting; connections finish what they are doing.
    Closing,
    /// The drain timed out: every remaining connection is dropped.
    Cut,
}

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

fn connection_builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .max_headers(MAX_REQUEST_HEADERS)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32)
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    if config.http2 {
        builder
    } else {
        builder.http1_only()
    }
}

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

/// Answers one request: routes it, turns a panic into 500, counts it and logs it.
fn respond<H: Handler>(handler: &H, req: &Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    let path = req.uri().path();
    let route = Route::of(path);
    let response = match catch_unwind(AssertUnwindSafe(|| handler.handle(route, req))) {
        Ok(response) => response,
        Err(_) => {
            handler.metrics().panic_caught();
            tracing::error!(
                route = route.name(),
                "request handler panicked; answered 500"
            );
            app::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    handler.metrics().observe(route, status, elapsed);
    if handler.config().access_log {
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = %req.method(),
            route = route.name(),
            path = %route.redact(path),
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
