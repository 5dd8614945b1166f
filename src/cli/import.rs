//! `hibp-mirror import`: dumps in, an index out.

use std::path::PathBuf;

use anyhow::{Context, Result};
use hibp_mirror::import::{self, ImportOptions, Input, DEFAULT_SORT_MEMORY};
use hibp_mirror::HashKind;

use super::{at_least_one, progress_bar, Unit};

/// Build an index from Pwned Passwords dumps.
///
/// INPUT is a plain-text dump (`HASH:COUNT` lines, LF or CRLF, any case, BOMs allowed), a
/// `.gz` file, `-` for standard input (e.g. `7z x -so dump.7z | hibp-mirror import - ...`), or
/// a directory of `<PREFIX>.txt` range files as the official downloader writes with
/// `-s false`. Several inputs, or input not ordered by hash, are sorted on disk in bounded
/// memory. The index is written to a temporary file next to OUTPUT and renamed into place only
/// when complete, so an existing index there stays intact on any error.
#[derive(clap::Args)]
pub struct ImportArgs {
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
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_SORT_MEMORY >> 20,
          value_parser = sort_memory_mib)]
    sort_memory_mib: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Skip the fsync before the rename: faster, but after a power loss the index may be
    /// incomplete. For scratch builds and benchmarks only.
    #[arg(long)]
    no_fsync: bool,
}

/// MiB >= 1 whose byte count fits in `usize`.
fn sort_memory_mib(text: &str) -> Result<usize, String> {
    let mib: usize = at_least_one(text)?;
    mib.checked_mul(1 << 20)
        .map(|_| mib)
        .ok_or_else(|| format!("{mib} MiB is more memory than this machine can address"))
}

impl ImportArgs {
    /// The library's options for these flags.
    fn options(&self) -> ImportOptions {
        let inputs = self.inputs.iter().map(|p| Input::from_arg(p)).collect();
        let mut options = ImportOptions::new(inputs, &self.output);
        options.kind = self.kind;
        options.sort_memory = self.sort_memory_mib << 20;
        options.fsync = !self.no_fsync;
        options.progress = progress_bar(0, Unit::Bytes, self.quiet);
        options
    }
}

/// Imports and prints a summary (and warnings) on stderr.
pub fn run(args: ImportArgs) -> Result<()> {
    let options = args.options();
    let output = &options.output;
    let summary = import::import(&options)
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
