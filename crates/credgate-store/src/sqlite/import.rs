//! Bulk import and export of users with their hashes.

include!("../shared/import.rs");
