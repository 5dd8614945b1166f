//! `/range` body rendering (bodies/s at ~2,000 entries), padding generation and gzip framing,
//! each beside a naive baseline measured in the same run, so the ratio is meaningful on a noisy
//! machine. `cargo bench --bench render` (or `-- --test` for a quick check that it still runs).

#[path = "../tools/synth.rs"]
#[allow(clippy::unnecessary_sort_by)] // shared generator code, linted where it lives
mod synth;

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use hibp_mirror::index::Range;
use hibp_mirror::server::render::{append_padding, gzip_compressed, gzip_stored, render_range};
use hibp_mirror::{writer, HashKind, Index, Prefix};
use rand::Rng;

/// A realistic prefix: ~2,000 entries, heavy-tailed counts, like the 2026 corpus.
const PREFIX: u32 = 0x10000;

fn sha1_index() -> Index<Vec<u8>> {
    let synth = synth::Synth::new(20, 1, 0x10000, 2000);
    let entries: Vec<_> = synth.entries().collect();
    let bytes = writer::build_in_memory(
        HashKind::Sha1,
        entries.iter().map(|(h, c)| (&h[..], *c)),
        "bench",
        0,
    );
    Index::open(bytes).unwrap()
}

/// The obvious renderer: a `String` per line, joined.
fn render_naive(range: Range<'_>) -> Vec<u8> {
    range
        .iter()
        .map(|e| format!("{}:{}", e.suffix_hex(), e.count()))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

/// The obvious padding: `format!` per row from the thread RNG.
fn padding_naive(out: &mut Vec<u8>, rng: &mut impl Rng) {
    let rows = rng.gen_range(10..=209);
    for _ in 0..rows {
        let hex: String = (0..35)
            .map(|_| char::from(b"0123456789ABCDEF"[rng.gen_range(0..16)]))
            .collect();
        out.extend_from_slice(format!("\r\n{hex}:0").as_bytes());
    }
}

fn benches(c: &mut Criterion) {
    let index = sha1_index();
    let range = index.range(Prefix::new(PREFIX).unwrap());
    let body = render_range(range);
    assert_eq!(body, render_naive(range), "both renderers agree");
    println!(
        "prefix {PREFIX:05X}: {} entries, {} byte body",
        range.len(),
        body.len()
    );

    let mut group = c.benchmark_group("range_body");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render", |b| b.iter(|| render_range(black_box(range))));
    group.bench_function("naive_format", |b| {
        b.iter(|| render_naive(black_box(range)))
    });
    group.finish();

    let mut group = c.benchmark_group("padding");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append_padding", |b| {
        let mut rng = rand::thread_rng();
        let mut out = Vec::with_capacity(16 * 1024);
        b.iter(|| {
            out.clear();
            append_padding(&mut out, HashKind::Sha1, &mut rng)
        })
    });
    group.bench_function("naive_format", |b| {
        let mut rng = rand::thread_rng();
        let mut out = Vec::with_capacity(16 * 1024);
        b.iter(|| {
            out.clear();
            padding_naive(&mut out, &mut rng)
        })
    });
    group.finish();

    let shared = Bytes::from(body.clone());
    let mut group = c.benchmark_group("gzip_body");
    group.throughput(Throughput::Elements(1));
    group.bench_function("stored_level0", |b| {
        b.iter(|| gzip_stored(black_box(shared.clone())))
    });
    group.bench_function("deflate_level1", |b| {
        b.iter(|| gzip_compressed(black_box(&body), 1))
    });
    group.finish();
}

/// Bodies per second of `f`, measured for about `time`.
fn rate(time: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// One table of ratios against the baselines, measured back to back.
fn summary() {
    let index = sha1_index();
    let range = index.range(Prefix::new(PREFIX).unwrap());
    let body = render_range(range);
    let shared = Bytes::from(body.clone());
    let t = Duration::from_millis(700);
    let fast = rate(t, || drop(black_box(render_range(black_box(range)))));
    let naive = rate(t, || drop(black_box(render_naive(black_box(range)))));
    let lines = range.len() as f64;
    println!("\nsummary (one core, {} entries per body):", range.len());
    println!(
        "  render        {fast:>10.0} bodies/s  ({:.1} ns/line)  {:.1}x the naive format! renderer ({naive:.0} bodies/s)",
        1e9 / fast / lines,
        fast / naive
    );
    let mut rng = rand::thread_rng();
    let mut out = Vec::with_capacity(16 * 1024);
    let pad = rate(t, || {
        out.clear();
        append_padding(&mut out, HashKind::Sha1, &mut rng);
    });
    let pad_naive = rate(t, || {
        out.clear();
        padding_naive(&mut out, &mut rng);
    });
    println!(
        "  padding       {pad:>10.0} paddings/s  {:.1}x naive ({pad_naive:.0}/s)",
        pad / pad_naive
    );
    let stored = rate(t, || drop(black_box(gzip_stored(shared.clone()))));
    let level1 = rate(t, || drop(black_box(gzip_compressed(&body, 1))));
    println!(
        "  gzip stored   {stored:>10.0} bodies/s  vs deflate level 1 {level1:.0} bodies/s ({:.0}x)",
        stored / level1
    );
    println!(
        "  render + stored gzip: {:.0} bodies/s",
        1.0 / (1.0 / fast + 1.0 / stored)
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick && std::env::var_os("RENDER_BENCH_NO_SUMMARY").is_none() {
        summary();
    }
}
