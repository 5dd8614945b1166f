//! Validation of upstream `/range` bodies: every line `SUFFIX:COUNT`, CRLF between lines, hex
//! suffixes of the kind's length, counts from 1 to `u32::MAX`, strictly ascending.

use crate::hash::{decode_hex, HashKind, Prefix, MAX_HASH_LEN, PREFIX_HEX_LEN};

/// Longest decimal count accepted (`4294967295` has ten digits).
const MAX_COUNT_DIGITS: usize = 10;

/// Why a `/range` body was refused. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A line ended with a bare LF or a stray CR.
    #[error("line {line}: lines must be separated by CRLF")]
    LineEnding {
        /// The offending line.
        line: usize,
    },
    /// Not `SUFFIX:COUNT` with a suffix of the kind's length.
    #[error("line {line}: expected SUFFIX:COUNT with a {expected}-character hex suffix")]
    Shape {
        /// The offending line.
        line: usize,
        /// Suffix length for the kind being synced (35 or 27).
        expected: usize,
    },
    /// The suffix has a non-hex character.
    #[error("line {line}: the suffix is not hexadecimal")]
    NotHex {
        /// The offending line.
        line: usize,
    },
    /// The count is not a decimal number within `u32`.
    #[error("line {line}: the count is not a decimal number from 1 to 4294967295")]
    Count {
        /// The offending line.
        line: usize,
    },
    /// A count of 0: an `Add-Padding` row, which is never data.
    #[error(
        "line {line}: count 0 is a padding row, never data (does the upstream pad responses?)"
    )]
    Padding {
        /// The offending line.
        line: usize,
    },
    /// The suffix does not sort after the one before it.
    #[error("line {line}: suffixes are not in strictly ascending order")]
    Order {
        /// The offending line.
        line: usize,
    },
}

/// Parses and validates the body of `prefix` for `kind`, calling `f(full_hash_bytes, count)` for
/// every entry in order. Returns the number of entries.
///
/// An empty body is a prefix with no entries. One trailing CRLF is tolerated (it carries no data);
/// anything else that deviates from the upstream format is an error, and `f` may have been called
/// for the lines before the fault.
pub fn parse_body(
    kind: HashKind,
    prefix: Prefix,
    body: &[u8],
    mut f: impl FnMut(&[u8], u32),
) -> Result<usize, BodyError> {
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    if body.is_empty() {
        return Ok(0);
    }
    let suffix_len = kind.suffix_hex_len();
    let mut hex = [0u8; 2 * MAX_HASH_LEN];
    hex[..PREFIX_HEX_LEN].copy_from_slice(&prefix.to_hex());
    let hex = &mut hex[..kind.hex_len()];
    let mut hash = [0u8; MAX_HASH_LEN];
    let mut previous = [0u8; MAX_HASH_LEN];
    let hash_len = kind.len();
    let mut rest = body;
    let mut line_no = 0usize;
    while !rest.is_empty() || line_no == 0 {
        line_no += 1;
        let line = match memchr::memchr(b'\n', rest) {
            Some(at) => {
                let line = &rest[..at];
                rest = &rest[at + 1..];
                // A line followed by LF must end in CR, and the body cannot end right after it.
                match line.strip_suffix(b"\r") {
                    Some(line) if !rest.is_empty() => line,
                    // CRLF then nothing: an empty last line.
                    Some(_) => {
                        return Err(BodyError::Shape {
                            line: line_no + 1,
                            expected: suffix_len,
                        })
                    }
                    None => return Err(BodyError::LineEnding { line: line_no }),
                }
            }
            None => std::mem::take(&mut rest),
        };
        if line.len() < suffix_len + 2 || line[suffix_len] != b':' {
            if line.contains(&b'\r') {
                return Err(BodyError::LineEnding { line: line_no });
            }
            return Err(BodyError::Shape {
                line: line_no,
                expected: suffix_len,
            });
        }
        hex[PREFIX_HEX_LEN..].copy_from_slice(&line[..suffix_len]);
        decode_hex(hex, &mut hash[..hash_len]).ok_or(BodyError::NotHex { line: line_no })?;
        let count = parse_count(&line[suffix_len + 1..]).ok_or_else(|| {
            if line.contains(&b'\r') {
                BodyError::LineEnding { line: line_no }
            } else {
                BodyError::Count { line: line_no }
            }
        })?;
        if count == 0 {
            return Err(BodyError::Padding { line: line_no });
        }
        if line_no > 1 && hash[..hash_len] <= previous[..hash_len] {
            return Err(BodyError::Order { line: line_no });
        }
        previous = hash;
        f(&hash[..hash_len], count);
    }
    Ok(line_no)
}

/// Validates a body without collecting it; see [`parse_body`].
pub fn validate_body(kind: HashKind, prefix: Prefix, body: &[u8]) -> Result<usize, BodyError> {
    parse_body(kind, prefix, body, |_, _| {})
}

/// A decimal `u32` of 1 to 10 digits, nothing else (no sign, no spaces).
fn parse_count(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > MAX_COUNT_DIGITS {
        return None;
    }
    let mut value = 0u64;
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(c - b'0');
    }
    u32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "1E4C9B93F3F0682250B6CF8331B7EE68FD8";
    const T: &str = "1E4C9B93F3F0682250B6CF8331B7EE68FD9";

    fn p() -> Prefix {
        Prefix::parse(b"5BAA6").unwrap()
    }

    fn check(body: &str) -> Result<usize, BodyError> {
        validate_body(HashKind::Sha1, p(), body.as_bytes())
    }

    #[test]
    fn accepts_upstream_shape_and_yields_full_hashes() {
        let body = format!("{S}:9545824\r\n{T}:1");
        let mut seen = Vec::new();
        let n = parse_body(HashKind::Sha1, p(), body.as_bytes(), |h, c| {
            seen.push((const_hex::encode_upper(h), c))
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen[0], (format!("5BAA6{S}"), 9_545_824));
        assert_eq!(seen[1].1, 1);
        assert_eq!(check(""), Ok(0));
        assert_eq!(check(&format!("{S}:1\r\n")), Ok(1));
        assert_eq!(check(&format!("{S}:4294967295")), Ok(1));
    }

    #[test]
    fn refuses_each_kind_of_fault_with_its_line() {
        assert_eq!(
            check(&format!("{S}:1\n{T}:1")),
            Err(BodyError::LineEnding { line: 1 })
        );
        assert_eq!(
            check(&format!("{S}:1\r\n\r\n")),
            Err(BodyError::Shape {
                line: 2,
                expected: 35
            })
        );
        assert_eq!(
            check(&format!("{S}:1\r\n{}:1", &T[1..])),
            Err(BodyError::Shape {
                line: 2,
                expected: 35
            })
        );
        assert_eq!(
            check(&format!("{}G:1", &S[..34])),
            Err(BodyError::NotHex { line: 1 })
        );
        assert_eq!(check(&format!("{S}:-1")), Err(BodyError::Count { line: 1 }));
        assert_eq!(
            check(&format!("{S}:4294967296")),
            Err(BodyError::Count { line: 1 })
        );
        assert_eq!(
            check(&format!("{S}:1\r\n{T}:0")),
            Err(BodyError::Padding { line: 2 })
        );
        assert_eq!(
            check(&format!("{T}:1\r\n{S}:1")),
            Err(BodyError::Order { line: 2 })
        );
        assert_eq!(
            check(&format!("{S}:1\r\n{S}:1")),
            Err(BodyError::Order { line: 2 })
        );
    }

    #[test]
    fn ntlm_suffixes_are_27_characters() {
        let body = "0000000000000000000000000AB:3";
        assert_eq!(validate_body(HashKind::Ntlm, p(), body.as_bytes()), Ok(1));
        assert!(validate_body(HashKind::Sha1, p(), body.as_bytes()).is_err());
    }
}
