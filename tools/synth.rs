//! Deterministic synthetic Pwned Passwords corpora, shared by `hibp-gen`, tests and benchmarks
//! (included with `#[path]`, so it is not part of the library).
//!
//! Every prefix's entries are a pure function of `(seed, kind, prefix)`, so a test can ask for the
//! ground truth of any prefix without holding the whole corpus in memory.
#![allow(dead_code)] // each includer uses a different part

use std::io::{self, Write};

/// Longest hash in bytes.
pub const MAX_LEN: usize = 20;

/// Number of 5-hex prefixes.
pub const PREFIXES: u32 = 1 << 20;

/// A generated `(hash bytes, count)` pair; NTLM hashes use the first 16 bytes.
pub type SynthEntry = ([u8; MAX_LEN], u32);

/// A deterministic corpus description.
#[derive(Debug, Clone)]
pub struct Synth {
    /// Hash length in bytes: 20 (SHA-1) or 16 (NTLM).
    pub hash_len: usize,
    /// Seed; equal seeds give equal corpora.
    pub seed: u64,
    /// Populate every `step`-th prefix (1 = all), so a dense subset spreads over the key space.
    pub step: u32,
    /// Mean number of hashes in a populated prefix (each gets 90%..110% of it).
    pub per_prefix: u32,
    /// Also include the all-zero and all-F hashes (prefixes 00000 and FFFFF).
    pub edges: bool,
}

impl Synth {
    /// A corpus of `hash_len`-byte hashes with about `per_prefix` entries in every `step`-th prefix.
    pub fn new(hash_len: usize, seed: u64, step: u32, per_prefix: u32) -> Synth {
        assert!(hash_len == 20 || hash_len == 16, "hash_len must be 20 or 16");
        Synth {
            hash_len,
            seed,
            step: step.max(1),
            per_prefix,
            edges: true,
        }
    }

    /// Whether `prefix` is one of the populated prefixes.
    pub fn populated(&self, prefix: u32) -> bool {
        prefix % self.step == 0
    }

    /// The sorted, distinct entries of `prefix`.
    pub fn prefix_entries(&self, prefix: u32) -> Vec<SynthEntry> {
        let mut out = Vec::new();
        if self.populated(prefix) && self.per_prefix > 0 {
            let mut rng = SplitMix64::new(
                self.seed ^ (u64::from(prefix) << 20) ^ (self.hash_len as u64) << 60,
            );
            let spread = self.per_prefix / 10;
            let n = self.per_prefix - spread + rng.below(u64::from(2 * spread + 1)) as u32;
            out.reserve(n as usize + 1);
            for _ in 0..n {
                let mut hash = [0u8; MAX_LEN];
                rng.fill(&mut hash[..self.hash_len]);
                set_prefix(&mut hash, prefix);
                out.push((hash, heavy_tailed_count(&mut rng)));
            }
        }
        if self.edges && prefix == 0 {
            out.push(([0u8; MAX_LEN], 4_294_967_295));
        }
        if self.edges && prefix == PREFIXES - 1 {
            let mut hash = [0u8; MAX_LEN];
            hash[..self.hash_len].fill(0xFF);
            out.push((hash, 1));
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// Every entry of the corpus in hash order.
    pub fn entries(&self) -> impl Iterator<Item = SynthEntry> + '_ {
        (0..PREFIXES).flat_map(move |p| self.prefix_entries(p))
    }

    /// Upper-case hex of a generated hash.
    pub fn hex(&self, hash: &[u8; MAX_LEN]) -> String {
        hash[..self.hash_len]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// Writes the corpus as a dump (`HASH:COUNT` lines), like the official downloader's
    /// single-file output. `crlf` picks the line ending; `final_newline` whether the last line
    /// has one.
    pub fn write_dump(&self, out: &mut impl Write, crlf: bool, final_newline: bool) -> io::Result<()> {
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut first = true;
        for (hash, count) in self.entries() {
            if !first {
                out.write_all(eol)?;
            }
            first = false;
            write!(out, "{}:{}", self.hex(&hash), count)?;
        }
        if final_newline && !first {
            out.write_all(eol)?;
        }
        Ok(())
    }

    /// The upstream `/range` body of `prefix`: upper-case suffixes, CRLF between lines, none after
    /// the last.
    pub fn range_body(&self, prefix: u32) -> String {
        self.prefix_entries(prefix)
            .iter()
            .map(|(hash, count)| format!("{}:{}", &self.hex(hash)[5..], count))
            .collect::<Vec<_>>()
            .join("\r\n")
    }
}

/// Counts shaped like the real corpus: most between 1 and 10, a long tail into the millions.
fn heavy_tailed_count(rng: &mut SplitMix64) -> u32 {
    // Pareto with shape 0.8: P(count >= k) ~ k^-0.8, so ~0.1% exceed 4,094.
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    let x = (1.0 - u).powf(-1.0 / 0.8);
    x.min(u32::MAX as f64) as u32
}

fn set_prefix(hash: &mut [u8; MAX_LEN], prefix: u32) {
    hash[0] = (prefix >> 12) as u8;
    hash[1] = (prefix >> 4) as u8;
    hash[2] = (hash[2] & 0x0F) | ((prefix & 0xF) as u8) << 4;
}

/// SplitMix64: tiny, fast and stable across versions (the corpus must never change under tests).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
