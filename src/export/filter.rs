//! The binary fuse filter file: layout, writer and reader. `docs/FILTER.md` describes the same
//! layout byte by byte; this module is the only Rust code that knows its offsets.
//!
//! A filter answers "probably in the corpus" or "certainly not" for a full hash. Keys are the
//! first 8 bytes of the hash read as a big-endian `u64` (SHA-1 and NTLM bytes are uniformly
//! distributed, so these keys are too); the top `shard_bits` bits of the key choose a shard, and
//! each shard is an independent binary fuse filter built by the `xorf` crate. A shard is a
//! contiguous range of hash prefixes, so a builder holds one shard's keys at a time and a reader
//! touches one shard per query.
//!
//! The reader does not use `xorf`'s types: it decodes the stored descriptor and repeats xorf's
//! `contains` arithmetic on the stored bytes (little-endian, no alignment assumptions), which is
//! what an independent reader in another language does too. A unit test checks it against
//! `xorf`'s own `contains` on every key and on absent keys.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rayon::prelude::*;
use xorf::{BinaryFuse16, BinaryFuse8};

use crate::format::{get_u32, get_u64, header_crc, put_u32, put_u64};
use crate::hash::{Hash, HashKind};
use crate::mmap::IndexBytes;

/// First 8 bytes of every filter file.
pub const MAGIC: [u8; 8] = *b"HIBPFLT\0";

/// The layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// Length of the header.
pub const HEADER_LEN: usize = 128;

/// Length of one shard table entry.
pub const SHARD_ENTRY_LEN: usize = 40;

/// Most shard bits allowed: a shard is never narrower than one 5-hex prefix.
pub const MAX_SHARD_BITS: u8 = 20;

/// The only key scheme: the first 8 bytes of the hash as a big-endian `u64`.
pub const KEY_SCHEME_FIRST8_BE: u8 = 1;

/// Fingerprint arrays start at multiples of this many bytes (so C readers may cast).
pub const ARRAY_ALIGN: u64 = 8;

/// The builder aims for at most this many keys per shard (about 140 MiB of xorf build state).
pub const TARGET_SHARD_KEYS: u64 = 1 << 22;

/// A shard with more keys than this is refused: with uniformly distributed hashes it cannot
/// happen, and it is what keeps build memory bounded whatever the input.
pub const MAX_SHARD_KEYS: u64 = 1 << 23;

/// Shards built at once; with [`MAX_SHARD_KEYS`] this bounds the build's working memory
/// (about 34 bytes per key of xorf state) to about 1 GiB whatever the corpus size.
pub const MAX_PARALLEL_SHARDS: usize = 4;

// Header field offsets (see docs/FILTER.md).
const VERSION_AT: usize = 8;
const HEADER_LEN_AT: usize = 12;
const KIND_AT: usize = 16;
const WIDTH_AT: usize = 17;
const SHARD_BITS_AT: usize = 18;
const KEY_SCHEME_AT: usize = 19;
const HEADER_CRC_AT: usize = 20;
const KEY_COUNT_AT: usize = 24;
const FILE_LEN_AT: usize = 32;
const BUILD_TIME_AT: usize = 40;
const TABLE_CRC_AT: usize = 48;
const MIN_COUNT_AT: usize = 52;
const TOP_AT: usize = 56;
const FP_RATE_AT: usize = 64;
const SOURCE_RECORDS_AT: usize = 72;

// Shard entry field offsets.
const SEED_AT: usize = 0;
const OFFSET_AT: usize = 8;
const FP_COUNT_AT: usize = 16;
const SEG_LEN_AT: usize = 20;
const SEG_MASK_AT: usize = 24;
const SEG_COUNT_LEN_AT: usize = 28;
const SHARD_KEYS_AT: usize = 32;
const SHARD_CRC_AT: usize = 36;

/// Fingerprint width: 8 bits (~0.39% false positives, ~9 bits per key) or 16 bits (~0.0015%,
/// ~18 bits per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// `binfuse8`: xorf's `BinaryFuse8`.
    Bits8,
    /// `binfuse16`: xorf's `BinaryFuse16`.
    Bits16,
}

impl Width {
    /// Bits per fingerprint.
    pub const fn bits(self) -> u8 {
        match self {
            Width::Bits8 => 8,
            Width::Bits16 => 16,
        }
    }

    /// Bytes per fingerprint.
    pub const fn bytes(self) -> usize {
        self.bits() as usize / 8
    }

    /// The false-positive rate of the construction, `2^-bits`.
    pub fn theoretical_fp_rate(self) -> f64 {
        (-f64::from(self.bits())).exp2()
    }

    /// The command-line name (`binfuse8`, `binfuse16`).
    pub const fn name(self) -> &'static str {
        match self {
            Width::Bits8 => "binfuse8",
            Width::Bits16 => "binfuse16",
        }
    }
}

impl FromStr for Width {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "binfuse8" => Ok(Width::Bits8),
            "binfuse16" => Ok(Width::Bits16),
            _ => Err(format!(
                "unknown filter {s:?}: expected binfuse8 or binfuse16"
            )),
        }
    }
}

impl std::fmt::Display for Width {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The filter key of a full hash: its first 8 bytes as a big-endian `u64`.
#[inline]
pub fn key_of(hash_bytes: &[u8]) -> u64 {
    u64::from_be_bytes(
        hash_bytes[..8]
            .try_into()
            .expect("hashes are at least 8 bytes"),
    )
}

/// The shard of `key` for a filter with `shard_bits` shard bits: the key's top bits.
#[inline]
pub fn shard_of(key: u64, shard_bits: u8) -> usize {
    if shard_bits == 0 {
        0
    } else {
        (key >> (64 - u32::from(shard_bits))) as usize
    }
}

/// Shard bits for about `keys` keys: the fewest that keep shards at or under
/// [`TARGET_SHARD_KEYS`].
pub fn shard_bits_for(keys: u64) -> u8 {
    let mut bits = 0u8;
    while bits < MAX_SHARD_BITS && keys.div_ceil(1u64 << bits) > TARGET_SHARD_KEYS {
        bits += 1;
    }
    bits
}

/// The file's header, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterHeader {
    /// Kind of the hashes the filter was built from; queries of another kind are refused.
    pub kind: HashKind,
    /// Fingerprint width.
    pub width: Width,
    /// `2^shard_bits` shards.
    pub shard_bits: u8,
    /// Distinct keys in the filter.
    pub key_count: u64,
    /// Seconds since the Unix epoch when it was built.
    pub build_time: u64,
    /// The `--min-count` selection it was built with (0: none).
    pub min_count: u32,
    /// The `--top` selection it was built with (0: none).
    pub top: u64,
    /// The false-positive rate it was built for (`2^-bits`).
    pub fp_rate: f64,
    /// Records in the index it was built from.
    pub source_records: u64,
}

impl FilterHeader {
    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        1usize << self.shard_bits
    }

    /// Offset of the first fingerprint array.
    fn arrays_offset(&self) -> u64 {
        align((HEADER_LEN + self.shard_count() * SHARD_ENTRY_LEN) as u64)
    }

    fn encode(&self, file_len: u64, table_crc: u32) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(&MAGIC);
        put_u32(&mut out, VERSION_AT, VERSION);
        put_u32(&mut out, HEADER_LEN_AT, HEADER_LEN as u32);
        out[KIND_AT] = kind_code(self.kind);
        out[WIDTH_AT] = self.width.bits();
        out[SHARD_BITS_AT] = self.shard_bits;
        out[KEY_SCHEME_AT] = KEY_SCHEME_FIRST8_BE;
        put_u64(&mut out, KEY_COUNT_AT, self.key_count);
        put_u64(&mut out, FILE_LEN_AT, file_len);
        put_u64(&mut out, BUILD_TIME_AT, self.build_time);
        put_u32(&mut out, TABLE_CRC_AT, table_crc);
        put_u32(&mut out, MIN_COUNT_AT, self.min_count);
        put_u64(&mut out, TOP_AT, self.top);
        put_u64(&mut out, FP_RATE_AT, self.fp_rate.to_bits());
        put_u64(&mut out, SOURCE_RECORDS_AT, self.source_records);
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, HEADER_CRC_AT, crc);
        out
    }
}

/// One shard's binary fuse descriptor and where its fingerprints are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Shard {
    /// xorf's seed: added to the key before mixing.
    seed: u64,
    /// Byte offset of the fingerprint array in the file.
    offset: u64,
    /// Number of fingerprints.
    fingerprint_count: u32,
    /// xorf's segment length (a power of two).
    segment_length: u32,
    /// `segment_length - 1`.
    segment_length_mask: u32,
    /// xorf's segment count times segment length.
    segment_count_length: u32,
    /// Keys in the shard (0: the shard answers "absent" for every key).
    key_count: u32,
    /// CRC-32 of the fingerprint array's bytes.
    crc: u32,
}

impl Shard {
    fn encode(&self, out: &mut [u8]) {
        put_u64(out, SEED_AT, self.seed);
        put_u64(out, OFFSET_AT, self.offset);
        put_u32(out, FP_COUNT_AT, self.fingerprint_count);
        put_u32(out, SEG_LEN_AT, self.segment_length);
        put_u32(out, SEG_MASK_AT, self.segment_length_mask);
        put_u32(out, SEG_COUNT_LEN_AT, self.segment_count_length);
        put_u32(out, SHARD_KEYS_AT, self.key_count);
        put_u32(out, SHARD_CRC_AT, self.crc);
    }

    fn decode(entry: &[u8]) -> Shard {
        Shard {
            seed: get_u64(entry, SEED_AT),
            offset: get_u64(entry, OFFSET_AT),
            fingerprint_count: get_u32(entry, FP_COUNT_AT),
            segment_length: get_u32(entry, SEG_LEN_AT),
            segment_length_mask: get_u32(entry, SEG_MASK_AT),
            segment_count_length: get_u32(entry, SEG_COUNT_LEN_AT),
            key_count: get_u32(entry, SHARD_KEYS_AT),
            crc: get_u32(entry, SHARD_CRC_AT),
        }
    }

    /// Checks the descriptor so that every index a query computes is inside the array.
    fn check(&self) -> Result<(), String> {
        if self.key_count == 0 {
            return if self.fingerprint_count == 0
                && self.seed == 0
                && self.segment_length == 0
                && self.segment_length_mask == 0
                && self.segment_count_length == 0
            {
                Ok(())
            } else {
                Err("an empty shard has a non-zero descriptor".into())
            };
        }
        let l = self.segment_length;
        if !l.is_power_of_two() {
            return Err(format!("segment length {l} is not a power of two"));
        }
        if self.segment_length_mask != l - 1 {
            return Err(format!(
                "segment length mask {} does not match segment length {l}",
                self.segment_length_mask
            ));
        }
        if self.segment_count_length == 0 || self.segment_count_length % l != 0 {
            return Err(format!(
                "segment count length {} is not a positive multiple of {l}",
                self.segment_count_length
            ));
        }
        if u64::from(self.fingerprint_count)
            != u64::from(self.segment_count_length) + 2 * u64::from(l)
        {
            return Err(format!(
                "{} fingerprints, expected segment count length + 2 x segment length = {}",
                self.fingerprint_count,
                u64::from(self.segment_count_length) + 2 * u64::from(l)
            ));
        }
        if self.key_count > self.fingerprint_count {
            return Err(format!(
                "{} keys for {} fingerprints",
                self.key_count, self.fingerprint_count
            ));
        }
        Ok(())
    }
}

/// Why a filter file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Reading the file failed.
    #[error("cannot read filter {path}: {source}")]
    Io {
        /// The filter file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The same error, with the file it came from.
    #[error("filter {path}: {source}")]
    At {
        /// The filter file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<FilterError>,
    },
    /// Shorter than a header.
    #[error("file is {len} bytes, too short to be a filter (truncated?); re-run export")]
    TooShort {
        /// Actual length.
        len: u64,
    },
    /// Wrong magic bytes.
    #[error("not a hibp-mirror filter (wrong magic bytes)")]
    Magic,
    /// A layout version this build does not read.
    #[error("filter format version {got}, this build reads version {expected}; re-run export with this build")]
    Version {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        got: u32,
    },
    /// The header's CRC does not match.
    #[error("header checksum mismatch (damaged header); re-run export")]
    HeaderChecksum,
    /// A field holds a value this build does not know (hash kind, width, key scheme).
    #[error("unsupported filter: {0}")]
    Unsupported(String),
    /// The file length differs from the one the header states.
    #[error("file is {got} bytes but its header says {expected} (truncated or appended to); re-run export")]
    FileLength {
        /// Length in the header.
        expected: u64,
        /// Actual length.
        got: u64,
    },
    /// The shard table's CRC does not match.
    #[error("shard table checksum mismatch (damaged file); re-run export")]
    TableChecksum,
    /// Header or shard table fields contradict each other.
    #[error("inconsistent filter: {0}; re-run export")]
    Inconsistent(String),
    /// A shard's fingerprints do not match their CRC (found by `verify`).
    #[error("shard {shard}: fingerprint checksum mismatch (expected {expected:08x}, got {got:08x}); re-run export")]
    ShardChecksum {
        /// The damaged shard.
        shard: usize,
        /// CRC in the table.
        expected: u32,
        /// CRC of the bytes.
        got: u32,
    },
    /// A hash of one kind was queried against a filter of another.
    #[error("this filter holds {filter} hashes; a {query} hash cannot be checked against it")]
    KindMismatch {
        /// Kind of the filter.
        filter: HashKind,
        /// Kind of the query.
        query: HashKind,
    },
}

impl FilterError {
    fn at(self, path: &Path) -> FilterError {
        match self {
            e @ (FilterError::Io { .. } | FilterError::At { .. }) => e,
            e => FilterError::At {
                path: path.to_owned(),
                source: Box::new(e),
            },
        }
    }
}

/// A filter file opened for queries over any byte container (a mapping, or a `Vec<u8>`).
pub struct Filter<D> {
    /// The whole file.
    data: D,
    /// The decoded header.
    header: FilterHeader,
    /// The decoded shard table (checked at open), so a query reads no table bytes.
    shards: Vec<Shard>,
}

impl<D: AsRef<[u8]>> Filter<D> {
    /// Opens a filter, checking everything that is cheap: magic, version, header CRC, kind,
    /// width, key scheme, file length, shard table CRC and every shard descriptor (bounds,
    /// offsets, sizes). The fingerprint CRCs are left to [`Filter::verify`].
    pub fn open(data: D) -> Result<Self, FilterError> {
        let bytes = data.as_ref();
        let file_len = bytes.len() as u64;
        if bytes.len() < HEADER_LEN {
            return Err(FilterError::TooShort { len: file_len });
        }
        let head = &bytes[..HEADER_LEN];
        if head[..8] != MAGIC {
            return Err(FilterError::Magic);
        }
        let version = get_u32(head, VERSION_AT);
        if version != VERSION {
            return Err(FilterError::Version {
                expected: VERSION,
                got: version,
            });
        }
        if header_crc(head, HEADER_CRC_AT) != get_u32(head, HEADER_CRC_AT) {
            return Err(FilterError::HeaderChecksum);
        }
        let header_len = get_u32(head, HEADER_LEN_AT);
        if header_len as usize != HEADER_LEN {
            return Err(FilterError::Inconsistent(format!(
                "header length {header_len}, expected {HEADER_LEN}"
            )));
        }
        let kind = match head[KIND_AT] {
            1 => HashKind::Sha1,
            2 => HashKind::Ntlm,
            other => {
                return Err(FilterError::Unsupported(format!(
                    "unknown hash kind code {other}"
                )))
            }
        };
        let width = match head[WIDTH_AT] {
            8 => Width::Bits8,
            16 => Width::Bits16,
            other => {
                return Err(FilterError::Unsupported(format!(
                    "unknown fingerprint width {other} bits"
                )))
            }
        };
        if head[KEY_SCHEME_AT] != KEY_SCHEME_FIRST8_BE {
            return Err(FilterError::Unsupported(format!(
                "unknown key scheme {}",
                head[KEY_SCHEME_AT]
            )));
        }
        let shard_bits = head[SHARD_BITS_AT];
        if shard_bits > MAX_SHARD_BITS {
            return Err(FilterError::Inconsistent(format!(
                "{shard_bits} shard bits, at most {MAX_SHARD_BITS} allowed"
            )));
        }
        let header = FilterHeader {
            kind,
            width,
            shard_bits,
            key_count: get_u64(head, KEY_COUNT_AT),
            build_time: get_u64(head, BUILD_TIME_AT),
            min_count: get_u32(head, MIN_COUNT_AT),
            top: get_u64(head, TOP_AT),
            fp_rate: f64::from_bits(get_u64(head, FP_RATE_AT)),
            source_records: get_u64(head, SOURCE_RECORDS_AT),
        };
        let stated_len = get_u64(head, FILE_LEN_AT);
        if stated_len != file_len {
            return Err(FilterError::FileLength {
                expected: stated_len,
                got: file_len,
            });
        }
        let table_end = HEADER_LEN + header.shard_count() * SHARD_ENTRY_LEN;
        if bytes.len() < table_end {
            return Err(FilterError::Inconsistent(format!(
                "{} shards need a {table_end}-byte header and table, the file has {file_len}",
                header.shard_count()
            )));
        }
        let table = &bytes[HEADER_LEN..table_end];
        if crc32fast::hash(table) != get_u32(head, TABLE_CRC_AT) {
            return Err(FilterError::TableChecksum);
        }
        let mut shards = Vec::with_capacity(header.shard_count());
        let mut expected_offset = header.arrays_offset();
        let mut end = expected_offset;
        let mut keys = 0u64;
        for (i, entry) in table.chunks_exact(SHARD_ENTRY_LEN).enumerate() {
            let shard = Shard::decode(entry);
            shard
                .check()
                .map_err(|reason| FilterError::Inconsistent(format!("shard {i}: {reason}")))?;
            if shard.offset != expected_offset {
                return Err(FilterError::Inconsistent(format!(
                    "shard {i} starts at byte {}, expected {expected_offset}",
                    shard.offset
                )));
            }
            end = shard.offset + u64::from(shard.fingerprint_count) * width.bytes() as u64;
            expected_offset = align(end);
            keys += u64::from(shard.key_count);
            shards.push(shard);
        }
        if end != file_len {
            return Err(FilterError::Inconsistent(format!(
                "the shards end at byte {end} but the file is {file_len} bytes"
            )));
        }
        if keys != header.key_count {
            return Err(FilterError::Inconsistent(format!(
                "the shards hold {keys} keys but the header counts {}",
                header.key_count
            )));
        }
        Ok(Filter {
            data,
            header,
            shards,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &FilterHeader {
        &self.header
    }

    /// Total bytes of fingerprints (what "bits per key" is measured on).
    pub fn fingerprint_bytes(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| u64::from(s.fingerprint_count) * self.header.width.bytes() as u64)
            .sum()
    }

    /// Whether `hash` is probably in the filter (`Ok(false)`: certainly not). Refuses a hash of
    /// another kind than the filter's.
    pub fn contains(&self, hash: &Hash) -> Result<bool, FilterError> {
        if hash.kind() != self.header.kind {
            return Err(FilterError::KindMismatch {
                filter: self.header.kind,
                query: hash.kind(),
            });
        }
        Ok(self.contains_key(key_of(hash.as_bytes())))
    }

    /// Whether the key (see [`key_of`]) is probably in the filter. Touches one shard.
    #[inline]
    pub fn contains_key(&self, key: u64) -> bool {
        let shard = &self.shards[shard_of(key, self.header.shard_bits)];
        if shard.key_count == 0 {
            return false;
        }
        // xorf 0.13 `bfuse_contains_impl`: mix, fingerprint, three positions, xor.
        let hash = murmur_mix64(key.wrapping_add(shard.seed));
        let fingerprint = hash ^ (hash >> 32);
        let (h0, h1, h2) = positions(hash, shard);
        let bytes = &self.data.as_ref()[shard.offset as usize..];
        match self.header.width {
            Width::Bits8 => {
                let f = fingerprint as u8 ^ bytes[h0] ^ bytes[h1] ^ bytes[h2];
                f == 0
            }
            Width::Bits16 => {
                let at = |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
                let f = fingerprint as u16 ^ at(h0) ^ at(h1) ^ at(h2);
                f == 0
            }
        }
    }

    /// Checks every shard's fingerprint CRC; returns the first damaged shard.
    pub fn verify(&self) -> Result<(), FilterError> {
        let bytes = self.data.as_ref();
        let width = self.header.width.bytes() as u64;
        let damaged = self
            .shards
            .par_iter()
            .enumerate()
            .find_map_first(|(i, shard)| {
                let start = shard.offset as usize;
                let end = (shard.offset + u64::from(shard.fingerprint_count) * width) as usize;
                let got = crc32fast::hash(&bytes[start..end]);
                (got != shard.crc).then_some(FilterError::ShardChecksum {
                    shard: i,
                    expected: shard.crc,
                    got,
                })
            });
        match damaged {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Filter<IndexBytes> {
    /// Maps the filter at `path` and runs the open-time checks of [`Filter::open`].
    ///
    /// # Safety
    ///
    /// The file must not be modified or truncated while the filter is alive: see
    /// [`IndexBytes::map`]. `export` replaces filters by rename only.
    pub unsafe fn open_path(path: impl AsRef<Path>) -> Result<Filter<IndexBytes>, FilterError> {
        let path = path.as_ref();
        let io_err = |source| FilterError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: forwarded to the caller, per this function's contract.
        let map = unsafe { IndexBytes::map(&file) }.map_err(io_err)?;
        Filter::open(map).map_err(|e| e.at(path))
    }
}

/// MurmurHash3's 64-bit finalizer, as xorf 0.13 applies it (`prelude::mix`).
#[inline]
fn murmur_mix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// xorf 0.13 `hash_of_hash`: the three fingerprint positions of a mixed hash.
#[inline]
fn positions(hash: u64, shard: &Shard) -> (usize, usize, usize) {
    let hi = ((u128::from(hash) * u128::from(shard.segment_count_length)) >> 64) as u32;
    let h0 = hi;
    // Cannot overflow: open checked segment_count_length + 2 x segment_length fits a u32.
    let mut h1 = h0 + shard.segment_length;
    let mut h2 = h1 + shard.segment_length;
    h1 ^= ((hash >> 18) as u32) & shard.segment_length_mask;
    h2 ^= (hash as u32) & shard.segment_length_mask;
    (h0 as usize, h1 as usize, h2 as usize)
}

/// What a filter is built from and for: everything in the header except the counts and CRCs.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// Kind of the hashes.
    pub kind: HashKind,
    /// Fingerprint width.
    pub width: Width,
    /// `2^shard_bits` shards (see [`shard_bits_for`]).
    pub shard_bits: u8,
    /// Selection recorded in the header (0: none).
    pub min_count: u32,
    /// Selection recorded in the header (0: none).
    pub top: u64,
    /// Records in the source index.
    pub source_records: u64,
    /// Seconds since the Unix epoch.
    pub build_time: u64,
}

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Too many keys in one shard to build in bounded memory.
    #[error("shard {shard} holds {keys} keys, more than the limit of {MAX_SHARD_KEYS}: the hashes are not uniformly distributed (not real SHA-1/NTLM hashes?), or choose more shard bits")]
    ShardTooLarge {
        /// The shard.
        shard: usize,
        /// Its key count.
        keys: u64,
    },
    /// A key was handed to the wrong shard (a bug in the caller).
    #[error("key {key:016x} does not belong to shard {shard}")]
    WrongShard {
        /// The key.
        key: u64,
        /// The shard it was given for.
        shard: usize,
    },
    /// xorf gave up (practically only with duplicate keys, which the builder removes).
    #[error("shard {shard}: binary fuse construction failed: {reason}")]
    Construction {
        /// The shard.
        shard: usize,
        /// xorf's message.
        reason: &'static str,
    },
    /// The key source failed.
    #[error("{0}")]
    Source(String),
}

/// Progress report of a filter build, in shards done.
pub type OnShard<'a> = &'a (dyn Fn(usize) + Sync);

/// Builds the filter of `spec` into `out` (an empty, seekable file), asking `shard_keys(s)` for
/// the keys of shard `s` (any order, duplicates allowed). At most [`MAX_PARALLEL_SHARDS`] shards
/// are in memory at once. Returns the header written; `out` is flushed, not synced.
pub fn build<W, F>(
    out: W,
    spec: &FilterSpec,
    shard_keys: F,
    on_shard: OnShard<'_>,
) -> Result<FilterHeader, BuildError>
where
    W: Write + Seek,
    F: Fn(usize) -> Result<Vec<u64>, BuildError> + Sync,
{
    assert!(spec.shard_bits <= MAX_SHARD_BITS, "shard bits out of range");
    let mut header = FilterHeader {
        kind: spec.kind,
        width: spec.width,
        shard_bits: spec.shard_bits,
        key_count: 0,
        build_time: spec.build_time,
        min_count: spec.min_count,
        top: spec.top,
        fp_rate: spec.width.theoretical_fp_rate(),
        source_records: spec.source_records,
    };
    let shard_count = header.shard_count();
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut position = header.arrays_offset();
    out.seek(SeekFrom::Start(position))?;
    let mut table = vec![0u8; shard_count * SHARD_ENTRY_LEN];
    let parallel = rayon::current_num_threads().clamp(1, MAX_PARALLEL_SHARDS);
    let all: Vec<usize> = (0..shard_count).collect();
    for batch in all.chunks(parallel) {
        let built: Vec<Result<(Shard, Vec<u8>), BuildError>> = batch
            .par_iter()
            .map(|&s| build_shard(s, spec, &shard_keys))
            .collect();
        for (result, &s) in built.into_iter().zip(batch) {
            let (mut shard, fingerprints) = result?;
            let padding = align(position) - position;
            out.write_all(&[0u8; ARRAY_ALIGN as usize][..padding as usize])?;
            position += padding;
            shard.offset = position;
            out.write_all(&fingerprints)?;
            position += fingerprints.len() as u64;
            header.key_count += u64::from(shard.key_count);
            shard.encode(&mut table[s * SHARD_ENTRY_LEN..(s + 1) * SHARD_ENTRY_LEN]);
            on_shard(s + 1);
        }
    }
    let table_crc = crc32fast::hash(&table);
    out.seek(SeekFrom::Start(HEADER_LEN as u64))?;
    out.write_all(&table)?;
    out.seek(SeekFrom::Start(0))?;
    out.write_all(&header.encode(position, table_crc))?;
    out.flush()?;
    Ok(header)
}

/// Builds one shard: its descriptor (offset left 0) and fingerprint bytes.
fn build_shard<F>(
    s: usize,
    spec: &FilterSpec,
    shard_keys: &F,
) -> Result<(Shard, Vec<u8>), BuildError>
where
    F: Fn(usize) -> Result<Vec<u64>, BuildError> + Sync,
{
    let mut keys = shard_keys(s)?;
    keys.sort_unstable();
    keys.dedup();
    if keys.len() as u64 > MAX_SHARD_KEYS {
        return Err(BuildError::ShardTooLarge {
            shard: s,
            keys: keys.len() as u64,
        });
    }
    if let Some(&key) = keys.iter().find(|&&k| shard_of(k, spec.shard_bits) != s) {
        return Err(BuildError::WrongShard { key, shard: s });
    }
    if keys.is_empty() {
        return Ok((Shard::default(), Vec::new()));
    }
    let construction = |reason| BuildError::Construction { shard: s, reason };
    let (descriptor, fingerprints) = match spec.width {
        Width::Bits8 => {
            let f = BinaryFuse8::try_from(&keys[..]).map_err(construction)?;
            (f.descriptor, f.fingerprints.into_vec())
        }
        Width::Bits16 => {
            let f = BinaryFuse16::try_from(&keys[..]).map_err(construction)?;
            let bytes = f
                .fingerprints
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (f.descriptor, bytes)
        }
    };
    let shard = Shard {
        seed: descriptor.seed,
        offset: 0,
        fingerprint_count: (fingerprints.len() / spec.width.bytes()) as u32,
        segment_length: descriptor.segment_length,
        segment_length_mask: descriptor.segment_length_mask,
        segment_count_length: descriptor.segment_count_length,
        key_count: keys.len() as u32,
        crc: crc32fast::hash(&fingerprints),
    };
    debug_assert_eq!(shard.check(), Ok(()));
    Ok((shard, fingerprints))
}

fn align(offset: u64) -> u64 {
    offset.div_ceil(ARRAY_ALIGN) * ARRAY_ALIGN
}

fn kind_code(kind: HashKind) -> u8 {
    match kind {
        HashKind::Sha1 => 1,
        HashKind::Ntlm => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use xorf::Filter as _;

    fn spec(width: Width, shard_bits: u8) -> FilterSpec {
        FilterSpec {
            kind: HashKind::Sha1,
            width,
            shard_bits,
            min_count: 0,
            top: 0,
            source_records: 0,
            build_time: 1,
        }
    }

    fn build_vec(keys: &[u64], spec: &FilterSpec) -> Vec<u8> {
        let mut out = io::Cursor::new(Vec::new());
        build(
            &mut out,
            spec,
            |s| {
                Ok(keys
                    .iter()
                    .copied()
                    .filter(|&k| shard_of(k, spec.shard_bits) == s)
                    .collect())
            },
            &|_| {},
        )
        .unwrap();
        out.into_inner()
    }

    /// The reader repeats xorf's arithmetic on the stored bytes; check it against xorf's own
    /// `contains` on every key and on absent keys, for both widths and several sizes (small
    /// sizes take xorf's "smaller segment" retry path).
    #[test]
    fn reader_agrees_with_xorf_contains() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for &n in &[1usize, 2, 5, 100, 3_000, 70_000] {
            let mut keys: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            keys.sort_unstable();
            keys.dedup();
            let probes: Vec<u64> = (0..50_000).map(|_| rng.gen()).collect();
            for width in [Width::Bits8, Width::Bits16] {
                let file = build_vec(&keys, &spec(width, 0));
                let filter = Filter::open(file).unwrap();
                filter.verify().unwrap();
                let reference: Box<dyn Fn(&u64) -> bool> = match width {
                    Width::Bits8 => {
                        let f = BinaryFuse8::try_from(&keys[..]).unwrap();
                        Box::new(move |k| f.contains(k))
                    }
                    Width::Bits16 => {
                        let f = BinaryFuse16::try_from(&keys[..]).unwrap();
                        Box::new(move |k| f.contains(k))
                    }
                };
                for k in keys.iter().chain(&probes) {
                    assert_eq!(
                        filter.contains_key(*k),
                        reference(k),
                        "n={n} {width} key={k:x}"
                    );
                }
                assert!(keys.iter().all(|&k| filter.contains_key(k)));
            }
        }
    }

    #[test]
    fn shard_bits_keep_shards_under_the_target() {
        assert_eq!(shard_bits_for(0), 0);
        assert_eq!(shard_bits_for(TARGET_SHARD_KEYS), 0);
        assert_eq!(shard_bits_for(TARGET_SHARD_KEYS + 1), 1);
        assert_eq!(shard_bits_for(32_800_000), 3);
        assert_eq!(shard_bits_for(2_100_000_000), 9);
        assert_eq!(shard_bits_for(u64::MAX), MAX_SHARD_BITS);
    }

    #[test]
    fn empty_shards_answer_absent_and_sharded_files_keep_every_key() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        // Keys only in the low half of the key space: shards 2 and 3 of 4 stay empty.
        let keys: Vec<u64> = (0..10_000).map(|_| rng.gen::<u64>() >> 1).collect();
        let filter = Filter::open(build_vec(&keys, &spec(Width::Bits8, 2))).unwrap();
        assert!(keys.iter().all(|&k| filter.contains_key(k)));
        assert!((0..10_000).all(|_| !filter.contains_key(rng.gen::<u64>() | 1 << 63)));
        assert_eq!(filter.header().key_count, 10_000);
    }

    #[test]
    fn too_many_keys_in_one_shard_is_refused() {
        let spec = spec(Width::Bits8, 1);
        let err = build(
            io::Cursor::new(Vec::new()),
            &spec,
            |_| Ok((0..MAX_SHARD_KEYS + 1).collect()),
            &|_| {},
        )
        .unwrap_err();
        assert!(
            matches!(err, BuildError::ShardTooLarge { shard: 0, .. }),
            "{err}"
        );
    }
}
