//! The append-only audit trail.

include!("../shared/audit.rs");
