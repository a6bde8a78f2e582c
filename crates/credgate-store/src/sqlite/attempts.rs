//! Failure counters for guessing limits, updated by one atomic upsert each.

include!("../shared/attempts.rs");
