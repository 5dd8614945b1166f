//! The served indexes: one hot-swappable slot per hash kind, reloaded from disk on demand, on
//! SIGHUP, or when the file at the configured path is replaced by a rename.
//!
//! Each request loads the current [`Served`] index once (an `ArcSwap` load, lock-free) and keeps
//! it until its body is rendered, so a reload never changes an index under a request. The old
//! mapping is unmapped when the last request holding it is done.
//!
//! A file modified in place (truncated, or overwritten by `cp`) must not take the process down
//! with `SIGBUS`. Once [`IndexSet::enable_leases`] has run (the server does so after installing
//! its `SIGIO` handler), every served file holds a read lease ([`crate::mmap::lease`]): a writer's
//! `open` or `truncate` waits while this process, told by `SIGIO`, stops serving that kind
//! ([`IndexSet::check_in_place`]) and drops the mapping; the lease goes with the last
//! [`Served`] handle. Where no lease can be taken (another user's file, a file system without
//! leases), every watch tick compares the mapped file's size and modification time with those
//! at load instead. Either way the kind answers 503 with the reason until a new file (another
//! inode) is renamed over the path.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::{ArcSwapOption, Guard};
use hyper::header::HeaderValue;

use crate::format::Header;
use crate::hash::{HashKind, Prefix};
use crate::index::{Index, OpenError, OpenPathError};
use crate::mmap::{lease, IndexBytes};
use crate::sample;

use super::direct::DirectFile;

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
        Ok(FileId::from_meta(&std::fs::metadata(path)?))
    }

    fn from_meta(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            len: meta.len(),
        }
    }

    /// `(device, inode)`: the file itself, whatever is done to its contents.
    fn inode(&self) -> (u64, u64) {
        (self.dev, self.ino)
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
    /// The descriptor the mapping was made from: holds the read lease (released when the last
    /// handle drops and this closes) and is checked for in-place changes.
    file: Option<File>,
    /// `file` opened again for direct reads, on first use (`serve --cold-reads direct`).
    direct: OnceLock<Option<DirectFile>>,
    /// `file` opened again for buffered reads submitted to io_uring (cold reads through the
    /// page cache), on first use.
    buffered: OnceLock<Option<DirectFile>>,
    /// Whether a read lease is held on `file`.
    leased: AtomicBool,
    /// `Last-Modified`: the index build time as an HTTP date.
    last_modified: HeaderValue,
}

impl Served {
    fn new(
        index: Index<IndexBytes>,
        source: IndexSource,
        file_id: Option<FileId>,
        file: Option<File>,
    ) -> Served {
        let header = index.header();
        // `Header::decode` refuses build times past 9999-12-31, which HTTP dates cannot show;
        // checked anyway, so no header can make this panic.
        let built = UNIX_EPOCH
            .checked_add(Duration::from_secs(
                header.build_time.min(crate::format::MAX_BUILD_TIME),
            ))
            .unwrap_or(UNIX_EPOCH);
        Served {
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(built))
                .expect("HTTP dates are ASCII"),
            index,
            source,
            file_id,
            file,
            direct: OnceLock::new(),
            buffered: OnceLock::new(),
            leased: AtomicBool::new(false),
        }
    }

    /// The mapped file opened for direct reads (see [`super::direct`]), opened on first use;
    /// `None` for the bundled sample, or where the file system has no `O_DIRECT` (logged once
    /// per load; reads then go through the page cache).
    pub fn direct(&self) -> Option<&DirectFile> {
        self.reopened(
            &self.direct,
            DirectFile::reopen,
            "no direct reads on the index file; cold reads go through the page cache",
        )
    }

    /// The mapped file opened again for reads through the page cache with readahead off (see
    /// [`DirectFile::reopen_buffered`]), opened on first use; `None` for the bundled sample.
    pub fn buffered(&self) -> Option<&DirectFile> {
        self.reopened(
            &self.buffered,
            DirectFile::reopen_buffered,
            "cannot reopen the index file",
        )
    }

    /// The mapped file reopened by `reopen` into `cell` on first use; a failure is logged
    /// with `failed` once and remembered as `None`.
    fn reopened<'a>(
        &'a self,
        cell: &'a OnceLock<Option<DirectFile>>,
        reopen: fn(&File) -> std::io::Result<DirectFile>,
        failed: &str,
    ) -> Option<&'a DirectFile> {
        cell.get_or_init(|| {
            reopen(self.file.as_ref()?)
                .inspect_err(|e| tracing::warn!(path = %self.source, error = %e, "{failed}"))
                .ok()
        })
        .as_ref()
    }

    /// Takes the read lease on the mapped file, if not yet held; logs (once per load) when it
    /// cannot be taken, in which case in-place changes are caught by polling instead.
    fn take_lease(&self) {
        let Some(file) = &self.file else { return };
        if self.leased.load(Ordering::Relaxed) {
            return;
        }
        match lease::take_read(file) {
            Ok(()) => self.leased.store(true, Ordering::Relaxed),
            Err(e) => tracing::warn!(
                path = %self.source,
                error = %e,
                "no read lease on the index file; in-place changes are detected by polling \
                 only (replace index files by rename)"
            ),
        }
    }

    /// Why the mapped file can no longer be trusted, if it was changed in place: its lease was
    /// broken by a writer, or its size or modification time differ from those at load.
    fn changed_in_place(&self) -> Option<&'static str> {
        let file = self.file.as_ref()?;
        if self.leased.load(Ordering::Relaxed) && !lease::is_held(file).unwrap_or(false) {
            return Some("opened for writing or truncated in place");
        }
        let now = file.metadata().ok().map(|m| FileId::from_meta(&m));
        match (now, self.file_id) {
            (Some(now), Some(then)) if now != then => Some("modified in place"),
            _ => None,
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

impl LoadError {
    /// Whether the failure lies outside the file (opening or mapping it failed: out of file
    /// descriptors, memory or address space), so the same file may load on the next try. A file
    /// that failed validation is not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            LoadError::Stat { .. } => true,
            LoadError::Open(e) => matches!(e.source, OpenError::Io(_)),
            LoadError::WrongKind { .. } => false,
        }
    }
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
    /// The file withdrawn because it was changed in place: its `(device, inode)` (never loaded
    /// again; only another file renamed over the path is) and the reason `/range` gives.
    withdrawn: Mutex<Option<((u64, u64), String)>>,
    /// Identity of the last file whose load failed for a reason outside the file (`EMFILE`,
    /// `ENOMEM`): retried on every poll, logged once.
    transient: Mutex<Option<FileId>>,
    /// Successful reloads, for `/metrics`.
    reloads_ok: AtomicU64,
    /// Refused reloads, for `/metrics`.
    reloads_failed: AtomicU64,
}

/// The indexes a server answers from: SHA-1 and NTLM, each optional and independently reloadable.
pub struct IndexSet {
    /// SHA-1 then NTLM.
    slots: [Slot; 2],
    /// Whether served files get a read lease (set once a `SIGIO` handler is installed).
    leases: AtomicBool,
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
            leases: AtomicBool::new(false),
        };
        for slot in &set.slots {
            if let Some(source) = &slot.source {
                let served = Arc::new(load(slot.kind, source)?);
                index_overflow_in_background(&served);
                slot.current.store(Some(served));
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

    /// Takes a read lease on every served file from now on (see the module docs).
    ///
    /// Call only with a `SIGIO` handler installed for the rest of the process's life (tokio's
    /// `signal(SignalKind::io())` is one): `SIGIO` ends a process that does not handle it. On each
    /// `SIGIO`, call [`IndexSet::check_in_place`].
    pub fn enable_leases(&self) {
        self.leases.store(true, Ordering::SeqCst);
        for slot in &self.slots {
            if let Some(served) = slot.current.load_full() {
                served.take_lease();
            }
        }
    }

    /// Stops serving every kind whose mapped file was changed in place (lease broken, or size or
    /// modification time changed); that kind answers 503 with the reason until another file is
    /// renamed over the path. Dropping the slot's handle lets the mapping (and the lease, which
    /// holds up the writer) go once in-flight requests finish. Cheap: call it on every `SIGIO`
    /// and every watch tick.
    pub fn check_in_place(&self) {
        for slot in &self.slots {
            let Some(served) = slot.current.load_full() else {
                continue;
            };
            let Some(why) = served.changed_in_place() else {
                continue;
            };
            let inode = served.file_id.map(|id| id.inode()).unwrap_or_default();
            let reason = format!(
                "The {} index file was {why}; it is not served until a new file is renamed over it",
                kind_name(slot.kind)
            );
            // Held across the swap: a request that finds the slot empty asks `unavailable`,
            // which waits here and then sees the reason (never a bare "not loaded").
            let mut withdrawn = slot.withdrawn.lock().expect("not poisoned");
            let previous = slot
                .current
                .compare_and_swap(&Some(served.clone()), None::<Arc<Served>>);
            if previous.as_ref().is_some_and(|p| Arc::ptr_eq(p, &served)) {
                *withdrawn = Some((inode, reason));
                drop(withdrawn);
                tracing::error!(kind = %slot.kind, path = %served.source, "index file {why}; stopped serving this kind until a new file is renamed over the path");
                slot.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Why `kind` is not being served although configured (its file was changed in place).
    pub fn unavailable(&self, kind: HashKind) -> Option<String> {
        let slot = self.slot(kind);
        let withdrawn = slot.withdrawn.lock().expect("not poisoned");
        withdrawn.as_ref().map(|(_, reason)| reason.clone())
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
        self.check_in_place();
        if let Some((inode, _)) = &*slot.withdrawn.lock().expect("not poisoned") {
            // The file changed in place is never mapped again, even on SIGHUP: only a new file.
            if *inode == id.inode() {
                return Ok(ReloadOutcome::Unchanged);
            }
        }
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
                if self.leases.load(Ordering::SeqCst) {
                    served.take_lease();
                }
                let served = Arc::new(served);
                index_overflow_in_background(&served);
                slot.current.store(Some(served));
                *slot.refused.lock().expect("not poisoned") = None;
                *slot.withdrawn.lock().expect("not poisoned") = None;
                *slot.transient.lock().expect("not poisoned") = None;
                slot.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(outcome)
            }
            Err(err) if err.is_transient() => {
                // Out of descriptors or memory, say: not the file's fault. Not remembered as
                // refused, so the next poll tries the same file again; logged and counted once
                // per file until it loads or is replaced.
                let mut transient = slot.transient.lock().expect("not poisoned");
                if force || *transient != Some(id) {
                    tracing::error!(kind = %kind, error = %err, "index reload failed, will retry; still serving the previous index");
                    slot.reloads_failed.fetch_add(1, Ordering::Relaxed);
                }
                *transient = Some(id);
                Err(err)
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
            if let Err(e) = tokio::task::spawn_blocking(move || set.reload_all(false)).await {
                // A bug, not a bad file (those are refused and counted): never swallowed.
                tracing::error!(error = %e, "index reload task failed");
            }
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
            withdrawn: Mutex::new(None),
            transient: Mutex::new(None),
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

/// Maps `path`, recording the opened file's identity (`id`, taken just before from the path, is
/// the fallback if `fstat` fails). If the path is replaced meanwhile, the next poll sees a
/// different identity and loads it again: never a missed change, at worst one extra reload.
fn load_file(kind: HashKind, path: &Path, id: FileId) -> Result<Served, LoadError> {
    let at_path = |source: OpenError| OpenPathError {
        path: path.to_owned(),
        source,
    };
    let io_err = |e| at_path(OpenError::Io(e));
    let file = File::open(path).map_err(io_err)?;
    // The identity of the file actually opened (the path may have been replaced since `id` was
    // taken), so in-place checks compare the mapped file with itself.
    let id = file.metadata().map(|m| FileId::from_meta(&m)).unwrap_or(id);
    // SAFETY: index files are only ever replaced by rename (import, sync and export do so; the
    // operator guide says to), which leaves this mapping of the old inode intact. Against an
    // in-place truncation or overwrite by an operator, the file keeps a read lease while mapped
    // (the writer waits until this mapping is dropped, see `IndexSet::check_in_place`), or, where
    // no lease can be had, the change is noticed on the next watch tick and the mapping dropped.
    let bytes = unsafe { IndexBytes::map(&file) }.map_err(io_err)?;
    let index = Index::open_mapped(bytes).map_err(at_path)?;
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
        Some(file),
    ))
}

/// Builds the index's overflow directory ([`Index::index_overflow`]) on a thread of its own:
/// it reads the whole overflow table (37 MB for the full corpus), which must not delay the first
/// answer. Until it is built, counts above the inline maximum are found by binary search.
fn index_overflow_in_background(served: &Arc<Served>) {
    let served = Arc::clone(served);
    let spawned = std::thread::Builder::new()
        .name("overflow-directory".into())
        .spawn(move || served.index().index_overflow());
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the overflow directory thread; counts above 4,094 are found by binary search");
    }
}

fn kind_name(kind: HashKind) -> &'static str {
    match kind {
        HashKind::Sha1 => "SHA-1",
        HashKind::Ntlm => "NTLM",
    }
}
