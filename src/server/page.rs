//! The check page at `/`: one HTML file, one script, one style sheet, all compiled into the binary
//! (no external fonts, scripts or CDNs, so it works in an air-gapped network), and
//! `/config.json`, the severity thresholds and the hash kinds served, which the script reads.
//!
//! The script hashes the password in the browser and asks only for `/range/<first 5 hex>` with
//! `Add-Padding: true`; nothing typed into the page reaches the server. Every page answer carries
//! a strict `Content-Security-Policy` (no inline script or style, connections to this origin only,
//! no form submission), `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.

use bytes::Bytes;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{Response, StatusCode};

use crate::hash::HashKind;
use crate::severity::Thresholds;

use super::body::ResponseBody;
use super::indexes::{IndexSet, IndexSource};

/// The page's HTML.
const INDEX_HTML: &str = include_str!("page/index.html");

/// The page's script: hashing (Web Crypto, or its own SHA-1 and MD4 on plain http), the range
/// request, local matching, tiers and the context rules of `docs/CONTEXT.md`.
const APP_JS: &str = include_str!("page/app.js");

/// The page's style sheet.
const STYLE_CSS: &str = include_str!("page/style.css");

/// The policy of every page answer. `form-action 'none'` keeps a password out of any URL even if
/// the script fails to load and the browser falls back to submitting the form; `img-src data:`
/// allows only the empty inline favicon, which stops browsers asking for `/favicon.ico`.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");

/// One of the page's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `/` and `/index.html`: the page.
    Html,
    /// `/app.js`.
    Script,
    /// `/style.css`.
    Style,
    /// `/config.json`: thresholds and kinds served, built per request.
    Config,
}

impl Asset {
    /// The asset a path names, if any.
    pub fn of(path: &str) -> Option<Asset> {
        match path {
            "/" | "/index.html" => Some(Asset::Html),
            "/app.js" => Some(Asset::Script),
            "/style.css" => Some(Asset::Style),
            "/config.json" => Some(Asset::Config),
            _ => None,
        }
    }

    /// The canonical path, as logged.
    pub const fn path(self) -> &'static str {
        match self {
            Asset::Html => "/",
            Asset::Script => "/app.js",
            Asset::Style => "/style.css",
            Asset::Config => "/config.json",
        }
    }

    /// The answer: the embedded file, or the configuration of this server now.
    pub(crate) fn respond(
        self,
        thresholds: &Thresholds,
        indexes: &IndexSet,
    ) -> Response<ResponseBody> {
        let (content_type, body, cache) = match self {
            Asset::Html => (
                "text/html; charset=utf-8",
                Bytes::from_static(INDEX_HTML.as_bytes()),
                "no-cache",
            ),
            Asset::Script => (
                "text/javascript; charset=utf-8",
                Bytes::from_static(APP_JS.as_bytes()),
                "no-cache",
            ),
            Asset::Style => (
                "text/css; charset=utf-8",
                Bytes::from_static(STYLE_CSS.as_bytes()),
                "no-cache",
            ),
            // The kinds served change on reload: never cached.
            Asset::Config => (
                "application/json",
                Bytes::from(config_json(thresholds, indexes)),
                "no-store",
            ),
        };
        let mut response = Response::new(ResponseBody::from_bytes(body));
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        security_headers(headers);
        response
    }
}

/// The headers every page answer carries.
fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        CROSS_ORIGIN_RESOURCE_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// `{"thresholds":{"low":1,...},"kinds":["sha1","ntlm"],"sample":true}`: the tiers' smallest
/// counts, the kinds served now, and whether any of them is the bundled sample (not real data).
pub fn config_json(thresholds: &Thresholds, indexes: &IndexSet) -> String {
    let served: Vec<(HashKind, _)> = [HashKind::Sha1, HashKind::Ntlm]
        .into_iter()
        .filter_map(|k| indexes.get(k).map(|s| (k, s)))
        .collect();
    let sample = served
        .iter()
        .any(|(_, s)| *s.source() == IndexSource::Sample);
    let kinds: Vec<String> = served.iter().map(|(k, _)| format!("\"{k}\"")).collect();
    format!(
        "{{\"thresholds\":{{\"low\":{},\"medium\":{},\"high\":{},\"critical\":{}}},\"kinds\":[{}],\"sample\":{sample}}}",
        thresholds.low,
        thresholds.medium,
        thresholds.high,
        thresholds.critical,
        kinds.join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_named_by_exact_paths() {
        for asset in [Asset::Html, Asset::Script, Asset::Style, Asset::Config] {
            assert_eq!(Asset::of(asset.path()), Some(asset));
        }
        assert_eq!(Asset::of("/index.html"), Some(Asset::Html));
        assert_eq!(Asset::of("/app.js/"), None);
        assert_eq!(Asset::of("//"), None);
        assert_eq!(Asset::of("/favicon.ico"), None);
    }

    #[test]
    fn page_has_no_inline_script_or_style_and_no_external_reference() {
        let html = INDEX_HTML.to_ascii_lowercase();
        // Every <script> has a src, and there is no style element or attribute (the CSP would
        // block them anyway; this keeps the page honest about it).
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script src=\"app.js\" defer></script>"));
        assert!(!html.contains("<style") && !html.contains(" style="));
        // No inline event handlers (` onclick=` and the like).
        for (at, _) in html.match_indices(" on") {
            let name: String = html[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            assert!(
                !html[at + 1 + name.len()..].starts_with('='),
                "inline handler {name}"
            );
        }
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn")
            );
        }
    }

    #[test]
    fn config_lists_served_kinds() {
        let json = config_json(&Thresholds::DEFAULT, &IndexSet::sample());
        assert_eq!(
            json,
            "{\"thresholds\":{\"low\":1,\"medium\":10,\"high\":1000,\"critical\":100000},\"kinds\":[\"sha1\",\"ntlm\"],\"sample\":true}"
        );
    }
}
