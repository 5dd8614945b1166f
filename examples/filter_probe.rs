//! Measures a filter file: bits per key, the false-positive rate on random absent hashes, and
//! single-core lookups per second on the mapped, warm file. Optionally checks that every hash
//! of the source index is reported present (no false negatives). Used by
//! `tools/bench-export.sh`; prints one `key=value` line.
//!
//! ```text
//! cargo run --release --example filter_probe -- FILTER [--absent N] [--index INDEX]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use hibp_mirror::export::filter::{key_of, Filter};
use hibp_mirror::{Index, Prefix};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut filter_path = None;
    let mut absent: usize = 10_000_000;
    let mut index_path: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--absent" => absent = args.next().and_then(|v| v.parse().ok()).unwrap_or(absent),
            "--index" => index_path = args.next().map(PathBuf::from),
            _ => filter_path = Some(PathBuf::from(arg)),
        }
    }
    let Some(filter_path) = filter_path else {
        eprintln!("usage: filter_probe FILTER [--absent N] [--index INDEX]");
        return ExitCode::from(2);
    };
    // SAFETY: benchmark files are written by `export` (rename only) and not touched meanwhile.
    let filter = match unsafe { Filter::open_path(&filter_path) } {
        Ok(f) => f,
        Err(e) => {
            eprintln!("filter_probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    if let Err(e) = filter.verify() {
        eprintln!("filter_probe: {e}");
        return ExitCode::FAILURE;
    }
    let verify_s = started.elapsed().as_secs_f64();
    let header = filter.header().clone();
    let keys = header.key_count.max(1) as f64;
    let file_len = std::fs::metadata(&filter_path).map_or(0, |m| m.len());

    // Random 64-bit keys are what random SHA-1/NTLM hashes give; with at most a few hundred
    // million keys in the filter, the chance that one of them is really present is < 2^-30.
    let mut state = 0x5EED_u64;
    let probes: Vec<u64> = (0..absent).map(|_| splitmix64(&mut state)).collect();
    let warm = probes.iter().filter(|&&k| filter.contains_key(k)).count();
    let started = Instant::now();
    let positives = probes.iter().filter(|&&k| filter.contains_key(k)).count();
    let lookup_s = started.elapsed().as_secs_f64();
    assert_eq!(warm, positives);

    let mut missing = None;
    if let Some(path) = index_path {
        // SAFETY: as above.
        let index = unsafe { Index::open_path(&path) }.expect("index opens");
        let mut misses = 0u64;
        for prefix in Prefix::all() {
            for entry in index.range(prefix) {
                let hash = entry.hash(prefix, index.kind());
                if !filter.contains_key(key_of(hash.as_bytes())) {
                    misses += 1;
                }
            }
        }
        missing = Some(misses);
    }

    let fp = positives as f64 / absent.max(1) as f64;
    println!(
        "kind={} width={} shards={} keys={} file_bytes={file_len} bits_per_key={:.3} \
         fingerprint_bits_per_key={:.3} absent={absent} false_positives={positives} \
         fp_rate={fp:.6} theory={:.6} fp_vs_theory={:.3} lookups_per_s={:.0} verify_s={verify_s:.3}{}",
        header.kind,
        header.width,
        header.shard_count(),
        header.key_count,
        file_len as f64 * 8.0 / keys,
        filter.fingerprint_bytes() as f64 * 8.0 / keys,
        header.fp_rate,
        fp / header.fp_rate,
        absent as f64 / lookup_s.max(1e-9),
        missing.map_or(String::new(), |m| format!(" false_negatives={m}")),
    );
    if missing.unwrap_or(0) > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
