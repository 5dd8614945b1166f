//! Checking: input split into line-aligned chunks, parsed and looked up in parallel, then
//! grouped by hash to find accounts sharing a password.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::{parse_line, Account, BadLine, Corpus, Filters, Indexes, Mode, Report, ReuseGroup};
use crate::hash::Hash;
use crate::severity::Thresholds;

/// Input bytes handled by one parallel task; small enough to balance two to dozens of cores,
/// large enough that task overhead is noise.
const CHUNK_BYTES: usize = 1 << 20;

/// Checks every line of `inputs` (`(name, contents)`) against `indexes` in parallel. `progress`
/// advances by input bytes.
pub fn audit<'a>(
    inputs: &'a [(String, Vec<u8>)],
    indexes: Indexes<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report<'a> {
    run(inputs, Corpus::Indexes(indexes), thresholds, progress)
}

/// Checks every line of `inputs` against binary fuse `filters`: each account is "probably
/// breached" (count 1) or "not breached" (count 0), with no severity tier.
pub fn audit_filters<'a>(
    inputs: &'a [(String, Vec<u8>)],
    filters: Filters<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report<'a> {
    run(inputs, Corpus::Filters(filters), thresholds, progress)
}

fn run<'a>(
    inputs: &'a [(String, Vec<u8>)],
    corpus: Corpus<'_>,
    thresholds: Thresholds,
    progress: &ProgressBar,
) -> Report<'a> {
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
                let out = check_chunk(file, chunk, first, corpus, &thresholds);
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
    Report {
        mode,
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
    corpus: Corpus<'_>,
    thresholds: &Thresholds,
) -> (Vec<Account<'a>>, Vec<BadLine>) {
    let filter_mode = matches!(corpus, Corpus::Filters(_));
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
                let count = corpus.check(&cred.hash);
                accounts.push(Account {
                    file,
                    line: number,
                    user: cred.user,
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
}
