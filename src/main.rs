//! `hibp-mirror`: the command-line front end. Parses flags, turns them into library calls, and
//! reports errors as one line with a non-zero exit code. All logic lives in the library; this
//! binary is the only place that uses `anyhow`.
//!
//! # Layout
//! - `main.rs`: parse, dispatch, print the error (this file).
//! - `cli/mod.rs`: the `Cli` parser, the `Command` enum (one variant per subcommand) and its
//!   dispatch; shared helpers: `open_index`, the one `progress_bar`, `Seconds` for durations,
//!   the `HIBP_MIRROR_*` index variables and `announce_index`.
//! - `cli/<subcommand>.rs`: one per subcommand (`import`, `check`, `info` (info and verify),
//!   `serve`, `sync`, `audit`, `healthcheck`), each owning its clap `Args` struct (whose doc
//!   comment is the subcommand's help), the conversion of those flags into the library's options
//!   in one place, and a `run` function.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hibp-mirror: {err:#}");
            ExitCode::FAILURE
        }
    }
}
