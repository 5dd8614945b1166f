//! Import inputs and how they are cut into chunks of whole lines.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use super::parse::LineShape;
use crate::hash::{Prefix, PREFIX_HEX_LEN};

/// Target size of one chunk of dump text. Big enough to amortise per-chunk work, small enough
/// that a few chunks in flight per thread keep the importer's memory to tens of MiB.
pub(crate) const CHUNK_BYTES: usize = 4 << 20;

/// One thing to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A plain-text dump, read in chunks.
    File(PathBuf),
    /// A gzip-compressed dump (one or more concatenated gzip members).
    Gzip(PathBuf),
    /// A dump on standard input.
    Stdin,
    /// A directory of `<PREFIX>.txt` range files, as the official downloader's `-s false` writes.
    RangeDir(PathBuf),
}

impl Input {
    /// Classifies a command-line argument: `-` is stdin, a directory is a range directory, a
    /// name ending in `.gz` is gzip, anything else a plain dump.
    pub fn from_arg(arg: &Path) -> Input {
        if arg.as_os_str() == "-" {
            Input::Stdin
        } else if arg.is_dir() {
            Input::RangeDir(arg.to_owned())
        } else if arg
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        {
            Input::Gzip(arg.to_owned())
        } else {
            Input::File(arg.to_owned())
        }
    }

    /// How the input is named in messages.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) | Input::Gzip(p) | Input::RangeDir(p) => p.display().to_string(),
            Input::Stdin => "stdin".into(),
        }
    }
}

/// A run of whole lines from one file, with what the consumer needs to number them.
pub(crate) struct Chunk {
    /// The file the lines come from, as named in error messages.
    pub file: Arc<str>,
    /// Whether this is the file's first chunk (line numbers restart at 1).
    pub starts_file: bool,
    /// How the lines name their hash.
    pub shape: LineShape,
    /// The text. Files are read, not mapped: a mapping would count the whole dump as resident
    /// memory and fault page by page, and a read costs one copy that parsing hides.
    pub data: Vec<u8>,
    /// Input bytes this chunk accounts for, for progress (compressed bytes for gzip).
    pub source_bytes: u64,
}

/// Something went wrong reading an input.
#[derive(Debug)]
pub(crate) struct InputError {
    /// The file concerned.
    pub file: String,
    /// What happened.
    pub source: io::Error,
}

/// Total input size in bytes where it is known up front (not for stdin).
pub(crate) fn known_size(input: &Input) -> Option<u64> {
    match input {
        Input::File(p) | Input::Gzip(p) => fs::metadata(p).ok().map(|m| m.len()),
        Input::Stdin => None,
        Input::RangeDir(dir) => Some(
            range_files(dir)
                .ok()?
                .0
                .iter()
                .filter_map(|(_, p)| fs::metadata(p).ok())
                .map(|m| m.len())
                .sum(),
        ),
    }
}

/// Cuts every input, in order, into chunks and hands each to `emit`; stops early when `emit`
/// returns `false` (the consumer has gone away). Returns the names of files skipped in range
/// directories because they are not `<PREFIX>.txt`.
pub(crate) fn produce_chunks(
    inputs: &[Input],
    pool: &BufferPool,
    mut emit: impl FnMut(Result<Chunk, InputError>) -> bool,
) -> Vec<String> {
    let mut skipped = Vec::new();
    for input in inputs {
        let name: Arc<str> = input.name().into();
        let fail = |source| InputError {
            file: name.to_string(),
            source,
        };
        let keep_going = match input {
            Input::File(path) => match File::open(path) {
                Ok(file) => cut_stream(file, &name, None, pool, &mut emit),
                Err(e) => emit(Err(fail(e))),
            },
            Input::Gzip(path) => match File::open(path) {
                Ok(file) => {
                    let counter = CountingReader::new(file);
                    let bytes_read = counter.count.clone();
                    let decoder =
                        MultiGzDecoder::new(io::BufReader::with_capacity(1 << 16, counter));
                    cut_stream(decoder, &name, Some(bytes_read), pool, &mut emit)
                }
                Err(e) => emit(Err(fail(e))),
            },
            Input::Stdin => cut_stream(io::stdin().lock(), &name, None, pool, &mut emit),
            Input::RangeDir(dir) => match range_files(dir) {
                Ok((files, others)) => {
                    skipped.extend(others);
                    files.into_iter().all(|(prefix, path)| {
                        let file: Arc<str> = path.display().to_string().into();
                        emit(match fs::read(&path) {
                            Ok(bytes) => Ok(Chunk {
                                file,
                                starts_file: true,
                                shape: LineShape::Suffix(prefix),
                                source_bytes: bytes.len() as u64,
                                data: bytes,
                            }),
                            Err(source) => Err(InputError {
                                file: file.to_string(),
                                source,
                            }),
                        })
                    })
                }
                Err(e) => emit(Err(fail(e))),
            },
        };
        if !keep_going {
            break;
        }
    }
    skipped
}

/// A range directory's `<PREFIX>.txt` files sorted by prefix, and the names of other files.
type RangeListing = (Vec<(Prefix, PathBuf)>, Vec<String>);

fn range_files(dir: &Path) -> io::Result<RangeListing> {
    let mut files = Vec::new();
    let mut others = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let prefix = name
            .strip_suffix(".txt")
            .filter(|stem| stem.len() == PREFIX_HEX_LEN)
            .and_then(|stem| Prefix::parse(stem.as_bytes()).ok());
        match prefix {
            Some(prefix) => files.push((prefix, entry.path())),
            None => others.push(entry.path().display().to_string()),
        }
    }
    files.sort_by_key(|(prefix, _)| *prefix);
    others.sort();
    Ok((files, others))
}

fn cut_stream(
    mut reader: impl Read,
    name: &Arc<str>,
    compressed: Option<Arc<std::sync::atomic::AtomicU64>>,
    pool: &BufferPool,
    emit: &mut impl FnMut(Result<Chunk, InputError>) -> bool,
) -> bool {
    let mut carry: Vec<u8> = Vec::new();
    let mut first = true;
    let mut reported = 0u64;
    loop {
        let mut buf = pool.take();
        buf.extend_from_slice(&carry);
        carry.clear();
        // `take` + `read_to_end` fills spare capacity without zeroing it first.
        let want = CHUNK_BYTES.saturating_sub(buf.len()).max(1 << 16) as u64;
        let before = buf.len();
        let eof = loop {
            match (&mut reader).take(want).read_to_end(&mut buf) {
                Ok(n) => break (n as u64) < want,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return emit(Err(InputError {
                        file: name.to_string(),
                        source,
                    }))
                }
            }
        };
        if !eof {
            match memchr::memrchr(b'\n', &buf[before.min(buf.len())..]) {
                Some(i) => carry.extend_from_slice(&buf[before + i + 1..]),
                None => {
                    // One line longer than a chunk: keep reading until it ends.
                    carry = buf;
                    continue;
                }
            }
            buf.truncate(buf.len() - carry.len());
        }
        let source_bytes = match &compressed {
            Some(count) => {
                let now = count.load(std::sync::atomic::Ordering::Relaxed);
                now - std::mem::replace(&mut reported, now)
            }
            None => buf.len() as u64,
        };
        if !buf.is_empty() || first {
            let chunk = Chunk {
                file: name.clone(),
                starts_file: first,
                shape: LineShape::FullHash,
                data: buf,
                source_bytes,
            };
            first = false;
            if !emit(Ok(chunk)) {
                return false;
            }
        }
        if eof {
            return true;
        }
    }
}

/// Chunk buffers handed back by the parsers for reuse, so reading never waits on fresh,
/// zero-filled allocations.
pub(crate) struct BufferPool {
    /// Returned buffers.
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
}

/// The parsers' end of a [`BufferPool`].
pub(crate) type BufferReturn = std::sync::mpsc::Sender<Vec<u8>>;

impl BufferPool {
    /// A pool and the sender the parsers return buffers through.
    pub(crate) fn new() -> (BufferPool, BufferReturn) {
        let (tx, rx) = std::sync::mpsc::channel();
        (BufferPool { returned: rx }, tx)
    }

    fn take(&self) -> Vec<u8> {
        match self.returned.try_recv() {
            Ok(mut buf) if buf.capacity() >= CHUNK_BYTES => {
                buf.clear();
                buf
            }
            _ => Vec::with_capacity(CHUNK_BYTES + (1 << 16)),
        }
    }
}

/// Counts the bytes read through it, so gzip progress can follow the compressed file.
struct CountingReader<R> {
    /// The underlying reader.
    inner: R,
    /// Bytes read so far, shared with the chunk producer.
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R> CountingReader<R> {
    fn new(inner: R) -> Self {
        CountingReader {
            inner,
            count: Arc::default(),
        }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}
