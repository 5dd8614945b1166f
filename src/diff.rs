//! What changed between two indexes of the same kind: per prefix, a merge of the two sorted
//! record lists, skipping every prefix whose stored content tags are equal (see
//! [`Index::prefix_tag`]). Nothing is loaded whole: the indexes are read in place (mapped), and
//! only the prefixes that changed are walked.

use std::cmp::Ordering;
use std::io::{self, Write};
use std::sync::mpsc;

use rayon::prelude::*;

use crate::decimal;
use crate::format;
use crate::hash::{HashKind, Prefix, PREFIX_COUNT, PREFIX_HEX_LEN};
use crate::index::{Index, Range};
use crate::mmap::IndexBytes;

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

/// Records (old plus new) one rayon task aims to merge: enough to amortise the task, small
/// enough that a dump task's text (about 50 bytes per new record) stays a few MB.
const TASK_RECORDS: u64 = 1 << 17;

/// Most prefixes one task covers (the tag compare of an unchanged prefix costs a few ns).
const TASK_PREFIXES_MAX: usize = 4096;

/// Compares `old` with `new` and returns the figures (in parallel over prefixes).
pub fn diff(old: &Index<IndexBytes>, new: &Index<IndexBytes>) -> Result<DiffSummary, DiffError> {
    check_kinds(old, new)?;
    let changes = tasks(old, new, TASK_RECORDS)
        .into_par_iter()
        .map(|task| {
            let mut summary = DiffSummary::default();
            prefetch_changed(old, new, task.clone());
            for p in task {
                let prefix = Prefix::new(p as u32).expect("in range");
                if old.prefix_tag(prefix) != new.prefix_tag(prefix) {
                    merge::<false>(
                        &old.range(prefix),
                        &new.range(prefix),
                        &mut summary,
                        &mut [],
                    );
                }
            }
            summary
        })
        .reduce(DiffSummary::default, DiffSummary::add);
    Ok(totals(old, new).add(changes))
}

/// Compares `old` with `new` and writes every added or changed record of the new index as
/// `HASH:COUNT` (upper-case hex, new count, LF), in hash order. Removed hashes are counted in the
/// summary, not written.
///
/// Tasks of whole prefixes render their text in parallel (rayon) on a producer thread, a batch
/// at a time; this thread writes the batches in prefix order while the next one is rendered.
pub fn write_dump(
    old: &Index<IndexBytes>,
    new: &Index<IndexBytes>,
    out: &mut impl Write,
) -> Result<DiffSummary, DumpError> {
    write_dump_tasks(old, new, out, TASK_RECORDS)
}

/// [`write_dump`] with tasks of about `task_records` records (tests use tiny tasks to cross many
/// task and batch boundaries).
fn write_dump_tasks(
    old: &Index<IndexBytes>,
    new: &Index<IndexBytes>,
    out: &mut impl Write,
    task_records: u64,
) -> Result<DiffSummary, DumpError> {
    check_kinds(old, new)?;
    let tasks = tasks(old, new, task_records);
    let batch_len = (4 * rayon::current_num_threads()).max(4);
    let mut total = totals(old, new);
    std::thread::scope(|scope| -> Result<(), DumpError> {
        // At most one rendered batch waits while the next is rendered: memory stays at about
        // three batches of text, whatever the size of the indexes.
        let (done_tx, done_rx) = mpsc::sync_channel::<Vec<(DiffSummary, Scratch)>>(1);
        let (free_tx, free_rx) = mpsc::channel::<Scratch>();
        let tasks = &tasks;
        scope.spawn(move || {
            for batch in tasks.chunks(batch_len) {
                // Buffers come back from the writer: no fresh pages (and page faults) per task.
                let scratch: Vec<Scratch> = batch
                    .iter()
                    .map(|_| free_rx.try_recv().unwrap_or_default())
                    .collect();
                let parts: Vec<(DiffSummary, Scratch)> = batch
                    .par_iter()
                    .zip(scratch)
                    .map(|(task, mut scratch)| {
                        let summary = dump_task(old, new, task.clone(), &mut scratch);
                        (summary, scratch)
                    })
                    .collect();
                if done_tx.send(parts).is_err() {
                    return; // the writer stopped on an error
                }
            }
        });
        for parts in done_rx {
            for (summary, mut scratch) in parts {
                out.write_all(&scratch.text[..scratch.used])?;
                total = total.add(summary);
                scratch.used = 0;
                let _ = free_tx.send(scratch);
            }
        }
        Ok(())
    })?;
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

/// Per-task buffers of a dump, reused across tasks.
#[derive(Default)]
struct Scratch {
    /// The task's `HASH:COUNT` lines are `text[..used]`; the rest is room kept from earlier
    /// tasks.
    text: Vec<u8>,
    /// Bytes of `text` in use.
    used: usize,
    /// Upper-case hex of the records of one prefix of the new index.
    hex: Vec<u8>,
    /// Indexes (in the new prefix) of the records to write, in order.
    emit: Vec<usize>,
}

/// Compares and renders the prefixes `task` into `scratch.text`.
fn dump_task(
    old: &Index<IndexBytes>,
    new: &Index<IndexBytes>,
    task: std::ops::Range<usize>,
    scratch: &mut Scratch,
) -> DiffSummary {
    let mut summary = DiffSummary::default();
    prefetch_changed(old, new, task.clone());
    for p in task {
        let prefix = Prefix::new(p as u32).expect("in range");
        if old.prefix_tag(prefix) == new.prefix_tag(prefix) {
            continue;
        }
        let b = new.range(prefix);
        if scratch.emit.len() < b.len() + 1 {
            scratch.emit.resize(b.len() + 1, 0);
        }
        let n = merge::<true>(&old.range(prefix), &b, &mut summary, &mut scratch.emit);
        render(
            prefix,
            &b,
            &scratch.emit[..n],
            &mut scratch.hex,
            &mut scratch.text,
            &mut scratch.used,
        );
    }
    summary
}

/// Asks the kernel for the records of the changed prefixes of `task` in both indexes, one
/// request per run of consecutive changed prefixes: indexes are advised for random access
/// (serving), so a cold merge would otherwise wait for its pages one fault at a time.
/// Unchanged prefixes are not read. Owned (in-memory) indexes ignore it.
fn prefetch_changed(
    old: &Index<IndexBytes>,
    new: &Index<IndexBytes>,
    task: std::ops::Range<usize>,
) {
    let changed = |p: usize| {
        let prefix = Prefix::new(p as u32).expect("in range");
        old.prefix_tag(prefix) != new.prefix_tag(prefix)
    };
    let mut p = task.start;
    while p < task.end {
        if !changed(p) {
            p += 1;
            continue;
        }
        let first = p;
        while p + 1 < task.end && changed(p + 1) {
            p += 1;
        }
        old.data().prefetch(old.prefixes_span(first..p + 1));
        new.data().prefetch(new.prefixes_span(first..p + 1));
        p += 1;
    }
}

/// Splits the prefix space into runs of whole prefixes of about `task_records` records (old
/// plus new) each, at most [`TASK_PREFIXES_MAX`] prefixes long. Reads only the prefix tables.
fn tasks<D: AsRef<[u8]> + Sync>(
    old: &Index<D>,
    new: &Index<D>,
    task_records: u64,
) -> Vec<std::ops::Range<usize>> {
    let records = |p: usize, q: usize| {
        old.records_before(q) - old.records_before(p) + new.records_before(q)
            - new.records_before(p)
    };
    let mut out = Vec::new();
    let mut p = 0;
    while p < PREFIX_COUNT {
        let mut end = (p + TASK_PREFIXES_MAX).min(PREFIX_COUNT);
        while end > p + 1 && records(p, end) > task_records {
            end = p + (end - p) / 2;
        }
        out.push(p..end);
        p = end;
    }
    out
}

/// Independent merges run side by side over one prefix: each step of a merge waits for its
/// own previous step (load, compare, advance), so interleaving several hides that latency.
const STREAMS: usize = 4;

/// Prefixes with fewer new records than this are merged as one stream.
const SPLIT_MIN: usize = 64;

/// One merge stream over `a[i..a_end]` and `b[j..b_end]` (absolute record indexes), writing its
/// emitted indexes from `emit[k]` on.
#[derive(Clone, Copy, Default)]
struct Cursor {
    i: usize,
    a_end: usize,
    j: usize,
    b_end: usize,
    k: usize,
    matched: u64,
    up: u64,
    down: u64,
}

impl Cursor {
    #[inline(always)]
    fn active(&self) -> bool {
        self.i < self.a_end && self.j < self.b_end
    }

    /// One merge step (the cursor must be active). The usual step (the first 60 key bits
    /// differ) advances one side without a branch.
    #[inline(always)]
    fn step<const DUMP: bool>(&mut self, a: &Range<'_>, b: &Range<'_>, emit: &mut [usize]) {
        let len = a.record_len();
        let x = &a.records()[self.i * len..(self.i + 1) * len];
        let y = &b.records()[self.j * len..(self.j + 1) * len];
        let (hx, hy) = (format::key_head(x), format::key_head(y));
        if hx != hy {
            let take_new = usize::from(hy < hx);
            if DUMP {
                emit[self.k] = self.j;
                self.k += take_new;
            }
            self.j += take_new;
            self.i += 1 - take_new;
            return;
        }
        self.step_equal_heads::<DUMP>(a, b, x, y, emit);
    }

    /// The rest of [`Cursor::step`], when the first 60 key bits are equal (the same hash, in
    /// all but astronomically rare cases).
    #[inline(never)]
    fn step_equal_heads<const DUMP: bool>(
        &mut self,
        a: &Range<'_>,
        b: &Range<'_>,
        x: &[u8],
        y: &[u8],
        emit: &mut [usize],
    ) {
        match format::key_tail(x).cmp(format::key_tail(y)) {
            Ordering::Less => self.i += 1,
            Ordering::Greater => {
                if DUMP {
                    emit[self.k] = self.j;
                    self.k += 1;
                }
                self.j += 1;
            }
            Ordering::Equal => {
                self.matched += 1;
                let (cx, cy) = (
                    format::record_inline_count(x),
                    format::record_inline_count(y),
                );
                let (cx, cy) = if cx == format::COUNT_ESCAPE || cy == format::COUNT_ESCAPE {
                    (a.count_at(self.i), b.count_at(self.j))
                } else {
                    (cx, cy)
                };
                if cx != cy {
                    if cx < cy {
                        self.up += 1;
                    } else {
                        self.down += 1;
                    }
                    if DUMP {
                        emit[self.k] = self.j;
                        self.k += 1;
                    }
                }
                self.i += 1;
                self.j += 1;
            }
        }
    }

    /// Runs the stream to its end; with `DUMP`, emits the new records left over.
    fn finish<const DUMP: bool>(&mut self, a: &Range<'_>, b: &Range<'_>, emit: &mut [usize]) {
        while self.active() {
            self.step::<DUMP>(a, b, emit);
        }
        if DUMP {
            for j in self.j..self.b_end {
                emit[self.k] = j;
                self.k += 1;
            }
        }
    }
}

/// Index of the first record of `a` whose key is not below the key of `record`: from the
/// position the key interpolates to (hashes are uniform), galloping out to bracket it, then a
/// binary search inside the bracket (a few nearby records instead of a search of the prefix).
fn partition(a: &Range<'_>, record: &[u8]) -> usize {
    let len = a.record_len();
    let n = a.len();
    let key = (format::key_head(record), format::key_tail(record));
    let below = |i: usize| {
        let x = &a.records()[i * len..(i + 1) * len];
        (format::key_head(x), format::key_tail(x)) < key
    };
    // Every record before `lo` is below the key; none from `hi` on is.
    let guess = ((u128::from(key.0) * n as u128) >> 60) as usize;
    let (mut lo, mut hi);
    if guess < n && below(guess) {
        lo = guess + 1;
        let mut step = 1;
        loop {
            let probe = lo + step - 1;
            if probe >= n {
                hi = n;
                break;
            }
            if !below(probe) {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        hi = guess.min(n);
        let mut step = 1;
        loop {
            if hi < step {
                lo = 0;
                break;
            }
            let probe = hi - step;
            if below(probe) {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Merges one prefix of both indexes (`a` old, `b` new), adding to `summary`. With `DUMP`,
/// writes to `emit` the indexes in `b` of the added and recounted records, in order, and
/// returns how many (`emit` must hold `b.len() + 1`); without, `emit` is not touched.
///
/// Records are compared as stored: the first 60 key bits as one integer, and the rest of the
/// key only when those are equal. A large prefix is cut at [`STREAMS`] keys of `b` into
/// independent merges that advance in turn.
fn merge<const DUMP: bool>(
    a: &Range<'_>,
    b: &Range<'_>,
    summary: &mut DiffSummary,
    emit: &mut [usize],
) -> usize {
    let (na, nb) = (a.len(), b.len());
    let streams = if nb >= SPLIT_MIN && na >= SPLIT_MIN {
        STREAMS
    } else {
        1
    };
    let mut cursors = [Cursor::default(); STREAMS];
    let len = b.record_len();
    let mut previous = Cursor::default();
    for (s, cursor) in cursors.iter_mut().enumerate().take(streams) {
        let b_end = nb * (s + 1) / streams;
        let a_end = if s + 1 == streams {
            na
        } else {
            partition(a, &b.records()[b_end * len..(b_end + 1) * len])
        };
        *cursor = Cursor {
            i: previous.a_end,
            a_end,
            j: previous.b_end,
            b_end,
            // A stream emits at most its own share of `b`: its slice of `emit` starts there.
            k: previous.b_end,
            ..Cursor::default()
        };
        previous = *cursor;
    }
    if streams == STREAMS {
        while cursors.iter().all(Cursor::active) {
            for cursor in cursors.iter_mut() {
                cursor.step::<DUMP>(a, b, emit);
            }
        }
    }
    let (mut matched, mut up, mut down, mut k) = (0u64, 0u64, 0u64, 0usize);
    for (s, cursor) in cursors.iter_mut().enumerate().take(streams) {
        cursor.finish::<DUMP>(a, b, emit);
        matched += cursor.matched;
        up += cursor.up;
        down += cursor.down;
        if DUMP {
            let start = nb * s / streams;
            emit.copy_within(start..cursor.k, k);
            k += cursor.k - start;
        }
    }
    let removed = na as u64 - matched;
    let added = nb as u64 - matched;
    summary.hashes_removed += removed;
    summary.hashes_added += added;
    summary.counts_up += up;
    summary.counts_down += down;
    if removed + added + up + down > 0 {
        summary.prefixes_changed += 1;
    }
    k
}

/// Appends `HASH:COUNT\n` for the records `emit` of `b` (the new prefix `prefix`) to
/// `text[*used..]`, growing `text` when needed (`text` is kept at its largest length, so its
/// bytes are zeroed once, not per task).
fn render(
    prefix: Prefix,
    b: &Range<'_>,
    emit: &[usize],
    hex: &mut Vec<u8>,
    text: &mut Vec<u8>,
    used: &mut usize,
) {
    match b.kind() {
        HashKind::Sha1 => {
            render_kind::<{ HashKind::Sha1.suffix_hex_len() }>(prefix, b, emit, hex, text, used)
        }
        HashKind::Ntlm => {
            render_kind::<{ HashKind::Ntlm.suffix_hex_len() }>(prefix, b, emit, hex, text, used)
        }
    }
}

/// [`render`] for hashes whose suffix is `SUFFIX` hex characters long (every copy has a
/// constant length). When most of the prefix is written, its records are hex-encoded in one
/// pass into `hex`; otherwise record by record.
fn render_kind<const SUFFIX: usize>(
    prefix: Prefix,
    b: &Range<'_>,
    emit: &[usize],
    hex: &mut Vec<u8>,
    text: &mut Vec<u8>,
    used: &mut usize,
) {
    if emit.is_empty() {
        return;
    }
    debug_assert_eq!(SUFFIX, b.kind().suffix_hex_len());
    let stride = b.hex_stride();
    let head = prefix.to_hex();
    let line_max = PREFIX_HEX_LEN + SUFFIX + ":4294967295\n".len();
    if text.len() < *used + emit.len() * line_max {
        text.resize(*used + emit.len() * line_max, 0);
    }
    let mut at = *used;
    let len = b.record_len();
    let count = |j: usize| {
        let inline = format::record_inline_count(&b.records()[j * len..(j + 1) * len]);
        if inline == format::COUNT_ESCAPE {
            b.count_at(j)
        } else {
            inline
        }
    };
    if emit.len() * 4 >= b.len() {
        if hex.len() < b.len() * stride {
            hex.resize(b.len() * stride, 0);
        }
        b.hex_batch(0, b.len(), hex);
        for &j in emit {
            let record_hex = &hex[j * stride..(j + 1) * stride];
            at += put_line::<SUFFIX>(&mut text[at..], &head, record_hex, count(j));
        }
    } else {
        let mut one = [0u8; 2 * format::MAX_RECORD_LEN];
        let one = &mut one[..stride];
        for &j in emit {
            b.hex_batch(j, j + 1, one);
            at += put_line::<SUFFIX>(&mut text[at..], &head, one, count(j));
        }
    }
    *used = at;
}

/// Writes `HASH:COUNT\n` at the start of `out` from the prefix's hex and the record's hex
/// (`format::RECORD_HEX_SUFFIX_AT` on) and returns its length. `out` holds the longest line.
#[inline(always)]
fn put_line<const SUFFIX: usize>(
    out: &mut [u8],
    head: &[u8; PREFIX_HEX_LEN],
    record_hex: &[u8],
    count: u32,
) -> usize {
    let out = &mut out[..PREFIX_HEX_LEN + SUFFIX + 12];
    out[..PREFIX_HEX_LEN].copy_from_slice(head);
    let suffix = &record_hex[format::RECORD_HEX_SUFFIX_AT..format::RECORD_HEX_SUFFIX_AT + SUFFIX];
    out[PREFIX_HEX_LEN..PREFIX_HEX_LEN + SUFFIX].copy_from_slice(suffix);
    PREFIX_HEX_LEN + SUFFIX + decimal::LF_TAILS.write(&mut out[PREFIX_HEX_LEN + SUFFIX..], count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::build_in_memory;

    fn index(entries: &[([u8; 16], u32)]) -> Index<IndexBytes> {
        Index::open(IndexBytes::from(build_in_memory(
            HashKind::Ntlm,
            entries.iter().map(|(h, c)| (&h[..], *c)),
            "t",
            0,
        )))
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

    /// The dump and figures by the obvious method: both prefixes' entries into ordered maps,
    /// through the public API (full hashes and exact counts), and compared key by key.
    fn reference(old: &Index<IndexBytes>, new: &Index<IndexBytes>) -> (DiffSummary, String) {
        use std::collections::BTreeMap;
        let mut summary = totals(old, new);
        let mut text = String::new();
        for prefix in Prefix::all() {
            if old.range(prefix).is_empty() && new.range(prefix).is_empty() {
                continue;
            }
            let map = |index: &Index<IndexBytes>| -> BTreeMap<String, u32> {
                index
                    .range(prefix)
                    .iter()
                    .map(|e| (e.hash(prefix, index.kind()).to_string(), e.count()))
                    .collect()
            };
            let (a, b) = (map(old), map(new));
            let before = summary;
            summary.hashes_removed += a.keys().filter(|h| !b.contains_key(*h)).count() as u64;
            for (hash, &count) in &b {
                match a.get(hash) {
                    None => summary.hashes_added += 1,
                    Some(&was) if was < count => summary.counts_up += 1,
                    Some(&was) if was > count => summary.counts_down += 1,
                    Some(_) => continue,
                }
                text.push_str(&format!("{}:{count}\n", hash.to_uppercase()));
            }
            if summary != before {
                summary.prefixes_changed += 1;
            }
        }
        (summary, text)
    }

    /// Pseudo-random but reproducible test data.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
    }

    /// Two indexes of `kind` over a handful of prefixes, with every case the merge and the
    /// renderer tell apart: prefixes only in one index, unrelated prefixes (a full merge),
    /// prefixes with a few changes among many equal records (the record-by-record renderer),
    /// keys equal in their first 60 bits, counts in the overflow table on either side, and
    /// counts of every decimal length.
    fn pair(kind: HashKind, seed: u64) -> (Index<IndexBytes>, Index<IndexBytes>) {
        use std::collections::BTreeMap;
        let mut rng = Lcg(seed);
        let n = kind.byte_len();
        let count = |rng: &mut Lcg| -> u32 {
            match rng.next() % 8 {
                0 => 4094 + (rng.next() % 4) as u32, // around the inline limit
                1 => u32::MAX - (rng.next() % 3) as u32, // ten digits
                2 => (rng.next() % 1_000_000_000) as u32 + 1, // any length
                _ => (rng.next() % 20) as u32 + 1,
            }
        };
        let mut old: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        let mut new: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        let hash = |prefix: u32, rng: &mut Lcg| -> Vec<u8> {
            let mut h: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            h[0] = (prefix >> 12) as u8;
            h[1] = (prefix >> 4) as u8;
            h[2] = ((prefix & 0xF) as u8) << 4 | (h[2] & 0x0F);
            h
        };
        for (i, prefix) in [0u32, 1, 2, 3, 0x7FFF, 0x80000, 0xABCDE, 0xFFFFE, 0xFFFFF]
            .into_iter()
            .enumerate()
        {
            let records = 1 + (rng.next() % 300) as usize;
            for _ in 0..records {
                let h = hash(prefix, &mut rng);
                let c = count(&mut rng);
                match i % 4 {
                    // Only in the old index, or only in the new one.
                    0 if prefix == 0 => drop(old.insert(h, c)),
                    0 => drop(new.insert(h, c)),
                    // Unrelated contents: every record differs.
                    1 => {
                        old.insert(h, c);
                        new.insert(hash(prefix, &mut rng), count(&mut rng));
                    }
                    // Mostly equal, a few changes (sparse output).
                    _ => {
                        old.insert(h.clone(), c);
                        match rng.next() % 40 {
                            0 => {} // removed
                            1 => drop(new.insert(h, count(&mut rng))),
                            2 => {
                                // Added next to it, equal in the first 60 key bits.
                                let mut twin = h.clone();
                                twin[n - 1] ^= 1 + (rng.next() % 255) as u8;
                                new.insert(twin, count(&mut rng));
                                new.insert(h, c);
                            }
                            _ => drop(new.insert(h, c)),
                        }
                    }
                }
            }
        }
        let build = |map: &BTreeMap<Vec<u8>, u32>| {
            Index::open(IndexBytes::from(build_in_memory(
                kind,
                map.iter().map(|(h, c)| (&h[..], *c)),
                "t",
                0,
            )))
            .unwrap()
        };
        (build(&old), build(&new))
    }

    #[test]
    fn dump_and_figures_equal_a_naive_merge_across_task_and_batch_boundaries() {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            for seed in 1..4 {
                let (old, new) = pair(kind, seed);
                for (a, b) in [(&old, &new), (&new, &old)] {
                    let (summary, text) = reference(a, b);
                    assert!(summary.hashes_added > 0 && summary.counts_changed() > 0);
                    assert_eq!(diff(a, b).unwrap(), summary, "{kind} seed {seed}");
                    // Tiny tasks put task (and batch) boundaries between, and inside runs of,
                    // changed prefixes; the order of the output must not depend on them.
                    for task_records in [1, 7, 100, TASK_RECORDS] {
                        let mut out = Vec::new();
                        let got = write_dump_tasks(a, b, &mut out, task_records).unwrap();
                        assert_eq!(got, summary, "{kind} seed {seed} tasks {task_records}");
                        let out = String::from_utf8(out).unwrap();
                        let differs = out.lines().zip(text.lines()).find(|(a, b)| a != b);
                        assert!(
                            out == text,
                            "{kind} seed {seed} tasks {task_records}: {} lines, expected {}; \
                             first difference (got, expected): {differs:?}",
                            out.lines().count(),
                            text.lines().count(),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn partition_finds_the_first_record_not_below_a_key() {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            let (old, new) = pair(kind, 7);
            for prefix in Prefix::all() {
                let (a, b) = (old.range(prefix), new.range(prefix));
                let len = b.record_len();
                let key = |r: &[u8]| (format::key_head(r), format::key_tail(r).to_vec());
                for j in 0..b.len() {
                    let y = &b.records()[j * len..(j + 1) * len];
                    let expected = (0..a.len())
                        .find(|&i| key(&a.records()[i * len..(i + 1) * len]) >= key(y))
                        .unwrap_or(a.len());
                    assert_eq!(partition(&a, y), expected, "{kind} {prefix:?} {j}");
                }
            }
        }
    }
}
