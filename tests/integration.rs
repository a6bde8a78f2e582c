//! The black-box suite: the real server on loopback ports, real SQLite files, real HTTP.

mod common;
mod contracts;
mod foundation;
mod extra_dialect;
mod binary;
mod core_service;
