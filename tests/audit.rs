//! `hibp-mirror audit` end to end: the real binary over index files built for the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hibp_mirror::writer::build_in_memory;
use hibp_mirror::{Hash, HashKind};
use serde_json::Value;

/// `(password, count)` of the test corpus: one per severity tier with the default thresholds,
/// plus `absent`, which is in neither index.
const CORPUS: &[(&str, u32)] = &[
    ("low", 5),
    ("medium", 50),
    ("high", 5_000),
    ("critical", 500_000),
];

fn sha1(password: &str) -> String {
    HashKind::Sha1.hash_password(password).to_hex()
}

fn nt(password: &str) -> String {
    HashKind::Ntlm.hash_password(password).to_hex()
}

/// Writes a SHA-1 and an NTLM index of [`CORPUS`] into `dir`.
fn indexes(dir: &Path) -> (PathBuf, PathBuf) {
    let mut paths = Vec::new();
    for kind in [HashKind::Sha1, HashKind::Ntlm] {
        let mut entries: Vec<(Hash, u32)> = CORPUS
            .iter()
            .map(|&(p, c)| (kind.hash_password(p), c))
            .collect();
        entries.sort();
        let bytes = build_in_memory(
            kind,
            entries.iter().map(|(h, c)| (h.as_bytes(), *c)),
            "audit test",
            0,
        );
        let path = dir.join(format!("{kind}.idx"));
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    (paths[0].clone(), paths[1].clone())
}

struct Fixture {
    dir: tempfile::TempDir,
    sha1_index: PathBuf,
    ntlm_index: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (sha1_index, ntlm_index) = indexes(dir.path());
        Fixture {
            dir,
            sha1_index,
            ntlm_index,
        }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn audit(&self, args: &[&str], files: &[&Path]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
            .arg("audit")
            .arg("--index")
            .arg(&self.sha1_index)
            .arg("--ntlm-index")
            .arg(&self.ntlm_index)
            // These tests check exact counts; the default (tiers only) has its own test.
            .arg("--show-counts")
            .args(args)
            .args(files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, files: &[&Path]) -> Value {
        let out = self.audit(&["--format", "json"], files);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Every form of input line, one per tier.
fn mixed_input() -> String {
    [
        "# exported 2026-05-01".to_string(),
        sha1("low"),
        nt("medium").to_lowercase(),
        format!("alice:{}", sha1("high")),
        format!("bob:{}", nt("critical")),
        format!(
            "Administrator:500:aad3b435b51404eeaad3b435b51404ee:{}:::",
            nt("absent")
        ),
        format!(
            "CORP\\carol:1104:aad3b435b51404eeaad3b435b51404ee:{}::: (status=Enabled)",
            nt("low")
        ),
        String::new(),
    ]
    .join("\n")
}

fn accounts(json: &Value) -> Vec<(String, String, u64, String, u64)> {
    json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account"].as_str().unwrap().to_owned(),
                a["kind"].as_str().unwrap().to_owned(),
                a["count"].as_u64().unwrap(),
                a["severity"].as_str().unwrap().to_owned(),
                a["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn each_input_form_is_checked_against_the_right_index() {
    let f = Fixture::new();
    let input = f.file("mixed.txt", &mixed_input());
    let json = f.json(&[&input]);
    let name = input.display().to_string();
    let row = |account: &str, kind: &str, count: u64, severity: &str, line: u64| {
        (
            account.to_owned(),
            kind.to_owned(),
            count,
            severity.to_owned(),
            line,
        )
    };
    assert_eq!(
        accounts(&json),
        vec![
            row(&format!("{name}:2"), "sha1", 5, "low", 2),
            row(&format!("{name}:3"), "ntlm", 50, "medium", 3),
            row("alice", "sha1", 5_000, "high", 4),
            row("bob", "ntlm", 500_000, "critical", 5),
            row("Administrator", "ntlm", 0, "none", 6),
            row("CORP\\carol", "ntlm", 5, "low", 7),
        ]
    );
    let summary = &json["summary"];
    assert_eq!(summary["checked"], 6);
    assert_eq!(summary["breached"], 5);
    assert_eq!(summary["breached_percent"], 83.3);
    assert_eq!(summary["unparseable_lines"], 0);
    for (tier, n) in [
        ("none", 1),
        ("low", 2),
        ("medium", 1),
        ("high", 1),
        ("critical", 1),
    ] {
        assert_eq!(summary["severity"][tier], n, "{tier}");
    }
}

#[test]
fn text_summary_quotes_share_and_tiers() {
    let f = Fixture::new();
    let input = f.file("mixed.txt", &mixed_input());
    let out = f.audit(&[], &[&input]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("83.3% of accounts use a breached password (5 of 6)"),
        "{text}"
    );
    assert!(
        text.contains("by severity: critical 1, high 1, medium 1, low 2, none 1"),
        "{text}"
    );
    assert!(text.contains("accounts checked: 6"), "{text}");
    let alice = text.lines().find(|l| l.starts_with("alice")).unwrap();
    assert!(alice.contains("5000") && alice.contains("high"), "{alice}");
}

#[test]
fn bad_lines_are_reported_by_file_and_line_without_their_content() {
    let f = Fixture::new();
    let secret_looking = "hunter2-is-my-password";
    let contents = [
        sha1("low"),
        secret_looking.to_string(),
        format!("dave:{}", &sha1("high")[..39]),
        format!("erin:{}Z", &nt("low")[..31]),
        "frank:500:NO PASSWORD*********************:NO PASSWORD*********************:::".into(),
        format!("gina:{}", sha1("medium")),
    ]
    .join("\r\n");
    let input = f.file("bad.txt", &contents);
    let name = input.display().to_string();

    let json = f.json(&[&input]);
    let bad: Vec<(u64, String)> = json["unparseable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["file"], name.as_str());
            (
                b["line"].as_u64().unwrap(),
                b["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        bad,
        vec![
            (2, "expected a 40-hex SHA-1 or 32-hex NTLM hash".to_owned()),
            (3, "expected a 40-hex SHA-1 or 32-hex NTLM hash".to_owned()),
            (4, "the hash is not hexadecimal".to_owned()),
            (5, "pwdump line without an NT hash".to_owned()),
        ]
    );
    assert_eq!(
        json["summary"]["checked"], 2,
        "good lines around bad ones still count"
    );

    let out = f.audit(&[], &[&input]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("unparseable lines: 4"), "{text}");
    assert!(
        text.contains(&format!("{name}:2: expected a 40-hex")),
        "{text}"
    );
    assert!(!text.contains(secret_looking));
}

#[test]
fn line_numbers_stay_exact_across_parallel_chunks() {
    let f = Fixture::new();
    // ~6 MB: several 1 MB chunks, with bad lines at the start, middle and end.
    let bad_at = [1usize, 54_321, 120_000];
    let mut contents = String::new();
    for line in 1..=120_000usize {
        if bad_at.contains(&line) {
            contents.push_str("not a hash\n");
        } else {
            contents.push_str(&format!(
                "user{line}:{}\n",
                sha1(if line % 2 == 0 { "low" } else { "absent" })
            ));
        }
    }
    let input = f.file("big.txt", &contents);
    let json = f.json(&[&input]);
    let lines: Vec<u64> = json["unparseable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad_at.map(|l| l as u64));
    let accounts = json["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 120_000 - 3);
    for a in accounts {
        let line = a["line"].as_u64().unwrap();
        assert_eq!(a["user"], format!("user{line}").as_str());
        assert_eq!(a["count"], if line % 2 == 0 { 5 } else { 0 });
    }
    // Everyone shares one of two passwords: two big reuse groups.
    let sizes: Vec<u64> = json["reuse_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![59_999, 59_998]);
}

#[test]
fn reuse_groups_are_listed_by_size() {
    let f = Fixture::new();
    let contents = [
        format!("a1:{}", nt("critical")),
        format!("b1:{}", nt("absent")),
        format!("a2:{}", nt("critical")),
        format!("c1:{}", sha1("critical")),
        format!(
            "b2:1001:aad3b435b51404eeaad3b435b51404ee:{}:::",
            nt("absent")
        ),
        format!("a3:{}", nt("critical")),
    ]
    .join("\n");
    let input = f.file("reuse.txt", &contents);
    let json = f.json(&[&input]);
    let groups: Vec<(u64, Vec<String>, Value)> = json["reuse_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let names = g["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect();
            (g["size"].as_u64().unwrap(), names, g["severity"].clone())
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            (
                3,
                vec!["a1".into(), "a2".into(), "a3".into()],
                Value::from("critical")
            ),
            (2, vec!["b1".into(), "b2".into()], Value::from("none")),
        ],
        "c1 has the same password but a SHA-1 hash: not the same credential"
    );
    assert_eq!(json["summary"]["reuse_groups_by_size"]["3"], 1);
    assert_eq!(json["summary"]["reuse_groups_by_size"]["2"], 1);

    let text = String::from_utf8(f.audit(&[], &[&input]).stdout).unwrap();
    assert!(
        text.contains("password reuse: 2 groups (1 x 3 accounts, 1 x 2 accounts)"),
        "{text}"
    );
    assert!(
        text.contains("3 accounts (breached 500000 times, critical): a1, a2, a3"),
        "{text}"
    );
}

#[test]
fn csv_has_one_row_per_account_and_quotes_names() {
    let f = Fixture::new();
    let contents = format!(
        "\u{feff}\"Smith, J\":{}\r\nkim:{}\r\n",
        sha1("high"),
        nt("absent")
    );
    let input = f.file("users.csv.txt", &contents);
    let out = f.audit(&["--format", "csv"], &[&input]);
    let csv = String::from_utf8(out.stdout).unwrap();
    let name = input.display().to_string();
    assert_eq!(
        csv,
        format!(
            "user,file,line,kind,count,severity\n\"\"\"Smith, J\"\"\",{name},1,sha1,5000,high\nkim,{name},2,ntlm,0,none\n"
        )
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("50.0% of accounts use a breached password"),
        "{stderr}"
    );
}

#[test]
fn hashes_are_printed_only_with_show_hashes() {
    let f = Fixture::new();
    let input = f.file("mixed.txt", &mixed_input());
    let hashes: Vec<String> = mixed_input()
        .lines()
        .filter_map(|l| hibp_mirror::audit::parse_line(l.as_bytes()).unwrap())
        .map(|c| c.hash.to_hex())
        .collect();
    assert_eq!(hashes.len(), 6);
    for format in ["text", "json", "csv"] {
        let out = f.audit(&["--format", format], &[&input]);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .to_uppercase();
        for h in &hashes {
            assert!(!all.contains(h.as_str()), "{format} leaked a hash");
        }
        let shown = f.audit(&["--format", format, "--show-hashes"], &[&input]);
        let shown = String::from_utf8_lossy(&shown.stdout).to_uppercase();
        for h in &hashes {
            assert!(
                shown.contains(h.as_str()),
                "{format} --show-hashes misses a hash"
            );
        }
    }
}

#[test]
fn stdin_and_several_files_and_missing_kind_index() {
    let f = Fixture::new();
    let first = f.file("one.txt", &format!("x:{}\n", sha1("medium")));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["audit", "--show-counts", "--format", "json", "--index"])
        .arg(&f.sha1_index)
        .arg(&first)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "y:{}", nt("medium")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = json["accounts"].as_array().unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0]["user"].as_str(), a[0]["count"].as_u64()),
        (Some("x"), Some(50))
    );
    assert_eq!(a[1]["file"], "-");
    assert_eq!(
        a[1]["count"],
        Value::Null,
        "no NTLM index: unchecked, not clean"
    );
    assert_eq!(json["summary"]["unchecked"], 1);
    assert_eq!(json["summary"]["checked"], 1);
}

#[test]
fn without_an_index_the_bundled_sample_is_used() {
    let out = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["audit", "--show-counts", "--format", "json", "-"])
        .env_remove("HIBP_MIRROR_INDEX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            writeln!(child.stdin.take().unwrap(), "{}", nt("password"))?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accounts"][0]["count"], 9_545_824);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bundled samples"));
}

#[test]
fn by_default_reports_show_the_tier_and_never_an_exact_count() {
    // "password" is in the bundled sample 9,545,824 times: that number alone names it.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("dump.txt");
    std::fs::write(
        &input,
        format!("alice:{}\nbob:{}\n", nt("password"), nt("password")),
    )
    .unwrap();
    let audit = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
            .arg("audit")
            .args(args)
            .arg(&input)
            .env_remove("HIBP_MIRROR_INDEX")
            .env_remove("HIBP_MIRROR_NTLM_INDEX")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for format in ["text", "csv", "json"] {
        let report = audit(&["--format", format]);
        assert!(
            !report.contains("9545824") && !report.contains("9,545,824"),
            "{report}"
        );
        assert!(report.contains("critical"), "{format}: {report}");
        let with_counts = audit(&["--format", format, "--show-counts"]);
        assert!(with_counts.contains("9545824"), "{format}: {with_counts}");
    }
}

/// Input is streamed: 160 MiB of comment and blank lines around two accounts and one bad line are
/// audited under a 64 MiB data limit (`prlimit --data`), which reading the whole input into
/// memory exceeds; the report still names every line by its true number.
#[test]
fn large_input_is_streamed_in_bounded_memory() {
    const INPUT_MIB: usize = 160;
    const LIMIT_MIB: usize = 64;
    let f = Fixture::new();
    let path = f.dir.path().join("large.txt");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(out, "alice:{}", sha1("high")).unwrap();
    // 1 MiB of 1,024-byte lines: comments, and blank lines of spaces.
    let mut block = Vec::with_capacity(1 << 20);
    for i in 0..1024 {
        let fill = if i % 2 == 0 { b'#' } else { b' ' };
        block.extend(std::iter::repeat_n(fill, 1023));
        block.push(b'\n');
    }
    for i in 0..INPUT_MIB {
        out.write_all(&block).unwrap();
        if i == INPUT_MIB / 2 {
            writeln!(out, "carol:not-a-hash").unwrap();
        }
    }
    writeln!(out, "bob:{}", nt("critical")).unwrap();
    out.flush().unwrap();
    drop(out);
    let bad_line = 2 + 1024 * (INPUT_MIB / 2 + 1);
    let last_line = 3 + 1024 * INPUT_MIB;

    let out = Command::new("prlimit")
        .arg(format!("--data={}", LIMIT_MIB << 20))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["audit", "--format", "json", "--index"])
        .arg(&f.sha1_index)
        .arg("--ntlm-index")
        .arg(&f.ntlm_index)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit of {INPUT_MIB} MiB under a {LIMIT_MIB} MiB data limit failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounts: Vec<(&str, u64, &str)> = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["user"].as_str().unwrap(),
                a["line"].as_u64().unwrap(),
                a["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [("alice", 1, "high"), ("bob", last_line as u64, "critical")]
    );
    let bad = &report["unparseable"].as_array().unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["line"], bad_line);
    assert_eq!(report["summary"]["unparseable_lines"], 1);
}
