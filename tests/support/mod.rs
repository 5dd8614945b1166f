//! Shared fixtures: the seeded generator from `tools/` and ground-truth checks.
#![allow(dead_code)] // each test binary uses a different part

#[path = "../../tools/synth.rs"]
pub mod synth;

use hibp_mirror::{HashKind, Index, Prefix};
pub use synth::Synth;

/// The kind whose hashes have `synth.hash_len` bytes.
pub fn kind_of(synth: &Synth) -> HashKind {
    match synth.hash_len {
        20 => HashKind::Sha1,
        _ => HashKind::Ntlm,
    }
}

/// The corpus as dump text.
pub fn dump_text(synth: &Synth, crlf: bool, final_newline: bool) -> Vec<u8> {
    let mut out = Vec::new();
    synth.write_dump(&mut out, crlf, final_newline).unwrap();
    out
}

/// Asserts that every prefix's `range` and every entry's `lookup` match the generator exactly.
pub fn assert_matches<D: AsRef<[u8]> + Sync>(index: &Index<D>, synth: &Synth) {
    let kind = kind_of(synth);
    assert_eq!(index.kind(), kind);
    let mut total = 0u64;
    for p in 0..synth::PREFIXES {
        let prefix = Prefix::new(p).unwrap();
        let expected = synth.prefix_entries(p);
        let range = index.range(prefix);
        assert_eq!(range.len(), expected.len(), "prefix {prefix}: entry count");
        for (entry, (hash, count)) in range.iter().zip(&expected) {
            assert_eq!(entry.suffix_hex(), synth.hex(hash)[5..], "prefix {prefix}");
            assert_eq!(entry.count(), *count, "prefix {prefix}: count");
            assert_eq!(entry.hash(prefix, kind).as_bytes(), &hash[..kind.len()]);
        }
        for (hash, count) in &expected {
            let hash = hibp_mirror::Hash::from_bytes(kind, &hash[..kind.len()]).unwrap();
            assert_eq!(index.lookup(&hash), Some(*count), "lookup {hash:?}");
        }
        total += expected.len() as u64;
    }
    assert_eq!(index.len(), total);
    index.verify().expect("a fresh index verifies");
}
