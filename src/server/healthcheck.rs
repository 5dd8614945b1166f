//! The client side of `/healthz`: a minimal blocking HTTP/1.1 GET over TCP or TLS, for container
//! `HEALTHCHECK`s (`hibp-mirror healthcheck`), so images need no curl or wget.
//!
//! It speaks just enough HTTP for this server's `/healthz`: one request with `Connection: close`,
//! and only the status line of the answer is read. An `https://` URL is probed over TLS with the
//! same checks as any client (the certificate must chain to a trusted CA and name the host), or
//! against a pinned certificate (see [`tls::client_config`]).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use super::tls::{self, TlsError};

/// What `healthcheck` probes by default: the container's own server on the default port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/healthz";

/// How long the probe waits to connect, and for each read and write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The URL starts with neither `http://` nor `https://`.
    #[error("healthcheck speaks http:// and https://, got {url:?}")]
    NotHttp {
        /// The URL given.
        url: String,
    },
    /// The TLS client could not be set up from the given files.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The URL's host is not a name or address a certificate can be checked against.
    #[error("{host:?} is not a valid TLS server name")]
    ServerName {
        /// The host part of the URL.
        host: String,
    },
    /// The host and port could not be resolved to an address.
    #[error("cannot resolve {authority}")]
    Resolve {
        /// The `host:port` part of the URL.
        authority: String,
        /// The resolver's error (`None` when it returned no address).
        #[source]
        source: Option<io::Error>,
    },
    /// Connecting, sending the request or reading the answer failed or timed out.
    #[error("{stage} {authority}")]
    Io {
        /// What was being done (`connecting to`, `talking to`).
        stage: &'static str,
        /// The `host:port` part of the URL.
        authority: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The server answered, but not with status 200.
    #[error("{url} answered {status_line:?}")]
    Status {
        /// The URL probed.
        url: String,
        /// The response's status line (or what arrived of it).
        status_line: String,
    },
}

/// How [`probe`] speaks TLS to an `https://` URL (unused for `http://`).
#[derive(Debug, Clone, Default)]
pub struct HttpsOptions {
    /// PEM file of the certificates to trust: the server's CA, or a self-signed server
    /// certificate itself. `None`: the system's trust store.
    pub ca_cert: Option<PathBuf>,
    /// PEM files of a client certificate chain and its key, for a server that requires one
    /// (`serve --tls-client-ca`).
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// GETs `url` (`http://HOST:PORT/PATH` or `https://HOST:PORT/PATH`) with `timeout` per connect,
/// read and write, and succeeds when the status line says 200.
pub fn probe(url: &str, timeout: Duration, https: &HttpsOptions) -> Result<(), HealthcheckError> {
    let (rest, tls) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => return Err(HealthcheckError::NotHttp { url: url.into() }),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let resolve_error = |source| HealthcheckError::Resolve {
        authority: authority.into(),
        source,
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| resolve_error(Some(e)))?
        .next()
        .ok_or_else(|| resolve_error(None))?;
    let io_error = |stage| {
        move |source| HealthcheckError::Io {
            stage,
            authority: authority.into(),
            source,
        }
    };
    let client = if tls {
        let identity = https
            .client_identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        let config = tls::client_config(https.ca_cert.as_deref(), identity)?;
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _port)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| HealthcheckError::ServerName { host: host.into() })?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|reason| {
            TlsError::Rustls {
                context: "TLS client",
                reason,
            }
        })?;
        Some(conn)
    } else {
        None
    };
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io_error("connecting to"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(io_error("connecting to"))?;
    // A TLS handshake failure (an untrusted certificate, a wrong name, no client certificate)
    // surfaces as an I/O error of the first exchange, with rustls' reason in its message.
    let status_line = match client {
        Some(conn) => exchange(rustls::StreamOwned::new(conn, stream), authority, path),
        None => exchange(stream, authority, path),
    }
    .map_err(io_error("talking to"))?;
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(HealthcheckError::Status {
            url: url.into(),
            status_line,
        });
    }
    Ok(())
}

/// Sends the request and returns the response's first line (at most 64 bytes of it).
fn exchange(mut stream: impl Read + Write, authority: &str, path: &str) -> io::Result<String> {
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: hibp-mirror-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < head.len() && !head[..n].contains(&b'\n') {
        match stream.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let text = String::from_utf8_lossy(&head[..n]);
    Ok(text.lines().next().unwrap_or("").to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::server::{self, App, Config, IndexSet};

    /// The probe against the real server over loopback TCP: 200 on `/healthz`, a status error
    /// naming the status line elsewhere, and clear errors for another scheme, https to a plain
    /// server, and a closed port. (https to a TLS server: `tests/tls.rs`.)
    #[test]
    fn probes_the_real_server() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            reload_on_sighup: false,
            watch_interval: None,
            ..Config::default()
        };
        let app = Arc::new(App::new(Arc::new(IndexSet::sample()), config));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = runtime.spawn(server::run(listener, app, async {
            let _ = stopped.await;
        }));

        let plain = HttpsOptions::default();
        probe(&format!("http://{addr}/healthz"), DEFAULT_TIMEOUT, &plain).unwrap();
        match probe(&format!("http://{addr}/nope"), DEFAULT_TIMEOUT, &plain) {
            Err(HealthcheckError::Status { status_line, .. }) => {
                assert!(status_line.starts_with("HTTP/1.1 404"), "{status_line}")
            }
            other => panic!("expected a status error, got {other:?}"),
        }
        assert!(matches!(
            probe(&format!("ftp://{addr}/healthz"), DEFAULT_TIMEOUT, &plain),
            Err(HealthcheckError::NotHttp { .. })
        ));
        // A TLS hello to a plain server: refused, as an error talking to it.
        match probe(&format!("https://{addr}/healthz"), DEFAULT_TIMEOUT, &plain) {
            Err(HealthcheckError::Io { stage, .. }) => assert_eq!(stage, "talking to"),
            other => panic!("expected a TLS failure, got {other:?}"),
        }

        stop.send(()).unwrap();
        runtime.block_on(server).unwrap().unwrap();
        // Nothing listens there any more.
        assert!(matches!(
            probe(&format!("http://{addr}/healthz"), DEFAULT_TIMEOUT, &plain),
            Err(HealthcheckError::Io { .. })
        ));
    }
}
