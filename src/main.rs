//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hibp_mirror::server::{self, IndexSet, IndexSource};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::{sample, Hash, HashKind, Index, MappedIndex};

/// Self-hosted, offline mirror of the Have I Been Pwned Pwned Passwords range API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check passwords (or full hashes) read from standard input against an index.
    ///
    /// Reads one password per line and hashes it locally; passwords are never echoed. Each input
    /// line produces one output line `HASH:COUNT` (COUNT 0 when absent), in input order. With
    /// `--hashes`, reads full SHA-1 or NTLM hashes (any case) instead of passwords. Without
    /// `--index`, checks against the bundled sample corpus.
    Check {
        /// Index file to check against (default: the bundled SHA-1 sample).
        #[arg(long, env = "HIBP_MIRROR_INDEX")]
        index: Option<PathBuf>,
        /// Read full hashes instead of passwords.
        #[arg(long)]
        hashes: bool,
    },
    /// Print an index's header and statistics.
    Info {
        /// The index file.
        index: PathBuf,
    },
    /// Check every byte of an index: checksum, sort order and overflow table.
    ///
    /// Exits non-zero and names the first fault if the file is corrupt.
    Verify {
        /// The index file.
        index: PathBuf,
    },
    /// Serve the Pwned Passwords range API (and /checkhash, /healthz, /metrics) over HTTP.
    ///
    /// Without --index and --ntlm-index, serves the bundled sample corpus for both kinds. An
    /// index file replaced by a rename (what `import` does) is picked up within a second, and
    /// SIGHUP reloads at once; a file that fails the open checks is refused and the old index
    /// keeps serving. SIGINT/SIGTERM stop accepting and drain in-flight requests.
    Serve(ServeArgs),
}

/// Options of `serve`; every one can also be set through the environment.
#[derive(clap::Args)]
struct ServeArgs {
    /// SHA-1 index file.
    #[arg(long, env = "HIBP_MIRROR_INDEX")]
    index: Option<PathBuf>,
    /// NTLM index file (served for `?mode=ntlm`).
    #[arg(long, env = "HIBP_MIRROR_NTLM_INDEX")]
    ntlm_index: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "HIBP_MIRROR_LISTEN", default_value = server::DEFAULT_LISTEN)]
    listen: String,
    /// gzip level for clients that accept gzip: 0 = stored blocks (no compression, near
    /// identity speed), 1-9 = deflate (smaller bodies, far fewer requests per second).
    #[arg(long, env = "HIBP_MIRROR_GZIP_LEVEL", default_value_t = server::DEFAULT_GZIP_LEVEL,
          value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Smallest counts of the /checkhash severity tiers low,medium,high,critical.
    #[arg(long, env = "HIBP_MIRROR_SEVERITY_THRESHOLDS", default_value_t = Thresholds::DEFAULT)]
    severity_thresholds: Thresholds,
    /// Most concurrent connections; more wait in the listen backlog.
    #[arg(long, env = "HIBP_MIRROR_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Seconds a client gets to send a complete request head.
    #[arg(long, env = "HIBP_MIRROR_HEADER_TIMEOUT", default_value_t = server::DEFAULT_HEADER_READ_TIMEOUT.as_secs_f64())]
    header_timeout: f64,
    /// Seconds in-flight requests get to finish on shutdown.
    #[arg(long, env = "HIBP_MIRROR_DRAIN_TIMEOUT", default_value_t = server::DEFAULT_DRAIN_TIMEOUT.as_secs_f64())]
    drain_timeout: f64,
    /// Seconds between checks of the index paths for a replaced file (0 disables).
    #[arg(long, env = "HIBP_MIRROR_WATCH_INTERVAL", default_value_t = server::DEFAULT_WATCH_INTERVAL.as_secs_f64())]
    watch_interval: f64,
    /// Log every request (method, route, status, latency; never a hash).
    #[arg(long, env = "HIBP_MIRROR_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,
    /// Accept HTTP/2 with prior knowledge (h2c) besides HTTP/1.1.
    #[arg(long, env = "HIBP_MIRROR_HTTP2", default_value_t = true, action = clap::ArgAction::Set)]
    http2: bool,
    /// Log format.
    #[arg(long, env = "HIBP_MIRROR_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long, env = "HIBP_MIRROR_WORKERS")]
    workers: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hibp-mirror: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Check { index, hashes } => match index {
            Some(path) => check(&open_index(&path)?, hashes),
            None => {
                eprintln!("hibp-mirror: no --index given, checking against the bundled sample");
                check(&sample::sample_index(HashKind::Sha1), hashes)
            }
        },
        Command::Info { index } => info(&open_index(&index)?),
        Command::Verify { index: path } => {
            let index = open_index(&path)?;
            index
                .verify()
                .with_context(|| format!("{} is corrupt", path.display()))?;
            println!("{}: OK ({} records)", path.display(), index.len());
            Ok(())
        }
        Command::Serve(args) => serve(args),
    }
}

/// Builds the runtime and runs the server until SIGINT/SIGTERM.
fn serve(args: ServeArgs) -> Result<()> {
    init_logging(&args.log_format);
    let (sha1, ntlm) = match (&args.index, &args.ntlm_index) {
        (None, None) => {
            tracing::warn!("no --index or --ntlm-index given: serving the bundled sample corpus (sample counts, not real data)");
            (Some(IndexSource::Sample), Some(IndexSource::Sample))
        }
        (sha1, ntlm) => (
            sha1.clone().map(IndexSource::File),
            ntlm.clone().map(IndexSource::File),
        ),
    };
    let indexes = IndexSet::open(sha1, ntlm).context("cannot load the index")?;
    let config = server::Config {
        gzip_level: args.gzip_level,
        thresholds: args.severity_thresholds,
        max_connections: args.max_connections,
        header_read_timeout: seconds(args.header_timeout, "--header-timeout")?,
        drain_timeout: seconds(args.drain_timeout, "--drain-timeout")?,
        access_log: args.access_log,
        watch_interval: Some(seconds(args.watch_interval, "--watch-interval")?)
            .filter(|d| !d.is_zero()),
        reload_on_sighup: true,
        http2: args.http2,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let shutdown = server::shutdown_signal()?;
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            if let Some(served) = indexes.get(kind) {
                tracing::info!(kind = %kind, source = %served.source(), records = served.header().record_count, build_time = served.header().build_time, "index loaded");
            }
        }
        tracing::info!(address = %listener.local_addr()?, "listening");
        let app = std::sync::Arc::new(server::App::new(std::sync::Arc::new(indexes), config));
        server::run(listener, app, shutdown).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// A duration from a non-negative number of seconds given on the command line.
fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("{flag}: expected seconds >= 0, got {value}"))
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn open_index(path: &Path) -> Result<MappedIndex> {
    Ok(MappedIndex::open_path(path)?)
}

/// Answers each stdin line with `HASH:COUNT`; in password mode the password is hashed with the
/// index's kind and never printed.
fn check<D: AsRef<[u8]> + Sync>(index: &Index<D>, hashes: bool) -> Result<()> {
    let kind = index.kind();
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for (number, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let hash = if hashes {
            let text = line.trim_ascii();
            Hash::parse_hex_kind(kind, text)
                .with_context(|| format!("stdin:{}: expected a {kind} hash", number + 1))?
        } else {
            let Ok(password) = std::str::from_utf8(&line) else {
                bail!("stdin:{}: the password is not valid UTF-8", number + 1);
            };
            kind.hash_password(password)
        };
        let count = index.lookup(&hash).unwrap_or(0);
        writeln!(out, "{hash}:{count}")?;
    }
    out.flush()?;
    Ok(())
}

fn info<D: AsRef<[u8]> + Sync>(index: &Index<D>) -> Result<()> {
    let header = index.header();
    let present = index.prefixes_present();
    let prefixes = hibp_mirror::hash::PREFIX_COUNT;
    println!("kind:             {}", header.kind);
    println!("format version:   {}", hibp_mirror::format::VERSION);
    println!("records:          {}", header.record_count);
    println!("overflow counts:  {}", header.overflow_count);
    println!("build time:       {} (unix seconds)", header.build_time);
    println!("source:           {}", header.label);
    println!(
        "prefixes present: {present} of {prefixes} ({} empty)",
        prefixes - present
    );
    let file_len = header.expected_file_len().unwrap_or(0);
    if header.record_count > 0 {
        println!(
            "file size:        {file_len} bytes ({:.2} bytes per record)",
            file_len as f64 / header.record_count as f64
        );
    }
    Ok(())
}
