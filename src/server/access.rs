//! Access control: which routes are served at all ([`RouteSet`]) and bearer tokens for the
//! sensitive ones ([`Tokens`]).
//!
//! Tokens are kept only as SHA-256 digests and a presented token is compared against every one of
//! them in constant time, so neither memory dumps nor response timing give a token away; no token
//! is ever logged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::route::Route;

/// Route names accepted by `--routes`; `page` is the check page at `/`.
pub const ROUTE_NAMES: [&str; 5] = ["range", "checkhash", "healthz", "metrics", "page"];

/// A set of route names (see [`ROUTE_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSet(u8);

impl RouteSet {
    /// Every route.
    pub const ALL: RouteSet = RouteSet((1 << ROUTE_NAMES.len()) - 1);

    /// No route.
    pub const NONE: RouteSet = RouteSet(0);

    /// The routes that need a token by default when a token file is given.
    pub const DEFAULT_TOKEN_ROUTES: RouteSet = RouteSet(0b1010);

    fn bit(name: &str) -> Option<u8> {
        ROUTE_NAMES.iter().position(|n| *n == name).map(|i| 1 << i)
    }

    /// Whether the set holds `route`. [`Route::Other`] is never in a set.
    pub fn contains(self, route: Route) -> bool {
        match route {
            Route::Other => false,
            route => self.0 & Self::bit(route.name()).unwrap_or(0) != 0,
        }
    }

    /// Whether the set holds the check page (`page`).
    pub fn contains_page(self) -> bool {
        self.0 & Self::bit("page").unwrap_or(0) != 0
    }
}

impl Default for RouteSet {
    fn default() -> Self {
        RouteSet::ALL
    }
}

/// A `--routes` value that names an unknown route.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown route {0:?} (known: range, checkhash, healthz, metrics, page; or none)")]
pub struct UnknownRoute(String);

impl FromStr for RouteSet {
    type Err = UnknownRoute;

    /// Comma-separated route names, or `none` (empty set).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = 0;
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "none" {
                continue;
            }
            set |= Self::bit(name).ok_or_else(|| UnknownRoute(name.to_owned()))?;
        }
        Ok(RouteSet(set))
    }
}

impl fmt::Display for RouteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ROUTE_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("cannot read token file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        reason: std::io::Error,
    },
    /// The file holds no token (only blank or `#` comment lines), which would lock every
    /// protected route.
    #[error(
        "token file {path} holds no token (one token per line; blank and # lines are ignored)"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The bearer tokens of a token file, as SHA-256 digests; reloadable.
pub struct Tokens {
    /// The token file.
    path: PathBuf,
    /// Digests of the tokens currently accepted.
    digests: ArcSwap<Vec<[u8; 32]>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the digests: they identify tokens.
        f.debug_struct("Tokens")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Reads the token file at `path`: one token per line, surrounding whitespace trimmed, blank
    /// lines and lines starting with `#` ignored.
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        Ok(Tokens {
            path: path.to_owned(),
            digests: ArcSwap::from_pointee(read_digests(path)?),
        })
    }

    /// Re-reads the file; on error the previous tokens stay (and the error is logged).
    pub fn reload(&self) -> Result<(), TokenError> {
        match read_digests(&self.path) {
            Ok(digests) => {
                let count = digests.len();
                self.digests.store(Arc::new(digests));
                tracing::info!(path = %self.path.display(), tokens = count, "token file reloaded");
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "token reload refused; the previous tokens stay");
                Err(err)
            }
        }
    }

    /// Whether `token` is one of the tokens. Every stored digest is compared, in constant time.
    pub fn accepts(&self, token: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(token).into();
        let mut found = subtle::Choice::from(0);
        for digest in self.digests.load().iter() {
            found |= digest.ct_eq(&presented);
        }
        found.into()
    }

    /// Whether the request carries `Authorization: Bearer <token>` with an accepted token.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter_map(|v| bearer(v.as_bytes()))
            .any(|t| self.accepts(t))
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn read_digests(path: &Path) -> Result<Vec<[u8; 32]>, TokenError> {
    let text = std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        reason: source,
    })?;
    let digests: Vec<[u8; 32]> = text
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .map(|token| Sha256::digest(token).into())
        .collect();
    if digests.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_sets_parse_and_print() {
        let set: RouteSet = "range, healthz".parse().unwrap();
        assert!(set.contains(Route::Range));
        assert!(set.contains(Route::Healthz));
        assert!(!set.contains(Route::CheckHash));
        assert!(!set.contains(Route::Metrics));
        assert!(!set.contains_page());
        assert_eq!(set.to_string(), "range,healthz");
        assert_eq!("none".parse::<RouteSet>().unwrap(), RouteSet::NONE);
        assert_eq!(
            RouteSet::ALL.to_string(),
            "range,checkhash,healthz,metrics,page"
        );
        assert_eq!(
            RouteSet::DEFAULT_TOKEN_ROUTES.to_string(),
            "checkhash,metrics"
        );
        assert!("range,admin".parse::<RouteSet>().is_err());
    }

    #[test]
    fn tokens_match_exactly_and_comments_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# ops\n\n  alpha-token  \r\nbeta\n").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.accepts(b"alpha-token"));
        assert!(tokens.accepts(b"beta"));
        assert!(!tokens.accepts(b"# ops"));
        assert!(!tokens.accepts(b"alpha"));
        assert!(!tokens.accepts(b""));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "bearer   beta ".parse().unwrap());
        assert!(tokens.authorizes(&headers));
        headers.insert(AUTHORIZATION, "Basic beta".parse().unwrap());
        assert!(!tokens.authorizes(&headers));
        headers.insert(AUTHORIZATION, "Bearerbeta".parse().unwrap());
        assert!(!tokens.authorizes(&headers));

        std::fs::write(&path, "# nothing\n\n").unwrap();
        assert!(matches!(Tokens::load(&path), Err(TokenError::Empty { .. })));
        assert!(tokens.reload().is_err());
        assert!(
            tokens.accepts(b"beta"),
            "a refused reload keeps the old tokens"
        );
        std::fs::write(&path, "gamma\n").unwrap();
        tokens.reload().unwrap();
        assert!(tokens.accepts(b"gamma"));
        assert!(!tokens.accepts(b"beta"));
    }
}
