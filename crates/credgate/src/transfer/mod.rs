//! Bulk transfer of users with their bcrypt hashes: `credgate import` and `credgate export`.

pub mod auth0;
pub mod bounded;
pub mod export;
pub mod format;
pub mod import;
