//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hibp_mirror::import::{self, ImportOptions, Input};
use hibp_mirror::server::{self, IndexSet, IndexSource};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::{sample, sync, Hash, HashKind, Index, IndexBytes};
use indicatif::{ProgressBar, ProgressStyle};

#[path = "cli/export.rs"]
mod export_cli;

/// Self-hosted, offline mirror of the Have I Been Pwned Pwned Passwords range API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an index from Pwned Passwords dumps.
    ///
    /// INPUT is a plain-text dump (`HASH:COUNT` lines, LF or CRLF, any case, BOMs allowed), a
    /// `.gz` file, `-` for standard input (e.g. `7z x -so dump.7z | hibp-mirror import - ...`), or
    /// a directory of `<PREFIX>.txt` range files as the official downloader writes with
    /// `-s false`. Several inputs, or input not ordered by hash, are sorted on disk in bounded
    /// memory. The index is written to a temporary file next to OUTPUT and renamed into place only
    /// when complete, so an existing index there stays intact on any error.
    Import {
        /// Dump files, `.gz` files, range directories, or `-` for stdin.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where to write the index.
        #[arg(long, short)]
        output: PathBuf,
        /// Hash kind; detected from the first line's hash length when omitted.
        #[arg(long)]
        kind: Option<HashKind>,
        /// Memory for sorting unsorted input, in MiB.
        #[arg(long, default_value_t = 96)]
        sort_memory_mib: usize,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Skip the fsync before the rename: faster, but after a power loss the index may be
        /// incomplete. For scratch builds and benchmarks only.
        #[arg(long)]
        no_fsync: bool,
    },
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
    /// Mirror every range from an upstream range API (the public one or another hibp-mirror)
    /// and build an index from it.
    ///
    /// Resumable and incremental: the state directory keeps each range and its ETag, so a re-run
    /// downloads only what changed, and an interrupted run (Ctrl-C, kill) carries on where it
    /// stopped. The index is written atomically, and only when every range is present unless
    /// `--allow-gaps` is given.
    Sync(SyncArgs),
    /// Check an organisation's credential hashes against the corpus, in bulk.
    ///
    /// Each line of each FILE is a bare hash (SHA-1 or NTLM, by length), `user:hash`, or a
    /// pwdump/secretsdump line `user:rid:lmhash:nthash:::` (the NT hash is checked against the
    /// NTLM index). Unparseable lines are reported by FILE:LINE and skipped. Prints one line per
    /// account (never the hash unless --show-hashes) and a summary: breached share, severity
    /// tiers and accounts sharing a password. Without any index, uses the bundled samples.
    Audit {
        /// Index for SHA-1 hashes (an NTLM index is accepted here too).
        #[arg(long, env = "HIBP_MIRROR_INDEX")]
        index: Option<PathBuf>,
        /// Index for NTLM hashes (pwdump NT hashes, 32-hex hashes).
        #[arg(long)]
        ntlm_index: Option<PathBuf>,
        /// Output format: text, json or csv (csv writes the summary to stderr).
        #[arg(long, default_value = "text")]
        format: hibp_mirror::audit::Format,
        /// Print each account's hash too.
        #[arg(long)]
        show_hashes: bool,
        /// Severity thresholds LOW,MEDIUM,HIGH,CRITICAL (smallest count of each tier).
        #[arg(long, default_value_t = hibp_mirror::severity::Thresholds::DEFAULT)]
        thresholds: hibp_mirror::severity::Thresholds,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Files to audit (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Export the most-seen hashes, or those seen at least C times, as a dump, an index or a
    /// binary fuse filter (docs/FILTER.md) for tools that cannot run a server.
    Export(export_cli::ExportArgs),
    /// Exit 0 if the server at URL answers 200 (for container HEALTHCHECKs; no curl needed).
    Healthcheck {
        /// The URL to probe (plain http only).
        #[arg(long, default_value = HEALTHCHECK_URL)]
        url: String,
    },
}

/// What `healthcheck` probes by default: the container's own server.
const HEALTHCHECK_URL: &str = "http://127.0.0.1:8080/healthz";

/// How long `healthcheck` waits for the server.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Flags of `sync`.
#[derive(clap::Args)]
struct SyncArgs {
    /// Base URL of the upstream; `/range/{PREFIX}` is appended.
    #[arg(long, default_value = sync::DEFAULT_UPSTREAM)]
    upstream: String,
    /// The index file to write.
    #[arg(long)]
    output: PathBuf,
    /// Mirror the NTLM corpus (`?mode=ntlm`) instead of SHA-1.
    #[arg(long)]
    ntlm: bool,
    /// Directory keeping each range and its ETag between runs (default: OUTPUT.sync-state).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = sync::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Build the index even if some ranges could not be fetched (they are listed, and empty).
    #[arg(long)]
    allow_gaps: bool,
    /// Tries per range before giving up on it.
    #[arg(long, default_value_t = sync::DEFAULT_MAX_TRIES)]
    max_tries: u32,
    /// Time limit for one request, in seconds.
    #[arg(long, default_value_t = sync::DEFAULT_TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Testing and partial mirrors: fetch only prefixes AAAAA-BBBBB; the index has no entries
    /// outside the range and its label says "partial".
    #[arg(long, hide = true, value_parser = sync::parse_prefix_range)]
    prefixes: Option<RangeInclusive<u32>>,
    /// Testing: first retry delay in milliseconds.
    #[arg(long, hide = true, default_value_t = sync::DEFAULT_RETRY_BASE.as_millis() as u64)]
    retry_base_ms: u64,
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
        Command::Import {
            inputs,
            output,
            kind,
            sort_memory_mib,
            quiet,
            no_fsync,
        } => {
            let inputs = inputs.iter().map(|p| Input::from_arg(p)).collect();
            let mut options = ImportOptions::new(inputs, &output);
            options.kind = kind;
            options.sort_memory = sort_memory_mib.max(1) << 20;
            options.fsync = !no_fsync;
            options.progress = byte_progress_bar(quiet);
            import(&options)
        }
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
        Command::Sync(args) => sync_command(args),
        Command::Audit {
            index,
            ntlm_index,
            format,
            show_hashes,
            thresholds,
            quiet,
            files,
        } => audit_command(
            index.as_deref(),
            ntlm_index.as_deref(),
            hibp_mirror::audit::Render {
                format,
                show_hashes,
            },
            thresholds,
            quiet,
            &files,
        ),
        Command::Healthcheck { url } => healthcheck(&url),
        Command::Export(args) => {
            let bar = progress_bar(0, args.quiet, "records");
            export_cli::run(args, bar)
        }
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

/// A byte-progress bar for long imports (bytes done/total, rate, ETA); hidden when not on a
/// terminal or with `--quiet`.
fn byte_progress_bar(quiet: bool) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
             {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("valid template"),
    )
}

fn import(options: &ImportOptions) -> Result<()> {
    let output = &options.output;
    let summary = import::import(options)
        .with_context(|| format!("import into {} failed", output.display()))?;
    let header = &summary.header;
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "imported {} {} records from {} lines into {} in {secs:.2} s ({:.2} GB/s of input{})",
        header.record_count,
        header.kind,
        summary.lines,
        output.display(),
        summary.input_bytes as f64 / secs.max(1e-9) / 1e9,
        if summary.streamed {
            String::new()
        } else {
            format!(", unsorted: merged {} runs", summary.spilled_runs)
        },
    );
    eprintln!(
        "index: {} bytes, {:.2} bytes per record; prefixes present: {} of {}",
        summary.file_len,
        summary.bytes_per_record(),
        summary.prefixes_present,
        hibp_mirror::hash::PREFIX_COUNT,
    );
    if summary.prefixes_empty() > 0 {
        eprintln!(
            "warning: {} prefixes are empty; a complete download has entries in all of them",
            summary.prefixes_empty()
        );
    }
    if !summary.skipped_files.is_empty() {
        eprintln!(
            "warning: ignored {} files not named <PREFIX>.txt, e.g. {}",
            summary.skipped_files.len(),
            summary.skipped_files[0]
        );
    }
    Ok(())
}

fn open_index(path: &Path) -> Result<Index<IndexBytes>> {
    // SAFETY: index files are replaced only by rename (what import and sync do), never modified
    // in place; this command reads the index once and exits.
    Ok(unsafe { Index::open_path(path) }?)
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

/// A progress bar on a terminal, hidden otherwise or with `--quiet`.
fn progress_bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = format!("{{bar:40}} {{human_pos}}/{{human_len}} {what} {{per_sec}} ETA {{eta}}");
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

fn sync_command(args: SyncArgs) -> Result<()> {
    let kind = if args.ntlm {
        HashKind::Ntlm
    } else {
        HashKind::Sha1
    };
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut name = args.output.as_os_str().to_owned();
        name.push(".sync-state");
        PathBuf::from(name)
    });
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let mut opts = sync::SyncOptions::new(args.upstream.clone(), kind);
    opts.prefixes = args.prefixes.clone().unwrap_or(sync::ALL_PREFIXES);
    opts.concurrency = args.concurrency.max(1);
    opts.max_tries = args.max_tries.max(1);
    opts.timeout = Duration::from_secs_f64(args.timeout);
    opts.retry_base = Duration::from_millis(args.retry_base_ms);
    let label = opts.label();
    let range = opts.prefixes.clone();
    let total = u64::from(range.end() - range.start() + 1);

    let state = sync::state::StateDir::open(&state_path, kind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bar = progress_bar(total, args.quiet, "prefixes");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let report = runtime.block_on(sync::fetch(opts, state.clone(), bar, shutdown))?;
    drop(runtime);
    println!("sync: {report}");
    for (prefix, reason) in &report.failed {
        eprintln!("hibp-mirror: prefix {prefix} failed: {reason}");
    }
    if report.interrupted {
        bail!("sync interrupted; run the same command again to resume");
    }
    if !report.failed.is_empty() && !args.allow_gaps {
        bail!(
            "{} prefixes failed, index not written; run again to retry them (or pass --allow-gaps)",
            report.failed.len()
        );
    }

    let bar = progress_bar(total, args.quiet, "prefixes indexed");
    let built = sync::build::build_index(
        &state,
        kind,
        range,
        &args.output,
        &label,
        args.allow_gaps,
        &|done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    if !built.gaps.is_empty() {
        let list: Vec<String> = built.gaps.iter().map(|p| p.to_string()).collect();
        eprintln!(
            "hibp-mirror: warning: {} prefixes missing, left empty in the index: {}",
            list.len(),
            list.join(",")
        );
    }
    println!(
        "sync: wrote {} ({} records, {kind}, label {:?})",
        args.output.display(),
        built.header.record_count,
        built.header.label
    );
    Ok(())
}

fn audit_command(
    index: Option<&Path>,
    ntlm_index: Option<&Path>,
    render: hibp_mirror::audit::Render,
    thresholds: hibp_mirror::severity::Thresholds,
    quiet: bool,
    files: &[PathBuf],
) -> Result<()> {
    use hibp_mirror::audit::{self, Corpus};

    let mut inputs = Vec::with_capacity(files.len());
    for path in files {
        let data = if path.as_os_str() == "-" {
            let mut data = Vec::new();
            io::Read::read_to_end(&mut io::stdin().lock(), &mut data)
                .context("reading standard input")?;
            data
        } else {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        };
        inputs.push((path.display().to_string(), data));
    }
    let mapped: Vec<Index<IndexBytes>> = [index, ntlm_index]
        .into_iter()
        .flatten()
        .map(open_index)
        .collect::<Result<_>>()?;
    if let Some(path) = ntlm_index {
        if mapped.last().map(|i| i.kind()) != Some(HashKind::Ntlm) {
            bail!("--ntlm-index {} is not an NTLM index", path.display());
        }
    }
    if mapped.len() == 2 && mapped[0].kind() == mapped[1].kind() {
        bail!(
            "--index and --ntlm-index are both {} indexes",
            mapped[0].kind()
        );
    }
    let samples;
    let corpora: Vec<&dyn Corpus> = if mapped.is_empty() {
        eprintln!("hibp-mirror: no --index given, auditing against the bundled samples");
        samples = [
            sample::sample_index(HashKind::Sha1),
            sample::sample_index(HashKind::Ntlm),
        ];
        samples.iter().map(|i| i as &dyn Corpus).collect()
    } else {
        mapped.iter().map(|i| i as &dyn Corpus).collect()
    };
    let total: u64 = inputs.iter().map(|(_, d)| d.len() as u64).sum();
    let bar = progress_bar(total, quiet, "bytes");
    let report = audit::audit(&inputs, &corpora, thresholds, &bar);
    bar.finish_and_clear();
    let mut out = BufWriter::new(io::stdout().lock());
    render.write(&report, &mut out, &mut io::stderr().lock())?;
    out.flush()?;
    Ok(())
}

/// GETs `url` over a plain TCP connection and succeeds on a 200 status line.
fn healthcheck(url: &str) -> Result<()> {
    use std::io::Read;
    use std::net::{TcpStream, ToSocketAddrs};

    let rest = url
        .strip_prefix("http://")
        .context("healthcheck only speaks plain http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    stream.set_write_timeout(Some(HEALTHCHECK_TIMEOUT))?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: hibp-mirror-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() && !head[..n].contains(&b'\n') {
        match stream
            .read(&mut head[n..])
            .context("reading the response")?
        {
            0 => break,
            k => n += k,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..n]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!(
            "{url} answered {:?}",
            status_line.lines().next().unwrap_or("")
        );
    }
    Ok(())
}
