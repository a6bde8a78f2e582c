//! Logging and request ids. Log lines carry method, path, status and latency; never the query
//! string, headers or bodies, where tokens and passwords travel.

use std::time::Instant;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use actix_web::{HttpMessage, HttpRequest};
use tracing_subscriber::EnvFilter;

#[derive(Clone)]
struct RequestId(String);

/// The id of the request being served (taken from `X-Request-Id` or generated).
pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// Accepts a caller's id only when it is short and printable, so it cannot forge log lines.
fn usable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Total size of request header names and values accepted; more is answered 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The 431 answer to a request whose header names and values pass [`MAX_HEADER_BYTES`].
pub(crate) fn refuse_large_headers(req: &ServiceRequest) -> Option<HttpResponse> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if header_bytes <= MAX_HEADER_BYTES {
        return None;
    }
    tracing::info!(path = %req.path(), header_bytes, "request headers too large");
    Some(
        HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"type": "about:blank", "title": "Request Header Fields Too Large", "status": 431})),
    )
}

/// The request's id (the caller's `X-Request-Id` when usable, else a fresh one), kept in the
/// request for [`request_id`].
pub(crate) fn assign_id(req: &ServiceRequest) -> String {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map(str::to_owned)
        .unwrap_or_else(crate::request_id::generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    id
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// What every answered request gets: its access line, and the response headers `X-Request-Id`
/// (`id`), `X-Content-Type-Options: nosniff`, and no `Server`.
pub(crate) fn finish<B>(res: &mut ServiceResponse<B>, id: String, started: Instant) {
    access_line(res, &id, started);
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::try_from(id) {
        headers.insert(X_REQUEST_ID, v);
    }
    // A web server's name and version tell an attacker what to try.
    headers.remove(actix_web::http::header::SERVER);
    // Bodies are data (JSON, plain text): never let a browser sniff them into HTML.
    headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
}

/// The request's access line at `info`: hand-formatted into the buffered log of the binary
/// (`access_log`), else (in-process gateways) through `tracing`, with the same fields.
fn access_line<B>(res: &ServiceResponse<B>, id: &str, started: Instant) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let latency_us = started.elapsed().as_micros() as u64;
    let Some(sink) = crate::access_log::sink() else {
        tracing::info!(
            request_id = %id, method = %res.request().method(), path = %res.request().path(),
            status = res.status().as_u16(), latency_us, "request"
        );
        return;
    };
    sink.access(&crate::access_log::AccessLine {
        request_id: id,
        method: res.request().method().as_str(),
        path: res.request().path(),
        status: res.status().as_u16(),
        latency_us,
    });
}

/// Installs the global subscriber: readable text by default, JSON lines with `json`.
pub fn init_logging(format: &str, level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: written to a file or a pipe they are noise, and
    // formatting them was a fifth of a /healthz request's instructions.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Every line goes through one buffer in front of stderr, where the access lines wait for
    // the next write (see `access_log`); only the first gateway of a process installs it.
    let json = format == "json";
    let Some(sink) = crate::access_log::install(json) else {
        return;
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(crate::access_log::EventWriter(sink));
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Writes out the buffered access lines; `credgate` calls it before it exits.
pub fn flush_logs() {
    crate::access_log::flush();
}
