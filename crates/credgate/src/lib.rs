//! The `credgate` binary's library side: the contract runner shared by the test suite and
//! (later) `credgate replay`.

pub mod contract;
pub mod reload;
pub mod transfer;
