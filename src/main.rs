//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use hibp_mirror::import::{self, ImportOptions, Input};
use hibp_mirror::{sample, Hash, HashKind, Index, MappedIndex};
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
            if !quiet && io::stderr().is_terminal() {
                options.progress = progress_bar();
            }
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
    }
}

/// A byte-progress bar for long imports (bytes done/total, rate, ETA).
fn progress_bar() -> ProgressBar {
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
