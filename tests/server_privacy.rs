//! No full hash ever reaches a log line, a metric or an error message. The whole binary logs into
//! one captured buffer (a global subscriber), so every thread's output is checked.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use hibp_mirror::server::{Config, IndexSet};
use support::TestServer;

/// A `tracing` writer that appends to a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SHA1: &str = "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8";
const NTLM: &str = "8846F7EAEE8FB117AD06BDD830B7586C";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_full_hash_reaches_logs_metrics_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start(
        IndexSet::sample(),
        Config {
            access_log: true,
            ..support::test_config()
        },
    )
    .await;
    let client = support::identity_client();
    let lower = SHA1.to_ascii_lowercase();
    let paths = [
        format!("/checkhash/{SHA1}"),
        format!("/checkhash/{lower}"),
        format!("/checkhash/{NTLM}"),
        format!("/checkhash/{SHA1}0"),
        format!("/checkhash/{}Z", &SHA1[..39]),
        format!("/range/{SHA1}"),
        format!("/range/{}", &SHA1[..5]),
        format!("/range/5BAA6?mode=ntlm&h={SHA1}"),
        format!("/pwnedpassword/{SHA1}"),
        format!("/{lower}"),
    ];
    let mut bodies = String::new();
    for path in &paths {
        let response = client
            .get(server.url(path))
            .header("X-Hash", SHA1)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if !status.is_success() {
            bodies.push_str(&body);
        }
    }
    let metrics = support::get_text(&client, server.url("/metrics")).await;
    server.stop().await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The access log is there, with method, route, status and latency...
    assert!(log.contains("path=/checkhash/<redacted>"), "{log}");
    // The prefix is hidden unless `log_prefixes` is set (tests/hardening.rs checks both).
    assert!(log.contains("path=/range/<prefix>"), "{log}");
    assert!(log.contains("path=/range/<invalid>"), "{log}");
    assert!(
        log.contains("method=GET") && log.contains("status=200") && log.contains("latency_us="),
        "{log}"
    );
    // ...and no full hash, in either case, anywhere.
    for hash in [SHA1, NTLM] {
        for needle in [
            hash.to_owned(),
            hash.to_ascii_lowercase(),
            hash[..20].to_owned(),
        ] {
            assert!(!log.contains(&needle), "log leaks {needle}:\n{log}");
            assert!(!metrics.contains(&needle), "metrics leak {needle}");
            assert!(
                !bodies.contains(&needle),
                "error bodies leak {needle}: {bodies}"
            );
        }
    }
}
