//! The sync state directory: one small file per prefix holding its ETag and gzip-compressed body.
//!
//! Layout: `STATE/kind` names the hash kind the directory belongs to; `STATE/AB/ABCDE` holds
//! prefix `ABCDE` (256 subdirectories of 4,096 files, so no directory gets huge). Each prefix file
//! is `hibp-mirror-state 1\n`, the ETag line (empty when the upstream sent none), then the body as
//! one or more gzip members. Files are written to `.ABCDE.tmp` and renamed, so a prefix file is
//! always either the old version or the new one, never half of each. There is no fsync per file
//! (a million fsyncs would dominate a sync); instead every use checks the gzip CRC, and a file
//! damaged by a power cut is simply treated as missing and fetched again.
//!
//! `STATE/run-in-progress` exists while a sync run is unfinished: prefix files modified after it
//! was created were fetched (or confirmed) by that run, so an interrupted run resumes by skipping
//! them.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flate2::read::MultiGzDecoder;

use crate::hash::{HashKind, Prefix};

/// First line of every prefix file; bump the number on any layout change.
const MAGIC_LINE: &[u8] = b"hibp-mirror-state 1\n";

/// Name of the file recording the directory's hash kind.
const KIND_FILE: &str = "kind";

/// Name of the marker of an unfinished run.
const RUN_MARKER: &str = "run-in-progress";

/// Longest ETag kept; longer ones are not stored (the prefix is then always re-fetched).
const MAX_ETAG_LEN: usize = 512;

/// What is known about a stored prefix without reading its body.
#[derive(Debug, Clone)]
pub struct PrefixMeta {
    /// ETag to send as `If-None-Match`, if the upstream gave one.
    pub etag: Option<String>,
    /// Last time this prefix was fetched or confirmed unchanged (for resuming).
    pub modified: SystemTime,
}

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory operation failed.
    #[error("sync state {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The directory was made for the other hash kind.
    #[error("sync state {} holds {found} ranges, not {wanted}; use another --state directory", path.display())]
    WrongKind {
        /// The state directory.
        path: PathBuf,
        /// Kind recorded in the directory.
        found: String,
        /// Kind of this run.
        wanted: HashKind,
    },
}

/// A sync state directory for one hash kind.
#[derive(Debug, Clone)]
pub struct StateDir {
    /// Root of the directory.
    root: PathBuf,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `root` for `kind`; refuses a directory
    /// made for the other kind.
    pub fn open(root: &Path, kind: HashKind) -> Result<StateDir, StateError> {
        fs::create_dir_all(root).map_err(io_at(root))?;
        let kind_path = root.join(KIND_FILE);
        match fs::read_to_string(&kind_path) {
            Ok(found) if found.trim() == kind.name() => {}
            Ok(found) => {
                return Err(StateError::WrongKind {
                    path: root.to_owned(),
                    found: found.trim().to_owned(),
                    wanted: kind,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::write(&kind_path, format!("{}\n", kind.name())).map_err(io_at(&kind_path))?;
            }
            Err(e) => return Err(io_at(&kind_path)(e)),
        }
        for dir in 0..=0xFFu32 {
            let path = root.join(format!("{dir:02X}"));
            fs::create_dir_all(&path).map_err(io_at(&path))?;
        }
        Ok(StateDir {
            root: root.to_owned(),
        })
    }

    /// Path of the file holding `prefix`.
    pub fn prefix_path(&self, prefix: Prefix) -> PathBuf {
        let hex = prefix.to_hex();
        let name = std::str::from_utf8(&hex).expect("hex is ASCII");
        self.root.join(&name[..2]).join(name)
    }

    fn temp_path(&self, prefix: Prefix) -> PathBuf {
        let hex = prefix.to_hex();
        let name = std::str::from_utf8(&hex).expect("hex is ASCII");
        self.root.join(&name[..2]).join(format!(".{name}.tmp"))
    }

    /// The ETag and modification time of `prefix`, or `None` if it was never stored (or the file
    /// is not a state file, which then counts as missing).
    pub fn read_meta(&self, prefix: Prefix) -> Result<Option<PrefixMeta>, StateError> {
        let path = self.prefix_path(prefix);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .map_err(io_at(&path))?;
        let mut head = [0u8; MAGIC_LINE.len() + MAX_ETAG_LEN + 1];
        let n = read_up_to(&mut file, &mut head).map_err(io_at(&path))?;
        Ok(parse_head(&head[..n]).map(|(etag, _)| PrefixMeta {
            etag: (!etag.is_empty()).then(|| String::from_utf8_lossy(etag).into_owned()),
            modified,
        }))
    }

    /// Stores `prefix` with its ETag and gzip-compressed body, atomically (temp file + rename).
    pub fn write(
        &self,
        prefix: Prefix,
        etag: Option<&str>,
        gz_body: &[u8],
    ) -> Result<(), StateError> {
        let temp = self.temp_path(prefix);
        let etag = etag
            .filter(|e| e.len() <= MAX_ETAG_LEN && !e.contains(['\r', '\n']))
            .unwrap_or("");
        let mut data = Vec::with_capacity(MAGIC_LINE.len() + etag.len() + 1 + gz_body.len());
        data.extend_from_slice(MAGIC_LINE);
        data.extend_from_slice(etag.as_bytes());
        data.push(b'\n');
        data.extend_from_slice(gz_body);
        let mut file = File::create(&temp).map_err(io_at(&temp))?;
        file.write_all(&data).map_err(io_at(&temp))?;
        drop(file);
        let path = self.prefix_path(prefix);
        fs::rename(&temp, &path).map_err(io_at(&path))
    }

    /// Marks `prefix` as confirmed now (after a 304), so a resumed run skips it.
    pub fn touch(&self, prefix: Prefix) -> Result<(), StateError> {
        let path = self.prefix_path(prefix);
        let file = File::options()
            .write(true)
            .open(&path)
            .map_err(io_at(&path))?;
        file.set_modified(SystemTime::now()).map_err(io_at(&path))
    }

    /// The decompressed body of `prefix`: `Ok(None)` if it is missing, `Err` with
    /// [`io::ErrorKind::InvalidData`] inside if the file is damaged (bad header or gzip CRC).
    pub fn read_body(&self, prefix: Prefix) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.prefix_path(prefix);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let Some((_, gz)) = parse_head(&data) else {
            return Err(io_at(&path)(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a hibp-mirror state file",
            )));
        };
        gunzip(gz).map(Some).map_err(io_at(&path))
    }

    /// Deletes the file of `prefix` (a damaged one), so the next run fetches it again.
    pub fn remove(&self, prefix: Prefix) -> Result<(), StateError> {
        let path = self.prefix_path(prefix);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Whether a file exists for `prefix`.
    pub fn contains(&self, prefix: Prefix) -> bool {
        self.prefix_path(prefix).is_file()
    }

    /// Starts a run: returns the start time of an unfinished earlier run to resume (prefix files
    /// modified at or after it are done), or creates the marker and returns `None`.
    pub fn begin_run(&self) -> Result<Option<SystemTime>, StateError> {
        let path = self.root.join(RUN_MARKER);
        match fs::metadata(&path) {
            Ok(meta) => return meta.modified().map(Some).map_err(io_at(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
        fs::write(&path, b"a sync run started here and has not finished\n")
            .map_err(io_at(&path))?;
        Ok(None)
    }

    /// Ends a run that covered every prefix: the next run starts afresh.
    pub fn finish_run(&self) -> Result<(), StateError> {
        let path = self.root.join(RUN_MARKER);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// Splits a state file into `(etag, gzip bytes)`; `None` if it does not start with the magic line.
fn parse_head(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = data.strip_prefix(MAGIC_LINE)?;
    let eol = memchr::memchr(b'\n', rest)?;
    Some((&rest[..eol], &rest[eol + 1..]))
}

/// Decompresses gzip data (all members), checking each member's CRC.
pub fn gunzip(gz: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(gz.len() * 3);
    MultiGzDecoder::new(gz).read_to_end(&mut out)?;
    Ok(out)
}

/// Compresses `body` as one gzip member at a fast level (bodies are re-read once per build).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 2),
        flate2::Compression::fast(),
    );
    enc.write_all(body).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_detection() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), HashKind::Sha1).unwrap();
        let p = Prefix::parse(b"ABCDE").unwrap();
        assert!(state.read_meta(p).unwrap().is_none());
        state.write(p, Some("\"v1\""), &gzip(b"hello")).unwrap();
        assert_eq!(
            state.read_meta(p).unwrap().unwrap().etag.as_deref(),
            Some("\"v1\"")
        );
        assert_eq!(state.read_body(p).unwrap().unwrap(), b"hello");
        assert!(state.prefix_path(p).ends_with("AB/ABCDE"));

        // Flip a byte of the compressed body: the CRC check refuses it.
        let path = state.prefix_path(p);
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 10;
        data[last] ^= 0xFF;
        fs::write(&path, data).unwrap();
        assert!(state.read_body(p).is_err());

        assert!(matches!(
            StateDir::open(dir.path(), HashKind::Ntlm),
            Err(StateError::WrongKind { .. })
        ));
    }

    #[test]
    fn run_marker_resumes_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path(), HashKind::Ntlm).unwrap();
        assert!(state.begin_run().unwrap().is_none());
        assert!(state.begin_run().unwrap().is_some());
        state.finish_run().unwrap();
        assert!(state.begin_run().unwrap().is_none());
    }
}
