//! The black-box suite: the real server on loopback ports, real SQLite files, real HTTP.

mod binary;
mod common;
mod core_service;
mod db_outage;
mod dialects_cli;
mod examples;
mod extra_dialect;
mod faults;
mod foundation;
mod import;
mod listeners;
mod metrics;
mod multi_instance;
mod openapi;
mod reload;
mod replay;
mod reset;
mod security_attacks;
mod security_common;
mod security_fuzz;
mod security_hygiene;
mod security_leaks;
mod security_sessions;
mod upstream_dialects;
mod upstream_migrate;
mod upstream_passthrough;
