//! Audit throughput on one core, against a baseline measured in the same run: the same hashes
//! looked up in a plain in-memory `HashMap` of the same corpus.
//!
//! `cargo bench --bench audit` prints `audit: N hashes/s per core` and the ratio to the baseline,
//! then runs the criterion benchmarks. `cargo bench --bench audit -- --test` (CI) runs everything
//! once on a small corpus. `HIBP_BENCH_STEP` (default 512: every 512th prefix populated with
//! ~2,000 hashes, like the real corpus's density per prefix) sets the corpus size.

#[path = "../tools/synth.rs"]
mod synth;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use hibp_mirror::audit::{self, Indexes};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::writer::build_in_memory;
use hibp_mirror::{Hash, HashKind, Index, IndexBytes};
use indicatif::ProgressBar;
use synth::{SplitMix64, Synth};

/// Hashes per populated prefix, as in the real corpus.
const PER_PREFIX: u32 = 2_000;

/// Input lines per audit run (full mode).
const QUERIES: usize = 1_000_000;

struct Fixture {
    /// The index under test.
    index: Index<IndexBytes>,
    /// The same corpus as a HashMap (the baseline).
    map: HashMap<Hash, u32>,
    /// The audit input: `userN:HASH` lines, half present in the corpus, half absent.
    input: Vec<(String, Vec<u8>)>,
    /// The parsed query hashes (for the lookup-only comparisons).
    queries: Vec<Hash>,
}

fn fixture(step: u32, queries: usize) -> Fixture {
    let synth = Synth::new(20, 42, step, PER_PREFIX);
    let mut pairs: Vec<(Hash, u32)> = synth
        .entries()
        .map(|(h, c)| (Hash::from_bytes(HashKind::Sha1, &h[..20]).unwrap(), c))
        .collect();
    pairs.sort_unstable();
    let index = Index::open(IndexBytes::Owned(build_in_memory(
        HashKind::Sha1,
        pairs.iter().map(|(h, c)| (h.as_bytes(), *c)),
        "bench",
        0,
    )))
    .unwrap();
    let mut rng = SplitMix64::new(7);
    let mut queries_out = Vec::with_capacity(queries);
    let mut text = Vec::with_capacity(queries * 52);
    for i in 0..queries {
        let hash = if i % 2 == 0 {
            pairs[rng.below(pairs.len() as u64) as usize].0
        } else {
            // A random hash in a populated prefix: same search depth, (almost surely) absent.
            let mut bytes = [0u8; 20];
            rng.fill(&mut bytes);
            let base = pairs[rng.below(pairs.len() as u64) as usize].0;
            bytes[..2].copy_from_slice(&base.as_bytes()[..2]);
            bytes[2] = base.as_bytes()[2] & 0xF0 | bytes[2] & 0x0F;
            Hash::from_bytes(HashKind::Sha1, &bytes).unwrap()
        };
        queries_out.push(hash);
        text.extend_from_slice(format!("user{i}:{hash}\n").as_bytes());
    }
    let map = pairs.into_iter().collect();
    Fixture {
        index,
        map,
        input: vec![("bench.txt".into(), text)],
        queries: queries_out,
    }
}

fn one_core() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

fn run_audit(f: &Fixture) -> usize {
    let indexes = Indexes {
        sha1: Some(&f.index),
        ntlm: None,
    };
    let report = audit::audit(
        &f.input,
        indexes,
        Thresholds::DEFAULT,
        &ProgressBar::hidden(),
    );
    report.accounts.len()
}

fn lookups(f: &Fixture) -> u64 {
    f.queries
        .iter()
        .map(|h| u64::from(f.index.lookup(h).unwrap_or(0)))
        .sum()
}

fn map_lookups(f: &Fixture) -> u64 {
    f.queries
        .iter()
        .map(|h| u64::from(f.map.get(h).copied().unwrap_or(0)))
        .sum()
}

/// Best of `rounds` timings of `work`, in hashes per second.
fn rate(rounds: usize, n: usize, mut work: impl FnMut() -> u64) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        black_box(work());
        best = best.min(start.elapsed().as_secs_f64());
    }
    n as f64 / best
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test");
    let step: u32 = std::env::var("HIBP_BENCH_STEP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 16_384 } else { 512 });
    let queries = if quick { 20_000 } else { QUERIES };
    let f = fixture(step, queries);
    let rounds = if quick { 1 } else { 5 };
    let pool = one_core();
    // Warm the index and the map before timing.
    black_box(lookups(&f));
    black_box(map_lookups(&f));
    let (audit_rate, lookup_rate, map_rate) = pool.install(|| {
        (
            rate(rounds, queries, || run_audit(&f) as u64),
            rate(rounds, queries, || lookups(&f)),
            rate(rounds, queries, || map_lookups(&f)),
        )
    });
    println!(
        "corpus: {} hashes in {} prefixes; {} queries, half present",
        f.index.len(),
        f.index.prefixes_present(),
        queries
    );
    println!(
        "audit (parse + lookup + report), 1 core: {:.2} M hashes/s",
        audit_rate / 1e6
    );
    println!(
        "index lookup only, 1 core:              {:.2} M hashes/s",
        lookup_rate / 1e6
    );
    println!(
        "baseline HashMap lookup, 1 core:        {:.2} M hashes/s",
        map_rate / 1e6
    );
    println!(
        "ratio: audit / HashMap = {:.2}, index lookup / HashMap = {:.2}",
        audit_rate / map_rate,
        lookup_rate / map_rate
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(queries as u64));
    group.sample_size(10);
    group.bench_function("audit_1_core", |b| {
        b.iter(|| pool.install(|| run_audit(&f)))
    });
    group.bench_function("audit_all_cores", |b| b.iter(|| run_audit(&f)));
    group.bench_function("index_lookup", |b| b.iter(|| lookups(&f)));
    group.bench_function("hashmap_baseline", |b| b.iter(|| map_lookups(&f)));
    group.finish();
    c.final_summary();
}
