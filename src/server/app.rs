//! Pure request -> response routing: no I/O, no awaits, so every rule can be tested by building a
//! `Request` and reading the `Response`.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW,
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    LAST_MODIFIED, VARY,
};
use hyper::{Method, Request, Response, StatusCode};

use crate::hash::{Hash, HashKind, Prefix};

use super::body::ResponseBody;
use super::indexes::{IndexSet, Served};
use super::metrics::Metrics;
use super::render::{append_padding, gzip_compressed, gzip_stored, render_range};
use super::route::{Route, CHECKHASH_PATH, RANGE_PATH};
use super::Config;

/// The request header that asks for padding.
pub const ADD_PADDING: HeaderName = HeaderName::from_static("add-padding");

/// `Cache-Control` of `/range` responses: 31 days, as upstream.
const RANGE_CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=2678400");

/// `Vary` of `/range` responses. `Accept-Encoding` is always listed because the same URL may be
/// answered with or without gzip, which shared caches must know even for identity answers.
const RANGE_VARY: HeaderValue = HeaderValue::from_static("Add-Padding, Accept-Encoding");

/// Methods `/range` answers.
const RANGE_ALLOW: HeaderValue = HeaderValue::from_static("GET, HEAD, OPTIONS");

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
}

impl App {
    /// An application answering from `indexes` with `config`.
    pub fn new(indexes: Arc<IndexSet>, config: Config) -> App {
        App {
            indexes,
            config,
            metrics: Metrics::new(),
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
        match route {
            Route::Range => match path.strip_prefix(RANGE_PATH) {
                Some(prefix) => self.range(req, prefix),
                None => not_found(),
            },
            Route::CheckHash => match path.strip_prefix(CHECKHASH_PATH) {
                Some(hash) => read_only(req, || self.checkhash(hash)),
                None => not_found(),
            },
            Route::Healthz => read_only(req, || self.healthz()),
            Route::Metrics => read_only(req, || self.metrics_page()),
            Route::Other => not_found(),
        }
    }

    fn range<B>(&self, req: &Request<B>, prefix_text: &str) -> Response<ResponseBody> {
        match *req.method() {
            Method::GET | Method::HEAD => {}
            Method::OPTIONS => return preflight(),
            _ => return method_not_allowed(RANGE_ALLOW),
        }
        let prefix = match Prefix::parse(prefix_text.as_bytes()) {
            Ok(prefix) => prefix,
            Err(err) => return text(StatusCode::BAD_REQUEST, err.to_string()),
        };
        let kind = if wants_ntlm(req.uri().query()) {
            HashKind::Ntlm
        } else {
            HashKind::Sha1
        };
        let guard = self.indexes.load(kind);
        let Some(served) = guard.as_ref() else {
            let reason = match kind {
                HashKind::Ntlm => NTLM_NOT_LOADED,
                HashKind::Sha1 => SHA1_NOT_LOADED,
            };
            return text(StatusCode::BAD_REQUEST, reason);
        };
        let headers = req.headers();
        let padded = headers.get(ADD_PADDING).is_some_and(is_true);
        let gzip = accepts_gzip(headers);
        let etag = self.range_etag(served, prefix, padded, gzip);
        if !padded {
            if let Some(candidates) = headers.get(IF_NONE_MATCH) {
                if etag_matches(candidates, &etag) {
                    let mut response = Response::new(ResponseBody::empty());
                    *response.status_mut() = StatusCode::NOT_MODIFIED;
                    range_headers(response.headers_mut(), served, etag);
                    return response;
                }
            }
        }
        let mut body = render_range(served.index().range(prefix));
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

    fn checkhash(&self, hash_text: &str) -> Response<ResponseBody> {
        let hash = match Hash::parse_hex(hash_text.as_bytes()) {
            Ok(hash) => hash,
            // HashError messages name lengths, never the input.
            Err(err) => return json_error(StatusCode::BAD_REQUEST, &err.to_string()),
        };
        let count = {
            let guard = self.indexes.load(hash.kind());
            let Some(served) = guard.as_ref() else {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("no {} index is loaded on this server", hash.kind().label()),
                );
            };
            served.index().lookup(&hash).unwrap_or(0)
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

    fn healthz(&self) -> Response<ResponseBody> {
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
                "{}{{\"kind\":\"{}\",\"records\":{},\"build_time\":{},\"last_modified\":\"{}\",\"source\":\"{}\",\"label\":\"{}\"}}",
                if i > 0 { "," } else { "" },
                h.kind,
                h.record_count,
                h.build_time,
                s.last_modified().to_str().unwrap_or_default(),
                json_escape(&s.source().to_string()),
                json_escape(&h.label),
            );
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

/// Whether the query selects the NTLM index (`mode=ntlm`, value in any case).
fn wants_ntlm(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(k, v)| k == "mode" && v.eq_ignore_ascii_case("ntlm"))
        })
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

/// Whether an `If-None-Match` value matches `etag` (weak comparison, as RFC 9110 asks for this
/// header).
pub(crate) fn etag_matches(candidates: &HeaderValue, etag: &HeaderValue) -> bool {
    let opaque = |tag: &[u8]| -> Option<Vec<u8>> {
        let tag = tag.trim_ascii();
        let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
        tag.strip_prefix(b"\"")?
            .strip_suffix(b"\"")
            .map(<[u8]>::to_vec)
    };
    let Some(ours) = opaque(etag.as_bytes()) else {
        return false;
    };
    candidates
        .as_bytes()
        .split(|&b| b == b',')
        .any(|c| c.trim_ascii() == b"*" || opaque(c).is_some_and(|c| c == ours))
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
        assert!(etag_matches(&HeaderValue::from_static("\"sha1-1\""), &etag));
        assert!(etag_matches(
            &HeaderValue::from_static("W/\"x\", W/\"sha1-1\""),
            &etag
        ));
        assert!(etag_matches(&HeaderValue::from_static("*"), &etag));
        assert!(!etag_matches(
            &HeaderValue::from_static("\"sha1-2\""),
            &etag
        ));
        assert!(!etag_matches(&HeaderValue::from_static("sha1-1"), &etag));
    }

    #[test]
    fn mode_query_selects_ntlm_only_for_ntlm() {
        assert!(wants_ntlm(Some("mode=ntlm")));
        assert!(wants_ntlm(Some("x=1&mode=NTLM")));
        assert!(!wants_ntlm(Some("mode=sha1")));
        assert!(!wants_ntlm(Some("mode=ntlmx")));
        assert!(!wants_ntlm(None));
    }
}
