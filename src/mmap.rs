//! The crate's one `unsafe` block: mapping a file read-only.

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only into memory.
///
/// # Safety contract (upheld by callers, not checkable here)
///
/// A mapping reflects later writes to the file, and truncating a mapped file makes reads of the
/// lost pages raise `SIGBUS`. hibp-mirror never modifies an index or dump in place: `import` and
/// `sync` write a new file and `rename` it over the old name, which leaves existing mappings of
/// the old inode untouched. Operators must do the same (never edit or truncate a file that a
/// running process maps); everything else in the crate treats mapped bytes as untrusted input and
/// validates them before use.
pub fn map_readonly(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only, and per the contract above the file is only ever replaced
    // by rename, never written or truncated in place, so the mapped bytes do not change under us.
    unsafe { Mmap::map(file) }
}
