//! Direct reads submitted to io_uring, awaited on the async runtime (`serve --cold-reads direct`
//! with the `io-uring` engine): the crate's other `unsafe` code, confined to lending a buffer to
//! the kernel.
//!
//! On the blocking pool, each cold request costs two thread hand-offs (to a pool thread and
//! back) around its `pread`. Here the request's task submits the read and sleeps; the ring's
//! descriptor wakes one reaper task when reads complete, which hands each finished buffer to its
//! request. No thread blocks, and one wake-up can finish many reads.
//!
//! Ownership is what makes this sound: a buffer the kernel may write into belongs to the ring
//! (its `in_flight` slot), not to the request, from submission until its completion is reaped.
//! A request that is dropped (client gone, timeout) leaves the buffer in place; it is freed when
//! the read completes, and [`Ring`]'s drop waits for every read still in flight.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use io_uring::{opcode, types, IoUring};
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

/// What a finished read hands back: the buffer and the kernel's result (bytes read, or a
/// negated `errno`).
type Finished = (Vec<u8>, i32);

/// Submits the ring's queued entries when dropped.
struct Flush<'a>(&'a Ring);

impl Drop for Flush<'_> {
    fn drop(&mut self) {
        self.0.submit_queued();
    }
}

/// An io_uring instance for direct reads, with the task that reaps its completions.
pub struct Ring {
    /// Readiness of the ring's descriptor: readable when completions are waiting. Declared
    /// before `state` so it is deregistered before the ring (and its descriptor) goes.
    ready: AsyncFd<RingFd>,
    state: Mutex<State>,
    /// Most reads in flight at once: the completion queue always has room for all of them.
    capacity: usize,
}

/// The ring's descriptor, borrowed for readiness (the ring in [`State`] owns it).
struct RingFd(RawFd);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

struct State {
    ring: IoUring,
    /// Reads in flight, by slot; a read's slot is its `user_data`.
    in_flight: Vec<Option<InFlight>>,
    /// Slots free for reuse.
    free: Vec<usize>,
}

/// One submitted read: everything the kernel may still touch, kept until it completes.
struct InFlight {
    /// The buffer the kernel writes into.
    buf: Vec<u8>,
    /// Keeps the descriptor being read open.
    _file: Arc<File>,
    /// The waiting request; gone if the request was dropped.
    done: oneshot::Sender<Finished>,
}

impl Ring {
    /// A ring for up to `capacity` reads in flight, and its reaper task on the current tokio
    /// runtime. Fails where the kernel has no io_uring or forbids it (`io_uring_disabled`,
    /// seccomp: many container runtimes); panics outside a runtime.
    pub fn start(capacity: usize) -> io::Result<Arc<Ring>> {
        let capacity = capacity.clamp(1, 4096);
        let ring = IoUring::new(capacity.next_power_of_two() as u32)?;
        // SAFETY: the descriptor is the ring's, owned by `state` next to this `AsyncFd` in the
        // same `Ring`; `ready` is declared first, so it is dropped (deregistered) before `state`
        // closes the descriptor, and `RingFd` always returns that same descriptor.
        let ready = unsafe {
            AsyncFd::register_with_interest(RingFd(ring.as_raw_fd()), tokio::io::Interest::READABLE)
        }?;
        let ring = Arc::new(Ring {
            ready,
            state: Mutex::new(State {
                ring,
                in_flight: Vec::with_capacity(capacity),
                free: Vec::new(),
            }),
            capacity,
        });
        tokio::spawn(reap(ring.clone()));
        Ok(ring)
    }

    /// Whether this kernel lets this process set up an io_uring at all.
    pub fn available() -> io::Result<()> {
        IoUring::new(2).map(drop)
    }

    /// Reads `room.len()` bytes of `file` at `offset` into `buf[room]`, and returns the buffer
    /// with the number of bytes read. For `O_DIRECT` files, `offset`, the length and the
    /// address of `buf[room.start]` must be block-aligned (the kernel refuses otherwise).
    /// Fails without submitting when `capacity` reads are already in flight.
    pub async fn read(
        &self,
        file: &Arc<File>,
        offset: u64,
        mut buf: Vec<u8>,
        room: Range<usize>,
    ) -> io::Result<(Vec<u8>, usize)> {
        let len = u32::try_from(room.len()).map_err(|_| io::Error::other("read too large"))?;
        let (done, finished) = oneshot::channel();
        {
            let mut state = self.lock();
            let State {
                ring,
                in_flight,
                free,
            } = &mut *state;
            if in_flight.len() - free.len() >= self.capacity {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "io_uring reads in flight at capacity",
                ));
            }
            let slot = free.pop().unwrap_or_else(|| {
                in_flight.push(None);
                in_flight.len() - 1
            });
            let target = buf[room].as_mut_ptr();
            let entry = opcode::Read::new(types::Fd(file.as_raw_fd()), target, len)
                .offset(offset)
                .build()
                .user_data(slot as u64);
            // Moving the Vec into its slot does not move its heap bytes, which `target` points at.
            in_flight[slot] = Some(InFlight {
                buf,
                _file: file.clone(),
                done,
            });
            // SAFETY: the entry names `len` bytes at `target`, inside the heap buffer now owned
            // by `in_flight[slot]`, and the descriptor kept open by the same slot. The slot is
            // emptied only by `complete`, after the kernel reported this read finished, or by
            // `State::drop`, which waits for every read in flight first. The submission queue
            // has `capacity` entries or more and at most `capacity` reads are in flight, so the
            // push cannot find it full; if it does, the slot is taken back before anything was
            // submitted.
            if unsafe { ring.submission().push(&entry) }.is_err() {
                in_flight[slot] = None;
                free.push(slot);
                return Err(io::Error::other("io_uring submission queue full"));
            }
        }
        // Submitted after one yield: requests of other connections that run meanwhile queue
        // their reads too, and one system call (one doorbell for a virtual disk) sends them all.
        // Dropped early (the request cancelled), the guard still submits.
        let flush = Flush(self);
        tokio::task::yield_now().await;
        drop(flush);
        let (buf, result) = finished
            .await
            .map_err(|_| io::Error::other("io_uring ring shut down"))?;
        match usize::try_from(result) {
            Ok(n) => Ok((buf, n)),
            Err(_) => Err(io::Error::from_raw_os_error(-result)),
        }
    }

    /// Hands every completed read's buffer back to its request, and submits entries a failed
    /// submit left queued.
    fn complete(&self) {
        let mut state = self.lock();
        let State {
            ring,
            in_flight,
            free,
        } = &mut *state;
        for completion in ring.completion() {
            let slot = completion.user_data() as usize;
            if let Some(read) = in_flight.get_mut(slot).and_then(Option::take) {
                free.push(slot);
                // The request may be gone; its buffer is then dropped here.
                let _ = read.done.send((read.buf, completion.result()));
            }
        }
        if !ring.submission().is_empty() {
            let _ = ring.submit();
        }
    }

    /// Submits the entries queued so far, if any.
    fn submit_queued(&self) {
        let mut state = self.lock();
        while !state.ring.submission().is_empty() {
            match state.ring.submit() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The entries stay queued: the next submit (or the reaper) sends them.
                Err(e) => tracing::debug!(error = %e, "io_uring submit deferred"),
                Ok(_) => {}
            }
            break;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for State {
    /// Waits for every read in flight before the buffers go: the kernel may still write them.
    fn drop(&mut self) {
        while self.in_flight.iter().any(Option::is_some) {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Cannot tell when the kernel is done with them: leak rather than free.
                tracing::error!(error = %e, "io_uring teardown failed; leaking read buffers");
                for read in self.in_flight.drain(..).flatten() {
                    std::mem::forget(read.buf);
                }
                return;
            }
            for completion in self.ring.completion() {
                if let Some(slot) = self.in_flight.get_mut(completion.user_data() as usize) {
                    *slot = None;
                }
            }
        }
    }
}

/// Reaps completions whenever the ring's descriptor is readable. Stops when no request handle
/// is left to submit reads; otherwise the ring lives as long as its runtime.
async fn reap(ring: Arc<Ring>) {
    loop {
        match ring.ready.readable().await {
            Ok(mut guard) => {
                ring.complete();
                guard.clear_ready();
            }
            Err(e) => {
                tracing::error!(error = %e, "io_uring readiness failed; direct reads stop completing");
                return;
            }
        }
        if Arc::strong_count(&ring) == 1 {
            return;
        }
    }
}
