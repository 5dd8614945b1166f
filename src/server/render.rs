//! Response bodies: `/range` rendering, padding rows and gzip framing. Pure functions over bytes;
//! this is the hot path, so nothing here allocates per line.

use std::io::Write;

use bytes::Bytes;
use rand::{CryptoRng, Rng, RngCore};

use crate::decimal;
use crate::format;
use crate::hash::HashKind;
use crate::index::Range;

/// Fewest padding rows added to a padded response (upstream: `10 + floor(200 x random)`).
pub const PADDING_MIN_ROWS: usize = 10;

/// Most padding rows added to a padded response.
pub const PADDING_MAX_ROWS: usize = 209;

/// Longest rendered line: a 35-hex SHA-1 suffix, `:`, a ten-digit count and CRLF.
const MAX_LINE: usize = 35 + LINE_EXTRA;

/// A line's bytes besides its suffix, at most: `:`, a ten-digit count and CRLF.
const LINE_EXTRA: usize = 1 + 10 + 2;

/// Entries hex-encoded per batch while rendering.
const HEX_BATCH: usize = 64;

/// Hex characters per record of the longest kind (SHA-1: 2 x 19).
const MAX_STRIDE: usize = 2 * format::MAX_RECORD_LEN;

/// Largest payload of one stored deflate block.
const STORED_BLOCK_MAX: usize = 0xFFFF;

/// The fixed gzip member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Renders a prefix's entries as the upstream `/range` body: `SUFFIX:COUNT` lines, upper-case
/// hex, CRLF between lines and none after the last. An empty range renders as an empty body.
///
/// The output buffer is sized once for the longest possible lines; suffixes are hex-encoded a
/// batch of records at a time and each line is written in place.
pub fn render_range(range: Range<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(range_capacity(range.kind(), range.len()));
    render_range_into(range, &mut out);
    out
}

/// Capacity that always holds a rendered range of `len` entries (the renderer's working room:
/// the longest possible line per entry) plus the most padding rows, so that neither rendering
/// nor padding reallocates.
pub fn range_capacity(kind: HashKind, len: usize) -> usize {
    let suffix = kind.suffix_hex_len();
    len * (suffix + LINE_EXTRA) + PADDING_MAX_ROWS * (2 + suffix + 2) + MAX_LINE
}

/// Appends the rendered range to `out` (see [`render_range`]); `out` should be empty.
///
/// Suffixes are hex-encoded [`HEX_BATCH`] records at a time. `out` is first grown by the
/// longest possible line per record, zeroed in one pass; each line is then written over that
/// room at a cursor with constant-size copies (the suffix, then `:COUNT\r\n` as one 8-byte
/// store from a table, see `decimal::CRLF_TAILS`), and `out` is cut to the real length once,
/// dropping the last CRLF. Assembling lines in a stack buffer and copying them
/// instead costs twice as much: reading back bytes just written by differently sized stores
/// defeats store-to-load forwarding.
pub fn render_range_into(range: Range<'_>, out: &mut Vec<u8>) {
    // One instance per kind, so every per-line copy has a constant length and is inlined.
    match range.kind() {
        HashKind::Sha1 => render_lines::<
            { 2 * format::SHA1_RECORD_LEN - 3 },
            { 2 * format::SHA1_RECORD_LEN },
            { 2 * format::SHA1_RECORD_LEN - 3 + LINE_EXTRA },
        >(range, out),
        HashKind::Ntlm => render_lines::<
            { 2 * format::NTLM_RECORD_LEN - 3 },
            { 2 * format::NTLM_RECORD_LEN },
            { 2 * format::NTLM_RECORD_LEN - 3 + LINE_EXTRA },
        >(range, out),
    }
}

/// [`render_range_into`] for suffixes of `SUFFIX` hex characters, `STRIDE` hex characters per
/// record and lines of at most `LINE` bytes.
fn render_lines<const SUFFIX: usize, const STRIDE: usize, const LINE: usize>(
    range: Range<'_>,
    out: &mut Vec<u8>,
) {
    debug_assert_eq!(
        (SUFFIX, STRIDE, LINE),
        (
            range.kind().suffix_hex_len(),
            range.hex_stride(),
            SUFFIX + LINE_EXTRA
        )
    );
    out.reserve(range_capacity(range.kind(), range.len()));
    let base = out.len();
    out.resize(base + range.len() * LINE, 0);
    let body = &mut out[base..];
    let mut at = 0;
    let mut hex = [0u8; HEX_BATCH * MAX_STRIDE];
    // Records are walked in constant-size chunks and their counts read inline: the range's own
    // iterator divides by the (run-time) record length on every step.
    let record_len = STRIDE / 2;
    let mut escapes = range.escapes();
    for (batch_at, batch) in range.records().chunks(HEX_BATCH * record_len).enumerate() {
        let start = batch_at * HEX_BATCH;
        // One SIMD hex pass over a batch of records beats one encoder call per line (2x).
        range.hex_batch(start, start + batch.len() / record_len, &mut hex);
        for (k, record) in batch.chunks_exact(record_len).enumerate() {
            let line: &mut [u8; LINE] = (&mut body[at..at + LINE])
                .try_into()
                .expect("constant length");
            let suffix: &[u8; SUFFIX] = hex[k * STRIDE + format::RECORD_HEX_SUFFIX_AT..][..SUFFIX]
                .try_into()
                .expect("constant length");
            line[..SUFFIX].copy_from_slice(suffix);
            let mut count = format::record_inline_count(record);
            if count == format::COUNT_ESCAPE {
                count = escapes.count(start + k);
            }
            at += SUFFIX + decimal::CRLF_TAILS.write(&mut line[SUFFIX..], count);
        }
    }
    // Every line ended with CRLF; the last one has none.
    out.truncate(base + at.saturating_sub(2));
}

/// Appends upstream-style padding to a rendered body: a uniformly random number of rows in
/// `PADDING_MIN_ROWS..=PADDING_MAX_ROWS`, each a random upper-case hex suffix of `kind`'s length
/// with count 0, after the real rows (not sorted in), CRLF-separated with none after the last.
/// Returns the number of rows added.
///
/// `rng` must be cryptographically secure: padding hides which prefix was asked for from anyone
/// watching response sizes, so it must not be predictable.
pub fn append_padding<R: RngCore + CryptoRng>(
    out: &mut Vec<u8>,
    kind: HashKind,
    rng: &mut R,
) -> usize {
    let rows = rng.gen_range(PADDING_MIN_ROWS..=PADDING_MAX_ROWS);
    let suffix_len = kind.suffix_hex_len();
    // One more hex digit than needed when the suffix length is odd; the extra one is dropped.
    let random_len = suffix_len.div_ceil(2);
    out.reserve(rows * (2 + suffix_len + 2));
    let mut random = [0u8; 18];
    let mut line = [0u8; MAX_LINE + 1];
    line[0] = b'\r';
    line[1] = b'\n';
    for row in 0..rows {
        rng.fill_bytes(&mut random[..random_len]);
        const_hex::encode_to_slice_upper(&random[..random_len], &mut line[2..2 + 2 * random_len])
            .expect("buffer sized for the longest suffix");
        line[2 + suffix_len] = b':';
        line[3 + suffix_len] = b'0';
        let start = if row == 0 && out.is_empty() { 2 } else { 0 };
        out.extend_from_slice(&line[start..4 + suffix_len]);
    }
    rows
}

/// Wraps `body` in a gzip member made of stored (uncompressed) deflate blocks, without copying
/// it: the result is the gzip framing interleaved with slices of `body`.
///
/// This costs one CRC-32 pass over the body (a few microseconds for 80 KB) instead of the
/// hundreds of microseconds real compression takes, so gzip-only clients are served at close to
/// identity speed. The body grows by 18 bytes plus 5 per 64 KiB.
pub fn gzip_stored(body: Bytes) -> Vec<Bytes> {
    let blocks = body.len().div_ceil(STORED_BLOCK_MAX).max(1);
    // Framing bytes: gzip header, one 5-byte header per block, CRC-32 and length trailer.
    let mut framing = Vec::with_capacity(GZIP_HEADER.len() + 5 * blocks + 8);
    framing.extend_from_slice(&GZIP_HEADER);
    let mut block_headers = Vec::with_capacity(blocks);
    for i in 0..blocks {
        let start = i * STORED_BLOCK_MAX;
        let len = (body.len() - start).min(STORED_BLOCK_MAX) as u16;
        let last = u8::from(i + 1 == blocks);
        block_headers.push(framing.len());
        framing.push(last);
        framing.extend_from_slice(&len.to_le_bytes());
        framing.extend_from_slice(&(!len).to_le_bytes());
    }
    let trailer_at = framing.len();
    framing.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    framing.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let framing = Bytes::from(framing);

    let mut chunks = Vec::with_capacity(2 * blocks + 1);
    // The gzip header goes out with the first block header.
    chunks.push(framing.slice(0..block_headers[0] + 5));
    for (i, &at) in block_headers.iter().enumerate() {
        if i > 0 {
            chunks.push(framing.slice(at..at + 5));
        }
        let start = i * STORED_BLOCK_MAX;
        let end = (start + STORED_BLOCK_MAX).min(body.len());
        chunks.push(body.slice(start..end));
    }
    chunks.push(framing.slice(trailer_at..));
    chunks
}

/// Compresses `body` into a gzip member at `level` (1 fastest .. 9 smallest).
pub fn gzip_compressed(body: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    encoder
        .write_all(body)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn bodies_of_both_kinds_equal_a_naive_render_at_every_count_length() {
        use crate::index::Index;
        use crate::mmap::IndexBytes;
        use crate::Prefix;
        // Every digit count, the last tabled count and the first past it, and runs of escaped
        // counts (read on from one overflow search).
        let counts = [
            0,
            1,
            9,
            10,
            99,
            4_094,
            4_095,
            4_096,
            65_536,
            123_456_789,
            u32::MAX,
        ];
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            for n in [0usize, 1, 63, 64, 65, 200] {
                let entries: Vec<(Vec<u8>, u32)> = (0..n)
                    .map(|i| {
                        let mut hash = vec![0xA5u8; kind.byte_len()];
                        hash[2] = 0x50; // prefix A5A55
                        hash[3] = (i >> 8) as u8;
                        hash[4] = i as u8;
                        (hash, counts[i % counts.len()])
                    })
                    .collect();
                let bytes = crate::writer::build_in_memory(
                    kind,
                    entries.iter().map(|(h, c)| (&h[..], *c)),
                    "t",
                    0,
                );
                let index = Index::open(IndexBytes::from(bytes)).unwrap();
                let range = index.range(Prefix::new(0xA5A55).unwrap());
                // From the written entries, not from the index's own iterator.
                let naive = entries
                    .iter()
                    .map(|(hash, count)| format!("{}:{count}", &const_hex::encode_upper(hash)[5..]))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                let body = render_range(range);
                assert_eq!(
                    String::from_utf8(body.clone()).unwrap(),
                    naive,
                    "{kind} x{n}"
                );
                assert!(body.capacity() <= range_capacity(kind, n), "{kind} x{n}");
            }
        }
    }

    #[test]
    fn stored_gzip_round_trips_at_block_boundaries() {
        for len in [
            0,
            1,
            STORED_BLOCK_MAX - 1,
            STORED_BLOCK_MAX,
            STORED_BLOCK_MAX + 1,
            200_000,
        ] {
            let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let gz = concat(&gzip_stored(Bytes::from(body.clone())));
            assert_eq!(gunzip(&gz), body, "length {len}");
        }
    }

    #[test]
    fn compressed_gzip_round_trips() {
        let body =
            b"0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2";
        for level in [1, 6, 9] {
            assert_eq!(gunzip(&gzip_compressed(body, level)), body);
        }
    }

    #[test]
    fn padding_rows_have_the_right_shape_and_count() {
        let mut rng = rand::thread_rng();
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            for prefix in [&b""[..], b"ABC:1"] {
                let mut out = prefix.to_vec();
                let rows = append_padding(&mut out, kind, &mut rng);
                assert!((PADDING_MIN_ROWS..=PADDING_MAX_ROWS).contains(&rows));
                let text = std::str::from_utf8(&out).unwrap();
                let lines: Vec<&str> = text.split("\r\n").collect();
                let padding = &lines[lines.len() - rows..];
                assert_eq!(lines.len(), rows + usize::from(!prefix.is_empty()));
                for line in padding {
                    let (suffix, count) = line.split_once(':').unwrap();
                    assert_eq!(suffix.len(), kind.suffix_hex_len());
                    assert!(suffix
                        .bytes()
                        .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c)));
                    assert_eq!(count, "0");
                }
            }
        }
    }
}
