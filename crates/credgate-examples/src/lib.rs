//! credgate-examples: the vendor examples (`dialects/<name>/examples/*.toml`) as contracts.
//! [`runner`] replays one against a gateway over HTTP, [`isolate`] prefixes the identities it
//! creates so a long-running deployment can take every example twice, and [`scratch`] proves a
//! dialect reload by replaying its examples on throwaway gateways. `credgate replay`, the
//! server's reload gate and the test suite all use this crate.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod isolate;
pub mod runner;
pub mod scratch;
