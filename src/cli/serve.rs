//! `hibp-mirror serve`: the HTTP server, configured by flags or `HIBP_MIRROR_*` environment
//! variables.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use hibp_mirror::server::access::{RouteSet, Tokens};
use hibp_mirror::server::{self, IndexSet, IndexSource, Tls, TlsFiles};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::HashKind;

use super::{at_least_one, Seconds, ENV_INDEX, ENV_NTLM_INDEX};

/// Serve the Pwned Passwords range API (and /checkhash, /healthz, /metrics) over HTTP.
///
/// Without --index and --ntlm-index, serves the bundled sample corpus for both kinds; with only
/// one of them, the other kind is not served. An index file replaced by a rename (what `import`
/// does) is picked up within a second, and SIGHUP reloads at once; a file that fails the open
/// checks is refused and the old index keeps serving. SIGINT/SIGTERM stop accepting and drain
/// in-flight requests. Every option can also be set through the environment.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// SHA-1 index file.
    #[arg(long, value_name = "PATH", env = ENV_INDEX)]
    index: Option<PathBuf>,
    /// NTLM index file (served for `?mode=ntlm`).
    #[arg(long, value_name = "PATH", env = ENV_NTLM_INDEX)]
    ntlm_index: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", env = "HIBP_MIRROR_LISTEN", default_value = server::DEFAULT_LISTEN)]
    listen: String,
    /// gzip level for clients that accept gzip: 0 = stored blocks (no compression, near
    /// identity speed), 1-9 = deflate (smaller bodies, far fewer requests per second).
    #[arg(long, value_name = "0-9", env = "HIBP_MIRROR_GZIP_LEVEL", default_value_t = server::DEFAULT_GZIP_LEVEL,
          value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Smallest counts of the /checkhash severity tiers LOW,MEDIUM,HIGH,CRITICAL.
    #[arg(long, value_name = "L,M,H,C", visible_alias = "thresholds", env = "HIBP_MIRROR_SEVERITY_THRESHOLDS",
          default_value_t = Thresholds::DEFAULT)]
    severity_thresholds: Thresholds,
    /// Most concurrent connections (at least 1); more wait in the listen backlog.
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS,
          value_parser = at_least_one::<usize>)]
    max_connections: usize,
    /// Seconds (> 0) a client gets to send a complete request head.
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_HEADER_TIMEOUT", value_parser = Seconds::parse_positive,
          default_value_t = Seconds(server::DEFAULT_HEADER_READ_TIMEOUT))]
    header_timeout: Seconds,
    /// Seconds in-flight requests get to finish on shutdown (0: stop at once).
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_DRAIN_TIMEOUT", value_parser = Seconds::parse,
          default_value_t = Seconds(server::DEFAULT_DRAIN_TIMEOUT))]
    drain_timeout: Seconds,
    /// Seconds between checks of the index paths for a replaced file (0 disables).
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_WATCH_INTERVAL", value_parser = Seconds::parse,
          default_value_t = Seconds(server::DEFAULT_WATCH_INTERVAL))]
    watch_interval: Seconds,
    /// Log every request (method, route, status, latency; never a hash).
    #[arg(long, env = "HIBP_MIRROR_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
    /// Accept HTTP/2 with prior knowledge (h2c) besides HTTP/1.1.
    #[arg(long, env = "HIBP_MIRROR_HTTP2", default_value_t = true, action = clap::ArgAction::Set)]
    http2: bool,
    /// Serve the check page at `/` (hashes in the browser; sends only a 5-hex prefix).
    #[arg(long, env = "HIBP_MIRROR_PAGE", default_value_t = true, action = clap::ArgAction::Set)]
    page: bool,
    /// Listen backlog: connections the kernel queues while the server is busy (at least 1;
    /// capped by /proc/sys/net/core/somaxconn).
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_BACKLOG", default_value_t = server::DEFAULT_BACKLOG,
          value_parser = at_least_one::<u32>)]
    backlog: u32,
    /// Most concurrent connections from one client address (at least 1); more are closed at
    /// accept.
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_MAX_CONNECTIONS_PER_IP",
          default_value_t = server::DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = at_least_one::<usize>)]
    max_connections_per_ip: usize,
    /// Seconds (> 0) output may make no progress (a peer that reads nothing, or an HTTP/2 peer
    /// that grants no window) before the connection is dropped.
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_SEND_TIMEOUT", value_parser = Seconds::parse_positive,
          default_value_t = Seconds(server::DEFAULT_SEND_TIMEOUT))]
    send_timeout: Seconds,
    /// Seconds between HTTP/2 keep-alive pings (0 disables them).
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_H2_PING_INTERVAL", value_parser = Seconds::parse,
          default_value_t = Seconds(server::DEFAULT_H2_KEEP_ALIVE_INTERVAL))]
    h2_ping_interval: Seconds,
    /// Seconds (> 0) an HTTP/2 keep-alive ping may go unanswered before the connection is closed.
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_H2_PING_TIMEOUT", value_parser = Seconds::parse_positive,
          default_value_t = Seconds(server::DEFAULT_H2_KEEP_ALIVE_TIMEOUT))]
    h2_ping_timeout: Seconds,
    /// Most concurrent HTTP/2 streams per connection (at least 1).
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_H2_MAX_STREAMS",
          default_value_t = server::DEFAULT_H2_MAX_CONCURRENT_STREAMS, value_parser = at_least_one::<u32>)]
    h2_max_streams: u32,
    /// MiB of rendered response bodies that may wait to be sent, across all connections
    /// (at least 1); beyond it /range answers 503 with Retry-After to connections that already
    /// have bytes waiting, and beyond twice it to every connection.
    #[arg(long, value_name = "MIB", env = "HIBP_MIRROR_MAX_UNSENT_MIB",
          default_value_t = server::DEFAULT_MAX_UNSENT_BYTES >> 20, value_parser = at_least_one::<u64>)]
    max_unsent_mib: u64,
    /// Seconds after which a connection is asked to close (HTTP/2 GOAWAY), then dropped after
    /// --drain-timeout (0: no limit).
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_MAX_CONNECTION_AGE", value_parser = Seconds::parse,
          default_value_t = Seconds(std::time::Duration::ZERO))]
    max_connection_age: Seconds,
    /// Idle seconds before TCP keepalive probes on accepted connections (0 disables them).
    #[arg(long, value_name = "SECS", env = "HIBP_MIRROR_TCP_KEEPALIVE", value_parser = Seconds::parse,
          default_value_t = Seconds(server::DEFAULT_TCP_KEEPALIVE))]
    tcp_keepalive: Seconds,
    /// Show /range prefixes in the access log (off by default: a prefix with a timestamp is 20
    /// bits of a user's hash).
    #[arg(long, env = "HIBP_MIRROR_LOG_PREFIXES")]
    log_prefixes: bool,
    /// Log format.
    #[arg(long, env = "HIBP_MIRROR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where index reads run: auto (inline when the pages are in the page cache, on the blocking
    /// pool when they must come from disk), always (blocking pool), never (inline on the workers,
    /// a cold window read ahead first; with `--workers 16`, faster on a mostly cold index).
    #[arg(long, env = "HIBP_MIRROR_READ_OFFLOAD", default_value = "auto")]
    read_offload: server::ReadOffload,
    /// How index bytes not in the page cache are read: cache (through the page cache, which
    /// keeps them for the next request) or direct (O_DIRECT into a buffer: less CPU per cold
    /// request, nothing cached; for hosts that cannot hold the index).
    #[arg(long, env = "HIBP_MIRROR_COLD_READS", default_value = "cache")]
    cold_reads: server::ColdReads,
    /// What reads index windows not in the page cache: io-uring (the request's task submits
    /// one read and sleeps; no thread blocks), threads (the request runs on the blocking pool),
    /// or auto (io-uring where the kernel allows it, else threads).
    #[arg(long, env = "HIBP_MIRROR_READ_ENGINE", default_value = "auto")]
    read_engine: server::ReadEngine,
    /// Most index reads from disk in flight at once, at least 1 (the disk queue depth the server
    /// drives; further cold requests wait).
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_READS_IN_FLIGHT",
          value_parser = at_least_one::<usize>, default_value_t = server::DEFAULT_READS_IN_FLIGHT)]
    reads_in_flight: usize,
    /// TLS certificate chain (PEM, leaf first); serves HTTPS instead of HTTP. Needs --tls-key.
    /// Reloaded on SIGHUP and when the file is replaced; a bad new pair is refused.
    #[arg(
        long,
        value_name = "PEM",
        env = "HIBP_MIRROR_TLS_CERT",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for --tls-cert.
    #[arg(
        long,
        value_name = "PEM",
        env = "HIBP_MIRROR_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) for mutual TLS: clients must present a certificate signed by one.
    #[arg(
        long,
        value_name = "PEM",
        env = "HIBP_MIRROR_TLS_CLIENT_CA",
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,
    /// Routes served (comma-separated: range,checkhash,healthz,metrics,page); others answer 404.
    #[arg(long, value_name = "LIST", env = "HIBP_MIRROR_ROUTES", default_value_t = RouteSet::ALL)]
    routes: RouteSet,
    /// File of bearer tokens, one per line (blank and # lines ignored); the --token-routes then
    /// need `Authorization: Bearer <token>`. Reloaded on SIGHUP.
    #[arg(long, value_name = "FILE", env = "HIBP_MIRROR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Routes that need a token when --token-file is given.
    #[arg(long, value_name = "LIST", env = "HIBP_MIRROR_TOKEN_ROUTES", default_value_t = RouteSet::DEFAULT_TOKEN_ROUTES)]
    token_routes: RouteSet,
    /// Runtime worker threads, at least 1 (default: one per CPU).
    #[arg(long, value_name = "N", env = "HIBP_MIRROR_WORKERS",
          value_parser = at_least_one::<usize>)]
    workers: Option<usize>,
}

/// Format of the log lines on stderr.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl ServeArgs {
    /// The index sources: the bundled sample for both kinds when neither path is given.
    fn sources(&self) -> (Option<IndexSource>, Option<IndexSource>) {
        match (&self.index, &self.ntlm_index) {
            (None, None) => (Some(IndexSource::Sample), Some(IndexSource::Sample)),
            (sha1, ntlm) => (
                sha1.clone().map(IndexSource::File),
                ntlm.clone().map(IndexSource::File),
            ),
        }
    }

    /// The server's configuration for these flags (loads the TLS files and the token file).
    fn config(&self) -> Result<server::Config> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                };
                Some(Arc::new(
                    Tls::load(files, self.http2).context("cannot set up TLS")?,
                ))
            }
            _ => None,
        };
        let tokens = match &self.token_file {
            Some(path) => Some(Arc::new(Tokens::load(path)?)),
            None => None,
        };
        Ok(server::Config {
            gzip_level: self.gzip_level,
            thresholds: self.severity_thresholds,
            max_connections: self.max_connections,
            header_read_timeout: self.header_timeout.0,
            drain_timeout: self.drain_timeout.0,
            access_log: self.access_log,
            watch_interval: Some(self.watch_interval.0).filter(|d| !d.is_zero()),
            reload_on_sighup: true,
            http2: self.http2,
            page: self.page,
            read_offload: self.read_offload,
            cold_reads: self.cold_reads,
            read_engine: self.read_engine()?,
            reads_in_flight: self.reads_in_flight,
            max_connections_per_ip: self.max_connections_per_ip,
            send_timeout: self.send_timeout.0,
            h2_keep_alive_interval: Some(self.h2_ping_interval.0).filter(|d| !d.is_zero()),
            h2_keep_alive_timeout: self.h2_ping_timeout.0,
            h2_max_concurrent_streams: self.h2_max_streams,
            max_unsent_bytes: self.max_unsent_mib.saturating_mul(1 << 20),
            max_connection_age: Some(self.max_connection_age.0).filter(|d| !d.is_zero()),
            tcp_keepalive: Some(self.tcp_keepalive.0).filter(|d| !d.is_zero()),
            log_prefixes: self.log_prefixes,
            file_leases: true,
            tls,
            routes: self.routes,
            tokens,
            token_routes: self.token_routes,
        })
    }
}

impl ServeArgs {
    /// `--read-engine`, checked against what the kernel allows: `auto` becomes `threads`
    /// (with a warning) where io_uring cannot be set up, and `io-uring` is refused there.
    fn read_engine(&self) -> Result<server::ReadEngine> {
        use server::ReadEngine;
        if self.read_engine == ReadEngine::Threads {
            return Ok(self.read_engine);
        }
        match (server::uring::Ring::available(), self.read_engine) {
            (Ok(()), engine) => Ok(engine),
            (Err(e), ReadEngine::IoUring) => {
                Err(e).context("--read-engine io-uring: this kernel does not allow io_uring here")
            }
            (Err(e), _) => {
                tracing::warn!(error = %e, "no io_uring here (kernel setting or seccomp); cold reads run on the blocking pool");
                Ok(ReadEngine::Threads)
            }
        }
    }
}

/// Builds the runtime and runs the server until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> Result<()> {
    init_logging(args.log_format);
    let (sha1, ntlm) = args.sources();
    if args.index.is_none() && args.ntlm_index.is_none() {
        tracing::warn!("no --index or --ntlm-index given: serving the bundled sample corpus (sample counts, not real data)");
    }
    let indexes = IndexSet::open(sha1, ntlm).context("cannot load the index")?;
    let config = args.config()?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers);
    }
    // The blocking pool runs cold index reads (capped by --reads-in-flight) besides reloads.
    runtime.max_blocking_threads(config.reads_in_flight + 16);
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let addr = tokio::net::lookup_host(&args.listen)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .with_context(|| format!("cannot resolve the listen address {}", args.listen))?;
        let (listener, backlog) = server::bind(addr, args.backlog)
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        if backlog < args.backlog {
            tracing::warn!(requested = args.backlog, backlog, "--backlog capped by /proc/sys/net/core/somaxconn");
        }
        let shutdown = server::shutdown_signal()?;
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            if let Some(served) = indexes.get(kind) {
                tracing::info!(kind = %kind, source = %served.source(), records = served.header().record_count, build_time = served.header().build_time, "index loaded");
            }
        }
        tracing::info!(address = %listener.local_addr()?, scheme, "listening");
        let app = Arc::new(server::App::new(Arc::new(indexes), config));
        server::run(listener, app, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
