//! The client side of `/healthz`: a minimal blocking HTTP/1.1 GET over plain TCP, for container
//! `HEALTHCHECK`s (`hibp-mirror healthcheck`), so images need no curl or wget.
//!
//! It speaks just enough HTTP for this server's `/healthz`: one request with `Connection: close`,
//! and only the status line of the answer is read.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// What `healthcheck` probes by default: the container's own server on the default port.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080/healthz";

/// How long the probe waits to connect, and for each read and write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// The URL does not start with `http://` (TLS is not spoken).
    #[error("healthcheck only speaks plain http://, got {url:?}")]
    NotHttp {
        /// The URL given.
        url: String,
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

/// GETs `url` (`http://HOST:PORT/PATH`) with `timeout` per connect, read and write, and succeeds
/// when the status line says 200.
pub fn probe(url: &str, timeout: Duration) -> Result<(), HealthcheckError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HealthcheckError::NotHttp { url: url.into() })?;
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
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(io_error("connecting to"))?;
    let status_line =
        exchange(&mut stream, authority, path, timeout).map_err(io_error("talking to"))?;
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
fn exchange(
    stream: &mut TcpStream,
    authority: &str,
    path: &str,
    timeout: Duration,
) -> io::Result<String> {
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: hibp-mirror-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
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
    /// naming the status line elsewhere, and clear errors for https and a closed port.
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

        probe(&format!("http://{addr}/healthz"), DEFAULT_TIMEOUT).unwrap();
        match probe(&format!("http://{addr}/nope"), DEFAULT_TIMEOUT) {
            Err(HealthcheckError::Status { status_line, .. }) => {
                assert!(status_line.starts_with("HTTP/1.1 404"), "{status_line}")
            }
            other => panic!("expected a status error, got {other:?}"),
        }
        assert!(matches!(
            probe(&format!("https://{addr}/healthz"), DEFAULT_TIMEOUT),
            Err(HealthcheckError::NotHttp { .. })
        ));

        stop.send(()).unwrap();
        runtime.block_on(server).unwrap().unwrap();
        // Nothing listens there any more.
        assert!(matches!(
            probe(&format!("http://{addr}/healthz"), DEFAULT_TIMEOUT),
            Err(HealthcheckError::Io { .. })
        ));
    }
}
