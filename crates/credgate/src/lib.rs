//! The `credgate` binary's library side: the operator tooling commands (`replay`, `dialects`,
//! `import`, `export`, ...).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod dialects_cmd;
pub mod embedded;
pub mod junit;
pub mod replay;
pub mod tooling;
pub mod transfer;
