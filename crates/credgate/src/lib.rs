//! The `credgate` binary's library side: the operator tooling commands (`replay`, `dialects`,
//! `import`, `export`, ...).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod dialects_cmd;
pub mod embedded;
pub mod junit;
pub mod rehash;
pub mod replay;
pub mod shadow_cmd;
pub mod shadow_examples;
pub mod tooling;
pub mod transfer;

/// `credgate --version`: the package version and the git revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("CREDGATE_GIT_REVISION"),
    ")"
);
