//! Bulk audit: check an organisation's existing credential hashes against the corpus and report
//! per account, with a summary a security team can quote (breached share, severity tiers, and
//! accounts that share a password).
//!
//! Input lines are a bare hash (SHA-1 or NTLM by length), `user:hash`, or pwdump / secretsdump
//! (`user:rid:lmhash:nthash:::`, whose NT hash is checked against the NTLM corpus). Blank lines and
//! `#` comments are skipped; anything else that does not parse is counted and reported by file and
//! line number, never fatal. Hashes are never printed unless asked for ([`Render::show_hashes`]),
//! and an unparseable line is reported without its content.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Write};

use indicatif::ProgressBar;
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::hash::{Hash, HashKind};
use crate::index::Index;
use crate::severity::{Severity, Thresholds};

/// Input bytes handled by one parallel task; small enough to balance two to dozens of cores,
/// large enough that task overhead is noise.
const CHUNK_BYTES: usize = 1 << 20;

/// Unparseable lines listed in text output (all of them are in JSON).
const TEXT_BAD_LINES_SHOWN: usize = 50;

/// Members of a reuse group listed in text output.
const TEXT_GROUP_MEMBERS_SHOWN: usize = 20;

/// Something that answers "how often was this hash breached": an index of one kind.
pub trait Corpus: Sync {
    /// The kind of hash this corpus holds.
    fn kind(&self) -> HashKind;
    /// The breach count of `hash` (0 when absent).
    fn count(&self, hash: &Hash) -> u32;
}

impl<D: AsRef<[u8]> + Sync> Corpus for Index<D> {
    fn kind(&self) -> HashKind {
        Index::kind(self)
    }

    fn count(&self, hash: &Hash) -> u32 {
        self.lookup(hash).unwrap_or(0)
    }
}

/// Why a line was not understood. Messages never quote the line (it may hold a hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The hash field is neither 40 (SHA-1) nor 32 (NTLM) characters.
    #[error("expected a 40-hex SHA-1 or 32-hex NTLM hash")]
    HashLength,
    /// The hash field has a non-hex character.
    #[error("the hash is not hexadecimal")]
    NotHex,
    /// A pwdump line without an NT hash.
    #[error("pwdump line without an NT hash")]
    NoNtHash,
    /// Not UTF-8 (user names must be text).
    #[error("not valid UTF-8")]
    NotUtf8,
}

/// One parsed input line: an account (if named) and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential<'a> {
    /// The account name, when the line has one.
    pub user: Option<&'a str>,
    /// The credential's hash.
    pub hash: Hash,
}

/// Parses one line (without its line ending): `Ok(None)` for blank lines and `#` comments.
pub fn parse_line(line: &[u8]) -> Result<Option<Credential<'_>>, LineError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line).trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let line = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    let hash_of = |text: &str| {
        Hash::parse_hex(text.trim().as_bytes()).map_err(|e| match e {
            crate::hash::HashError::Length(_) => LineError::HashLength,
            crate::hash::HashError::NotHex => LineError::NotHex,
        })
    };
    // pwdump / secretsdump: user:rid:lmhash:nthash:::  (the RID is decimal)
    let mut fields = line.splitn(5, ':');
    if let (Some(user), Some(rid), Some(_lm), Some(nt)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    {
        if !rid.is_empty() && rid.bytes().all(|b| b.is_ascii_digit()) {
            let nt = nt.trim();
            if nt.is_empty() || nt.starts_with("NO PASSWORD") {
                return Err(LineError::NoNtHash);
            }
            let hash =
                Hash::parse_hex_kind(HashKind::Ntlm, nt.as_bytes()).map_err(|e| match e {
                    crate::hash::HashError::Length(_) => LineError::HashLength,
                    crate::hash::HashError::NotHex => LineError::NotHex,
                })?;
            return Ok(Some(Credential {
                user: Some(user).filter(|u| !u.is_empty()),
                hash,
            }));
        }
    }
    match line.rsplit_once(':') {
        Some((user, hash)) => Ok(Some(Credential {
            user: Some(user.trim()).filter(|u| !u.is_empty()),
            hash: hash_of(hash)?,
        })),
        None => Ok(Some(Credential {
            user: None,
            hash: hash_of(line)?,
        })),
    }
}

/// The result for one account (one parsed line), borrowing its name from the input.
#[derive(Debug, Clone)]
pub struct Account<'a> {
    /// Index of the input file in the list given to [`audit`].
    pub file: usize,
    /// Line number in that file, from 1.
    pub line: usize,
    /// The account name, if the line named one (borrowed: no allocation per account).
    pub user: Option<&'a str>,
    /// The hash (printed only with `show_hashes`; needed for reuse groups).
    pub hash: Hash,
    /// Breach count; `None` when no corpus of the hash's kind was given.
    pub count: Option<u32>,
    /// Tier of `count`; `None` when unchecked.
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

/// Everything an audit found, borrowing account names from the inputs.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// Names of the input files, as given.
    pub files: Vec<String>,
    /// One entry per parsed line, in input order.
    pub accounts: Vec<Account<'a>>,
    /// Lines that did not parse, in input order.
    pub bad_lines: Vec<BadLine>,
    /// Groups of two or more accounts with the same hash, largest first.
    pub reuse: Vec<ReuseGroup>,
    /// The tier thresholds used.
    pub thresholds: Thresholds,
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

/// Checks every line of `inputs` (`(name, contents)`) against `corpora` (at most one per kind) in
/// parallel. `progress` advances by input bytes.
pub fn audit<'a>(
    inputs: &'a [(String, Vec<u8>)],
    corpora: &[&dyn Corpus],
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report<'a> {
    let sha1 = corpora.iter().copied().find(|c| c.kind() == HashKind::Sha1);
    let ntlm = corpora.iter().copied().find(|c| c.kind() == HashKind::Ntlm);
    let mut accounts = Vec::new();
    let mut bad_lines = Vec::new();
    for (file, (_, data)) in inputs.iter().enumerate() {
        let data = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
        let chunks = split_chunks(data, CHUNK_BYTES);
        // Line number of each chunk's first line.
        let mut first_lines: Vec<usize> = chunks
            .par_iter()
            .map(|c| memchr::memchr_iter(b'\n', c).count())
            .collect();
        let mut next = 1;
        for n in &mut first_lines {
            let lines = *n;
            *n = next;
            next += lines;
        }
        let results: Vec<(Vec<Account<'a>>, Vec<BadLine>)> = chunks
            .par_iter()
            .zip(first_lines)
            .map(|(chunk, first)| {
                let out = check_chunk(file, chunk, first, sha1, ntlm, &thresholds);
                progress.inc(chunk.len() as u64);
                out
            })
            .collect();
        for (a, b) in results {
            accounts.extend(a);
            bad_lines.extend(b);
        }
    }
    let reuse = reuse_groups(&accounts);
    Report {
        files: inputs.iter().map(|(name, _)| name.clone()).collect(),
        accounts,
        bad_lines,
        reuse,
        thresholds,
    }
}

/// Parses and checks the lines of one chunk (which starts at line `first`).
fn check_chunk<'a>(
    file: usize,
    chunk: &'a [u8],
    first: usize,
    sha1: Option<&dyn Corpus>,
    ntlm: Option<&dyn Corpus>,
    thresholds: &Thresholds,
) -> (Vec<Account<'a>>, Vec<BadLine>) {
    let mut accounts = Vec::with_capacity(chunk.len() / 40);
    let mut bad = Vec::new();
    for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
        // The chunk's final empty piece after a trailing newline is not a line.
        if line.is_empty() {
            continue;
        }
        let number = first + i;
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(cred)) => {
                let corpus = match cred.hash.kind() {
                    HashKind::Sha1 => sha1,
                    HashKind::Ntlm => ntlm,
                };
                let count = corpus.map(|c| c.count(&cred.hash));
                accounts.push(Account {
                    file,
                    line: number,
                    user: cred.user,
                    hash: cred.hash,
                    count,
                    severity: count.map(|c| thresholds.classify(c)),
                });
            }
            Err(error) => bad.push(BadLine {
                file,
                line: number,
                error,
            }),
        }
    }
    (accounts, bad)
}

/// Splits `data` into pieces of about `size` bytes that end just after a newline (or at the end).
fn split_chunks(data: &[u8], size: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(data.len() / size + 1);
    let mut rest = data;
    while !rest.is_empty() {
        let cut = if rest.len() <= size {
            rest.len()
        } else {
            memchr::memchr(b'\n', &rest[size..]).map_or(rest.len(), |at| size + at + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Groups of accounts sharing a hash, largest first (ties: most breached first, then input order).
fn reuse_groups(accounts: &[Account<'_>]) -> Vec<ReuseGroup> {
    // Most hashes are unique: remember only the first account per hash, and allocate a member
    // list when a second one turns up.
    enum Seen {
        Once(usize),
        Group(usize),
    }
    let mut seen: HashMap<&Hash, Seen, BuildHasherDefault<HashBitsHasher>> =
        HashMap::with_capacity_and_hasher(accounts.len(), Default::default());
    let mut groups: Vec<ReuseGroup> = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        match seen.entry(&a.hash) {
            Entry::Vacant(v) => {
                v.insert(Seen::Once(i));
            }
            Entry::Occupied(mut o) => match *o.get() {
                Seen::Once(first) => {
                    o.insert(Seen::Group(groups.len()));
                    groups.push(ReuseGroup {
                        members: vec![first, i],
                    });
                }
                Seen::Group(g) => groups[g].members.push(i),
            },
        }
    }
    groups.sort_by(|a, b| {
        let count = |g: &ReuseGroup| accounts[g.members[0]].count.unwrap_or(0);
        b.members
            .len()
            .cmp(&a.members.len())
            .then(count(b).cmp(&count(a)))
            .then(a.members[0].cmp(&b.members[0]))
    });
    groups
}

impl Report<'_> {
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
            match (a.count, a.severity) {
                (Some(count), Some(severity)) => {
                    s.checked += 1;
                    s.breached += usize::from(count > 0);
                    s.by_severity[severity as usize] += 1;
                }
                _ => s.unchecked += 1,
            }
        }
        for g in &self.reuse {
            *s.reuse_by_size.entry(g.members.len()).or_default() += 1;
        }
        s
    }

    /// How an account is named in output: its user name, or `FILE:LINE` for a bare hash.
    pub fn account_name(&self, account: &Account<'_>) -> String {
        match &account.user {
            Some(user) => (*user).to_owned(),
            None => self.source(account.file, account.line),
        }
    }

    fn source(&self, file: usize, line: usize) -> String {
        format!("{}:{line}", self.files[file])
    }
}

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table and a summary for people.
    Text,
    /// One JSON object with accounts, summary, reuse groups and unparseable lines.
    Json,
    /// One row per account; the summary goes to the text stream given separately.
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("unknown format {s:?}: expected text, json or csv")),
        }
    }
}

/// Rendering settings.
#[derive(Debug, Clone, Copy)]
pub struct Render {
    /// Output format.
    pub format: Format,
    /// Print each account's hash (off by default: the report may travel further than the dump).
    pub show_hashes: bool,
}

impl Render {
    /// Writes `report` to `out`; for CSV the summary goes to `summary_out`.
    pub fn write(
        &self,
        report: &Report,
        out: &mut dyn Write,
        summary_out: &mut dyn Write,
    ) -> io::Result<()> {
        match self.format {
            Format::Text => self.write_text(report, out),
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &self.json(report))?;
                writeln!(out)
            }
            Format::Csv => {
                self.write_csv(report, out)?;
                write_summary(report, summary_out)
            }
        }
    }

    fn write_text(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        let width = report
            .accounts
            .iter()
            .map(|a| report.account_name(a).chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 40);
        write!(
            out,
            "{:<width$}  {:>10}  {:<8}  SOURCE",
            "ACCOUNT", "COUNT", "SEVERITY"
        )?;
        if self.show_hashes {
            write!(out, "  HASH")?;
        }
        writeln!(out)?;
        for a in &report.accounts {
            let (count, severity) = match (a.count, a.severity) {
                (Some(c), Some(s)) => (c.to_string(), s.name()),
                _ => ("-".into(), "unchecked"),
            };
            write!(
                out,
                "{:<width$}  {count:>10}  {severity:<8}  {}",
                report.account_name(a),
                report.source(a.file, a.line)
            )?;
            if self.show_hashes {
                write!(out, "  {}", a.hash)?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
        write_summary(report, out)?;
        if !report.reuse.is_empty() {
            writeln!(out, "\nAccounts sharing a password:")?;
            for g in &report.reuse {
                let first = &report.accounts[g.members[0]];
                let mut names: Vec<String> = g
                    .members
                    .iter()
                    .take(TEXT_GROUP_MEMBERS_SHOWN)
                    .map(|&i| report.account_name(&report.accounts[i]))
                    .collect();
                if g.members.len() > TEXT_GROUP_MEMBERS_SHOWN {
                    names.push(format!(
                        "... {} more",
                        g.members.len() - TEXT_GROUP_MEMBERS_SHOWN
                    ));
                }
                let breached = match (first.count, first.severity) {
                    (Some(c), Some(s)) => format!("breached {c} times, {s}"),
                    _ => "unchecked".into(),
                };
                write!(
                    out,
                    "  {} accounts ({breached}): {}",
                    g.members.len(),
                    names.join(", ")
                )?;
                if self.show_hashes {
                    write!(out, " [{}]", first.hash)?;
                }
                writeln!(out)?;
            }
        }
        Ok(())
    }

    fn write_csv(&self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        write!(out, "user,file,line,kind,count,severity")?;
        if self.show_hashes {
            write!(out, ",hash")?;
        }
        writeln!(out)?;
        for a in &report.accounts {
            let user = a.user.unwrap_or("");
            write!(
                out,
                "{},{},{},{},{},{}",
                csv_field(user),
                csv_field(&report.files[a.file]),
                a.line,
                a.hash.kind(),
                a.count.map_or(String::new(), |c| c.to_string()),
                a.severity.map_or("unchecked", Severity::name),
            )?;
            if self.show_hashes {
                write!(out, ",{}", a.hash)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// The JSON document: `summary`, `accounts`, `reuse_groups`, `unparseable`.
    pub fn json(&self, report: &Report) -> Value {
        let s = report.summary();
        let accounts: Vec<Value> = report
            .accounts
            .iter()
            .map(|a| {
                let mut v = json!({
                    "user": a.user,
                    "account": report.account_name(a),
                    "file": report.files[a.file],
                    "line": a.line,
                    "kind": a.hash.kind().name(),
                    "count": a.count,
                    "severity": a.severity.map(Severity::name),
                });
                if self.show_hashes {
                    v["hash"] = json!(a.hash.to_hex());
                }
                v
            })
            .collect();
        let groups: Vec<Value> = report
            .reuse
            .iter()
            .map(|g| {
                let first = &report.accounts[g.members[0]];
                let mut v = json!({
                    "size": g.members.len(),
                    "count": first.count,
                    "severity": first.severity.map(Severity::name),
                    "accounts": g.members.iter().map(|&i| report.account_name(&report.accounts[i])).collect::<Vec<_>>(),
                });
                if self.show_hashes {
                    v["hash"] = json!(first.hash.to_hex());
                }
                v
            })
            .collect();
        let bad: Vec<Value> = report
            .bad_lines
            .iter()
            .map(|b| json!({"file": report.files[b.file], "line": b.line, "error": b.error.to_string()}))
            .collect();
        let severity: serde_json::Map<String, Value> = Severity::ALL
            .iter()
            .map(|t| (t.name().to_owned(), json!(s.by_severity[*t as usize])))
            .collect();
        let reuse_by_size: serde_json::Map<String, Value> = s
            .reuse_by_size
            .iter()
            .map(|(size, n)| (size.to_string(), json!(n)))
            .collect();
        json!({
            "summary": {
                "accounts": report.accounts.len(),
                "checked": s.checked,
                "unchecked": s.unchecked,
                "breached": s.breached,
                "breached_percent": (s.breached_percent() * 10.0).round() / 10.0,
                "severity": severity,
                "thresholds": report.thresholds.to_string(),
                "unparseable_lines": s.unparseable,
                "reuse_groups_by_size": reuse_by_size,
            },
            "accounts": accounts,
            "reuse_groups": groups,
            "unparseable": bad,
        })
    }
}

/// The human summary (also used for CSV, on the side stream).
fn write_summary(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let s = report.summary();
    writeln!(out, "Summary")?;
    writeln!(
        out,
        "  accounts checked: {} ({} unchecked: no index of their hash kind)",
        s.checked, s.unchecked
    )?;
    writeln!(
        out,
        "  {:.1}% of accounts use a breached password ({} of {})",
        s.breached_percent(),
        s.breached,
        s.checked
    )?;
    let tiers: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|t| format!("{t} {}", s.by_severity[*t as usize]))
        .collect();
    writeln!(
        out,
        "  by severity: {} (thresholds {})",
        tiers.join(", "),
        report.thresholds
    )?;
    if s.reuse_by_size.is_empty() {
        writeln!(out, "  password reuse: no two accounts share a hash")?;
    } else {
        let sizes: Vec<String> = s
            .reuse_by_size
            .iter()
            .rev()
            .map(|(size, n)| format!("{n} x {size} accounts"))
            .collect();
        writeln!(
            out,
            "  password reuse: {} groups ({})",
            report.reuse.len(),
            sizes.join(", ")
        )?;
    }
    writeln!(out, "  unparseable lines: {}", s.unparseable)?;
    for b in report.bad_lines.iter().take(TEXT_BAD_LINES_SHOWN) {
        writeln!(out, "    {}: {}", report.source(b.file, b.line), b.error)?;
    }
    if report.bad_lines.len() > TEXT_BAD_LINES_SHOWN {
        writeln!(
            out,
            "    ... {} more",
            report.bad_lines.len() - TEXT_BAD_LINES_SHOWN
        )?;
    }
    Ok(())
}

/// A hasher for cryptographic hashes, which are uniformly random already: it mixes the written
/// bytes with a multiply-rotate step (FxHash-style) instead of SipHash's full rounds. Only used
/// for grouping the operator's own input, so collision flooding is not a concern.
#[derive(Default)]
struct HashBitsHasher(u64);

impl Hasher for HashBitsHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Quotes a CSV field when needed (RFC 4180).
fn csv_field(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into()
    } else {
        text.into()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} checked, {} breached ({:.1}%), {} unparseable",
            self.checked,
            self.breached,
            self.breached_percent(),
            self.unparseable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
    const NT: &str = "8846F7EAEE8FB117AD06BDD830B7586C";

    #[test]
    fn parses_each_input_form() {
        let bare = parse_line(SHA1.as_bytes()).unwrap().unwrap();
        assert_eq!((bare.user, bare.hash.kind()), (None, HashKind::Sha1));
        let line = format!("alice:{}\r", NT.to_lowercase());
        let user = parse_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (user.user, user.hash.kind()),
            (Some("alice"), HashKind::Ntlm)
        );
        let line =
            format!("CORP\\bob:1104:aad3b435b51404eeaad3b435b51404ee:{NT}::: (status=Enabled)");
        let pw = parse_line(line.as_bytes()).unwrap().unwrap();
        assert_eq!(pw.user, Some("CORP\\bob"));
        assert_eq!(pw.hash.to_hex(), NT);
        assert_eq!(parse_line(b"  # comment").unwrap(), None);
        assert_eq!(parse_line(b"").unwrap(), None);
        assert_eq!(parse_line(b"carol:abc"), Err(LineError::HashLength));
        assert_eq!(
            parse_line(format!("{}Z", &SHA1[..39]).as_bytes()),
            Err(LineError::NotHex)
        );
        assert_eq!(
            parse_line(
                b"dave:500:NO PASSWORD*********************:NO PASSWORD*********************:::"
            ),
            Err(LineError::NoNtHash)
        );
    }

    #[test]
    fn chunks_end_on_line_boundaries() {
        let data = b"aa\nbbbb\ncc\n\nd";
        let chunks = split_chunks(data, 3);
        assert_eq!(chunks.concat(), data);
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.ends_with(b"\n")));
    }
}
