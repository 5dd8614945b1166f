//! `hibp-mirror sync`: mirror an upstream range API into a state directory, then build an index.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hibp_mirror::sync::{self, state::StateDir, SyncOptions};
use hibp_mirror::HashKind;

use super::{at_least_one, open_index, progress_bar, Seconds, Unit};

/// Mirror every range from an upstream range API (the public one or another hibp-mirror)
/// and build an index from it.
///
/// Resumable and incremental: the state directory keeps each range and its ETag, so a re-run
/// downloads only what changed, and an interrupted run (Ctrl-C, kill) carries on where it
/// stopped. The index is written atomically, and only when every range is present unless
/// `--allow-gaps` is given.
#[derive(clap::Args)]
pub struct SyncArgs {
    /// Base URL of the upstream; `/range/{PREFIX}` is appended.
    #[arg(long, value_name = "URL", default_value = sync::DEFAULT_UPSTREAM)]
    upstream: String,
    /// The index file to write.
    #[arg(long)]
    output: PathBuf,
    /// Mirror the NTLM corpus (`?mode=ntlm`) instead of SHA-1.
    #[arg(long)]
    ntlm: bool,
    /// Directory keeping each range and its ETag between runs (default: OUTPUT.sync-state).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Requests in flight at once (at least 1).
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_CONCURRENCY,
          value_parser = at_least_one::<usize>)]
    concurrency: usize,
    /// Build the index even if some ranges could not be fetched (they are listed, and empty).
    #[arg(long)]
    allow_gaps: bool,
    /// Tries per range before giving up on it (at least 1).
    #[arg(long, value_name = "N", default_value_t = sync::DEFAULT_MAX_TRIES,
          value_parser = at_least_one::<u32>)]
    max_tries: u32,
    /// Time limit for one request, in seconds (> 0).
    #[arg(long, value_name = "SECS", value_parser = Seconds::parse_positive,
          default_value_t = Seconds(sync::DEFAULT_TIMEOUT))]
    timeout: Seconds,
    /// Largest body accepted per range as received (compressed when gzipped), in bytes; a larger
    /// or endless body fails that prefix as soon as it passes the limit.
    #[arg(long, value_name = "BYTES", default_value_t = sync::DEFAULT_MAX_BODY_BYTES,
          value_parser = at_least_one::<u64>)]
    max_body_bytes: u64,
    /// Largest body accepted per range after decompression, in bytes (stops gzip bombs).
    #[arg(long, value_name = "BYTES", default_value_t = sync::DEFAULT_MAX_RANGE_BYTES,
          value_parser = at_least_one::<u64>)]
    max_range_bytes: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print the summary as one JSON object on stdout (for schedulers) instead of text lines.
    #[arg(long)]
    json: bool,
    /// Testing and partial mirrors: fetch only prefixes AAAAA-BBBBB; the index has no entries
    /// outside the range and its label says "partial".
    #[arg(long, hide = true, value_parser = sync::parse_prefix_range)]
    prefixes: Option<RangeInclusive<u32>>,
    /// Testing: first retry delay in milliseconds.
    #[arg(long, hide = true, default_value_t = sync::DEFAULT_RETRY_BASE.as_millis() as u64)]
    retry_base_ms: u64,
}

impl SyncArgs {
    /// The hash kind mirrored.
    fn kind(&self) -> HashKind {
        if self.ntlm {
            HashKind::Ntlm
        } else {
            HashKind::Sha1
        }
    }

    /// The state directory: `--state`, or OUTPUT.sync-state.
    fn state_path(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| {
            let mut name = self.output.as_os_str().to_owned();
            name.push(".sync-state");
            PathBuf::from(name)
        })
    }

    /// The library's options for these flags.
    fn options(&self) -> SyncOptions {
        let mut opts = SyncOptions::new(self.upstream.clone(), self.kind());
        opts.prefixes = self.prefixes.clone().unwrap_or(sync::ALL_PREFIXES);
        opts.concurrency = self.concurrency;
        opts.max_tries = self.max_tries;
        opts.timeout = self.timeout.0;
        opts.retry_base = Duration::from_millis(self.retry_base_ms);
        opts.max_body_bytes = self.max_body_bytes;
        opts.max_range_bytes = self.max_range_bytes;
        opts
    }
}

/// Fetches every range (resuming), then builds the index unless ranges are missing.
pub fn run(args: SyncArgs) -> Result<()> {
    let kind = args.kind();
    let opts = args.options();
    let label = opts.label();
    let range = opts.prefixes.clone();
    let total = u64::from(range.end() - range.start() + 1);

    let state = StateDir::open(&args.state_path(), kind)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bar = progress_bar(total, Unit::Items("prefixes"), args.quiet);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let report = runtime.block_on(sync::fetch(opts, state.clone(), bar, shutdown))?;
    drop(runtime);
    if !args.json {
        println!("sync: {report}");
    }
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

    // The index about to be replaced, for the change summary. Mapped before the new file is
    // renamed over it, so the mapping keeps the old inode's data.
    let previous = if args.output.exists() {
        match open_index(&args.output) {
            Ok(index) => Some(index),
            Err(e) => {
                eprintln!("hibp-mirror: note: no change summary, the previous index cannot be read: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let bar = progress_bar(total, Unit::Items("prefixes indexed"), args.quiet);
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
    let changes = match previous {
        Some(old) => {
            let new = open_index(&args.output)?;
            match hibp_mirror::diff::diff(&old, &new) {
                Ok(changes) => Some(changes),
                Err(e) => {
                    eprintln!("hibp-mirror: note: no change summary: {e}");
                    None
                }
            }
        }
        None => None,
    };
    if args.json {
        let failed: Vec<String> = report.failed.iter().map(|(p, _)| p.to_string()).collect();
        let summary = serde_json::json!({
            "output": args.output.display().to_string(),
            "kind": kind.to_string(),
            "records": built.header.record_count,
            "fetched": report.fetched,
            "not_modified": report.not_modified,
            "resumed": report.resumed,
            "failed": failed,
            "retries": report.retries,
            "bytes_received": report.bytes,
            "fetch_seconds": report.elapsed.as_secs_f64(),
            "gaps": built.gaps.len(),
            "changes": changes.map(|c| super::diff::json(kind, &c)),
        });
        println!("{summary}");
        return Ok(());
    }
    println!(
        "sync: wrote {} ({} records, {kind}, label {:?})",
        args.output.display(),
        built.header.record_count,
        built.header.label
    );
    match changes {
        Some(c) => println!(
            "sync: changes since the previous index: {} prefixes changed, {} hashes added, {} removed, {} counts changed ({} up, {} down)",
            c.prefixes_changed,
            c.hashes_added,
            c.hashes_removed,
            c.counts_changed(),
            c.counts_up,
            c.counts_down
        ),
        None => println!("sync: no previous index to compare with"),
    }
    Ok(())
}
