//! The body of `POST /checkhash`, read before routing with a size cap and a time limit, so the
//! routing in [`app`](super::app) stays a pure function of the request.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

/// Largest `POST /checkhash` body accepted, in bytes (a hash in JSON needs under 100).
pub const MAX_POSTED_BODY: usize = 1024;

/// What reading a posted body gave; stored as a request extension for the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostedBody {
    /// The whole body, at most [`MAX_POSTED_BODY`] bytes.
    Complete(Bytes),
    /// The body is longer than [`MAX_POSTED_BODY`] (413).
    TooLarge,
    /// The body did not arrive within the time limit (408).
    TimedOut,
    /// The connection failed while reading (400).
    Failed,
}

/// Reads the body of `req` (at most [`MAX_POSTED_BODY`] bytes, within `timeout`).
pub async fn read(req: &mut Request<Incoming>, timeout: Duration) -> PostedBody {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_POSTED_BODY as u64) {
        return PostedBody::TooLarge;
    }
    let body = req.body_mut();
    let collect = async {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return PostedBody::Failed;
            };
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_POSTED_BODY {
                    return PostedBody::TooLarge;
                }
                buf.extend_from_slice(&data);
            }
        }
        PostedBody::Complete(buf.freeze())
    };
    tokio::time::timeout(timeout, collect)
        .await
        .unwrap_or(PostedBody::TimedOut)
}
