//! Pure request -> response routing: no I/O, no awaits, so every rule can be tested by building a
//! `Request` and reading the `Response`. The one exception is [`App::may_block`], which asks the
//! kernel whether an answer's index pages are cached (and to start reading them if not), so the
//! connection loop can move reads that may wait for the disk off the runtime's workers.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW,
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    LAST_MODIFIED, VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::hash::{Hash, HashKind, Prefix};

use super::body::ResponseBody;
use super::direct::Window;
use super::indexes::{IndexSet, Served};
use super::metrics::Metrics;
use super::page::Asset;
use super::post::PostedBody;
use super::render::{append_padding, gzip_compressed, gzip_stored, render_range};
use super::route::{Route, CHECKHASH_PATH, CHECKHASH_POST_PATH, RANGE_PATH};
use super::uring::Ring;
use super::{ColdReads, Config, ReadEngine};

/// The request header that asks for padding.
pub const ADD_PADDING: HeaderName = HeaderName::from_static("add-padding");

/// `Cache-Control` of `/range` responses: 31 days, as upstream.
const RANGE_CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=2678400");

/// `Vary` of `/range` responses. `Accept-Encoding` is always listed because the same URL may be
/// answered with or without gzip, which shared caches must know even for identity answers.
const RANGE_VARY: HeaderValue = HeaderValue::from_static("Add-Padding, Accept-Encoding");

/// Methods `/range` answers.
const RANGE_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");

/// Methods `/checkhash` (no hash in the path) answers.
const POST_ALLOW: HeaderValue = HeaderValue::from_static("POST");

/// `WWW-Authenticate` of a 401 (RFC 6750).
const BEARER_CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer realm=\"hibp-mirror\"");

/// Methods the other endpoints answer.
const READ_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD");

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
const PROMETHEUS_TEXT: HeaderValue =
    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

/// `/range` answer when the NTLM index is asked for but not served.
const NTLM_NOT_LOADED: &str = "The NTLM index is not loaded on this server";

/// `/range` answer when the SHA-1 index is asked for but not served.
const SHA1_NOT_LOADED: &str = "The SHA-1 index is not loaded on this server";

/// The application: indexes, settings and counters. Implements the routing for every endpoint.
pub struct App {
    /// The indexes answered from; shared with the reload tasks.
    indexes: Arc<IndexSet>,
    /// Settings (gzip level, severity thresholds, connection limits).
    config: Config,
    /// Request counters, shown by `/metrics`.
    metrics: Metrics,
    /// The io_uring direct reads are submitted to, set up on the first one; `None` when the
    /// engine is `threads` or the kernel refused (direct reads then use the blocking pool).
    ring: OnceLock<Option<Arc<Ring>>>,
}

impl App {
    /// An application answering from `indexes` with `config`.
    pub fn new(indexes: Arc<IndexSet>, config: Config) -> App {
        App {
            indexes,
            config,
            metrics: Metrics::new(),
            ring: OnceLock::new(),
        }
    }

    /// The served indexes (for reloading).
    pub fn indexes(&self) -> &Arc<IndexSet> {
        &self.indexes
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The request counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one request. Only the method, path, query and headers are read.
    pub fn respond<B>(&self, req: &Request<B>) -> Response<ResponseBody> {
        self.respond_route(Route::of(req.uri().path()), req)
    }

    /// Answers one request already classified as `route` (by [`Route::of`] on its path).
    pub fn respond_route<B>(&self, route: Route, req: &Request<B>) -> Response<ResponseBody> {
        let path = req.uri().path();
        if !self.config.routes.contains(route) {
            return not_found();
        }
        if self.config.token_routes.contains(route) && !self.authorized(req) {
            return unauthorized();
        }
        match route {
            Route::Range => match path.strip_prefix(RANGE_PATH) {
                Some(prefix) => self.range(req, prefix),
                None => not_found(),
            },
            Route::CheckHash => {
                let posted_form = path == CHECKHASH_POST_PATH || path == CHECKHASH_PATH;
                match (req.method(), path.strip_prefix(CHECKHASH_PATH)) {
                    (&Method::POST, _) if posted_form => {
                        match req.extensions().get::<PostedBody>() {
                            Some(posted) => self.checkhash_posted(req.headers(), posted),
                            // Only the connection loop reads bodies; a caller that did not is a bug.
                            None => json_error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "request body not read",
                            ),
                        }
                    }
                    (&Method::GET | &Method::HEAD, Some(hash)) => {
                        self.checkhash(hash, req.extensions().get())
                    }
                    // `/checkhash` takes the hash in a POST body only.
                    (_, None) => method_not_allowed(POST_ALLOW),
                    // A POST with the hash in the path: the hash belongs in the body.
                    (_, Some(_)) => method_not_allowed(READ_ALLOW),
                }
            }
            Route::Healthz => read_only(req, || {
                if wants_detail(req.uri().query()) {
                    match &self.config.tokens {
                        None => json_error(
                            StatusCode::FORBIDDEN,
                            "healthz detail needs a token file (--token-file)",
                        ),
                        Some(tokens) if !tokens.authorizes(req.headers()) => unauthorized(),
                        Some(_) => self.healthz(true),
                    }
                } else {
                    self.healthz(false)
                }
            }),
            Route::Metrics => read_only(req, || self.metrics_page()),
            Route::Page => match Asset::of(path) {
                Some(asset) if self.config.page => read_only(req, || {
                    asset.respond(&self.config.thresholds, &self.indexes)
                }),
                _ => not_found(),
            },
            Route::Other => not_found(),
        }
    }

    /// Whether answering `req` reads index pages that are not in the page cache, so it may
    /// block on the disk. When it does, with [`ColdReads::Cache`], the reads are asked for now
    /// (`MADV_WILLNEED` on exactly the records the answer needs), so the disk starts on them at
    /// once, in one batch. Requests that read no index (errors, `/healthz`, `/metrics`, a kind
    /// not served) never block.
    pub fn may_block<B>(&self, route: Route, req: &Request<B>) -> bool {
        let Some(kind) = read_kind(route, req) else {
            return false;
        };
        let guard = self.indexes.load(kind);
        let Some(served) = guard.as_ref() else {
            return false;
        };
        let Some(span) = read_span(served, route, req, false) else {
            return false;
        };
        let data = served.index().data();
        if data.is_resident(span.clone()) {
            return false;
        }
        // io_uring reads the window itself (`read_cold_async`); asking for it here too would
        // queue the same pages twice.
        if self.config.cold_reads == ColdReads::Cache && self.ring().is_none() {
            data.prefetch(span);
        }
        true
    }

    /// With [`ColdReads::Direct`], reads the bytes answering `req` needs from the index file
    /// directly (blocking), and leaves them in the request's extensions for [`App::respond_route`]
    /// to answer from. Does nothing otherwise, or when the read fails (the answer then reads the
    /// mapping, as with [`ColdReads::Cache`]).
    pub fn read_cold<B>(&self, route: Route, req: &mut Request<B>) {
        if self.config.cold_reads != ColdReads::Direct {
            return;
        }
        let Some(served) = read_kind(route, req).and_then(|kind| self.indexes.get(kind)) else {
            return;
        };
        let Some(span) = read_span(&served, route, req, true) else {
            return;
        };
        let Some(direct) = served.direct() else {
            return;
        };
        match direct.read(span) {
            Ok(window) => {
                self.metrics.window_read(ReadEngine::Threads);
                req.extensions_mut().insert(ColdWindow { served, window });
            }
            Err(e) => {
                tracing::warn!(error = %e, "direct read of the index failed; reading the mapping")
            }
        }
    }

    /// Reads the window `req` needs on io_uring, awaited without blocking a thread: directly
    /// with [`ColdReads::Direct`] (as [`App::read_cold`]), through the page cache with
    /// [`ColdReads::Cache`] (what it reads stays cached). Returns whether the bytes are now in
    /// the request's extensions; false (nothing done) when the engine is the blocking pool, or
    /// when the read failed: the caller then takes the blocking path. For `/checkhash`, a
    /// window that does not settle the lookup (the hash lies beyond it: rare) is followed by a
    /// read of the whole prefix, so answering never reads the mapping.
    pub async fn read_cold_async<B>(&self, route: Route, req: &mut Request<B>) -> bool {
        let Some(ring) = self.ring() else {
            return false;
        };
        let Some(served) = read_kind(route, req).and_then(|kind| self.indexes.get(kind)) else {
            return false;
        };
        let Some(span) = read_span(&served, route, req, true) else {
            return false;
        };
        let reopened = match self.config.cold_reads {
            ColdReads::Direct => served.direct(),
            ColdReads::Cache => served.buffered(),
        };
        let Some(file) = reopened else {
            return false;
        };
        let read = async |span| {
            let window = file.read_on(ring, span).await;
            if window.is_ok() {
                self.metrics.window_read(ReadEngine::IoUring);
            }
            window
        };
        let mut window = read(span.clone()).await;
        if let (Ok(block), Some(hash)) = (
            &window,
            lookup_hash(req).filter(|_| route == Route::CheckHash),
        ) {
            let index = served.index();
            if block
                .get(span.clone())
                .and_then(|bytes| index.lookup_in(&hash, bytes, span))
                .is_none()
            {
                window = read(index.range_span(hash.prefix())).await;
            }
        }
        match window {
            Ok(window) => {
                req.extensions_mut().insert(ColdWindow { served, window });
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "io_uring read of the index failed; reading the mapping");
                false
            }
        }
    }

    /// The ring for cold reads, set up on first use (see [`App::ring`] field).
    fn ring(&self) -> Option<&Arc<Ring>> {
        if self.config.read_engine == ReadEngine::Threads {
            return None;
        }
        self.ring
            .get_or_init(|| {
                Ring::start(self.config.reads_in_flight)
                    .inspect_err(|e| {
                        tracing::warn!(
                            error = %e,
                            "no io_uring here; cold reads run on the blocking pool"
                        )
                    })
                    .ok()
            })
            .as_ref()
    }

    fn range<B>(&self, req: &Request<B>, prefix_text: &str) -> Response<ResponseBody> {
        match *req.method() {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => return preflight(),
            _ => return method_not_allowed(RANGE_ALLOW),
        }
        let prefix = match Prefix::parse(prefix_text.as_bytes()) {
            Ok(prefix) => prefix,
            Err(err) => return range_error(err.to_string()),
        };
        let kind = match range_mode(req.uri().query()) {
            Ok(kind) => kind,
            Err(reason) => return range_error(reason),
        };
        let guard = self.indexes.load(kind);
        let Some(served) = guard.as_ref() else {
            if let Some(reason) = self.indexes.unavailable(kind) {
                return text(StatusCode::SERVICE_UNAVAILABLE, reason);
            }
            let reason = match kind {
                HashKind::Ntlm => NTLM_NOT_LOADED,
                HashKind::Sha1 => SHA1_NOT_LOADED,
            };
            return range_error(reason);
        };
        let headers = req.headers();
        let padded = headers.get(ADD_PADDING).is_some_and(is_true);
        let gzip = accepts_gzip(headers);
        let etag = self.range_etag(served, prefix, padded, gzip);
        if !padded && etag_matches(headers.get_all(IF_NONE_MATCH), &etag) {
            let mut response = Response::new(ResponseBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            range_headers(response.headers_mut(), served, etag);
            return response;
        }
        let index = served.index();
        let window = ColdWindow::get(req.extensions().get(), served, index.range_span(prefix));
        let range = window.and_then(|records| index.range_from(prefix, records));
        let mut body = render_range(range.unwrap_or_else(|| index.range(prefix)));
        let mut response = Response::new(ResponseBody::empty());
        range_headers(response.headers_mut(), served, etag);
        // Release the index before the rest of the work: a reload can unmap it sooner.
        drop(guard);
        if padded {
            // ThreadRng: ChaCha12 seeded from the OS and reseeded periodically, a CSPRNG.
            append_padding(&mut body, kind, &mut rand::thread_rng());
        }
        let body = if gzip {
            response.headers_mut().insert(CONTENT_ENCODING, GZIP);
            match self.config.gzip_level {
                0 => ResponseBody::from_chunks(gzip_stored(Bytes::from(body))),
                level => ResponseBody::from_bytes(gzip_compressed(&body, level)),
            }
        } else {
            ResponseBody::from_bytes(body)
        };
        response.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        *response.body_mut() = body;
        response
    }

    /// The ETag of the representation selected: weak for padded bodies (same data, random
    /// padding), strong otherwise, with the gzip level in it for gzip bodies (strong tags must
    /// differ between encodings).
    /// The tag itself is the prefix's content tag (see [`Served::range_etag`]).
    fn range_etag(&self, served: &Served, prefix: Prefix, padded: bool, gzip: bool) -> HeaderValue {
        served.range_etag(prefix, padded, gzip.then_some(self.config.gzip_level))
    }

    /// Whether the request carries an accepted bearer token (true when no token file is set).
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        self.config
            .tokens
            .as_ref()
            .is_none_or(|tokens| tokens.authorizes(req.headers()))
    }

    /// `POST /checkhash`: the hash as `text/plain` or as JSON `{"hash": "..."}`; the answer is
    /// the same as for `GET /checkhash/{hash}`. Error messages never echo the body.
    pub fn checkhash_posted(
        &self,
        headers: &HeaderMap,
        posted: &PostedBody,
    ) -> Response<ResponseBody> {
        let body = match posted {
            PostedBody::Complete(body) => body,
            PostedBody::TooLarge => {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("body larger than {} bytes", super::post::MAX_POSTED_BODY),
                )
            }
            PostedBody::TimedOut => {
                return json_error(StatusCode::REQUEST_TIMEOUT, "body not received in time")
            }
            PostedBody::Failed => {
                return json_error(StatusCode::BAD_REQUEST, "body could not be read")
            }
        };
        let media_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let hash: Option<String> = match media_type.as_deref() {
            Some("text/plain") => std::str::from_utf8(body).ok().map(|t| t.trim().to_owned()),
            Some("application/json") => serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("hash")?.as_str().map(str::to_owned)),
            _ => {
                return json_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the hash as text/plain or as application/json {\"hash\": \"<hex>\"}",
                )
            }
        };
        match hash {
            Some(hash) => self.checkhash(&hash, None),
            None => json_error(
                StatusCode::BAD_REQUEST,
                "body must be the hash in hex, or JSON {\"hash\": \"<hex>\"}",
            ),
        }
    }

    /// `GET /checkhash/{hash}` (and POST's answer), from `window` when it holds the records the
    /// lookup needs.
    fn checkhash(&self, hash_text: &str, window: Option<&ColdWindow>) -> Response<ResponseBody> {
        let hash = match Hash::parse_hex(hash_text.as_bytes()) {
            Ok(hash) => hash,
            // HashError messages name lengths, never the input.
            Err(err) => return json_error(StatusCode::BAD_REQUEST, &err.to_string()),
        };
        let count = {
            let guard = self.indexes.load(hash.kind());
            let Some(served) = guard.as_ref() else {
                if let Some(reason) = self.indexes.unavailable(hash.kind()) {
                    return json_error(StatusCode::SERVICE_UNAVAILABLE, &reason);
                }
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("no {} index is loaded on this server", hash.kind().label()),
                );
            };
            let index = served.index();
            // Warm requests (no window) go straight to the mapping.
            let decided = window.and_then(|window| {
                let block = index.lookup_block_span(&hash, PAGE);
                // The window is the block around the hash's position, or (when that did not
                // settle it, see `read_cold_async`) the whole prefix.
                let decided = [block, index.range_span(hash.prefix())]
                    .into_iter()
                    .find_map(|span| {
                        let bytes = ColdWindow::get(Some(window), served, span.clone())?;
                        index.lookup_in(&hash, bytes, span)
                    });
                // The hash lies beyond the window (rare): read the whole prefix directly too,
                // rather than fault it in through the page cache.
                decided.or_else(|| {
                    let prefix = index.range_span(hash.prefix());
                    let all = served.direct()?.read(prefix.clone()).ok()?;
                    index.lookup_in(&hash, all.get(prefix.clone())?, prefix)
                })
            });
            decided.unwrap_or_else(|| index.lookup(&hash)).unwrap_or(0)
        };
        let severity = self.config.thresholds.classify(count);
        let mut body = Vec::with_capacity(96);
        body.extend_from_slice(b"{\"passwordhash\":\"");
        let mut hex = [0u8; 40];
        let hex = &mut hex[..hash.kind().hex_len()];
        const_hex::encode_to_slice_upper(hash.as_bytes(), hex).expect("buffer sized for the kind");
        body.extend_from_slice(hex);
        body.extend_from_slice(b"\",\"timesseen\":");
        body.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        body.extend_from_slice(b",\"severity\":\"");
        body.extend_from_slice(severity.name().as_bytes());
        body.extend_from_slice(b"\"}");
        // The URL holds a full hash: `json_response` keeps it out of shared caches.
        json_response(StatusCode::OK, body)
    }

    /// `/healthz`; file paths and labels (`source`, `label`) only with `detail`.
    fn healthz(&self, detail: bool) -> Response<ResponseBody> {
        let mut body = String::from("{\"status\":\"");
        let served: Vec<_> = [HashKind::Sha1, HashKind::Ntlm]
            .into_iter()
            .filter_map(|k| self.indexes.get(k))
            .collect();
        body.push_str(if served.is_empty() {
            "unavailable"
        } else {
            "ok"
        });
        body.push_str("\",\"indexes\":[");
        for (i, s) in served.iter().enumerate() {
            let h = s.header();
            let _ = write!(
                body,
                "{}{{\"kind\":\"{}\",\"records\":{},\"build_time\":{},\"last_modified\":\"{}\"",
                if i > 0 { "," } else { "" },
                h.kind,
                h.record_count,
                h.build_time,
                s.last_modified().to_str().unwrap_or_default(),
            );
            if detail {
                let _ = write!(
                    body,
                    ",\"source\":\"{}\",\"label\":\"{}\"",
                    json_escape(&s.source().to_string()),
                    json_escape(&h.label),
                );
            }
            body.push('}');
        }
        body.push_str("]}");
        let status = if served.is_empty() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        json_response(status, body)
    }

    fn metrics_page(&self) -> Response<ResponseBody> {
        let mut response =
            Response::new(ResponseBody::from_bytes(self.metrics.render(&self.indexes)));
        response.headers_mut().insert(CONTENT_TYPE, PROMETHEUS_TEXT);
        response.headers_mut().insert(CACHE_CONTROL, NO_STORE);
        response
    }
}

/// The kind of index `req` reads, for the routes that read one (a well-formed `/range` or
/// `GET /checkhash` request).
fn read_kind<B>(route: Route, req: &Request<B>) -> Option<HashKind> {
    let path = req.uri().path();
    match route {
        Route::Range => {
            path.strip_prefix(RANGE_PATH)
                .map(|p| Prefix::parse(p.as_bytes()))?
                .ok()?;
            // A refused query (a repeated `mode`) reads no index.
            range_mode(req.uri().query()).ok()
        }
        Route::CheckHash => Some(lookup_hash(req)?.kind()),
        _ => None,
    }
}

/// The hash of a `GET /checkhash/{hash}` request.
fn lookup_hash<B>(req: &Request<B>) -> Option<Hash> {
    let hex = req.uri().path().strip_prefix(CHECKHASH_PATH)?;
    Hash::parse_hex(hex.as_bytes()).ok()
}

/// The index bytes answering `req` reads from `served`: a prefix's records for `/range`, one
/// lookup's window of them for `/checkhash` (for a direct read, widened to the pages that one
/// read gets anyway).
fn read_span<B>(
    served: &Served,
    route: Route,
    req: &Request<B>,
    direct: bool,
) -> Option<std::ops::Range<usize>> {
    let index = served.index();
    match route {
        Route::Range => {
            let prefix = req.uri().path().strip_prefix(RANGE_PATH)?;
            Some(index.range_span(Prefix::parse(prefix.as_bytes()).ok()?))
        }
        Route::CheckHash if direct => Some(index.lookup_block_span(&lookup_hash(req)?, PAGE)),
        Route::CheckHash => Some(index.lookup_span(&lookup_hash(req)?)),
        _ => None,
    }
}

/// The block a direct read of a lookup's window covers (see [`Index::lookup_block_span`]).
const PAGE: usize = 4096;

/// Index bytes read directly for one request ([`App::read_cold`]), and the index they came
/// from: a reload in between makes them stale, and the answer then reads the new mapping.
#[derive(Clone)]
struct ColdWindow {
    served: Arc<Served>,
    window: Window,
}

impl ColdWindow {
    /// The bytes `span` of `served`'s file, if this window holds them.
    fn get<'a>(
        this: Option<&'a Self>,
        served: &Arc<Served>,
        span: std::ops::Range<usize>,
    ) -> Option<&'a [u8]> {
        let this = this?;
        Arc::ptr_eq(&this.served, served).then(|| this.window.get(span))?
    }
}

/// Answers GET and HEAD with `f`, anything else with 405.
fn read_only<B>(
    req: &Request<B>,
    f: impl FnOnce() -> Response<ResponseBody>,
) -> Response<ResponseBody> {
    match *req.method() {
        Method::GET | Method::HEAD => f(),
        _ => method_not_allowed(READ_ALLOW),
    }
}

fn range_headers(headers: &mut HeaderMap, served: &Served, etag: HeaderValue) {
    headers.insert(CACHE_CONTROL, RANGE_CACHE_CONTROL);
    headers.insert(ETAG, etag);
    headers.insert(LAST_MODIFIED, served.last_modified().clone());
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    headers.insert(VARY, RANGE_VARY);
}

/// The CORS preflight answer for `/range`.
fn preflight() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Add-Padding"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// A `/range` 400 with its one-line reason, readable by browser clients (CORS).
fn range_error(reason: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = text(StatusCode::BAD_REQUEST, reason);
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    response
}

/// 401 with a `Bearer` challenge; the body says what is missing, never what was sent.
fn unauthorized() -> Response<ResponseBody> {
    let mut response = json_error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, BEARER_CHALLENGE);
    response
}

fn not_found() -> Response<ResponseBody> {
    text(StatusCode::NOT_FOUND, "Not Found")
}

fn method_not_allowed(allow: HeaderValue) -> Response<ResponseBody> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    response.headers_mut().insert(ALLOW, allow);
    response
}

/// A `text/plain` response.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from_bytes(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
    response
}

fn json_error(status: StatusCode, message: &str) -> Response<ResponseBody> {
    json_response(
        status,
        format!("{{\"error\":\"{}\"}}", json_escape(message)),
    )
}

/// A JSON answer with `Cache-Control: no-store`: these answers describe live state or echo a
/// full hash, so no shared cache may keep them.
fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from_bytes(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, APPLICATION_JSON);
    headers.insert(CACHE_CONTROL, NO_STORE);
    response
}

/// Escapes `s` for use inside a JSON string.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `/range` answer when `mode` is given more than once.
const MODE_REPEATED: &str = "The mode parameter is given more than once";

/// The index a `/range` query selects: `mode=ntlm` (value in any case) selects NTLM, any other
/// value or no `mode` SHA-1, as upstream. `mode` given more than once is refused: the two could
/// disagree, and answering SHA-1 to an NTLM client would report every password as clean.
fn range_mode(query: Option<&str>) -> Result<HashKind, &'static str> {
    let mut modes = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('=').filter(|(k, _)| *k == "mode"));
    let kind = match modes.next() {
        Some((_, v)) if v.eq_ignore_ascii_case("ntlm") => HashKind::Ntlm,
        _ => HashKind::Sha1,
    };
    match modes.next() {
        Some(_) => Err(MODE_REPEATED),
        None => Ok(kind),
    }
}

/// Whether the query asks for `/healthz` detail (`detail=1` or `detail=true`).
fn wants_detail(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "detail=1" || pair.eq_ignore_ascii_case("detail=true"))
    })
}

fn is_true(value: &HeaderValue) -> bool {
    value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"true")
}

/// Whether `Accept-Encoding` allows gzip: `gzip`, `x-gzip` or `*` with a non-zero quality,
/// unless gzip itself is refused with `q=0`.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let allowed = parts
                .filter_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .or_else(|| p.trim().strip_prefix("Q="))
                })
                .next()
                .is_none_or(|q| q.trim().parse::<f32>().is_ok_and(|q| q > 0.0));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(allowed);
            } else if coding == "*" {
                any = Some(allowed);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether the `If-None-Match` field (all its lines, which form one list) matches `etag`, by
/// the weak comparison RFC 9110 asks for this header. Entity tags are quoted strings that may
/// hold commas; a line that is not a valid list matches nothing.
pub(crate) fn etag_matches<'a>(
    lines: impl IntoIterator<Item = &'a HeaderValue>,
    etag: &HeaderValue,
) -> bool {
    let ours = etag.as_bytes();
    let ours = ours.strip_prefix(b"W/").unwrap_or(ours);
    let Some(ours) = ours.strip_prefix(b"\"").and_then(|t| t.strip_suffix(b"\"")) else {
        return false;
    };
    lines
        .into_iter()
        .any(|line| list_matches(line.as_bytes(), ours).unwrap_or(false))
}

/// Whether a list of entity tags (`#entity-tag`, or `*`) holds the opaque tag `ours`; `None`
/// when the list is malformed.
fn list_matches(mut rest: &[u8], ours: &[u8]) -> Option<bool> {
    let skip = |s: &[u8], set: &[u8]| -> usize { s.iter().take_while(|b| set.contains(b)).count() };
    loop {
        rest = &rest[skip(rest, b" \t,")..];
        if rest.is_empty() {
            return Some(false);
        }
        if rest[0] == b'*' {
            let after = &rest[1..];
            let after = &after[skip(after, b" \t")..];
            return (after.is_empty() || after[0] == b',').then_some(true);
        }
        let tag = rest
            .strip_prefix(b"W/")
            .unwrap_or(rest)
            .strip_prefix(b"\"")?;
        let end = memchr::memchr(b'"', tag)?;
        if &tag[..end] == ours {
            return Some(true);
        }
        rest = &tag[end + 1..];
        rest = &rest[skip(rest, b" \t")..];
        if !rest.is_empty() && rest[0] != b',' {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&headers(&[(
            "accept-encoding",
            "br;q=1.0, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[(
            "accept-encoding",
            "*, gzip;q=0.0"
        )])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let etag = HeaderValue::from_static("\"sha1-1\"");
        let matches = |lines: &[&'static str]| {
            let lines: Vec<_> = lines.iter().map(|l| HeaderValue::from_static(l)).collect();
            etag_matches(&lines, &etag)
        };
        assert!(matches(&["\"sha1-1\""]));
        assert!(matches(&["W/\"x\", W/\"sha1-1\""]));
        assert!(matches(&["*"]));
        assert!(matches(&["\"a\"", "\"sha1-1\""]), "a list over two lines");
        assert!(matches(&["\"a,b\" ,\"sha1-1\""]), "a comma inside a tag");
        assert!(
            !matches(&["\"x, *, y\""]),
            "a quoted star is not a wildcard"
        );
        assert!(!matches(&["\"x, \"sha1-1\""]), "malformed");
        assert!(!matches(&["\"sha1-2\""]));
        assert!(!matches(&["sha1-1"]));
        assert!(!matches(&[]));
    }

    #[test]
    fn mode_query_selects_ntlm_only_for_ntlm_and_only_once() {
        assert_eq!(range_mode(Some("mode=ntlm")), Ok(HashKind::Ntlm));
        assert_eq!(range_mode(Some("x=1&mode=NTLM")), Ok(HashKind::Ntlm));
        assert_eq!(range_mode(Some("mode=sha1")), Ok(HashKind::Sha1));
        assert_eq!(range_mode(Some("mode=ntlmx")), Ok(HashKind::Sha1));
        assert_eq!(range_mode(None), Ok(HashKind::Sha1));
        assert_eq!(range_mode(Some("mode=ntlm&mode=ntlm")), Err(MODE_REPEATED));
        assert_eq!(range_mode(Some("mode=sha1&mode=ntlm")), Err(MODE_REPEATED));
    }
}
