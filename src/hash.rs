//! Hash kinds, full hashes and 5-hex prefixes: parsing and formatting, no I/O.

use std::fmt;
use std::str::FromStr;

use md4::Md4;
use sha1::{Digest, Sha1};

/// Number of distinct 5-hex prefixes (20 bits), i.e. the number of `/range` buckets.
pub const PREFIX_COUNT: usize = 1 << 20;

/// Number of hex characters in a prefix.
pub const PREFIX_HEX_LEN: usize = 5;

/// Longest hash this crate handles, in bytes (SHA-1).
pub const MAX_HASH_LEN: usize = 20;

/// Which corpus a hash belongs to: the SHA-1 or the NTLM Pwned Passwords dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashKind {
    /// SHA-1 of the UTF-8 password: 20 bytes, 40 hex characters.
    Sha1,
    /// NTLM (MD4 of the UTF-16LE password): 16 bytes, 32 hex characters.
    Ntlm,
}

impl HashKind {
    /// Length of a full hash in bytes.
    pub const fn byte_len(self) -> usize {
        match self {
            HashKind::Sha1 => 20,
            HashKind::Ntlm => 16,
        }
    }

    /// Length of a full hash in hex characters.
    pub const fn hex_len(self) -> usize {
        self.byte_len() * 2
    }

    /// Length of the part after the 5-hex prefix, in hex characters (35 or 27).
    pub const fn suffix_hex_len(self) -> usize {
        self.hex_len() - PREFIX_HEX_LEN
    }

    /// The kind whose full hash has `hex_len` hex characters, if any.
    pub const fn from_hex_len(hex_len: usize) -> Option<HashKind> {
        match hex_len {
            40 => Some(HashKind::Sha1),
            32 => Some(HashKind::Ntlm),
            _ => None,
        }
    }

    /// The kind whose suffix (after the prefix) has `hex_len` hex characters, if any.
    pub const fn from_suffix_hex_len(hex_len: usize) -> Option<HashKind> {
        Self::from_hex_len(hex_len + PREFIX_HEX_LEN)
    }

    /// Human-readable name for messages: `SHA-1` or `NTLM`.
    pub const fn label(self) -> &'static str {
        match self {
            HashKind::Sha1 => "SHA-1",
            HashKind::Ntlm => "NTLM",
        }
    }

    /// Lower-case name, as accepted on the command line and shown by `Display`.
    pub const fn name(self) -> &'static str {
        match self {
            HashKind::Sha1 => "sha1",
            HashKind::Ntlm => "ntlm",
        }
    }

    /// Hashes a password the way the corresponding dump was made.
    pub fn hash_password(self, password: &str) -> Hash {
        let mut bytes = [0u8; MAX_HASH_LEN];
        match self {
            HashKind::Sha1 => bytes.copy_from_slice(&Sha1::digest(password.as_bytes())),
            HashKind::Ntlm => {
                let mut md4 = Md4::new();
                for unit in password.encode_utf16() {
                    md4.update(unit.to_le_bytes());
                }
                bytes[..16].copy_from_slice(&md4.finalize());
            }
        }
        Hash { kind: self, bytes }
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HashKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha1" | "sha-1" => Ok(HashKind::Sha1),
            "ntlm" => Ok(HashKind::Ntlm),
            _ => Err(format!("unknown hash kind {s:?}: expected sha1 or ntlm")),
        }
    }
}

/// A 20-bit hash prefix, the key of a `/range` bucket (`5BAA6` for `5BAA61E4…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix(u32);

impl Prefix {
    /// The prefix with numeric value `value`; `None` when it does not fit in 20 bits.
    pub const fn new(value: u32) -> Option<Prefix> {
        if (value as usize) < PREFIX_COUNT {
            Some(Prefix(value))
        } else {
            None
        }
    }

    /// Numeric value, `0..2^20`.
    pub const fn value(self) -> u32 {
        self.0
    }

    /// Numeric value as an index into per-prefix tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Parses exactly five hex characters, either case.
    pub fn parse(text: &[u8]) -> Result<Prefix, PrefixError> {
        if text.len() != PREFIX_HEX_LEN {
            return Err(PrefixError::Length(text.len()));
        }
        let mut value = 0u32;
        for &c in text {
            let nibble = hex_value(c).ok_or(PrefixError::NotHex)?;
            value = value << 4 | u32::from(nibble);
        }
        Ok(Prefix(value))
    }

    /// The five upper-case hex characters.
    pub fn to_hex(self) -> [u8; PREFIX_HEX_LEN] {
        let mut out = [0u8; PREFIX_HEX_LEN];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = HEX_UPPER[(self.0 >> (4 * (4 - i)) & 0xF) as usize];
        }
        out
    }

    /// Every prefix from `00000` to `FFFFF`, in order.
    pub fn all() -> impl DoubleEndedIterator<Item = Prefix> + ExactSizeIterator {
        (0..PREFIX_COUNT as u32).map(Prefix)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05X}", self.0)
    }
}

/// Why a prefix did not parse. The messages are the upstream API's 400 bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not exactly five characters long.
    #[error("The hash prefix was not in a valid format")]
    Length(usize),
    /// Five characters, but not all hex digits.
    #[error("The hash prefix was not valid hexadecimal")]
    NotHex,
}

/// A full SHA-1 or NTLM hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hash {
    kind: HashKind,
    /// The hash bytes, zero-padded to [`MAX_HASH_LEN`] for NTLM.
    bytes: [u8; MAX_HASH_LEN],
}

impl Hash {
    /// A hash of `kind` from its raw bytes; `None` if `bytes` has the wrong length.
    pub fn from_bytes(kind: HashKind, bytes: &[u8]) -> Option<Hash> {
        if bytes.len() != kind.byte_len() {
            return None;
        }
        let mut padded = [0u8; MAX_HASH_LEN];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(Hash {
            kind,
            bytes: padded,
        })
    }

    /// Parses a full hash in hex (either case); the kind follows from the length.
    pub fn parse_hex(text: &[u8]) -> Result<Hash, HashError> {
        let kind = HashKind::from_hex_len(text.len()).ok_or(HashError::Length(text.len()))?;
        Self::parse_hex_kind(kind, text)
    }

    /// Parses a full hash of a known kind in hex (either case).
    pub fn parse_hex_kind(kind: HashKind, text: &[u8]) -> Result<Hash, HashError> {
        if text.len() != kind.hex_len() {
            return Err(HashError::Length(text.len()));
        }
        let mut bytes = [0u8; MAX_HASH_LEN];
        decode_hex(text, &mut bytes[..kind.byte_len()]).ok_or(HashError::NotHex)?;
        Ok(Hash { kind, bytes })
    }

    /// The kind of hash.
    pub fn kind(&self) -> HashKind {
        self.kind
    }

    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.kind.byte_len()]
    }

    /// The first 20 bits.
    pub fn prefix(&self) -> Prefix {
        Prefix(prefix_of(&self.bytes))
    }

    /// Upper-case hex of the whole hash.
    pub fn to_hex(&self) -> String {
        const_hex::encode_upper(self.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.to_hex())
    }
}

/// Why a full hash did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Not 40 (SHA-1) or 32 (NTLM) characters, or not the length of the expected kind.
    #[error("expected a 40-hex SHA-1 or 32-hex NTLM hash, found {0} characters")]
    Length(usize),
    /// Right length, but not all hex digits.
    #[error("the hash is not valid hexadecimal")]
    NotHex,
}

/// The 20-bit prefix of raw hash bytes (at least 3 bytes long).
#[inline]
pub fn prefix_of(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) << 12 | u32::from(bytes[1]) << 4 | u32::from(bytes[2]) >> 4
}

/// Upper-case hex digits by value.
pub(crate) const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes an even-length hex string (either case) into `out`; `None` if not hex.
///
/// const-hex's SIMD decoder; a hand-written eight-characters-per-`u64` (SWAR) decoder measured
/// no faster for 40-character hashes (`cargo bench --bench core`), so the library stays.
#[inline]
pub(crate) fn decode_hex(text: &[u8], out: &mut [u8]) -> Option<()> {
    // const-hex strips a leading "0x", which would hide a malformed hash.
    if text.len() != out.len() * 2 || text.starts_with(b"0x") {
        return None;
    }
    const_hex::decode_to_slice(text, out).ok()
}

/// The value of one hex digit (either case); `None` if `c` is not a hex digit.
#[inline]
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_match_known_values() {
        assert_eq!(
            HashKind::Sha1.hash_password("password").to_hex(),
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
        );
        assert_eq!(
            HashKind::Ntlm.hash_password("password").to_hex(),
            "8846F7EAEE8FB117AD06BDD830B7586C"
        );
    }

    #[test]
    fn prefix_parses_either_case_and_rejects_bad_input() {
        assert_eq!(
            Prefix::parse(b"5baa6").unwrap(),
            Prefix::parse(b"5BAA6").unwrap()
        );
        assert_eq!(Prefix::parse(b"5BAA6").unwrap().to_string(), "5BAA6");
        assert_eq!(Prefix::parse(b"5BAA"), Err(PrefixError::Length(4)));
        assert_eq!(Prefix::parse(b"5BAG6"), Err(PrefixError::NotHex));
        assert_eq!(&Prefix::new(0xFFFFF).unwrap().to_hex(), b"FFFFF");
        assert!(Prefix::new(1 << 20).is_none());
    }

    #[test]
    fn hex_decoding_agrees_with_a_scalar_decoder_for_every_byte_at_every_position() {
        let reference = |text: &[u8]| -> Option<Vec<u8>> {
            text.chunks(2)
                .map(|p| Some(hex_value(p[0])? << 4 | hex_value(p[1])?))
                .collect()
        };
        let base = *b"0123456789abcdefABCDEF0123456789abcdefAB";
        for position in 0..base.len() {
            for byte in 0..=255u8 {
                let mut text = base;
                text[position] = byte;
                let mut out = [0u8; 20];
                let got = decode_hex(&text, &mut out).map(|()| out.to_vec());
                assert_eq!(got, reference(&text), "byte {byte:#04x} at {position}");
            }
        }
        let mut out = [0u8; 3];
        assert_eq!(decode_hex(b"00fF7a", &mut out), Some(()));
        assert_eq!(out, [0x00, 0xFF, 0x7A]);
    }

    #[test]
    fn hash_parse_rejects_0x_and_wrong_lengths() {
        let zero_x = format!("0x{}", "A".repeat(38));
        assert_eq!(Hash::parse_hex(zero_x.as_bytes()), Err(HashError::NotHex));
        assert_eq!(Hash::parse_hex(b"ABC"), Err(HashError::Length(3)));
        let h = Hash::parse_hex(b"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8").unwrap();
        assert_eq!(h.prefix().to_string(), "5BAA6");
        assert_eq!(h.kind(), HashKind::Sha1);
    }
}
