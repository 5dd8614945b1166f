//! TLS for `serve`: rustls (ring provider) with TLS 1.2 and 1.3 only, ALPN `h2` and `http/1.1`,
//! optional client certificates (mutual TLS), and a certificate that can be replaced while
//! serving.
//!
//! The current [`ServerConfig`] sits in an [`ArcSwap`] that is read once per accepted connection:
//! a reload (SIGHUP or a replaced file, see [`Tls::watch`]) affects only connections accepted
//! after it, and a certificate/key pair that does not load is refused with one log line while the
//! previous one keeps serving.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::indexes::FileId;

/// Where the PEM files of a TLS setup are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to; `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be built. The message includes the underlying reason (it
/// is what the reload log line shows), so the reason is not also chained as a `source`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// What the file should hold ("certificate", "private key", "client CA").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: rustls::pki_types::pem::Error,
    },
    /// A file holds no certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate) or a CA.
    #[error("{context}: {reason}")]
    Rustls {
        /// Which step failed.
        context: &'static str,
        /// rustls' reason.
        reason: rustls::Error,
    },
    /// The client-certificate verifier could not be built from the CA file.
    #[error("cannot use {path} as client CA: {reason}")]
    ClientCa {
        /// The CA file.
        path: PathBuf,
        /// The reason.
        reason: rustls::server::VerifierBuilderError,
    },
}

/// Identity of the files last loaded or refused, to notice replacements.
type FileIds = [Option<FileId>; 3];

/// A TLS acceptor whose configuration can be swapped while serving.
pub struct Tls {
    /// The files the configuration is built from.
    files: TlsFiles,
    /// Whether `h2` is offered by ALPN (HTTP/2 enabled on the server).
    http2: bool,
    /// The configuration new connections get.
    current: ArcSwap<ServerConfig>,
    /// File identities of the last load attempt, good or bad: a refused pair is not retried
    /// until one of its files changes again.
    seen: Mutex<FileIds>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `files`; offers ALPN `h2` besides `http/1.1` when `http2` is set.
    pub fn load(files: TlsFiles, http2: bool) -> Result<Tls, TlsError> {
        let seen = file_ids(&files);
        let config = build_config(&files, http2)?;
        Ok(Tls {
            files,
            http2,
            current: ArcSwap::from_pointee(config),
            seen: Mutex::new(seen),
        })
    }

    /// The files this acceptor loads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Rebuilds the configuration from the files. On success new connections get it; on error
    /// the previous configuration stays and the error is logged (one line) and returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ids = file_ids(&self.files);
        *self.seen.lock().expect("not poisoned") = ids;
        match build_config(&self.files, self.http2) {
            Ok(config) => {
                self.current.store(Arc::new(config));
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, "TLS reload refused; still serving the previous certificate");
                Err(err)
            }
        }
    }

    /// Reloads when one of the files changed since the last attempt; `None` when none did.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let ids = file_ids(&self.files);
        if *self.seen.lock().expect("not poisoned") == ids {
            return None;
        }
        Some(self.reload())
    }

    /// Polls the files every `interval` and reloads when one is replaced. Runs until dropped.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let tls = self.clone();
            let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
        }
    }

    /// Completes the TLS handshake on `stream` with the configuration current now, within
    /// `timeout` (a client that never finishes its handshake must not hold a connection slot).
    pub async fn accept(&self, stream: TcpStream, timeout: Duration) -> io::Result<MaybeTls> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Ok(MaybeTls::Tls(Box::new(stream))),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

fn file_ids(files: &TlsFiles) -> FileIds {
    [
        FileId::of(&files.cert).ok(),
        FileId::of(&files.key).ok(),
        files.client_ca.as_deref().and_then(|p| FileId::of(p).ok()),
    ]
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| TlsError::Pem {
        what: "private key",
        path: path.to_owned(),
        reason: source,
    })
}

/// A client configuration for probing a server (`healthcheck`): TLS 1.2 and 1.3, ring provider,
/// trusting the certificates in `ca` (a CA, or the server's own certificate, self-signed or
/// not), or the system's trust store without one; presenting `identity` (certificate chain and
/// key files) to servers that require a client certificate.
pub fn client_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, TlsError> {
    let rustls_error = |context| move |reason| TlsError::Rustls { context, reason };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let mut pinned = Vec::new();
    match ca {
        Some(path) => {
            for cert in read_certs("CA certificate", path)? {
                // A certificate webpki cannot use as a trust anchor can still be pinned.
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
        }
        // Unreadable entries of the system store are skipped, as browsers and curl do.
        None => {
            let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    // No trust anchor at all (no usable CA in the file, or an empty system store): only pinned
    // certificates can pass.
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .ok();
    let signatures = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error("TLS versions"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki {
            pinned,
            webpki,
            signatures,
        }));
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs("client certificate", cert)?, read_key(key)?)
            .map_err(rustls_error("client certificate and key")),
    }
}

/// Accepts a server certificate that is byte for byte one of `pinned` (the operator named that
/// very certificate), otherwise verifies it as any client does (chain to a trusted CA, name,
/// validity). `openssl req -x509` makes self-signed certificates marked as CAs, which webpki
/// refuses as a server's own certificate; pinning is how curl's `--cacert` accepts them too.
/// The handshake signature is always checked, so the server must hold the certificate's key.
#[derive(Debug)]
struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    /// `None` without any trust anchor.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    signatures: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|cert| cert.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.signatures)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.signatures)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_schemes()
    }
}

/// Builds a server configuration: TLS 1.2 and 1.3 only, ring provider, ALPN, and client
/// verification when a client CA is given.
fn build_config(files: &TlsFiles, http2: bool) -> Result<ServerConfig, TlsError> {
    let certs = read_certs("certificate", &files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Rustls {
            context: "TLS versions",
            reason: source,
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("client CA", path)? {
                roots.add(cert).map_err(|source| TlsError::Rustls {
                    context: "client CA certificate",
                    reason: source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| TlsError::ClientCa {
                    path: path.clone(),
                    reason: source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    // with_single_cert checks that the key matches the certificate's public key.
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Rustls {
            context: "certificate and key",
            reason: source,
        })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// An accepted connection, plain or TLS, as one I/O type for hyper.
pub enum MaybeTls {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
