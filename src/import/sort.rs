//! External sort for unsorted input: bounded in-memory runs spilled to disk, then a k-way merge.
//!
//! Records carry their source location so a duplicate can be blamed on a file and line.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rayon::slice::ParallelSliceMut;

use crate::format;
use crate::hash::{HashKind, MAX_HASH_LEN, PREFIX_COUNT};
use crate::writer::{EncodedBlock, IndexWriter};

/// The layout of one spilled record (private to this module; run files never outlive an import):
/// full hash zero-padded to `MAX_HASH_LEN` bytes, then count (u32 LE), file id (u32 LE) and line
/// (u64 LE).
mod spill {
    use super::{Location, SortRecord};
    use crate::hash::MAX_HASH_LEN;

    /// Byte offset of the count.
    const COUNT_AT: usize = MAX_HASH_LEN;
    /// Byte offset of the file id.
    const FILE_AT: usize = COUNT_AT + 4;
    /// Byte offset of the line number.
    const LINE_AT: usize = FILE_AT + 4;
    /// Bytes of one spilled record.
    pub(super) const RECORD_LEN: usize = LINE_AT + 8;

    /// Encodes a record that came from `at`.
    pub(super) fn encode(record: &SortRecord, at: Location) -> [u8; RECORD_LEN] {
        let mut bytes = [0u8; RECORD_LEN];
        bytes[..COUNT_AT].copy_from_slice(&record.hash);
        bytes[COUNT_AT..FILE_AT].copy_from_slice(&record.count.to_le_bytes());
        bytes[FILE_AT..LINE_AT].copy_from_slice(&at.file.to_le_bytes());
        bytes[LINE_AT..].copy_from_slice(&at.line.to_le_bytes());
        bytes
    }

    /// Decodes a record written by [`encode`].
    pub(super) fn decode(bytes: &[u8; RECORD_LEN]) -> SortRecord {
        SortRecord {
            hash: bytes[..COUNT_AT].try_into().expect("hash bytes"),
            count: u32::from_le_bytes(bytes[COUNT_AT..FILE_AT].try_into().expect("4 bytes")),
            at: Some(Location {
                file: u32::from_le_bytes(bytes[FILE_AT..LINE_AT].try_into().expect("4 bytes")),
                line: u64::from_le_bytes(bytes[LINE_AT..].try_into().expect("8 bytes")),
            }),
        }
    }
}

/// Records handed to the index writer at a time during the merge.
const MERGE_BLOCK_RECORDS: usize = 1 << 16;

/// Where a record came from: `files[file]`, 1-based `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Location {
    /// Index into the importer's file name table.
    pub file: u32,
    /// 1-based line number in that file.
    pub line: u64,
}

/// A record with its full hash and, when known, where it came from.
#[derive(Debug, Clone, Copy)]
struct SortRecord {
    /// Full hash, zero-padded to 20 bytes.
    hash: [u8; MAX_HASH_LEN],
    /// Breach count.
    count: u32,
    /// Source line; `None` for records already written by the streaming phase.
    at: Option<Location>,
}

/// Why sorting stopped.
#[derive(Debug)]
pub(crate) enum SortError {
    /// Reading or writing run files failed.
    Io(io::Error),
    /// The same hash appears twice; `earlier` is unknown when it was already streamed out.
    Duplicate {
        /// The other occurrence, when known.
        earlier: Option<Location>,
        /// The occurrence being blamed.
        later: Location,
    },
}

impl From<io::Error> for SortError {
    fn from(e: io::Error) -> Self {
        SortError::Io(e)
    }
}

/// Records already streamed into a partial index before the input turned out to be unsorted.
pub(crate) struct PartialIndex {
    /// The partial index file, records starting at `format::RECORDS_OFFSET`.
    pub file: File,
    /// Records per prefix written so far.
    pub prefix_counts: Vec<u64>,
    /// Encoded overflow entries written so far.
    pub overflow: Vec<u8>,
}

/// Collects records in memory, spilling sorted runs to temporary files next to the output.
pub(crate) struct Sorter {
    /// Hash kind of every record.
    kind: HashKind,
    /// Directory for run files (the output's directory, so the space is on the right disk).
    dir: PathBuf,
    /// Records not yet spilled.
    buffer: Vec<SortRecord>,
    /// How many records the buffer may hold.
    capacity: usize,
    /// Spilled runs, deleted on drop.
    runs: Vec<tempfile::NamedTempFile>,
}

impl Sorter {
    /// A sorter that keeps at most about `memory` bytes of records in memory.
    pub fn new(kind: HashKind, dir: &Path, memory: usize) -> Sorter {
        let capacity = (memory / std::mem::size_of::<SortRecord>()).max(1024);
        Sorter {
            kind,
            dir: dir.to_owned(),
            buffer: Vec::new(),
            capacity,
            runs: Vec::new(),
        }
    }

    /// Adds a block whose records come from consecutive lines starting at `first`.
    pub fn push_block(&mut self, block: &EncodedBlock, first: Location) -> Result<(), SortError> {
        let mut line = first.line;
        let mut result = Ok(());
        block.for_each(|hash, count| {
            if result.is_err() {
                return;
            }
            let mut full = [0u8; MAX_HASH_LEN];
            full[..hash.len()].copy_from_slice(hash);
            self.buffer.push(SortRecord {
                hash: full,
                count,
                at: Some(Location {
                    file: first.file,
                    line,
                }),
            });
            line += 1;
            if self.buffer.len() >= self.capacity {
                result = self.spill();
            }
        });
        result
    }

    fn spill(&mut self) -> Result<(), SortError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.buffer.par_sort_unstable_by(|a, b| a.hash.cmp(&b.hash));
        if let Some(pair) = self.buffer.windows(2).find(|w| w[0].hash == w[1].hash) {
            return Err(duplicate(&pair[0], &pair[1]));
        }
        let run = tempfile::Builder::new()
            .prefix(".hibp-mirror-run-")
            .tempfile_in(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, run.as_file());
        for record in &self.buffer {
            let at = record.at.expect("buffered records have a location");
            out.write_all(&spill::encode(record, at))?;
        }
        out.flush()?;
        drop(out);
        self.runs.push(run);
        self.buffer.clear();
        Ok(())
    }

    /// Spills what is left and merges every run, plus `partial`, into `writer`. Returns the
    /// number of sorted runs merged.
    pub fn merge_into<W: Write + Seek>(
        mut self,
        partial: PartialIndex,
        writer: &mut IndexWriter<W>,
    ) -> Result<usize, SortError> {
        self.spill()?;
        let mut sources: Vec<Source> = vec![Source::partial(partial, self.kind)?];
        for run in &self.runs {
            let mut file = run.reopen()?;
            file.seek(SeekFrom::Start(0))?;
            sources.push(Source::Spill(BufReader::with_capacity(1 << 16, file)));
        }
        let mut heads: Vec<Option<SortRecord>> = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            let head = source.next()?;
            if let Some(record) = &head {
                heap.push(Reverse((record.hash, i)));
            }
            heads.push(head);
        }
        let n = self.kind.byte_len();
        let mut block = EncodedBlock::with_capacity(self.kind, MERGE_BLOCK_RECORDS);
        let mut previous: Option<SortRecord> = None;
        while let Some(Reverse((_, i))) = heap.pop() {
            let record = heads[i].take().expect("heap entries have a head");
            if let Some(prev) = &previous {
                if prev.hash == record.hash {
                    return Err(duplicate(prev, &record));
                }
            }
            block.push(&record.hash[..n], record.count);
            if block.len() >= MERGE_BLOCK_RECORDS {
                writer.push_block(&block)?;
                block = EncodedBlock::with_capacity(self.kind, MERGE_BLOCK_RECORDS);
            }
            previous = Some(record);
            heads[i] = sources[i].next()?;
            if let Some(next) = &heads[i] {
                heap.push(Reverse((next.hash, i)));
            }
        }
        writer.push_block(&block)?;
        Ok(sources.len())
    }
}

fn duplicate(a: &SortRecord, b: &SortRecord) -> SortError {
    match (a.at, b.at) {
        (Some(x), Some(y)) => SortError::Duplicate {
            earlier: Some(x.min(y)),
            later: x.max(y),
        },
        (None, Some(y)) | (Some(y), None) => SortError::Duplicate {
            earlier: None,
            later: y,
        },
        (None, None) => unreachable!("streamed records were checked while streaming"),
    }
}

/// A sorted source of records for the merge.
enum Source {
    /// The records streamed out before the input turned out unsorted.
    Partial {
        /// Reader over the partial index's records.
        reader: BufReader<File>,
        /// Records per prefix.
        prefix_counts: Vec<u64>,
        /// Current prefix.
        prefix: usize,
        /// Records left in the current prefix.
        left: u64,
        /// Overflow entries, in ordinal order.
        overflow: Vec<u8>,
        /// Next overflow entry to use.
        next_overflow: usize,
        /// Hash kind.
        kind: HashKind,
    },
    /// A spilled run.
    Spill(BufReader<File>),
}

impl Source {
    fn partial(partial: PartialIndex, kind: HashKind) -> io::Result<Source> {
        let mut file = partial.file;
        file.seek(SeekFrom::Start(format::RECORDS_OFFSET as u64))?;
        Ok(Source::Partial {
            reader: BufReader::with_capacity(1 << 16, file),
            left: partial.prefix_counts[0],
            prefix_counts: partial.prefix_counts,
            prefix: 0,
            overflow: partial.overflow,
            next_overflow: 0,
            kind,
        })
    }

    fn next(&mut self) -> io::Result<Option<SortRecord>> {
        match self {
            Source::Spill(reader) => {
                let mut bytes = [0u8; spill::RECORD_LEN];
                match reader.read_exact(&mut bytes) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                Ok(Some(spill::decode(&bytes)))
            }
            Source::Partial {
                reader,
                prefix_counts,
                prefix,
                left,
                overflow,
                next_overflow,
                kind,
            } => {
                while *left == 0 {
                    *prefix += 1;
                    if *prefix >= PREFIX_COUNT {
                        return Ok(None);
                    }
                    *left = prefix_counts[*prefix];
                }
                *left -= 1;
                let record_len = format::record_len(*kind);
                let mut record = [0u8; format::MAX_RECORD_LEN];
                reader.read_exact(&mut record[..record_len])?;
                let mut hash = [0u8; MAX_HASH_LEN];
                format::decode_record_hash(
                    *prefix as u32,
                    &record[..record_len],
                    &mut hash[..kind.byte_len()],
                );
                let mut count = format::record_inline_count(&record[..record_len]);
                if count == format::COUNT_ESCAPE {
                    let at = *next_overflow * format::OVERFLOW_ENTRY_LEN;
                    count =
                        format::decode_overflow(&overflow[at..at + format::OVERFLOW_ENTRY_LEN]).1;
                    *next_overflow += 1;
                }
                Ok(Some(SortRecord {
                    hash,
                    count,
                    at: None,
                }))
            }
        }
    }
}
