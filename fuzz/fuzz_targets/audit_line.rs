//! The audit line parser on arbitrary lines.
#![no_main]

use hibp_mirror::audit::parse_line;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(credential)) = parse_line(data) {
        if let Some(user) = credential.user {
            assert!(!user.is_empty());
        }
    }
});
