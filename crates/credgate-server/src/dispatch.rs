//! The dialect handler: match -> extract -> one core call -> render. No vendor knowledge here.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use credgate_core::RequestMeta;
use credgate_dialect::{
    HttpRequest as EngineRequest, HttpResponse as EngineResponse, Lookup, RequestView,
};
use serde_json::json;

use crate::app::AppState;
use crate::telemetry::request_id;

pub async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let dialects = state.dialects();
    let m = match dialects.lookup(req.method().as_str(), req.path()) {
        Lookup::Found(m) => m,
        Lookup::MethodNotAllowed(allowed) => {
            return HttpResponse::MethodNotAllowed()
                .insert_header(("Allow", allowed.join(", ")))
                .json(json!({"type": "about:blank", "title": "Method Not Allowed", "status": 405}))
        }
        Lookup::NotFound => {
            return HttpResponse::NotFound()
                .json(json!({"type": "about:blank", "title": "Not Found", "status": 404}))
        }
    };
    let engine_req = EngineRequest {
        method: req.method().as_str().to_owned(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        headers: req
            .headers()
            .iter()
            .filter_map(|(n, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (n.as_str().to_owned(), v.to_owned()))
            })
            .collect(),
        body: body.to_vec(),
    };
    let meta = RequestMeta {
        dialect: m.dialect.name.clone(),
        request_id: request_id(&req),
        client_addr: req.peer_addr().map(|a| a.ip().to_string()),
    };
    let dialect = &m.dialect;
    let rendered = match dialect.extract(&m, &engine_req, meta) {
        Ok(extracted) => match state.core.execute(extracted.request).await {
            Ok(outcome) => dialect.render_outcome(&m, &extracted.view, &outcome),
            Err(error) => dialect.render_error(Some(&m), &extracted.view, &error),
        },
        Err(error) => {
            let view = RequestView {
                path: m.params.iter().cloned().collect(),
                ..RequestView::default()
            };
            dialect.render_error(Some(&m), &view, &error)
        }
    };
    to_actix(rendered)
}

fn to_actix(r: EngineResponse) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status).body(r.body);
    let headers = response.headers_mut();
    for (name, value) in r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(n, v);
        }
    }
    response
}
