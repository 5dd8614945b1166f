//! The crate's one `unsafe` operation, mapping a file read-only, and [`IndexBytes`], the one type
//! for "index bytes, mapped or owned".

use std::fs::File;
use std::io;

use memmap2::Mmap;

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
