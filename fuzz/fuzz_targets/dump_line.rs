//! The dump line parser (as the importer parses each chunk) on arbitrary text, both kinds.
#![no_main]

use hibp_mirror::import::parse_dump_text;
use hibp_mirror::HashKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [HashKind::Sha1, HashKind::Ntlm] {
        match parse_dump_text(data, kind, "fuzz") {
            Ok(block) => assert!(block.len() <= data.len() / 2 + 1),
            Err(e) => {
                // Errors name the file and line, and never quote the input.
                let message = e.to_string();
                assert!(message.contains("fuzz:"), "{message}");
            }
        }
    }
});
