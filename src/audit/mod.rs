//! Bulk audit: check an organisation's existing credential hashes against the corpus and report
//! per account, with a summary a security team can quote (breached share, severity tiers, and
//! accounts that share a password).
//!
//! Input lines are a bare hash (SHA-1 or NTLM by length), `user:hash`, or pwdump / secretsdump
//! (`user:rid:lmhash:nthash:::`, whose NT hash is checked against the NTLM corpus). Blank lines and
//! `#` comments are skipped; anything else that does not parse is counted and reported by file and
//! line number, never fatal. Hashes are never printed unless asked for ([`Render::show_hashes`]),
//! and an unparseable line is reported without its content.
//!
//! # Layout
//! - [`parse`]: one input line to a [`Credential`] (or a [`LineError`]).
//! - [`check`]: [`audit_streams`] (and [`audit`] for inputs already in memory): input read in
//!   batches, parsed and looked up in parallel chunks, then reuse grouping.
//! - [`report`]: the three renderers (text, JSON, CSV) behind [`Render`].
//!
//! This module holds the result types ([`Report`], [`Account`], [`Summary`], ...) and the
//! [`Indexes`] an audit checks against.
//!
//! # Memory
//! Input is streamed: each input is read once in batches of whole lines (8 MiB), and a line longer
//! than [`MAX_LINE_BYTES`] is skipped as it streams by (reported as unparseable unless it is blank
//! or a comment). Each account keeps only what the report needs (its own copy of the user name,
//! bounded by the line cap, the hash, count, severity, file and line), and each unparseable line
//! its file, line and error. Memory is therefore O(accounts + unparseable lines) plus one batch,
//! whatever the size of the input: blank and comment lines cost nothing.

pub mod check;
pub mod parse;
pub mod report;

use std::collections::BTreeMap;

use crate::export::filter::{key_of, Filter};
use crate::hash::{Hash, HashKind};
use crate::index::Index;
use crate::mmap::IndexBytes;
use crate::severity::{Severity, Thresholds};

pub use check::{audit, audit_filter_streams, audit_filters, audit_streams, Input};
pub use parse::{parse_line, Credential, LineError};
pub use report::{Render, ReportFormat};

/// The indexes an audit checks against: at most one per hash kind. A hash whose kind has no index
/// is reported as unchecked.
#[derive(Clone, Copy, Default)]
pub struct Indexes<'i> {
    /// The SHA-1 index (bare 40-hex hashes, `user:sha1`).
    pub sha1: Option<&'i Index<IndexBytes>>,
    /// The NTLM index (pwdump NT hashes, bare 32-hex hashes).
    pub ntlm: Option<&'i Index<IndexBytes>>,
}

impl<'i> Indexes<'i> {
    /// The index for hashes of `kind`, if any.
    pub fn get(&self, kind: HashKind) -> Option<&'i Index<IndexBytes>> {
        match kind {
            HashKind::Sha1 => self.sha1,
            HashKind::Ntlm => self.ntlm,
        }
    }
}

/// Binary fuse filters an audit checks against instead of indexes: at most one per hash kind.
/// Answers are "probably breached" or "not breached", without counts or severity tiers.
#[derive(Clone, Copy, Default)]
pub struct Filters<'i> {
    /// The SHA-1 filter.
    pub sha1: Option<&'i Filter<IndexBytes>>,
    /// The NTLM filter.
    pub ntlm: Option<&'i Filter<IndexBytes>>,
}

impl<'i> Filters<'i> {
    /// The filter for hashes of `kind`, if any.
    pub fn get(&self, kind: HashKind) -> Option<&'i Filter<IndexBytes>> {
        match kind {
            HashKind::Sha1 => self.sha1,
            HashKind::Ntlm => self.ntlm,
        }
    }
}

/// What the accounts were checked against, which decides what a result means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Indexes: exact counts and severity tiers.
    Counts,
    /// Filters: a count of 1 means "probably breached" (a false positive with probability
    /// `fp_rate`), 0 means "not breached"; no severity tiers.
    Filter {
        /// The largest false-positive rate among the filters used.
        fp_rate: f64,
    },
}

/// Where one audit looks hashes up.
#[derive(Clone, Copy)]
pub(crate) enum Corpus<'i> {
    /// Exact counts.
    Indexes(Indexes<'i>),
    /// Membership only.
    Filters(Filters<'i>),
}

impl Corpus<'_> {
    /// The count (indexes) or 1/0 (filters) for `hash`; `None` when no corpus has its kind.
    pub(crate) fn check(&self, hash: &Hash) -> Option<u32> {
        match self {
            Corpus::Indexes(indexes) => indexes
                .get(hash.kind())
                .map(|index| index.lookup(hash).unwrap_or(0)),
            Corpus::Filters(filters) => filters
                .get(hash.kind())
                .map(|filter| u32::from(filter.contains_key(key_of(hash.as_bytes())))),
        }
    }
}

/// Longest input line read, in bytes (without its line ending); a longer line is skipped as it
/// streams by and reported as [`LineError::TooLong`] (unless blank or a comment).
pub const MAX_LINE_BYTES: usize = 4096;

/// Why an audit stopped: an input could not be read (what was read is dropped; no report).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading input number `file` failed.
    #[error("reading input {file}")]
    Read {
        /// Index of the input in the list given to [`audit_streams`].
        file: usize,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
}

/// The result for one account (one parsed line).
#[derive(Debug, Clone)]
pub struct Account {
    /// Index of the input file in the list given to [`audit`].
    pub file: usize,
    /// Line number in that file, from 1.
    pub line: usize,
    /// The account name, if the line named one (at most [`MAX_LINE_BYTES`]).
    pub user: Option<Box<str>>,
    /// The hash (printed only with `show_hashes`; needed for reuse groups).
    pub hash: Hash,
    /// Breach count (in filter mode 1 = probably breached, 0 = not); `None` when no corpus of
    /// the hash's kind was given.
    pub count: Option<u32>,
    /// Tier of `count`; `None` when unchecked, and always in filter mode.
    pub severity: Option<Severity>,
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Index of the input file.
    pub file: usize,
    /// Line number, from 1.
    pub line: usize,
    /// What was wrong.
    pub error: LineError,
}

/// Accounts sharing one hash: the same password used more than once inside the organisation.
#[derive(Debug, Clone)]
pub struct ReuseGroup {
    /// Indexes into [`Report::accounts`], in input order.
    pub members: Vec<usize>,
}

/// Everything an audit found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Names of the input files, as given.
    pub files: Vec<String>,
    /// One entry per parsed line, in input order.
    pub accounts: Vec<Account>,
    /// Lines that did not parse, in input order.
    pub bad_lines: Vec<BadLine>,
    /// Groups of two or more accounts with the same hash, largest first.
    pub reuse: Vec<ReuseGroup>,
    /// The tier thresholds used.
    pub thresholds: Thresholds,
    /// Counts from indexes, or answers from filters.
    pub mode: Mode,
}

/// Totals derived from a [`Report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Accounts checked against a corpus.
    pub checked: usize,
    /// Accounts whose hash kind had no corpus.
    pub unchecked: usize,
    /// Checked accounts with a count of at least 1.
    pub breached: usize,
    /// Checked accounts per tier, `none` first.
    pub by_severity: [usize; 5],
    /// Lines that did not parse.
    pub unparseable: usize,
    /// Reuse groups per group size.
    pub reuse_by_size: BTreeMap<usize, usize>,
}

impl Summary {
    /// Share of checked accounts that are breached, in percent.
    pub fn breached_percent(&self) -> f64 {
        if self.checked == 0 {
            0.0
        } else {
            100.0 * self.breached as f64 / self.checked as f64
        }
    }
}

impl Report {
    /// Totals for the summary.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            checked: 0,
            unchecked: 0,
            breached: 0,
            by_severity: [0; 5],
            unparseable: self.bad_lines.len(),
            reuse_by_size: BTreeMap::new(),
        };
        for a in &self.accounts {
            match a.count {
                Some(count) => {
                    s.checked += 1;
                    s.breached += usize::from(count > 0);
                    if let Some(severity) = a.severity {
                        s.by_severity[severity as usize] += 1;
                    }
                }
                None => s.unchecked += 1,
            }
        }
        for g in &self.reuse {
            *s.reuse_by_size.entry(g.members.len()).or_default() += 1;
        }
        s
    }

    /// How an account is named in output: its user name, or `FILE:LINE` for a bare hash.
    pub fn account_name(&self, account: &Account) -> String {
        match &account.user {
            Some(user) => user.to_string(),
            None => self.source(account.file, account.line),
        }
    }

    /// `FILE:LINE` of a line of input file number `file`.
    pub(crate) fn source(&self, file: usize, line: usize) -> String {
        format!("{}:{line}", self.files[file])
    }
}
