//! TLS end to end: a throwaway CA and certificates made with rcgen at test time, the real server
//! on `127.0.0.1:0`, and real clients (reqwest with rustls, curl) talking HTTPS to it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hibp_mirror::server::{Config, IndexSet, IndexSource, Tls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use support::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The suffix of SHA-1("password") under prefix 5BAA6.
const PASSWORD_SUFFIX: &str = "1E4C9B93F3F0682250B6CF8331B7EE68FD8:";

/// A certificate authority made for one test.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf certificate and its key, as PEM: server (127.0.0.1, localhost) or client.
    fn issue(&self, name: &str, server: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let sans = if server {
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
        } else {
            Vec::new()
        };
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// The PEM files of a test, in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` by rename, as a certificate manager replaces files.
    fn put(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        support::replace_file(&path, text.as_bytes());
        path
    }

    fn tls_files(&self, client_ca: Option<&Path>) -> TlsFiles {
        TlsFiles {
            cert: self.path("cert.pem"),
            key: self.path("key.pem"),
            client_ca: client_ca.map(Path::to_owned),
        }
    }
}

async fn start(tls: Arc<Tls>, watch: Option<Duration>) -> TestServer {
    let indexes = IndexSet::open(Some(IndexSource::Sample), Some(IndexSource::Sample)).unwrap();
    let config = Config {
        tls: Some(tls),
        watch_interval: watch,
        header_read_timeout: Duration::from_secs(2),
        ..support::test_config()
    };
    TestServer::start(indexes, config).await
}

/// Runs a client process to completion without stalling the runtime's other worker.
fn run(cmd: &mut Command) -> std::process::Output {
    tokio::task::block_in_place(|| cmd.output().expect("client runs"))
}

fn https(server: &TestServer, path: &str) -> String {
    format!("https://{}{path}", server.addr)
}

fn client(ca: &[&Ca]) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .no_gzip();
    for ca in ca {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap());
    }
    builder
}

/// The DER of the certificate the server presented for `response`.
fn peer_cert(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("TLS info with a peer certificate")
        .to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_gets_range_over_h2_and_http11() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls, None).await;

    let h2 = client(&[&ca]).build().unwrap();
    let response = h2.get(https(&server, "/range/5BAA6")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN h2");
    assert!(response.text().await.unwrap().contains(PASSWORD_SUFFIX));

    let h1 = client(&[&ca]).http1_only().build().unwrap();
    let response = h1.get(https(&server, "/range/5BAA6")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_11,
        "ALPN http/1.1"
    );
    assert!(response.text().await.unwrap().contains(PASSWORD_SUFFIX));

    // A client that does not trust the CA refuses the server; plain HTTP gets no answer.
    let untrusting = client(&[&Ca::new("other CA")]).build().unwrap();
    assert!(untrusting
        .get(https(&server, "/range/5BAA6"))
        .send()
        .await
        .is_err());
    let plain = reqwest::Client::new();
    assert!(plain
        .get(format!("http://{}/range/5BAA6", server.addr))
        .send()
        .await
        .is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_http2_alpn_offers_only_http11() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let tls = Arc::new(Tls::load(files.tls_files(None), false).unwrap());
    let indexes = IndexSet::open(Some(IndexSource::Sample), None).unwrap();
    let config = Config {
        tls: Some(tls),
        http2: false,
        ..support::test_config()
    };
    let server = TestServer::start(indexes, config).await;
    let response = client(&[&ca])
        .build()
        .unwrap()
        .get(https(&server, "/range/5BAA6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_cacert_gets_range_over_h2_and_http11() {
    if Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is required for this test (apt-get install curl)");
    }
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let ca_path = files.put("ca.pem", &ca.pem());
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls, None).await;
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = run(Command::new("curl")
            .args(["-sS", "--max-time", "10", flag, "--cacert"])
            .arg(&ca_path)
            .args(["-w", "\n%{http_code} %{http_version}"])
            .arg(https(&server, "/range/5BAA6")));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {flag}: {text} {:?}", out.stderr);
        assert!(text.contains(PASSWORD_SUFFIX), "{text}");
        assert!(
            text.ends_with(&format!("\n200 {version}")),
            "{flag}: {text}"
        );
    }
    // Without the CA, curl refuses the certificate (exit 60).
    let out = run(Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(https(&server, "/range/5BAA6")));
    assert_eq!(out.status.code(), Some(60), "{:?}", out);
    server.stop().await;
}

/// A TLS 1.1 ClientHello, written by hand (no client library here offers TLS 1.1 any more):
/// the server must answer with a fatal `protocol_version` alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls11_client_hello_is_refused_with_protocol_version_alert() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls, None).await;

    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA/RSA AES128-CBC-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
                                           // signature_algorithms (ecdsa_secp256r1_sha256, rsa_pkcs1_sha256), as OpenSSL sends it even
                                           // when it offers TLS 1.1 only; rustls refuses a hello without it before looking at versions.
    body.extend_from_slice(&[
        0x00, 0x0a, 0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x04, 0x01,
    ]);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);

    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .unwrap();
    // Record type 21 (alert), then level 2 (fatal) and description 70 (protocol_version).
    assert_eq!(answer.first(), Some(&0x15), "{answer:02x?}");
    assert_eq!(&answer[answer.len() - 2..], &[0x02, 70], "{answer:02x?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_does_not_hold_a_slot_past_the_header_timeout() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let indexes = IndexSet::open(Some(IndexSource::Sample), None).unwrap();
    let config = Config {
        tls: Some(tls),
        max_connections: 1,
        header_read_timeout: Duration::from_millis(500),
        ..support::test_config()
    };
    let server = TestServer::start(indexes, config).await;
    // Starts a handshake (one byte of a record header) and stalls: the only slot is taken.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&[0x16]).await.unwrap();
    let started = std::time::Instant::now();
    let response = client(&[&ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(https(&server, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "the slot was free sooner than the timeout: {waited:?}"
    );
    // The stalled connection was closed by the server.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stalled.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "still open");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_is_served_to_new_connections_and_a_bad_pair_is_refused() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert_a, key_a) = ca.issue("server A", true);
    files.put("cert.pem", &cert_a);
    files.put("key.pem", &key_a);
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls.clone(), Some(Duration::from_millis(50))).await;

    // An HTTP/1.1 client that keeps its one connection open.
    let old = client(&[&ca])
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let response = old.get(https(&server, "/healthz")).send().await.unwrap();
    assert_eq!(peer_cert(&response), der_of(&cert_a));
    response.bytes().await.unwrap();

    // Replace key and certificate (renames, as certbot and friends do); the watcher picks it up.
    let (cert_b, key_b) = ca.issue("server B", true);
    files.put("key.pem", &key_b);
    files.put("cert.pem", &cert_b);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = client(&[&ca]).build().unwrap();
        let response = fresh.get(https(&server, "/healthz")).send().await.unwrap();
        if peer_cert(&response) == der_of(&cert_b) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the reload still works, with the old certificate.
    let response = old
        .get(https(&server, "/range/5BAA6"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_cert(&response), der_of(&cert_a));
    assert!(response.text().await.unwrap().contains(PASSWORD_SUFFIX));

    // A key that does not match the certificate: refused (SIGHUP path and watcher alike), and
    // new connections keep getting certificate B.
    let (cert_c, _) = ca.issue("server C", true);
    files.put("cert.pem", &cert_c);
    assert!(tls.reload().is_err(), "mismatched pair must be refused");
    files.put("key.pem", "not a key\n");
    assert!(tls.reload().is_err(), "garbage key must be refused");
    tokio::time::sleep(Duration::from_millis(300)).await; // watcher passes, refuses too
    let fresh = client(&[&ca]).build().unwrap();
    let response = fresh.get(https(&server, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(peer_cert(&response), der_of(&cert_b));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_ca() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new();
    let (cert, key) = server_ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let client_ca_path = files.put("client-ca.pem", &client_ca.pem());
    let tls = Arc::new(Tls::load(files.tls_files(Some(&client_ca_path)), true).unwrap());
    let server = start(tls, None).await;
    let url = https(&server, "/range/5BAA6");

    // No client certificate: the handshake fails.
    let anonymous = client(&[&server_ca]).build().unwrap();
    assert!(anonymous.get(&url).send().await.is_err());

    // A certificate from another CA: refused too.
    let (stranger_cert, stranger_key) = server_ca.issue("stranger", false);
    let identity =
        reqwest::Identity::from_pem(format!("{stranger_cert}{stranger_key}").as_bytes()).unwrap();
    let stranger = client(&[&server_ca]).identity(identity).build().unwrap();
    assert!(stranger.get(&url).send().await.is_err());

    // A certificate from the client CA: served, over h2 and HTTP/1.1.
    let (app_cert, app_key) = client_ca.issue("app", false);
    for h1 in [false, true] {
        let identity =
            reqwest::Identity::from_pem(format!("{app_cert}{app_key}").as_bytes()).unwrap();
        let mut builder = client(&[&server_ca]).identity(identity);
        if h1 {
            builder = builder.http1_only();
        }
        let response = builder.build().unwrap().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains(PASSWORD_SUFFIX));
    }

    // curl with and without the client certificate.
    let ca_path = files.put("server-ca.pem", &server_ca.pem());
    let app_cert_path = files.put("app.pem", &app_cert);
    let app_key_path = files.put("app.key", &app_key);
    let with_cert = run(Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(&ca_path)
        .arg("--cert")
        .arg(&app_cert_path)
        .arg("--key")
        .arg(&app_key_path)
        .arg(&url));
    assert_eq!(
        String::from_utf8_lossy(&with_cert.stdout),
        "200",
        "{with_cert:?}"
    );
    let without = run(Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(&ca_path)
        .arg(&url));
    assert!(!without.status.success(), "{without:?}");
    assert_eq!(
        String::from_utf8_lossy(&without.stdout),
        "000",
        "{without:?}"
    );
    server.stop().await;
}

/// `--ca-cert PATH`, as arguments.
fn ca_arg(path: &Path) -> [&std::ffi::OsStr; 2] {
    [std::ffi::OsStr::new("--ca-cert"), path.as_os_str()]
}

/// Runs `hibp-mirror healthcheck --url URL ARGS...`; its exit status and stderr.
fn healthcheck(url: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = run(Command::new(env!("CARGO_BIN_EXE_hibp-mirror"))
        .args(["healthcheck", "--url", url])
        .args(args));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hibp-mirror healthcheck` (the image's HEALTHCHECK) probes a TLS server: it trusts what
/// `--ca-cert` holds, not the system store, checks that the certificate names the host, and
/// presents a client certificate where the server requires one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_probes_https_with_the_given_ca_and_client_certificate() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let files = Files::new();
    let (cert, key) = server_ca.issue("server", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);
    let ca = files.put("server-ca.pem", &server_ca.pem());
    let other_ca = files.put("other-ca.pem", &client_ca.pem());
    let (app_cert, app_key) = client_ca.issue("probe", false);
    let app_cert = files.put("probe.pem", &app_cert);
    let app_key = files.put("probe.key", &app_key);

    // Server authentication only.
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls, None).await;
    let port = server.addr.port();
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &ca_arg(&ca));
    assert!(ok, "{stderr}");
    // By name too: the certificate holds `localhost`.
    let (ok, stderr) = healthcheck(&format!("https://localhost:{port}/healthz"), &ca_arg(&ca));
    assert!(ok, "{stderr}");
    // A path that is not 200 fails with the status line.
    let (ok, stderr) = healthcheck(&https(&server, "/nope"), &ca_arg(&ca));
    assert!(!ok && stderr.contains("404"), "{stderr}");
    // The system store does not hold the test CA, nor does another CA's file.
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &[]);
    assert!(!ok && stderr.contains("certificate"), "{stderr}");
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &ca_arg(&other_ca));
    assert!(!ok && stderr.contains("certificate"), "{stderr}");
    // A name the certificate does not hold.
    let (ok, stderr) = healthcheck(&format!("https://127.0.0.2:{port}/healthz"), &ca_arg(&ca));
    assert!(!ok, "{stderr}");
    // Plain http to the TLS port gets no HTTP answer.
    let (ok, stderr) = healthcheck(&format!("http://127.0.0.1:{port}/healthz"), &[]);
    assert!(!ok, "{stderr}");
    // A CA file that holds no certificate is named.
    let empty = files.put("empty.pem", "");
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &ca_arg(&empty));
    assert!(!ok && stderr.contains("empty.pem"), "{stderr}");
    server.stop().await;

    // A self-signed certificate marked as a CA (what `openssl req -x509` makes), named in
    // --ca-cert: accepted as pinned, though webpki refuses a CA as a server's own certificate.
    files.put("cert.pem", &server_ca.pem());
    files.put("key.pem", &server_ca.key.serialize_pem());
    let tls = Arc::new(Tls::load(files.tls_files(None), true).unwrap());
    let server = start(tls, None).await;
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &ca_arg(&ca));
    assert!(ok, "{stderr}");
    let (ok, stderr) = healthcheck(&https(&server, "/healthz"), &ca_arg(&other_ca));
    assert!(!ok && stderr.contains("certificate"), "{stderr}");
    server.stop().await;
    files.put("cert.pem", &cert);
    files.put("key.pem", &key);

    // Mutual TLS: refused without a client certificate, served with one from the client CA.
    let client_ca_path = files.put("client-ca.pem", &client_ca.pem());
    let tls = Arc::new(Tls::load(files.tls_files(Some(&client_ca_path)), true).unwrap());
    let server = start(tls, None).await;
    let url = https(&server, "/healthz");
    let (ok, stderr) = healthcheck(&url, &ca_arg(&ca));
    assert!(!ok, "{stderr}");
    let identity = [
        std::ffi::OsStr::new("--client-cert"),
        app_cert.as_os_str(),
        std::ffi::OsStr::new("--client-key"),
        app_key.as_os_str(),
    ];
    let (ok, stderr) = healthcheck(&url, &[&ca_arg(&ca)[..], &identity[..]].concat());
    assert!(ok, "{stderr}");
    server.stop().await;
}

#[test]
fn bad_files_are_refused_at_load_with_the_path_named() {
    let ca = Ca::new("test CA");
    let files = Files::new();
    let (cert, key) = ca.issue("server", true);
    let (_, other_key) = ca.issue("other", true);
    files.put("cert.pem", &cert);
    files.put("key.pem", &other_key);
    let err = Tls::load(files.tls_files(None), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate and key"), "{err}");
    files.put("key.pem", &key);
    files.put("cert.pem", "nothing here\n");
    let err = Tls::load(files.tls_files(None), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cert.pem"), "{err}");
    std::fs::remove_file(files.path("cert.pem")).unwrap();
    let err = Tls::load(files.tls_files(None), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cert.pem"), "{err}");
}
