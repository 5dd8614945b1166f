//! The served indexes: one hot-swappable slot per hash kind, reloaded from disk on demand, on
//! SIGHUP, or when the file at the configured path is replaced by a rename.
//!
//! Each request loads the current [`Served`] index once (an `ArcSwap` load, lock-free) and keeps
//! it until its body is rendered, so a reload never changes an index under a request. The old
//! mapping is unmapped when the last request holding it is done.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::{ArcSwapOption, Guard};
use hyper::header::HeaderValue;

use crate::format::Header;
use crate::hash::{HashKind, Prefix};
use crate::index::{Index, OpenPathError};
use crate::mmap::IndexBytes;
use crate::sample;

/// Where a kind's index comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexSource {
    /// The bundled sample corpus (never reloaded).
    Sample,
    /// An index file; reloaded when the file at this path is replaced.
    File(PathBuf),
}

impl fmt::Display for IndexSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexSource::Sample => f.write_str("bundled sample"),
            IndexSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Identity of an index file on disk: a rename over the path changes the inode; a copy changes
/// the modification time or length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Device number.
    dev: u64,
    /// Inode number.
    ino: u64,
    /// Modification time, nanoseconds since the epoch.
    mtime_ns: i128,
    /// File length.
    len: u64,
}

impl FileId {
    /// The identity of the file now at `path`.
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        let meta = std::fs::metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            len: meta.len(),
        })
    }
}

/// An index being served, with the response headers that depend only on it (computed once per
/// load, never per request).
pub struct Served {
    /// The index.
    index: Index<IndexBytes>,
    /// Where it came from, for logs and `/healthz`.
    source: IndexSource,
    /// Identity of the file it was loaded from, to notice when the path is replaced.
    file_id: Option<FileId>,
    /// `Last-Modified`: the index build time as an HTTP date.
    last_modified: HeaderValue,
}

impl Served {
    fn new(index: Index<IndexBytes>, source: IndexSource, file_id: Option<FileId>) -> Served {
        let header = index.header();
        let built = UNIX_EPOCH + Duration::from_secs(header.build_time);
        Served {
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(built))
                .expect("HTTP dates are ASCII"),
            index,
            source,
            file_id,
        }
    }

    /// The index.
    pub fn index(&self) -> &Index<IndexBytes> {
        &self.index
    }

    /// The index header.
    pub fn header(&self) -> &Header {
        self.index.header()
    }

    /// Where the index came from.
    pub fn source(&self) -> &IndexSource {
        &self.source
    }

    /// The ETag of `prefix`'s `/range` answer: the kind and the prefix's stored content tag
    /// (`"sha1-<16 hex>"`), so it changes exactly when the prefix's data does, whatever else
    /// changed in the index. `gzip_level` (for gzip bodies) is appended as `-gzN`, since strong
    /// tags must differ between encodings; `weak` (padded bodies: same data, random padding)
    /// gives `W/"..."`. A table lookup and a few bytes of formatting, no allocation but the
    /// header value's own.
    pub fn range_etag(&self, prefix: Prefix, weak: bool, gzip_level: Option<u32>) -> HeaderValue {
        let mut buf = [0u8; 48];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            buf[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        if weak {
            put(b"W/");
        }
        put(b"\"");
        put(self.index.kind().name().as_bytes());
        put(b"-");
        let mut hex = [0u8; 16];
        const_hex::encode_to_slice(self.index.prefix_tag(prefix).to_be_bytes(), &mut hex)
            .expect("16 hex digits");
        put(&hex);
        if let Some(level) = gzip_level {
            put(b"-gz");
            put(itoa::Buffer::new().format(level).as_bytes());
        }
        put(b"\"");
        HeaderValue::from_bytes(&buf[..len]).expect("tag is visible ASCII")
    }

    /// `Last-Modified`: the build time.
    pub fn last_modified(&self) -> &HeaderValue {
        &self.last_modified
    }
}

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Nothing to do: no index configured for the kind, the bundled sample, or the file is the
    /// one already served (or one already refused).
    Unchanged,
    /// A new index is being served.
    Reloaded {
        /// Its record count.
        records: u64,
        /// Its build time, in Unix seconds.
        build_time: u64,
    },
}

/// Why an index could not be (re)loaded. The message names the file and never a hash.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing or unreadable.
    #[error("cannot read index {}: {source}", path.display())]
    Stat {
        /// The configured path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file failed the open-time checks.
    #[error(transparent)]
    Open(#[from] OpenPathError),
    /// The file holds the other kind of hash.
    #[error("{} holds {found} hashes but is configured as the {expected} index", path.display())]
    WrongKind {
        /// The configured path.
        path: PathBuf,
        /// The kind the slot serves.
        expected: HashKind,
        /// The kind in the file.
        found: HashKind,
    },
}

/// One kind's slot.
struct Slot {
    /// The kind the slot serves.
    kind: HashKind,
    /// Where its index comes from; `None` when the kind is not served.
    source: Option<IndexSource>,
    /// The index being served.
    current: ArcSwapOption<Served>,
    /// Identity of the last file refused, so a bad file is logged once, not on every poll.
    refused: Mutex<Option<FileId>>,
    /// Successful reloads, for `/metrics`.
    reloads_ok: AtomicU64,
    /// Refused reloads, for `/metrics`.
    reloads_failed: AtomicU64,
}

/// The indexes a server answers from: SHA-1 and NTLM, each optional and independently reloadable.
pub struct IndexSet {
    /// SHA-1 then NTLM.
    slots: [Slot; 2],
}

impl IndexSet {
    /// Loads the configured indexes; an error on any of them is returned (a server should not
    /// start on a broken index). `None` means the kind is not served.
    pub fn open(
        sha1: Option<IndexSource>,
        ntlm: Option<IndexSource>,
    ) -> Result<IndexSet, LoadError> {
        let set = IndexSet {
            slots: [
                Slot::new(HashKind::Sha1, sha1),
                Slot::new(HashKind::Ntlm, ntlm),
            ],
        };
        for slot in &set.slots {
            if let Some(source) = &slot.source {
                slot.current.store(Some(Arc::new(load(slot.kind, source)?)));
            }
        }
        Ok(set)
    }

    /// The bundled sample for both kinds.
    pub fn sample() -> IndexSet {
        Self::open(Some(IndexSource::Sample), Some(IndexSource::Sample))
            .expect("the bundled sample always loads")
    }

    fn slot(&self, kind: HashKind) -> &Slot {
        match kind {
            HashKind::Sha1 => &self.slots[0],
            HashKind::Ntlm => &self.slots[1],
        }
    }

    /// The index currently served for `kind`. Hold the guard only while answering one request.
    #[inline]
    pub fn load(&self, kind: HashKind) -> Guard<Option<Arc<Served>>> {
        self.slot(kind).current.load()
    }

    /// The index currently served for `kind`, as an owned handle.
    pub fn get(&self, kind: HashKind) -> Option<Arc<Served>> {
        self.slot(kind).current.load_full()
    }

    /// `(successful, refused)` reloads of `kind` so far.
    pub fn reload_counts(&self, kind: HashKind) -> (u64, u64) {
        let slot = self.slot(kind);
        (
            slot.reloads_ok.load(Ordering::Relaxed),
            slot.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Reloads `kind`'s index from its file. Without `force`, only when the file at the path is
    /// not the one being served (nor one already refused). On failure the old index keeps serving
    /// and the error is returned (and logged).
    pub fn reload(&self, kind: HashKind, force: bool) -> Result<ReloadOutcome, LoadError> {
        let slot = self.slot(kind);
        let Some(IndexSource::File(path)) = &slot.source else {
            return Ok(ReloadOutcome::Unchanged);
        };
        let id = match FileId::of(path) {
            Ok(id) => id,
            Err(source) => {
                let err = LoadError::Stat {
                    path: path.clone(),
                    source,
                };
                let mut refused = slot.refused.lock().expect("not poisoned");
                // A missing file is reported once per disappearance, not once per poll.
                if force || *refused != Some(MISSING) {
                    slot.reloads_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(kind = %kind, error = %err, "index reload failed; still serving the previous index");
                }
                *refused = Some(MISSING);
                return Err(err);
            }
        };
        if !force {
            let current = slot.current.load();
            let served = current.as_ref().and_then(|s| s.file_id);
            if served == Some(id) || *slot.refused.lock().expect("not poisoned") == Some(id) {
                return Ok(ReloadOutcome::Unchanged);
            }
        }
        match load_file(kind, path, id) {
            Ok(served) => {
                let header = served.header();
                let outcome = ReloadOutcome::Reloaded {
                    records: header.record_count,
                    build_time: header.build_time,
                };
                tracing::info!(kind = %kind, path = %path.display(), records = header.record_count, build_time = header.build_time, "index reloaded");
                slot.current.store(Some(Arc::new(served)));
                *slot.refused.lock().expect("not poisoned") = None;
                slot.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(outcome)
            }
            Err(err) => {
                tracing::error!(kind = %kind, error = %err, "index reload refused; still serving the previous index");
                *slot.refused.lock().expect("not poisoned") = Some(id);
                slot.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(err)
            }
        }
    }

    /// [`IndexSet::reload`] for every kind served from a file; errors are logged, not returned.
    pub fn reload_all(&self, force: bool) {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            let _ = self.reload(kind, force);
        }
    }

    /// Polls the configured paths every `interval` and reloads an index whose file was replaced.
    /// Runs until the task is dropped or aborted.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let set = self.clone();
            // Opening checks the 8 MiB prefix table: keep it off the request workers.
            let _ = tokio::task::spawn_blocking(move || set.reload_all(false)).await;
        }
    }
}

/// Stand-in identity recorded when the configured file is missing.
const MISSING: FileId = FileId {
    dev: u64::MAX,
    ino: u64::MAX,
    mtime_ns: 0,
    len: 0,
};

impl Slot {
    fn new(kind: HashKind, source: Option<IndexSource>) -> Slot {
        Slot {
            kind,
            source,
            current: ArcSwapOption::empty(),
            refused: Mutex::new(None),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }
}

fn load(kind: HashKind, source: &IndexSource) -> Result<Served, LoadError> {
    match source {
        IndexSource::Sample => Ok(Served::new(
            sample::sample_index(kind),
            IndexSource::Sample,
            None,
        )),
        IndexSource::File(path) => {
            let id = FileId::of(path).map_err(|source| LoadError::Stat {
                path: path.clone(),
                source,
            })?;
            load_file(kind, path, id)
        }
    }
}

/// Maps `path`, recording `id` (taken just before) as its identity. If the file is replaced
/// between the two, the next poll sees a different identity and loads it again: never a missed
/// change, at worst one extra reload.
fn load_file(kind: HashKind, path: &Path, id: FileId) -> Result<Served, LoadError> {
    // SAFETY: index files are only ever replaced by rename (import, sync and export do so; the
    // operator guide says to), which leaves this mapping of the old inode intact. An in-place
    // truncation or overwrite by an operator breaks the contract; the server's defence against
    // it is in the hardening issue's file lease and same-inode change checks.
    let index = unsafe { Index::open_path(path) }?;
    if index.kind() != kind {
        return Err(LoadError::WrongKind {
            path: path.to_owned(),
            expected: kind,
            found: index.kind(),
        });
    }
    Ok(Served::new(
        index,
        IndexSource::File(path.to_owned()),
        Some(id),
    ))
}
