//! Cold reads that bypass the page cache (`serve --cold-reads direct`).
//!
//! A request whose index bytes are not in the page cache normally faults them in through the
//! mapping: each 4 KiB page costs a page-cache allocation, a fault, and later its reclaim. With
//! `direct`, the server instead reads the request's window (one `/range` body, or the records
//! around a `/checkhash` position) with one `O_DIRECT` read into a buffer of its own and answers
//! from it. The page cache is left as it was: cheaper per cold request on a host that cannot
//! hold the index, but a window read this way stays cold, however often it is asked for.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

/// Offsets, lengths and buffer addresses of direct reads are multiples of this (the page size,
/// a multiple of every common logical block size).
const ALIGN: usize = 4096;

/// An index file opened a second time with `O_DIRECT`.
#[derive(Debug)]
pub struct DirectFile {
    file: File,
    len: usize,
}

impl DirectFile {
    /// Opens the file behind `file` (the same inode, through `/proc/self/fd`, even if its path
    /// has since been replaced) for direct reads. Fails where the file system has no `O_DIRECT`
    /// (tmpfs, some FUSE and network file systems).
    pub fn reopen(file: &File) -> io::Result<DirectFile> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other("file larger than the address space"))?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        Ok(DirectFile { file, len })
    }

    /// Reads the file's bytes `span` with one direct read of the aligned blocks around it.
    pub fn read(&self, span: Range<usize>) -> io::Result<Window> {
        if span.start > span.end || span.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "span outside the file",
            ));
        }
        let start = span.start - span.start % ALIGN;
        let end = span.end.next_multiple_of(ALIGN);
        // Room for the read plus the shift that puts its first byte on an aligned address.
        let mut buf = vec![0u8; end - start + ALIGN];
        let shift = buf.as_ptr().align_offset(ALIGN);
        // `align_offset` may decline (usize::MAX); the caller then reads the mapping instead.
        if shift >= ALIGN {
            return Err(io::Error::other("cannot align the read buffer"));
        }
        let room = &mut buf[shift..shift + (end - start)];
        // The last block may run past the end of the file: a short read there is complete. (A
        // short read elsewhere leaves an unaligned offset, which fails: the caller falls back.)
        let wanted = span.end - start;
        let mut got = 0;
        while got < wanted {
            match self.file.read_at(&mut room[got..], (start + got) as u64) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Window {
            buf,
            at: shift + (span.start - start),
            span,
        })
    }
}

/// Bytes of an index file read directly: the file's bytes `span`.
#[derive(Debug, Clone)]
pub struct Window {
    buf: Vec<u8>,
    /// Where the byte at `span.start` sits in `buf`.
    at: usize,
    span: Range<usize>,
}

impl Window {
    /// The file's bytes `span`, if this window holds all of them.
    pub fn get(&self, span: Range<usize>) -> Option<&[u8]> {
        if span.start < self.span.start || span.end > self.span.end || span.start > span.end {
            return None;
        }
        let from = self.at + (span.start - self.span.start);
        Some(&self.buf[from..from + (span.end - span.start)])
    }

    /// The file offsets this window holds.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }
}
