//! Only the change moves through a chain of mirrors: a real `hibp-mirror serve` upstream on
//! 127.0.0.1, a real `hibp-mirror sync` downstream, and a new corpus version that changes 1% of
//! the prefixes (records added, counts raised, one record removed).
//!
//! After the upstream's index is replaced by rename (hot reload), the re-sync must fetch exactly
//! the changed prefixes (every other one a 304, counted by the server's `/metrics`), its index
//! must equal the new version byte for byte apart from the header (build time, label), and
//! `hibp-mirror diff OLD NEW --format dump` must print exactly the ground truth of the change.
//!
//! Like `tests/sync_mirror.rs`, it syncs an 8,192-prefix slice so a debug build stays quick;
//! `tools/incremental-clients.sh` repeats the proof with the Python `hibp-downloader`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hibp_mirror::format::{HEADER_LEN, RECORDS_OFFSET};
use hibp_mirror::writer::build_in_memory;
use hibp_mirror::{HashKind, Prefix};
use support::{replace_file, SplitMix64, Synth};

/// The path of the built binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_hibp-mirror");

/// Longest wait for the server to start or to pick up a replaced index; a guard against a hang,
/// never a measured figure.
const PATIENCE: Duration = Duration::from_secs(120);

/// The synced slice.
const RANGE: &str = "00000-01FFF";
const PREFIXES: u32 = 0x2000;

/// A `hibp-mirror serve` child on `127.0.0.1:0`, killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(index: &Path) -> Serve {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--watch-interval", "0.1", "--gzip-level", "6", "--index"])
            .arg(index)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hibp-mirror serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if json["fields"]["message"] == "listening" {
                    if let Some(addr) = json["fields"]["address"].as_str() {
                        let _ = tx.send(addr.parse::<SocketAddr>().expect("address"));
                    }
                }
            }
        });
        let addr = rx.recv_timeout(PATIENCE).expect("serve logs its address");
        Serve { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n").expect("an answer").1.to_owned()
    }

    /// `/range` answers with `status` so far, from `/metrics`.
    fn range_answers(&self, status: u16) -> u64 {
        let key = format!("hibp_mirror_requests_total{{route=\"range\",status=\"{status}\"}} ");
        self.get("/metrics")
            .lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .map_or(0, |n| n.trim().parse().expect("a counter"))
    }

    fn wait_for_build(&self, build_time: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let health: serde_json::Value = serde_json::from_str(&self.get("/healthz")).unwrap();
            if health["indexes"][0]["build_time"].as_u64() == Some(build_time) {
                return;
            }
            assert!(Instant::now() < deadline, "serve never reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run hibp-mirror");
    eprintln!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{args:?} failed: {:?}", out.status);
    out
}

fn sync(upstream: &Serve, dir: &Path) -> String {
    let output = dir.join("out.idx");
    let state = dir.join("state");
    let url = upstream.url();
    let out = run(&[
        "sync".as_ref(),
        "--upstream".as_ref(),
        url.as_ref(),
        "--output".as_ref(),
        output.as_os_str(),
        "--state".as_ref(),
        state.as_os_str(),
        "--prefixes".as_ref(),
        RANGE.as_ref(),
        "--quiet".as_ref(),
    ]);
    String::from_utf8(out.stdout).unwrap()
}

/// A corpus: full hash -> count.
type Corpus = BTreeMap<[u8; 20], u32>;

fn write(path: &Path, corpus: &Corpus, build_time: u64) {
    let bytes = build_in_memory(
        HashKind::Sha1,
        corpus.iter().map(|(h, c)| (&h[..], *c)),
        "incremental test",
        build_time,
    );
    replace_file(path, &bytes);
}

/// The change from A to B and its ground truth.
struct Change {
    /// The new corpus.
    b: Corpus,
    /// Prefixes that changed.
    prefixes: BTreeSet<u32>,
    /// `HASH:COUNT` lines of the added and raised records, in hash order.
    dump: String,
    added: u64,
    raised: u64,
    removed: u64,
}

/// B = A with 1% of the slice's prefixes changed: in each, one record added, or one count
/// raised, or both; in the first, also one record removed.
fn change(a: &Corpus) -> Change {
    let mut rng = SplitMix64::new(0x1D1FF);
    let mut prefixes = BTreeSet::new();
    while prefixes.len() < (PREFIXES / 100) as usize {
        prefixes.insert(rng.below(u64::from(PREFIXES)) as u32);
    }
    let mut b = a.clone();
    let mut changed: BTreeMap<[u8; 20], u32> = BTreeMap::new();
    let (mut added, mut raised, mut removed) = (0, 0, 0);
    for (n, &p) in prefixes.iter().enumerate() {
        let in_prefix: Vec<[u8; 20]> = a
            .keys()
            .filter(|h| hibp_mirror::hash::prefix_of(&h[..]) == p)
            .copied()
            .collect();
        assert!(in_prefix.len() >= 3, "prefix {p:05X} is populated");
        if n % 3 != 1 {
            let mut hash = [0u8; 20];
            rng.fill(&mut hash);
            hash[0] = (p >> 12) as u8;
            hash[1] = (p >> 4) as u8;
            hash[2] = ((p & 0xF) as u8) << 4 | (hash[2] & 0x0F);
            assert!(b.insert(hash, 1 + rng.below(10) as u32).is_none());
            changed.insert(hash, b[&hash]);
            added += 1;
        }
        if n % 3 != 0 {
            let hash = in_prefix[1];
            // Across the inline/overflow boundary for one of them.
            let new = if n == 1 { 100_000 } else { b[&hash] + 1 };
            b.insert(hash, new);
            changed.insert(hash, new);
            raised += 1;
        }
        if n == 0 {
            b.remove(&in_prefix[0]);
            removed += 1;
        }
    }
    let dump = changed
        .iter()
        .map(|(h, c)| format!("{}:{c}\n", const_hex::encode_upper(h)))
        .collect();
    Change {
        b,
        prefixes,
        dump,
        added,
        raised,
        removed,
    }
}

#[test]
fn a_one_percent_change_moves_only_the_changed_prefixes_through_a_mirror_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (up, down) = (dir.path().join("upstream"), dir.path().join("downstream"));
    std::fs::create_dir_all(&up).unwrap();
    std::fs::create_dir_all(&down).unwrap();
    // A: every prefix of the slice holds ~24 hashes (with heavy-tailed counts), nothing outside.
    let synth = Synth::new(20, 0xA11, 1, 24);
    let a: Corpus = (0..PREFIXES)
        .flat_map(|p| synth.prefix_entries(p))
        .map(|(h, c)| (h[..20].try_into().unwrap(), c))
        .collect();
    let change = change(&a);
    let (a_path, b_path) = (dir.path().join("a.idx"), dir.path().join("b.idx"));
    write(&a_path, &a, 1_800_000_000);
    write(&b_path, &change.b, 1_800_086_400);
    let served: PathBuf = up.join("sha1.idx");
    std::fs::copy(&a_path, &served).unwrap();

    // The first sync fetches every prefix.
    let upstream = Serve::start(&served);
    let stdout = sync(&upstream, &down);
    assert!(
        stdout.contains(&format!("sync: {PREFIXES} fetched, 0 not modified")),
        "{stdout}"
    );
    assert!(stdout.contains("no previous index"), "{stdout}");
    assert_eq!(upstream.range_answers(200), u64::from(PREFIXES));

    // The upstream moves to B by rename; the server reloads it.
    replace_file(&served, &std::fs::read(&b_path).unwrap());
    upstream.wait_for_build(1_800_086_400);
    let stdout = sync(&upstream, &down);
    let changed = change.prefixes.len() as u64;
    let unchanged = u64::from(PREFIXES) - changed;
    assert_eq!(changed, 81);
    assert!(
        stdout.contains(&format!(
            "sync: {changed} fetched, {unchanged} not modified, 0 already done by the resumed run, 0 failed;"
        )),
        "{stdout}"
    );
    // Counted by the server: exactly the changed prefixes were sent again, every other a 304.
    assert_eq!(
        upstream.range_answers(200),
        u64::from(PREFIXES) + changed,
        "only changed prefixes re-sent"
    );
    assert_eq!(upstream.range_answers(304), unchanged);
    // The sync's own change summary agrees with the ground truth.
    let line = format!(
        "sync: changes since the previous index: {changed} prefixes changed, {} hashes added, {} removed, {} counts changed ({} up, 0 down)",
        change.added, change.removed, change.raised, change.raised
    );
    assert!(stdout.contains(&line), "{stdout}\nexpected: {line}");

    // The downstream index equals B byte for byte after the header (offset table, prefix tags,
    // records, overflow table); only the build time and label differ.
    let synced = std::fs::read(down.join("out.idx")).unwrap();
    let b_bytes = std::fs::read(&b_path).unwrap();
    assert!(synced.len() > RECORDS_OFFSET);
    assert_eq!(synced.len(), b_bytes.len());
    assert!(
        synced[HEADER_LEN..] == b_bytes[HEADER_LEN..],
        "downstream index differs from B after the header"
    );
    let (s, b) = (
        support::open_index(down.join("out.idx")),
        support::open_index(&b_path),
    );
    assert_eq!(s.header().body_crc, b.header().body_crc);
    assert_eq!(s.len(), change.b.len() as u64);
    s.verify().unwrap();
    for p in &change.prefixes {
        let p = Prefix::new(*p).unwrap();
        assert_ne!(
            support::open_index(&a_path).prefix_tag(p),
            s.prefix_tag(p),
            "prefix {p} changed"
        );
    }

    // `diff A B --format dump` is exactly the ground truth; the figures match it too.
    let out = run(&[
        "diff".as_ref(),
        a_path.as_os_str(),
        b_path.as_os_str(),
        "--format".as_ref(),
        "dump".as_ref(),
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), change.dump);
    let out = run(&[
        "diff".as_ref(),
        a_path.as_os_str(),
        b_path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["prefixes_changed"], changed);
    assert_eq!(json["hashes_added"], change.added);
    assert_eq!(json["hashes_removed"], change.removed);
    assert_eq!(json["counts_up"], change.raised);
    assert_eq!(json["counts_down"], 0);
    assert_eq!(json["old_records"], a.len() as u64);
    assert_eq!(json["new_records"], change.b.len() as u64);
    // The reverse diff sees the mirror image.
    let out = run(&[
        "diff".as_ref(),
        b_path.as_os_str(),
        a_path.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["hashes_added"], change.removed);
    assert_eq!(json["hashes_removed"], change.added);
    assert_eq!(json["counts_down"], change.raised);
}

#[test]
fn diff_refuses_indexes_of_different_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let sha1 = support::write_index(dir.path(), "s.idx", &Synth::new(20, 1, 4096, 5), 1);
    let ntlm = support::write_index(dir.path(), "n.idx", &Synth::new(16, 1, 4096, 5), 1);
    let out = Command::new(BIN)
        .args(["diff".as_ref(), sha1.as_os_str(), ntlm.as_os_str()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot compare a sha1 index with a ntlm index"),
        "{stderr}"
    );
}
