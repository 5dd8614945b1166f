//! Bulk audit (in progress).
