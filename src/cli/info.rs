//! `hibp-mirror info` and `hibp-mirror verify`: an index's header and statistics, and a full check.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hibp_mirror::hash::PREFIX_COUNT;

use super::open_index;

/// Print an index's header and statistics.
#[derive(clap::Args)]
pub struct InfoArgs {
    /// The index file.
    index: PathBuf,
}

/// Check every byte of an index: checksum, sort order and overflow table.
///
/// Exits non-zero and names the first fault if the file is corrupt.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The index file.
    index: PathBuf,
}

/// Prints the header and statistics of the index.
pub fn run(args: InfoArgs) -> Result<()> {
    let index = open_index(&args.index)?;
    let header = index.header();
    let present = index.prefixes_present();
    println!("kind:             {}", header.kind);
    println!("format version:   {}", hibp_mirror::format::VERSION);
    println!("records:          {}", header.record_count);
    println!("overflow counts:  {}", header.overflow_count);
    println!("build time:       {} (unix seconds)", header.build_time);
    // The label comes from the file: control characters (terminal escapes, CR) are shown escaped.
    println!("source:           {}", escape_controls(&header.label));
    println!(
        "prefixes present: {present} of {PREFIX_COUNT} ({} empty)",
        PREFIX_COUNT - present
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

/// Verifies every byte of the index; the error names the first fault.
pub fn verify(args: VerifyArgs) -> Result<()> {
    let path = &args.index;
    let index = open_index(path)?;
    index.advise_scan();
    index
        .verify()
        .with_context(|| format!("{} is corrupt", path.display()))?;
    println!("{}: OK ({} records)", path.display(), index.len());
    Ok(())
}

/// `text` with every control character escaped (`\u{1b}`, `\r`, `\n`), so a crafted label
/// cannot move the cursor, recolour or rewrite the terminal.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
