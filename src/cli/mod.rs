//! The subcommands: one module each, owning its clap `Args` struct and the one place where those
//! flags become the library's options. Shared helpers (opening an index, the progress bar,
//! seconds on the command line) live here.
//!
//! To add a subcommand: write `src/cli/NAME.rs` with `NameArgs` (doc comment = its help) and
//! `pub fn run(args: NameArgs) -> anyhow::Result<()>`, then add a variant to [`Command`] and an
//! arm to [`Command::run`].

pub mod audit;
pub mod check;
pub mod diff;
pub mod export;
pub mod generate;
pub mod healthcheck;
pub mod import;
pub mod info;
pub mod serve;
pub mod sync;

use std::fmt;
use std::io::{self, IsTerminal};
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use hibp_mirror::{Index, IndexBytes};
use indicatif::{ProgressBar, ProgressStyle};

/// Self-hosted, offline mirror of the Have I Been Pwned Pwned Passwords range API.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each variant's help is its `Args` struct's doc comment.
#[derive(Subcommand)]
pub enum Command {
    Import(import::ImportArgs),
    Check(check::CheckArgs),
    Info(info::InfoArgs),
    Verify(info::VerifyArgs),
    Diff(diff::DiffArgs),
    Serve(Box<serve::ServeArgs>),
    Sync(sync::SyncArgs),
    Audit(audit::AuditArgs),
    Healthcheck(healthcheck::HealthcheckArgs),
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
    Export(export::ExportArgs),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> Result<()> {
        match self {
            Command::Import(args) => import::run(args),
            Command::Check(args) => check::run(args),
            Command::Info(args) => info::run(args),
            Command::Verify(args) => info::verify(args),
            Command::Diff(args) => diff::run(args),
            Command::Serve(args) => serve::run(*args),
            Command::Sync(args) => sync::run(args),
            Command::Audit(args) => audit::run(args),
            Command::Healthcheck(args) => healthcheck::run(args),
            Command::Generate(args) => generate::run(args),
            Command::Export(args) => export::run(args),
        }
    }
}

/// Opens an index file for a one-shot command.
pub fn open_index(path: &Path) -> Result<Index<IndexBytes>> {
    // SAFETY: index files are replaced only by rename (what import and sync do), never modified
    // in place; this command reads the index once and exits.
    Ok(unsafe { Index::open_path(path) }?)
}

/// Opens a filter file for `check --filter` / `audit --filter`: the open-time checks, then every
/// shard's checksum (a damaged filter would answer wrongly without any sign), and says on
/// stderr that answers are in filter mode.
pub fn open_filter(path: &Path, doing: &str) -> Result<hibp_mirror::export::Filter<IndexBytes>> {
    // SAFETY: filter files are replaced only by rename (what export does), never modified in
    // place; this command reads the filter once and exits.
    let filter = unsafe { hibp_mirror::export::Filter::open_path(path) }?;
    filter
        .verify()
        .map_err(|e| anyhow::anyhow!("filter {}: {e}", path.display()))?;
    let h = filter.header();
    eprintln!(
        "hibp-mirror: filter mode: {doing} {} {} filter {} ({} hashes, built for a {:.4}% \
         false-positive rate); answers are \"probably breached\" or \"not breached\", no counts",
        h.kind,
        h.width,
        path.display(),
        h.key_count,
        h.fp_rate * 100.0,
    );
    Ok(filter)
}

/// The one progress bar of the CLI: on stderr when it is a terminal, hidden otherwise or with
/// `--quiet`. `unit` is what the position counts (see [`Unit`]); the length can be set later.
pub fn progress_bar(len: u64, unit: Unit, quiet: bool) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = match unit {
        Unit::Bytes => {
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} \
                        {binary_bytes_per_sec} ETA {eta}"
                .to_owned()
        }
        Unit::Items(what) => {
            format!("{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {what} {{per_sec}} ETA {{eta}}")
        }
    };
    ProgressBar::new(len).with_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// What a [`progress_bar`] counts.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Bytes, shown in binary units with a byte rate.
    Bytes,
    /// Items of the named kind (e.g. `"prefixes"`).
    Items(&'static str),
}

/// A number of seconds on the command line (`0.5`, `10`), parsed by [`Seconds::parse`] (>= 0) or
/// [`Seconds::parse_positive`] (> 0); shown as seconds in `--help` defaults.
#[derive(Clone, Copy, Debug)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// Parses seconds >= 0 (finite, not absurdly large).
    pub fn parse(text: &str) -> Result<Seconds, String> {
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("expected a number of seconds, got {text:?}"))?;
        Duration::try_from_secs_f64(value)
            .map(Seconds)
            .map_err(|_| format!("expected seconds >= 0, got {text:?}"))
    }

    /// Parses seconds > 0, for time limits where zero would make every attempt fail.
    pub fn parse_positive(text: &str) -> Result<Seconds, String> {
        match Seconds::parse(text) {
            Ok(s) if s.0.is_zero() => Err(format!("expected seconds > 0, got {text:?}")),
            Err(_) => Err(format!("expected seconds > 0, got {text:?}")),
            ok => ok,
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// Environment variable naming the SHA-1 index (`--index` of `serve`, `check` and `audit`).
pub const ENV_INDEX: &str = "HIBP_MIRROR_INDEX";

/// Environment variable naming the NTLM index (`--ntlm-index` of `serve` and `audit`).
pub const ENV_NTLM_INDEX: &str = "HIBP_MIRROR_NTLM_INDEX";

/// Names on stderr the index a one-shot command uses, and whether it came from the environment,
/// so an environment set up for `serve` is never picked up silently.
pub fn announce_index(doing: &str, flag: &str, env: &str, path: &Path, index: &Index<IndexBytes>) {
    let from = if std::env::var_os(env).is_some_and(|value| value == path.as_os_str()) {
        format!("{env} from the environment")
    } else {
        flag.to_owned()
    };
    eprintln!(
        "hibp-mirror: {doing} {} index {} ({from}; {} records, built {})",
        index.kind(),
        path.display(),
        index.len(),
        index.header().build_time,
    );
}

/// Parses a whole number >= 1, for counts where zero would stall or disable the command
/// (`--concurrency`, `--max-tries`, `--workers`, ...).
pub fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + From<u8>,
{
    match text.trim().parse::<T>() {
        Ok(n) if n >= T::from(1) => Ok(n),
        _ => Err(format!("expected a whole number >= 1, got {text:?}")),
    }
}
