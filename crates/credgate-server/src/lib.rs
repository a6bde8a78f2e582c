//! credgate-server: the actix-web wiring. Handlers parse, make one core call, and render;
//! credential rules live in credgate-core, vendor conventions in the dialect files.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod access_log;
pub mod admin;
pub mod app;
pub mod client_addr;
mod deadline;
pub mod digest_key;
mod dispatch;
pub mod extract;
mod gate;
pub mod legacy_hashes;
pub mod listeners;
pub mod metrics;
pub mod native;
mod native_openapi;
pub mod notify;
pub mod openapi;
pub mod problem;
pub mod reload;
mod request_id;
pub mod settings;
pub mod shadow;
pub mod shadow_exchange;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use app::{
    build_core, build_state, build_state_with, configure, run, run_with, serve, AppState,
    StartError,
};
pub use settings::Settings;
