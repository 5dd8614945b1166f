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
