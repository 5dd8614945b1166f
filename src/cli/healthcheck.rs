//! `hibp-mirror healthcheck`: probe a server's `/healthz` (the client lives in the library, next
//! to the server: [`hibp_mirror::server::healthcheck`]).

use anyhow::Result;
use hibp_mirror::server::healthcheck::{self, DEFAULT_TIMEOUT, DEFAULT_URL};

/// Exit 0 if the server at URL answers 200 (for container HEALTHCHECKs; no curl needed).
#[derive(clap::Args)]
pub struct HealthcheckArgs {
    /// The URL to probe (plain http only).
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    url: String,
}

/// Probes the URL; any answer but 200 (or none within the timeout) is an error.
pub fn run(args: HealthcheckArgs) -> Result<()> {
    Ok(healthcheck::probe(&args.url, DEFAULT_TIMEOUT)?)
}
