//! Zero-downtime reload: the index file is replaced while a load generator runs, and every
//! response must be exactly one index version's answer, with that version's ETag.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hibp_mirror::server::{Config, ReloadOutcome};
use hibp_mirror::HashKind;
use support::{Synth, TestServer};

/// Two versions of the corpus: different seeds and build times.
fn versions() -> [(Synth, u64); 2] {
    [
        (Synth::new(20, 21, 512, 100), 1_700_000_000),
        (Synth::new(20, 22, 512, 100), 1_800_000_000),
    ]
}

/// The prefixes the load generator asks for.
fn probe_prefixes() -> Vec<u32> {
    let mut rng = support::SplitMix64::new(7);
    let mut out: Vec<u32> = (0..48).map(|_| rng.below(2048) as u32 * 512).collect();
    out.extend([0, 0xFFFFF, 1]);
    out
}

/// Polls `check` every 10 ms until it holds; fails the test after a generous deadline (an
/// event we wait for, not a timing we assert).
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_never_fails_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let [(a, a_time), (b, b_time)] = versions();
    let bytes = [
        support::index_bytes(&a, a_time),
        support::index_bytes(&b, b_time),
    ];
    let path = dir.path().join("sha1.idx");
    support::replace_file(&path, &bytes[0]);
    let server = TestServer::start_files(
        Some(&path),
        None,
        Config {
            access_log: false,
            ..support::test_config()
        },
    )
    .await;

    // Ground truth for both versions.
    let prefixes = Arc::new(probe_prefixes());
    let truth: Arc<Vec<[String; 2]>> = Arc::new(
        prefixes
            .iter()
            .map(|&p| [a.range_body(p), b.range_body(p)])
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut generators = Vec::new();
    for worker in 0..8u64 {
        let (prefixes, truth, stop) = (prefixes.clone(), truth.clone(), stop.clone());
        let base = server.url("");
        generators.push(tokio::spawn(async move {
            let client = support::identity_client();
            let mut rng = support::SplitMix64::new(worker);
            // (probe prefix, version, etag) seen, and how often.
            let mut seen: HashMap<(usize, usize, String), u64> = HashMap::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = rng.below(prefixes.len() as u64) as usize;
                let url = format!("{base}/range/{:05X}", prefixes[i]);
                match client.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
                        let body = response.text().await.unwrap_or_default();
                        match truth[i].iter().position(|t| *t == body) {
                            // Some prefixes (empty, or only an edge hash) are equal in both
                            // versions; they say nothing about which version answered.
                            Some(v) if truth[i][0] != truth[i][1] => {
                                *seen.entry((i, v, etag)).or_default() += 1
                            }
                            Some(_) => {}
                            None => failures.push(format!("{url}: body matches neither version")),
                        }
                    }
                    Ok(response) => failures.push(format!("{url}: status {}", response.status())),
                    Err(err) => failures.push(format!("{url}: {err}")),
                }
            }
            (seen, failures)
        }));
    }

    let indexes = server.handler.indexes().clone();
    let mut old_versions: Vec<Weak<_>> = Vec::new();
    for round in 1..=6 {
        // Let some requests through on the current version.
        tokio::time::sleep(Duration::from_millis(50)).await;
        old_versions.push(Arc::downgrade(&indexes.get(HashKind::Sha1).unwrap()));
        support::replace_file(&path, &bytes[round % 2]);
        let indexes = indexes.clone();
        let outcome = tokio::task::spawn_blocking(move || indexes.reload(HashKind::Sha1, false))
            .await
            .unwrap()
            .unwrap();
        let expected_time = [a_time, b_time][round % 2];
        assert!(
            matches!(outcome, ReloadOutcome::Reloaded { build_time, .. } if build_time == expected_time),
            "{outcome:?}"
        );
    }
    // A file that fails the open checks is refused; the last good index keeps serving.
    let mut corrupt = bytes[1].clone();
    corrupt[0] ^= 0xFF;
    support::replace_file(&path, &corrupt);
    let refused = indexes.reload(HashKind::Sha1, false);
    assert!(refused.is_err());
    assert_eq!(
        indexes.get(HashKind::Sha1).unwrap().header().build_time,
        a_time
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);

    let mut seen: BTreeMap<(usize, usize, String), u64> = BTreeMap::new();
    let mut failures = Vec::new();
    for generator in generators {
        let (s, f) = generator.await.unwrap();
        for (k, n) in s {
            *seen.entry(k).or_default() += n;
        }
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} failed or wrong responses: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Both versions were served; every prefix's answer of one version under exactly one ETag
    // (its content tag), which differs from the other version's ETag for that prefix (the data
    // differs: only prefixes whose bodies differ are counted).
    let versions_seen: BTreeSet<usize> = seen.keys().map(|(_, v, _)| *v).collect();
    assert_eq!(versions_seen, BTreeSet::from([0, 1]), "{seen:?}");
    let mut tags: BTreeMap<(usize, usize), BTreeSet<&str>> = BTreeMap::new();
    for (i, v, etag) in seen.keys() {
        tags.entry((*i, *v)).or_default().insert(etag);
    }
    for ((i, v), etags) in &tags {
        assert_eq!(etags.len(), 1, "prefix #{i} version {v}: {etags:?}");
        if let Some(other) = tags.get(&(*i, 1 - v)) {
            assert!(
                etags.is_disjoint(other),
                "prefix #{i}: {etags:?} in both versions"
            );
        }
    }
    assert!(
        tags.keys()
            .any(|(i, v)| *v == 0 && tags.contains_key(&(*i, 1))),
        "some prefix was seen in both versions: {tags:?}"
    );
    let total: u64 = seen.values().sum();
    assert!(total > 100, "the load generator ran: {total} responses");
    assert_eq!(indexes.reload_counts(HashKind::Sha1), (6, 1));
    // Every replaced version has been released (and its mapping unmapped).
    assert!(old_versions.iter().all(|w| w.upgrade().is_none()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_file_is_picked_up_by_the_watcher_and_headers_follow() {
    let dir = tempfile::tempdir().unwrap();
    let [(a, a_time), (b, b_time)] = versions();
    let path = support::write_index(dir.path(), "sha1.idx", &a, a_time);
    let config = Config {
        watch_interval: Some(Duration::from_millis(20)),
        ..support::test_config()
    };
    let server = TestServer::start_files(Some(&path), None, config).await;
    let client = support::identity_client();
    let url = server.url("/range/00200");
    let unchanged_url = server.url("/range/00100");
    let unchanged = client.get(&unchanged_url).send().await.unwrap();
    let unchanged_etag = unchanged.headers()["etag"].clone();
    assert_eq!(unchanged.text().await.unwrap(), a.range_body(0x100));
    assert_eq!(
        a.range_body(0x100),
        b.range_body(0x100),
        "prefix 00100 is the same in both"
    );
    assert_ne!(
        a.range_body(0x200),
        b.range_body(0x200),
        "prefix 00200 differs"
    );
    let before = client.get(&url).send().await.unwrap();
    let (etag_a, modified_a) = (
        before.headers()["etag"].clone(),
        before.headers()["last-modified"].clone(),
    );
    assert_eq!(before.text().await.unwrap(), a.range_body(0x200));

    support::write_index(dir.path(), "sha1.idx", &b, b_time);
    let indexes = server.handler.indexes().clone();
    wait_until("the watcher reloads", || {
        indexes.get(HashKind::Sha1).unwrap().header().build_time == b_time
    })
    .await;
    let after = client
        .get(&url)
        .header("If-None-Match", etag_a.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the old ETag no longer matches");
    assert_ne!(after.headers()["etag"], etag_a);
    assert_ne!(after.headers()["last-modified"], modified_a);
    assert_eq!(after.text().await.unwrap(), b.range_body(0x200));
    // A prefix whose data did not change keeps its ETag across the new index: 304.
    let still_same = client
        .get(&unchanged_url)
        .header("If-None-Match", unchanged_etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(still_same.status(), 304, "unchanged prefix, unchanged ETag");
    assert_eq!(still_same.headers()["etag"], unchanged_etag);

    // A truncated file is refused once and the old index keeps answering.
    let truncated = support::index_bytes(&a, a_time)[..5000].to_vec();
    support::replace_file(&path, &truncated);
    wait_until("the watcher refuses the file", || {
        indexes.reload_counts(HashKind::Sha1).1 == 1
    })
    .await;
    let still = support::get_text(&client, &url).await;
    assert_eq!(still, b.range_body(0x200));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let [(a, a_time), (b, b_time)] = versions();
    let path = support::write_index(dir.path(), "sha1.idx", &a, a_time);
    let config = Config {
        reload_on_sighup: true,
        ..support::test_config()
    };
    let server = TestServer::start_files(Some(&path), None, config).await;
    // `run` installs the handler before serving: once a request is answered it is in place.
    let client = support::identity_client();
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    support::write_index(dir.path(), "sha1.idx", &b, b_time);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let indexes = server.handler.indexes().clone();
    wait_until("SIGHUP reloads", || {
        indexes.get(HashKind::Sha1).unwrap().header().build_time == b_time
    })
    .await;
    let body = support::get_text(&client, server.url("/range/00100")).await;
    assert_eq!(body, b.range_body(0x100));
    server.stop().await;
}

#[tokio::test]
async fn a_file_of_the_other_kind_is_refused_and_the_old_index_kept() {
    let dir = tempfile::tempdir().unwrap();
    let [(a, a_time), _] = versions();
    let path = support::write_index(dir.path(), "sha1.idx", &a, a_time);
    let server = TestServer::start_files(Some(&path), None, support::test_config()).await;
    let ntlm = Synth::new(16, 5, 4096, 10);
    support::write_index(dir.path(), "sha1.idx", &ntlm, a_time + 1);
    let indexes = server.handler.indexes().clone();
    let err = indexes.reload(HashKind::Sha1, false).unwrap_err();
    assert!(err.to_string().contains("ntlm"), "{err}");
    // Refused once, then left alone until the file changes again.
    assert_eq!(
        indexes.reload(HashKind::Sha1, false).unwrap(),
        ReloadOutcome::Unchanged
    );
    assert_eq!(indexes.reload_counts(HashKind::Sha1), (0, 1));
    let body = support::identity_client()
        .get(server.url("/range/00200"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, a.range_body(0x200));
    server.stop().await;
}
