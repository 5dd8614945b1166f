//! The HTTP server over real TCP on 127.0.0.1:0 with a real HTTP client: every rule of the
//! upstream range protocol, /checkhash, health, metrics, limits and graceful shutdown.

mod support;

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use hibp_mirror::server::{
    App, Config, Handler, IndexSet, IndexSource, Metrics, ResponseBody, Route,
};
use hibp_mirror::HashKind;
use hyper::body::Incoming;
use hyper::{Request, Response};
use reqwest::StatusCode;
use support::{Synth, TestServer};

/// Build time of the fixture indexes.
const BUILD_TIME: u64 = 1_700_000_000;

/// The SHA-1 corpus: 256 prefixes of ~2,000 hashes (real-size bodies, more than one 64 KiB gzip
/// block), plus the all-0 and all-F edge hashes.
fn sha1_synth() -> Synth {
    Synth::new(20, 11, 4096, 2000)
}

/// The NTLM corpus: 1,024 prefixes of ~100 hashes.
fn ntlm_synth() -> Synth {
    Synth::new(16, 12, 1024, 100)
}

/// Index files of both corpora, written once per test binary.
fn fixture_files() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static FILES: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sha1 = support::write_index(dir.path(), "sha1.idx", &sha1_synth(), BUILD_TIME);
        let ntlm = support::write_index(dir.path(), "ntlm.idx", &ntlm_synth(), BUILD_TIME);
        (dir, sha1, ntlm)
    })
}

fn records_in(path: &std::path::Path) -> u64 {
    support::open_index(path).len()
}

async fn start_both(config: Config) -> TestServer {
    let (_, sha1, ntlm) = fixture_files();
    TestServer::start_files(Some(sha1), Some(ntlm), config).await
}

/// `n` populated prefixes and `n` arbitrary ones (mostly empty), plus both edges.
fn prefixes(synth: &Synth, seed: u64, n: usize) -> Vec<u32> {
    let mut rng = support::SplitMix64::new(seed);
    let mut out = vec![0, 0xFFFFF];
    for _ in 0..n {
        out.push(rng.below(u64::from((1 << 20) / synth.step)) as u32 * synth.step);
        out.push(rng.below(1 << 20) as u32);
    }
    out
}

fn range_path(prefix: u32, lowercase: bool) -> String {
    let hex = format!("{prefix:05X}");
    if lowercase {
        format!("/range/{}", hex.to_ascii_lowercase())
    } else {
        format!("/range/{hex}")
    }
}

#[tokio::test]
async fn range_bodies_are_byte_exact_for_both_kinds() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    for (synth, query) in [(sha1_synth(), ""), (ntlm_synth(), "?mode=ntlm")] {
        for (i, prefix) in prefixes(&synth, synth.seed, 60).into_iter().enumerate() {
            let url = server.url(&format!("{}{query}", range_path(prefix, i % 2 == 1)));
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
            assert_eq!(response.headers()["content-type"], "text/plain");
            assert!(response.headers().get("content-encoding").is_none());
            let body = response.bytes().await.unwrap();
            assert_eq!(
                std::str::from_utf8(&body).unwrap(),
                synth.range_body(prefix),
                "{url}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn edge_prefixes_hold_the_extreme_hashes_and_counts() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    let get = |path: &str| client.get(server.url(path)).send();
    let zeros = get("/range/00000").await.unwrap().text().await.unwrap();
    assert!(
        zeros.starts_with(&format!("{}:4294967295", "0".repeat(35))),
        "{zeros:.80}"
    );
    let effs = get("/range/fffff").await.unwrap().text().await.unwrap();
    assert!(
        effs.ends_with(&format!("{}:1", "F".repeat(35))),
        "{effs:.80}"
    );
    let ntlm = get("/range/FFFFF?mode=ntlm")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        ntlm.ends_with(&format!("\r\n{}:1", "F".repeat(27)))
            || ntlm == format!("{}:1", "F".repeat(27))
    );
    server.stop().await;
}

#[tokio::test]
async fn empty_prefix_is_200_with_an_empty_body() {
    let server = start_both(support::test_config()).await;
    let synth = sha1_synth();
    assert!(!synth.populated(1) && synth.range_body(1).is_empty());
    let response = support::identity_client()
        .get(server.url("/range/00001"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "0");
    assert!(response.bytes().await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn range_headers_match_upstream() {
    let server = start_both(support::test_config()).await;
    let response = support::identity_client()
        .get(server.url("/range/01000"))
        .send()
        .await
        .unwrap();
    let h = response.headers();
    assert_eq!(h["cache-control"], "public, max-age=2678400");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["vary"].to_str().unwrap().contains("Add-Padding"));
    assert_eq!(h["last-modified"], "Tue, 14 Nov 2023 22:13:20 GMT");
    let etag = h["etag"].to_str().unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    // The ETag is the prefix's stored content tag: the same for the same prefix, different for
    // a prefix with other data.
    let (_, sha1, _) = fixture_files();
    let index = support::open_index(sha1);
    let tag = |p: u32| {
        format!(
            "\"sha1-{:016x}\"",
            index.prefix_tag(hibp_mirror::Prefix::new(p).unwrap())
        )
    };
    assert_eq!(etag, tag(0x01000));
    let etag = etag.to_owned();
    let body = response.text().await.unwrap();
    let again = support::identity_client()
        .get(server.url("/range/01000"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers()["etag"], etag.as_str());
    let other = support::identity_client()
        .get(server.url("/range/ABCDE"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.headers()["etag"], tag(0xABCDE).as_str());
    assert_ne!(other.headers()["etag"], etag.as_str());
    assert_ne!(
        other.text().await.unwrap(),
        body,
        "the two prefixes hold different data"
    );
    server.stop().await;
}

/// Splits a padded body into (real part, padding rows) using the ground truth.
fn split_padding<'a>(body: &'a str, truth: &str) -> Vec<&'a str> {
    assert!(body.starts_with(truth), "real rows first");
    let rest = &body[truth.len()..];
    let rest = if truth.is_empty() {
        rest
    } else {
        rest.strip_prefix("\r\n")
            .expect("CRLF between real rows and padding")
    };
    rest.split("\r\n").collect()
}

#[tokio::test]
async fn padding_appends_10_to_209_random_zero_count_rows() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    let mut seen_counts = std::collections::BTreeSet::new();
    for (synth, query, prefix) in [
        (sha1_synth(), "", 0x1000),
        (sha1_synth(), "", 0x00001),
        (ntlm_synth(), "?mode=ntlm", 0x400),
    ] {
        let truth = synth.range_body(prefix);
        for value in ["true", "TRUE", "True"] {
            for _ in 0..8 {
                let response = client
                    .get(server.url(&format!("{}{query}", range_path(prefix, false))))
                    .header("Add-Padding", value)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert!(response.headers()["etag"]
                    .to_str()
                    .unwrap()
                    .starts_with("W/\""));
                let body = response.text().await.unwrap();
                assert!(!body.ends_with("\r\n") && !body.starts_with("\r\n"));
                let rows = split_padding(&body, &truth);
                assert!((10..=209).contains(&rows.len()), "{} rows", rows.len());
                seen_counts.insert(rows.len());
                for row in rows {
                    let (suffix, count) = row.split_once(':').unwrap();
                    assert_eq!(suffix.len(), synth.hash_len * 2 - 5);
                    assert!(
                        suffix
                            .bytes()
                            .all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')),
                        "{row}"
                    );
                    assert_eq!(count, "0");
                }
            }
        }
    }
    // 72 draws from 200 values: a constant row count would mean no randomness at all.
    assert!(seen_counts.len() > 10, "{seen_counts:?}");
    let unpadded = client
        .get(server.url("/range/01000"))
        .header("Add-Padding", "false")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(unpadded, sha1_synth().range_body(0x1000));
    server.stop().await;
}

#[tokio::test]
async fn if_none_match_gives_304_for_unpadded_requests_only() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    let url = server.url("/range/02000");
    let first = client.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let not_modified = client
        .get(&url)
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()["etag"], etag);
    assert!(not_modified.bytes().await.unwrap().is_empty());
    let list = format!("\"nope\", {}", etag.to_str().unwrap());
    let in_list = client
        .get(&url)
        .header("If-None-Match", list)
        .send()
        .await
        .unwrap();
    assert_eq!(in_list.status(), StatusCode::NOT_MODIFIED);
    let other = client
        .get(&url)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let padded = client
        .get(&url)
        .header("If-None-Match", etag.clone())
        .header("Add-Padding", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(padded.status(), StatusCode::OK);
    // The gzip representation has its own tag, and it revalidates too.
    let gz = client
        .get(&url)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    let gz_etag = gz.headers()["etag"].clone();
    assert_ne!(gz_etag, etag);
    let gz_304 = client
        .get(&url)
        .header("Accept-Encoding", "gzip")
        .header("If-None-Match", gz_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(gz_304.status(), StatusCode::NOT_MODIFIED);
    server.stop().await;
}

#[tokio::test]
async fn head_sends_the_get_headers_without_a_body() {
    let server = start_both(support::test_config()).await;
    let body = sha1_synth().range_body(0x3000);
    let raw = support::raw_exchange(
        server.addr,
        b"HEAD /range/03000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8(raw).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.contains(&format!("content-length: {}\r\n", body.len())),
        "{text}"
    );
    assert!(text.contains("etag: \""), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "no body after the head: {text}");
    server.stop().await;
}

#[tokio::test]
async fn options_preflight_and_405_with_allow() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/range/5BAA6"))
        .header("Origin", "https://example.org")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "add-padding")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "GET");
    assert_eq!(h["access-control-allow-headers"], "Add-Padding");
    for (method, path) in [
        (reqwest::Method::POST, "/range/5BAA6"),
        (reqwest::Method::PUT, "/range/5BAA6"),
        (reqwest::Method::DELETE, "/range/5BAA6"),
        (
            reqwest::Method::POST,
            "/checkhash/5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8",
        ),
        (reqwest::Method::POST, "/healthz"),
    ] {
        let response = client
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(response.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("GET"));
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_prefixes_get_the_upstream_400_messages() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    for (path, message) in [
        ("/range/5BAA", "The hash prefix was not in a valid format"),
        ("/range/5BAA61", "The hash prefix was not in a valid format"),
        ("/range/", "The hash prefix was not in a valid format"),
        ("/range/5BAG6", "The hash prefix was not valid hexadecimal"),
        ("/range/5baa%", "The hash prefix was not valid hexadecimal"),
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(response.headers()["content-type"], "text/plain");
        assert_eq!(response.text().await.unwrap(), message, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn ntlm_mode_without_an_ntlm_index_is_400_and_other_modes_mean_sha1() {
    let (_, sha1, _) = fixture_files();
    let server = TestServer::start_files(Some(sha1), None, support::test_config()).await;
    let client = support::identity_client();
    let response = support::get(&client, server.url("/range/01000?mode=ntlm")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("NTLM") && !text.contains('\n'), "{text}");
    let sha1_body = support::get_text(&client, server.url("/range/01000?mode=sha1")).await;
    assert_eq!(sha1_body, sha1_synth().range_body(0x1000));
    server.stop().await;
}

#[tokio::test]
async fn gzip_bodies_decode_to_the_identity_body_at_every_level() {
    for gzip_level in [0, 1, 6] {
        let config = Config {
            gzip_level,
            ..support::test_config()
        };
        let server = start_both(config).await;
        let client = support::identity_client();
        for (prefix, query, synth) in [
            (0x1000, "", sha1_synth()),
            (0x00001, "", sha1_synth()),
            (0x400, "?mode=ntlm", ntlm_synth()),
        ] {
            let url = server.url(&format!("{}{query}", range_path(prefix, false)));
            let response = client
                .get(&url)
                .header("Accept-Encoding", "gzip")
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["content-encoding"], "gzip");
            assert!(response.headers()["vary"]
                .to_str()
                .unwrap()
                .contains("Accept-Encoding"));
            let gz = response.bytes().await.unwrap();
            assert_eq!(
                support::gunzip(&gz),
                synth.range_body(prefix).as_bytes(),
                "level {gzip_level} {url}"
            );
            let refused = client
                .get(&url)
                .header("Accept-Encoding", "gzip;q=0, identity")
                .send()
                .await
                .unwrap();
            assert!(refused.headers().get("content-encoding").is_none());
            assert_eq!(refused.text().await.unwrap(), synth.range_body(prefix));
        }
        // A client that decompresses on its own sees the identity body.
        let auto = reqwest::Client::new()
            .get(server.url("/range/01000"))
            .send()
            .await
            .unwrap();
        assert_eq!(auto.text().await.unwrap(), sha1_synth().range_body(0x1000));
        server.stop().await;
    }
}

#[tokio::test]
async fn checkhash_answers_present_absent_and_invalid() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    let sha1 = sha1_synth();
    let (hash, count) = sha1.prefix_entries(0x1000)[17];
    let hex = sha1.hex(&hash);
    let response = support::get(
        &client,
        server.url(&format!("/checkhash/{}", hex.to_ascii_lowercase())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let severity = hibp_mirror::severity::Thresholds::DEFAULT.classify(count);
    assert_eq!(
        response.text().await.unwrap(),
        format!("{{\"passwordhash\":\"{hex}\",\"timesseen\":{count},\"severity\":\"{severity}\"}}")
    );

    let ntlm = ntlm_synth();
    let (hash, count) = ntlm.prefix_entries(0x400)[3];
    let hex = ntlm.hex(&hash);
    let body = support::get_text(&client, server.url(&format!("/checkhash/{hex}"))).await;
    assert!(body.contains(&format!("\"timesseen\":{count},")), "{body}");

    let absent = "0123456789ABCDEF0123456789ABCDEF01234567";
    let body = support::get_text(&client, server.url(&format!("/checkhash/{absent}"))).await;
    assert_eq!(
        body,
        format!("{{\"passwordhash\":\"{absent}\",\"timesseen\":0,\"severity\":\"none\"}}")
    );

    let top = support::get_text(
        &client,
        server.url(&format!("/checkhash/{}", "0".repeat(40))),
    )
    .await;
    assert!(
        top.contains("\"timesseen\":4294967295,\"severity\":\"critical\""),
        "{top}"
    );

    for bad in [
        "ABC",
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FDZ",
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8A",
    ] {
        let response = support::get(&client, server.url(&format!("/checkhash/{bad}"))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.text().await.unwrap();
        assert!(
            body.starts_with("{\"error\":\"") && body.ends_with("\"}"),
            "{body}"
        );
        assert!(
            !body.contains(bad),
            "the error must not echo the input: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn checkhash_thresholds_are_configurable() {
    let thresholds = "2,3,4,5".parse().unwrap();
    let server = start_both(Config {
        thresholds,
        ..support::test_config()
    })
    .await;
    let sha1 = sha1_synth();
    let (hash, count) = sha1
        .prefix_entries(0x1000)
        .into_iter()
        .find(|&(_, c)| c == 1)
        .expect("a count-1 hash");
    let body = reqwest::get(server.url(&format!("/checkhash/{}", sha1.hex(&hash))))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.ends_with(&format!("\"timesseen\":{count},\"severity\":\"none\"}}")),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test]
async fn healthz_reports_the_loaded_indexes() {
    let server = start_both(support::test_config()).await;
    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.text().await.unwrap();
    let records = records_in(&fixture_files().1);
    assert!(body.starts_with("{\"status\":\"ok\""), "{body}");
    assert!(
        body.contains(&format!(
            "\"kind\":\"sha1\",\"records\":{records},\"build_time\":{BUILD_TIME}"
        )),
        "{body}"
    );
    assert!(body.contains("\"kind\":\"ntlm\""), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    for _ in 0..3 {
        client
            .get(server.url("/range/01000"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    client.get(server.url("/range/XYZ")).send().await.unwrap();
    client.get(server.url("/nowhere")).send().await.unwrap();
    let text = support::get_text(&client, server.url("/metrics")).await;
    for line in [
        "hibp_mirror_requests_total{route=\"range\",status=\"200\"} 3",
        "hibp_mirror_requests_total{route=\"range\",status=\"400\"} 1",
        "hibp_mirror_requests_total{route=\"other\",status=\"404\"} 1",
        "hibp_mirror_request_duration_seconds_count{route=\"range\"} 4",
        "hibp_mirror_request_duration_seconds_bucket{route=\"range\",le=\"+Inf\"} 4",
        "hibp_mirror_index_age_seconds{kind=\"sha1\"}",
        "hibp_mirror_index_reloads_total{kind=\"sha1\",result=\"ok\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let records = format!(
        "hibp_mirror_index_records{{kind=\"ntlm\"}} {}\n",
        records_in(&fixture_files().2)
    );
    assert!(text.contains(&records), "missing {records:?} in\n{text}");
    assert_eq!(server.handler.metrics().requests(Route::Range, 200), 3);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_keep_alive_reuses_one_connection() {
    let server = start_both(support::test_config()).await;
    let client = support::identity_client();
    // `/` is the check page (tests/page.rs); `/index.htm` is not.
    for path in [
        "/index.htm",
        "/range",
        "/pwnedpassword/password",
        "/range5BAA6",
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for _ in 0..10 {
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let text = support::get_text(&client, server.url("/metrics")).await;
    assert!(text.contains("hibp_mirror_connections_total 1\n"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_serves_the_same_bytes() {
    let server = start_both(support::test_config()).await;
    let client = reqwest::Client::builder()
        .no_gzip()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(server.url("/range/01000")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        response.text().await.unwrap(),
        sha1_synth().range_body(0x1000)
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let server = start_both(support::test_config()).await;
    let big = "x".repeat(64 * 1024);
    let request = format!("GET /range/5BAA6 HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n");
    let raw = support::raw_exchange(server.addr, request.as_bytes()).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 431"), "{text:.100}");
    server.stop().await;
}

#[tokio::test]
async fn idle_and_slow_clients_are_cut_off_and_free_their_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = Config {
        max_connections: 1,
        header_read_timeout: Duration::from_millis(300),
        ..support::test_config()
    };
    let server = start_both(config).await;
    // An idle connection holds the only slot until the server drops it.
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        idle.read(&mut buf).await.unwrap(),
        0,
        "server closes the idle connection"
    );
    // A client that sends half a request head is cut off too (408 or a plain close).
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /range/5BAA6 HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    slow.read_to_end(&mut rest).await.unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest}"
    );
    // A keep-alive connection left idle after a response is closed by the server too.
    let idle_after =
        support::raw_exchange(server.addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(String::from_utf8_lossy(&idle_after).starts_with("HTTP/1.1 200 OK"));
    // The slot is free again.
    let response = support::identity_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

/// Wraps the real app with two fault-injection routes: `/panic` panics and `/slow` blocks until
/// the test releases it.
struct FaultyApp {
    /// The real application.
    app: App,
    /// Told when a `/slow` request has started.
    entered: Mutex<mpsc::Sender<()>>,
    /// Releases `/slow` requests.
    release: Mutex<mpsc::Receiver<()>>,
}

impl Handler for FaultyApp {
    fn handle(&self, route: Route, req: &Request<Incoming>) -> Response<ResponseBody> {
        match req.uri().path() {
            "/panic" => panic!("injected fault"),
            "/huge" => Response::new(ResponseBody::from_bytes(vec![b'x'; HUGE])),
            "/slow" => {
                self.entered.lock().unwrap().send(()).unwrap();
                let _ = self.release.lock().unwrap().recv();
                self.app
                    .respond(&Request::get("/range/01000").body(()).unwrap())
            }
            _ => self.app.respond_route(route, req),
        }
    }

    fn config(&self) -> &Config {
        self.app.config()
    }

    fn metrics(&self) -> &Metrics {
        self.app.metrics()
    }
}

fn faulty_app(config: Config) -> (Arc<FaultyApp>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (_, sha1, _) = fixture_files();
    let indexes = IndexSet::open(Some(IndexSource::File(sha1.clone())), None).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let app = FaultyApp {
        app: App::new(Arc::new(indexes), config),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    };
    (Arc::new(app), entered_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let (app, _entered, _release) = faulty_app(support::test_config());
    let server = TestServer::start_handler(app).await;
    let client = support::identity_client();
    for _ in 0..3 {
        let response = client.get(server.url("/panic")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    let ok = client.get(server.url("/range/01000")).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), sha1_synth().range_body(0x1000));
    let metrics = support::get_text(&client, server.url("/metrics")).await;
    assert!(
        metrics.contains("hibp_mirror_handler_panics_total 3"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn graceful_shutdown_finishes_the_request_in_flight() {
    let (app, entered, release) = faulty_app(support::test_config());
    let mut server = TestServer::start_handler(app).await;
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move {
        support::identity_client()
            .get(url)
            .send()
            .await?
            .text()
            .await
    });
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    server.begin_stop();
    // New connections are refused once the listener is closed.
    let addr = server.addr;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.send(()).unwrap();
    let body = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(body, sha1_synth().range_body(0x1000));
    server.join().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn shutdown_drain_is_bounded() {
    let config = Config {
        drain_timeout: Duration::from_millis(200),
        ..support::test_config()
    };
    let (app, entered, release) = faulty_app(config);
    let mut server = TestServer::start_handler(app).await;
    let url = server.url("/slow");
    let stuck = tokio::spawn(async move { support::identity_client().get(url).send().await });
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    server.begin_stop();
    // Returns although the request never finishes on its own.
    server
        .join()
        .await
        .expect("shutdown returns after the drain timeout");
    release.send(()).unwrap();
    let _ = stuck.await;
}

#[test]
fn routing_is_a_pure_function_of_the_request() {
    let app = App::new(Arc::new(IndexSet::sample()), support::test_config());
    let request = Request::get("/range/5baa6").body(()).unwrap();
    let response = app.respond(&request);
    assert_eq!(response.status(), hyper::StatusCode::OK);
    let body = response.into_body().to_bytes();
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824"));
    let ntlm = app.respond(
        &Request::get("/checkhash/8846F7EAEE8FB117AD06BDD830B7586C")
            .body(())
            .unwrap(),
    );
    assert!(std::str::from_utf8(&ntlm.into_body().to_bytes())
        .unwrap()
        .contains("\"timesseen\":9545824"));
    assert_eq!(
        app.indexes().get(HashKind::Sha1).unwrap().source(),
        &IndexSource::Sample
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_connections_that_never_sent_a_byte() {
    // Timeouts far longer than the test's deadline: only the shutdown signal can end the wait.
    let config = Config {
        header_read_timeout: Duration::from_secs(3600),
        drain_timeout: Duration::from_secs(3600),
        ..support::test_config()
    };
    let mut server = start_both(config).await;
    let silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Make sure the server has accepted it: a request on another connection is answered after it.
    let ok = support::identity_client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    server.begin_stop();
    tokio::time::timeout(Duration::from_secs(60), server.join())
        .await
        .expect("shutdown is not held up by a silent connection")
        .expect("clean shutdown");
    drop(silent);
}

/// Size of the `/huge` body: far more than loopback socket buffers hold.
const HUGE: usize = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_busy_when_the_drain_times_out_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = Config {
        drain_timeout: Duration::from_millis(200),
        ..support::test_config()
    };
    let (app, _entered, _release) = faulty_app(config);
    let mut server = TestServer::start_handler(app).await;
    // A response that cannot complete while this client does not read.
    let mut client = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    server.begin_stop();
    server
        .join()
        .await
        .expect("shutdown returns after the drain timeout");
    // The server closes the socket: end of stream (or a reset).
    let mut received = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match client.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => received += n,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("{err}"),
        }
    }
    assert!(
        received < HUGE,
        "the connection was cut, not served to the end"
    );
}
