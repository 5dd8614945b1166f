//! Exports for tools that cannot run a server: top-N and count-threshold lists (as a dump or as
//! a normal index) and binary fuse filters ([`filter`]).
//!
//! Everything streams the index in hash order, prefix range by prefix range, so memory is
//! bounded by the selection (`--top N` keeps a heap of N entries) or by one filter shard, never
//! by the index. Every output is written to a temporary file next to the target, synced and
//! renamed into place ([`crate::writer::AtomicFile`]), so the target only ever holds a complete
//! file.

pub mod filter;

use std::cmp::Ordering;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::format;
use crate::hash::{Hash, HashKind, Prefix, PREFIX_COUNT};
use crate::index::Index;
use crate::mmap::IndexBytes;
use crate::writer::{AtomicFile, EncodedBlock, IndexWriter};

pub use filter::{Filter, FilterError, FilterHeader, Width};

/// Prefixes scanned as one unit of parallel work (256 units over the whole index).
const PREFIXES_PER_CHUNK: usize = 4096;

/// Which hashes to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only the N most-seen hashes (ties broken by the smaller hash), after `min_count`.
    pub top: Option<u64>,
    /// Only hashes seen at least this many times (0: no threshold).
    pub min_count: u32,
}

impl Selection {
    /// Whether a hash seen `count` times passes the threshold.
    #[inline]
    pub fn admits(&self, count: u32) -> bool {
        count >= self.min_count
    }

    /// A short description for labels and messages.
    pub fn describe(&self) -> String {
        match (self.top, self.min_count) {
            (None, 0) => "all hashes".into(),
            (None, c) => format!("count >= {c}"),
            (Some(n), 0) => format!("top {n}"),
            (Some(n), c) => format!("top {n} with count >= {c}"),
        }
    }
}

/// Order of the lines of a dump export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending hash (the order of the official dump and of an index).
    Hash,
    /// Descending count, ties by ascending hash (only with `--top`: it needs the whole
    /// selection in memory).
    Count,
}

impl FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hash" => Ok(Order::Hash),
            "count" => Ok(Order::Count),
            _ => Err(format!("unknown order {s:?}: expected hash or count")),
        }
    }
}

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `HASH:COUNT` lines (upper-case hex, LF), which `import` reads back.
    Dump(Order),
    /// A normal index, usable by `serve`, `check` and `audit`.
    Index,
    /// A binary fuse filter (`docs/FILTER.md`); `shard_bits` overrides the automatic choice.
    Filter {
        /// Fingerprint width.
        width: Width,
        /// Shard bits; `None` picks [`filter::shard_bits_for`] the selected key count.
        shard_bits: Option<u8>,
    },
}

/// Options of [`export`].
pub struct ExportOptions {
    /// Which hashes.
    pub selection: Selection,
    /// What to write.
    pub target: Target,
    /// Where; replaced atomically.
    pub output: PathBuf,
    /// Fsync before the rename (off only for scratch files and benchmarks).
    pub fsync: bool,
    /// Progress display (records scanned, then shards built); `ProgressBar::hidden()` for none.
    pub progress: ProgressBar,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// Hashes selected.
    pub selected: u64,
    /// Bytes written.
    pub file_len: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The filter's header, for filter exports.
    pub filter: Option<FilterHeader>,
}

/// Why an export failed; the target is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The options contradict each other.
    #[error("{0}")]
    Options(String),
    /// Writing the output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The target.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Building the filter failed.
    #[error("cannot build the filter {path}: {source}")]
    Filter {
        /// The target.
        path: PathBuf,
        /// Why.
        source: filter::BuildError,
    },
}

/// A selected hash and its count, ordered by rank: a higher count ranks higher, and among equal
/// counts the smaller hash ranks higher, so the top N is unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked {
    /// How many times it was seen.
    pub count: u32,
    /// The full hash.
    pub hash: Hash,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| other.hash.cmp(&self.hash))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `n` highest-ranked hashes that pass `min_count`, best first (count descending, hash
/// ascending).
pub fn top_n(
    index: &Index<IndexBytes>,
    n: u64,
    min_count: u32,
    progress: &ProgressBar,
) -> Vec<Ranked> {
    let mut ranked = select_top(index, n, min_count, progress);
    by_count(&mut ranked);
    ranked
}

/// Reorders a hash-ordered selection best first: a stable sort by descending count keeps equal
/// counts in hash order, which is the ranking.
fn by_count(ranked: &mut [Ranked]) {
    ranked.sort_by_key(|r| std::cmp::Reverse(r.count));
}

/// The `n` highest-ranked hashes that pass `min_count`, in hash order.
///
/// One parallel scan ([`scan_top`]), which starts with the bar [`estimate_bar`] guesses from a
/// sample, and a second one without it only if the guess turns out too high. Each thread scans
/// a contiguous run of prefixes in hash order and appends the records that may be among the
/// best to a buffer, which so stays in hash order. When the
/// buffer reaches 2n entries, [`keep_best`] keeps its n best (the count histogram gives the
/// n-th best count `c`; of the entries counted exactly `c`, the first ones are the smallest
/// hashes), and `c + 1` becomes the bar: a later record needs a higher count to enter (an equal
/// count with a later, so larger, hash ranks lower). With the real counts' heavy tail the bar
/// soon rises above all but a small fraction of the records, so most records cost reading their
/// inline count and one comparison, and are never decoded. A hash in the overall top n is in
/// the top n of its own thread's run, so the threads' buffers, concatenated in run order (hash
/// order), give the answer through one more [`keep_best`], ties included. Memory is at most 2n
/// entries per thread, never O(index); each chunk's pages are released once scanned
/// ([`ScanPages`]).
fn select_top(
    index: &Index<IndexBytes>,
    n: u64,
    min_count: u32,
    progress: &ProgressBar,
) -> Vec<Ranked> {
    let n = usize::try_from(n.min(index.len())).unwrap_or(usize::MAX);
    if n == 0 {
        return Vec::new();
    }
    let bar = estimate_bar(index, n).max(min_count);
    let top = scan_top(index, n, bar, progress);
    if top.len() < n && bar > min_count {
        // The estimate was too high: fewer than n hashes are counted `bar` or more, so some of
        // the top n are below it. Never seen in practice; scan again without it.
        progress.set_position(0);
        return scan_top(index, n, min_count, progress);
    }
    top
}

/// Chunks between two sampled by [`estimate_bar`].
const SAMPLE_EVERY: usize = 16;

/// A count that about 1.25n hashes reach, estimated from the counts of every 16th prefix chunk
/// (hashes are spread evenly over the prefixes whatever their counts); 0 when the sample is
/// too small to tell. Starting the scan with this bar instead of 0 saves it from decoding and
/// buffering the millions of records that would pass an early, low bar only to be dropped.
/// [`select_top`] checks the guess: if fewer than n hashes pass it, it scans again.
fn estimate_bar(index: &Index<IndexBytes>, n: usize) -> u32 {
    let chunks: Vec<usize> = (0..PREFIX_COUNT / PREFIXES_PER_CHUNK)
        .step_by(SAMPLE_EVERY)
        .collect();
    let kind = index.kind();
    let bytes = index.data().as_ref();
    let record_len = format::record_len(kind);
    let slots = format::INLINE_COUNT_MAX as usize + 2;
    // Counts above the inline range share the last slot.
    let hist = chunks
        .par_iter()
        .map(|&chunk| {
            let _pages = ScanPages::chunk(index, chunk);
            let mut hist = vec![0u64; slots];
            for prefix in chunk_prefixes(chunk) {
                for record in bytes[index.range_span(prefix)].chunks_exact(record_len) {
                    let count = format::record_inline_count(record) as usize;
                    hist[count.min(slots - 1)] += 1;
                }
            }
            hist
        })
        .reduce(
            || vec![0u64; slots],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let sampled: u64 = hist.iter().sum();
    if sampled == 0 {
        return 0;
    }
    let scale = index.len() as f64 / sampled as f64;
    let mut at_least = 0u64;
    for (count, &k) in hist.iter().enumerate().rev() {
        at_least += k;
        // Enough evidence (a few thousand sampled hashes) and a 25% margin.
        if at_least >= 4096 && at_least as f64 * scale >= 1.25 * n as f64 {
            return count as u32;
        }
    }
    0
}

/// [`select_top`]'s scan, which skips records counted below `bar`.
fn scan_top(index: &Index<IndexBytes>, n: usize, bar: u32, progress: &ProgressBar) -> Vec<Ranked> {
    let kind = index.kind();
    let bytes = index.data().as_ref();
    let record_len = format::record_len(kind);
    let chunks = PREFIX_COUNT / PREFIXES_PER_CHUNK;
    let workers = rayon::current_num_threads().clamp(1, chunks);
    let parts: Vec<Vec<Ranked>> = (0..workers)
        .into_par_iter()
        .map(|w| {
            // Room for the usual case up front (a growing vector copies itself at each step);
            // a huge N grows as needed instead.
            let cap = n.saturating_mul(2);
            let mut best = Vec::with_capacity(cap.min(1 << 20));
            let mut bar = bar;
            for chunk in w * chunks / workers..(w + 1) * chunks / workers {
                let _pages = ScanPages::chunk(index, chunk);
                let mut scanned = 0u64;
                for prefix in chunk_prefixes(chunk) {
                    let range = index.range(prefix);
                    let records = &bytes[index.range_span(prefix)];
                    scanned += range.len() as u64;
                    // Inline counts straight from the records; the exact count of an escaped
                    // one (~0.1%) from the overflow table.
                    for (i, record) in records.chunks_exact(record_len).enumerate() {
                        let inline = format::record_inline_count(record);
                        if inline < bar && inline != format::COUNT_ESCAPE {
                            continue;
                        }
                        let count = if inline == format::COUNT_ESCAPE {
                            range.count_at(i)
                        } else {
                            inline
                        };
                        if count < bar {
                            continue;
                        }
                        best.push(ranked_record(prefix, kind, record, count));
                        if best.len() >= cap {
                            let least = keep_best(&mut best, n);
                            bar = bar.max(least.saturating_add(1));
                        }
                    }
                }
                progress.inc(scanned);
            }
            best
        })
        .collect();
    let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        all.extend(part);
    }
    keep_best(&mut all, n);
    all
}

/// The [`Ranked`] entry of a stored record of `prefix`.
#[inline]
fn ranked_record(prefix: Prefix, kind: HashKind, record: &[u8], count: u32) -> Ranked {
    let mut bytes = [0u8; crate::hash::MAX_HASH_LEN];
    let bytes = &mut bytes[..kind.byte_len()];
    format::decode_record_hash(prefix.value(), record, bytes);
    Ranked {
        count,
        hash: Hash::from_bytes(kind, bytes).expect("length matches kind"),
    }
}

/// Keeps the `n` best of `entries`, which are in hash order, and keeps them in hash order;
/// returns the least count kept (0 when `entries` is empty).
///
/// Linear: a histogram of the counts gives the n-th best count `c`; every entry counted above
/// `c` stays, and of those counted exactly `c`, the first ones (the smallest hashes) do.
fn keep_best(entries: &mut Vec<Ranked>, n: usize) -> u32 {
    if entries.len() <= n {
        return entries.iter().map(|r| r.count).min().unwrap_or(0);
    }
    let mut hist = vec![0usize; format::INLINE_COUNT_MAX as usize + 1];
    // Counts above the inline range (~0.1% of the real corpus) are sorted instead.
    let mut big = Vec::new();
    for r in entries.iter() {
        match hist.get_mut(r.count as usize) {
            Some(slot) => *slot += 1,
            None => big.push(r.count),
        }
    }
    big.sort_unstable_by(|a, b| b.cmp(a));
    let big_runs = big.chunk_by(|a, b| a == b).map(|run| (run[0], run.len()));
    let small_runs = hist
        .iter()
        .enumerate()
        .rev()
        .filter(|&(_, &k)| k > 0)
        .map(|(c, &k)| (c as u32, k));
    // Distinct counts in descending order with their multiplicities; `entries.len() > n`, so
    // the n-th best is among them.
    let (mut least, mut ties) = (0, 0);
    let mut above = 0usize;
    for (count, k) in big_runs.chain(small_runs) {
        if above + k >= n {
            (least, ties) = (count, n - above);
            break;
        }
        above += k;
    }
    entries.retain(|r| {
        if r.count > least {
            true
        } else if r.count == least && ties > 0 {
            ties -= 1;
            true
        } else {
            false
        }
    });
    least
}

/// The records of a run of prefixes while a scan reads them. Created before the scan: asks for
/// all of them in one batch of I/O ([`IndexBytes::prefetch`]), since indexes are advised for
/// random access (serving) and a cold scan would otherwise read page by page. Dropped after it:
/// gives their pages back ([`IndexBytes::release`]), so a scan of the whole index holds about one
/// chunk per thread in its resident set, not the index. Runs are disjoint, so no other thread
/// reads these pages; a page shared with a neighbouring run is left mapped.
struct ScanPages<'a> {
    index: &'a Index<IndexBytes>,
    span: std::ops::Range<usize>,
}

impl<'a> ScanPages<'a> {
    /// The records of prefix chunk `chunk`.
    fn chunk(index: &'a Index<IndexBytes>, chunk: usize) -> Self {
        let first = chunk * PREFIXES_PER_CHUNK;
        ScanPages::prefixes(index, first..first + PREFIXES_PER_CHUNK)
    }

    /// The records of prefixes `prefixes` (a filter shard's piece).
    fn prefixes(index: &'a Index<IndexBytes>, prefixes: std::ops::Range<usize>) -> Self {
        let span = index.prefixes_span(prefixes);
        index.data().prefetch(span.clone());
        ScanPages { index, span }
    }
}

impl Drop for ScanPages<'_> {
    fn drop(&mut self) {
        // Advice only: if it fails, the pages simply stay mapped.
        let _ = self.index.data().release(self.span.clone());
    }
}

/// Number of hashes that pass `min_count` (a parallel scan of the counts).
pub fn count_selected(index: &Index<IndexBytes>, min_count: u32) -> u64 {
    if min_count == 0 {
        return index.len();
    }
    (0..PREFIX_COUNT / PREFIXES_PER_CHUNK)
        .into_par_iter()
        .map(|chunk| {
            let _pages = ScanPages::chunk(index, chunk);
            let n = chunk_prefixes(chunk)
                .map(|p| {
                    index
                        .range(p)
                        .iter()
                        .filter(|e| e.count() >= min_count)
                        .count() as u64
                })
                .sum::<u64>();
            n
        })
        .sum()
}

fn chunk_prefixes(chunk: usize) -> impl Iterator<Item = Prefix> {
    let start = chunk * PREFIXES_PER_CHUNK;
    (start..start + PREFIXES_PER_CHUNK).filter_map(|p| Prefix::new(p as u32))
}

/// Writes the selection of `index` to `options.output`, atomically.
pub fn export(
    index: &Index<IndexBytes>,
    options: &ExportOptions,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    let selection = options.selection;
    if options.target == Target::Dump(Order::Count) && selection.top.is_none() {
        return Err(ExportError::Options(
            "--order count needs --top N (ordering by count holds the whole selection in memory)"
                .into(),
        ));
    }
    if let Target::Filter {
        shard_bits: Some(bits),
        ..
    } = options.target
    {
        if bits > filter::MAX_SHARD_BITS {
            return Err(ExportError::Options(format!(
                "at most {} shard bits",
                filter::MAX_SHARD_BITS
            )));
        }
    }
    let path = &options.output;
    let write_err = |source| ExportError::Write {
        path: path.clone(),
        source,
    };
    let out = AtomicFile::create(path).map_err(write_err)?;
    let progress = &options.progress;
    progress.set_length(index.len());
    let top = selection
        .top
        .map(|n| select_top(index, n, selection.min_count, progress));
    let mut filter_header = None;
    let selected = match (options.target, top) {
        (Target::Dump(order), Some(mut ranked)) => {
            if order == Order::Count {
                by_count(&mut ranked);
            }
            let mut w = BufWriter::with_capacity(1 << 20, out.file());
            let mut line = Vec::with_capacity(64);
            for r in &ranked {
                line.clear();
                dump_line(&mut line, &r.hash, r.count);
                w.write_all(&line).map_err(write_err)?;
            }
            w.flush().map_err(write_err)?;
            ranked.len() as u64
        }
        (Target::Index, Some(ranked)) => {
            let mut block = EncodedBlock::with_capacity(index.kind(), ranked.len());
            for r in &ranked {
                block.push(r.hash.as_bytes(), r.count);
            }
            let mut writer = IndexWriter::new(out.file(), index.kind()).map_err(write_err)?;
            writer.push_block(&block).map_err(write_err)?;
            writer
                .finish(&label(index, selection), format::now_unix())
                .map_err(write_err)?;
            ranked.len() as u64
        }
        (Target::Dump(_), None) => {
            stream_dump(index, selection, out.file(), progress).map_err(write_err)?
        }
        (Target::Index, None) => {
            let mut writer = IndexWriter::new(out.file(), index.kind()).map_err(write_err)?;
            stream_blocks(index, selection, progress, |block| {
                writer.push_block(&block)
            })
            .map_err(write_err)?;
            let selected = writer.record_count();
            writer
                .finish(&label(index, selection), format::now_unix())
                .map_err(write_err)?;
            selected
        }
        (Target::Filter { width, shard_bits }, ranked) => {
            let header = build_filter(index, selection, width, shard_bits, ranked, &out, progress)
                .map_err(|source| ExportError::Filter {
                    path: path.clone(),
                    source,
                })?;
            let selected = header.key_count;
            filter_header = Some(header);
            selected
        }
    };
    let file_len = out.file().metadata().map_err(write_err)?.len();
    out.commit(options.fsync).map_err(write_err)?;
    progress.finish_and_clear();
    Ok(ExportSummary {
        selected,
        file_len,
        elapsed: started.elapsed(),
        filter: filter_header,
    })
}

fn label(index: &Index<IndexBytes>, selection: Selection) -> String {
    format!(
        "export ({}) of {}",
        selection.describe(),
        index.header().label
    )
}

/// Appends `HASH:COUNT\n`.
fn dump_line(out: &mut Vec<u8>, hash: &Hash, count: u32) {
    let start = out.len();
    out.resize(start + hash.kind().hex_len(), 0);
    const_hex::encode_to_slice_upper(hash.as_bytes(), &mut out[start..]).expect("sized");
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
    out.push(b'\n');
}

/// Scans chunks of prefixes in parallel, a few at a time, and hands the results on in order.
fn stream_chunks<T: Send>(
    produce: impl Fn(usize) -> (T, u64) + Sync,
    mut consume: impl FnMut(T) -> io::Result<()>,
    progress: &ProgressBar,
) -> io::Result<()> {
    let chunks: Vec<usize> = (0..PREFIX_COUNT / PREFIXES_PER_CHUNK).collect();
    let batch = rayon::current_num_threads().max(1) * 2;
    for group in chunks.chunks(batch) {
        let results: Vec<(T, u64)> = group.par_iter().map(|&c| produce(c)).collect();
        for (item, scanned) in results {
            consume(item)?;
            progress.inc(scanned);
        }
    }
    Ok(())
}

fn stream_dump(
    index: &Index<IndexBytes>,
    selection: Selection,
    file: &std::fs::File,
    progress: &ProgressBar,
) -> io::Result<u64> {
    let kind = index.kind();
    let mut selected = 0u64;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    stream_chunks(
        |chunk| {
            let _pages = ScanPages::chunk(index, chunk);
            let mut text = Vec::new();
            let mut scanned = 0u64;
            let mut n = 0u64;
            for prefix in chunk_prefixes(chunk) {
                let range = index.range(prefix);
                scanned += range.len() as u64;
                for entry in range {
                    if selection.admits(entry.count()) {
                        dump_line(&mut text, &entry.hash(prefix, kind), entry.count());
                        n += 1;
                    }
                }
            }
            ((text, n), scanned)
        },
        |(text, n)| {
            selected += n;
            w.write_all(&text)
        },
        progress,
    )?;
    w.flush()?;
    Ok(selected)
}

fn stream_blocks(
    index: &Index<IndexBytes>,
    selection: Selection,
    progress: &ProgressBar,
    mut consume: impl FnMut(EncodedBlock) -> io::Result<()>,
) -> io::Result<()> {
    let kind = index.kind();
    stream_chunks(
        |chunk| {
            let _pages = ScanPages::chunk(index, chunk);
            let mut block = EncodedBlock::with_capacity(kind, 0);
            let mut scanned = 0u64;
            for prefix in chunk_prefixes(chunk) {
                let range = index.range(prefix);
                scanned += range.len() as u64;
                for entry in range {
                    if selection.admits(entry.count()) {
                        block.push(entry.hash(prefix, kind).as_bytes(), entry.count());
                    }
                }
            }
            (block, scanned)
        },
        &mut consume,
        progress,
    )
}

/// Builds the filter over the selection: from the top-N list when there is one, otherwise by
/// scanning each shard's prefix range of the index when the builder asks for it.
fn build_filter(
    index: &Index<IndexBytes>,
    selection: Selection,
    width: Width,
    shard_bits: Option<u8>,
    top: Option<Vec<Ranked>>,
    out: &AtomicFile,
    progress: &ProgressBar,
) -> Result<FilterHeader, filter::BuildError> {
    let kind: HashKind = index.kind();
    let keys: Option<Vec<u64>> = top.map(|top| {
        let mut keys: Vec<u64> = top
            .iter()
            .map(|r| filter::key_of(r.hash.as_bytes()))
            .collect();
        keys.sort_unstable();
        keys
    });
    let expected = match &keys {
        Some(keys) => keys.len() as u64,
        None => count_selected(index, selection.min_count),
    };
    let shard_bits = shard_bits.unwrap_or_else(|| filter::shard_bits_for(expected));
    let spec = filter::FilterSpec {
        kind,
        width,
        shard_bits,
        min_count: selection.min_count,
        top: selection.top.unwrap_or(0),
        source_records: index.len(),
        build_time: format::now_unix(),
    };
    // Progress stays in index records: a scanned shard advances it by the records of its
    // prefixes (the top-N path has scanned everything already).
    let prefixes_per_shard = PREFIX_COUNT >> shard_bits;
    let mut records_before = Vec::with_capacity((1usize << shard_bits) + 1);
    let mut total = 0u64;
    records_before.push(0);
    for chunk in Prefix::all().collect::<Vec<_>>().chunks(prefixes_per_shard) {
        total += chunk
            .iter()
            .map(|&p| index.range(p).len() as u64)
            .sum::<u64>();
        records_before.push(total);
    }
    let scanning = keys.is_none();
    let on_shard = |done: usize| {
        if scanning {
            progress.set_position(records_before[done]);
        }
    };
    match keys {
        Some(keys) => filter::build(
            out.file(),
            &spec,
            |s| {
                let lo = keys.partition_point(|&k| filter::shard_of(k, shard_bits) < s);
                let hi = keys.partition_point(|&k| filter::shard_of(k, shard_bits) <= s);
                Ok(keys[lo..hi].to_vec())
            },
            &on_shard,
        ),
        None => filter::build(
            out.file(),
            &spec,
            |s| {
                let start = s * prefixes_per_shard;
                let prefixes = (start..start + prefixes_per_shard)
                    .map(|p| Prefix::new(p as u32).expect("in range"));
                let upper_bound: usize = prefixes.clone().map(|p| index.range(p).len()).sum();
                let mut keys = Vec::with_capacity(if selection.min_count == 0 {
                    upper_bound
                } else {
                    0
                });
                // Released piece by piece, so that a shard spanning much of the index (a high
                // --min-count selects few keys, hence few shards) is never all resident at
                // once. Shards are disjoint prefix runs: no other thread reads these records.
                let piece = prefixes_per_shard.min(PREFIXES_PER_CHUNK);
                for first in (start..start + prefixes_per_shard).step_by(piece) {
                    let _pages = ScanPages::prefixes(index, first..first + piece);
                    for p in first..first + piece {
                        let prefix = Prefix::new(p as u32).expect("in range");
                        for entry in index.range(prefix) {
                            if selection.admits(entry.count()) {
                                keys.push(filter::key_of(entry.hash(prefix, kind).as_bytes()));
                            }
                        }
                    }
                }
                Ok(keys)
            },
            &on_shard,
        ),
    }
}
