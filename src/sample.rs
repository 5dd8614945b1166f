//! The bundled sample corpus (`data/`), compiled into the binary so every command works on a
//! fresh machine without an index.

use crate::hash::{Hash, HashKind};
use crate::index::Index;
use crate::mmap::IndexBytes;
use crate::writer;

/// The bundled SHA-1 sample dump.
pub const SAMPLE_SHA1: &str = include_str!("../data/sample-sha1.txt");

/// The bundled NTLM sample dump.
pub const SAMPLE_NTLM: &str = include_str!("../data/sample-ntlm.txt");

/// Build time recorded in sample indexes: fixed, so their ETags are stable across restarts.
pub const SAMPLE_BUILD_TIME: u64 = 1_764_000_000;

/// An in-memory index of the bundled sample for `kind`.
pub fn sample_index(kind: HashKind) -> Index<IndexBytes> {
    let text = match kind {
        HashKind::Sha1 => SAMPLE_SHA1,
        HashKind::Ntlm => SAMPLE_NTLM,
    };
    let entries: Vec<(Hash, u32)> = text
        .lines()
        .map(|line| {
            let (hash, count) = line.split_once(':').expect("sample line has ':'");
            let hash = Hash::parse_hex_kind(kind, hash.as_bytes()).expect("sample hash");
            (hash, count.parse().expect("sample count"))
        })
        .collect();
    let bytes = writer::build_in_memory(
        kind,
        entries.iter().map(|(h, c)| (h.as_bytes(), *c)),
        &format!("bundled {kind} sample (sample counts)"),
        SAMPLE_BUILD_TIME,
    );
    Index::open(IndexBytes::Owned(bytes)).expect("bundled sample builds a valid index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_finds_password_in_both_kinds() {
        for kind in [HashKind::Sha1, HashKind::Ntlm] {
            let index = sample_index(kind);
            assert_eq!(
                index.lookup(&kind.hash_password("password")),
                Some(9_545_824)
            );
            assert_eq!(
                index.lookup(&kind.hash_password("not in the sample, surely")),
                None
            );
            index.verify().unwrap();
        }
    }
}
