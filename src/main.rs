//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
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
