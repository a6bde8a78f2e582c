//! Logging and request ids. Log lines carry method, path, status and latency; never the query
//! string, headers or bodies, where tokens and passwords travel.

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
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

pub async fn request_ids(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    let metrics_on = crate::metrics::enabled_for(&req);
    let started = Instant::now();
    if header_bytes > MAX_HEADER_BYTES {
        tracing::info!(path = %req.path(), header_bytes, "request headers too large");
        let refusal = HttpResponse::build(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .insert_header(("Cache-Control", "no-store"))
            .json(serde_json::json!({"type": "about:blank", "title": "Request Header Fields Too Large", "status": 431}));
        let res = req.into_response(refusal);
        crate::metrics::observe(&res, metrics_on, started);
        return Ok(res.map_into_right_body());
    }
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| usable(v))
        .map(str::to_owned)
        .unwrap_or_else(crate::request_id::generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    // A web server's name and version tell an attacker what to try.
    res.headers_mut().remove("server");
    // Bodies are data (JSON, plain text): never let a browser sniff them into HTML.
    res.headers_mut().insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    access_line(&res, &id, started);
    crate::metrics::observe(&res, metrics_on, started);
    Ok(res.map_into_left_body())
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
