//! The importer: dump text in (files, gzip, stdin, per-prefix range directories), one index out.
//!
//! Three stages run at once with bounded queues between them, so memory stays bounded whatever
//! the input size: a reader thread cuts inputs into chunks of whole lines ([`input`]), rayon
//! parses batches of chunks in parallel into encoded records ([`parse`]), and a writer thread
//! appends them in order to a temporary file. Sorted input (the normal "ordered by hash" dump)
//! streams straight through. On the first record out of order the records written so far become
//! the first run of an external sort ([`sort`]); the rest is sorted in bounded memory, spilled
//! and merged. Nothing appears under the output name until the new index is complete and synced.

mod input;
mod parse;
mod sort;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rayon::prelude::*;

pub use input::Input;

use self::input::{Chunk, InputError};
use self::parse::{LineFault, ParsedChunk};
use self::sort::{Location, PartialIndex, SortError, Sorter};
use crate::format::{self, Header};
use crate::hash::{HashKind, MAX_HASH_LEN, PREFIX_COUNT};
use crate::writer::{AtomicFile, IndexWriter};

/// Default memory for in-memory sort runs when the input is unsorted.
pub const DEFAULT_SORT_MEMORY: usize = 96 << 20;

/// Chunks queued between the reader and the parsers.
const CHUNK_QUEUE: usize = 4;

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Inputs, read in order.
    pub inputs: Vec<Input>,
    /// Where the index goes; replaced atomically.
    pub output: PathBuf,
    /// Hash kind; detected from the first line when `None`.
    pub kind: Option<HashKind>,
    /// Memory for sort runs when the input is not sorted.
    pub sort_memory: usize,
    /// Progress display; `ProgressBar::hidden()` for none.
    pub progress: ProgressBar,
    /// Fsync the index before renaming it into place (crash-safe). Turning it off is only for
    /// scratch builds: after a power loss the new name may hold an incomplete file.
    pub fsync: bool,
}

impl ImportOptions {
    /// Options with defaults: kind detected, default sort memory, no progress display.
    pub fn new(inputs: Vec<Input>, output: impl Into<PathBuf>) -> Self {
        ImportOptions {
            inputs,
            output: output.into(),
            kind: None,
            sort_memory: DEFAULT_SORT_MEMORY,
            progress: ProgressBar::hidden(),
            fsync: true,
        }
    }
}

/// What an import produced.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The header written.
    pub header: Header,
    /// Prefixes holding at least one record.
    pub prefixes_present: usize,
    /// Size of the index file in bytes.
    pub file_len: u64,
    /// Input bytes read (compressed bytes for gzip).
    pub input_bytes: u64,
    /// Input lines read.
    pub lines: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether the input was already sorted (no external sort needed).
    pub streamed: bool,
    /// Sorted runs spilled to disk (0 when streamed).
    pub spilled_runs: usize,
    /// Files in range directories that were ignored because they are not `<PREFIX>.txt`.
    pub skipped_files: Vec<String>,
}

impl ImportSummary {
    /// Prefixes without any record; real downloads sometimes miss some.
    pub fn prefixes_empty(&self) -> usize {
        PREFIX_COUNT - self.prefixes_present
    }

    /// Index bytes per record, everything included.
    pub fn bytes_per_record(&self) -> f64 {
        self.file_len as f64 / self.header.record_count.max(1) as f64
    }
}

/// Why an import failed. The output path is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A bad line: `FILE:LINE: what was expected, what was found`.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The input file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What was expected and what was found.
        message: String,
    },
    /// An input could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The input.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The output (or a scratch file next to it) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No inputs were given.
    #[error("no input given")]
    NoInput,
    /// The inputs hold no lines, so the kind cannot be told (pass `--kind` to build an empty index).
    #[error("the input is empty; pass --kind to build an empty index")]
    Empty,
}

/// Imports `options.inputs` into `options.output`.
pub fn import(options: &ImportOptions) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    if options.inputs.is_empty() {
        return Err(ImportError::NoInput);
    }
    let known: Option<u64> = options.inputs.iter().map(input::known_size).sum();
    if let Some(total) = known {
        options.progress.set_length(total);
    }
    let write_err = |source| ImportError::Write {
        path: options.output.clone(),
        source,
    };
    let out = AtomicFile::create(&options.output).map_err(write_err)?;
    let scratch_dir = out
        .temp_path()
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);

    let (chunk_tx, chunk_rx) = sync_channel::<Result<Chunk, InputError>>(CHUNK_QUEUE);
    let (batch_tx, batch_rx) = sync_channel::<Vec<Parsed>>(1);
    let batch_len = 2 * rayon::current_num_threads();

    // The parser settles the kind from the first line and sends it once; the writer waits for it.
    // If the parser stops before (no input, a read error), the writer falls back to the given kind.
    let (kind_tx, kind_rx) = sync_channel::<Option<HashKind>>(1);
    let (consumed, skipped) = std::thread::scope(|scope| {
        let (pool, pool_return) = input::BufferPool::new();
        let reader = scope.spawn(move || {
            input::produce_chunks(&options.inputs, &pool, |chunk| chunk_tx.send(chunk).is_ok())
        });
        let out = &out;
        let scratch_dir = &scratch_dir;
        let writer = scope.spawn(move || {
            let kind = kind_rx.recv().unwrap_or(options.kind);
            consume(batch_rx, kind, out, scratch_dir, options)
        });
        let parsed = parse_batches(
            &chunk_rx,
            batch_len,
            options.kind,
            kind_tx,
            &batch_tx,
            &pool_return,
        );
        drop(batch_tx);
        drop(chunk_rx);
        let consumed = writer.join().expect("writer thread panicked");
        let skipped = reader.join().expect("reader thread panicked");
        (parsed.and(consumed), skipped)
    });
    let mut consumed = consumed?;
    let header = consumed
        .writer
        .take()
        .map(|w| w.finish(&label(&options.inputs), format::now_unix()))
        .transpose()
        .map_err(write_err)?
        .map(|(_, header)| header)
        .ok_or(ImportError::Empty)?;
    let merged = consumed.merged.take();
    let file_len = header.expected_file_len().unwrap_or(0);
    match merged {
        Some(merged) => merged.commit(options.fsync).map_err(write_err)?,
        None => out.commit(options.fsync).map_err(write_err)?,
    }
    options.progress.finish_and_clear();
    Ok(ImportSummary {
        prefixes_present: consumed.prefixes_present,
        file_len,
        input_bytes: consumed.input_bytes,
        lines: consumed.lines,
        elapsed: started.elapsed(),
        streamed: consumed.spilled_runs.is_none(),
        spilled_runs: consumed.spilled_runs.unwrap_or(0),
        skipped_files: skipped,
        header,
    })
}

/// A parsed chunk with what the writer needs to number its lines.
struct Parsed {
    /// The file the chunk came from.
    file: Arc<str>,
    /// Whether line numbers restart.
    starts_file: bool,
    /// Input bytes it accounts for.
    source_bytes: u64,
    /// The records, or the first bad line.
    result: Result<ParsedChunk, LineFault>,
}

/// Pulls chunks, parses them a batch at a time on the rayon pool, and passes batches on in order.
/// Settles the hash kind from the first line unless it was given.
fn parse_batches(
    chunks: &Receiver<Result<Chunk, InputError>>,
    batch_len: usize,
    given_kind: Option<HashKind>,
    kind_tx: std::sync::mpsc::SyncSender<Option<HashKind>>,
    batches: &std::sync::mpsc::SyncSender<Vec<Parsed>>,
    pool_return: &input::BufferReturn,
) -> Result<(), ImportError> {
    let mut kind = given_kind;
    // Taken when the kind is settled, so it is sent exactly once.
    let mut kind_tx = Some(kind_tx);
    loop {
        let mut batch = Vec::with_capacity(batch_len);
        for chunk in chunks.iter().take(batch_len) {
            let chunk = chunk.map_err(|e| ImportError::Read {
                file: e.file,
                source: e.source,
            })?;
            batch.push(chunk);
        }
        if batch.is_empty() {
            return Ok(());
        }
        if kind.is_none() {
            let first = batch.iter().find(|c| !c.data.is_empty());
            if let Some(first) = first {
                kind = parse::detect_kind(&first.data, first.shape);
                if kind.is_none() {
                    if let Some(tx) = kind_tx.take() {
                        let _ = tx.send(None);
                    }
                    return Err(ImportError::Line {
                        file: first.file.to_string(),
                        line: 1,
                        message: "expected HASH:COUNT with a 40-hex SHA-1 or 32-hex NTLM hash \
                                  (or a 35/27-hex suffix in a range file), found neither"
                            .into(),
                    });
                }
            }
        }
        let Some(kind) = kind else { continue };
        if let Some(tx) = kind_tx.take() {
            let _ = tx.send(Some(kind));
        }
        let parsed: Vec<Parsed> = batch
            .into_par_iter()
            .map_with(pool_return.clone(), |pool_return, chunk| {
                let result = parse::parse_chunk(&chunk.data, kind, chunk.shape);
                let _ = pool_return.send(chunk.data);
                Parsed {
                    result,
                    file: chunk.file,
                    starts_file: chunk.starts_file,
                    source_bytes: chunk.source_bytes,
                }
            })
            .collect();
        if batches.send(parsed).is_err() {
            // The writer stopped early; its error is the one to report.
            return Ok(());
        }
    }
}

/// What the writer thread hands back.
#[derive(Default)]
struct Consumed {
    /// The writer holding the complete records, ready to finish.
    writer: Option<IndexWriter<File>>,
    /// The second temporary file, when an external sort merged into it.
    merged: Option<AtomicFile>,
    /// Non-empty prefixes.
    prefixes_present: usize,
    /// Input bytes consumed.
    input_bytes: u64,
    /// Lines consumed.
    lines: u64,
    /// Runs spilled, when the input needed sorting.
    spilled_runs: Option<usize>,
}

/// Where the writer thread puts records.
enum Sink {
    /// The input has been in order so far: records go straight into the index.
    Streaming(IndexWriter<File>),
    /// The input turned out unsorted: the external sort takes every record from here on, and the
    /// records already streamed become its first run.
    Sorting(Sorter, PartialIndex),
}

/// The writer thread: appends sorted chunks, or switches to the external sort.
fn consume(
    batches: Receiver<Vec<Parsed>>,
    kind: Option<HashKind>,
    out: &AtomicFile,
    scratch_dir: &Path,
    options: &ImportOptions,
) -> Result<Consumed, ImportError> {
    let write_err = |source| ImportError::Write {
        path: options.output.clone(),
        source,
    };
    let Some(kind) = kind else {
        // Drain so the parser is not blocked; the error comes from the parser.
        for _ in batches.iter() {}
        return Ok(Consumed::default());
    };
    let file = out.file().try_clone().map_err(write_err)?;
    let mut sink = Sink::Streaming(IndexWriter::new(file, kind).map_err(write_err)?);
    let mut files: Vec<Arc<str>> = Vec::new();
    let mut line_base = 0u64;
    let mut last: Option<[u8; MAX_HASH_LEN]> = None;
    let mut consumed = Consumed::default();
    for parsed in batches.iter().flatten() {
        if parsed.starts_file || files.is_empty() {
            files.push(parsed.file.clone());
            line_base = 0;
        }
        let file_id = (files.len() - 1) as u32;
        let chunk = parsed.result.map_err(|fault| ImportError::Line {
            file: parsed.file.to_string(),
            line: line_base + fault.line,
            message: fault.message,
        })?;
        let first = Location {
            file: file_id,
            line: line_base + 1,
        };
        let mut start_sorting = false;
        if let (Sink::Streaming(writer), true) = (&mut sink, chunk.lines > 0) {
            let in_order = match &last {
                None => true,
                Some(last) => match parse::cmp_hash(&chunk.first, last) {
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => {
                        return Err(ImportError::Line {
                            file: parsed.file.to_string(),
                            line: first.line,
                            message: "expected a new hash, found the same hash as the line \
                                      before (duplicate)"
                                .into(),
                        })
                    }
                    std::cmp::Ordering::Less => false,
                },
            };
            if in_order && chunk.first_unsorted.is_none() {
                writer.push_block(&chunk.block).map_err(write_err)?;
                last = Some(chunk.last);
            } else {
                start_sorting = true;
            }
        }
        sink = match sink {
            Sink::Streaming(writer) if start_sorting => {
                let (file, prefix_counts, overflow) = writer.into_parts().map_err(write_err)?;
                let partial = PartialIndex {
                    file,
                    prefix_counts,
                    overflow,
                };
                Sink::Sorting(Sorter::new(kind, scratch_dir, options.sort_memory), partial)
            }
            sink => sink,
        };
        if let Sink::Sorting(sorter, _) = &mut sink {
            sorter
                .push_block(&chunk.block, first)
                .map_err(|e| sort_error(e, &files, &options.output))?;
        }
        line_base += chunk.lines;
        consumed.lines += chunk.lines;
        consumed.input_bytes += parsed.source_bytes;
        options.progress.inc(parsed.source_bytes);
    }

    let writer = match sink {
        Sink::Streaming(writer) => writer,
        Sink::Sorting(sorter, partial) => {
            let merged = AtomicFile::create(&options.output).map_err(write_err)?;
            let file = merged.file().try_clone().map_err(write_err)?;
            let mut merged_writer = IndexWriter::new(file, kind).map_err(write_err)?;
            let runs = sorter
                .merge_into(partial, &mut merged_writer)
                .map_err(|e| sort_error(e, &files, &options.output))?;
            consumed.spilled_runs = Some(runs);
            consumed.merged = Some(merged);
            merged_writer
        }
    };
    consumed.prefixes_present = writer.prefix_counts().iter().filter(|&&c| c > 0).count();
    consumed.writer = Some(writer);
    Ok(consumed)
}

fn sort_error(e: SortError, files: &[Arc<str>], output: &Path) -> ImportError {
    match e {
        SortError::Io(source) => ImportError::Write {
            path: output.to_owned(),
            source,
        },
        SortError::Duplicate { earlier, later } => ImportError::Line {
            file: files[later.file as usize].to_string(),
            line: later.line,
            message: match earlier {
                Some(at) => format!(
                    "expected a new hash, found a duplicate of {}:{}",
                    files[at.file as usize], at.line
                ),
                None => "expected a new hash, found a duplicate of an earlier line".into(),
            },
        },
    }
}

/// Parses in-memory dump text (`HASH:COUNT` lines of one kind, in any order) into encoded
/// records, exactly as the importer parses each chunk; `file` names the text in errors. Useful for
/// benchmarks and for callers holding a small dump in memory.
pub fn parse_dump_text(
    text: &[u8],
    kind: HashKind,
    file: &str,
) -> Result<crate::writer::EncodedBlock, ImportError> {
    parse::parse_chunk(text, kind, parse::LineShape::FullHash)
        .map(|chunk| chunk.block)
        .map_err(|fault| ImportError::Line {
            file: file.to_owned(),
            line: fault.line,
            message: fault.message,
        })
}

/// A bad line in text parsed by [`parse_range_body`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BodyLineError {
    /// 1-based line number.
    pub line: u64,
    /// What was expected and what was found.
    pub message: String,
}

/// Parses the `/range` body (or range file) of `prefix`: `SUFFIX:COUNT` lines of `kind`, with
/// the importer's rules (any line ending, either case, counts 1..=4294967295, no duplicates).
/// Returns the records in body order and the first line out of order, if any.
pub fn parse_range_body(
    text: &[u8],
    kind: HashKind,
    prefix: crate::hash::Prefix,
) -> Result<(crate::writer::EncodedBlock, Option<u64>), BodyLineError> {
    parse::parse_chunk(text, kind, parse::LineShape::Suffix(prefix))
        .map(|chunk| (chunk.block, chunk.first_unsorted))
        .map_err(|fault| BodyLineError {
            line: fault.line,
            message: fault.message,
        })
}

/// The source label stored in the header: the input names.
fn label(inputs: &[Input]) -> String {
    let names: Vec<String> = inputs.iter().map(Input::name).collect();
    format!("import of {}", names.join(", "))
}
