//! Index open on arbitrary bytes; when it opens, `range`, `lookup` and `verify` must not panic,
//! the `/range` renderer must agree with the range's iterator, and the header's build time must
//! be a date the server can format.
//!
//! Every valid index is at least 8 MiB (the prefix table), far beyond what a fuzzer generates, so
//! the first input byte picks a mode:
//! - even: the rest of the input is the whole file;
//! - odd: the bundled sample index (SHA-1 or NTLM by bit 1) is patched by the rest of the input,
//!   read as 6-byte patches `(region, offset u32 LE, value)`: region 0 the header, 1 the prefix
//!   table, 2 the records and overflow table, 3 a new file length. Bit 2 re-seals the header
//!   checksum after patching, so header fields get past the CRC check and reach validation.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use hibp_mirror::format::{HEADER_LEN, RECORDS_OFFSET, TABLE_LEN, TABLE_OFFSET};
use hibp_mirror::server::render::render_range;
use hibp_mirror::{Hash, HashKind, Index, Prefix};
use libfuzzer_sys::fuzz_target;

/// Offset of the header's own CRC (docs/FORMAT.md).
const HEADER_CRC_AT: usize = 20;

fn base(kind: HashKind) -> &'static [u8] {
    static SHA1: OnceLock<Vec<u8>> = OnceLock::new();
    static NTLM: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match kind {
        HashKind::Sha1 => &SHA1,
        HashKind::Ntlm => &NTLM,
    };
    cell.get_or_init(|| {
        let text = match kind {
            HashKind::Sha1 => hibp_mirror::sample::SAMPLE_SHA1,
            HashKind::Ntlm => hibp_mirror::sample::SAMPLE_NTLM,
        };
        let entries: Vec<(Hash, u32)> = text
            .lines()
            .filter_map(|line| {
                let (hash, count) = line.split_once(':')?;
                Some((Hash::parse_hex_kind(kind, hash.as_bytes()).ok()?, count.parse().ok()?))
            })
            .collect();
        hibp_mirror::writer::build_in_memory(
            kind,
            entries.iter().map(|(h, c)| (h.as_bytes(), *c)),
            "fuzz base",
            hibp_mirror::sample::SAMPLE_BUILD_TIME,
        )
    })
}

fn patched(mode: u8, patches: &[u8]) -> Vec<u8> {
    let kind = if mode & 2 == 0 { HashKind::Sha1 } else { HashKind::Ntlm };
    let mut file = base(kind).to_vec();
    for patch in patches.chunks_exact(6) {
        let offset = u32::from_le_bytes([patch[1], patch[2], patch[3], patch[4]]) as usize;
        let value = patch[5];
        let at = match patch[0] % 4 {
            0 => offset % HEADER_LEN,
            1 => TABLE_OFFSET + offset % TABLE_LEN,
            2 if file.len() > RECORDS_OFFSET => {
                RECORDS_OFFSET + offset % (file.len() - RECORDS_OFFSET)
            }
            2 => continue,
            _ => {
                file.resize(offset % (file.len() + 64), value);
                continue;
            }
        };
        if let Some(byte) = file.get_mut(at) {
            *byte = value;
        }
    }
    if mode & 4 != 0 && file.len() >= HEADER_LEN {
        file[HEADER_CRC_AT..HEADER_CRC_AT + 4].fill(0);
        let crc = crc32fast::hash(&file[..HEADER_LEN]);
        file[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }
    file
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        patched(mode, rest)
    };
    let Ok(index) = Index::open(file) else {
        return;
    };
    let header = index.header();
    // The server turns the build time into Last-Modified: it must be a formattable date.
    let built = UNIX_EPOCH
        .checked_add(Duration::from_secs(header.build_time))
        .expect("open accepted a build time past SystemTime");
    let _ = httpdate::fmt_http_date(built);
    let kind = index.kind();
    let _ = index.verify();
    let _ = index.prefixes_present();
    let mut prefixes = vec![0u32, 0xFFFFF];
    prefixes.extend(rest.chunks(3).take(8).map(|c| {
        c.iter().fold(0u32, |v, &b| (v << 8) | u32::from(b)) & 0xFFFFF
    }));
    for value in prefixes {
        let prefix = Prefix::new(value).expect("masked to 20 bits");
        let range = index.range(prefix);
        assert_eq!(range.len(), range.iter().count());
        // The `/range` renderer reads records and escaped counts itself: it must agree with the
        // range's iterator, also on a corrupt overflow table.
        let naive: Vec<String> = range
            .iter()
            .map(|e| format!("{}:{}", e.suffix_hex(), e.count()))
            .collect();
        assert_eq!(render_range(range), naive.join("\r\n").into_bytes());
        let shown = range.len().min(4);
        let mut out = vec![0u8; range.hex_stride() * shown];
        range.hex_batch(0, shown, &mut out);
        for entry in range.iter().take(16) {
            let hash = entry.hash(prefix, kind);
            let _ = entry.suffix_hex();
            let _ = index.lookup(&hash);
        }
    }
    if rest.len() >= kind.byte_len() {
        let hex: String = rest[..kind.byte_len()].iter().map(|b| format!("{b:02X}")).collect();
        if let Ok(hash) = Hash::parse_hex(hex.as_bytes()) {
            let _ = index.lookup(&hash);
        }
    }
});
