//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hibp_mirror::{sample, sync, Hash, HashKind, Index, MappedIndex};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Mirror every range from an upstream range API (the public one or another hibp-mirror)
    /// and build an index from it.
    ///
    /// Resumable and incremental: the state directory keeps each range and its ETag, so a re-run
    /// downloads only what changed, and an interrupted run (Ctrl-C, kill) carries on where it
    /// stopped. The index is written atomically, and only when every range is present unless
    /// `--allow-gaps` is given.
    Sync(SyncArgs),
}

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
        Command::Sync(args) => sync_command(args),
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
