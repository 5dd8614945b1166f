//! A fast full-size corpus generator for `hibp-gen corpus` (included with `#[path]`).
//!
//! `synth.rs` builds every prefix by generating, sorting and formatting entries one `write!` at a
//! time (~17 MB/s): fine for tests, hours for the 2.1 B-record corpus. This one writes each
//! prefix's hashes already sorted (the 64 bits after the prefix are the normalised cumulative sum
//! of exponential gaps, which is how sorted uniform samples are distributed; the remaining bits
//! are random), formats them with SIMD hex into a large buffer and hands the kernel big writes.
//! The output is a pure function of `(records, kind length, seed)`.

use std::io::{self, Write};

use super::synth::SplitMix64;

/// Number of 5-hex prefixes.
const PREFIXES: u64 = 1 << 20;

/// Bytes buffered before each `write` (a pipe to `import -` takes it in a few syscalls).
const WRITE_BUFFER: usize = 4 << 20;

/// Longest line: 40 hex, ':', 10 digits, '\n'.
const MAX_LINE: usize = 40 + 1 + 10 + 1;

/// Writes `records` distinct `HASH:COUNT` lines (LF, upper case, ordered by hash) of
/// `hash_len`-byte hashes, spread evenly over all 2^20 prefixes, with counts shaped like the real
/// corpus (Pareto, P(count >= c) ~ c^-0.8). Returns the number of bytes written.
pub fn write_corpus(
    out: &mut impl Write,
    records: u64,
    hash_len: usize,
    seed: u64,
) -> io::Result<u64> {
    assert!(
        hash_len == 20 || hash_len == 16,
        "hash_len must be 20 or 16"
    );
    let tiers = count_tiers();
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BUFFER + MAX_LINE * 4096);
    let mut gaps: Vec<f64> = Vec::new();
    let mut written = 0u64;
    for prefix in 0..PREFIXES {
        // Prefix sizes that add up to exactly `records`.
        let start = (u128::from(records) * u128::from(prefix) / u128::from(PREFIXES)) as u64;
        let end = (u128::from(records) * u128::from(prefix + 1) / u128::from(PREFIXES)) as u64;
        let n = (end - start) as usize;
        if n == 0 {
            continue;
        }
        let mut rng = SplitMix64::new(seed ^ prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // n + 1 exponential gaps; the first n partial sums over the total are n sorted uniforms.
        gaps.clear();
        let mut total = 0.0f64;
        for _ in 0..=n {
            let u = ((rng.next() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
            total += -u.ln();
            gaps.push(total);
        }
        let scale = 18_446_744_073_709_551_615.0 / total;
        let mut previous: Option<u64> = None;
        for &sum in &gaps[..n] {
            let mut v = (sum * scale) as u64;
            if let Some(p) = previous {
                // Keep the keys distinct (f64 rounding could tie two very close ones).
                v = v.max(p + 1);
            }
            previous = Some(v);
            let low = rng.next();
            let hi: u128 = u128::from(prefix) << 108 | u128::from(v) << 44 | u128::from(low >> 20);
            let mut hash = [0u8; 20];
            hash[..16].copy_from_slice(&hi.to_be_bytes());
            hash[16..].copy_from_slice(&(rng.next() as u32).to_be_bytes());
            let at = buf.len();
            buf.resize(at + 2 * hash_len, 0);
            const_hex::encode_to_slice_upper(&hash[..hash_len], &mut buf[at..])
                .expect("buffer sized for the hash");
            buf.push(b':');
            let count = heavy_tailed(&mut rng, &tiers);
            buf.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
            buf.push(b'\n');
        }
        if buf.len() >= WRITE_BUFFER {
            out.write_all(&buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    written += buf.len() as u64;
    out.flush()?;
    Ok(written)
}

/// `tiers[k]` = round(2^(1.25 k)), capped at `u32::MAX`: P(count >= tiers[k]) = 2^-k.
fn count_tiers() -> [u64; 66] {
    let mut tiers = [0u64; 66];
    for (k, t) in tiers.iter_mut().enumerate() {
        *t = (2f64.powf(1.25 * k as f64)).min(u32::MAX as f64) as u64;
    }
    tiers
}

/// A Pareto(0.8) count from integer operations only: the number of leading zero bits picks a
/// tier (probability 2^-k), the other bits a value inside it.
#[inline]
fn heavy_tailed(rng: &mut SplitMix64, tiers: &[u64; 66]) -> u32 {
    let r = rng.next();
    let k = r.leading_zeros() as usize;
    let (lo, hi) = (tiers[k], tiers[k + 1]);
    let within = ((u128::from(r as u32) * u128::from(hi - lo)) >> 32) as u64;
    (lo + within).clamp(1, u64::from(u32::MAX)) as u32
}
