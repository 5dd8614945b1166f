//! Context checks: does a password contain the user's name, e-mail address or organisation, or an
//! obvious variant of them (other case, leetspeak, reversed, digits or a year appended)?
//!
//! The rules are listed in `docs/CONTEXT.md`; the check page (`src/server/page/app.js`) follows
//! the same list, and `tests/data/context_cases.json` holds the cases both must agree on.
//!
//! Rules, in short:
//! - Tokens come from each context entry: the entry itself; for an e-mail address its local part
//!   and domain; its words (runs of letters and digits; an e-mail's top-level domain is not a
//!   word); and, unless it is an e-mail address, the entry with everything but letters and
//!   digits removed. Tokens shorter than
//!   [`MIN_TOKEN_CHARS`] characters are ignored; tokens equal ignoring case are kept once.
//! - A token matches when the password contains it as written ([`MatchKind::Exact`]), ignoring
//!   case ([`MatchKind::Case`]), after folding look-alike characters ([`MatchKind::Leet`]), or
//!   reversed after folding ([`MatchKind::Reversed`]). Containment covers digits or a year
//!   appended or prepended.
//! - A matched token is not reported when a longer matched token contains it.

use std::fmt;

/// Tokens shorter than this many characters are ignored: they would match too many passwords.
pub const MIN_TOKEN_CHARS: usize = 3;

/// How a token was found in the password; the first that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    /// The password contains the token exactly as written.
    Exact,
    /// The password contains the token in another case.
    Case,
    /// The password contains the token with look-alike characters (`p4ssw0rd`).
    Leet,
    /// The password contains the token backwards.
    Reversed,
}

impl MatchKind {
    /// Lower-case name used in output and in `tests/data/context_cases.json`.
    pub const fn name(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Case => "case",
            MatchKind::Leet => "leet",
            MatchKind::Reversed => "reversed",
        }
    }

    /// A few plain words for people.
    pub const fn describe(self) -> &'static str {
        match self {
            MatchKind::Exact => "as written",
            MatchKind::Case => "in another case",
            MatchKind::Leet => "with look-alike characters",
            MatchKind::Reversed => "reversed",
        }
    }
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One token derived from a context entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    /// The token as derived (original case).
    text: String,
    /// Position of the entry it came from.
    entry: usize,
    /// Lower-cased.
    lower: String,
    /// Lower-cased and folded (see [`fold`]).
    folded: String,
    /// Folded, then reversed.
    reversed: String,
}

/// A context warning: a token of an entry found in the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The token found (as derived from the entry, not from the password).
    pub token: String,
    /// Position of the context entry the token came from.
    pub entry: usize,
    /// How it was found.
    pub kind: MatchKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contains {:?} {}", self.token, self.kind.describe())
    }
}

/// Context entries turned into tokens once, to check many passwords against.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The tokens, in derivation order.
    tokens: Vec<Token>,
}

impl Context {
    /// Tokens of `entries` (user name, e-mail address, organisation, ...), in order.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Context {
        let mut tokens: Vec<Token> = Vec::new();
        for (entry, text) in entries.iter().enumerate() {
            for candidate in candidates(text.as_ref()) {
                if candidate.chars().count() < MIN_TOKEN_CHARS {
                    continue;
                }
                let lower = candidate.to_lowercase();
                if tokens.iter().any(|t| t.lower == lower) {
                    continue;
                }
                let folded = fold(&lower);
                let reversed = folded.chars().rev().collect();
                tokens.push(Token {
                    text: candidate,
                    entry,
                    lower,
                    folded,
                    reversed,
                });
            }
        }
        Context { tokens }
    }

    /// Context from a comma-separated list, as `check --context` takes it.
    pub fn parse_list(list: &str) -> Context {
        let entries: Vec<&str> = list.split(',').collect();
        Context::new(&entries)
    }

    /// Whether there is nothing to check against.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens derived, in order (for display and documentation).
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| t.text.as_str())
    }

    /// The warnings for `password`, in token order.
    pub fn check(&self, password: &str) -> Vec<Warning> {
        let lower = password.to_lowercase();
        let folded = fold(&lower);
        let matched: Vec<(&Token, MatchKind)> = self
            .tokens
            .iter()
            .filter_map(|t| {
                let kind = if password.contains(&t.text) {
                    MatchKind::Exact
                } else if lower.contains(&t.lower) {
                    MatchKind::Case
                } else if folded.contains(&t.folded) {
                    MatchKind::Leet
                } else if folded.contains(&t.reversed) {
                    MatchKind::Reversed
                } else {
                    return None;
                };
                Some((t, kind))
            })
            .collect();
        matched
            .iter()
            .filter(|(t, _)| {
                !matched.iter().any(|(longer, _)| {
                    longer.folded.chars().count() > t.folded.chars().count()
                        && (longer.folded.contains(&t.folded)
                            || longer.folded.contains(&t.reversed))
                })
            })
            .map(|(t, kind)| Warning {
                token: t.text.clone(),
                entry: t.entry,
                kind: *kind,
            })
            .collect()
    }
}

/// The token candidates of one entry, before the length and duplicate filters.
fn candidates(entry: &str) -> Vec<String> {
    let entry = entry.trim();
    let mut out = vec![entry.to_owned()];
    let mut tld = None;
    if let Some((local, domain)) = entry.rsplit_once('@') {
        out.push(local.to_owned());
        out.push(domain.to_owned());
        if let Some((_, last)) = domain.rsplit_once('.') {
            tld = Some(last);
        }
    }
    let mut words: Vec<&str> = entry
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(tld) = tld {
        // The e-mail's top-level domain is the last word (`com`): too common to warn about.
        if words.last() == Some(&tld) {
            words.pop();
        }
    }
    out.extend(words.iter().map(|w| (*w).to_owned()));
    if !entry.contains('@') {
        out.push(entry.chars().filter(|c| c.is_alphanumeric()).collect());
    }
    out
}

/// Folds look-alike characters of a lower-cased string onto one letter each, so `p4$$w0rd` and
/// `password` fold alike. `l`, `1`, `!` and `|` all fold to `i`, since each can stand for either.
pub fn fold(lower: &str) -> String {
    lower
        .chars()
        .map(|c| match c {
            '4' | '@' => 'a',
            '8' => 'b',
            '3' => 'e',
            '6' | '9' => 'g',
            'l' | '1' | '!' | '|' => 'i',
            '0' => 'o',
            '5' | '$' => 's',
            '7' | '+' => 't',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared case table, also run against the page's JavaScript by the browser test.
    const CASES: &str = include_str!("../tests/data/context_cases.json");

    #[test]
    fn shared_case_table() {
        let cases: serde_json::Value = serde_json::from_str(CASES).unwrap();
        let cases = cases["cases"].as_array().unwrap();
        assert!(cases.len() >= 20, "the table has {} cases", cases.len());
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let entries: Vec<&str> = case["context"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
                .collect();
            let context = Context::new(&entries);
            if let Some(tokens) = case.get("tokens") {
                let expected: Vec<&str> = tokens
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect();
                assert_eq!(context.tokens().collect::<Vec<_>>(), expected, "{name}");
            }
            let got: Vec<serde_json::Value> = context
                .check(case["password"].as_str().unwrap())
                .iter()
                .map(|w| {
                    serde_json::json!({"token": w.token, "entry": w.entry, "kind": w.kind.name()})
                })
                .collect();
            assert_eq!(&serde_json::Value::Array(got), &case["expect"], "{name}");
        }
    }

    #[test]
    fn list_parsing_splits_on_commas() {
        let context = Context::parse_list("alice, alice@example.com ,Acme");
        assert_eq!(
            context.tokens().collect::<Vec<_>>(),
            [
                "alice",
                "alice@example.com",
                "example.com",
                "example",
                "Acme"
            ]
        );
        assert!(Context::parse_list("").is_empty());
        assert!(Context::parse_list("ab,,x").is_empty());
    }
}
