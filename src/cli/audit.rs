//! `hibp-mirror audit`: an organisation's credential hashes checked in bulk, with a report.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hibp_mirror::audit::{self, AuditError, Filters, Indexes, Input, Render, Report, ReportFormat};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::{sample, HashKind, Index, IndexBytes};

use super::{
    announce_index, open_filter, open_index, progress_bar, Unit, ENV_INDEX, ENV_NTLM_INDEX,
};

/// Check an organisation's credential hashes against the corpus, in bulk.
///
/// Each line of each FILE is a bare hash (SHA-1 or NTLM, by length), `user:hash`, or a
/// pwdump/secretsdump line `user:rid:lmhash:nthash:::` (the NT hash is checked against the
/// NTLM index). Unparseable lines are reported by FILE:LINE and skipped. Prints one line per
/// account (never the hash unless --show-hashes) and a summary: breached share, severity
/// tiers and accounts sharing a password. Without any index (flag or environment), uses the
/// bundled samples; the indexes used are named on stderr.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Index for SHA-1 hashes (an NTLM index is accepted here too).
    #[arg(long, value_name = "PATH", env = ENV_INDEX)]
    index: Option<PathBuf>,
    /// Index for NTLM hashes (pwdump NT hashes, 32-hex hashes).
    #[arg(long, value_name = "PATH", env = ENV_NTLM_INDEX)]
    ntlm_index: Option<PathBuf>,
    /// Output format: text, json or csv (csv writes the summary to stderr).
    #[arg(long, default_value = "text")]
    format: ReportFormat,
    /// Print each account's hash too.
    #[arg(long)]
    show_hashes: bool,
    /// Print exact breach counts (by default only the severity tier: an exact count can name
    /// the password, and reports get shared).
    #[arg(long)]
    show_counts: bool,
    /// Severity thresholds LOW,MEDIUM,HIGH,CRITICAL (smallest count of each tier).
    #[arg(long, value_name = "L,M,H,C", visible_alias = "thresholds", default_value_t = Thresholds::DEFAULT)]
    severity_thresholds: Thresholds,
    /// Check against binary fuse filters made by `export --filter` instead of indexes (give one
    /// per hash kind): accounts are "probably breached" or "not breached", with no counts or
    /// severity tiers. Takes precedence over --index and --ntlm-index.
    #[arg(long, value_name = "PATH")]
    filter: Vec<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Files to audit (`-` for standard input).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl AuditArgs {
    /// Opens the indexes given (announcing each) and checks their kinds.
    fn open_indexes(&self) -> Result<Vec<Index<IndexBytes>>> {
        let mut opened = Vec::new();
        for (flag, env, path) in [
            ("--index", ENV_INDEX, &self.index),
            ("--ntlm-index", ENV_NTLM_INDEX, &self.ntlm_index),
        ] {
            if let Some(path) = path {
                let index = open_index(path)?;
                announce_index("auditing against", flag, env, path, &index);
                // Breached credentials are often popular passwords, whose counts live in the
                // overflow table: one read of it now saves a binary search per such hash.
                index.index_overflow();
                opened.push(index);
            }
        }
        if let Some(path) = &self.ntlm_index {
            if opened.last().map(|i| i.kind()) != Some(HashKind::Ntlm) {
                bail!("--ntlm-index {} is not an NTLM index", path.display());
            }
        }
        if opened.len() == 2 && opened[0].kind() == opened[1].kind() {
            bail!(
                "--index and --ntlm-index are both {} indexes",
                opened[0].kind()
            );
        }
        Ok(opened)
    }

    /// How the report is written.
    fn render(&self) -> Render {
        Render {
            format: self.format,
            show_hashes: self.show_hashes,
            show_counts: self.show_counts,
        }
    }
}

/// Opens every file, streams them through the audit against the indexes (or the samples) and
/// writes the report.
pub fn run(args: AuditArgs) -> Result<()> {
    let inputs = open_inputs(&args.files)?;
    if !args.filter.is_empty() {
        return run_filters(&args, inputs);
    }
    let mut opened = args.open_indexes()?;
    if opened.is_empty() {
        eprintln!("hibp-mirror: no --index given, auditing against the bundled samples");
        opened = vec![
            sample::sample_index(HashKind::Sha1),
            sample::sample_index(HashKind::Ntlm),
        ];
    }
    let of = |kind| opened.iter().find(|i| i.kind() == kind);
    let indexes = Indexes {
        sha1: of(HashKind::Sha1),
        ntlm: of(HashKind::Ntlm),
    };
    let (inputs, what, bar) = streams(&args, inputs);
    let report = audit::audit_streams(inputs, indexes, args.severity_thresholds, &bar);
    write_report(&args, &what, &bar, report)
}

/// The audit in filter mode: one filter per hash kind, answers without counts.
fn run_filters(args: &AuditArgs, inputs: Vec<Opened>) -> Result<()> {
    let mut opened = Vec::new();
    for path in &args.filter {
        let filter = open_filter(path, "auditing against")?;
        let kind = filter.header().kind;
        if opened.iter().any(|(k, _)| *k == kind) {
            bail!("two --filter files hold {kind} hashes; give at most one per hash kind");
        }
        opened.push((kind, filter));
    }
    let of = |kind| opened.iter().find(|(k, _)| *k == kind).map(|(_, f)| f);
    let filters = Filters {
        sha1: of(HashKind::Sha1),
        ntlm: of(HashKind::Ntlm),
    };
    let (inputs, what, bar) = streams(args, inputs);
    let report = audit::audit_filter_streams(inputs, filters, args.severity_thresholds, &bar);
    write_report(args, &what, &bar, report)
}

/// An input as the audit streams it.
type Stream = Input<Box<dyn Read + Send>>;

/// One input opened: what it is called in errors (`reading ...`), its size if known, its reader.
struct Opened {
    input: Stream,
    what: String,
    len: Option<u64>,
}

/// The readers to stream, what each is called in a read error, and a progress bar over their
/// bytes (stdin from a pipe counts as nothing: the bar then grows as it is read).
fn streams(
    args: &AuditArgs,
    inputs: Vec<Opened>,
) -> (Vec<Stream>, Vec<String>, indicatif::ProgressBar) {
    let total: u64 = inputs.iter().filter_map(|o| o.len).sum();
    let bar = progress_bar(total, Unit::Bytes, args.quiet);
    let what: Vec<String> = inputs.iter().map(|o| o.what.clone()).collect();
    let inputs = inputs
        .into_iter()
        .map(|o| Input {
            name: o.input.name,
            reader: Box::new(Counting {
                inner: o.input.reader,
                bar: bar.clone(),
                unknown: o.len.is_none(),
            }) as Box<dyn Read + Send>,
        })
        .collect();
    (inputs, what, bar)
}

/// A reader of unknown size that lengthens the progress bar by what it reads.
struct Counting {
    inner: Box<dyn Read + Send>,
    bar: indicatif::ProgressBar,
    unknown: bool,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.unknown {
            self.bar.inc_length(n as u64);
        }
        Ok(n)
    }
}

/// Writes the report, or names the input that could not be read (no report is written then).
fn write_report(
    args: &AuditArgs,
    what: &[String],
    bar: &indicatif::ProgressBar,
    report: Result<Report, AuditError>,
) -> Result<()> {
    bar.finish_and_clear();
    let report = report.map_err(|e| {
        let AuditError::Read { file, source } = e;
        anyhow::Error::new(source).context(what[file].clone())
    })?;
    let mut out = BufWriter::new(io::stdout().lock());
    args.render()
        .write(&report, &mut out, &mut io::stderr().lock())?;
    out.flush()?;
    Ok(())
}

/// Each file opened, named as given; `-` is standard input. Opening them all before reading
/// any makes a missing file fail at once.
fn open_inputs(files: &[PathBuf]) -> Result<Vec<Opened>> {
    let mut inputs = Vec::with_capacity(files.len());
    for path in files {
        let name = path.display().to_string();
        let opened = if path.as_os_str() == "-" {
            // A regular file redirected to stdin has a size; a pipe has none.
            let len = std::fs::metadata("/dev/stdin")
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            Opened {
                input: Input {
                    name,
                    reader: Box::new(io::stdin()),
                },
                what: "reading standard input".into(),
                len,
            }
        } else {
            let what = format!("reading {}", path.display());
            let file = File::open(path).with_context(|| what.clone())?;
            let len = file.metadata().ok().map(|m| m.len());
            Opened {
                input: Input {
                    name,
                    reader: Box::new(file),
                },
                what,
                len,
            }
        };
        inputs.push(opened);
    }
    Ok(inputs)
}
