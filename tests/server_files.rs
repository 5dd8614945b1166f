//! A served index file modified in place (truncated, or overwritten as `cp` does) must never take
//! the server down: reading pages lost to a truncation raises SIGBUS. The real binary under load,
//! over real TCP; and the polling fallback for files that cannot be leased.

mod support;

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hibp_mirror::server::Config;
use hibp_mirror::HashKind;
use support::{ServeProcess, Synth, TestServer};

fn versions() -> [Synth; 2] {
    [Synth::new(20, 61, 512, 100), Synth::new(20, 62, 512, 100)]
}

/// Prefixes spread over the whole file, so a truncation cuts most of them off.
fn probes() -> Vec<u32> {
    (0..32u32).map(|i| i * 0x8000 + 0x7E00).collect()
}

/// What the load generator saw.
#[derive(Default)]
struct Seen {
    ok_old: AtomicU64,
    ok_new: AtomicU64,
    unavailable: AtomicU64,
    /// Anything else: a connection error (a dead server) or a wrong answer.
    bad: Mutex<Vec<String>>,
    /// A 503's reason.
    reason: Mutex<String>,
}

async fn load(addr: String, stop: Arc<AtomicBool>, seen: Arc<Seen>, v: Arc<[Synth; 2]>, n: usize) {
    let client = support::identity_client();
    let probes = probes();
    let mut i = n;
    while !stop.load(Ordering::Relaxed) {
        let prefix = probes[i % probes.len()];
        i += 1;
        let url = format!("http://{addr}/range/{prefix:05X}");
        match client.get(&url).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                if status == 200 && body == v[0].range_body(prefix) {
                    seen.ok_old.fetch_add(1, Ordering::Relaxed);
                } else if status == 200 && body == v[1].range_body(prefix) {
                    seen.ok_new.fetch_add(1, Ordering::Relaxed);
                } else if status == 503 {
                    seen.unavailable.fetch_add(1, Ordering::Relaxed);
                    *seen.reason.lock().unwrap() = body;
                } else {
                    seen.bad
                        .lock()
                        .unwrap()
                        .push(format!("{url}: {status} {body:.80}"));
                }
            }
            Err(e) => seen.bad.lock().unwrap().push(format!("{url}: {e}")),
        }
    }
}

/// Polls `check` every 20 ms until it holds (an event we wait for, not a timing we assert).
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1_500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_or_overwriting_the_served_file_in_place_never_kills_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let v = Arc::new(versions());
    let path = support::write_index(dir.path(), "sha1.idx", &v[0], 1_700_000_000);
    let new_bytes = support::index_bytes(&v[1], 1_800_000_000);
    let mut server = ServeProcess::start(&path, &["--watch-interval", "0.2"]);
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let loaders: Vec<_> = (0..4)
        .map(|n| {
            tokio::spawn(load(
                server.addr.clone(),
                stop.clone(),
                seen.clone(),
                v.clone(),
                n,
            ))
        })
        .collect();
    wait_until("the load runs", || seen.ok_old.load(Ordering::Relaxed) > 50).await;

    // `truncate -s 8400000` on the served file, under load. With the lease, the open waits
    // until the server has dropped its mapping.
    let p = path.clone();
    let waited = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let waited = started.elapsed();
        file.set_len(8_400_000).unwrap();
        waited
    })
    .await
    .unwrap();
    eprintln!("truncate's open waited {waited:?}");
    let before = seen.unavailable.load(Ordering::Relaxed);
    wait_until("503s after the truncation", || {
        seen.unavailable.load(Ordering::Relaxed) > before + 50
    })
    .await;
    assert!(
        server.alive(),
        "the server died: {}",
        server.log.lock().unwrap()
    );

    // `cp new.idx sha1.idx`: an overwrite in place with a valid file is not trusted either.
    let p = path.clone();
    let bytes = new_bytes.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        file.write_all(&bytes).unwrap();
    })
    .await
    .unwrap();
    let before = seen.unavailable.load(Ordering::Relaxed);
    wait_until("more 503s after the overwrite", || {
        seen.unavailable.load(Ordering::Relaxed) > before + 50
    })
    .await;
    assert!(
        server.alive(),
        "the server died: {}",
        server.log.lock().unwrap()
    );
    assert_eq!(
        seen.ok_new.load(Ordering::Relaxed),
        0,
        "the file changed in place was served"
    );

    // A good file renamed in: served again.
    support::replace_file(&path, &new_bytes);
    wait_until("the renamed file is served", || {
        seen.ok_new.load(Ordering::Relaxed) > 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await.unwrap();
    }
    assert!(
        server.alive(),
        "the server died: {}",
        server.log.lock().unwrap()
    );
    let bad = seen.bad.lock().unwrap();
    assert!(
        bad.is_empty(),
        "{} failed requests, first: {:?}",
        bad.len(),
        bad.first()
    );
    let reason = seen.reason.lock().unwrap().clone();
    assert!(
        reason.contains("in place") && reason.contains("renamed"),
        "{reason}"
    );
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("stopped serving this kind"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lease_an_in_place_change_is_caught_by_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions();
    let path = support::write_index(dir.path(), "sha1.idx", &v[0], 1_700_000_000);
    let config = Config {
        watch_interval: Some(Duration::from_millis(50)),
        file_leases: false,
        ..support::test_config()
    };
    let server = TestServer::start_files(Some(&path), None, config).await;
    let client = support::identity_client();
    let url = server.url("/range/F7E00");
    assert_eq!(
        support::get_text(&client, &url).await,
        v[0].range_body(0xF7E00)
    );

    // Truncated in place. No request touches the mapping until the watcher has dropped it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(8_400_000)
        .unwrap();
    let indexes = server.handler.indexes().clone();
    wait_until("the watcher withdraws the index", || {
        indexes.unavailable(HashKind::Sha1).is_some()
    })
    .await;
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.text().await.unwrap().contains("modified in place"));
    let (_, refused) = indexes.reload_counts(HashKind::Sha1);
    assert_eq!(refused, 1);

    support::replace_file(&path, &support::index_bytes(&v[1], 1_800_000_000));
    wait_until("the renamed file is served", || {
        indexes.get(HashKind::Sha1).is_some()
    })
    .await;
    assert_eq!(
        support::get_text(&client, &url).await,
        v[1].range_body(0xF7E00)
    );
    assert!(indexes.unavailable(HashKind::Sha1).is_none());
    server.stop().await;
}

/// Sets the soft `RLIMIT_NOFILE` of process `pid` with util-linux `prlimit`.
fn set_nofile(pid: u32, soft: u64) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("prlimit (util-linux) is installed");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_reload_error_is_retried_not_remembered_as_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions();
    let path = support::write_index(dir.path(), "sha1.idx", &v[0], 1_700_000_000);
    let mut server = ServeProcess::start(&path, &["--watch-interval", "0.2"]);
    let client = support::identity_client();
    let url = format!("http://{}/range/F7E00", server.addr);
    assert_eq!(
        support::get_text(&client, &url).await,
        v[0].range_body(0xF7E00)
    );

    // Leave the server no free file descriptor (EMFILE on its next open), then rename a good
    // file in: the watcher's open fails.
    let pid = server.pid();
    let used: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let lowest_free = (0..).find(|fd| !used.contains(fd)).unwrap();
    set_nofile(pid, lowest_free);
    support::replace_file(&path, &support::index_bytes(&v[1], 1_800_000_000));
    let log = server.log.clone();
    wait_until("the reload fails for lack of descriptors", || {
        log.lock()
            .unwrap()
            .contains("still serving the previous index")
    })
    .await;
    // Once descriptors are back, the same file loads on a later poll: it was not refused.
    set_nofile(pid, 1024);
    let mut body = String::new();
    for _ in 0..500 {
        body = support::get_text(&client, &url).await;
        if body == v[1].range_body(0xF7E00) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(body, v[1].range_body(0xF7E00), "{}", log.lock().unwrap());
    assert!(server.alive());
    let log = log.lock().unwrap();
    assert_eq!(
        log.matches("still serving the previous index").count(),
        1,
        "logged once: {log}"
    );
    assert!(log.contains("will retry"), "{log}");
}

/// Index bytes of `synth` whose header says it was built at `u64::MAX` seconds, with the header
/// checksum fixed up so only the field's value is wrong (offsets from docs/FORMAT.md).
fn far_future_index(synth: &Synth) -> Vec<u8> {
    let mut bytes = support::index_bytes(synth, 1_700_000_000);
    bytes[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    bytes[20..24].fill(0);
    let crc = crc32fast::hash(&bytes[..256]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_dated_past_9999_is_refused_everywhere_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions();
    let bad = dir.path().join("bad.idx");
    std::fs::write(&bad, far_future_index(&v[1])).unwrap();
    for command in ["info", "verify"] {
        let out = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
            .arg(command)
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(stderr.contains("after 9999-12-31"), "{command}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .arg("serve")
        .arg("--index")
        .arg(&bad)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "serve: {stderr}");
    assert!(
        stderr.contains("after 9999-12-31") && !stderr.contains("panicked"),
        "{stderr}"
    );

    // Renamed in while serving: refused, logged and counted once over many polls, old kept.
    let path = support::write_index(dir.path(), "sha1.idx", &v[0], 1_700_000_000);
    let mut server = ServeProcess::start(&path, &["--watch-interval", "0.2"]);
    std::fs::rename(&bad, &path).unwrap();
    let log = server.log.clone();
    wait_until("the reload is refused", || {
        log.lock().unwrap().contains("after 9999-12-31")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await; // several more polls (0.2 s)
    let client = support::identity_client();
    let url = format!("http://{}/range/F7E00", server.addr);
    assert_eq!(
        support::get_text(&client, &url).await,
        v[0].range_body(0xF7E00)
    );
    let metrics = support::get_text(&client, format!("http://{}/metrics", server.addr)).await;
    assert!(
        metrics.contains("hibp_mirror_index_reloads_total{kind=\"sha1\",result=\"error\"} 1\n"),
        "{metrics}"
    );
    assert!(server.alive());
    let log = log.lock().unwrap();
    assert_eq!(log.matches("index reload refused").count(), 1, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
