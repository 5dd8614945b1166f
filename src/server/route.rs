//! Route classification and the privacy-safe form of a path for logs.

use std::fmt;

use crate::hash::Prefix;

use super::page::Asset;

/// Path prefix of the range endpoint.
pub(crate) const RANGE_PATH: &str = "/range/";

/// Path prefix of the full-hash endpoint.
pub(crate) const CHECKHASH_PATH: &str = "/checkhash/";

/// Path of `POST /checkhash` (the hash in the body); `/checkhash/` works too.
pub(crate) const CHECKHASH_POST_PATH: &str = "/checkhash";

/// Which endpoint a request is for; the only request detail used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/range/{prefix}`.
    Range,
    /// `/checkhash/{hash}`.
    CheckHash,
    /// `/healthz`.
    Healthz,
    /// `/metrics`.
    Metrics,
    /// The check page: `/`, its script, style sheet and `/config.json` (see [`super::page`]).
    Page,
    /// Anything else (404).
    Other,
}

impl Route {
    /// Every route, in metric order.
    pub const ALL: [Route; 6] = [
        Route::Range,
        Route::CheckHash,
        Route::Healthz,
        Route::Metrics,
        Route::Page,
        Route::Other,
    ];

    /// The route a path belongs to.
    #[inline]
    pub fn of(path: &str) -> Route {
        if path.starts_with(RANGE_PATH) {
            Route::Range
        } else if path.starts_with(CHECKHASH_PATH) || path == CHECKHASH_POST_PATH {
            Route::CheckHash
        } else if path == "/healthz" {
            Route::Healthz
        } else if path == "/metrics" {
            Route::Metrics
        } else if Asset::of(path).is_some() {
            Route::Page
        } else {
            Route::Other
        }
    }

    /// Name used in logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Route::Range => "range",
            Route::CheckHash => "checkhash",
            Route::Healthz => "healthz",
            Route::Metrics => "metrics",
            Route::Page => "page",
            Route::Other => "other",
        }
    }

    /// Position in [`Route::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The path as it may be logged: a valid 5-hex prefix for `/range` only when
    /// `keep_prefix` (a prefix with a timestamp is 20 bits of a user's hash), never the hash of
    /// `/checkhash`, and nothing of an unknown path (it could hold a hash too).
    pub fn redact(self, path: &str, keep_prefix: bool) -> RedactedPath {
        let prefix = match self {
            Route::Range => path
                .strip_prefix(RANGE_PATH)
                .map(|p| Prefix::parse(p.as_bytes()).ok()),
            _ => None,
        };
        RedactedPath {
            route: self,
            prefix,
            keep_prefix,
            asset: Asset::of(path),
        }
    }
}

/// A path with everything private removed; see [`Route::redact`].
#[derive(Debug, Clone, Copy)]
pub struct RedactedPath {
    /// The route.
    route: Route,
    /// For `/range`: the prefix, when valid.
    prefix: Option<Option<Prefix>>,
    /// Whether a valid prefix is shown.
    keep_prefix: bool,
    /// The page asset, for [`Route::Page`].
    asset: Option<Asset>,
}

impl fmt::Display for RedactedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.route, self.prefix) {
            (Route::Range, Some(Some(prefix))) if self.keep_prefix => write!(f, "/range/{prefix}"),
            (Route::Range, Some(Some(_))) => f.write_str("/range/<prefix>"),
            (Route::Range, _) => f.write_str("/range/<invalid>"),
            (Route::CheckHash, _) => f.write_str("/checkhash/<redacted>"),
            (Route::Healthz, _) => f.write_str("/healthz"),
            (Route::Metrics, _) => f.write_str("/metrics"),
            (Route::Page, _) => f.write_str(self.asset.map_or("<unmatched>", Asset::path)),
            (Route::Other, _) => f.write_str("<unmatched>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_at_most_a_prefix() {
        let hash = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
        let cases = [
            ("/range/5baa6", "/range/5BAA6"),
            (&*format!("/range/{hash}"), "/range/<invalid>"),
            (&*format!("/checkhash/{hash}"), "/checkhash/<redacted>"),
            (&*format!("/pwnedpassword/{hash}"), "<unmatched>"),
            ("/healthz", "/healthz"),
            ("/", "/"),
            ("/index.html", "/"),
            ("/config.json", "/config.json"),
        ];
        for (path, logged) in cases {
            assert_eq!(Route::of(path).redact(path, true).to_string(), logged);
            let hidden = logged.replace("5BAA6", "<prefix>");
            assert_eq!(Route::of(path).redact(path, false).to_string(), hidden);
        }
    }
}
