//! The index file format: the only module that knows the byte layout of an index file (header
//! fields, prefix table, records, overflow entries). Everything else reads and writes index bytes
//! through the functions here. (The importer's temporary spill files have their own, private
//! layout in `import/sort.rs`; they never outlive an import.)
//!
//! See `docs/FORMAT.md` for the byte-by-byte description. In short:
//!
//! ```text
//! header   HEADER_LEN bytes        magic, version, kind, sizes, build time, label, CRCs
//! table    (2^20 + 1) x u64 LE     table[p] = ordinal of prefix p's first record
//! tags     2^20 x u64 LE           tags[p] = content digest of prefix p (see [`TagHasher`])
//! records  record_count x RECORD   sorted; each stores the hash after its prefix + a 12-bit count
//! overflow overflow_count x 12     (ordinal u64 LE, count u32 LE) for counts above INLINE_COUNT_MAX
//! ```
//!
//! A record for a hash `h` of `n` bytes is `n - 1` bytes long (19 for SHA-1, 15 for NTLM):
//! byte 0 holds the count's bits 8..12 in its high nibble and the low nibble of `h[2]` (the first
//! hash bits after the 20-bit prefix) in its low nibble; bytes `1..n-2` are `h[3..n]`; the last byte
//! holds the count's bits 0..8. A 12-bit count of `COUNT_ESCAPE` means "see the overflow table".
//! All integers are little-endian and decoded with `from_le_bytes`: nothing is cast from the map.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::hash::{HashKind, PREFIX_COUNT};

/// First eight bytes of every index file.
pub const MAGIC: [u8; 8] = *b"HIBPIDX\0";

/// Format version written by this build; any other version is refused. Version 1 had no
/// prefix tag table.
pub const VERSION: u32 = 2;

/// Size of the fixed header in bytes.
pub const HEADER_LEN: usize = 256;

/// Number of entries in the prefix offset table (one past the last prefix).
pub const TABLE_ENTRIES: usize = PREFIX_COUNT + 1;

/// Size of the prefix offset table in bytes.
pub const TABLE_LEN: usize = TABLE_ENTRIES * 8;

/// Byte offset of the prefix offset table.
pub const TABLE_OFFSET: usize = HEADER_LEN;

/// Size of one prefix tag in bytes.
pub const TAG_LEN: usize = 8;

/// Size of the prefix tag table in bytes: one tag per prefix.
pub const TAGS_LEN: usize = PREFIX_COUNT * TAG_LEN;

/// Byte offset of the prefix tag table (right after the offset table).
pub const TAGS_OFFSET: usize = TABLE_OFFSET + TABLE_LEN;

/// Byte offset of the first record.
pub const RECORDS_OFFSET: usize = TAGS_OFFSET + TAGS_LEN;

/// Size of one overflow entry: ordinal (u64) then count (u32).
pub const OVERFLOW_ENTRY_LEN: usize = 12;

/// Largest count stored inline in a record; larger counts go to the overflow table.
pub const INLINE_COUNT_MAX: u32 = 0xFFE;

/// Inline count value that means "the count is in the overflow table".
pub const COUNT_ESCAPE: u32 = 0xFFF;

/// Longest source label the header holds, in bytes.
pub const LABEL_MAX: usize = HEADER_LEN - LABEL_OFFSET;

/// Latest build time a header may hold: 9999-12-31T23:59:59Z, in seconds since the Unix epoch.
/// HTTP dates (the server's `Last-Modified`) have four-digit years, so a later one is refused at
/// open rather than failing (or panicking) wherever the date is shown.
pub const MAX_BUILD_TIME: u64 = 253_402_300_799;

// Header field offsets. Nothing outside this module uses them.
const VERSION_AT: usize = 8;
const HEADER_LEN_AT: usize = 12;
const KIND_AT: usize = 16;
const RECORD_LEN_AT: usize = 17;
/// Two reserved bytes, always zero.
const RESERVED_AT: usize = 18;
const HEADER_CRC_AT: usize = 20;
const RECORD_COUNT_AT: usize = 24;
const OVERFLOW_COUNT_AT: usize = 32;
const BUILD_TIME_AT: usize = 40;
const FILE_LEN_AT: usize = 48;
const BODY_CRC_AT: usize = 56;
const LABEL_LEN_AT: usize = 60;
const LABEL_OFFSET: usize = 62;

/// Record length of a SHA-1 index: 20 hash bytes minus 2.5 prefix bytes, plus 1.5 count bytes.
pub const SHA1_RECORD_LEN: usize = 19;

/// Record length of an NTLM index: 16 hash bytes minus 2.5 prefix bytes, plus 1.5 count bytes.
pub const NTLM_RECORD_LEN: usize = 15;

/// Longest record of any kind.
pub const MAX_RECORD_LEN: usize = SHA1_RECORD_LEN;

/// Position, in the upper-case hex of a record, of the first suffix character: the hex of byte 0
/// is the count's high nibble, then the suffix's first nibble (see [`encode_record`]).
pub const RECORD_HEX_SUFFIX_AT: usize = 1;

/// Record length in bytes for a kind: the hash minus its 2.5 prefix bytes, plus 1.5 count bytes.
pub const fn record_len(kind: HashKind) -> usize {
    match kind {
        HashKind::Sha1 => SHA1_RECORD_LEN,
        HashKind::Ntlm => NTLM_RECORD_LEN,
    }
}

const fn kind_code(kind: HashKind) -> u8 {
    match kind {
        HashKind::Sha1 => 1,
        HashKind::Ntlm => 2,
    }
}

/// Everything the header says about an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// SHA-1 or NTLM.
    pub kind: HashKind,
    /// Number of records (distinct hashes).
    pub record_count: u64,
    /// Number of records whose count lives in the overflow table.
    pub overflow_count: u64,
    /// When the index was built, in seconds since the Unix epoch.
    pub build_time: u64,
    /// Free-form description of where the data came from (input file names, upstream URL).
    pub label: String,
    /// CRC-32 of every byte after the header; checked by `verify`, not at open.
    pub body_crc: u32,
}

impl Header {
    /// Length of one record for this index's kind.
    pub fn record_len(&self) -> usize {
        record_len(self.kind)
    }

    /// Total file length implied by the header's sizes; `None` on overflow.
    pub fn expected_file_len(&self) -> Option<u64> {
        let records = self.record_count.checked_mul(self.record_len() as u64)?;
        let overflow = self.overflow_count.checked_mul(OVERFLOW_ENTRY_LEN as u64)?;
        (RECORDS_OFFSET as u64)
            .checked_add(records)?
            .checked_add(overflow)
    }

    /// Byte offset of the overflow table.
    pub fn overflow_offset(&self) -> usize {
        RECORDS_OFFSET + self.record_count as usize * self.record_len()
    }

    /// Encodes the header, truncating the label to [`LABEL_MAX`] bytes on a char boundary.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, VERSION_AT, VERSION);
        put_u32(&mut out, HEADER_LEN_AT, HEADER_LEN as u32);
        out[KIND_AT] = kind_code(self.kind);
        out[RECORD_LEN_AT] = self.record_len() as u8;
        put_u64(&mut out, RECORD_COUNT_AT, self.record_count);
        put_u64(&mut out, OVERFLOW_COUNT_AT, self.overflow_count);
        // Clamped, so the encoder never writes a header `decode` refuses.
        put_u64(&mut out, BUILD_TIME_AT, self.build_time.min(MAX_BUILD_TIME));
        put_u64(
            &mut out,
            FILE_LEN_AT,
            self.expected_file_len().unwrap_or(u64::MAX),
        );
        put_u32(&mut out, BODY_CRC_AT, self.body_crc);
        let label = truncate_on_char_boundary(&self.label, LABEL_MAX);
        out[LABEL_LEN_AT..LABEL_LEN_AT + 2].copy_from_slice(&(label.len() as u16).to_le_bytes());
        out[LABEL_OFFSET..LABEL_OFFSET + label.len()].copy_from_slice(label.as_bytes());
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, HEADER_CRC_AT, crc);
        out
    }

    /// Decodes and checks a header; `file_len` is the length of the whole file.
    pub fn decode(bytes: &[u8], file_len: u64) -> Result<Header, HeaderError> {
        if bytes.len() < HEADER_LEN {
            return Err(HeaderError::TooShort { len: file_len });
        }
        let bytes = &bytes[..HEADER_LEN];
        if bytes[..8] != MAGIC {
            return Err(HeaderError::Magic);
        }
        let version = get_u32(bytes, VERSION_AT);
        if version != VERSION {
            return Err(HeaderError::Version {
                expected: VERSION,
                got: version,
            });
        }
        if header_crc(bytes, HEADER_CRC_AT) != get_u32(bytes, HEADER_CRC_AT) {
            return Err(HeaderError::Checksum);
        }
        let header_len = get_u32(bytes, HEADER_LEN_AT);
        if header_len as usize != HEADER_LEN {
            return Err(HeaderError::Inconsistent(Inconsistency::HeaderLen {
                got: header_len,
            }));
        }
        let kind = match bytes[KIND_AT] {
            1 => HashKind::Sha1,
            2 => HashKind::Ntlm,
            other => {
                return Err(HeaderError::Inconsistent(Inconsistency::KindCode {
                    got: other,
                }))
            }
        };
        if bytes[RECORD_LEN_AT] as usize != record_len(kind) {
            return Err(HeaderError::Inconsistent(Inconsistency::RecordLen {
                got: bytes[RECORD_LEN_AT],
                kind,
            }));
        }
        let label_len = u16::from_le_bytes([bytes[LABEL_LEN_AT], bytes[LABEL_LEN_AT + 1]]) as usize;
        if label_len > LABEL_MAX {
            return Err(HeaderError::Inconsistent(Inconsistency::LabelLen {
                got: label_len,
            }));
        }
        let label = std::str::from_utf8(&bytes[LABEL_OFFSET..LABEL_OFFSET + label_len])
            .map_err(|_| HeaderError::Inconsistent(Inconsistency::LabelNotUtf8))?;
        // Every byte the encoder leaves zero must be zero: nothing unchecked rides in a header.
        if bytes[RESERVED_AT..HEADER_CRC_AT] != [0, 0]
            || bytes[LABEL_OFFSET + label_len..].iter().any(|&b| b != 0)
        {
            return Err(HeaderError::Inconsistent(Inconsistency::Reserved));
        }
        let build_time = get_u64(bytes, BUILD_TIME_AT);
        if build_time > MAX_BUILD_TIME {
            return Err(HeaderError::Inconsistent(Inconsistency::BuildTime {
                got: build_time,
            }));
        }
        let header = Header {
            kind,
            record_count: get_u64(bytes, RECORD_COUNT_AT),
            overflow_count: get_u64(bytes, OVERFLOW_COUNT_AT),
            build_time,
            label: label.to_owned(),
            body_crc: get_u32(bytes, BODY_CRC_AT),
        };
        let stated_len = get_u64(bytes, FILE_LEN_AT);
        let expected = header
            .expected_file_len()
            .ok_or(HeaderError::Inconsistent(Inconsistency::CountsOverflow))?;
        if stated_len != expected {
            return Err(HeaderError::Inconsistent(Inconsistency::StatedLen {
                stated: stated_len,
                implied: expected,
            }));
        }
        if header.overflow_count > header.record_count {
            return Err(HeaderError::Inconsistent(Inconsistency::OverflowCount {
                overflow_count: header.overflow_count,
                record_count: header.record_count,
            }));
        }
        if file_len != expected {
            return Err(HeaderError::FileLength {
                expected,
                got: file_len,
            });
        }
        Ok(header)
    }
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file is shorter than a header.
    #[error("file is {len} bytes, too short to be an index")]
    TooShort {
        /// Actual file length.
        len: u64,
    },
    /// The magic bytes are wrong: not an index file.
    #[error("not a hibp-mirror index (wrong magic bytes)")]
    Magic,
    /// A format version this build does not read.
    #[error("index format version {got}, this build reads version {expected}")]
    Version {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        got: u32,
    },
    /// The header's own CRC does not match: a damaged header.
    #[error("header checksum mismatch (damaged header)")]
    Checksum,
    /// Header fields contradict each other.
    #[error("inconsistent header: {0}")]
    Inconsistent(Inconsistency),
    /// The file's length differs from the one its header implies (truncated or padded).
    #[error("file is {got} bytes but its header implies {expected} (truncated or appended to)")]
    FileLength {
        /// Length implied by the header.
        expected: u64,
        /// Actual length.
        got: u64,
    },
}

/// Which header fields contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    /// The stated header length is not [`HEADER_LEN`].
    #[error("header length {got}, expected {HEADER_LEN}")]
    HeaderLen {
        /// The stated header length.
        got: u32,
    },
    /// The hash kind code is not one this build knows.
    #[error("unknown hash kind code {got}")]
    KindCode {
        /// The code in the file.
        got: u8,
    },
    /// The stated record length does not match the kind.
    #[error("record length {got}, expected {} for {kind}", record_len(*kind))]
    RecordLen {
        /// The stated record length.
        got: u8,
        /// The kind in the header.
        kind: HashKind,
    },
    /// The label is longer than the header can hold.
    #[error("label length {got} exceeds {LABEL_MAX}")]
    LabelLen {
        /// The stated label length.
        got: usize,
    },
    /// The label is not UTF-8.
    #[error("the label is not UTF-8")]
    LabelNotUtf8,
    /// A reserved byte (or a byte after the label) is not zero.
    #[error("reserved header bytes are not zero")]
    Reserved,
    /// The build time is after 9999-12-31, beyond what HTTP dates (and this build) can show.
    #[error("build time {got} is after 9999-12-31 ({MAX_BUILD_TIME})")]
    BuildTime {
        /// The build time in the file, in seconds since the Unix epoch.
        got: u64,
    },
    /// The record and overflow counts imply a file larger than `u64::MAX` bytes.
    #[error("record counts overflow the file size")]
    CountsOverflow,
    /// The stated file length disagrees with the one the counts imply.
    #[error("header says the file is {stated} bytes but its counts imply {implied}")]
    StatedLen {
        /// The file length stated in the header.
        stated: u64,
        /// The file length the counts imply.
        implied: u64,
    },
    /// More overflow entries than records.
    #[error("{overflow_count} overflow entries for {record_count} records")]
    OverflowCount {
        /// Overflow entries stated.
        overflow_count: u64,
        /// Records stated.
        record_count: u64,
    },
}

/// Encodes a record for `hash` (full hash bytes) with `count` into `out` (`record_len` bytes).
///
/// Returns `true` when the count did not fit inline and must be added to the overflow table.
#[inline]
pub fn encode_record(hash: &[u8], count: u32, out: &mut [u8]) -> bool {
    let n = hash.len();
    debug_assert_eq!(out.len(), n - 1);
    let (inline, overflow) = if count > INLINE_COUNT_MAX {
        (COUNT_ESCAPE, true)
    } else {
        (count, false)
    };
    out[0] = ((inline >> 8) as u8) << 4 | (hash[2] & 0x0F);
    out[1..n - 2].copy_from_slice(&hash[3..n]);
    out[n - 2] = inline as u8;
    overflow
}

/// The 12-bit inline count of a record (`COUNT_ESCAPE` means "see the overflow table").
#[inline]
pub fn record_inline_count(record: &[u8]) -> u32 {
    u32::from(record[0] >> 4) << 8 | u32::from(record[record.len() - 1])
}

/// The hash bits after the prefix, as stored in `record`: the low nibble of byte 0 followed by
/// the remaining bytes, excluding the count byte. Comparing these orders records by hash.
#[inline]
pub fn record_key(record: &[u8]) -> (u8, &[u8]) {
    (record[0] & 0x0F, &record[1..record.len() - 1])
}

/// Rebuilds the full hash bytes of a record in prefix `prefix` into `out` (`kind.byte_len()` bytes).
#[inline]
pub fn decode_record_hash(prefix: u32, record: &[u8], out: &mut [u8]) {
    let n = record.len() + 1;
    out[0] = (prefix >> 12) as u8;
    out[1] = (prefix >> 4) as u8;
    out[2] = ((prefix & 0xF) as u8) << 4 | (record[0] & 0x0F);
    out[3..n].copy_from_slice(&record[1..n - 2]);
}

/// The first 60 bits after the prefix of a record, as an integer in `0..2^60`; orders records
/// like [`record_key`] and estimates where a key sits in its prefix.
#[inline]
pub fn key_head(record: &[u8]) -> u64 {
    // One load and a byte swap; the mask drops the count's high nibble.
    u64::from_be_bytes(record[..8].try_into().expect("8 bytes")) & (u64::MAX >> 4)
}

/// The stored hash bits of a record after the 60 of [`key_head`] (the count byte excluded).
/// Records compare like [`record_key`] when compared by `(key_head, key_tail)`: the integer
/// decides almost always, the tail only when the first 60 bits are equal.
#[inline]
pub fn key_tail(record: &[u8]) -> &[u8] {
    &record[8..record.len() - 1]
}

/// Writes the upper-case hex suffix of a record (the hash after its 5-hex prefix) into `out`,
/// which must be exactly `2 * record.len() - 3` bytes long.
#[inline]
pub fn write_record_suffix_hex(record: &[u8], out: &mut [u8]) {
    let rest = &record[1..record.len() - 1];
    out[0] = crate::hash::HEX_UPPER[usize::from(record[0] & 0x0F)];
    const_hex::encode_to_slice_upper(rest, &mut out[1..]).expect("suffix buffer length");
}

/// Encodes the prefix offset table from the number of records in each prefix.
pub fn encode_table(prefix_counts: &[u64]) -> Vec<u8> {
    debug_assert_eq!(prefix_counts.len(), PREFIX_COUNT);
    let mut table = Vec::with_capacity(TABLE_LEN);
    let mut offset = 0u64;
    table.extend_from_slice(&offset.to_le_bytes());
    for &n in prefix_counts {
        offset += n;
        table.extend_from_slice(&offset.to_le_bytes());
    }
    table
}

/// Encodes the prefix tag table from one tag per prefix.
pub fn encode_tags(tags: &[u64]) -> Vec<u8> {
    debug_assert_eq!(tags.len(), PREFIX_COUNT);
    let mut out = Vec::with_capacity(TAGS_LEN);
    for &tag in tags {
        out.extend_from_slice(&tag.to_le_bytes());
    }
    out
}

/// Reads the tag of prefix `i` from the tag table bytes.
#[inline]
pub fn tag_entry(tags: &[u8], i: usize) -> u64 {
    get_u64(tags, i * TAG_LEN)
}

/// Computes a prefix tag: XXH3-64 (seed 0) of the canonical form of the prefix's content, the
/// kind code byte (`1` SHA-1, `2` NTLM) followed, for each record in hash order, by the full
/// hash bytes (20 or 16) and the exact count as a u32 LE. The form does not depend on the
/// record layout, so equal data gives equal tags on any machine, build or format version.
#[derive(Clone)]
pub struct TagHasher {
    /// The digest state over everything flushed so far.
    state: Xxh3State,
    /// Canonical bytes not yet handed to `state` (one `update` per buffer, not per record).
    buf: [u8; TAG_BUF_LEN],
    /// Bytes used in `buf`.
    used: usize,
    /// The kind code that starts every canonical form.
    kind_code: u8,
}

/// Streaming XXH3-64 with the default seed and secret, allocation-free (`XxHash3_64::with_seed`
/// boxes a secret per hasher: one allocation per prefix).
type Xxh3State =
    twox_hash::xxhash3_64::RawHasher<&'static [u8; twox_hash::xxhash3_64::DEFAULT_SECRET_LENGTH]>;

fn new_xxh3() -> Xxh3State {
    Xxh3State::new(twox_hash::xxhash3_64::SecretBuffer::default())
}

/// Staging buffer of [`TagHasher`]: a whole number of the longest canonical entries (24 bytes).
const TAG_BUF_LEN: usize = 24 * 256;

impl TagHasher {
    /// A hasher for prefixes of `kind` (about 6 KiB: box it where it is kept in a struct).
    #[inline]
    pub fn new(kind: HashKind) -> TagHasher {
        let mut hasher = TagHasher {
            state: new_xxh3(),
            buf: [0u8; TAG_BUF_LEN],
            used: 1,
            kind_code: kind_code(kind),
        };
        hasher.buf[0] = hasher.kind_code;
        hasher
    }

    /// Adds the record of `prefix` stored as `record` (any layout of this module) with its
    /// exact `count`.
    #[inline]
    pub fn push_record(&mut self, prefix: u32, record: &[u8], count: u32) {
        match record.len() {
            SHA1_RECORD_LEN => self.push_sized::<SHA1_RECORD_LEN>(prefix, record, count),
            NTLM_RECORD_LEN => self.push_sized::<NTLM_RECORD_LEN>(prefix, record, count),
            _ => self.push_any(prefix, record, count),
        }
    }

    /// Adds the records of `prefix` stored back to back in `records` (`record_len` bytes each),
    /// each with the exact count `count` gives for it, in order. The same bytes as
    /// [`TagHasher::push_record`] per record, with one dispatch on the length per call.
    #[inline]
    pub fn push_records(
        &mut self,
        prefix: u32,
        records: &[u8],
        record_len: usize,
        mut count: impl FnMut(&[u8]) -> u32,
    ) {
        match record_len {
            SHA1_RECORD_LEN => self.push_run::<SHA1_RECORD_LEN>(prefix, records, count),
            NTLM_RECORD_LEN => self.push_run::<NTLM_RECORD_LEN>(prefix, records, count),
            _ => {
                for record in records.chunks_exact(record_len) {
                    let c = count(record);
                    self.push_any(prefix, record, c);
                }
            }
        }
    }

    /// [`TagHasher::push_records`] for records of `RECORD_LEN` bytes: as many records as the
    /// staging buffer has room for at a time, each staged with constant-length copies and no
    /// room check of its own.
    #[inline(always)]
    fn push_run<const RECORD_LEN: usize>(
        &mut self,
        prefix: u32,
        mut records: &[u8],
        mut count: impl FnMut(&[u8]) -> u32,
    ) {
        let entry_len = RECORD_LEN + 5;
        let head = [
            (prefix >> 12) as u8,
            (prefix >> 4) as u8,
            ((prefix & 0xF) as u8) << 4,
        ];
        while !records.is_empty() {
            if self.used + entry_len > TAG_BUF_LEN {
                self.flush();
            }
            let room = (TAG_BUF_LEN - self.used) / entry_len;
            let take = room.min(records.len() / RECORD_LEN);
            let (now, rest) = records.split_at(take * RECORD_LEN);
            let out = &mut self.buf[self.used..self.used + take * entry_len];
            for (out, record) in out
                .chunks_exact_mut(entry_len)
                .zip(now.chunks_exact(RECORD_LEN))
            {
                let c = count(record);
                out[0] = head[0];
                out[1] = head[1];
                out[2] = head[2] | (record[0] & 0x0F);
                out[3..RECORD_LEN + 1].copy_from_slice(&record[1..RECORD_LEN - 1]);
                out[RECORD_LEN + 1..].copy_from_slice(&c.to_le_bytes());
            }
            self.used += take * entry_len;
            records = rest;
            if take == 0 {
                break; // a trailing partial record (never in an index): ignored, as chunks_exact does
            }
        }
    }

    /// [`TagHasher::push_record`] for records of `RECORD_LEN` bytes: every copy has a constant
    /// length, so none is a `memcpy` call (the tags are computed for every record at import).
    #[inline(always)]
    fn push_sized<const RECORD_LEN: usize>(&mut self, prefix: u32, record: &[u8], count: u32) {
        if self.used + RECORD_LEN + 5 > TAG_BUF_LEN {
            self.flush();
        }
        let record = &record[..RECORD_LEN];
        let out = &mut self.buf[self.used..self.used + RECORD_LEN + 5];
        out[0] = (prefix >> 12) as u8;
        out[1] = (prefix >> 4) as u8;
        out[2] = ((prefix & 0xF) as u8) << 4 | (record[0] & 0x0F);
        out[3..RECORD_LEN + 1].copy_from_slice(&record[1..RECORD_LEN - 1]);
        out[RECORD_LEN + 1..].copy_from_slice(&count.to_le_bytes());
        self.used += RECORD_LEN + 5;
    }

    /// Adds the record whose full hash is `hash` with its exact `count`, for records of
    /// `RECORD_LEN` bytes (the hash is one byte longer: 20 or 16): the canonical entry itself,
    /// copied as is.
    #[inline(always)]
    pub fn push_hash<const RECORD_LEN: usize>(&mut self, hash: &[u8], count: u32) {
        let hash_len = RECORD_LEN + 1;
        if self.used + hash_len + 4 > TAG_BUF_LEN {
            self.flush();
        }
        let out = &mut self.buf[self.used..self.used + hash_len + 4];
        out[..hash_len].copy_from_slice(&hash[..hash_len]);
        out[hash_len..].copy_from_slice(&count.to_le_bytes());
        self.used += hash_len + 4;
    }

    fn push_any(&mut self, prefix: u32, record: &[u8], count: u32) {
        let n = record.len() + 1;
        if self.used + n + 4 > TAG_BUF_LEN {
            self.flush();
        }
        let out = &mut self.buf[self.used..self.used + n + 4];
        decode_record_hash(prefix, record, &mut out[..n]);
        out[n..].copy_from_slice(&count.to_le_bytes());
        self.used += n + 4;
    }

    fn flush(&mut self) {
        std::hash::Hasher::write(&mut self.state, &self.buf[..self.used]);
        self.used = 0;
    }

    /// The tag of the records pushed since the last `finish` (or `new`); the hasher starts
    /// over for the next prefix.
    #[inline]
    pub fn finish(&mut self) -> u64 {
        self.flush();
        let tag = std::hash::Hasher::finish(&self.state);
        self.state = new_xxh3();
        self.buf[0] = self.kind_code;
        self.used = 1;
        tag
    }
}

/// The tag of a prefix with no records.
pub fn empty_prefix_tag(kind: HashKind) -> u64 {
    twox_hash::XxHash3_64::oneshot(&[kind_code(kind)])
}

/// Encodes one overflow table entry.
pub fn encode_overflow(ordinal: u64, count: u32) -> [u8; OVERFLOW_ENTRY_LEN] {
    let mut out = [0u8; OVERFLOW_ENTRY_LEN];
    out[..8].copy_from_slice(&ordinal.to_le_bytes());
    out[8..].copy_from_slice(&count.to_le_bytes());
    out
}

/// Decodes one overflow table entry into `(ordinal, count)`.
#[inline]
pub fn decode_overflow(entry: &[u8]) -> (u64, u32) {
    (get_u64(entry, 0), get_u32(entry, 8))
}

/// Reads entry `i` of the prefix offset table from the table bytes.
#[inline]
pub fn table_entry(table: &[u8], i: usize) -> u64 {
    get_u64(table, i * 8)
}

/// Current time in seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn truncate_on_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// CRC-32 of a header whose own CRC field (4 bytes at `crc_at`) counts as zero: what the field
/// holds when the header is intact. Shared by the index and filter formats.
pub(crate) fn header_crc(head: &[u8], crc_at: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&head[..crc_at]);
    hasher.update(&[0; 4]);
    hasher.update(&head[crc_at + 4..]);
    hasher.finalize()
}

/// Little-endian integer fields, shared by the index and filter formats (never a cast from the
/// mapped bytes).
#[inline]
pub(crate) fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
pub(crate) fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_hash_and_inline_count() {
        let hash: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(37)).collect();
        let mut rec = [0u8; 19];
        assert!(!encode_record(&hash, 4094, &mut rec));
        assert_eq!(record_inline_count(&rec), 4094);
        let mut back = [0u8; 20];
        decode_record_hash(crate::hash::prefix_of(&hash), &rec, &mut back);
        assert_eq!(&back[..], &hash[..]);
        assert!(encode_record(&hash, 4095, &mut rec));
        assert_eq!(record_inline_count(&rec), COUNT_ESCAPE);
    }

    #[test]
    fn tag_of_sized_pushes_equals_the_generic_canonical_form() {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            let n = kind.byte_len();
            let prefix = 0xABCDE;
            let mut records = Vec::new();
            let mut counts = Vec::new();
            // Enough records to flush the staging buffer several times mid-record stream.
            for i in 0..1000u32 {
                let mut hash: Vec<u8> = (0..n as u32)
                    .map(|b| (i.wrapping_mul(2654435761) >> (b % 24)) as u8)
                    .collect();
                hash[0] = 0xAB;
                hash[1] = 0xCD;
                hash[2] = 0xE0 | (hash[2] & 0x0F);
                let count = i * 977 % 9000;
                let mut record = vec![0u8; n - 1];
                encode_record(&hash, count, &mut record);
                records.extend_from_slice(&record);
                counts.push(count);
            }
            let mut generic = TagHasher::new(kind);
            let mut sized = TagHasher::new(kind);
            let mut batch = TagHasher::new(kind);
            let mut canonical = vec![kind_code(kind)];
            for (record, &count) in records.chunks_exact(n - 1).zip(&counts) {
                generic.push_any(prefix, record, count);
                sized.push_record(prefix, record, count);
                let mut hash = vec![0u8; n];
                decode_record_hash(prefix, record, &mut hash);
                canonical.extend_from_slice(&hash);
                canonical.extend_from_slice(&count.to_le_bytes());
            }
            let mut next = counts.iter();
            batch.push_records(prefix, &records, n - 1, |_| *next.next().unwrap());
            let expected = xxhash_rust::xxh3::xxh3_64(&canonical);
            assert_eq!(generic.finish(), expected, "{kind}");
            assert_eq!(sized.finish(), expected, "{kind}");
            assert_eq!(batch.finish(), expected, "{kind}");
        }
    }

    #[test]
    fn header_round_trips_and_detects_damage() {
        let header = Header {
            kind: HashKind::Ntlm,
            record_count: 3,
            overflow_count: 1,
            build_time: 1_700_000_000,
            label: "sample".into(),
            body_crc: 42,
        };
        let len = header.expected_file_len().unwrap();
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes, len).unwrap(), header);
        let mut damaged = bytes;
        damaged[BUILD_TIME_AT] ^= 1;
        assert_eq!(Header::decode(&damaged, len), Err(HeaderError::Checksum));
        assert!(matches!(
            Header::decode(&bytes, len - 1),
            Err(HeaderError::FileLength { .. })
        ));
    }
}
