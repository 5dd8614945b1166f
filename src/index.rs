//! The read side of an index: cheap open-time checks, `range`, `lookup` and a full `verify`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::format::{self, Header, HeaderError};
use crate::hash::{Hash, HashKind, Prefix, MAX_HASH_LEN, PREFIX_COUNT};
use crate::mmap::IndexBytes;

/// A sorted, prefix-sharded index of hashes and counts over any byte container.
///
/// The library never assumes where the bytes live: tests use a `Vec<u8>`, the server a memory
/// map (see [`Index::open_path`]).
pub struct Index<D> {
    /// The whole file.
    data: D,
    /// The decoded header, checked at open.
    header: Header,
    /// The prefix table, decoded into memory at open (8 MB): every request reads it, so it must
    /// never wait for the disk, even when the mapped pages around it have been evicted.
    table: Box<[u64]>,
    /// The ordinal of every [`OVERFLOW_BLOCK`]-th overflow entry, once
    /// [`Index::index_overflow`] has run: finding an escaped count then reads one block of the
    /// overflow table instead of binary searching all of it.
    overflow_blocks: OnceLock<Box<[u64]>>,
}

impl<D: AsRef<[u8]> + Sync> Index<D> {
    /// Opens an index over `data`, checking everything that is cheap and independent of the
    /// index size: magic, version, header checksum, sizes, file length and that the prefix table
    /// is monotone and ends at the record count. The record checksum is left to [`Index::verify`].
    pub fn open(data: D) -> Result<Self, OpenError> {
        let bytes = data.as_ref();
        let header = Header::decode(bytes, bytes.len() as u64)?;
        let table_bytes = &bytes[format::TABLE_OFFSET..format::TAGS_OFFSET];
        let table: Box<[u64]> = (0..format::TABLE_ENTRIES)
            .map(|p| format::table_entry(table_bytes, p))
            .collect();
        let mut previous = 0u64;
        if table[0] != 0 {
            return Err(OpenError::TableStart { first: table[0] });
        }
        for (p, &offset) in table.iter().enumerate().skip(1) {
            if offset < previous {
                return Err(OpenError::TableBackwards {
                    prefix: p,
                    offset,
                    previous,
                });
            }
            previous = offset;
        }
        if previous != header.record_count {
            return Err(OpenError::TableEnd {
                end: previous,
                record_count: header.record_count,
            });
        }
        Ok(Index {
            data,
            header,
            table,
            overflow_blocks: OnceLock::new(),
        })
    }

    /// The header: kind, record count, build time, label.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// SHA-1 or NTLM.
    pub fn kind(&self) -> HashKind {
        self.header.kind
    }

    /// Number of distinct hashes.
    pub fn len(&self) -> u64 {
        self.header.record_count
    }

    /// Whether the index holds no hashes at all.
    pub fn is_empty(&self) -> bool {
        self.header.record_count == 0
    }

    fn bytes(&self) -> &[u8] {
        self.data.as_ref()
    }

    fn tags(&self) -> &[u8] {
        &self.bytes()[format::TAGS_OFFSET..format::RECORDS_OFFSET]
    }

    /// The content tag of `prefix`: a digest of its kind, hashes and exact counts (see
    /// [`format::TagHasher`]), stored at import. Equal data gives equal tags across imports,
    /// machines and rebuilds; any added, removed or recounted hash changes it.
    #[inline]
    pub fn prefix_tag(&self, prefix: Prefix) -> u64 {
        format::tag_entry(self.tags(), prefix.index())
    }

    fn records(&self) -> &[u8] {
        &self.bytes()[format::RECORDS_OFFSET..self.header.overflow_offset()]
    }

    fn overflow(&self) -> &[u8] {
        &self.bytes()[self.header.overflow_offset()..]
    }

    /// Number of records in the prefixes before prefix index `p` (`p` in `0..=PREFIX_COUNT`):
    /// the records of prefixes `p..q` number `records_before(q) - records_before(p)`.
    pub(crate) fn records_before(&self, p: usize) -> u64 {
        self.table[p]
    }

    /// Ordinals `[start, end)` of the records under `prefix`.
    fn ordinals(&self, prefix: Prefix) -> (u64, u64) {
        (self.table[prefix.index()], self.table[prefix.index() + 1])
    }

    /// The entries under `prefix`, sorted by suffix.
    pub fn range(&self, prefix: Prefix) -> Range<'_> {
        let (start, end) = self.ordinals(prefix);
        let record_len = self.header.record_len();
        let records = &self.records()[start as usize * record_len..end as usize * record_len];
        self.range_over(prefix, records, start)
    }

    /// [`Index::range`] over a copy of the prefix's records read elsewhere (a direct read of
    /// [`Index::range_span`]), or `None` if `records` is not that span's length. Escaped counts
    /// are still looked up in this index's overflow table.
    pub fn range_from<'a>(&'a self, prefix: Prefix, records: &'a [u8]) -> Option<Range<'a>> {
        let (start, end) = self.ordinals(prefix);
        let len = (end - start) as usize * self.header.record_len();
        (records.len() == len).then(|| self.range_over(prefix, records, start))
    }

    /// A range of consecutive records of `prefix`, the first being number `first_ordinal` of
    /// the index.
    fn range_over<'a>(
        &'a self,
        prefix: Prefix,
        records: &'a [u8],
        first_ordinal: u64,
    ) -> Range<'a> {
        Range {
            prefix,
            kind: self.header.kind,
            records,
            record_len: self.header.record_len(),
            first_ordinal,
            overflow: self.overflow(),
            overflow_blocks: self.overflow_blocks.get().map(|b| &b[..]),
        }
    }

    /// [`Index::lookup`] from a copy of the file's bytes `window_span` read elsewhere (a direct
    /// read of [`Index::lookup_span`]): `Some(answer)` when the window decides it, `None` when
    /// the hash sorts outside the window's records and the prefix goes on past them (rare: the
    /// hash lies far from its interpolated position), or the window is not made of whole
    /// records of the hash's prefix. Then ask [`Index::lookup`].
    pub fn lookup_in(
        &self,
        hash: &Hash,
        window: &[u8],
        window_span: std::ops::Range<usize>,
    ) -> Option<Option<u32>> {
        if hash.kind() != self.header.kind {
            return Some(None);
        }
        let prefix = hash.prefix();
        let span = self.range_span(prefix);
        let record_len = self.header.record_len();
        let within = span.start <= window_span.start && window_span.end <= span.end;
        if !within
            || window.len() != window_span.len()
            || (window_span.start - span.start) % record_len != 0
            || window.len() % record_len != 0
        {
            return None;
        }
        let first = (window_span.start - span.start) / record_len;
        let (start, _) = self.ordinals(prefix);
        let range = self.range_over(prefix, window, start + first as u64);
        let mut probe = [0u8; format::MAX_RECORD_LEN];
        format::encode_record(hash.as_bytes(), 0, &mut probe[..record_len]);
        let target = format::record_key(&probe[..record_len]);
        let key = |i: usize| format::record_key(range.record(i));
        // The first record not below the target.
        let (mut at, mut hi) = (0, range.len());
        while at < hi {
            let mid = at + (hi - at) / 2;
            if key(mid) < target {
                at = mid + 1;
            } else {
                hi = mid;
            }
        }
        if at < range.len() && key(at) == target {
            return Some(Some(range.count_at(at)));
        }
        // Absent from the window; absent from the prefix only if the window reaches the
        // prefix's edge on the side where the hash would sort.
        let reaches_start = window_span.start == span.start;
        let reaches_end = window_span.end == span.end;
        if (at == 0 && !reaches_start) || (at == range.len() && !reaches_end) {
            return None;
        }
        Some(None)
    }

    /// The count for `hash`, or `None` if it is not in the index (or is of another kind).
    pub fn lookup(&self, hash: &Hash) -> Option<u32> {
        if hash.kind() != self.header.kind {
            return None;
        }
        let range = self.range(hash.prefix());
        let mut probe = [0u8; format::MAX_RECORD_LEN];
        format::encode_record(hash.as_bytes(), 0, &mut probe[..range.record_len]);
        let probe = &probe[..range.record_len];
        let target = format::record_key(probe);
        let n = range.len();
        let (mut lo, mut hi) = (0usize, n);
        // Hashes are uniformly spread, so the target sits near its key's share of the key space
        // (within ~22 records for 2,000). Gallop outwards from that guess until the target is
        // bracketed: a few cache lines, and on a cold index usually one page, where a binary
        // search over the whole ~38 KB prefix would touch ten.
        // Invariant: records before `lo` are below the target, records from `hi` on above it.
        if let Some(guess) = interpolate(probe, n) {
            let key = |i: usize| format::record_key(range.record(i));
            match key(guess).cmp(&target) {
                std::cmp::Ordering::Equal => return Some(range.count_at(guess)),
                std::cmp::Ordering::Less => {
                    lo = guess + 1;
                    let mut step = 1;
                    while guess + step < n {
                        let at = guess + step;
                        match key(at).cmp(&target) {
                            std::cmp::Ordering::Less => lo = at + 1,
                            std::cmp::Ordering::Equal => return Some(range.count_at(at)),
                            std::cmp::Ordering::Greater => {
                                hi = at;
                                break;
                            }
                        }
                        step *= 2;
                    }
                }
                std::cmp::Ordering::Greater => {
                    hi = guess;
                    let mut step = 1;
                    while step <= guess {
                        let at = guess - step;
                        match key(at).cmp(&target) {
                            std::cmp::Ordering::Greater => hi = at,
                            std::cmp::Ordering::Equal => return Some(range.count_at(at)),
                            std::cmp::Ordering::Less => {
                                lo = at + 1;
                                break;
                            }
                        }
                        step *= 2;
                    }
                }
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match format::record_key(range.record(mid)).cmp(&target) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(range.count_at(mid)),
            }
        }
        None
    }

    /// Number of prefixes holding at least one record.
    pub fn prefixes_present(&self) -> usize {
        (0..PREFIX_COUNT)
            .filter(|&p| self.table[p + 1] > self.table[p])
            .count()
    }

    /// Walks every byte: the body checksum, the sort order inside every prefix and the overflow
    /// table. Returns the first fault found, in file order.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let body = &self.bytes()[format::HEADER_LEN..];
        let crc = body
            .par_chunks(1 << 22)
            .map(|chunk| {
                let mut h = crc32fast::Hasher::new();
                h.update(chunk);
                h
            })
            .reduce_with(|mut a, b| {
                a.combine(&b);
                a
            })
            .map_or(0, |h| h.finalize());
        if crc != self.header.body_crc {
            return Err(VerifyError::Checksum {
                expected: self.header.body_crc,
                got: crc,
            });
        }
        // An empty prefix's tag depends only on the kind: hashed once, not once per prefix.
        let empty_tag = format::TagHasher::new(self.header.kind).finish();
        let fault = Prefix::all()
            .collect::<Vec<_>>()
            .par_chunks(4096)
            .find_map_first(|chunk| {
                chunk
                    .iter()
                    .find_map(|&p| self.verify_prefix(p, empty_tag).err())
            });
        if let Some(fault) = fault {
            return Err(fault);
        }
        // Every overflow entry must belong to an escaped record; count them in order.
        let escaped = (0..self.len() as usize)
            .into_par_iter()
            .with_min_len(1 << 16)
            .filter(|&i| {
                let rl = self.header.record_len();
                format::record_inline_count(&self.records()[i * rl..(i + 1) * rl])
                    == format::COUNT_ESCAPE
            })
            .count() as u64;
        if escaped != self.header.overflow_count {
            return Err(VerifyError::Overflow(format!(
                "{escaped} records point to the overflow table, which has {} entries",
                self.header.overflow_count
            )));
        }
        Ok(())
    }

    /// Checks one prefix: sort order, overflow entries and stored tag (`empty_tag` is the tag
    /// of a prefix without records).
    fn verify_prefix(&self, prefix: Prefix, empty_tag: u64) -> Result<(), VerifyError> {
        let (start, end) = self.ordinals(prefix);
        let computed = if start == end {
            empty_tag
        } else {
            self.verified_records_tag(prefix)?
        };
        let stored = self.prefix_tag(prefix);
        if computed != stored {
            return Err(VerifyError::Tag {
                prefix,
                stored,
                computed,
            });
        }
        Ok(())
    }

    /// Checks the records of one prefix (strictly ascending, every escaped count with its
    /// overflow entry) and returns the tag they hash to, in the same pass.
    fn verified_records_tag(&self, prefix: Prefix) -> Result<u64, VerifyError> {
        let mut hasher = format::TagHasher::new(self.header.kind);
        let range = self.range(prefix);
        let first = range.overflow_at_or_after(range.first_ordinal);
        let mut overflow = range.overflow[first * format::OVERFLOW_ENTRY_LEN..]
            .chunks_exact(format::OVERFLOW_ENTRY_LEN);
        for i in 0..range.len() {
            let record = range.record(i);
            if i > 0 && format::record_key(range.record(i - 1)) >= format::record_key(record) {
                return Err(VerifyError::Order {
                    prefix,
                    position: i,
                });
            }
            let mut count = format::record_inline_count(record);
            if count == format::COUNT_ESCAPE {
                let ordinal = range.first_ordinal + i as u64;
                count = match overflow.next().map(format::decode_overflow) {
                    Some((o, exact)) if o == ordinal && exact > format::INLINE_COUNT_MAX => exact,
                    _ => {
                        return Err(VerifyError::Overflow(format!(
                            "record {i} of prefix {prefix} has no valid overflow entry"
                        )))
                    }
                };
            }
            hasher.push_record(prefix.value(), record, count);
        }
        Ok(hasher.finish())
    }
}

impl<D: AsRef<[u8]> + Sync> Index<D> {
    /// The bytes the index reads from.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// Byte offsets (into [`Index::data`]) of the records [`Index::range`] reads for `prefix`.
    /// Computed from the in-memory table alone: reads no record.
    pub fn range_span(&self, prefix: Prefix) -> std::ops::Range<usize> {
        let (start, end) = self.ordinals(prefix);
        let record_len = self.header.record_len();
        format::RECORDS_OFFSET + start as usize * record_len
            ..format::RECORDS_OFFSET + end as usize * record_len
    }

    /// Byte offsets of the records of the consecutive prefixes numbered `prefixes` (within
    /// `0..PREFIX_COUNT`); empty for an empty run. Reads no record.
    pub fn prefixes_span(&self, prefixes: std::ops::Range<usize>) -> std::ops::Range<usize> {
        if prefixes.is_empty() {
            return 0..0;
        }
        let at = |p: usize| Prefix::new(p as u32).expect("prefix number in range");
        self.range_span(at(prefixes.start)).start..self.range_span(at(prefixes.end - 1)).end
    }

    /// Byte offsets of the records [`Index::lookup`] usually reads for `hash`: the
    /// [`LOOKUP_SPAN`] records either side of its interpolated position (the whole prefix when
    /// it is small). A lookup gallops outside it only when the hash lies unusually far from its
    /// interpolated position. Reads no record.
    pub fn lookup_span(&self, hash: &Hash) -> std::ops::Range<usize> {
        let span = self.range_span(hash.prefix());
        if hash.kind() != self.header.kind {
            return span.start..span.start;
        }
        let record_len = self.header.record_len();
        let len = (span.end - span.start) / record_len;
        let mut probe = [0u8; MAX_HASH_LEN];
        format::encode_record(hash.as_bytes(), 0, &mut probe[..record_len]);
        match interpolate(&probe[..record_len], len) {
            Some(guess) => {
                span.start + guess.saturating_sub(LOOKUP_SPAN) * record_len
                    ..span.start + (guess + LOOKUP_SPAN + 1).min(len) * record_len
            }
            None => span,
        }
    }
}

impl<D: AsRef<[u8]> + Sync> Index<D> {
    /// [`Index::lookup_span`] widened to the whole records of the hash's prefix that lie in the
    /// `block`-aligned blocks it touches: what one aligned read of those blocks holds anyway, and
    /// a wider margin for [`Index::lookup_in`] at no extra I/O. `block` is a power of two.
    pub fn lookup_block_span(&self, hash: &Hash, block: usize) -> std::ops::Range<usize> {
        let within = self.range_span(hash.prefix());
        let span = self.lookup_span(hash);
        if span.is_empty() {
            return span;
        }
        let record_len = self.header.record_len();
        let start = (span.start & !(block - 1)).max(within.start);
        let end = span.end.next_multiple_of(block).min(within.end);
        // Whole records only, counted from the prefix's first.
        let start = within.start + (start - within.start).next_multiple_of(record_len);
        let end = within.start + (end - within.start) / record_len * record_len;
        start.min(span.start)..end.max(span.end)
    }
}

impl Index<IndexBytes> {
    /// Maps the index at `path` and runs the open-time checks of [`Index::open`].
    ///
    /// # Safety
    ///
    /// The file must not be modified or truncated while the index is alive: see
    /// [`IndexBytes::map`].
    pub unsafe fn open_path(path: impl AsRef<Path>) -> Result<Index<IndexBytes>, OpenPathError> {
        let path = path.as_ref();
        let with_path = |source: OpenError| OpenPathError {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(|e| with_path(OpenError::Io(e)))?;
        // SAFETY: forwarded to the caller, per this function's contract.
        let map = unsafe { IndexBytes::map(&file) }.map_err(|e| with_path(OpenError::Io(e)))?;
        Index::open_mapped(map).map_err(with_path)
    }

    /// Advises the kernel that the index will be read from start to end rather than at random
    /// (the advice [`Index::open_mapped`] gives, for serving): a cold `verify` or `export` then
    /// reads ahead, and a fault maps the cached pages around it, instead of one fault and one
    /// read per page. Not for reads of a few prefixes (`diff` of a small change): each fault
    /// would read the device's whole readahead window. Advice only.
    pub fn advise_scan(&self) {
        let _ = self.data.advise_sequential(format::TAGS_OFFSET);
    }

    /// Builds the directory of the overflow table (the ordinal of every [`OVERFLOW_BLOCK`]-th
    /// entry: 8 bytes per 4 KiB of table), after which finding a count above the inline maximum
    /// reads one block of the table instead of the ~9 pages of a binary search over all of it:
    /// every `/range` body holds a few such counts. Reads the whole overflow table once, in one
    /// batch of I/O (37 MB for the full corpus); the server runs it in the background after it
    /// loads an index. Does nothing the second time.
    pub fn index_overflow(&self) {
        self.overflow_blocks.get_or_init(|| {
            let start = self.header.overflow_offset();
            self.data.prefetch(start..self.data.as_ref().len());
            self.overflow()
                .chunks(OVERFLOW_BLOCK * format::OVERFLOW_ENTRY_LEN)
                .filter(|block| block.len() >= format::OVERFLOW_ENTRY_LEN)
                .map(|block| format::decode_overflow(&block[..format::OVERFLOW_ENTRY_LEN]).0)
                .collect()
        });
    }

    /// Runs the open-time checks of [`Index::open`] on a mapped file, and advises the kernel how
    /// the mapping will be read. Every mapped index goes through here (the server maps its files
    /// itself, to hold a lease on them).
    pub fn open_mapped(map: IndexBytes) -> Result<Index<IndexBytes>, OpenError> {
        // Open reads the header and the whole 8 MB offset table: ask for all of it in one go
        // rather than fault by fault (start-up time on a cold cache). Not the tag table: it is
        // read a page at a time by `/range` answers, and reading it here would delay the first.
        map.prefetch(0..format::TAGS_OFFSET.min(map.as_ref().len()));
        let index = Index::open(map)?;
        // The tags and records are read at random, a tag and one window per request: without
        // this advice each page fault reads the device's whole readahead window (up to 8 MB)
        // instead of one page. (The offset table was copied into memory by `open`.) Advice
        // only: a kernel that refuses it serves the same bytes, slower.
        let _ = index.data.advise_random(format::TAGS_OFFSET);
        Ok(index)
    }
}

/// Prefixes with fewer records than this are binary searched whole (they fit in a few lines).
const INTERPOLATE_MIN: usize = 128;

/// Half-width, in records, of [`Index::lookup_span`]: the records read ahead (and checked for
/// residency) for a lookup. A hash lies within ~22 records (one standard deviation) of its
/// interpolated position in a prefix of 2,000, and galloping reads up to twice that distance:
/// 32 records either side (~1.2 KB, usually one page) covers most lookups without reading pages
/// most lookups never touch.
pub const LOOKUP_SPAN: usize = 32;

/// Where `probe` would sit in a prefix of `len` records if keys were spread evenly, or `None`
/// when the prefix is small enough to search whole.
#[inline]
fn interpolate(probe: &[u8], len: usize) -> Option<usize> {
    if len < INTERPOLATE_MIN {
        return None;
    }
    let guess = ((u128::from(format::key_head(probe)) * len as u128) >> 60) as usize;
    Some(guess.min(len - 1))
}

/// Index of the first overflow entry whose ordinal is `>= ordinal`. With `blocks` (the ordinal
/// of every [`OVERFLOW_BLOCK`]-th entry, see [`Index::index_overflow`]) the search reads one
/// block of the table; without, it binary searches the whole table (~9 pages on a cold index
/// of the full corpus). On a corrupt, unsorted table the answer is some in-bounds index; callers
/// check the ordinal they find.
fn partition_overflow(overflow: &[u8], ordinal: u64, blocks: Option<&[u64]>) -> usize {
    let n = overflow.len() / format::OVERFLOW_ENTRY_LEN;
    let ordinal_at = |i: usize| {
        let at = i * format::OVERFLOW_ENTRY_LEN;
        format::decode_overflow(&overflow[at..at + format::OVERFLOW_ENTRY_LEN]).0
    };
    // Invariant: entries before `lo` are below `ordinal`, entries from `hi` on are not.
    let (mut lo, mut hi) = (0usize, n);
    if let Some(blocks) = blocks {
        // Blocks whose first entry is below `ordinal`: the answer is past the first entry of the
        // last of them, and at most the first entry of the next.
        let below = blocks.partition_point(|&first| first < ordinal);
        if below > 0 {
            lo = ((below - 1) * OVERFLOW_BLOCK + 1).min(n);
            hi = (below * OVERFLOW_BLOCK).min(n).max(lo);
        } else {
            hi = 0;
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ordinal_at(mid) < ordinal {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Overflow entries per block of [`Index::index_overflow`]'s directory: one 4 KiB page of them
/// (a block spans at most two pages, as the table is not page aligned).
pub const OVERFLOW_BLOCK: usize = 4096 / format::OVERFLOW_ENTRY_LEN;

/// The sorted entries of one prefix, borrowed from the index.
#[derive(Clone, Copy)]
pub struct Range<'a> {
    /// The prefix all entries share.
    prefix: Prefix,
    /// Kind of the index, for suffix lengths.
    kind: HashKind,
    /// The prefix's records, `record_len` bytes each.
    records: &'a [u8],
    /// Bytes per record.
    record_len: usize,
    /// Ordinal of the first record, to match overflow entries.
    first_ordinal: u64,
    /// [`Index::overflow_blocks`], when built.
    overflow_blocks: Option<&'a [u64]>,
    /// The whole overflow table; searched only when an escaped count is needed, so a lookup
    /// that finds an ordinary count never touches it.
    overflow: &'a [u8],
}

impl<'a> Range<'a> {
    /// The prefix of every entry.
    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The hash kind.
    pub fn kind(&self) -> HashKind {
        self.kind
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.records.len() / self.record_len
    }

    /// Whether the prefix has no entries.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn record(&self, i: usize) -> &'a [u8] {
        &self.records[i * self.record_len..(i + 1) * self.record_len]
    }

    /// The records of the range, `record_len()` bytes each, for crate modules that compare
    /// records without decoding them (see the key helpers in [`format`]).
    pub(crate) fn records(&self) -> &'a [u8] {
        self.records
    }

    /// Bytes per record.
    pub(crate) fn record_len(&self) -> usize {
        self.record_len
    }

    /// Count of entry `i` (by position in the range, from 0), looking it up in the overflow
    /// table when it does not fit inline: for scans that read the records' inline counts
    /// themselves and need the exact count of an escaped one. Panics if `i >= len()`.
    #[inline]
    pub fn count_at(&self, i: usize) -> u32 {
        let inline = format::record_inline_count(self.record(i));
        if inline != format::COUNT_ESCAPE {
            return inline;
        }
        let ordinal = self.first_ordinal + i as u64;
        let at = self.overflow_at_or_after(ordinal) * format::OVERFLOW_ENTRY_LEN;
        match self.overflow.get(at..at + format::OVERFLOW_ENTRY_LEN) {
            Some(entry) if format::decode_overflow(entry).0 == ordinal => {
                format::decode_overflow(entry).1
            }
            // Only a corrupt file gets here (`verify` reports it); never panic on mapped bytes.
            _ => format::COUNT_ESCAPE,
        }
    }

    /// Bytes of hex per entry written by [`Range::hex_batch`].
    pub fn hex_stride(&self) -> usize {
        2 * self.record_len
    }

    /// Upper-case hex of entries `start..end` in one pass, for renderers that would otherwise
    /// make one encoder call per entry. Writes `hex_stride()` characters per entry into `out`;
    /// entry `start + k`'s suffix is
    /// `out[k * hex_stride() + format::RECORD_HEX_SUFFIX_AT..][..kind().suffix_hex_len()]`
    /// (the other characters are the stored count bits). Panics if `out` is too short.
    pub fn hex_batch(&self, start: usize, end: usize, out: &mut [u8]) {
        let bytes = &self.records[start * self.record_len..end * self.record_len];
        const_hex::encode_to_slice_upper(bytes, &mut out[..bytes.len() * 2])
            .expect("output sized by the caller");
    }

    /// Index of the first overflow entry whose ordinal is `>= ordinal`.
    fn overflow_at_or_after(&self, ordinal: u64) -> usize {
        partition_overflow(self.overflow, ordinal, self.overflow_blocks)
    }

    /// Exact counts of the range's escaped records, for scans that read inline counts
    /// themselves (see [`Escapes`]).
    pub(crate) fn escapes(&self) -> Escapes<'a> {
        Escapes {
            range: *self,
            overflow: None,
        }
    }

    /// Iterates the entries in ascending suffix order.
    pub fn iter(&self) -> RangeIter<'a> {
        RangeIter {
            range: *self,
            next: 0,
            len: self.len(),
            escapes: self.escapes(),
        }
    }
}

impl<'a> IntoIterator for Range<'a> {
    type Item = Entry<'a>;
    type IntoIter = RangeIter<'a>;

    fn into_iter(self) -> RangeIter<'a> {
        self.iter()
    }
}

/// Iterator over a [`Range`]; walks the overflow table alongside the records.
pub struct RangeIter<'a> {
    /// The range being walked.
    range: Range<'a>,
    /// Index of the next entry.
    next: usize,
    /// Number of entries (`range.len()` divides by the record length; asked once).
    len: usize,
    /// Counts of the escaped entries.
    escapes: Escapes<'a>,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = Entry<'a>;

    #[inline]
    fn next(&mut self) -> Option<Entry<'a>> {
        if self.next >= self.len {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let record = self.range.record(i);
        let mut count = format::record_inline_count(record);
        if count == format::COUNT_ESCAPE {
            count = self.escapes.count(i);
        }
        Some(Entry { record, count })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for RangeIter<'_> {}

/// The exact counts of a range's records whose inline count is the escape value, asked for in
/// ascending order: the first one searches the overflow table, later ones read on from there.
/// (Each is about 0.1% of the corpus; a search per escape cost a renderer 8% of its time.)
pub(crate) struct Escapes<'a> {
    /// The range.
    range: Range<'a>,
    /// Overflow entries not yet consumed, in ordinal order; found at the first escaped count,
    /// so a range without one never reads the overflow table.
    overflow: Option<std::slice::ChunksExact<'a, u8>>,
}

impl Escapes<'_> {
    /// The count of entry `i`, whose record holds the escape value. Kept out of line so that the
    /// scans' loops stay small.
    #[cold]
    #[inline(never)]
    pub(crate) fn count(&mut self, i: usize) -> u32 {
        let range = self.range;
        let ordinal = range.first_ordinal + i as u64;
        let overflow = self.overflow.get_or_insert_with(|| {
            let first = range.overflow_at_or_after(ordinal);
            range.overflow[first * format::OVERFLOW_ENTRY_LEN..]
                .chunks_exact(format::OVERFLOW_ENTRY_LEN)
        });
        match overflow.next().map(format::decode_overflow) {
            Some((at, count)) if at == ordinal => count,
            _ => range.count_at(i),
        }
    }
}

/// One `(suffix, count)` entry of a range.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// The stored record (suffix bits and inline count).
    record: &'a [u8],
    /// The exact count.
    count: u32,
}

impl<'a> Entry<'a> {
    /// How many times the hash was seen in breaches.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Writes the upper-case hex suffix (the hash after its 5-hex prefix) into `out`, which must
    /// be exactly `kind.suffix_hex_len()` bytes long.
    #[inline]
    pub fn write_suffix_hex(&self, out: &mut [u8]) {
        format::write_record_suffix_hex(self.record, out);
    }

    /// The upper-case hex suffix as a `String`.
    pub fn suffix_hex(&self) -> String {
        let mut out = vec![0u8; 2 * self.record.len() - 3];
        self.write_suffix_hex(&mut out);
        String::from_utf8(out).expect("hex is ASCII")
    }

    /// The full hash, given the prefix the entry belongs to.
    pub fn hash(&self, prefix: Prefix, kind: HashKind) -> Hash {
        let mut bytes = [0u8; MAX_HASH_LEN];
        format::decode_record_hash(prefix.value(), self.record, &mut bytes[..kind.byte_len()]);
        Hash::from_bytes(kind, &bytes[..kind.byte_len()]).expect("length matches kind")
    }
}

/// Why an index could not be opened. [`Index::open_path`] adds the path with [`OpenPathError`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened or mapped.
    #[error("cannot read the file: {0}")]
    Io(std::io::Error),
    /// The header was refused.
    #[error("{0}; re-run `hibp-mirror import` to rebuild the index")]
    Header(#[from] HeaderError),
    /// The prefix table does not start at record 0.
    #[error("corrupt prefix table: the first prefix does not start at record 0 (it says {first}); re-run `hibp-mirror import` to rebuild the index")]
    TableStart {
        /// The first entry of the table.
        first: u64,
    },
    /// The prefix table's offsets decrease somewhere.
    #[error("corrupt prefix table: offsets go backwards at prefix {prefix:05X} ({offset} < {previous}); re-run `hibp-mirror import` to rebuild the index")]
    TableBackwards {
        /// The prefix whose start lies before the previous prefix's start.
        prefix: usize,
        /// Its start ordinal.
        offset: u64,
        /// The previous prefix's start ordinal.
        previous: u64,
    },
    /// The prefix table does not end at the header's record count.
    #[error("corrupt prefix table: the table ends at record {end} but the header counts {record_count}; re-run `hibp-mirror import` to rebuild the index")]
    TableEnd {
        /// The table's last entry.
        end: u64,
        /// The header's record count.
        record_count: u64,
    },
}

/// An [`OpenError`] with the path of the index file it concerns.
#[derive(Debug, thiserror::Error)]
#[error("index {}: {source}", path.display())]
pub struct OpenPathError {
    /// The index path.
    pub path: PathBuf,
    /// Why it was refused.
    pub source: OpenError,
}

/// A fault found by [`Index::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The body checksum does not match the header.
    #[error("body checksum mismatch: header says {expected:08x}, data gives {got:08x}; re-run `hibp-mirror import`")]
    Checksum {
        /// CRC stored in the header.
        expected: u32,
        /// CRC of the bytes on disk.
        got: u32,
    },
    /// Records out of order (or duplicated) inside a prefix.
    #[error("prefix {prefix}: record {position} is not greater than the one before it; re-run `hibp-mirror import`")]
    Order {
        /// The prefix.
        prefix: Prefix,
        /// Position of the offending record inside the prefix.
        position: usize,
    },
    /// The overflow table disagrees with the records.
    #[error("overflow table: {0}; re-run `hibp-mirror import`")]
    Overflow(String),
    /// A stored prefix tag does not match the prefix's records.
    #[error("prefix {prefix}: stored tag {stored:016x} does not match its records ({computed:016x}); re-run `hibp-mirror import`")]
    Tag {
        /// The prefix.
        prefix: Prefix,
        /// The tag in the file.
        stored: u64,
        /// The tag computed from the records.
        computed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(ordinals: &[u64]) -> Vec<u8> {
        ordinals
            .iter()
            .flat_map(|&o| format::encode_overflow(o, format::INLINE_COUNT_MAX + 1))
            .collect()
    }

    /// What [`Index::index_overflow`] builds for a table of these ordinals.
    fn blocks(ordinals: &[u64]) -> Vec<u64> {
        ordinals.iter().step_by(OVERFLOW_BLOCK).copied().collect()
    }

    /// Checks both searches (whole table, and through the block directory) against a linear scan
    /// at `probes`.
    fn check(ordinals: &[u64], probes: impl Iterator<Item = u64>) {
        let bytes = table(ordinals);
        let blocks = blocks(ordinals);
        for probe in probes {
            let expected = ordinals.partition_point(|&o| o < probe);
            assert_eq!(
                partition_overflow(&bytes, probe, None),
                expected,
                "probe {probe}"
            );
            assert_eq!(
                partition_overflow(&bytes, probe, Some(&blocks)),
                expected,
                "probe {probe}, with blocks"
            );
        }
    }

    /// Small tables: empty, one entry, runs at either end, sparse, and sizes around a block.
    #[test]
    fn partition_overflow_agrees_with_a_linear_scan() {
        let record_count = 10_000u64;
        let layouts: Vec<Vec<u64>> = vec![
            vec![],
            vec![0],
            vec![record_count - 1],
            (0..record_count).step_by(7).collect(),
            (0..200).collect(),
            (record_count - 200..record_count).collect(),
            (0..record_count).step_by(997).collect(),
            (0..OVERFLOW_BLOCK as u64).collect(),
            (0..OVERFLOW_BLOCK as u64 + 1).collect(),
            (4_000..4_050).chain(9_990..9_995).collect(),
        ];
        for ordinals in &layouts {
            check(ordinals, (0..=record_count + 3).chain([u64::MAX]));
        }
    }

    /// Large tables: an even spread with random gaps (as in a real index), and a dense run in an
    /// otherwise sparse table.
    #[test]
    fn partition_overflow_agrees_with_a_linear_scan_on_large_tables() {
        let record_count = 2_000_000u64;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let spread: Vec<u64> = (0..record_count).filter(|_| random() % 700 == 0).collect();
        let bunched: Vec<u64> = (0..record_count)
            .filter(|&o| (1_500_000..1_510_000).contains(&o) || o % 50_000 == 0)
            .collect();
        for ordinals in [&spread, &bunched] {
            let probes = ordinals
                .iter()
                .step_by(7)
                .flat_map(|&o| [o.saturating_sub(1), o, o + 1])
                .chain((0..record_count + 10).step_by(4_999));
            check(ordinals, probes);
        }
    }

    /// A corrupt, unsorted table still gives an in-bounds answer, with or without blocks.
    #[test]
    fn partition_overflow_stays_in_bounds_on_an_unsorted_table() {
        let ordinals: Vec<u64> = (0..2_000u64).map(|i| (i * 7_919) % 2_003).collect();
        let bytes = table(&ordinals);
        let blocks = blocks(&ordinals);
        for probe in [0, 2, 4, 8, 100, 1_999, 5_000, u64::MAX] {
            assert!(partition_overflow(&bytes, probe, None) <= ordinals.len());
            assert!(partition_overflow(&bytes, probe, Some(&blocks)) <= ordinals.len());
        }
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;
    use crate::writer::build_in_memory;

    #[test]
    fn a_run_of_prefixes_spans_exactly_their_records() {
        // Records in prefixes 0x00010, 0x00011 and 0x00013; 0x00012 is empty.
        let mut hashes: Vec<[u8; 20]> =
            [(0x00, 0x01, 0x00), (0x00, 0x01, 0x10), (0x00, 0x01, 0x30)]
                .iter()
                .flat_map(|&(a, b, c)| {
                    (0..3u8).map(move |i| {
                        let mut h = [i; 20];
                        h[0] = a;
                        h[1] = b;
                        h[2] = c | (i << 1);
                        h
                    })
                })
                .collect();
        hashes.sort();
        let index = Index::open(build_in_memory(
            HashKind::Sha1,
            hashes.iter().map(|h| (&h[..], 1)),
            "t",
            0,
        ))
        .unwrap();
        let span = |p: u32| index.range_span(Prefix::new(p).unwrap());
        for p in 0x10..0x14usize {
            assert_eq!(index.prefixes_span(p..p + 1), span(p as u32), "{p:05X}");
        }
        assert!(span(0x12).is_empty() && !span(0x13).is_empty());
        assert_eq!(
            index.prefixes_span(0x10..0x14),
            span(0x10).start..span(0x13).end
        );
        assert_eq!(
            index.prefixes_span(0..PREFIX_COUNT).len(),
            hashes.len() * format::record_len(HashKind::Sha1)
        );
        assert!(index.prefixes_span(0x11..0x11).is_empty());
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::writer::build_in_memory;

    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Lookups and ranges answered from a copy of some of the file's bytes agree with the
    /// mapped answers: a window either decides a lookup correctly or declines it, the lookup's
    /// own window and the whole prefix always decide, and escaped counts still resolve.
    #[test]
    fn windows_answer_as_the_mapping_or_decline() {
        let mut state = 7;
        // 2,000 hashes in prefix 0x12345, a few in its neighbours; every 50th count escaped.
        let mut hashes: Vec<([u8; 20], u32)> = (0..2_000)
            .map(|i| {
                let mut h = [0u8; 20];
                for b in h.iter_mut() {
                    *b = next(&mut state) as u8;
                }
                let prefix: u32 = match i % 100 {
                    0 => 0x12344,
                    1 => 0x12346,
                    _ => 0x12345,
                };
                h[0] = (prefix >> 12) as u8;
                h[1] = (prefix >> 4) as u8;
                h[2] = (prefix as u8) << 4 | (h[2] & 0x0F);
                let count = if i % 50 == 7 {
                    100_000 + i
                } else {
                    1 + i % 4000
                };
                (h, count)
            })
            .collect();
        hashes.sort();
        hashes.dedup_by(|a, b| a.0 == b.0);
        let index = Index::open(build_in_memory(
            HashKind::Sha1,
            hashes.iter().map(|(h, c)| (&h[..], *c)),
            "t",
            0,
        ))
        .unwrap();
        let bytes = index.bytes();
        let prefix = Prefix::new(0x12345).unwrap();
        let span = index.range_span(prefix);
        let record_len = format::record_len(HashKind::Sha1);

        // /range from a copy of the prefix's bytes.
        let copied = index.range_from(prefix, &bytes[span.clone()]).unwrap();
        let entries = |r: Range<'_>| -> Vec<(Vec<u8>, u32)> {
            r.into_iter()
                .map(|e| (e.record.to_vec(), e.count()))
                .collect()
        };
        assert_eq!(entries(copied), entries(index.range(prefix)));
        assert!(index
            .range_from(prefix, &bytes[span.start..span.end - 1])
            .is_none());

        let mut declined = 0;
        let mut own_declined = [0usize; 2];
        for (i, (h, _)) in hashes.iter().enumerate() {
            // Present, and an absent neighbour (last byte changed).
            let mut absent = *h;
            absent[19] ^= 0x5A;
            for raw in [*h, absent] {
                let hash = Hash::from_bytes(HashKind::Sha1, &raw).unwrap();
                let want = index.lookup(&hash);
                if hash.prefix() != prefix {
                    continue;
                }
                // The whole prefix always decides; the lookup's window often, its pages nearly always.
                assert_eq!(
                    index.lookup_in(&hash, &bytes[span.clone()], span.clone()),
                    Some(want)
                );
                let own = index.lookup_span(&hash);
                let pages = index.lookup_block_span(&hash, 4096);
                assert!(pages.start <= own.start && own.end <= pages.end);
                assert!(pages.start >= span.start && pages.end <= span.end);
                assert_eq!((pages.start - span.start) % record_len, 0);
                assert_eq!((pages.end - span.start) % record_len, 0);
                for (k, w) in [own, pages].into_iter().enumerate() {
                    match index.lookup_in(&hash, &bytes[w.clone()], w.clone()) {
                        Some(got) => assert_eq!(got, want, "hash {i} window {w:?}"),
                        None => own_declined[k] += 1,
                    }
                }
                // Arbitrary record-aligned windows: right, or declined.
                let records = span.len() / record_len;
                let a = next(&mut state) as usize % (records + 1);
                let b = a + next(&mut state) as usize % (records + 1 - a);
                let w = span.start + a * record_len..span.start + b * record_len;
                match index.lookup_in(&hash, &bytes[w.clone()], w.clone()) {
                    Some(got) => assert_eq!(got, want, "hash {i} window {w:?}"),
                    None => declined += 1,
                }
                // Misaligned or foreign windows are declined, never misread.
                let off = w.start + 1..w.end + 1;
                assert_eq!(index.lookup_in(&hash, &bytes[off.clone()], off), None);
            }
        }
        assert!(
            declined > 0,
            "no random window declined: the edge rule was not exercised"
        );
        // A hash far from its interpolated place: a quarter of the time beyond the lookup span
        // of 32 records either side, rarely beyond the pages that span touches (25 of 4,000 here).
        let asked = 2 * hashes.len();
        assert!(own_declined[1] * 50 < asked, "{own_declined:?} of {asked}");
        assert!(
            own_declined[1] < own_declined[0],
            "{own_declined:?} of {asked}"
        );
        // The escaped counts came from the overflow table through the copy.
        assert!(hashes.iter().any(|(_, c)| *c > 100_000));
    }
}
