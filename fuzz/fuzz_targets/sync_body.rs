//! The sync body validator on arbitrary bodies: whatever it accepts yields ascending entries of
//! the prefix, as many as it reports.
#![no_main]

use hibp_mirror::sync::body::parse_body;
use hibp_mirror::{HashKind, Prefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let kind = if first & 1 == 0 { HashKind::Sha1 } else { HashKind::Ntlm };
    let prefix = Prefix::new(u32::from(first >> 1) * 0x2000).expect("below 2^20");
    let mut seen: Vec<Vec<u8>> = Vec::new();
    if let Ok(n) = parse_body(kind, prefix, body, |hash, count| {
        assert!(count >= 1);
        seen.push(hash.to_vec());
    }) {
        assert_eq!(n, seen.len());
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "not strictly ascending");
        let head = prefix.to_hex();
        for hash in &seen {
            assert_eq!(hash.len(), kind.byte_len());
            let hex: String = hash.iter().map(|b| format!("{b:02X}")).collect();
            assert!(hex.as_bytes().starts_with(&head), "entry outside the prefix");
        }
    }
});
