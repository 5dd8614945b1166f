//! The check page over real TCP on 127.0.0.1:0: its security headers, `/config.json` (thresholds
//! from the server's settings, kinds actually served), the `page` switch, and the hash vectors the
//! browser test checks the page's JavaScript against, and `check --context` (the same rules from
//! the command line) on the shared case table. The page's behaviour in a real browser is tested by
//! `tools/browser-test.sh`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use hibp_mirror::server::{Config, IndexSet, IndexSource};
use hibp_mirror::severity::Thresholds;
use hibp_mirror::HashKind;
use reqwest::StatusCode;
use support::TestServer;

/// Every page answer and its content type.
const ASSETS: [(&str, &str); 5] = [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/app.js", "text/javascript; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/config.json", "application/json"),
];

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name} header", response.url()))
        .to_str()
        .unwrap()
}

/// The directives of a CSP header, by name.
fn directives(csp: &str) -> Vec<(String, Vec<String>)> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(str::to_owned);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

#[tokio::test]
async fn every_page_answer_carries_the_security_headers() {
    let server = TestServer::start(IndexSet::sample(), support::test_config()).await;
    let client = support::identity_client();
    for (path, content_type) in ASSETS {
        let response = support::get(&client, server.url(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert_eq!(header(&response, "x-frame-options"), "DENY");
        let csp = directives(header(&response, "content-security-policy"));
        let get = |name: &str| -> Vec<String> {
            csp.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{path}: CSP has no {name}"))
        };
        assert_eq!(get("default-src"), ["'none'"]);
        assert_eq!(get("script-src"), ["'self'"], "no inline or remote script");
        assert_eq!(get("style-src"), ["'self'"], "no inline or remote style");
        assert_eq!(get("connect-src"), ["'self'"]);
        assert_eq!(get("form-action"), ["'none'"]);
        assert_eq!(get("frame-ancestors"), ["'none'"]);
        for (name, sources) in &csp {
            for source in sources {
                let remote_or_unsafe =
                    source.contains("unsafe") || source == "*" || source.contains(':');
                assert!(
                    !remote_or_unsafe || (name == "img-src" && source == "data:"),
                    "{path}: {name} allows {source}"
                );
            }
        }
        let body = response.bytes().await.unwrap();
        assert!(!body.is_empty(), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn page_links_only_its_own_assets() {
    let server = TestServer::start(IndexSet::sample(), support::test_config()).await;
    let client = support::identity_client();
    let html = support::get_text(&client, server.url("/")).await;
    assert!(
        html.contains("<script src=\"app.js\" defer></script>"),
        "{html}"
    );
    assert!(html.contains("<link rel=\"stylesheet\" href=\"style.css\">"));
    assert!(html.contains("aria-live=\"polite\""));
    // Every src= and href= is a relative path on this origin (so a reverse proxy may serve the
    // page under a sub-path), or the empty inline favicon.
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            let value = &value[..value.find('"').unwrap()];
            assert!(
                value == "data:," || !(value.contains(':') || value.starts_with('/')),
                "{attr}{value}"
            );
        }
    }
    // HEAD answers the same headers and no body.
    let head = client.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert!(head.headers().contains_key("content-security-policy"));
    assert!(head.bytes().await.unwrap().is_empty());
    // The page takes no input: other methods are refused, and near-miss paths are not the page.
    let post = client.post(server.url("/")).body("password=x").send().await;
    assert_eq!(post.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
    for path in ["/app.js/", "/index.htm", "/favicon.ico", "/?password=x"] {
        let status = support::get(&client, server.url(path)).await.status();
        let expected = if path.starts_with("/?") {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(status, expected, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn config_json_reports_the_servers_thresholds_and_kinds() {
    let thresholds: Thresholds = "2,30,400,5000".parse().unwrap();
    let config = Config {
        thresholds,
        ..support::test_config()
    };
    let server = TestServer::start(IndexSet::sample(), config.clone()).await;
    let client = support::identity_client();
    let response = support::get(&client, server.url("/config.json")).await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let json: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        json["thresholds"],
        serde_json::json!({"low": 2, "medium": 30, "high": 400, "critical": 5000})
    );
    assert_eq!(json["kinds"], serde_json::json!(["sha1", "ntlm"]));
    assert_eq!(json["sample"], serde_json::json!(true));
    server.stop().await;

    // A server with only an NTLM index file: one kind, and not the sample.
    let dir = tempfile::tempdir().unwrap();
    let synth = support::Synth::new(16, 5, 4096, 10);
    let ntlm = support::write_index(dir.path(), "ntlm.idx", &synth, 1_700_000_000);
    let indexes = IndexSet::open(None, Some(IndexSource::File(ntlm))).unwrap();
    let server = TestServer::start(indexes, config).await;
    let json: serde_json::Value =
        serde_json::from_str(&support::get_text(&client, server.url("/config.json")).await)
            .unwrap();
    assert_eq!(json["kinds"], serde_json::json!(["ntlm"]));
    assert_eq!(json["sample"], serde_json::json!(false));
    assert_eq!(json["thresholds"]["critical"], serde_json::json!(5000));
    server.stop().await;
}

#[tokio::test]
async fn page_switched_off_answers_404_and_the_api_still_works() {
    let config = Config {
        page: false,
        ..support::test_config()
    };
    let server = TestServer::start(IndexSet::sample(), config).await;
    let client = support::identity_client();
    for (path, _) in ASSETS {
        let response = support::get(&client, server.url(path)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!response.headers().contains_key("content-security-policy"));
    }
    let range = support::get(&client, server.url("/range/5BAA6")).await;
    assert_eq!(range.status(), StatusCode::OK);
    assert!(range
        .text()
        .await
        .unwrap()
        .contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824"));
    server.stop().await;
}

#[tokio::test]
async fn page_requests_are_counted_under_their_own_route() {
    let server = TestServer::start(IndexSet::sample(), support::test_config()).await;
    let client = support::identity_client();
    for path in ["/", "/app.js", "/style.css", "/config.json"] {
        support::get(&client, server.url(path)).await;
    }
    let metrics = support::get_text(&client, server.url("/metrics")).await;
    assert!(
        metrics.contains("hibp_mirror_requests_total{route=\"page\",status=\"200\"} 4"),
        "{metrics}"
    );
    server.stop().await;
}

/// The vectors the browser test checks the page's Web Crypto and JavaScript SHA-1/MD4 against
/// are right: the library (RustCrypto `sha1` and `md4`) computes the same.
#[test]
fn hash_vectors_agree_with_the_library() {
    let text = std::fs::read_to_string("tests/data/hash_vectors.json").unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = json["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 10);
    for v in vectors {
        let password = v["password"].as_str().unwrap();
        assert_eq!(
            HashKind::Sha1.hash_password(password).to_hex(),
            v["sha1"].as_str().unwrap(),
            "SHA-1 of {password:?}"
        );
        assert_eq!(
            HashKind::Ntlm.hash_password(password).to_hex(),
            v["ntlm"].as_str().unwrap(),
            "NTLM of {password:?}"
        );
    }
}

/// Runs `hibp-mirror check` with `args`, feeding `input` on stdin; returns stdout.
fn run_check(args: &[&str], input: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn check_with_context_prints_tier_and_warnings() {
    let stdout = run_check(
        &["--context", "alice,alice@example.com,Acme"],
        "password\nAlice2024\n3C1L4-acme\ncorrect horse battery staple\n",
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824 critical",
            &*format!(
                "{}:0 none context: contains \"alice\" in another case",
                HashKind::Sha1.hash_password("Alice2024")
            ),
            &*format!(
                "{}:0 none context: contains \"alice\" reversed; contains \"Acme\" in another case",
                HashKind::Sha1.hash_password("3C1L4-acme")
            ),
            &*format!(
                "{}:0 none",
                HashKind::Sha1.hash_password("correct horse battery staple")
            ),
        ]
    );
    assert!(!stdout.contains("correct horse") && !stdout.contains("Alice2024"));
    // Thresholds change the tier printed.
    let stdout = run_check(
        &[
            "--context",
            "bob",
            "--severity-thresholds",
            "1,10,100,10000000",
        ],
        "password\n",
    );
    assert_eq!(
        stdout,
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:9545824 high\n"
    );
}

/// `check --context` follows the same case table as `src/context.rs` and the page's script.
#[test]
fn check_with_context_follows_the_shared_case_table() {
    let text = std::fs::read_to_string("tests/data/context_cases.json").unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let describe = |kind: &str| match kind {
        "exact" => "as written",
        "case" => "in another case",
        "leet" => "with look-alike characters",
        "reversed" => "reversed",
        other => panic!("unknown kind {other}"),
    };
    for case in json["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let entries: Vec<&str> = case["context"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        let password = case["password"].as_str().unwrap();
        let stdout = run_check(&["--context", &entries.join(",")], &format!("{password}\n"));
        let expected: Vec<String> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                format!(
                    "contains {:?} {}",
                    w["token"].as_str().unwrap(),
                    describe(w["kind"].as_str().unwrap())
                )
            })
            .collect();
        let line = stdout.trim_end_matches('\n');
        let got: Vec<&str> = match line.split_once(" context: ") {
            Some((_, warnings)) => warnings.split("; ").collect(),
            None => Vec::new(),
        };
        assert_eq!(got, expected, "{name}");
        assert!(
            line.starts_with(&format!("{}:", HashKind::Sha1.hash_password(password))),
            "{name}: {line}"
        );
    }
}
