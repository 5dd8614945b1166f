//! `export`: top-N and min-count selections against a ground-truth sort, dump and index outputs,
//! atomic replacement, and binary fuse filters checked against an independent Python reader
//! (`tools/filter_reader.py`, written from `docs/FILTER.md` alone) and against corruption.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hibp_mirror::export::filter::{self, FilterError};
use hibp_mirror::export::{self, ExportError, ExportOptions, Order, Selection, Target, Width};
use hibp_mirror::{Hash, HashKind, Index, IndexBytes};
use indicatif::ProgressBar;
use support::{SplitMix64, Synth};

/// About 86,000 SHA-1 hashes spread over the whole key space, with heavy-tailed counts (many
/// ties at small counts, which exercises the tie-break).
fn corpus() -> Synth {
    Synth::new(20, 12, 61, 5)
}

/// The corpus as `(hash, count)`, in hash order.
fn truth(synth: &Synth) -> Vec<(Hash, u32)> {
    let kind = support::kind_of(synth);
    synth
        .entries()
        .map(|(h, c)| (Hash::from_bytes(kind, &h[..kind.byte_len()]).unwrap(), c))
        .collect()
}

fn source(dir: &Path, synth: &Synth) -> Index<IndexBytes> {
    let path = support::write_index(dir, "source.idx", synth, 1_700_000_000);
    support::open_index(path)
}

fn run(
    index: &Index<IndexBytes>,
    selection: Selection,
    target: Target,
    output: &Path,
) -> Result<export::ExportSummary, ExportError> {
    export::export(
        index,
        &ExportOptions {
            selection,
            target,
            output: output.to_owned(),
            fsync: false,
            progress: ProgressBar::hidden(),
        },
    )
}

fn dump_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn line(hash: &Hash, count: u32) -> String {
    format!("{hash}:{count}")
}

/// Ground truth: sort everything by count descending, then hash ascending, and take N.
fn expected_top(all: &[(Hash, u32)], n: usize, min_count: u32) -> Vec<(Hash, u32)> {
    let mut sorted: Vec<_> = all.iter().copied().filter(|e| e.1 >= min_count).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted.truncate(n);
    sorted
}

#[test]
fn top_n_matches_a_ground_truth_sort_in_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    let out = dir.path().join("top.txt");
    // N cut inside runs of equal counts, N = everything and more, and a threshold on top.
    for (n, min_count) in [
        (1, 0),
        (10, 0),
        (1_000, 0),
        (20_000, 0),
        (500, 3),
        (200_000, 2),
        (0, 0),
    ] {
        let expected = expected_top(&all, n, min_count);
        let selection = Selection {
            top: Some(n as u64),
            min_count,
        };
        let summary = run(&index, selection, Target::Dump(Order::Count), &out).unwrap();
        assert_eq!(summary.selected, expected.len() as u64);
        let want: Vec<String> = expected.iter().map(|(h, c)| line(h, *c)).collect();
        assert_eq!(dump_lines(&out), want, "top {n} min {min_count} by count");

        run(&index, selection, Target::Dump(Order::Hash), &out).unwrap();
        let mut by_hash = expected.clone();
        by_hash.sort_by_key(|e| e.0);
        let want: Vec<String> = by_hash.iter().map(|(h, c)| line(h, *c)).collect();
        assert_eq!(dump_lines(&out), want, "top {n} min {min_count} by hash");
    }
    // The cut at N = 1,000 falls inside a run of equal counts, so the tie-break mattered.
    let sorted = expected_top(&all, usize::MAX, 0);
    assert_eq!(
        sorted[999].1, sorted[1000].1,
        "the test corpus should tie at the cut"
    );
}

#[test]
fn min_count_dump_keeps_exactly_the_hashes_at_or_above_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    let out = dir.path().join("min.txt");
    for min_count in [0, 1, 2, 10, 4_095, 1_000_000] {
        let selection = Selection {
            top: None,
            min_count,
        };
        let summary = run(&index, selection, Target::Dump(Order::Hash), &out).unwrap();
        let want: Vec<String> = all
            .iter()
            .filter(|e| e.1 >= min_count)
            .map(|(h, c)| line(h, *c))
            .collect();
        assert_eq!(summary.selected, want.len() as u64);
        assert_eq!(dump_lines(&out), want, "min-count {min_count}");
    }
}

#[test]
fn index_output_opens_verifies_and_answers_like_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    let out = dir.path().join("top.idx");
    for selection in [
        Selection {
            top: Some(5_000),
            min_count: 0,
        },
        Selection {
            top: None,
            min_count: 3,
        },
        Selection {
            top: Some(100),
            min_count: 50,
        },
    ] {
        let expected = match selection.top {
            Some(n) => expected_top(&all, n as usize, selection.min_count),
            None => all
                .iter()
                .copied()
                .filter(|e| e.1 >= selection.min_count)
                .collect(),
        };
        run(&index, selection, Target::Index, &out).unwrap();
        let exported = support::open_index(&out);
        exported.verify().unwrap();
        assert_eq!(exported.kind(), HashKind::Sha1);
        assert_eq!(exported.len(), expected.len() as u64);
        assert!(exported.header().label.contains("export"));
        for (hash, count) in &expected {
            assert_eq!(exported.lookup(hash), Some(*count));
        }
        let kept: std::collections::HashSet<Hash> = expected.iter().map(|e| e.0).collect();
        for (hash, _) in all.iter().filter(|e| !kept.contains(&e.0)) {
            assert_eq!(exported.lookup(hash), None, "{hash} was not selected");
        }
    }
}

#[test]
fn ordering_by_count_without_top_is_refused_and_the_target_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let index = source(dir.path(), &synth);
    let out = dir.path().join("keep.txt");
    fs::write(&out, b"previous contents\n").unwrap();
    let err = run(
        &index,
        Selection::default(),
        Target::Dump(Order::Count),
        &out,
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::Options(_)), "{err}");
    assert!(err.to_string().contains("--top"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), b"previous contents\n");
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary files"
    );
}

#[test]
fn a_failed_rename_leaves_the_target_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let index = source(dir.path(), &synth);
    // A non-empty directory cannot be replaced by a file: everything is written, the rename
    // fails, and the temporary file must go.
    let out = dir.path().join("occupied");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("inside"), b"x").unwrap();
    let err = run(&index, Selection::default(), Target::Index, &out).unwrap_err();
    assert!(matches!(err, ExportError::Write { .. }), "{err}");
    assert!(out.is_dir());
    assert_eq!(fs::read(out.join("inside")).unwrap(), b"x");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only source.idx and the directory: {names:?}"
    );
}

#[test]
fn replacing_an_index_in_place_leaves_readers_of_the_old_one_intact() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    let out = dir.path().join("served.idx");
    run(&index, Selection::default(), Target::Index, &out).unwrap();
    let old = support::open_index(&out);
    run(
        &index,
        Selection {
            top: Some(10),
            min_count: 0,
        },
        Target::Index,
        &out,
    )
    .unwrap();
    // The old mapping still sees the complete old file; the path now holds the new one.
    assert_eq!(old.len(), all.len() as u64);
    old.verify().unwrap();
    assert_eq!(support::open_index(&out).len(), 10);
}

/// Builds a filter of the corpus with `width` (and forced `shard_bits`, if given).
fn filter_file(
    dir: &Path,
    index: &Index<IndexBytes>,
    selection: Selection,
    width: Width,
    shard_bits: Option<u8>,
) -> PathBuf {
    let out = dir.join(format!(
        "{width}-{shard_bits:?}-{}.flt",
        selection.describe().replace(' ', "_")
    ));
    let summary = run(index, selection, Target::Filter { width, shard_bits }, &out).unwrap();
    assert!(summary.filter.is_some());
    out
}

fn open_filter(path: &Path) -> filter::Filter<IndexBytes> {
    // SAFETY: test filters live in the test's own directory and are never modified in place.
    unsafe { filter::Filter::open_path(path) }.unwrap()
}

/// 100,000 absent-looking SHA-1 hashes, generated deterministically.
fn random_hashes(seed: u64, n: usize, kind: HashKind) -> Vec<Hash> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let mut bytes = [0u8; 20];
            rng.fill(&mut bytes[..kind.byte_len()]);
            Hash::from_bytes(kind, &bytes[..kind.byte_len()]).unwrap()
        })
        .collect()
}

/// Runs the Python reader over `hashes`; returns its answers, in order.
fn python_answers(filter: &Path, hashes: &[Hash]) -> Vec<bool> {
    let mut input = String::with_capacity(hashes.len() * 41);
    for h in hashes {
        input.push_str(&h.to_hex().to_ascii_lowercase());
        input.push('\n');
    }
    let output = python(filter, &["--verify"], input.as_bytes());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let answers: Vec<bool> = text
        .lines()
        .zip(hashes)
        .map(|(line, hash)| {
            let (h, answer) = line.split_once(' ').unwrap();
            assert_eq!(h, hash.to_hex());
            match answer {
                "probably-breached" => true,
                "not-breached" => false,
                other => panic!("unexpected answer {other:?}"),
            }
        })
        .collect();
    assert_eq!(answers.len(), hashes.len());
    answers
}

fn python(filter: &Path, flags: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/filter_reader.py"))
        .arg(filter)
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run the filter reader test");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

#[test]
fn python_reader_agrees_with_the_rust_reader_on_every_key_and_100k_absent_keys() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    let absent = random_hashes(0xF1F0, 100_000, HashKind::Sha1);
    // Automatic sharding (one shard for this size) and forced 3 and 9 shard bits (512 shards of
    // ~170 keys: every shard layout and xorf's small-size paths).
    for (width, shard_bits, theory) in [
        (Width::Bits8, None, 1.0 / 256.0),
        (Width::Bits16, None, 1.0 / 65536.0),
        (Width::Bits8, Some(3), 1.0 / 256.0),
        (Width::Bits16, Some(9), 1.0 / 65536.0),
    ] {
        let path = filter_file(dir.path(), &index, Selection::default(), width, shard_bits);
        let filter = open_filter(&path);
        filter.verify().unwrap();
        let header = filter.header();
        assert_eq!(header.key_count, all.len() as u64);
        assert_eq!(header.fp_rate, theory);
        let present: Vec<Hash> = all.iter().map(|e| e.0).collect();
        let rust_present: Vec<bool> = present
            .iter()
            .map(|h| filter.contains(h).unwrap())
            .collect();
        assert!(rust_present.iter().all(|&p| p), "no false negatives");
        assert_eq!(
            python_answers(&path, &present),
            rust_present,
            "{width} {shard_bits:?}: corpus keys"
        );
        let rust_absent: Vec<bool> = absent.iter().map(|h| filter.contains(h).unwrap()).collect();
        assert_eq!(
            python_answers(&path, &absent),
            rust_absent,
            "{width} {shard_bits:?}: absent keys"
        );
        // The false-positive rate on 100,000 random hashes is near the theory (8-bit: ~390
        // expected, so 250..550 is over 7 standard deviations wide; 16-bit: ~1.5 expected).
        let positives = rust_absent.iter().filter(|&&p| p).count();
        match width {
            Width::Bits8 => assert!(
                (250..550).contains(&positives),
                "{positives} false positives"
            ),
            Width::Bits16 => assert!(positives < 12, "{positives} false positives"),
        }
        // Size: xorf allots 1.125 fingerprints per key from ~1 M keys per shard up, ~1.18 at
        // this test's 86,000 (tiny shards carry a fixed overhead, which is why export aims
        // for ~4 M keys per shard).
        if shard_bits.is_none() {
            let bits_per_key = filter.fingerprint_bytes() as f64 * 8.0 / all.len() as f64;
            let bound = 1.2 * f64::from(width.bits());
            assert!(bits_per_key < bound, "{bits_per_key} bits per key");
        }
    }
}

#[test]
fn filters_of_a_selection_hold_exactly_the_selection() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let all = truth(&synth);
    let index = source(dir.path(), &synth);
    for selection in [
        Selection {
            top: Some(3_000),
            min_count: 0,
        },
        Selection {
            top: None,
            min_count: 10,
        },
    ] {
        let path = filter_file(dir.path(), &index, selection, Width::Bits16, Some(2));
        let filter = open_filter(&path);
        let expected = match selection.top {
            Some(n) => expected_top(&all, n as usize, 0),
            None => all.iter().copied().filter(|e| e.1 >= 10).collect(),
        };
        assert_eq!(filter.header().key_count, expected.len() as u64);
        assert_eq!(filter.header().top, selection.top.unwrap_or(0));
        assert_eq!(filter.header().min_count, selection.min_count);
        let kept: std::collections::HashSet<Hash> = expected.iter().map(|e| e.0).collect();
        assert!(expected.iter().all(|(h, _)| filter.contains(h).unwrap()));
        // 16-bit fingerprints: among tens of thousands of unselected hashes, almost none pass.
        let leaked = all
            .iter()
            .filter(|e| !kept.contains(&e.0) && filter.contains(&e.0).unwrap())
            .count();
        assert!(leaked < 10, "{leaked} unselected hashes reported present");
    }
}

#[test]
fn filters_are_reproducible_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let index = source(dir.path(), &synth);
    let a = filter_file(
        dir.path(),
        &index,
        Selection::default(),
        Width::Bits8,
        Some(4),
    );
    let first = fs::read(&a).unwrap();
    let b = filter_file(
        dir.path(),
        &index,
        Selection::default(),
        Width::Bits8,
        Some(4),
    );
    let mut second = fs::read(&b).unwrap();
    // Only the build time may differ (header bytes 40..48, and so the header CRC at 20..24).
    for range in [20..24, 40..48] {
        second[range.clone()].copy_from_slice(&first[range]);
    }
    assert_eq!(first, second);
}

#[test]
fn a_filter_refuses_hashes_of_the_other_kind() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let index = source(dir.path(), &synth);
    let path = filter_file(dir.path(), &index, Selection::default(), Width::Bits8, None);
    let filter = open_filter(&path);
    let nt = HashKind::Ntlm.hash_password("password");
    let err = filter.contains(&nt).unwrap_err();
    assert!(
        matches!(
            err,
            FilterError::KindMismatch {
                filter: HashKind::Sha1,
                query: HashKind::Ntlm
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("holds sha1 hashes"), "{err}");
    // The Python reader refuses it too.
    let output = python(&path, &[], format!("{nt}\n").as_bytes());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sha1 filter"));
}

/// Rewrites the header CRC so that a deliberately changed header field reaches its own check.
fn fix_header_crc(bytes: &mut [u8]) {
    bytes[20..24].fill(0);
    let crc = crc32fast::hash(&bytes[..128]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn every_kind_of_damage_is_refused_by_both_readers() {
    let dir = tempfile::tempdir().unwrap();
    let synth = corpus();
    let index = source(dir.path(), &synth);
    let path = filter_file(
        dir.path(),
        &index,
        Selection::default(),
        Width::Bits16,
        Some(2),
    );
    let good = fs::read(&path).unwrap();
    type Damage = (&'static str, fn(&mut Vec<u8>), fn(&FilterError) -> bool);
    let cases: &[Damage] = &[
        (
            "empty file",
            |b| b.clear(),
            |e| matches!(e, FilterError::TooShort { len: 0 }),
        ),
        (
            "truncated header",
            |b| b.truncate(100),
            |e| matches!(e, FilterError::TooShort { len: 100 }),
        ),
        (
            "truncated body",
            |b| {
                b.pop();
            },
            |e| matches!(e, FilterError::FileLength { .. }),
        ),
        (
            "appended byte",
            |b| b.push(0),
            |e| matches!(e, FilterError::FileLength { .. }),
        ),
        (
            "magic",
            |b| b[0] = b'X',
            |e| matches!(e, FilterError::Magic),
        ),
        (
            "future version",
            |b| b[8] = 2,
            |e| {
                matches!(
                    e,
                    FilterError::Version {
                        expected: 1,
                        got: 2
                    }
                )
            },
        ),
        (
            "header bit flip",
            |b| b[41] ^= 1,
            |e| matches!(e, FilterError::HeaderChecksum),
        ),
        (
            "unknown kind",
            |b| {
                b[16] = 9;
                fix_header_crc(b)
            },
            |e| matches!(e, FilterError::Unsupported(m) if m.contains("kind")),
        ),
        (
            "unknown width",
            |b| {
                b[17] = 32;
                fix_header_crc(b)
            },
            |e| matches!(e, FilterError::Unsupported(m) if m.contains("width")),
        ),
        (
            "unknown key scheme",
            |b| {
                b[19] = 2;
                fix_header_crc(b)
            },
            |e| matches!(e, FilterError::Unsupported(m) if m.contains("key scheme")),
        ),
        (
            "shard bits",
            |b| {
                b[18] = 3;
                fix_header_crc(b)
            },
            |e| matches!(e, FilterError::TableChecksum | FilterError::Inconsistent(_)),
        ),
        (
            "shard table bit flip",
            |b| b[128 + 40 + 20] ^= 1,
            |e| matches!(e, FilterError::TableChecksum),
        ),
        (
            "key count",
            |b| {
                b[24] ^= 1;
                fix_header_crc(b)
            },
            |e| matches!(e, FilterError::Inconsistent(_)),
        ),
    ];
    for (what, damage, expected) in cases {
        let mut bytes = good.clone();
        damage(&mut bytes);
        let bad = dir.path().join("bad.flt");
        fs::write(&bad, &bytes).unwrap();
        let err = match unsafe_open(&bad) {
            Ok(_) => panic!("{what}: opened"),
            Err(e) => e,
        };
        let FilterError::At { source, .. } = &err else {
            panic!("{what}: error without the path: {err}")
        };
        assert!(expected(source), "{what}: wrong error {err}");
        assert!(err.to_string().contains("bad.flt"), "{what}: {err}");
        let py = python(&bad, &[], b"");
        assert_eq!(
            py.status.code(),
            Some(2),
            "{what}: the Python reader accepted it"
        );
        assert!(
            String::from_utf8_lossy(&py.stderr).contains("refused"),
            "{what}"
        );
    }
    // Damaged fingerprints pass the cheap open checks; verify finds them, in both readers.
    let mut bytes = good.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let bad = dir.path().join("bad.flt");
    fs::write(&bad, &bytes).unwrap();
    let filter = open_filter(&bad);
    let err = filter.verify().unwrap_err();
    assert!(
        matches!(err, FilterError::ShardChecksum { shard: 3, .. }),
        "{err}"
    );
    let py = python(&bad, &["--verify"], b"");
    assert_eq!(py.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&py.stderr).contains("shard 3: fingerprint checksum"));
}

fn unsafe_open(path: &Path) -> Result<filter::Filter<IndexBytes>, FilterError> {
    // SAFETY: the test owns the file and does not modify it while the filter is alive.
    unsafe { filter::Filter::open_path(path) }
}

#[test]
fn the_worked_example_of_the_format_page_holds() {
    // docs/FILTER.md: the SHA-1 of "password" has key 0x5BAA61E4C9B93F3F, shard 2 of 8.
    let hash = HashKind::Sha1.hash_password("password");
    let key = filter::key_of(hash.as_bytes());
    assert_eq!(key, 0x5BAA_61E4_C9B9_3F3F);
    assert_eq!(filter::shard_of(key, 3), 2);
}

/// Runs the real binary with `args` and `stdin`; returns (success, stdout, stderr).
fn cli(args: &[&std::ffi::OsStr], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(args)
        .env_remove("HIBP_MIRROR_INDEX")
        .env_remove("HIBP_MIRROR_NTLM_INDEX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

macro_rules! os {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// A SHA-1 and an NTLM index of a few passwords, each with its count.
const PASSWORDS: &[(&str, u32)] = &[("password", 9_000_000), ("letmein", 50), ("rare", 1)];

fn password_indexes(dir: &Path) -> [PathBuf; 2] {
    [HashKind::Sha1, HashKind::Ntlm].map(|kind| {
        let mut entries: Vec<(Hash, u32)> = PASSWORDS
            .iter()
            .map(|&(p, c)| (kind.hash_password(p), c))
            .collect();
        entries.sort();
        let bytes = hibp_mirror::writer::build_in_memory(
            kind,
            entries.iter().map(|(h, c)| (h.as_bytes(), *c)),
            "export test",
            0,
        );
        let path = dir.join(format!("{kind}.idx"));
        fs::write(&path, bytes).unwrap();
        path
    })
}

#[test]
fn cli_exports_lists_and_filters_and_check_answers_in_filter_mode() {
    let dir = tempfile::tempdir().unwrap();
    let [sha1, _] = password_indexes(dir.path());
    let top = dir.path().join("top.txt");
    let (ok, _, err) = cli(
        os!("export", "--top", "2", "--order", "count", "-o", &top, &sha1),
        "",
    );
    assert!(ok, "{err}");
    let h = |p| HashKind::Sha1.hash_password(p);
    assert_eq!(
        fs::read_to_string(&top).unwrap(),
        format!("{}:9000000\n{}:50\n", h("password"), h("letmein"))
    );
    assert!(err.contains("exported 2 sha1 hashes (top 2)"), "{err}");

    // An index export serves `check` unchanged.
    let idx = dir.path().join("min.idx");
    let (ok, _, err) = cli(
        os!(
            "export",
            "--min-count",
            "50",
            "--format",
            "index",
            "-o",
            &idx,
            &sha1
        ),
        "",
    );
    assert!(ok, "{err}");
    let (ok, out, _) = cli(os!("check", "--index", &idx), "password\nrare\n");
    assert!(ok);
    assert_eq!(out, format!("{}:9000000\n{}:0\n", h("password"), h("rare")));

    let flt = dir.path().join("sha1.binfuse8");
    let (ok, _, err) = cli(os!("export", "--filter", "binfuse8", "-o", &flt, &sha1), "");
    assert!(ok, "{err}");
    assert!(err.contains("binfuse8 filter of 3 sha1 hashes"), "{err}");
    let (ok, out, err) = cli(
        os!("check", "--filter", &flt),
        "password\nrare\ncorrect horse battery staple\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("filter mode"), "{err}");
    assert_eq!(
        out,
        format!(
            "{}:probably-breached\n{}:probably-breached\n{}:not-breached\n",
            h("password"),
            h("rare"),
            h("correct horse battery staple")
        )
    );
    // A full NTLM hash against a SHA-1 filter is refused with a reason.
    let nt = HashKind::Ntlm.hash_password("password").to_hex();
    let (ok, _, err) = cli(
        os!("check", "--hashes", "--filter", &flt),
        &format!("{nt}\n"),
    );
    assert!(!ok);
    assert!(
        err.contains("stdin:1") && err.contains("holds sha1 hashes"),
        "{err}"
    );
    // A damaged filter is refused before any answer.
    let mut bytes = fs::read(&flt).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&flt, &bytes).unwrap();
    let (ok, out, err) = cli(os!("check", "--filter", &flt), "password\n");
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.contains("checksum mismatch") && err.contains("re-run export"),
        "{err}"
    );
}

#[test]
fn cli_audit_with_filters_reports_probable_breaches_without_counts() {
    let dir = tempfile::tempdir().unwrap();
    let [sha1, ntlm] = password_indexes(dir.path());
    let mut filters = Vec::new();
    for (index, name) in [(&sha1, "sha1.flt"), (&ntlm, "ntlm.flt")] {
        let path = dir.path().join(name);
        let (ok, _, err) = cli(
            os!("export", "--filter", "binfuse16", "-o", &path, index),
            "",
        );
        assert!(ok, "{err}");
        filters.push(path);
    }
    let nt = |p| HashKind::Ntlm.hash_password(p).to_hex();
    let dump = format!(
        "alice:1001:aad3b435b51404eeaad3b435b51404ee:{}:::\nbob:1002:aad3b435b51404eeaad3b435b51404ee:{}:::\ncarol:{}\n",
        nt("password"),
        nt("a long unbreached passphrase"),
        HashKind::Sha1.hash_password("rare"),
    );
    let input = dir.path().join("dump.txt");
    fs::write(&input, dump).unwrap();
    let (ok, out, err) = cli(
        os!(
            "audit",
            "--filter",
            &filters[0],
            "--filter",
            &filters[1],
            &input
        ),
        "",
    );
    assert!(ok, "{err}");
    assert!(err.contains("filter mode"), "{err}");
    let row = |user: &str| {
        out.lines()
            .find(|l| l.starts_with(user))
            .unwrap()
            .to_owned()
    };
    assert!(row("alice").contains("probably-breached"), "{out}");
    assert!(row("bob").contains("not-breached"), "{out}");
    assert!(row("carol").contains("probably-breached"), "{out}");
    assert!(out.contains("mode: filter"), "{out}");
    assert!(
        out.contains("66.7% of accounts probably use a breached password (2 of 3)"),
        "{out}"
    );
    assert!(
        !out.contains("by severity"),
        "no tiers without counts: {out}"
    );

    let (ok, out, err) = cli(
        os!("audit", "--format", "json", "--filter", &filters[1], &input),
        "",
    );
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["summary"]["mode"], "filter");
    assert_eq!(
        json["summary"]["checked"], 2,
        "only the NTLM filter: carol is unchecked"
    );
    assert_eq!(json["summary"]["unchecked"], 1);
    assert_eq!(json["accounts"][0]["filter_answer"], "probably-breached");
    assert_eq!(json["accounts"][0]["count"], serde_json::Value::Null);
    assert_eq!(json["accounts"][2]["filter_answer"], "unchecked");

    // Two filters of one kind are refused.
    let (ok, _, err) = cli(
        os!(
            "audit",
            "--filter",
            &filters[0],
            "--filter",
            &filters[0],
            &input
        ),
        "",
    );
    assert!(!ok);
    assert!(err.contains("at most one per hash kind"), "{err}");
}

/// `--top` starts its scan at a count bar estimated from every 16th prefix chunk (4,096 prefixes
/// each); here those chunks hold only high counts, so the estimate is far too high, and the
/// export must notice and still give the exact top N (ties included).
#[test]
fn top_n_is_exact_when_the_sampled_chunks_mislead() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = SplitMix64::new(7);
    let mut entries: Vec<([u8; 20], u32)> = Vec::new();
    for chunk in 0..256u32 {
        let (per_chunk, count) = if chunk % 16 == 0 {
            (300, 1000)
        } else {
            (100, 900)
        };
        for _ in 0..per_chunk {
            let prefix = chunk * 4096 + (rng.next() % 4096) as u32;
            let mut hash = [0u8; 20];
            for b in hash.iter_mut() {
                *b = rng.next() as u8;
            }
            hash[0] = (prefix >> 12) as u8;
            hash[1] = (prefix >> 4) as u8;
            hash[2] = (prefix << 4) as u8 | (hash[2] & 0x0F);
            entries.push((hash, count));
        }
    }
    entries.sort();
    entries.dedup_by_key(|e| e.0);
    let bytes = hibp_mirror::writer::build_in_memory(
        HashKind::Sha1,
        entries.iter().map(|(h, c)| (&h[..], *c)),
        "sampling trap",
        1_700_000_000,
    );
    let path = dir.path().join("trap.idx");
    support::replace_file(&path, &bytes);
    let index = support::open_index(&path);
    let all: Vec<(Hash, u32)> = entries
        .iter()
        .map(|(h, c)| (Hash::from_bytes(HashKind::Sha1, h).unwrap(), *c))
        .collect();
    let high = all.iter().filter(|e| e.1 == 1000).count();
    assert!(high >= 4096, "enough sampled hashes for an estimate");
    let out = dir.path().join("top.txt");
    // More than the high counts: the answer needs hashes the estimated bar would skip.
    for n in [high + 1, 10_000] {
        let selection = Selection {
            top: Some(n as u64),
            min_count: 0,
        };
        run(&index, selection, Target::Dump(Order::Count), &out).unwrap();
        let want: Vec<String> = expected_top(&all, n, 0)
            .iter()
            .map(|(h, c)| line(h, *c))
            .collect();
        assert_eq!(want.len(), n);
        let got = dump_lines(&out);
        assert_eq!(got.len(), n, "top {n}: line count");
        let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first_difference, None, "top {n}: first line that differs");
    }
}

/// `IndexBytes::release` drops the pages a scan has read from the process's resident set
/// (what keeps an export's peak RSS flat) and loses no data: the bytes read back the same. For
/// owned bytes it does nothing.
#[test]
fn release_drops_mapped_pages_from_the_resident_set_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.bin");
    let len = 8 << 20;
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
    fs::write(&path, &data).unwrap();
    let file = fs::File::open(&path).unwrap();
    // SAFETY: the file lives in this test's temporary directory and nothing modifies it.
    let mapped = unsafe { IndexBytes::map(&file) }.unwrap();
    let base = mapped.as_ref().as_ptr() as usize;
    let resident_kib = || -> u64 {
        // The mapping's line in /proc/self/smaps, then its `Rss:` line.
        let smaps = fs::read_to_string("/proc/self/smaps").unwrap();
        let mut lines = smaps.lines();
        while let Some(l) = lines.next() {
            let range = l.split(' ').next().unwrap();
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            if (start..end).contains(&base) {
                for l in lines.by_ref() {
                    if let Some(kib) = l.strip_prefix("Rss:") {
                        return kib.trim().trim_end_matches(" kB").trim().parse().unwrap();
                    }
                }
            }
        }
        panic!("mapping not found in /proc/self/smaps");
    };
    let sum = |b: &[u8]| b.iter().map(|&x| u64::from(x)).sum::<u64>();
    assert_eq!(sum(mapped.as_ref()), sum(&data));
    let read = resident_kib();
    assert!(read >= 7 << 10, "the read pages are resident: {read} KiB");
    // Not page aligned: only the whole pages inside the range go.
    mapped.release(100..len - 100).unwrap();
    let released = resident_kib();
    assert!(
        released <= 8,
        "only the two edge pages stay: {released} KiB"
    );
    assert_eq!(mapped.as_ref(), &data[..], "the same bytes fault back in");
    assert!(resident_kib() >= 7 << 10);
    // Out-of-bounds and empty ranges are no-ops, not errors.
    mapped.release(len..len + 1).unwrap();
    mapped.release(5..5).unwrap();
    let owned = IndexBytes::from(data.clone());
    owned.release(0..len).unwrap();
    assert_eq!(owned.as_ref(), &data[..]);
}
