//! The dialect handler: match -> extract -> one core call -> render. No vendor knowledge here.

use std::sync::Arc;

use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use credgate_core::{Error, RequestMeta};
use credgate_dialect::{
    HttpRequest as EngineRequest, HttpResponse as EngineResponse, Lookup, RequestView, RouteMatch,
};
use futures_util::StreamExt;
use serde_json::json;

use crate::app::AppState;
use crate::metrics::RequestLabels;
use crate::telemetry::request_id;

pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    dispatch_on(&req, payload, &state, None).await
}

/// Serves a request with the dialects mounted on `listener` (`None`: the main listener),
/// labelled for the metrics with its dialect, route and canonical outcome.
pub async fn dispatch_on(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    listener: Option<&str>,
) -> HttpResponse {
    // One snapshot per request: a reload swapping the set in meanwhile does not affect it.
    let dialects = state.dialects();
    let unmatched = |mut res: HttpResponse| {
        res.extensions_mut().insert(RequestLabels {
            dialect: "none".into(),
            route: "unmatched".into(),
            outcome: "not_found",
        });
        res
    };
    let m = match dialects.lookup_on(listener, req.method().as_str(), req.path()) {
        Lookup::Found(m) => m,
        Lookup::MethodNotAllowed(allowed) => {
            if let Some(res) = vendor_unmatched(req, state, &dialects, listener, &allowed) {
                return res;
            }
            return unmatched(
            HttpResponse::MethodNotAllowed()
                .insert_header(("Allow", allowed.join(", ")))
                .json(json!({"type": "about:blank", "title": "Method Not Allowed", "status": 405})),
            );
        }
        Lookup::NotFound => {
            if let Some(res) = vendor_unmatched(req, state, &dialects, listener, &[]) {
                return res;
            }
            return unmatched(
                HttpResponse::NotFound()
                    .json(json!({"type": "about:blank", "title": "Not Found", "status": 404})),
            );
        }
    };
    let (mut rendered, outcome) = serve_match(req, payload, state, &m).await;
    if m.dialect.issues_csrf_cookies() {
        (m.dialect).issue_csrf_cookie(Some(m.route()), &cookies_of(req), &mut rendered);
    }
    let mut res = to_actix(rendered, state.secure_cookies);
    res.extensions_mut().insert(RequestLabels {
        dialect: m.dialect.name.clone(),
        route: m.route().spec.name.clone(),
        outcome,
    });
    res
}

/// The answer of the dialect whose base path holds an unmatched request, in its own error
/// style (a wrong method keeps its `Allow` header); `None` leaves it to the native answer.
fn vendor_unmatched(
    req: &HttpRequest,
    state: &AppState,
    dialects: &credgate_dialect::DialectSet,
    listener: Option<&str>,
    allowed: &[String],
) -> Option<HttpResponse> {
    let view = EngineRequest {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        ..cookies_of(req)
    };
    let (dialect, rendered) = dialects.render_unmatched(listener, &view, allowed)?;
    let mut res = to_actix(rendered, state.secure_cookies);
    res.extensions_mut().insert(RequestLabels {
        dialect: dialect.name.clone(),
        route: "unmatched".into(),
        outcome: "not_found",
    });
    Some(res)
}

/// Only the cookies of a request: what deciding on a CSRF cookie needs.
fn cookies_of(req: &HttpRequest) -> EngineRequest {
    EngineRequest {
        headers: (req.headers().get_all("cookie"))
            .filter_map(ascii_text)
            .map(|v| ("cookie".to_owned(), v.to_owned()))
            .collect(),
        ..EngineRequest::default()
    }
}

/// Reads, extracts, executes and renders one matched request; also gives its outcome label.
async fn serve_match(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    m: &RouteMatch,
) -> (EngineResponse, &'static str) {
    // Read here, not by an extractor, so that a body over the limit is refused in the
    // dialect's own style.
    let body = match read_limited(req, payload, state.max_body).await {
        Ok(body) => body,
        Err(error) => {
            let view = RequestView {
                path: m.params.iter().cloned().collect(),
                ..RequestView::default()
            };
            return (m.dialect.render_error(Some(m), &view, &error), error.kind());
        }
    };
    let engine_req = EngineRequest {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(n, v)| ascii_text(v).map(|v| (n.as_str().to_owned(), v.to_owned())))
            .collect(),
        body: body.to_vec(),
    };
    let meta = RequestMeta {
        dialect: m.dialect.name.clone(),
        request_id: request_id(req),
        client_addr: crate::client_addr::of(req),
    };
    let dialect = &m.dialect;
    let request_id = meta.request_id.clone();
    match dialect.extract(m, &engine_req, meta) {
        Ok(extracted) => {
            let (result, mut after) = (state.core)
                .execute_with_afterwards(extracted.request)
                .await;
            let answer = match result {
                Ok(outcome) => (dialect.render_outcome(m, &extracted.view, &outcome), "ok"),
                Err(error) => (
                    dialect.render_error(Some(m), &extracted.view, &error),
                    error.kind(),
                ),
            };
            if let Some(records) = after.records() {
                let core = Arc::clone(&state.core);
                tokio::spawn(async move { core.complete(records).await });
            }
            if let Some(pending) = after.shadow() {
                let answered = crate::shadow::Answered {
                    matched: m,
                    view: &extracted.view,
                    request_id,
                    request: engine_req,
                    answer: answer.0.clone(),
                };
                crate::shadow::spawn_compare(
                    Arc::clone(&state.core),
                    state.shadow,
                    answered,
                    pending,
                );
            }
            answer
        }
        Err(error) => {
            let view = RequestView {
                path: m.params.iter().cloned().collect(),
                ..RequestView::default()
            };
            (dialect.render_error(Some(m), &view, &error), error.kind())
        }
    }
}

/// The whole body, or `PayloadTooLarge` as soon as it (or its announced length) passes `max`,
/// or `RequestTimeout` when the body deadline passes first.
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<web::Bytes, Error> {
    let announced = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > max) {
        return Err(Error::PayloadTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            // The body deadline ran out (see `deadline`): answered 408 in the dialect's style.
            PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                Error::RequestTimeout
            }
            _ => Error::MalformedRequest("the body could not be read".into()),
        })?;
        if body.len() + chunk.len() > max {
            return Err(Error::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The engine's answer as actix's; every cookie is marked `Secure` when `secure_cookies`.
fn to_actix(r: EngineResponse, secure_cookies: bool) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status).body(r.body);
    let headers = response.headers_mut();
    for (name, mut value) in r.headers {
        if secure_cookies && name.eq_ignore_ascii_case("set-cookie") && !is_secure(&value) {
            value.push_str("; Secure");
        }
        // The value's `String` becomes the header's bytes as it is (no copy).
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value),
        ) {
            headers.append(n, v);
        }
    }
    response
}

/// A header value as text when it is all ASCII: what `HeaderValue::to_str` gives (a parsed or
/// built `HeaderValue` holds no control bytes but tab, so only bytes over 0x7f are left to
/// refuse), checked a word at a time instead of byte by byte.
fn ascii_text(v: &HeaderValue) -> Option<&str> {
    let bytes = v.as_bytes();
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// Whether a `Set-Cookie` value already carries the `Secure` attribute.
fn is_secure(set_cookie: &str) -> bool {
    set_cookie
        .split(';')
        .skip(1)
        .any(|a| a.trim().eq_ignore_ascii_case("secure"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_text_is_to_str_for_every_header_value() {
        // Every byte a `HeaderValue` may hold, alone and next to plain text.
        for b in 0..=255u8 {
            for bytes in [vec![b], vec![b'a', b, b'z'], vec![b; 40]] {
                if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                    assert_eq!(ascii_text(&v), v.to_str().ok(), "{bytes:?}");
                }
            }
        }
    }
}
