//! Opening and verifying indexes: every kind of corruption is refused with a clear error.

mod support;

use hibp_mirror::format::{self, HEADER_LEN, RECORDS_OFFSET, TABLE_OFFSET, TAGS_OFFSET};
use hibp_mirror::writer::build_in_memory;
use hibp_mirror::{Hash, HashKind, Index, OpenError, VerifyError};
use support::{assert_matches, kind_of, Synth};

fn built(synth: &Synth) -> Vec<u8> {
    let entries: Vec<_> = synth.entries().collect();
    build_in_memory(
        kind_of(synth),
        entries.iter().map(|(h, c)| (&h[..synth.hash_len], *c)),
        "test corpus",
        1_700_000_000,
    )
}

fn corpus() -> (Synth, Vec<u8>) {
    let synth = Synth::new(20, 3, 8192, 300);
    let bytes = built(&synth);
    (synth, bytes)
}

fn open_error(bytes: Vec<u8>) -> String {
    match Index::open(bytes) {
        Ok(_) => panic!("a damaged index opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn built_index_round_trips_both_kinds() {
    for hash_len in [20, 16] {
        let synth = Synth::new(hash_len, 9, 8192, 300);
        let index = Index::open(built(&synth)).unwrap();
        assert_matches(&index, &synth);
        assert_eq!(index.header().label, "test corpus");
        assert_eq!(index.header().build_time, 1_700_000_000);
    }
}

#[test]
fn truncated_file_is_refused() {
    let (_, bytes) = corpus();
    for keep in [0, 10, HEADER_LEN, RECORDS_OFFSET, bytes.len() - 1] {
        let message = open_error(bytes[..keep].to_vec());
        assert!(
            message.contains("too short") || message.contains("truncated"),
            "{keep}: {message}"
        );
    }
}

#[test]
fn appended_bytes_are_refused() {
    let (_, mut bytes) = corpus();
    bytes.push(0);
    assert!(open_error(bytes).contains("truncated or appended"));
}

#[test]
fn wrong_magic_is_refused() {
    let (_, mut bytes) = corpus();
    bytes[0] = b'X';
    assert!(open_error(bytes).contains("not a hibp-mirror index"));
}

#[test]
fn unknown_version_is_refused() {
    let (_, mut bytes) = corpus();
    bytes[8] = 99;
    let err = Index::open(bytes).err().unwrap();
    assert!(matches!(
        err,
        OpenError::Header(format::HeaderError::Version {
            expected: format::VERSION,
            got: 99
        })
    ));
    assert!(err.to_string().contains("re-run `hibp-mirror import`"));
}

#[test]
fn every_flipped_header_byte_is_refused() {
    let (_, bytes) = corpus();
    for at in 8..HEADER_LEN {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        assert!(
            Index::open(damaged).is_err(),
            "flipped header byte {at} was accepted"
        );
    }
}

#[test]
fn offsets_going_backwards_are_refused() {
    let (_, mut bytes) = corpus();
    // Make prefix 00010's start greater than prefix 00011's start.
    let at = TABLE_OFFSET + 0x10 * 8;
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let message = open_error(bytes);
    assert!(
        message.contains("offsets go backwards at prefix 00011"),
        "{message}"
    );
}

#[test]
fn flipped_record_byte_is_caught_by_verify() {
    let (synth, bytes) = corpus();
    let mut damaged = bytes.clone();
    let at = RECORDS_OFFSET + 19 * 5 + 3;
    damaged[at] ^= 0x01;
    let index = Index::open(damaged).expect("record damage is not visible at open");
    assert!(matches!(index.verify(), Err(VerifyError::Checksum { .. })));
    assert_matches(&Index::open(bytes).unwrap(), &synth);
}

/// Fixes the body checksum of a patched index, so that only `verify`'s other checks can notice
/// the patch, and returns what `verify` finds.
fn verify_resealed(mut bytes: Vec<u8>) -> VerifyError {
    let header = format::Header::decode(&bytes, bytes.len() as u64).unwrap();
    let fixed = format::Header {
        body_crc: crc32fast::hash(&bytes[HEADER_LEN..]),
        ..header
    };
    bytes[..HEADER_LEN].copy_from_slice(&fixed.encode());
    Index::open(bytes).unwrap().verify().unwrap_err()
}

#[test]
fn records_out_of_order_are_caught_by_verify_even_with_a_matching_checksum() {
    let (_, mut bytes) = corpus();
    // Swap the first two records of prefix 00000 and fix the body checksum, so only the order
    // check can notice.
    let (a, b) = (RECORDS_OFFSET, RECORDS_OFFSET + 19);
    let first: Vec<u8> = bytes[a..b].to_vec();
    bytes.copy_within(b..b + 19, a);
    bytes[b..b + 19].copy_from_slice(&first);
    let err = verify_resealed(bytes);
    assert!(
        matches!(err, VerifyError::Order { position: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("prefix 00000"), "{err}");
}

/// Lookups gallop out from an interpolated guess: they must also find hashes far from where an
/// even spread would put them (keys bunched at both ends of a prefix, none in the middle).
#[test]
fn lookup_finds_hashes_far_from_their_interpolated_position() {
    let mut rng = support::SplitMix64::new(7);
    let mut hashes: Vec<[u8; 20]> = Vec::new();
    for i in 0..3000u32 {
        let mut h = [0u8; 20];
        rng.fill(&mut h);
        // Prefix ABCDE; the next 16 bits either 0x0000.. or 0xFFFF.. (two tight clusters).
        h[0] = 0xAB;
        h[1] = 0xCD;
        h[2] = 0xE0 | if i % 3 == 0 { 0x0 } else { 0xF };
        h[3] = if i % 3 == 0 { 0x00 } else { 0xFF };
        hashes.push(h);
    }
    hashes.sort();
    hashes.dedup();
    let entries: Vec<(&[u8], u32)> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| (&h[..], i as u32 + 1))
        .collect();
    let bytes = build_in_memory(HashKind::Sha1, entries.iter().copied(), "bunched", 1);
    let index = Index::open(bytes).unwrap();
    for (i, h) in hashes.iter().enumerate() {
        let hash = Hash::from_bytes(HashKind::Sha1, h).unwrap();
        assert_eq!(index.lookup(&hash), Some(i as u32 + 1), "record {i}");
        // Absent: the same hash with its last byte changed, and one in the empty middle.
        let mut absent = *h;
        absent[19] ^= 0x01;
        if hashes.binary_search(&absent).is_err() {
            let absent = Hash::from_bytes(HashKind::Sha1, &absent).unwrap();
            assert_eq!(index.lookup(&absent), None);
        }
    }
    let mut middle = hashes[0];
    middle[2] = 0xE7;
    assert_eq!(
        index.lookup(&Hash::from_bytes(HashKind::Sha1, &middle).unwrap()),
        None
    );
}

#[test]
fn info_escapes_control_characters_in_the_label() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.idx");
    let label = "import of x\u{1b}[2J\u{1b}[31mred\r\nrecords:          0\u{7}";
    let hash = [0x5Au8; 20];
    let bytes = build_in_memory(
        hibp_mirror::HashKind::Sha1,
        [(&hash[..], 1u32)],
        label,
        1_700_000_000,
    );
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .arg("info")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        !stdout.chars().any(|c| c.is_control() && c != '\n'),
        "{stdout:?}"
    );
    // The label's fake "records:" line stays on the source line.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("records:")).count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains(r"import of x\u{1b}[2J\u{1b}[31mred\r\nrecords:          0\u{7}"),
        "{stdout}"
    );
}

#[test]
fn a_version_1_index_is_refused_with_a_reimport_message() {
    let (_, mut bytes) = corpus();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let message = open_error(bytes);
    assert!(
        message.contains("index format version 1, this build reads version 2")
            && message.contains("re-run `hibp-mirror import`"),
        "{message}"
    );
}

/// The canonical form of docs/FORMAT.md, computed here independently of `format::TagHasher`.
fn reference_tag(kind_code: u8, records: &[(Vec<u8>, u32)]) -> u64 {
    let mut canonical = vec![kind_code];
    for (hash, count) in records {
        canonical.extend_from_slice(hash);
        canonical.extend_from_slice(&count.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&canonical)
}

#[test]
fn prefix_tags_follow_the_documented_canonical_form_and_only_the_data() {
    let prefix = hibp_mirror::Prefix::new(0x5BAA6).unwrap();
    let hash = |last: u8| {
        let mut h = vec![
            0x5B, 0xAA, 0x61, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
        ];
        h[5] = last.wrapping_mul(7);
        h
    };
    // One count inline, one in the overflow table: the tag sees exact counts either way.
    let records = vec![(hash(1), 3u32), (hash(2), 9_545_824), (hash(3), 4094)];
    let build = |records: &[(Vec<u8>, u32)], label: &str, time: u64| {
        Index::open(build_in_memory(
            hibp_mirror::HashKind::Sha1,
            records.iter().map(|(h, c)| (h.as_slice(), *c)),
            label,
            time,
        ))
        .unwrap()
    };
    let a = build(&records, "a", 1);
    assert_eq!(a.prefix_tag(prefix), reference_tag(1, &records));
    assert_eq!(a.verify(), Ok(()));
    // Another build of the same data (other label and time): same tags everywhere.
    let again = build(&records, "b", 2);
    for p in [prefix, hibp_mirror::Prefix::new(0).unwrap()] {
        assert_eq!(a.prefix_tag(p), again.prefix_tag(p));
    }
    assert_eq!(
        a.prefix_tag(hibp_mirror::Prefix::new(0).unwrap()),
        reference_tag(1, &[])
    );
    // One count raised by one: the tag changes; other prefixes do not.
    let mut raised = records.clone();
    raised[1].1 += 1;
    let b = build(&raised, "a", 1);
    assert_ne!(a.prefix_tag(prefix), b.prefix_tag(prefix));
    assert_eq!(b.prefix_tag(prefix), reference_tag(1, &raised));
    let next = hibp_mirror::Prefix::new(0x5BAA7).unwrap();
    assert_eq!(a.prefix_tag(next), b.prefix_tag(next));
    // One record removed: changes too.
    let removed = build(&records[..2], "a", 1);
    assert_ne!(a.prefix_tag(prefix), removed.prefix_tag(prefix));
}

#[test]
fn a_wrong_prefix_tag_is_caught_by_verify_even_with_a_matching_checksum() {
    let (_, original) = corpus();
    let clean = Index::open(original.clone()).unwrap();
    let first = |empty: bool| {
        (0x12345..1u32 << 20)
            .map(|p| hibp_mirror::Prefix::new(p).unwrap())
            .find(|&p| clean.range(p).is_empty() == empty)
            .expect("the corpus has empty and populated prefixes")
    };
    let (empty, populated) = (first(true), first(false));
    // A populated prefix's tag, and an empty one's (checked against the empty tag, not hashed).
    for wrong in [populated, empty] {
        let mut bytes = original.clone();
        let at = TAGS_OFFSET + wrong.index() * format::TAG_LEN;
        bytes[at] ^= 0x01;
        let err = verify_resealed(bytes);
        assert!(
            matches!(err, VerifyError::Tag { prefix, .. } if prefix == wrong),
            "{wrong}: {err:?}"
        );
        assert!(err.to_string().contains("re-run `hibp-mirror import`"));
    }
}

/// With the overflow directory built, every count (inline and escaped, several directory blocks
/// of the latter) reads back exactly as without it.
#[test]
fn overflow_directory_gives_the_same_counts() {
    // ~2 M entries, ~0.1% of them above the inline maximum: several directory blocks.
    let synth = Synth::new(20, 11, 1, 2);
    let index = Index::open(hibp_mirror::IndexBytes::from(built(&synth))).unwrap();
    let escaped = index.header().overflow_count as usize;
    assert!(
        escaped > 3 * hibp_mirror::index::OVERFLOW_BLOCK,
        "only {escaped} escaped counts"
    );
    index.index_overflow();
    assert_matches(&index, &synth);
}
