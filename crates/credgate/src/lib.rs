//! The `credgate` binary's library side: the example runner shared by the test suite, the
//! gateway's checks and `credgate replay`, and the operator tooling commands.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod dialects_cmd;
pub mod dialects_reload;
pub mod examples;
pub mod isolate;
pub mod junit;
pub mod reload;
pub mod replay;
pub mod tooling;
pub mod transfer;
