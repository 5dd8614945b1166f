//! Parsing dump text into encoded record blocks: the importer's hot loop.
//!
//! A chunk is a run of whole lines. Each line is `HASH:COUNT` (or `SUFFIX:COUNT` inside a
//! per-prefix range file), optionally preceded by a UTF-8 BOM, ended by LF, CRLF or the end of
//! the chunk. Parsing checks order as it goes so sorted input never needs a second pass.

use crate::hash::{decode_hex, hex_value, HashKind, Prefix, MAX_HASH_LEN};
use crate::writer::EncodedBlock;

/// The UTF-8 byte order mark, which the 2026 downloader may put at the start of any chunk.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Longest decimal count accepted (`u32::MAX` has 10 digits).
const MAX_COUNT_DIGITS: usize = 10;

/// The parsed form of one chunk.
pub(crate) struct ParsedChunk {
    /// The chunk's records, encoded, in input order.
    pub block: EncodedBlock,
    /// Number of lines (= records) in the chunk.
    pub lines: u64,
    /// Hash of the first record, to check order across chunk boundaries.
    pub first: [u8; MAX_HASH_LEN],
    /// Hash of the last record.
    pub last: [u8; MAX_HASH_LEN],
    /// The first line (1-based, in the chunk) whose hash sorts before the previous line's;
    /// `None` when the chunk is sorted.
    pub first_unsorted: Option<u64>,
}

/// A bad line inside a chunk; the caller turns `line` into a file line number.
#[derive(Debug)]
pub(crate) struct LineFault {
    /// 1-based line number inside the chunk.
    pub line: u64,
    /// What was expected and what was found.
    pub message: String,
}

/// How a line names its hash.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineShape {
    /// `HASH:COUNT`, the single-file dump.
    FullHash,
    /// `SUFFIX:COUNT` in the range file of a known prefix.
    Suffix(Prefix),
}

impl LineShape {
    fn hex_len(self, kind: HashKind) -> usize {
        match self {
            LineShape::FullHash => kind.hex_len(),
            LineShape::Suffix(_) => kind.suffix_hex_len(),
        }
    }

    fn what(self, kind: HashKind) -> String {
        let name = kind.label();
        match self {
            LineShape::FullHash => format!("a {}-hex {name} hash", kind.hex_len()),
            LineShape::Suffix(_) => format!("a {}-hex {name} suffix", kind.suffix_hex_len()),
        }
    }
}

/// Guesses the hash kind from the first line of `text`, or `None` if it names no known kind.
pub(crate) fn detect_kind(text: &[u8], shape: LineShape) -> Option<HashKind> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let colon = memchr::memchr(b':', &text[..text.len().min(64)])?;
    match shape {
        LineShape::FullHash => HashKind::from_hex_len(colon),
        LineShape::Suffix(_) => HashKind::from_suffix_hex_len(colon),
    }
}

/// Longest line the importer reads: a dump line is under 60 bytes. A longer one (a file without
/// line breaks, binary data) is refused at once with its FILE:LINE, instead of being buffered
/// whole while the reader looks for its end.
pub(crate) const MAX_LINE_BYTES: usize = 4096;

/// Parses every line of `text`.
pub(crate) fn parse_chunk(
    text: &[u8],
    kind: HashKind,
    shape: LineShape,
) -> Result<ParsedChunk, LineFault> {
    let n = kind.byte_len();
    let hex_len = shape.hex_len(kind);
    let mut block = EncodedBlock::tagged(kind, text.len() / (hex_len + 4));
    let mut hash = [0u8; MAX_HASH_LEN];
    let mut previous = [0u8; MAX_HASH_LEN];
    let mut first = [0u8; MAX_HASH_LEN];
    let mut first_unsorted = None;
    let mut line = 0u64;
    let mut pos = 0usize;
    let len = text.len();
    if let LineShape::Suffix(prefix) = shape {
        hash[0] = (prefix.value() >> 12) as u8;
        hash[1] = (prefix.value() >> 4) as u8;
    }
    while pos < len {
        line += 1;
        let fault = |message: String| LineFault { line, message };
        let mut p = pos;
        if text[p] == BOM[0] && text[p..].starts_with(BOM) {
            p += BOM.len();
        }
        let colon = p + hex_len;
        if colon >= len || text[colon] != b':' {
            return Err(fault(describe_bad_hash(line_at(text, p), kind, shape)));
        }
        let decoded = match shape {
            LineShape::FullHash => decode_hex(&text[p..colon], &mut hash[..n]),
            LineShape::Suffix(prefix) => decode_suffix(&text[p..colon], prefix, &mut hash[..n]),
        };
        if decoded.is_none() {
            return Err(fault(describe_bad_hash(line_at(text, p), kind, shape)));
        }
        let digits_start = colon + 1;
        let mut q = digits_start;
        let mut count = 0u64;
        while q < len && q - digits_start <= MAX_COUNT_DIGITS {
            let digit = text[q].wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            count = count * 10 + u64::from(digit);
            q += 1;
        }
        let digits = q - digits_start;
        if digits == 0 || digits > MAX_COUNT_DIGITS || count == 0 || count > u64::from(u32::MAX) {
            return Err(fault(describe_bad_count(line_at(text, digits_start))));
        }
        if q < len && text[q] == b'\r' {
            q += 1;
        }
        if q < len {
            if text[q] != b'\n' {
                return Err(fault(describe_bad_count(line_at(text, digits_start))));
            }
            q += 1;
        }
        pos = q;
        if line == 1 {
            first = hash;
        } else {
            match cmp_hash(&hash, &previous) {
                std::cmp::Ordering::Greater => {}
                std::cmp::Ordering::Equal => {
                    return Err(fault(
                        "expected a new hash, found the same hash as the line before (duplicate)"
                            .into(),
                    ))
                }
                std::cmp::Ordering::Less => {
                    first_unsorted.get_or_insert(line);
                }
            }
        }
        previous = hash;
        block.push(&hash[..n], count as u32);
    }
    // Prefix tags of the whole prefixes in the chunk, hashed as the records were pushed, here
    // on the parallel parser threads.
    block.compute_interior_tags();
    Ok(ParsedChunk {
        block,
        lines: line,
        first,
        last: previous,
        first_unsorted,
    })
}

/// Compares two zero-padded hashes; two integer compares instead of a `memcmp` call.
#[inline]
pub(crate) fn cmp_hash(a: &[u8; MAX_HASH_LEN], b: &[u8; MAX_HASH_LEN]) -> std::cmp::Ordering {
    let head = |h: &[u8; MAX_HASH_LEN]| u128::from_be_bytes(h[..16].try_into().expect("16"));
    let tail = |h: &[u8; MAX_HASH_LEN]| u32::from_be_bytes(h[16..].try_into().expect("4"));
    head(a).cmp(&head(b)).then_with(|| tail(a).cmp(&tail(b)))
}

/// Decodes an odd-length suffix (35 or 27 hex) of `prefix` into the full hash bytes `out`.
#[inline]
fn decode_suffix(suffix: &[u8], prefix: Prefix, out: &mut [u8]) -> Option<()> {
    let low = hex_value(suffix[0])?;
    out[0] = (prefix.value() >> 12) as u8;
    out[1] = (prefix.value() >> 4) as u8;
    out[2] = ((prefix.value() & 0xF) as u8) << 4 | low;
    decode_hex(&suffix[1..], &mut out[3..])
}

/// The rest of the line starting at `from`, without its line ending.
fn line_at(text: &[u8], from: usize) -> &[u8] {
    let rest = &text[from.min(text.len())..];
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let line = &rest[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Shows up to 60 characters of input, escaped.
fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(60)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if bytes.len() > cut.len() {
        s.push('…');
    }
    s
}

fn describe_bad_hash(line: &[u8], kind: HashKind, shape: LineShape) -> String {
    let expected = format!("expected {} followed by ':COUNT'", shape.what(kind));
    if line.is_empty() {
        return format!("{expected}, found an empty line");
    }
    if line.len() > MAX_LINE_BYTES {
        return format!(
            "{expected}, found a line longer than {MAX_LINE_BYTES} bytes (not a dump file, or \
             line breaks are missing)"
        );
    }
    let Some(colon) = memchr::memchr(b':', line) else {
        return format!("{expected}, found no ':' in {}", show(line));
    };
    let hash = &line[..colon];
    let other_kind = match shape {
        LineShape::FullHash => HashKind::from_hex_len(hash.len()),
        LineShape::Suffix(_) => HashKind::from_suffix_hex_len(hash.len()),
    };
    match other_kind {
        Some(other) if other != kind => format!(
            "{expected}, found {} (is this a {} dump?)",
            shape.what(other),
            other.name()
        ),
        _ if hash.len() != shape.hex_len(kind) => {
            format!("{expected}, found {} characters before ':'", hash.len())
        }
        _ => format!("{expected}, found non-hex characters {}", show(hash)),
    }
}

fn describe_bad_count(rest: &[u8]) -> String {
    let zero = rest.first() == Some(&b'0') && !rest.get(1).is_some_and(u8::is_ascii_digit);
    format!(
        "expected a decimal count from 1 to {} after ':', found {}{}",
        u32::MAX,
        show(rest),
        if zero {
            " (a count of 0 is an Add-Padding row, never data)"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &[u8] = b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";

    #[test]
    fn accepts_bom_crlf_lowercase_and_missing_final_newline() {
        let text = b"\xEF\xBB\xBF0000000000000000000000000000000000000001:3\r\n5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:4294967295";
        let chunk = parse_chunk(text, HashKind::Sha1, LineShape::FullHash).unwrap();
        assert_eq!(chunk.lines, 2);
        assert_eq!(chunk.first_unsorted, None);
        let mut seen = Vec::new();
        chunk
            .block
            .for_each(|h, c| seen.push((const_hex::encode_upper(h), c)));
        assert_eq!(
            seen[1],
            (String::from_utf8(PASSWORD.to_vec()).unwrap(), u32::MAX)
        );
    }

    #[test]
    fn reports_each_fault_with_its_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\nnonsense\n", "no ':'"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n8846F7EAEE8FB117AD06BDD830B7586C:2\n", "ntlm dump"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n5BAA61E4C9B93F3F0682250B6CF8331B7EE68FDX:2\n", "non-hex"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD9:4294967296\n", "count"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD9:12x\n", "count"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:2\n", "duplicate"),
            (b"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n\n", "empty line"),
        ];
        for (text, needle) in cases {
            let fault = parse_chunk(text, HashKind::Sha1, LineShape::FullHash)
                .err()
                .unwrap_or_else(|| panic!("{needle}: parsed"));
            assert_eq!(fault.line, 2, "{needle}");
            assert!(
                fault.message.contains(needle),
                "{needle}: {}",
                fault.message
            );
        }
    }

    #[test]
    fn suffix_lines_take_the_prefix() {
        let prefix = Prefix::parse(b"5BAA6").unwrap();
        let chunk = parse_chunk(
            b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:7",
            HashKind::Sha1,
            LineShape::Suffix(prefix),
        )
        .unwrap();
        let mut seen = Vec::new();
        chunk
            .block
            .for_each(|h, c| seen.push((const_hex::encode_upper(h), c)));
        assert_eq!(
            seen,
            vec![(String::from_utf8(PASSWORD.to_vec()).unwrap(), 7)]
        );
        assert_eq!(
            detect_kind(
                b"1E4C9B93F3F0682250B6CF8331B7EE68FD8:7",
                LineShape::Suffix(prefix)
            ),
            Some(HashKind::Sha1)
        );
    }
}
