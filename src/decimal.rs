//! Counts written as decimal text, in place: the inner loop of `/range` bodies and `diff` dumps.

/// Counts below this have a precomputed tail in [`LineTails`]: every count a record holds inline.
const TABLED_COUNTS: usize = 4096;

/// `:COUNT` and a line end for every count below [`TABLED_COUNTS`], each packed little-endian
/// into the low bytes of a `u64` with its length in the top byte. Writing one is a single
/// 8-byte store and the cursor moves by the length: no branch on the number of digits, which
/// the mix of counts in a range would mispredict.
pub(crate) struct LineTails {
    packed: [u64; TABLED_COUNTS],
    end: &'static [u8],
}

/// `:COUNT\r\n`, the `/range` line tail.
pub(crate) static CRLF_TAILS: LineTails = LineTails::new(b"\r\n");

/// `:COUNT\n`, the dump line tail.
pub(crate) static LF_TAILS: LineTails = LineTails::new(b"\n");

impl LineTails {
    const fn new(end: &'static [u8]) -> LineTails {
        assert!(end.len() <= 2, "a tail and its length fit one u64");
        let mut packed = [0u64; TABLED_COUNTS];
        let mut n = 0;
        while n < TABLED_COUNTS {
            let mut digits = [0u8; 4];
            let mut len = 0;
            let mut rest = n;
            loop {
                digits[len] = b'0' + (rest % 10) as u8;
                len += 1;
                rest /= 10;
                if rest == 0 {
                    break;
                }
            }
            let mut tail = [0u8; 8];
            tail[0] = b':';
            let mut i = 0;
            while i < len {
                tail[1 + i] = digits[len - 1 - i];
                i += 1;
            }
            let mut e = 0;
            while e < end.len() {
                tail[1 + len + e] = end[e];
                e += 1;
            }
            tail[7] = (1 + len + end.len()) as u8;
            packed[n] = u64::from_le_bytes(tail);
            n += 1;
        }
        LineTails { packed, end }
    }

    /// Writes `:COUNT` and the line end at the start of `out` and returns their length. `out`
    /// must hold 8 bytes and the longest tail (`:`, ten digits and the line end); those past the
    /// tail are overwritten with junk.
    #[inline(always)]
    pub(crate) fn write(&self, out: &mut [u8], count: u32) -> usize {
        match self.packed.get(count as usize) {
            Some(&tail) => {
                out[..8].copy_from_slice(&tail.to_le_bytes());
                (tail >> 56) as usize
            }
            None => self.write_long(out, count),
        }
    }

    /// [`LineTails::write`] for counts past the table (about 0.1% of the corpus).
    #[cold]
    #[inline(never)]
    fn write_long(&self, out: &mut [u8], count: u32) -> usize {
        out[0] = b':';
        let digits = write_u32(&mut out[1..], count);
        out[1 + digits..1 + digits + self.end.len()].copy_from_slice(self.end);
        1 + digits + self.end.len()
    }
}

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
    use super::{write_u32, CRLF_TAILS, LF_TAILS, TABLED_COUNTS};

    #[test]
    fn every_tabled_tail_and_the_long_ones_match_display() {
        let long = [TABLED_COUNTS as u32, 4095 * 16, 99_999, u32::MAX];
        for count in (0..TABLED_COUNTS as u32).chain(long) {
            for (tails, end) in [(&CRLF_TAILS, "\r\n"), (&LF_TAILS, "\n")] {
                let mut out = [b'#'; 16];
                let len = tails.write(&mut out, count);
                assert_eq!(
                    std::str::from_utf8(&out[..len]).unwrap(),
                    format!(":{count}{end}")
                );
            }
        }
    }

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
