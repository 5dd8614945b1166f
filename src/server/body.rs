//! The one response body type: a few shared byte chunks with an exact length.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

/// A response body made of shared byte chunks, sent in order.
///
/// Several chunks let a stored-gzip body wrap the rendered identity body without copying it: the
/// gzip framing goes in small chunks between slices of the body, and hyper writes them with one
/// vectored write.
#[derive(Debug, Default)]
pub struct ResponseBody {
    /// Chunks not yet sent, in order.
    chunks: VecDeque<Bytes>,
    /// Bytes not yet sent, so hyper can send an exact `Content-Length`.
    remaining: u64,
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A body of one chunk.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self::from_chunks([bytes.into()])
    }

    /// A body of several chunks, sent in order.
    pub fn from_chunks(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        ResponseBody { chunks, remaining }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The whole body as one buffer (copies when there are several chunks); used by tests.
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks[0].clone(),
            _ => {
                let mut out = BytesMut::with_capacity(self.remaining as usize);
                for chunk in &self.chunks {
                    out.extend_from_slice(chunk);
                }
                out.freeze()
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this.chunks.pop_front() {
            Some(chunk) => {
                this.remaining -= chunk.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
