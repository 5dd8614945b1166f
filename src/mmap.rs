//! The crate's `unsafe` code for the mapping (the only other is `server::uring`, which lends read
//! buffers to the kernel): mapping a file read-only, plus the two system calls about that
//! mapping that no safe wrapper crate offers (`mincore` for page-cache residency, `fcntl`
//! `F_SETLEASE` for the read lease that guards the mapped file); and [`IndexBytes`], the one type
//! for "index bytes, mapped or owned".
//!
//! Also the kernel advice for the mapping (and [`IndexBytes::release`], which gives scanned pages
//! back so a whole-index scan does not hold the whole index in its resident set).
//! An index can be larger than RAM; then most reads are page faults that go to the disk, and how
//! they are read matters more than anything else on the request path:
//! - [`IndexBytes::advise_random`]: a fault reads the page asked for, not the device's readahead
//!   window (`read_ahead_kb` is 8 MB on some virtual disks: 2,000 times the data a lookup needs);
//! - [`IndexBytes::prefetch`]: asks for a whole byte window at once (a `/range` body spans ~10
//!   pages, which would otherwise be ~10 faults one after the other);
//! - [`IndexBytes::is_resident`]: whether reading a window can fault, so the server reads cold
//!   windows where blocking is allowed and warm ones inline.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::sync::OnceLock;

use memmap2::{Advice, Mmap, UncheckedAdvice};

/// The bytes of an index: mapped from a file (what `serve`, `check` and `audit` use), or owned in
/// memory (the bundled sample, tests). [`crate::Index`] works over either through `AsRef<[u8]>`.
pub enum IndexBytes {
    /// A read-only mapping of an index file.
    Mapped(Mmap),
    /// Bytes held in memory.
    Owned(Vec<u8>),
}

impl IndexBytes {
    /// Maps `file` read-only.
    ///
    /// # Safety
    ///
    /// The caller guarantees that nobody modifies or truncates the file while the returned value
    /// (or anything borrowed from it) is alive. A mapping reflects later writes to the file, so
    /// data checked at open could change under a reader; and reading pages lost to a truncation
    /// raises `SIGBUS`, which kills the process. hibp-mirror itself never modifies an index in
    /// place: `import`, `sync` and `export` write a new file and `rename` it over the old name,
    /// which leaves existing mappings of the old inode untouched. Operators must do the same.
    pub unsafe fn map(file: &File) -> io::Result<IndexBytes> {
        // SAFETY: forwarded to the caller, per the contract above.
        unsafe { Mmap::map(file) }.map(IndexBytes::Mapped)
    }
}

impl IndexBytes {
    /// Advises the kernel that bytes from `from` on are read at random: a page fault then reads
    /// that page only, whatever the device's readahead setting. Bytes before `from` (the header
    /// and prefix table, read sequentially at open) keep the default readahead. No-op for owned
    /// bytes.
    pub fn advise_random(&self, from: usize) -> io::Result<()> {
        self.advise_from(Advice::Random, from)
    }

    /// Advises the kernel that bytes from `from` on are read in order: page faults then read
    /// ahead (the device's readahead window), for commands that read a whole index in order
    /// (`verify`, `export`). No-op for owned bytes.
    pub fn advise_sequential(&self, from: usize) -> io::Result<()> {
        self.advise_from(Advice::Sequential, from)
    }

    /// `advice` for the bytes from `from` to the end of the mapping.
    fn advise_from(&self, advice: Advice, from: usize) -> io::Result<()> {
        match self {
            IndexBytes::Mapped(map) if from < map.len() => {
                map.advise_range(advice, from, map.len() - from)
            }
            _ => Ok(()),
        }
    }

    /// Asks the kernel to start reading `range` into the page cache now (`MADV_WILLNEED`), so the
    /// reads that follow wait for one batch of I/O instead of faulting page by page. Advice only:
    /// errors are ignored. No-op for owned bytes.
    pub fn prefetch(&self, range: Range<usize>) {
        if let IndexBytes::Mapped(map) = self {
            if range.start < range.end && range.end <= map.len() {
                let _ = map.advise_range(Advice::WillNeed, range.start, range.end - range.start);
            }
        }
    }

    /// Unmaps from this process the pages that lie wholly inside `range` (`MADV_DONTNEED`), for
    /// scans that read an index once from end to end (`export`): without it, every page read
    /// stays in the process's resident set, which then grows to the size of the index. The page
    /// cache keeps the data, and a later read of the range faults the same bytes back in, so
    /// this changes what the process holds, not what it reads. Pages only partly inside `range`
    /// stay mapped: a neighbouring range may be read by another thread at the same time. No-op
    /// for owned bytes, and for an empty or out-of-bounds range.
    pub fn release(&self, range: Range<usize>) -> io::Result<()> {
        let IndexBytes::Mapped(map) = self else {
            return Ok(());
        };
        if range.end > map.len() {
            return Ok(());
        }
        let page = page_size();
        let base = map.as_ptr() as usize;
        // Rounded inwards: whole pages only (the mapping itself starts on a page boundary).
        let start = (base + range.start).next_multiple_of(page) - base;
        let end = ((base + range.end) & !(page - 1)) - base;
        if start >= end {
            return Ok(());
        }
        // SAFETY: `map` is a read-only (`PROT_READ`), shared, file-backed mapping: no page of it
        // can hold data that exists nowhere else (no private copy-on-write pages, no anonymous
        // memory), so dropping its page-table entries loses nothing. Any later read of these
        // addresses, including through a borrow made before this call, faults the page back in
        // from the page cache or the file, with the same bytes, since the file is not modified
        // while mapped (the contract of `IndexBytes::map`). `start..end` is page aligned and
        // inside the mapping (checked above).
        unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) }
    }

    /// Whether every page of `range` is in the page cache, so reading it cannot block on the
    /// disk (`mincore`; a few hundred nanoseconds for a `/range` window). Owned bytes and empty
    /// ranges are always resident; a range out of bounds, or a failed call, counts as not
    /// resident (the caller then takes the path that is safe to block).
    pub fn is_resident(&self, range: Range<usize>) -> bool {
        let map = match self {
            IndexBytes::Owned(_) => return true,
            IndexBytes::Mapped(map) => map,
        };
        if range.start >= range.end {
            return true;
        }
        if range.end > map.len() {
            return false;
        }
        let page = page_size();
        let base = map.as_ptr() as usize;
        // The mapping starts on a page boundary, so rounding down stays inside it.
        let start = (base + range.start) & !(page - 1);
        let len = base + range.end - start;
        let pages = len.div_ceil(page);
        let mut small = [0u8; 64];
        let mut large = Vec::new();
        let status: &mut [u8] = if pages <= small.len() {
            &mut small[..pages]
        } else {
            large.resize(pages, 0);
            &mut large
        };
        // SAFETY: `start..start + len` lies inside the live mapping `map` (checked above: `range`
        // is within `map.len()` and `start` is rounded down to the page holding `range.start`,
        // which belongs to the mapping since the mapping is page aligned). `status` has one byte
        // per page of that span, which is all `mincore` writes. `mincore` reads nothing and
        // changes nothing; it only reports residency.
        let rc = unsafe { libc::mincore(start as *mut libc::c_void, len, status.as_mut_ptr()) };
        rc == 0 && status.iter().all(|&s| s & 1 == 1)
    }
}

/// The system page size (cached).
fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(rustix::param::page_size)
}

impl AsRef<[u8]> for IndexBytes {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        match self {
            IndexBytes::Mapped(map) => map,
            IndexBytes::Owned(bytes) => bytes,
        }
    }
}

impl From<Vec<u8>> for IndexBytes {
    fn from(bytes: Vec<u8>) -> Self {
        IndexBytes::Owned(bytes)
    }
}

/// Read leases (Linux `F_SETLEASE`), which protect a mapping from in-place modification.
///
/// While a read lease is held on the descriptor a mapping was made from, a process that opens the
/// file for writing or truncates it is blocked by the kernel (for at most
/// `/proc/sys/fs/lease-break-time` seconds) and this process receives `SIGIO`. Closing the
/// descriptor releases the lease and lets the writer go on. `SIGIO` ends a process that does not
/// handle it: install a handler (e.g. `tokio::signal::unix::SignalKind::io()`) before taking a
/// lease. Neither `rustix` nor `nix` wraps `F_SETLEASE`, hence the two `fcntl` calls here, beside
/// the mapping they protect.
pub mod lease {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    /// Takes a read lease on `file`, which must be open read-only. Fails with `EACCES` when this
    /// process does not own the file (and lacks `CAP_LEASE`), `EAGAIN` when the file is open for
    /// writing somewhere, or `EINVAL` on file systems without leases.
    pub fn take_read(file: &File) -> io::Result<()> {
        // SAFETY: F_SETLEASE takes an integer argument and reads or writes no memory of ours;
        // the descriptor is valid, borrowed from `file` for the duration of the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Whether a read lease is held on `file` with no break pending: `false` once a writer has
    /// asked for the file (the kernel then reports the lease as about to be removed).
    pub fn is_held(file: &File) -> io::Result<bool> {
        // SAFETY: F_GETLEASE takes no argument and touches no memory of ours; the descriptor is
        // valid, borrowed from `file` for the duration of the call.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLEASE) };
        if rc == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc == libc::F_RDLCK)
        }
    }
}
