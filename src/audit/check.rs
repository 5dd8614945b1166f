//! Checking: each input read in bounded batches of whole lines, each batch split into
//! line-aligned chunks parsed and looked up in parallel, then all accounts grouped by hash to find
//! accounts sharing a password.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::{
    parse_line, Account, AuditError, BadLine, Corpus, Filters, Indexes, LineError, Mode, Report,
    ReuseGroup, MAX_LINE_BYTES,
};
use crate::hash::Hash;
use crate::severity::Thresholds;

/// Input bytes handled by one parallel task; small enough to balance two to dozens of cores,
/// large enough that task overhead is noise.
const CHUNK_BYTES: usize = 1 << 20;

/// Input bytes read per batch (about 160k typical lines): the only input held in memory.
const BATCH_BYTES: usize = 8 * CHUNK_BYTES;

/// One input to stream: its name as reported (`FILE` in `FILE:LINE`) and its contents.
pub struct Input<R> {
    /// The name, as given (`-` for standard input).
    pub name: String,
    /// The contents, read once, front to back, in batches of [`BATCH_BYTES`].
    pub reader: R,
}

/// Checks every line of `inputs` (`(name, contents)`, already in memory) against `indexes` in
/// parallel. `progress` advances by input bytes.
pub fn audit(
    inputs: &[(String, Vec<u8>)],
    indexes: Indexes<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report {
    run(
        in_memory(inputs),
        Corpus::Indexes(indexes),
        thresholds,
        progress,
    )
    .expect("reading from memory cannot fail")
}

/// Checks every line of `inputs` against binary fuse `filters`: each account is "probably
/// breached" (count 1) or "not breached" (count 0), with no severity tier.
pub fn audit_filters(
    inputs: &[(String, Vec<u8>)],
    filters: Filters<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report {
    run(
        in_memory(inputs),
        Corpus::Filters(filters),
        thresholds,
        progress,
    )
    .expect("reading from memory cannot fail")
}

/// [`audit`] over readers, streamed: memory holds one batch of input plus the report.
pub fn audit_streams<R: Read>(
    inputs: Vec<Input<R>>,
    indexes: Indexes<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Result<Report, AuditError> {
    run(inputs, Corpus::Indexes(indexes), thresholds, progress)
}

/// [`audit_filters`] over readers, streamed: memory holds one batch of input plus the report.
pub fn audit_filter_streams<R: Read>(
    inputs: Vec<Input<R>>,
    filters: Filters<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Result<Report, AuditError> {
    run(inputs, Corpus::Filters(filters), thresholds, progress)
}

fn in_memory(inputs: &[(String, Vec<u8>)]) -> Vec<Input<&[u8]>> {
    inputs
        .iter()
        .map(|(name, data)| Input {
            name: name.clone(),
            reader: data.as_slice(),
        })
        .collect()
}

fn run<R: Read>(
    inputs: Vec<Input<R>>,
    corpus: Corpus<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Result<Report, AuditError> {
    let mut accounts = Vec::new();
    let mut bad_lines = Vec::new();
    let mut files = Vec::with_capacity(inputs.len());
    let mut batch = vec![0u8; BATCH_BYTES];
    for (file, input) in inputs.into_iter().enumerate() {
        files.push(input.name);
        let mut sink = Sink {
            file,
            corpus,
            thresholds: &thresholds,
            progress,
            accounts: &mut accounts,
            bad_lines: &mut bad_lines,
        };
        stream(input.reader, &mut batch, &mut sink)
            .map_err(|source| AuditError::Read { file, source })?;
    }
    let reuse = reuse_groups(&accounts);
    let mode = match corpus {
        Corpus::Indexes(_) => Mode::Counts,
        Corpus::Filters(filters) => Mode::Filter {
            fp_rate: [filters.sha1, filters.ntlm]
                .into_iter()
                .flatten()
                .map(|f| f.header().fp_rate)
                .fold(0.0, f64::max),
        },
    };
    Ok(Report {
        mode,
        files,
        accounts,
        bad_lines,
        reuse,
        thresholds,
    })
}

/// Where the lines of one input go.
struct Sink<'s, 'i> {
    file: usize,
    corpus: Corpus<'i>,
    thresholds: &'s Thresholds,
    progress: &'s ProgressBar,
    accounts: &'s mut Vec<Account>,
    bad_lines: &'s mut Vec<BadLine>,
}

impl Sink<'_, '_> {
    /// Parses and checks `data` (whole lines, the first numbered `first`) in parallel chunks;
    /// returns the number of newlines in it.
    fn batch(&mut self, data: &[u8], first: usize) -> usize {
        let chunks = split_chunks(data, CHUNK_BYTES);
        // Line number of each chunk's first line.
        let mut first_lines: Vec<usize> = chunks
            .par_iter()
            .map(|c| memchr::memchr_iter(b'\n', c).count())
            .collect();
        let mut next = first;
        for n in &mut first_lines {
            let lines = *n;
            *n = next;
            next += lines;
        }
        let (file, corpus, thresholds, progress) =
            (self.file, self.corpus, self.thresholds, self.progress);
        let results: Vec<(Vec<Account>, Vec<BadLine>)> = chunks
            .par_iter()
            .zip(first_lines)
            .map(|(chunk, first)| {
                let out = check_chunk(file, chunk, first, corpus, thresholds);
                progress.inc(chunk.len() as u64);
                out
            })
            .collect();
        for (a, b) in results {
            self.accounts.extend(a);
            self.bad_lines.extend(b);
        }
        next - first
    }

    /// Records a line longer than [`MAX_LINE_BYTES`] that was skipped without being buffered.
    fn long_line(&mut self, line: usize, looks: LongLine) {
        if looks == LongLine::Text {
            self.bad_lines.push(BadLine {
                file: self.file,
                line,
                error: LineError::TooLong,
            });
        }
    }
}

/// What an over-long line is, judged (as [`parse_line`] would) by its first non-blank byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LongLine {
    /// Only whitespace so far.
    Blank,
    /// A `#` comment: skipped like a short one.
    Comment,
    /// Anything else: an unparseable line.
    Text,
}

impl LongLine {
    /// The judgement after `bytes` more of the line.
    fn after(self, bytes: &[u8]) -> LongLine {
        if self != LongLine::Blank {
            return self;
        }
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => LongLine::Blank,
            Some(b'#') => LongLine::Comment,
            Some(_) => LongLine::Text,
        }
    }
}

/// Reads `reader` to its end in batches of whole lines (at most `batch.len()` bytes each, minus a
/// leading UTF-8 byte order mark) and hands each to `sink`. A line with no newline within a whole
/// batch is skipped as it streams by, without being buffered.
fn stream<R: Read>(mut reader: R, batch: &mut [u8], sink: &mut Sink<'_, '_>) -> io::Result<()> {
    // A carried line start (at most MAX_LINE_BYTES) must leave room to read more.
    debug_assert!(batch.len() > MAX_LINE_BYTES);
    let mut len = 0; // bytes in `batch`; they start at a line start
    let mut line = 1; // number of the line at batch[0]
    let mut first = true;
    // An over-long line being skipped: its number and what it looks like so far.
    let mut skipping: Option<(usize, LongLine)> = None;
    loop {
        let mut eof = false;
        while len < batch.len() {
            match reader.read(&mut batch[len..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut start = 0;
        if first {
            first = false;
            if batch[..len].starts_with("\u{feff}".as_bytes()) {
                start = 3;
            }
        }
        if let Some((number, looks)) = skipping {
            match memchr::memchr(b'\n', &batch[..len]) {
                Some(at) => {
                    sink.long_line(number, looks.after(&batch[..at]));
                    skipping = None;
                    line += 1;
                    sink.progress.inc(at as u64 + 1);
                    start = at + 1;
                }
                None => {
                    skipping = Some((number, looks.after(&batch[..len])));
                    sink.progress.inc(len as u64);
                    len = 0;
                    if eof {
                        let (number, looks) = skipping.take().expect("set above");
                        sink.long_line(number, looks);
                        return Ok(());
                    }
                    continue;
                }
            }
        }
        let data = &batch[start..len];
        let end = if eof {
            data.len()
        } else {
            match memchr::memrchr(b'\n', data) {
                Some(at) => at + 1,
                // A whole batch without a line break: skip the rest of this line.
                None if data.len() > MAX_LINE_BYTES => {
                    skipping = Some((line, LongLine::Blank.after(data)));
                    sink.progress.inc(data.len() as u64);
                    len = 0;
                    continue;
                }
                // A short start of a line after a skipped one: wait for the rest.
                None => 0,
            }
        };
        line += sink.batch(&data[..end], line);
        // Keep the unfinished last line for the next batch.
        batch.copy_within(start + end..len, 0);
        len -= start + end;
        if eof {
            return Ok(());
        }
    }
}

/// Parses and checks the lines of one chunk (which starts at line `first`).
fn check_chunk(
    file: usize,
    chunk: &[u8],
    first: usize,
    corpus: Corpus<'_>,
    thresholds: &Thresholds,
) -> (Vec<Account>, Vec<BadLine>) {
    let filter_mode = matches!(corpus, Corpus::Filters(_));
    let mut accounts = Vec::with_capacity(chunk.len() / 40);
    let mut bad = Vec::new();
    for (i, line) in chunk.split(|&b| b == b'\n').enumerate() {
        // The chunk's final empty piece after a trailing newline is not a line.
        if line.is_empty() {
            continue;
        }
        let number = first + i;
        if line.len() > MAX_LINE_BYTES {
            if LongLine::Blank.after(line) == LongLine::Text {
                bad.push(BadLine {
                    file,
                    line: number,
                    error: LineError::TooLong,
                });
            }
            continue;
        }
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(cred)) => {
                let count = corpus.check(&cred.hash);
                accounts.push(Account {
                    file,
                    line: number,
                    user: cred.user.map(Box::from),
                    hash: cred.hash,
                    count,
                    severity: count
                        .filter(|_| !filter_mode)
                        .map(|c| thresholds.classify(c)),
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
fn reuse_groups(accounts: &[Account]) -> Vec<ReuseGroup> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_line_boundaries() {
        let data = b"aa\nbbbb\ncc\n\nd";
        let chunks = split_chunks(data, 3);
        assert_eq!(chunks.concat(), data);
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.ends_with(b"\n")));
    }

    /// A reader that returns at most 3,001 bytes per read, as pipes return short reads.
    struct Pieces<'d>(&'d [u8]);

    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3_001);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Accounts `(line, user, hash)` and unparseable lines `(line, error)`.
    type Found = (Vec<(usize, Option<String>, Hash)>, Vec<(usize, LineError)>);

    /// What an audit of `data` must find, line by line, with no batching.
    fn reference(data: &[u8]) -> Found {
        let data = data.strip_prefix("\u{feff}".as_bytes()).unwrap_or(data);
        let (mut accounts, mut bad) = (Vec::new(), Vec::new());
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            if line.len() > MAX_LINE_BYTES {
                let first = line.iter().find(|b| !b.is_ascii_whitespace());
                if first.is_some_and(|&b| b != b'#') {
                    bad.push((i + 1, LineError::TooLong));
                }
                continue;
            }
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some(c)) => accounts.push((i + 1, c.user.map(str::to_owned), c.hash)),
                Err(e) => bad.push((i + 1, e)),
            }
        }
        (accounts, bad)
    }

    #[test]
    fn batches_find_what_a_whole_read_finds() {
        let hash = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let mut data = "\u{feff}".as_bytes().to_vec();
        let long = |n: usize, c: u8| vec![c; n];
        for i in 0..400 {
            match i % 9 {
                0 => data.extend(format!("user{i}:{hash}\r\n").bytes()),
                1 => data.extend(long(4000 + i * 37, b'#')),
                2 => data.extend(long(4097 + i * 53, b' ')),
                3 => data.extend(long(5000 + i * 101, b'x')),
                4 => data.extend(format!("{}:{hash}", "u".repeat(4056)).bytes()),
                5 => data.extend(format!("{}:{hash}", "u".repeat(4055)).bytes()),
                6 => data.extend(b"bad"),
                7 => {
                    data.extend(long(6000, b' '));
                    data.extend(long(9000, b'#'));
                }
                _ => data.extend(hash.bytes()),
            }
            data.push(b'\n');
        }
        data.extend(long(30_000, b'y')); // a long last line without a newline
        let (want_accounts, want_bad) = reference(&data);
        assert!(want_bad.iter().any(|(_, e)| *e == LineError::TooLong));
        assert!(want_accounts
            .iter()
            .any(|(_, u, _)| u.as_ref().is_some_and(|u| u.len() == 4055)));
        for size in [MAX_LINE_BYTES + 1, 5_000, 7_919, 65_536, BATCH_BYTES] {
            let (mut accounts, mut bad_lines) = (Vec::new(), Vec::new());
            let progress = ProgressBar::hidden();
            let thresholds = Thresholds::DEFAULT;
            let mut sink = Sink {
                file: 0,
                corpus: Corpus::Indexes(Indexes::default()),
                thresholds: &thresholds,
                progress: &progress,
                accounts: &mut accounts,
                bad_lines: &mut bad_lines,
            };
            stream(Pieces(&data), &mut vec![0; size], &mut sink).unwrap();
            let got: Vec<_> = accounts
                .iter()
                .map(|a| (a.line, a.user.as_deref().map(str::to_owned), a.hash))
                .collect();
            assert_eq!(got, want_accounts, "batch of {size}");
            let got: Vec<_> = bad_lines.iter().map(|b| (b.line, b.error)).collect();
            assert_eq!(got, want_bad, "batch of {size}");
        }
    }
}
