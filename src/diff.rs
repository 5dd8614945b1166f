//! What changed between two indexes of the same kind: per prefix, a merge of the two sorted
//! record lists, skipping every prefix whose stored content tags are equal (see
//! [`Index::prefix_tag`]). Nothing is loaded whole: the indexes are read in place (mapped), and
//! only the prefixes that changed are walked.

use std::io::{self, Write};

use rayon::prelude::*;

use crate::format;
use crate::hash::{HashKind, Prefix, MAX_HASH_LEN, PREFIX_COUNT};
use crate::index::{Entry, Index};

/// Prefixes compared by one rayon task.
const PREFIXES_PER_TASK: usize = 1024;

/// Tasks whose dump output is held in memory at once before being written in order.
const TASKS_PER_BATCH: usize = 64;

/// The figures of a diff.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// Records in the old index.
    pub old_records: u64,
    /// Records in the new index.
    pub new_records: u64,
    /// Prefixes whose content differs.
    pub prefixes_changed: u64,
    /// Hashes in the new index only.
    pub hashes_added: u64,
    /// Hashes in the old index only.
    pub hashes_removed: u64,
    /// Hashes in both whose count went up.
    pub counts_up: u64,
    /// Hashes in both whose count went down.
    pub counts_down: u64,
}

impl DiffSummary {
    /// Hashes in both whose count changed.
    pub fn counts_changed(&self) -> u64 {
        self.counts_up + self.counts_down
    }

    /// Whether the two indexes hold the same data.
    pub fn is_empty(&self) -> bool {
        self.prefixes_changed == 0
    }

    fn add(mut self, other: DiffSummary) -> DiffSummary {
        self.prefixes_changed += other.prefixes_changed;
        self.hashes_added += other.hashes_added;
        self.hashes_removed += other.hashes_removed;
        self.counts_up += other.counts_up;
        self.counts_down += other.counts_down;
        self
    }
}

/// Why two indexes cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    /// The indexes hold different kinds of hash.
    #[error("cannot compare a {old} index with a {new} index")]
    KindMismatch {
        /// Kind of the old index.
        old: HashKind,
        /// Kind of the new index.
        new: HashKind,
    },
}

/// One difference, as the merge finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A hash only in the new index, with its count.
    Added(u32),
    /// A hash only in the old index, with its old count.
    Removed(u32),
    /// A hash in both with another count: `(old, new)`.
    Count(u32, u32),
}

/// Compares `old` with `new` and returns the figures (in parallel over prefixes).
pub fn diff<D: AsRef<[u8]> + Sync>(
    old: &Index<D>,
    new: &Index<D>,
) -> Result<DiffSummary, DiffError> {
    check_kinds(old, new)?;
    let changes = (0..PREFIX_COUNT / PREFIXES_PER_TASK)
        .into_par_iter()
        .map(|task| {
            let mut summary = DiffSummary::default();
            for p in task * PREFIXES_PER_TASK..(task + 1) * PREFIXES_PER_TASK {
                let prefix = Prefix::new(p as u32).expect("in range");
                diff_prefix(old, new, prefix, &mut summary, |_, _| {});
            }
            summary
        })
        .reduce(DiffSummary::default, DiffSummary::add);
    Ok(totals(old, new).add(changes))
}

/// Compares `old` with `new` and writes every added or changed record of the new index as
/// `HASH:COUNT` (upper-case hex, new count, LF), in hash order. Removed hashes are counted in the
/// summary, not written.
pub fn write_dump<D: AsRef<[u8]> + Sync>(
    old: &Index<D>,
    new: &Index<D>,
    out: &mut impl Write,
) -> Result<DiffSummary, DumpError> {
    check_kinds(old, new)?;
    let kind = new.kind();
    let tasks: Vec<usize> = (0..PREFIX_COUNT / PREFIXES_PER_TASK).collect();
    let mut total = totals(old, new);
    for batch in tasks.chunks(TASKS_PER_BATCH) {
        let parts: Vec<(DiffSummary, Vec<u8>)> = batch
            .par_iter()
            .map(|&task| {
                let mut summary = DiffSummary::default();
                let mut text = Vec::new();
                let mut hash = [0u8; MAX_HASH_LEN];
                let hash = &mut hash[..kind.byte_len()];
                let mut hex = [0u8; 2 * MAX_HASH_LEN];
                let hex = &mut hex[..kind.hex_len()];
                for p in task * PREFIXES_PER_TASK..(task + 1) * PREFIXES_PER_TASK {
                    let prefix = Prefix::new(p as u32).expect("in range");
                    diff_prefix(old, new, prefix, &mut summary, |entry, change| {
                        let count = match change {
                            Change::Added(count) | Change::Count(_, count) => count,
                            Change::Removed(_) => return,
                        };
                        format::decode_record_hash(prefix.value(), entry.record(), hash);
                        const_hex::encode_to_slice_upper(&*hash, hex).expect("sized for kind");
                        text.extend_from_slice(hex);
                        text.push(b':');
                        text.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
                        text.push(b'\n');
                    });
                }
                (summary, text)
            })
            .collect();
        for (summary, text) in parts {
            out.write_all(&text)?;
            total = total.add(summary);
        }
    }
    out.flush()?;
    Ok(total)
}

/// Why [`write_dump`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The indexes cannot be compared.
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// Writing the output failed.
    #[error("writing the dump: {0}")]
    Io(#[from] io::Error),
}

fn check_kinds<D: AsRef<[u8]> + Sync>(old: &Index<D>, new: &Index<D>) -> Result<(), DiffError> {
    if old.kind() != new.kind() {
        return Err(DiffError::KindMismatch {
            old: old.kind(),
            new: new.kind(),
        });
    }
    Ok(())
}

fn totals<D: AsRef<[u8]> + Sync>(old: &Index<D>, new: &Index<D>) -> DiffSummary {
    DiffSummary {
        old_records: old.len(),
        new_records: new.len(),
        ..DiffSummary::default()
    }
}

/// Merges one prefix of both indexes, adding to `summary` and calling `visit` with the entry
/// (the new one, or the old one for a removal) and the change, in hash order. Prefixes with equal
/// tags are skipped without reading a record.
fn diff_prefix<'a, D: AsRef<[u8]> + Sync>(
    old: &'a Index<D>,
    new: &'a Index<D>,
    prefix: Prefix,
    summary: &mut DiffSummary,
    mut visit: impl FnMut(Entry<'a>, Change),
) {
    if old.prefix_tag(prefix) == new.prefix_tag(prefix) {
        return;
    }
    let before = *summary;
    let mut a = old.range(prefix).iter().peekable();
    let mut b = new.range(prefix).iter().peekable();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            // The first 60 bits decide almost every comparison with one integer compare.
            (Some(x), Some(y)) => format::key_head(x.record())
                .cmp(&format::key_head(y.record()))
                .then_with(|| format::record_key(x.record()).cmp(&format::record_key(y.record()))),
        };
        match order {
            std::cmp::Ordering::Less => {
                let x = a.next().expect("peeked");
                summary.hashes_removed += 1;
                visit(x, Change::Removed(x.count()));
            }
            std::cmp::Ordering::Greater => {
                let y = b.next().expect("peeked");
                summary.hashes_added += 1;
                visit(y, Change::Added(y.count()));
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                match x.count().cmp(&y.count()) {
                    std::cmp::Ordering::Equal => {}
                    std::cmp::Ordering::Less => {
                        summary.counts_up += 1;
                        visit(y, Change::Count(x.count(), y.count()));
                    }
                    std::cmp::Ordering::Greater => {
                        summary.counts_down += 1;
                        visit(y, Change::Count(x.count(), y.count()));
                    }
                }
            }
        }
    }
    if *summary != before {
        summary.prefixes_changed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::build_in_memory;

    fn index(entries: &[([u8; 16], u32)]) -> Index<Vec<u8>> {
        Index::open(build_in_memory(
            HashKind::Ntlm,
            entries.iter().map(|(h, c)| (&h[..], *c)),
            "t",
            0,
        ))
        .unwrap()
    }

    #[test]
    fn counts_every_kind_of_change_and_dumps_in_hash_order() {
        let h = |b0: u8, last: u8| {
            let mut h = [0u8; 16];
            h[0] = b0;
            h[15] = last;
            h
        };
        let old = index(&[(h(1, 1), 5), (h(1, 2), 7), (h(2, 1), 9), (h(9, 9), 1)]);
        let new = index(&[(h(1, 1), 6), (h(1, 3), 1), (h(2, 1), 8), (h(9, 9), 1)]);
        let mut out = Vec::new();
        let summary = write_dump(&old, &new, &mut out).unwrap();
        assert_eq!(summary, diff(&old, &new).unwrap());
        assert_eq!(
            summary,
            DiffSummary {
                old_records: 4,
                new_records: 4,
                prefixes_changed: 2,
                hashes_added: 1,
                hashes_removed: 1,
                counts_up: 1,
                counts_down: 1,
            }
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "01000000000000000000000000000001:6\n\
             01000000000000000000000000000003:1\n\
             02000000000000000000000000000001:8\n"
        );
        assert!(diff(&new, &new).unwrap().is_empty());
    }
}
