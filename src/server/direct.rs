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
use std::sync::Arc;

use super::uring::Ring;

/// Offsets, lengths and buffer addresses of direct reads are multiples of this (the page size,
/// a multiple of every common logical block size).
const ALIGN: usize = 4096;

/// An index file opened a second time with `O_DIRECT`.
#[derive(Debug)]
pub struct DirectFile {
    file: Arc<File>,
    len: usize,
}

impl DirectFile {
    /// Opens the file behind `file` (the same inode, through `/proc/self/fd`, even if its path
    /// has since been replaced) for direct reads. Fails where the file system has no `O_DIRECT`
    /// (tmpfs, some FUSE and network file systems).
    pub fn reopen(file: &File) -> io::Result<DirectFile> {
        Self::reopen_with(file, libc::O_DIRECT)
    }

    /// Opens the file behind `file` again for ordinary reads through the page cache, with
    /// readahead off (`POSIX_FADV_RANDOM`): a read brings in the pages it covers and no more.
    /// The same reads as a direct file (whole aligned blocks), but what they read stays cached.
    pub fn reopen_buffered(file: &File) -> io::Result<DirectFile> {
        let reopened = Self::reopen_with(file, 0)?;
        rustix::fs::fadvise(&*reopened.file, 0, None, rustix::fs::Advice::Random)?;
        Ok(reopened)
    }

    /// Opens the file behind `file` again, read-only with `flags`.
    fn reopen_with(file: &File, flags: i32) -> io::Result<DirectFile> {
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::other("file larger than the address space"))?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        Ok(DirectFile {
            file: Arc::new(file),
            len,
        })
    }

    /// Reads the file's bytes `span` with one direct read of the aligned blocks around it,
    /// blocking the calling thread.
    pub fn read(&self, span: Range<usize>) -> io::Result<Window> {
        let mut read = self.plan(span)?;
        let room = read.room();
        let mut got = 0;
        while got < read.wanted() {
            match self.file.read_at(
                &mut read.buf[room.start + got..room.end],
                (read.start + got) as u64,
            ) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        read.finish(got)
    }

    /// [`DirectFile::read`], submitted to `ring` and awaited: no thread blocks.
    pub async fn read_on(&self, ring: &Ring, span: Range<usize>) -> io::Result<Window> {
        let mut read = self.plan(span)?;
        let room = read.room();
        let buf = std::mem::take(&mut read.buf);
        let (buf, got) = ring.read(&self.file, read.start as u64, buf, room).await?;
        read.buf = buf;
        read.finish(got)
    }

    /// The aligned read that covers `span`, with its buffer.
    fn plan(&self, span: Range<usize>) -> io::Result<PlannedRead> {
        if span.start > span.end || span.end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "span outside the file",
            ));
        }
        let start = span.start - span.start % ALIGN;
        let end = span.end.next_multiple_of(ALIGN);
        // Room for the read plus the shift that puts its first byte on an aligned address.
        let buf = vec![0u8; end - start + ALIGN];
        let shift = buf.as_ptr().align_offset(ALIGN);
        // `align_offset` may decline (usize::MAX); the caller then reads the mapping instead.
        if shift >= ALIGN {
            return Err(io::Error::other("cannot align the read buffer"));
        }
        Ok(PlannedRead {
            buf,
            shift,
            start,
            len: end - start,
            span,
        })
    }
}

/// A direct read of the aligned blocks `start..start + len` into `buf[shift..]`, covering
/// `span`.
struct PlannedRead {
    buf: Vec<u8>,
    shift: usize,
    start: usize,
    len: usize,
    span: Range<usize>,
}

impl PlannedRead {
    /// Where in `buf` the read goes.
    fn room(&self) -> Range<usize> {
        self.shift..self.shift + self.len
    }

    /// Bytes the read must bring for `span`: the last block may run past the end of the file,
    /// so a read that stops there is complete.
    fn wanted(&self) -> usize {
        self.span.end - self.start
    }

    /// The window, once `got` bytes were read. A short read (one that stopped before `span`'s
    /// end) fails: the caller then reads the mapping.
    fn finish(self, got: usize) -> io::Result<Window> {
        if got < self.wanted() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short direct read",
            ));
        }
        Ok(Window {
            at: self.shift + (self.span.start - self.start),
            buf: self.buf,
            span: self.span,
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
