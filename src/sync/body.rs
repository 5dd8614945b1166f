//! Validation of upstream `/range` bodies, with the importer's line parser: `SUFFIX:COUNT`
//! lines, hex suffixes of the kind's length, counts from 1 to `u32::MAX` (a count of 0 is an
//! `Add-Padding` row and is refused), strictly ascending.

use crate::hash::{HashKind, Prefix};
use crate::import::{parse_range_body, BodyLineError};

/// Why a `/range` body was refused. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// A line that is not `SUFFIX:COUNT` of the kind (wrong length, not hex, bad or zero count,
    /// duplicate).
    #[error(transparent)]
    Line(#[from] BodyLineError),
    /// The suffix does not sort after the one before it.
    #[error("line {line}: suffixes are not in strictly ascending order")]
    Order {
        /// The offending line.
        line: u64,
    },
}

/// Parses and validates the body of `prefix` for `kind`, calling `f(full_hash_bytes, count)` for
/// every entry in order (only when the whole body is valid). Returns the number of entries.
pub fn parse_body(
    kind: HashKind,
    prefix: Prefix,
    body: &[u8],
    f: impl FnMut(&[u8], u32),
) -> Result<usize, BodyError> {
    let (block, first_unsorted) = parse_range_body(body, kind, prefix)?;
    if let Some(line) = first_unsorted {
        return Err(BodyError::Order { line });
    }
    block.for_each(f);
    Ok(block.len())
}

/// Validates a body without collecting it; see [`parse_body`].
pub fn validate_body(kind: HashKind, prefix: Prefix, body: &[u8]) -> Result<usize, BodyError> {
    parse_body(kind, prefix, body, |_, _| {})
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

    /// The line number and message of a refused body.
    fn fault(body: &str) -> (u64, String) {
        match check(body) {
            Err(BodyError::Line(e)) => (e.line, e.message),
            Err(BodyError::Order { line }) => (line, "order".into()),
            Ok(n) => panic!("accepted {n} entries: {body:?}"),
        }
    }

    #[test]
    fn refuses_each_kind_of_fault_with_its_line() {
        let cases = [
            (format!("{S}:1\r\n\r\n"), 2, "empty line"),
            (format!("{S}:1\r\n{}:1", &T[1..]), 2, "34 characters"),
            (format!("{}G:1", &S[..34]), 1, "non-hex"),
            (format!("{S}:-1"), 1, "decimal count"),
            (format!("{S}:4294967296"), 1, "decimal count"),
            (format!("{S}:1\r\n{T}:0"), 2, "Add-Padding row"),
            (format!("{T}:1\r\n{S}:1"), 2, "order"),
            (format!("{S}:1\r\n{S}:1"), 2, "duplicate"),
        ];
        for (body, line, needle) in cases {
            let (got_line, message) = fault(&body);
            assert_eq!(got_line, line, "{body:?}: {message}");
            assert!(message.contains(needle), "{body:?}: {message}");
        }
    }

    #[test]
    fn ntlm_suffixes_are_27_characters() {
        let body = "0000000000000000000000000AB:3";
        assert_eq!(validate_body(HashKind::Ntlm, p(), body.as_bytes()), Ok(1));
        assert!(validate_body(HashKind::Sha1, p(), body.as_bytes()).is_err());
    }
}
