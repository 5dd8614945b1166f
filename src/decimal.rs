//! Counts written as decimal text, in place: the inner loop of `/range` bodies and `diff` dumps.

/// Two decimal digits of every number below 100.
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes `n` in decimal at the start of `out` (room for 10 digits) and returns its length.
#[inline(always)]
pub(crate) fn write_u32(out: &mut [u8], mut n: u32) -> usize {
    if n < 10 {
        // Most counts in the real corpus are single digits.
        out[0] = b'0' + n as u8;
        return 1;
    }
    let len = match n {
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        10_000..=99_999 => 5,
        100_000..=999_999 => 6,
        1_000_000..=9_999_999 => 7,
        10_000_000..=99_999_999 => 8,
        100_000_000..=999_999_999 => 9,
        _ => 10,
    };
    let out = &mut out[..len];
    let mut end = len;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        out[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if n >= 10 {
        let pair = n as usize * 2;
        out[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        out[end - 1] = b'0' + n as u8;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::write_u32;

    #[test]
    fn every_length_matches_display() {
        let mut n = 1u64;
        let mut cases = vec![0u32, u32::MAX, 4094, 4095];
        while n <= u64::from(u32::MAX) {
            for m in [n - 1, n, n + 1, n * 5 - 1] {
                if let Ok(m) = u32::try_from(m) {
                    cases.push(m);
                }
            }
            n *= 10;
        }
        for n in cases {
            let mut out = [0u8; 10];
            let len = write_u32(&mut out, n);
            assert_eq!(&out[..len], n.to_string().as_bytes());
        }
    }
}
