//! credgate-dialect: the dialect engine. A dialect is data (`dialects/<name>/dialect.toml`):
//! routes, auth scheme, field names and response templates. This crate loads those files,
//! matches requests to routes, extracts canonical commands and renders canonical outcomes
//! and errors in the vendor's exact conventions. It has no per-vendor code and no web server.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod authorization;
mod body;
mod compile;
pub mod dialect;
pub mod example;
pub mod extract;
pub mod http;
mod json_body;
pub mod load;
pub mod openapi;
mod parse;
mod render;
pub mod route;
mod route_index;
pub mod router;
mod spans;
pub mod spec;
mod token_pattern;
mod unmatched;
pub mod upstream;

pub use dialect::{Dialect, DialectSet, Lookup, Mount, RouteMatch};
pub use extract::{csrf_value, Extracted, RequestView};
pub use http::{HttpRequest, HttpResponse};
pub use load::{DialectSource, LoadError, LoadOptions};
