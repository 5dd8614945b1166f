//! Import round trips over generated dumps, bad input, and atomic replacement.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hibp_mirror::import::{self, ImportError, ImportOptions, Input};
use hibp_mirror::{Hash, HashKind, Prefix};
use support::{assert_matches, dump_text, Synth};

/// 256 populated prefixes x ~200 hashes: small, plus the all-0 and all-F edge hashes.
fn small(hash_len: usize) -> Synth {
    Synth::new(hash_len, 7, 4096, 200)
}

/// ~205k lines (~9 MB): spans several 4 MiB chunks, so chunk boundaries are exercised.
fn multi_chunk() -> Synth {
    Synth::new(20, 11, 1024, 200)
}

fn run_import(inputs: Vec<Input>, output: &Path) -> Result<import::ImportSummary, ImportError> {
    import::import(&ImportOptions::new(inputs, output))
}

fn import_text(dir: &Path, text: &[u8]) -> Result<import::ImportSummary, ImportError> {
    let dump = dir.join("dump.txt");
    fs::write(&dump, text).unwrap();
    run_import(vec![Input::File(dump)], &dir.join("out.idx"))
}

#[test]
fn lf_dump_round_trips_with_edges_and_empty_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let summary = import_text(dir.path(), &dump_text(&synth, false, true)).unwrap();
    assert!(summary.streamed);
    let index = support::open_index(dir.path().join("out.idx"));
    assert_matches(&index, &synth);
    let zero = Hash::parse_hex(&[b'0'; 40]).unwrap();
    let ones = Hash::parse_hex(&[b'F'; 40]).unwrap();
    assert_eq!(index.lookup(&zero), Some(4_294_967_295));
    assert_eq!(index.lookup(&ones), Some(1));
    assert!(index.range(Prefix::new(1).unwrap()).is_empty());
    assert_eq!(summary.prefixes_present, 257);
    assert!(summary.bytes_per_record() > 19.0);
}

#[test]
fn crlf_dump_without_final_newline_and_with_boms_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let text = dump_text(&synth, true, false);
    // A BOM at the start of the file and at the start of every 1000th line.
    let mut with_boms = b"\xEF\xBB\xBF".to_vec();
    for (i, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        if i % 1000 == 999 {
            with_boms.extend_from_slice(b"\xEF\xBB\xBF");
        }
        with_boms.extend_from_slice(line);
    }
    import_text(dir.path(), &with_boms).unwrap();
    assert_matches(&support::open_index(dir.path().join("out.idx")), &synth);
}

#[test]
fn lowercase_multi_chunk_dump_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let synth = multi_chunk();
    let text = dump_text(&synth, false, true).to_ascii_lowercase();
    assert!(text.len() > 8 << 20, "needs several chunks");
    import_text(dir.path(), &text).unwrap();
    assert_matches(&support::open_index(dir.path().join("out.idx")), &synth);
}

#[test]
fn ntlm_dump_round_trips_and_kind_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(16);
    let summary = import_text(dir.path(), &dump_text(&synth, true, true)).unwrap();
    assert_eq!(summary.header.kind, HashKind::Ntlm);
    assert_matches(&support::open_index(dir.path().join("out.idx")), &synth);
}

#[test]
fn gzip_with_concatenated_members_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let text = dump_text(&synth, false, true);
    let half = text[..text.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let path = dir.path().join("dump.txt.gz");
    let mut file = fs::File::create(&path).unwrap();
    for part in [&text[..half], &text[half..]] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).unwrap();
        file.write_all(&gz.finish().unwrap()).unwrap();
    }
    drop(file);
    let out = dir.path().join("out.idx");
    run_import(vec![Input::from_arg(&path)], &out).unwrap();
    assert_matches(&support::open_index(&out), &synth);
}

#[test]
fn stdin_import_through_the_binary_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let out = dir.path().join("out.idx");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["import", "-", "--quiet", "--output"])
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&dump_text(&synth, false, true))
        .unwrap();
    let result = child.wait_with_output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let summary = String::from_utf8_lossy(&result.stderr);
    assert!(summary.contains("bytes per record"), "{summary}");
    assert!(summary.contains("prefixes are empty"), "{summary}");
    assert_matches(&support::open_index(&out), &synth);
}

#[test]
fn range_directory_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let ranges = dir.path().join("ranges");
    fs::create_dir(&ranges).unwrap();
    for p in 0..support::synth::PREFIXES {
        let entries = synth.prefix_entries(p);
        if !entries.is_empty() {
            fs::write(ranges.join(format!("{p:05X}.txt")), synth.range_body(p)).unwrap();
        }
    }
    fs::write(ranges.join("notes.md"), "not a range file").unwrap();
    let out = dir.path().join("out.idx");
    let summary = run_import(vec![Input::from_arg(&ranges)], &out).unwrap();
    assert_eq!(summary.skipped_files.len(), 1);
    assert_matches(&support::open_index(&out), &synth);
}

#[test]
fn unsorted_input_is_sorted_in_bounded_runs() {
    let dir = tempfile::tempdir().unwrap();
    let synth = multi_chunk();
    let text = dump_text(&synth, false, true);
    // Reverse the line order: the first out-of-order record is in the first chunk.
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.reverse();
    let path = dir.path().join("unsorted.txt");
    fs::write(&path, lines.join(&b"\n"[..])).unwrap();
    let out = dir.path().join("out.idx");
    let mut options = ImportOptions::new(vec![Input::File(path)], &out);
    options.sort_memory = 1 << 20; // forces many spilled runs
    let summary = import::import(&options).unwrap();
    assert!(!summary.streamed);
    assert!(summary.spilled_runs > 5, "{} runs", summary.spilled_runs);
    assert_matches(&support::open_index(&out), &synth);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 2, "only the input and the index remain");
}

#[test]
fn several_inputs_out_of_order_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let synth = multi_chunk();
    let text = dump_text(&synth, false, true);
    let cut = text[..text.len() / 2]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let (first, second) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
    fs::write(&first, &text[cut..]).unwrap();
    fs::write(&second, &text[..cut]).unwrap();
    let out = dir.path().join("out.idx");
    let summary = run_import(vec![Input::File(first), Input::File(second)], &out).unwrap();
    assert!(!summary.streamed);
    assert_matches(&support::open_index(&out), &synth);
}

/// Imports `text` with line `line` (1-based) replaced by `bad`; returns the error message.
fn error_for_bad_line(text: &[u8], line: usize, bad: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines[line - 1] = bad.as_bytes().to_vec();
    let err = import_text(dir.path(), &lines.join(&b"\n"[..])).unwrap_err();
    assert!(!dir.path().join("out.idx").exists(), "no partial output");
    err.to_string()
}

#[test]
fn each_kind_of_bad_line_names_file_and_line() {
    let synth = multi_chunk();
    let text = dump_text(&synth, false, true);
    let total = text.iter().filter(|&&b| b == b'\n').count();
    // A line well past the first 4 MiB chunk, so line numbers must carry across chunks.
    let line = total * 3 / 4;
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let previous = std::str::from_utf8(lines[line - 2]).unwrap().to_owned();
    let hash_of = |l: &str| l.split(':').next().unwrap().to_owned();
    let cases = [
        ("no separator".to_owned(), "no ':'"),
        (
            "8846F7EAEE8FB117AD06BDD830B7586C:12".to_owned(),
            "NTLM hash",
        ),
        (format!("{}:12", &"Z".repeat(40)), "non-hex"),
        (format!("{}:12", &"A".repeat(39)), "39 characters"),
        (
            format!(
                "{}:",
                hash_of(std::str::from_utf8(lines[line - 1]).unwrap())
            ),
            "count",
        ),
        (
            format!(
                "{}:4294967296",
                hash_of(std::str::from_utf8(lines[line - 1]).unwrap())
            ),
            "count",
        ),
        (
            format!(
                "{}:0",
                hash_of(std::str::from_utf8(lines[line - 1]).unwrap())
            ),
            "count",
        ),
        (
            format!(
                "{}:-3",
                hash_of(std::str::from_utf8(lines[line - 1]).unwrap())
            ),
            "count",
        ),
        (previous.clone(), "duplicate"),
    ];
    for (bad, needle) in cases {
        let message = error_for_bad_line(&text, line, &bad);
        assert!(
            message.contains(&format!("dump.txt:{line}: expected")),
            "{bad}: {message}"
        );
        assert!(message.contains(needle), "{bad}: {message}");
    }
}

#[test]
fn duplicates_in_unsorted_input_name_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let a = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3";
    let b = "0000000000000000000000000000000000000001:1";
    let c = "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:9";
    let err = import_text(dir.path(), format!("{a}\n{b}\n{c}\n").as_bytes()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("dump.txt:3: expected a new hash, found a duplicate"),
        "{message}"
    );
    assert!(message.contains("dump.txt:1"), "{message}");
}

fn index_bytes(dir: &Path) -> (PathBuf, Vec<u8>) {
    let synth = small(20);
    import_text(dir, &dump_text(&synth, false, true)).unwrap();
    let path = dir.join("out.idx");
    let bytes = fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn failed_import_leaves_the_previous_index_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = index_bytes(dir.path());
    let bad = dir.path().join("bad.txt");
    let mut text = dump_text(&Synth::new(20, 99, 1024, 200), false, true);
    text.extend_from_slice(b"garbage at the end\n");
    fs::write(&bad, text).unwrap();
    let err = run_import(vec![Input::File(bad)], &path).unwrap_err();
    assert!(matches!(err, ImportError::Line { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), before);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no temporary files left behind: {names:?}");
}

#[test]
fn killed_import_leaves_the_previous_index_intact() {
    let dir = tempfile::tempdir().unwrap();
    let (path, before) = index_bytes(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["import", "-", "--quiet", "--output"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Half a dump, then a kill -9 while the importer waits for more.
    let text = dump_text(&Synth::new(20, 5, 1024, 200), false, true);
    stdin.write_all(&text[..text.len() / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(fs::read(&path).unwrap(), before);
    support::open_index(&path).verify().unwrap();
}

#[test]
fn empty_input_needs_a_kind_and_then_builds_an_empty_index() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        import_text(dir.path(), b""),
        Err(ImportError::Empty)
    ));
    let empty = dir.path().join("empty.txt");
    fs::write(&empty, b"").unwrap();
    let out = dir.path().join("empty.idx");
    let mut options = ImportOptions::new(vec![Input::File(empty)], &out);
    options.kind = Some(HashKind::Ntlm);
    import::import(&options).unwrap();
    let index = support::open_index(&out);
    assert!(index.is_empty());
    index.verify().unwrap();
}

#[test]
fn check_command_answers_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = index_bytes(dir.path());
    let synth = small(20);
    let (hash, count) = synth.prefix_entries(0)[0];
    let present = synth.hex(&hash).to_ascii_lowercase();
    let input = format!("{}\n{present}\n", "A".repeat(40));
    let output = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["check", "--hashes", "--index"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success());
    let expected = format!("{}:0\n{}:{count}\n", "A".repeat(40), synth.hex(&hash));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn check_command_hashes_passwords_without_echoing_them() {
    let output = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"password\nnot-a-breached-pw-8c1f\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824");
    assert!(lines[1].ends_with(":0"));
    let all = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(!all.contains("password"), "{all}");
    assert!(!all.contains("not-a-breached-pw"));
}

/// Runs `hibp-mirror import INPUT --output OUT` under `umask`, through `sh`.
fn import_with_umask(umask: &str, input: &Path, out: &Path) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask}; exec \"$0\" import \"$1\" --quiet --output \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_hibp-mirror"))
        .arg(input)
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn leftovers_of_killed_runs_are_cleaned_but_a_live_runs_are_not_and_the_umask_is_honoured() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let input = dir.path().join("dump.txt");
    fs::write(&input, dump_text(&synth, false, true)).unwrap();
    let out = dir.path().join("out.idx");
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let plant = |name: &str| {
        let path = dir.path().join(name);
        let file = fs::File::create(&path).unwrap();
        file.set_modified(an_hour_ago).unwrap();
        (path, file)
    };
    // What `kill -9` leaves: files nobody holds a lock on (the kernel drops a dead process's
    // locks).
    let (stale_tmp, _) = plant(".hibp-mirror-tmp-Ab12Cd");
    let (stale_run, _) = plant(".hibp-mirror-run-Ef34Gh");
    // Another run's, still alive: it holds the lock.
    let (live, live_file) = plant(".hibp-mirror-run-Live00");
    rustix::fs::flock(
        &live_file,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .unwrap();

    let result = import_with_umask("022", &input, &out);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        !stale_tmp.exists() && !stale_run.exists(),
        "stale leftovers were kept"
    );
    assert!(live.exists(), "a live run's file was removed");
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_matches(&support::open_index(&out), &synth);

    let result = import_with_umask("027", &input, &out);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(live.exists());
    // Nothing of the runs themselves is left behind.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".hibp-mirror-") && n != ".hibp-mirror-run-Live00")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(live_file);
}

#[test]
fn a_line_without_end_is_refused_at_once_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let synth = small(20);
    let mut text = dump_text(&synth, false, true);
    let good_lines = text.iter().filter(|&&b| b == b'\n').count();
    // 24 MB with no line break after the good lines (the quadratic case), plain and
    // gzipped, and a long line that does end.
    text.extend(std::iter::repeat_n(b'A', 24 << 20));
    let plain = dir.path().join("long.txt");
    fs::write(&plain, &text).unwrap();
    let gz = dir.path().join("long.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();
    let ended = dir.path().join("ended.txt");
    fs::write(&ended, [&b"x".repeat(5000)[..], b":1\n"].concat()).unwrap();
    for (path, line) in [(&plain, good_lines + 1), (&gz, good_lines + 1), (&ended, 1)] {
        let out = dir.path().join("out.idx");
        let started = std::time::Instant::now();
        let result = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
            .args(["import", "--quiet", "--output"])
            .arg(&out)
            .arg(path)
            .output()
            .unwrap();
        eprintln!("{}: refused in {:?}", path.display(), started.elapsed());
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success());
        let want = format!("{}:{line}: ", path.display());
        assert!(stderr.contains(&want), "{want}: {stderr}");
        assert!(stderr.contains("longer than 4096 bytes"), "{stderr}");
        assert!(!out.exists());
    }
}

/// The importer hashes whole prefixes on its parser threads and the block edges in the writer;
/// the in-memory builder hashes every record in one stream. Both must give the same file after
/// the header (offset table, prefix tags, records, overflow), for sorted (streamed) and for
/// unsorted (externally sorted) input.
#[test]
fn imported_prefix_tags_equal_a_single_stream_build() {
    let synth = multi_chunk();
    let expected = support::index_bytes(&synth, 1);
    let dir = tempfile::tempdir().unwrap();
    let summary = import_text(dir.path(), &dump_text(&synth, false, true)).unwrap();
    assert!(summary.streamed);
    let imported = fs::read(dir.path().join("out.idx")).unwrap();
    assert!(
        imported[hibp_mirror::format::HEADER_LEN..] == expected[hibp_mirror::format::HEADER_LEN..]
    );
    support::open_index(dir.path().join("out.idx"))
        .verify()
        .unwrap();

    // Unsorted: the prefixes in reverse order.
    let text = dump_text(&synth, false, true);
    let mut lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.reverse();
    let reversed: Vec<u8> = lines.join(&b'\n').into_iter().chain(*b"\n").collect();
    let summary = import_text(dir.path(), &reversed).unwrap();
    assert!(!summary.streamed);
    let imported = fs::read(dir.path().join("out.idx")).unwrap();
    assert!(
        imported[hibp_mirror::format::HEADER_LEN..] == expected[hibp_mirror::format::HEADER_LEN..]
    );
}
