//! `hibp-mirror export`: top-N and count-threshold lists, and binary fuse filters.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hibp_mirror::export::{self, ExportOptions, Order, Selection, Target, Width};
use hibp_mirror::{Index, IndexBytes};

/// Output formats of a list export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// `HASH:COUNT` lines, upper-case hex, LF (what `import` reads).
    Dump,
    /// A normal index file for `serve`, `check` and `audit`.
    Index,
}

/// Export the most-seen hashes, or those seen at least C times, as a dump, an index or a binary
/// fuse filter (docs/FILTER.md), for tools that cannot run a server.
///
/// Streams INDEX in hash order: memory grows with --top N or with one filter shard (~4 M
/// hashes), never with the index. OUTPUT is written to a temporary file next to it and renamed
/// into place only when complete. An `--format index` export is a normal index that `serve`,
/// `check` and `audit` use unchanged; a filter is read by `check --filter` and `audit --filter`,
/// or by any reader written from docs/FILTER.md (tools/filter_reader.py is one in Python).
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The index to export from.
    pub index: PathBuf,
    /// Where to write (replaced atomically: temporary file, fsync, rename).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Only the N most-seen hashes (ties broken by the smaller hash, so the output is
    /// deterministic). Memory grows with N, not with the index.
    #[arg(long, value_name = "N")]
    pub top: Option<u64>,
    /// Only hashes seen at least C times (e.g. a "block anything seen 10+ times" policy).
    #[arg(long, value_name = "C", default_value_t = 0)]
    pub min_count: u32,
    /// Line order of a dump: by hash, or by count (descending; needs --top).
    #[arg(long, default_value = "hash", conflicts_with = "filter")]
    pub order: Order,
    /// List format: `dump` (HASH:COUNT lines) or `index`.
    #[arg(long, value_enum, default_value_t = ListFormat::Dump, conflicts_with = "filter")]
    pub format: ListFormat,
    /// Write a binary fuse filter instead of a list: `binfuse8` (~9 bits per hash, ~0.39% false
    /// positives) or `binfuse16` (~18 bits, ~0.0015%). Layout: docs/FILTER.md.
    #[arg(long, value_name = "KIND")]
    pub filter: Option<Width>,
    /// Testing and tuning: filter shard bits (default: ~4 M keys per shard).
    #[arg(long, hide = true)]
    pub shard_bits: Option<u8>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip the fsync before the rename (scratch files and benchmarks only).
    #[arg(long)]
    pub no_fsync: bool,
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let index: Index<IndexBytes> = super::open_index(&args.index)?;
    // Every export reads the whole index in order.
    index.advise_scan();
    let progress = super::progress_bar(index.len(), super::Unit::Items("records"), args.quiet);
    let target = match args.filter {
        Some(width) => Target::Filter {
            width,
            shard_bits: args.shard_bits,
        },
        None => match args.format {
            ListFormat::Dump => Target::Dump(args.order),
            ListFormat::Index => Target::Index,
        },
    };
    if args.order == Order::Count && args.format == ListFormat::Index {
        anyhow::bail!("--order count applies to dumps; an index is always in hash order");
    }
    let selection = Selection {
        top: args.top,
        min_count: args.min_count,
    };
    let options = ExportOptions {
        selection,
        target,
        output: args.output.clone(),
        fsync: !args.no_fsync,
        progress,
    };
    let summary = export::export(&index, &options)
        .with_context(|| format!("export to {} failed", args.output.display()))?;
    let secs = summary.elapsed.as_secs_f64();
    match &summary.filter {
        Some(header) => eprintln!(
            "exported a {} filter of {} {} hashes ({}) to {}: {} bytes, {:.2} bits per hash, \
             {} shards, built for a {:.4}% false-positive rate, in {secs:.2} s",
            header.width,
            header.key_count,
            header.kind,
            selection.describe(),
            args.output.display(),
            summary.file_len,
            summary.file_len as f64 * 8.0 / header.key_count.max(1) as f64,
            header.shard_count(),
            header.fp_rate * 100.0,
        ),
        None => eprintln!(
            "exported {} {} hashes ({}) as {} to {}: {} bytes in {secs:.2} s",
            summary.selected,
            index.kind(),
            selection.describe(),
            match target {
                Target::Index => "an index",
                _ => "a dump",
            },
            args.output.display(),
            summary.file_len,
        ),
    }
    Ok(())
}
