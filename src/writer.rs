//! The write side of an index: encoded record blocks in, a complete file out, committed
//! atomically (temporary file in the target directory, fsync, rename, fsync the directory).

use std::fs::{File, Permissions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::FlockOperation;

use crate::format::{self, Header};
use crate::hash::{prefix_of, HashKind, PREFIX_COUNT};

/// A run of records in prefix order, already encoded in the index's record layout.
///
/// Parsers fill blocks in parallel; the [`IndexWriter`] appends them in order.
#[derive(Debug, Clone)]
pub struct EncodedBlock {
    /// Kind of every record in the block.
    kind: HashKind,
    /// Encoded records, `format::record_len(kind)` bytes each.
    records: Vec<u8>,
    /// `(prefix, number of records)` runs, in order; consecutive runs may repeat a prefix only
    /// if the input was unsorted.
    prefix_runs: Vec<(u32, u32)>,
    /// `(index in this block, count)` for records whose count does not fit inline.
    overflow: Vec<(u32, u32)>,
    /// Tags of the runs between the first and the last (whole prefixes in a sorted block),
    /// computed by [`EncodedBlock::compute_interior_tags`] on the producer's thread; empty when
    /// not computed, and the writer then hashes every record itself.
    interior_tags: Vec<u64>,
    /// Set by [`EncodedBlock::tagged`]: the run tags, computed as records are pushed.
    running_tags: Option<Box<RunningTags>>,
}

impl std::fmt::Debug for RunningTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTags")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Tags of a block's runs computed while the records are pushed, from the full hash bytes the
/// caller already has (no second pass over the encoded records).
#[derive(Clone)]
struct RunningTags {
    /// Tags of every run but the last, in order.
    closed: Vec<u64>,
    /// The last run's tag so far.
    open: format::TagHasher,
}

impl EncodedBlock {
    /// An empty block for `kind`, with room for about `capacity` records.
    pub fn with_capacity(kind: HashKind, capacity: usize) -> Self {
        EncodedBlock {
            kind,
            records: Vec::with_capacity(capacity * format::record_len(kind)),
            prefix_runs: Vec::new(),
            overflow: Vec::new(),
            interior_tags: Vec::new(),
            running_tags: None,
        }
    }

    /// [`EncodedBlock::with_capacity`], also hashing each record into its run's tag as it is
    /// pushed, so [`EncodedBlock::compute_interior_tags`] has nothing left to read. For a
    /// parser's blocks, whose runs are whole prefixes but the first and the last.
    pub fn tagged(kind: HashKind, capacity: usize) -> Self {
        EncodedBlock {
            running_tags: Some(Box::new(RunningTags {
                closed: Vec::new(),
                open: format::TagHasher::new(kind),
            })),
            ..EncodedBlock::with_capacity(kind, capacity)
        }
    }

    /// Computes the tags of every run but the first and the last, which may continue a prefix
    /// from the previous or into the next block. Parallel producers call this so the
    /// sequential writer only hashes those two runs. Does nothing unless the runs' prefixes are
    /// strictly increasing (an unsorted block goes to the external sort, not the writer).
    pub fn compute_interior_tags(&mut self) {
        self.interior_tags.clear();
        let running = self.running_tags.take();
        let runs = &self.prefix_runs;
        if runs.len() < 3 || runs.windows(2).any(|w| w[0].0 >= w[1].0) {
            return;
        }
        if let Some(running) = running {
            // `closed` holds every run but the last; the interior ones follow the first.
            self.interior_tags.extend_from_slice(&running.closed[1..]);
            return;
        }
        let mut hasher = format::TagHasher::new(self.kind);
        let mut start = runs[0].1 as usize;
        for &(prefix, n) in &runs[1..runs.len() - 1] {
            self.hash_records(&mut hasher, prefix, start, start + n as usize);
            self.interior_tags.push(hasher.finish());
            start += n as usize;
        }
    }

    /// Feeds records `start..end` (all of `prefix`) to `hasher` with their exact counts.
    fn hash_records(&self, hasher: &mut format::TagHasher, prefix: u32, start: usize, end: usize) {
        let record_len = format::record_len(self.kind);
        let first = self
            .overflow
            .partition_point(|&(i, _)| (i as usize) < start);
        let mut overflow = self.overflow[first..].iter();
        let records = &self.records[start * record_len..end * record_len];
        hasher.push_records(prefix, records, record_len, |record| {
            let count = format::record_inline_count(record);
            if count == format::COUNT_ESCAPE {
                overflow
                    .next()
                    .expect("escaped record has an overflow entry")
                    .1
            } else {
                count
            }
        });
    }

    /// Appends `hash` (full hash bytes of the block's kind) with `count`.
    #[inline]
    pub fn push(&mut self, hash: &[u8], count: u32) {
        // One arm per kind so every copy has a constant length and inlines (no memcpy call).
        match self.kind {
            HashKind::Sha1 => self.push_sized::<{ format::SHA1_RECORD_LEN }>(hash, count),
            HashKind::Ntlm => self.push_sized::<{ format::NTLM_RECORD_LEN }>(hash, count),
        }
    }

    #[inline(always)]
    fn push_sized<const RECORD_LEN: usize>(&mut self, hash: &[u8], count: u32) {
        let hash = &hash[..RECORD_LEN + 1];
        let index = (self.records.len() / RECORD_LEN) as u32;
        let mut record = [0u8; RECORD_LEN];
        if format::encode_record(hash, count, &mut record) {
            self.overflow.push((index, count));
        }
        self.records.extend_from_slice(&record);
        let prefix = prefix_of(hash);
        let new_run = match self.prefix_runs.last_mut() {
            Some((p, n)) if *p == prefix => {
                *n += 1;
                false
            }
            last => {
                let closes_a_run = last.is_some();
                self.prefix_runs.push((prefix, 1));
                closes_a_run
            }
        };
        if let Some(running) = &mut self.running_tags {
            if new_run {
                running.closed.push(running.open.finish());
            }
            running.open.push_hash::<RECORD_LEN>(hash, count);
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len() / format::record_len(self.kind)
    }

    /// Whether the block holds no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Calls `f(full_hash, count)` for every record, in block order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], u32)) {
        let record_len = format::record_len(self.kind);
        let mut hash = [0u8; crate::hash::MAX_HASH_LEN];
        let hash = &mut hash[..self.kind.byte_len()];
        let mut records = self.records.chunks_exact(record_len);
        let mut overflow = self.overflow.iter().peekable();
        let mut index = 0u32;
        for &(prefix, n) in &self.prefix_runs {
            for record in records.by_ref().take(n as usize) {
                format::decode_record_hash(prefix, record, hash);
                let mut count = format::record_inline_count(record);
                if count == format::COUNT_ESCAPE {
                    count = overflow
                        .next()
                        .expect("escaped record has an overflow entry")
                        .1;
                }
                f(hash, count);
                index += 1;
            }
        }
        debug_assert_eq!(index as usize, self.len());
    }
}

/// Streams sorted records into an index file. Records must arrive in strictly increasing hash
/// order; the caller checks that (it knows the line numbers to blame).
pub struct IndexWriter<W: Write + Seek> {
    /// Where the records go, positioned after the header and table.
    out: BufWriter<W>,
    /// Kind of every record.
    kind: HashKind,
    /// Records per prefix; becomes the offset table at the end.
    prefix_counts: Vec<u64>,
    /// Encoded overflow entries, in ordinal order.
    overflow: Vec<u8>,
    /// Records written so far.
    record_count: u64,
    /// CRC-32 of the records written so far.
    records_crc: crc32fast::Hasher,
    /// Tag of every prefix closed so far (the empty-prefix tag for the others).
    tags: Vec<u64>,
    /// The prefix whose records are still arriving (a prefix may span blocks).
    open_prefix: Option<u32>,
    /// Its tag so far (boxed: the hasher holds a 6 KiB staging buffer).
    tag: Box<format::TagHasher>,
}

impl<W: Write + Seek> IndexWriter<W> {
    /// Starts an index of `kind` in `out` (which should be empty).
    pub fn new(mut out: W, kind: HashKind) -> io::Result<Self> {
        out.seek(SeekFrom::Start(format::RECORDS_OFFSET as u64))?;
        Ok(IndexWriter {
            out: BufWriter::with_capacity(1 << 20, out),
            kind,
            prefix_counts: vec![0; PREFIX_COUNT],
            overflow: Vec::new(),
            record_count: 0,
            records_crc: crc32fast::Hasher::new(),
            tags: vec![format::empty_prefix_tag(kind); PREFIX_COUNT],
            open_prefix: None,
            tag: Box::new(format::TagHasher::new(kind)),
        })
    }

    /// Feeds the block's records to the prefix tags, closing each prefix's tag when the next
    /// prefix starts.
    fn tag_block(&mut self, block: &EncodedBlock) {
        let runs = &block.prefix_runs;
        let interior = !block.interior_tags.is_empty();
        let mut start = 0usize;
        for (i, &(prefix, n)) in runs.iter().enumerate() {
            let end = start + n as usize;
            if self.open_prefix != Some(prefix) {
                if let Some(done) = self.open_prefix.replace(prefix) {
                    self.tags[done as usize] = self.tag.finish();
                }
            }
            if interior && i > 0 && i < runs.len() - 1 {
                // A whole prefix, already hashed by the producer.
                self.tags[prefix as usize] = block.interior_tags[i - 1];
                self.open_prefix = None;
            } else {
                block.hash_records(&mut self.tag, prefix, start, end);
            }
            start = end;
        }
    }

    /// Appends a block of records that sorts after everything written so far.
    pub fn push_block(&mut self, block: &EncodedBlock) -> io::Result<()> {
        debug_assert_eq!(block.kind, self.kind);
        self.out.write_all(&block.records)?;
        self.records_crc.update(&block.records);
        self.tag_block(block);
        for &(prefix, n) in &block.prefix_runs {
            self.prefix_counts[prefix as usize] += u64::from(n);
        }
        for &(index, count) in &block.overflow {
            let entry = format::encode_overflow(self.record_count + u64::from(index), count);
            self.overflow.extend_from_slice(&entry);
        }
        self.record_count += block.len() as u64;
        Ok(())
    }

    /// Records written so far.
    pub fn record_count(&self) -> u64 {
        self.record_count
    }

    /// Records per prefix so far.
    pub fn prefix_counts(&self) -> &[u64] {
        &self.prefix_counts
    }

    /// Flushes the records written so far and hands back the writer, the records per prefix and
    /// the encoded overflow entries, so a merge can read them again.
    pub fn into_parts(self) -> io::Result<(W, Vec<u64>, Vec<u8>)> {
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((out, self.prefix_counts, self.overflow))
    }

    /// Writes the overflow table, the offset and tag tables and the header; returns the inner writer
    /// (flushed, not yet synced) and the header written.
    pub fn finish(mut self, label: &str, build_time: u64) -> io::Result<(W, Header)> {
        self.out.write_all(&self.overflow)?;
        if let Some(prefix) = self.open_prefix.take() {
            self.tags[prefix as usize] = self.tag.finish();
        }
        let table = format::encode_table(&self.prefix_counts);
        let tags = format::encode_tags(&self.tags);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&table);
        crc.update(&tags);
        crc.combine(&self.records_crc);
        crc.update(&self.overflow);
        let header = Header {
            kind: self.kind,
            record_count: self.record_count,
            overflow_count: (self.overflow.len() / format::OVERFLOW_ENTRY_LEN) as u64,
            build_time,
            label: label.to_owned(),
            body_crc: crc.finalize(),
        };
        self.out
            .seek(SeekFrom::Start(format::TABLE_OFFSET as u64))?;
        self.out.write_all(&table)?;
        self.out.write_all(&tags)?;
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header.encode())?;
        let out = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((out, header))
    }
}

/// A file being written under a temporary name next to its final path. Dropping it without
/// [`AtomicFile::commit`] deletes the temporary file, so the final path only ever holds a
/// complete file (or whatever it held before).
pub struct AtomicFile {
    /// The temporary file, deleted on drop.
    temp: tempfile::NamedTempFile,
    /// Where it goes on commit.
    target: PathBuf,
}

impl AtomicFile {
    /// Creates a temporary file in the directory of `target`, first removing that directory's
    /// leftovers of killed runs ([`remove_stale_temp_files`]). The file is created with mode
    /// `0666` less the umask (`0644` typically), so a `serve` running as another user can read
    /// the committed index, and holds an exclusive `flock` while open, so no other run takes it
    /// for a leftover.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let dir = parent_dir(target);
        remove_stale_temp_files(dir);
        let temp = locked_temp_file(dir, TEMP_PREFIX, 0o666)?;
        Ok(AtomicFile {
            temp,
            target: target.to_owned(),
        })
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.temp.as_file()
    }

    /// Path of the temporary file (for scratch files that go next to it).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Syncs the file (when `fsync`), renames it over the target and syncs the directory.
    pub fn commit(self, fsync: bool) -> io::Result<()> {
        if fsync {
            self.temp.as_file().sync_all()?;
        }
        let dir = parent_dir(&self.target).to_owned();
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        // Make the rename itself durable; not every filesystem allows syncing a directory.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Name prefix of the temporary file an index is written to before its rename.
pub const TEMP_PREFIX: &str = ".hibp-mirror-tmp-";

/// Name prefix of the external sort's run files (next to the output).
pub const RUN_PREFIX: &str = ".hibp-mirror-run-";

/// Leftovers younger than this are never removed: a live run may have created the file an
/// instant ago and not yet locked it.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Creates a new file `dir/PREFIX<random>` (exclusively: never an existing file or symlink) with
/// `mode` less the umask, and takes an exclusive `flock` on it that lasts while it is open: the
/// mark of a live run that [`remove_stale_temp_files`] respects.
pub fn locked_temp_file(
    dir: &Path,
    prefix: &str,
    mode: u32,
) -> io::Result<tempfile::NamedTempFile> {
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    rustix::fs::flock(temp.as_file(), FlockOperation::NonBlockingLockExclusive)?;
    Ok(temp)
}

/// Removes the leftovers of killed runs from `dir`: regular files named [`TEMP_PREFIX`]* or
/// [`RUN_PREFIX`]* that are older than a minute and whose `flock` nobody holds (a live run holds
/// its files' locks until it is done with them; the kernel drops them when a process dies, even
/// by `kill -9`). Never follows symlinks. Returns how many were removed; failures are skipped.
pub fn remove_stale_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) || name.starts_with(RUN_PREFIX)) {
            continue;
        }
        let path = entry.path();
        if remove_if_stale(&path).unwrap_or(false) {
            tracing::info!(path = %path.display(), "removed a temporary file left by a killed run");
            removed += 1;
        }
    }
    removed
}

fn remove_if_stale(path: &Path) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    let old = SystemTime::now()
        .duration_since(meta.modified()?)
        .is_ok_and(|age| age >= STALE_AFTER);
    if !meta.file_type().is_file() || !old {
        return Ok(false);
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(false); // a live run holds it
    }
    // Still the file that was locked (not replaced in between)?
    let (locked, now) = (file.metadata()?, std::fs::symlink_metadata(path)?);
    if (locked.dev(), locked.ino()) != (now.dev(), now.ino()) {
        return Ok(false);
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Builds a complete index in memory from sorted `(hash, count)` pairs (for tests and the bundled
/// sample). Panics if the pairs are not strictly increasing.
pub fn build_in_memory<'a>(
    kind: HashKind,
    entries: impl IntoIterator<Item = (&'a [u8], u32)>,
    label: &str,
    build_time: u64,
) -> Vec<u8> {
    let mut block = EncodedBlock::with_capacity(kind, 1024);
    let mut previous: Option<&[u8]> = None;
    for (hash, count) in entries {
        assert!(previous < Some(hash), "entries must be strictly increasing");
        previous = Some(hash);
        block.push(hash, count);
    }
    let mut writer = IndexWriter::new(io::Cursor::new(Vec::new()), kind).expect("in memory");
    writer.push_block(&block).expect("in memory");
    let (cursor, _) = writer.finish(label, build_time).expect("in memory");
    cursor.into_inner()
}

#[cfg(all(test, target_os = "linux"))]
mod permission_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::AtomicFile;

    #[test]
    fn committed_files_are_readable_as_the_umask_allows() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.idx");
        AtomicFile::create(&target).unwrap().commit(false).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644 & !umask, "umask {umask:o}");
    }
}

#[cfg(test)]
mod tag_tests {
    use super::{EncodedBlock, IndexWriter};
    use crate::hash::HashKind;

    /// Sorted `(hash, count)` pairs over a few prefixes, some counts escaped (above 4,094).
    fn entries(kind: HashKind) -> Vec<(Vec<u8>, u32)> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out: Vec<(Vec<u8>, u32)> = (0..3000)
            .map(|_| {
                let mut hash: Vec<u8> = (0..kind.byte_len()).map(|_| next() as u8).collect();
                // Eight neighbouring prefixes, so runs are whole prefixes of ~375 records.
                hash[0] = 0xAB;
                hash[1] = 0xCD;
                hash[2] = (hash[2] & 0x7F) + 0x10;
                let count = match next() % 10 {
                    0 => 4_095 + (next() % 1_000_000) as u32,
                    _ => 1 + (next() % 4_000) as u32,
                };
                (hash, count)
            })
            .collect();
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The tag of `records` (all of one prefix) from the definition: XXH3-64 of the kind code
    /// followed by every full hash and its count (u32 LE).
    fn canonical_tag(kind: HashKind, records: &[(Vec<u8>, u32)]) -> u64 {
        let mut bytes = vec![match kind {
            HashKind::Sha1 => 1u8,
            HashKind::Ntlm => 2,
        }];
        for (hash, count) in records {
            bytes.extend_from_slice(hash);
            bytes.extend_from_slice(&count.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    #[test]
    fn tags_hashed_while_pushing_equal_the_definition_and_the_second_pass() {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            let entries = entries(kind);
            let mut tagged = EncodedBlock::tagged(kind, entries.len());
            let mut plain = EncodedBlock::with_capacity(kind, entries.len());
            for (hash, count) in &entries {
                tagged.push(hash, *count);
                plain.push(hash, *count);
            }
            tagged.compute_interior_tags();
            plain.compute_interior_tags();
            let prefixes: Vec<u32> = tagged.prefix_runs.iter().map(|&(p, _)| p).collect();
            assert_eq!(prefixes.len(), 8, "{kind}");
            let expected: Vec<u64> = prefixes[1..prefixes.len() - 1]
                .iter()
                .map(|&p| {
                    let run: Vec<_> = entries
                        .iter()
                        .filter(|(h, _)| crate::hash::prefix_of(h) == p)
                        .cloned()
                        .collect();
                    canonical_tag(kind, &run)
                })
                .collect();
            assert_eq!(tagged.interior_tags, expected, "{kind}");
            assert_eq!(plain.interior_tags, expected, "{kind}");
            // And the files written from either block are the same bytes.
            let write = |block: &EncodedBlock| {
                let mut writer = IndexWriter::new(std::io::Cursor::new(Vec::new()), kind).unwrap();
                writer.push_block(block).unwrap();
                writer.finish("t", 1).unwrap().0.into_inner()
            };
            assert_eq!(write(&tagged), write(&plain), "{kind}");
        }
    }
}
