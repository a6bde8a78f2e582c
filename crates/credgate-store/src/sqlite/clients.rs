//! API clients and application keys.

include!("../shared/clients.rs");
