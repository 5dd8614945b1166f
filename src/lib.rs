//! hibp-mirror: a self-hosted, offline mirror of the Have I Been Pwned *Pwned Passwords* range API.
//!
//! An importer turns the official dump (`HASH:COUNT` lines, SHA-1 or NTLM) into one sorted,
//! memory-mapped index file sharded by the 5-hex prefix; lookups and `/range` bodies are served by
//! binary search in that mapping.
//!
//! # Layout
//! - [`hash`]: hash kinds, full hashes and 5-hex prefixes; hex parsing and formatting, no I/O.
//! - [`format`](mod@format): the index file format; the only module that knows the index file's byte layout.
//! - [`mmap`]: the crate's `unsafe` code for the mapping: mapping a file read-only (with its
//!   contract), the page-cache residency check and the read lease on the mapped file;
//!   [`IndexBytes`], index bytes mapped or owned. The only other `unsafe` code is
//!   `server::uring`, which lends read buffers to the kernel (io_uring).
//! - [`index`]: the read side: open with cheap checks, `range`, `lookup`, full `verify`.
//! - `decimal` (private): counts written as decimal text, shared by `/range` bodies and `diff`
//!   dumps.
//! - [`diff`]: what changed between two indexes (figures and the added/changed records), reading
//!   only the prefixes whose content tags differ.
//! - [`writer`]: the write side: encoded blocks in, a complete file committed atomically.
//! - [`import`]: dump files, gzip, stdin and per-prefix directories in; an index out.
//! - [`sample`]: the bundled sample corpus from `data/`, as in-memory indexes.
//! - [`severity`]: breach counts mapped to tiers (`none` ... `critical`) with configurable thresholds.
//! - [`server`]: the HTTP server (`/range`, `/checkhash`, `/healthz`, `/metrics`) with hot reload,
//!   direct cold reads (`server::direct`, on the blocking pool or io_uring: `server::uring`), and
//!   the `/healthz` client the `healthcheck` subcommand uses.
//! - [`sync`]: mirror an upstream range API into a resumable state directory, then build an index.
//! - [`export`]: top-N and count-threshold lists, and binary fuse filters (`docs/FILTER.md`).
//! - [`audit`]: check an organisation's credential hashes (bare, `user:hash`, pwdump) in bulk:
//!   `parse` (lines), `check` (parallel lookup, reuse groups), `report` (text, JSON, CSV).
//! - [`context`]: warn when a password contains the user's name, e-mail or organisation.
//!
//! The `hibp-mirror` binary (`src/main.rs`, `src/cli/`) is only the command line: one module per
//! subcommand turns its flags into these modules' options (layout in `main.rs`'s module doc).

#![warn(missing_docs)]

pub mod audit;
pub mod context;
mod decimal;
pub mod diff;
pub mod export;
pub mod format;
pub mod hash;
pub mod import;
pub mod index;
pub mod mmap;
pub mod sample;
pub mod server;
pub mod severity;
pub mod sync;
pub mod writer;

pub use hash::{Hash, HashKind, Prefix};
pub use index::{Entry, Index, OpenError, OpenPathError, Range, VerifyError};
pub use mmap::IndexBytes;
