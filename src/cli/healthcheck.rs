//! `hibp-mirror healthcheck`: probe a server's `/healthz` (the client lives in the library, next
//! to the server: [`hibp_mirror::server::healthcheck`]).

use anyhow::Result;
use std::path::PathBuf;

use hibp_mirror::server::healthcheck::{self, HttpsOptions, DEFAULT_TIMEOUT, DEFAULT_URL};

/// Exit 0 if the server at URL answers 200 (for container HEALTHCHECKs; no curl needed).
#[derive(clap::Args)]
pub struct HealthcheckArgs {
    /// The URL to probe: http://HOST:PORT/PATH, or https:// for a server run with --tls-cert.
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL, env = "HIBP_MIRROR_HEALTHCHECK_URL")]
    url: String,

    /// For https: trust the certificates in this PEM file (the server's CA, or its self-signed
    /// certificate) instead of the system's trust store. The URL's host must be a name or
    /// address the server's certificate holds, unless the file holds that very certificate
    /// (then pinned).
    #[arg(long, value_name = "FILE", env = "HIBP_MIRROR_HEALTHCHECK_CA_CERT")]
    ca_cert: Option<PathBuf>,

    /// For https to a server that requires client certificates (--tls-client-ca): the
    /// certificate chain to present (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_key",
        env = "HIBP_MIRROR_HEALTHCHECK_CLIENT_CERT"
    )]
    client_cert: Option<PathBuf>,

    /// The private key of --client-cert (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_cert",
        env = "HIBP_MIRROR_HEALTHCHECK_CLIENT_KEY"
    )]
    client_key: Option<PathBuf>,
}

/// Probes the URL; any answer but 200 (or none within the timeout) is an error.
pub fn run(args: HealthcheckArgs) -> Result<()> {
    let https = HttpsOptions {
        ca_cert: args.ca_cert,
        client_identity: args.client_cert.zip(args.client_key),
    };
    Ok(healthcheck::probe(&args.url, DEFAULT_TIMEOUT, &https)?)
}
