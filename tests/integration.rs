//! The black-box suite: the real server on loopback ports, real SQLite files, real HTTP.

mod binary;
mod common;
mod contracts;
mod core_service;
mod db_outage;
mod dialects_cli;
mod extra_dialect;
mod foundation;
mod guess_limits;
mod import;
mod listeners;
mod metrics;
mod multi_instance;
mod openapi;
mod reload;
mod replay;
mod reset;
mod reset_abuse;
mod security_attacks;
mod security_common;
mod security_fuzz;
mod security_leaks;
mod upstream_dialects;
mod upstream_migrate;
mod upstream_passthrough;
