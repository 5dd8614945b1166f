//! `hibp-mirror check`: passwords or full hashes on stdin, `HASH:COUNT` on stdout; with
//! `--context`, also the severity tier and the context warnings of `hibp_mirror::context`.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hibp_mirror::context::Context as AccountContext;
use hibp_mirror::export::Filter;
use hibp_mirror::severity::Thresholds;
use hibp_mirror::{sample, Hash, HashKind, Index, IndexBytes};

use super::{announce_index, open_filter, open_index, ENV_INDEX};

/// Check passwords (or full hashes) read from standard input against an index.
///
/// Reads one password per line and hashes it locally; passwords are never echoed. Each input
/// line produces one output line `HASH:COUNT` (COUNT 0 when absent), in input order. With
/// `--hashes`, reads full SHA-1 or NTLM hashes (any case) instead of passwords. Without
/// `--index` (or HIBP_MIRROR_INDEX), checks against the bundled sample corpus. The index used is
/// named on stderr.
///
/// With `--context "alice,alice@example.com,Acme"`, each line becomes `HASH:COUNT TIER`, followed
/// by `context: ...` when the password contains one of those details or an obvious variant
/// (other case, leetspeak, reversed, digits or a year added; rules in docs/CONTEXT.md), e.g.
/// `...:0 none context: contains "alice" in another case`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Index file to check against (default: the bundled SHA-1 sample).
    #[arg(long, value_name = "PATH", env = ENV_INDEX)]
    index: Option<PathBuf>,
    /// Read full hashes instead of passwords.
    #[arg(long)]
    hashes: bool,
    /// Comma-separated details of the account (user name, e-mail address, organisation or
    /// service): print the tier, and warn when a password is built from them.
    #[arg(long, value_name = "LIST", conflicts_with = "hashes")]
    context: Option<String>,
    /// Smallest counts of the severity tiers LOW,MEDIUM,HIGH,CRITICAL (printed with --context).
    #[arg(long, value_name = "L,M,H,C", visible_alias = "thresholds", default_value_t = Thresholds::DEFAULT)]
    severity_thresholds: Thresholds,
    /// Check against a binary fuse filter made by `export --filter` instead of an index: each
    /// line is answered `HASH:probably-breached` or `HASH:not-breached` (no counts). Takes
    /// precedence over --index.
    #[arg(long, value_name = "PATH")]
    filter: Option<PathBuf>,
}

/// Opens the index (or the sample) and answers every line of stdin.
pub fn run(args: CheckArgs) -> Result<()> {
    if let Some(path) = &args.filter {
        let filter = open_filter(path, "checking against")?;
        return check_filter(&filter, args.hashes);
    }
    let index = match &args.index {
        Some(path) => {
            let index = open_index(path)?;
            announce_index("checking against", "--index", ENV_INDEX, path, &index);
            index
        }
        None => {
            eprintln!("hibp-mirror: no --index given, checking against the bundled sample");
            sample::sample_index(HashKind::Sha1)
        }
    };
    let context = args.context.as_deref().map(|list| {
        let context = AccountContext::parse_list(list);
        if context.is_empty() {
            eprintln!(
                "hibp-mirror: --context gave nothing to check against (details need {} or more characters)",
                hibp_mirror::context::MIN_TOKEN_CHARS
            );
        }
        (context, args.severity_thresholds)
    });
    check(&index, args.hashes, context.as_ref())
}

/// Answers each stdin line with `HASH:COUNT` (and, with a context, the tier and any warnings); in
/// password mode the password is hashed with the index's kind and never printed.
fn check(
    index: &Index<IndexBytes>,
    hashes: bool,
    context: Option<&(AccountContext, Thresholds)>,
) -> Result<()> {
    let kind = index.kind();
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for (number, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let mut warnings = Vec::new();
        let hash = if hashes {
            let text = line.trim_ascii();
            Hash::parse_hex_kind(kind, text)
                .with_context(|| format!("stdin:{}: expected a {kind} hash", number + 1))?
        } else {
            let Ok(text) = std::str::from_utf8(&line) else {
                bail!("stdin:{}: the password is not valid UTF-8", number + 1);
            };
            if let Some((context, _)) = context {
                warnings = context.check(text);
            }
            kind.hash_password(text)
        };
        let count = index.lookup(&hash).unwrap_or(0);
        write!(out, "{hash}:{count}")?;
        if let Some((_, thresholds)) = context {
            write!(out, " {}", thresholds.classify(count))?;
            for (i, warning) in warnings.iter().enumerate() {
                out.write_all(if i == 0 { b" context: " } else { b"; " })?;
                write!(out, "{warning}")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// Answers each stdin line with `HASH:probably-breached` or `HASH:not-breached`; passwords are
/// hashed with the filter's kind, and a full hash of the other kind is refused.
fn check_filter(filter: &Filter<IndexBytes>, hashes: bool) -> Result<()> {
    let kind = filter.header().kind;
    let stdin = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    for (number, line) in stdin.split(b'\n').enumerate() {
        let mut line = line.context("reading standard input")?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let hash = if hashes {
            Hash::parse_hex(line.trim_ascii())
                .with_context(|| format!("stdin:{}: expected a full {kind} hash", number + 1))?
        } else {
            let Ok(text) = std::str::from_utf8(&line) else {
                bail!("stdin:{}: the password is not valid UTF-8", number + 1);
            };
            kind.hash_password(text)
        };
        let present = filter
            .contains(&hash)
            .with_context(|| format!("stdin:{}", number + 1))?;
        let answer = if present {
            "probably-breached"
        } else {
            "not-breached"
        };
        writeln!(out, "{hash}:{answer}")?;
    }
    out.flush()?;
    Ok(())
}
