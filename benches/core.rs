//! Core benchmarks: dump-line parsing and warm lookups, each against a baseline measured in the
//! same run (line counting with `memchr`, like `wc -l`; a binary search over a sorted `Vec`).
//!
//! `cargo bench --bench core` prints criterion's figures and then one ratio line per pair.
//! `cargo bench --bench core -- --test` runs everything once (CI keeps it compiling and working).

#[path = "../tools/synth.rs"]
mod synth;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use hibp_mirror::import::parse_dump_text;
use hibp_mirror::writer::build_in_memory;
use hibp_mirror::{Hash, HashKind, Index};
use synth::{SplitMix64, Synth};

/// ~100k lines of realistic dump text (2,000 hashes per populated prefix).
fn dump() -> Vec<u8> {
    let mut text = Vec::new();
    Synth::new(20, 1, 1 << 14, 2000)
        .write_dump(&mut text, true, true)
        .unwrap();
    text
}

fn count_lines(text: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', text).count()
}

fn index_and_probes() -> (Index<Vec<u8>>, Vec<[u8; 20]>, Vec<Hash>) {
    let synth = Synth::new(20, 2, 1 << 10, 2000);
    let entries: Vec<_> = synth.entries().collect();
    let bytes = build_in_memory(
        HashKind::Sha1,
        entries.iter().map(|(h, c)| (&h[..], *c)),
        "bench",
        0,
    );
    let sorted: Vec<[u8; 20]> = entries.iter().map(|(h, _)| *h).collect();
    let mut rng = SplitMix64::new(3);
    let probes = (0..4096)
        .map(|_| {
            let (hash, _) = entries[rng.below(entries.len() as u64) as usize];
            Hash::from_bytes(HashKind::Sha1, &hash).unwrap()
        })
        .collect();
    (Index::open(bytes).unwrap(), sorted, probes)
}

fn parse(c: &mut Criterion) {
    let text = dump();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("baseline_memchr_line_count", |b| {
        b.iter(|| count_lines(black_box(&text)))
    });
    group.bench_function("parse_dump_text", |b| {
        b.iter(|| parse_dump_text(black_box(&text), HashKind::Sha1, "bench").unwrap())
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let (index, sorted, probes) = index_and_probes();
    let mut group = c.benchmark_group("lookup");
    group.throughput(Throughput::Elements(probes.len() as u64));
    group.bench_function("baseline_vec_binary_search", |b| {
        b.iter(|| {
            probes
                .iter()
                .filter(|h| sorted.binary_search_by(|e| e[..].cmp(h.as_bytes())).is_ok())
                .count()
        })
    });
    group.bench_function("index_lookup", |b| {
        b.iter(|| probes.iter().filter_map(|h| index.lookup(h)).count())
    });
    group.finish();
}

/// Best time of `rounds` runs of `f`.
fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// Prints each figure as a ratio to its baseline, measured back to back in this process.
fn ratios(quick: bool) {
    let rounds = if quick { 1 } else { 15 };
    let text = dump();
    let lines = count_lines(&text) as f64;
    let base = best_of(rounds, || {
        black_box(count_lines(black_box(&text)));
    });
    let ours = best_of(rounds, || {
        black_box(parse_dump_text(black_box(&text), HashKind::Sha1, "bench").unwrap());
    });
    println!(
        "ratio parse/line-count: {:.2}x  (parse {:.1} M lines/s, {:.2} GB/s per core; line count {:.2} GB/s)",
        ours.as_secs_f64() / base.as_secs_f64(),
        lines / ours.as_secs_f64() / 1e6,
        text.len() as f64 / ours.as_secs_f64() / 1e9,
        text.len() as f64 / base.as_secs_f64() / 1e9,
    );
    let (index, sorted, probes) = index_and_probes();
    let base = best_of(rounds, || {
        black_box(
            probes
                .iter()
                .filter(|h| sorted.binary_search_by(|e| e[..].cmp(h.as_bytes())).is_ok())
                .count(),
        );
    });
    let ours = best_of(rounds, || {
        black_box(probes.iter().filter_map(|h| index.lookup(h)).count());
    });
    println!(
        "ratio lookup/vec-binary-search: {:.2}x  (lookup {:.1} M/s per core)",
        ours.as_secs_f64() / base.as_secs_f64(),
        probes.len() as f64 / ours.as_secs_f64() / 1e6,
    );
}

criterion_group!(benches, parse, lookup);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    ratios(std::env::args().any(|a| a == "--test"));
}
