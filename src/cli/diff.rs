//! `hibp-mirror diff OLD NEW`: what changed between two indexes of the same kind.

use std::io::{self, BufWriter};
use std::path::PathBuf;

use anyhow::{Context, Result};
use hibp_mirror::diff::{self, DiffSummary};
use hibp_mirror::HashKind;

use super::open_index;

/// Show what changed between two indexes of the same kind: prefixes changed, hashes added and
/// removed, counts changed (up and down).
///
/// Only prefixes whose stored content tags differ are read, so comparing two versions of the
/// corpus costs about as much as reading the part that changed.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The older index.
    old: PathBuf,
    /// The newer index.
    new: PathBuf,
    /// `summary`: the figures as text; `json`: the figures as one JSON object; `dump`: every
    /// added or changed record of NEW as `HASH:COUNT`, ordered by hash (removed hashes are not
    /// listed; the figures go to stderr).
    #[arg(long, value_enum, default_value_t = Format::Summary)]
    format: Format,
}

/// Output formats of `diff`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Summary,
    Json,
    Dump,
}

/// Compares the two indexes and prints the result.
pub fn run(args: DiffArgs) -> Result<()> {
    let old = open_index(&args.old)?;
    let new = open_index(&args.new)?;
    let compared = || {
        format!(
            "comparing {} with {}",
            args.old.display(),
            args.new.display()
        )
    };
    match args.format {
        Format::Summary => {
            let summary = diff::diff(&old, &new).with_context(compared)?;
            print!("{}", text(new.kind(), &summary));
        }
        Format::Json => {
            let summary = diff::diff(&old, &new).with_context(compared)?;
            println!("{}", json(new.kind(), &summary));
        }
        Format::Dump => {
            let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let summary = match diff::write_dump(&old, &new, &mut out) {
                Err(diff::DumpError::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Ok(())
                }
                other => other.with_context(compared)?,
            };
            eprint!("{}", text(new.kind(), &summary));
        }
    }
    Ok(())
}

/// The figures as lines of text.
pub fn text(kind: HashKind, s: &DiffSummary) -> String {
    format!(
        "kind:             {kind}\n\
         records:          {} -> {}\n\
         prefixes changed: {}\n\
         hashes added:     {}\n\
         hashes removed:   {}\n\
         counts changed:   {} ({} up, {} down)\n",
        s.old_records,
        s.new_records,
        s.prefixes_changed,
        s.hashes_added,
        s.hashes_removed,
        s.counts_changed(),
        s.counts_up,
        s.counts_down,
    )
}

/// The figures as a JSON object.
pub fn json(kind: HashKind, s: &DiffSummary) -> serde_json::Value {
    serde_json::json!({
        "kind": kind.to_string(),
        "old_records": s.old_records,
        "new_records": s.new_records,
        "prefixes_changed": s.prefixes_changed,
        "hashes_added": s.hashes_added,
        "hashes_removed": s.hashes_removed,
        "counts_changed": s.counts_changed(),
        "counts_up": s.counts_up,
        "counts_down": s.counts_down,
    })
}
