//! Access control over real TCP: routes switched off, bearer tokens, `POST /checkhash`, and a
//! `/healthz` that shows no file paths unless a token holder asks for detail.

mod support;

use std::sync::Arc;
use std::time::Duration;

use hibp_mirror::server::access::{RouteSet, Tokens};
use hibp_mirror::server::{Config, IndexSet, IndexSource};
use reqwest::StatusCode;
use support::TestServer;

const SHA1: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
const TOKEN: &str = "s3cret-token-for-ops";

async fn start(config: Config) -> TestServer {
    let indexes = IndexSet::open(Some(IndexSource::Sample), Some(IndexSource::Sample)).unwrap();
    TestServer::start(indexes, config).await
}

fn token_file(dir: &tempfile::TempDir, text: &str) -> Arc<Tokens> {
    let path = dir.path().join("tokens");
    std::fs::write(&path, text).unwrap();
    Arc::new(Tokens::load(&path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_routes_answer_404() {
    let server = start(Config {
        routes: "range".parse().unwrap(),
        ..support::test_config()
    })
    .await;
    let client = reqwest::Client::new();
    let status = |path: &str| {
        let request = client.get(server.url(path));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status("/range/5BAA6").await, StatusCode::OK);
    assert_eq!(
        status(&format!("/checkhash/{SHA1}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(status("/healthz").await, StatusCode::NOT_FOUND);
    assert_eq!(status("/metrics").await, StatusCode::NOT_FOUND);
    let posted = client
        .post(server.url("/checkhash"))
        .header("content-type", "text/plain")
        .body(SHA1)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_routes_need_a_valid_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = token_file(&dir, &format!("# ops team\n\n{TOKEN}\nsecond-token\n"));
    let server = start(Config {
        tokens: Some(tokens.clone()),
        ..support::test_config()
    })
    .await;
    let client = reqwest::Client::new();
    let checkhash = server.url(&format!("/checkhash/{SHA1}"));
    for url in [checkhash.clone(), server.url("/metrics")] {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{url}");
        assert!(response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        for wrong in ["wrong", "s3cret-token-for-op", "", "# ops team"] {
            let response = client.get(&url).bearer_auth(wrong).send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{url} {wrong:?}"
            );
        }
        let response = client
            .get(&url)
            .header("authorization", format!("Basic {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        for good in [TOKEN, "second-token"] {
            let response = client.get(&url).bearer_auth(good).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
        }
    }
    // /range and /healthz stay open.
    let response = client.get(server.url("/range/5BAA6")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Reload (what SIGHUP does): the old token stops working, the new one works.
    std::fs::write(dir.path().join("tokens"), "rotated-token\n").unwrap();
    tokens.reload().unwrap();
    let response = client
        .get(&checkhash)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(&checkhash)
        .bearer_auth("rotated-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // An empty file is refused and the rotated token keeps working.
    std::fs::write(dir.path().join("tokens"), "\n# nobody\n").unwrap();
    assert!(tokens.reload().is_err());
    let response = client
        .get(&checkhash)
        .bearer_auth("rotated-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_routes_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config {
        tokens: Some(token_file(&dir, TOKEN)),
        token_routes: "range".parse().unwrap(),
        ..support::test_config()
    })
    .await;
    let client = reqwest::Client::new();
    let response = client.get(server.url("/range/5BAA6")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .get(server.url("/range/5BAA6"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        RouteSet::DEFAULT_TOKEN_ROUTES.to_string(),
        "checkhash,metrics"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_checkhash_answers_like_get() {
    let server = start(support::test_config()).await;
    let client = reqwest::Client::new();
    let get = client
        .get(server.url(&format!("/checkhash/{SHA1}")))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let expected = get.text().await.unwrap();
    assert!(expected.contains("\"timesseen\":"), "{expected}");

    let lower = SHA1.to_ascii_lowercase();
    let cases = [
        ("/checkhash", "text/plain", format!("{SHA1}\n")),
        ("/checkhash/", "text/plain; charset=utf-8", lower.clone()),
        (
            "/checkhash",
            "application/json",
            format!("{{\"hash\":\"{lower}\"}}"),
        ),
    ];
    for (path, content_type, body) in cases {
        let response = client
            .post(server.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path} {content_type}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.text().await.unwrap(), expected);
    }
    // NTLM by length, as GET.
    let response = client
        .post(server.url("/checkhash"))
        .header("content-type", "text/plain")
        .body("8846F7EAEE8FB117AD06BDD830B7586C")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("8846F7EAEE8FB117AD06BDD830B7586C"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_checkhash_refuses_bad_bodies_without_echoing_them() {
    let server = start(support::test_config()).await;
    let client = reqwest::Client::new();
    let post = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = client.post(server.url("/checkhash")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };
    let secret = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD"; // 39 hex: invalid
    let (status, body) = post(Some("text/plain"), secret.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains(secret), "{body}");
    let (status, body) = post(
        Some("application/json"),
        format!("{{\"hash\": \"{secret}\", oops").into(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!body.contains(secret), "{body}");
    let (status, _) = post(Some("application/json"), b"{\"sha1\":\"x\"}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(
        Some("application/x-www-form-urlencoded"),
        format!("hash={SHA1}").into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(None, SHA1.into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _) = post(Some("text/plain"), vec![b' '; 2048]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A POST with a hash in the path is not the POST form: 405, the path form takes GET only.
    for method in [reqwest::Method::POST, reqwest::Method::PUT] {
        let response = client
            .request(method, server.url(&format!("/checkhash/{SHA1}")))
            .header("content-type", "text/plain")
            .body(SHA1)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
    // GET on the POST form: 405 naming POST.
    let response = client.get(server.url("/checkhash")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_checkhash_chunked_oversize_and_slow_bodies_are_bounded() {
    let server = start(Config {
        header_read_timeout: Duration::from_millis(500),
        ..support::test_config()
    })
    .await;
    // Chunked, no Content-Length, over the cap: 413.
    let chunk = format!("{:x}\r\n{}\r\n", 700, "A".repeat(700));
    let request = format!(
        "POST /checkhash HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    let answer = support::raw_exchange(server.addr, request.as_bytes()).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Declares 40 bytes and sends 10: answered 408 once the time limit passes.
    let started = std::time::Instant::now();
    let request = "POST /checkhash HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\n5BAA61E4C9";
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        support::raw_exchange(server.addr, request.as_bytes()),
    )
    .await
    .expect("answered within the limit");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_hides_paths_unless_a_token_holder_asks_for_detail() {
    let dir = tempfile::tempdir().unwrap();
    let index = support::write_index(
        dir.path(),
        "secret-dir-index.bin",
        &support::Synth::new(20, 1, 4096, 2),
        1,
    );
    let indexes = IndexSet::open(Some(IndexSource::File(index.clone())), None).unwrap();
    let client = reqwest::Client::new();

    // No token file: no paths, and detail is not available.
    let server = TestServer::start(indexes, support::test_config()).await;
    let body = client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("\"records\":"), "{body}");
    assert!(!body.contains("secret-dir-index"), "{body}");
    assert!(!body.contains("\"source\""), "{body}");
    let response = client
        .get(server.url("/healthz?detail=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    server.stop().await;

    let indexes = IndexSet::open(Some(IndexSource::File(index)), None).unwrap();
    let server = TestServer::start(
        indexes,
        Config {
            tokens: Some(token_file(&dir, TOKEN)),
            ..support::test_config()
        },
    )
    .await;
    let body = client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("secret-dir-index"), "{body}");
    let response = client
        .get(server.url("/healthz?detail=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = client
        .get(server.url("/healthz?detail=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("secret-dir-index.bin"), "{body}");
    server.stop().await;
}
