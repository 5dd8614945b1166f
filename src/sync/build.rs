//! Builds an index from the bodies in a sync state directory, atomically.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::body::{parse_body, BodyError};
use super::state::{StateDir, StateError};
use crate::format::{self, Header};
use crate::hash::{HashKind, Prefix};
use crate::writer::{AtomicFile, EncodedBlock, IndexWriter};

/// Prefixes parsed by one rayon task; a block of this many prefixes holds ~40 MB on the real
/// corpus, and a few of them are in memory at once.
const PREFIXES_PER_BLOCK: u32 = 1024;

/// Entries per prefix on the real corpus, to size blocks up front.
const TYPICAL_ENTRIES_PER_PREFIX: usize = 2_000;

/// Why an index could not be built from the state directory.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Some prefixes have no stored body and gaps were not allowed.
    #[error("{} prefixes have no stored range (first: {}); re-run sync, or pass --allow-gaps to build without them", missing.len(), list(missing))]
    Missing {
        /// The missing prefixes, in order.
        missing: Vec<Prefix>,
    },
    /// A stored body could not be read back; its file was removed so the next sync fetches it.
    #[error("stored range {prefix} is damaged ({reason}); it was removed, re-run sync to fetch it again")]
    Damaged {
        /// The prefix.
        prefix: Prefix,
        /// What was wrong.
        reason: String,
    },
    /// Reading the state directory failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Writing the index failed.
    #[error("writing index {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// First few prefixes of a list, for messages.
fn list(prefixes: &[Prefix]) -> String {
    const SHOWN: usize = 10;
    let mut s: Vec<String> = prefixes.iter().take(SHOWN).map(|p| p.to_string()).collect();
    if prefixes.len() > SHOWN {
        s.push("...".into());
    }
    s.join(", ")
}

/// What [`build_index`] wrote.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The header of the new index.
    pub header: Header,
    /// Prefixes left empty because no body was stored (only with `allow_gaps`).
    pub gaps: Vec<Prefix>,
}

/// Prefixes in `range` that have no stored body.
pub fn missing_prefixes(state: &StateDir, range: &RangeInclusive<u32>) -> Vec<Prefix> {
    let mut missing: Vec<Prefix> = range
        .clone()
        .into_par_iter()
        .filter_map(Prefix::new)
        .filter(|&p| !state.contains(p))
        .collect();
    missing.sort_unstable();
    missing
}

/// Builds the index at `output` from the stored bodies of `range` (prefixes outside it stay
/// empty). Refuses when a prefix in `range` is missing unless `allow_gaps`. `on_progress` is
/// called with the number of prefixes done so far.
pub fn build_index(
    state: &StateDir,
    kind: HashKind,
    range: RangeInclusive<u32>,
    output: &Path,
    label: &str,
    allow_gaps: bool,
    on_progress: &(dyn Fn(u64) + Sync),
) -> Result<BuildReport, BuildError> {
    let gaps = missing_prefixes(state, &range);
    if !gaps.is_empty() && !allow_gaps {
        return Err(BuildError::Missing { missing: gaps });
    }
    let write_err = |source| BuildError::Write {
        path: output.to_owned(),
        source,
    };
    let atomic = AtomicFile::create(output).map_err(write_err)?;
    let mut writer = IndexWriter::new(atomic.file(), kind).map_err(write_err)?;
    let starts: Vec<u32> = range.clone().step_by(PREFIXES_PER_BLOCK as usize).collect();
    let batch = rayon::current_num_threads().max(1) * 2;
    let mut done = 0u64;
    for starts in starts.chunks(batch) {
        let blocks: Vec<Result<EncodedBlock, BuildError>> = starts
            .par_iter()
            .map(|&start| {
                let end = start
                    .saturating_add(PREFIXES_PER_BLOCK - 1)
                    .min(*range.end());
                encode_prefixes(state, kind, start..=end)
            })
            .collect();
        for (block, &start) in blocks.into_iter().zip(starts) {
            writer.push_block(&block?).map_err(write_err)?;
            let end = start
                .saturating_add(PREFIXES_PER_BLOCK - 1)
                .min(*range.end());
            done += u64::from(end - start + 1);
            on_progress(done);
        }
    }
    let (_, header) = writer
        .finish(label, format::now_unix())
        .map_err(write_err)?;
    atomic.commit(true).map_err(write_err)?;
    Ok(BuildReport { header, gaps })
}

/// Decodes the stored bodies of `prefixes` into one block; missing prefixes are skipped (the
/// gap check happened before).
fn encode_prefixes(
    state: &StateDir,
    kind: HashKind,
    prefixes: RangeInclusive<u32>,
) -> Result<EncodedBlock, BuildError> {
    let capacity = (prefixes.end() - prefixes.start() + 1) as usize * TYPICAL_ENTRIES_PER_PREFIX;
    let mut block = EncodedBlock::with_capacity(kind, capacity.min(1 << 22));
    for prefix in prefixes.filter_map(Prefix::new) {
        let damaged = |reason: String| {
            let _ = state.remove(prefix);
            BuildError::Damaged { prefix, reason }
        };
        let body = match state.read_body(prefix) {
            Ok(Some(body)) => body,
            Ok(None) => continue,
            Err(StateError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Err(damaged(source.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        // The body was validated before it was stored and the gzip CRC just matched, so a fault
        // here means the file was altered by something else. The half-filled block is dropped
        // with the whole build, so it never reaches an index.
        parse_body(kind, prefix, &body, |hash, count| block.push(hash, count))
            .map_err(|e: BodyError| damaged(e.to_string()))?;
    }
    block.compute_interior_tags();
    Ok(block)
}
