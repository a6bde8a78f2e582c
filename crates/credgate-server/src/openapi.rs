//! `GET /openapi/native.json` and `GET /openapi/{dialect}.json`: the native and admin APIs'
//! document, and each served dialect's, generated from the dialect set serving right now.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;

/// The native and admin APIs' document.
pub fn native() -> serde_json::Value {
    crate::native_openapi::document()
}

pub async fn document(name: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let name = name.into_inner();
    if name == "native" {
        return HttpResponse::Ok().json(native());
    }
    let dialects = state.dialects();
    match dialects.get(&name) {
        Some(d) => HttpResponse::Ok().json(credgate_dialect::openapi::document(d)),
        None => HttpResponse::NotFound()
            .content_type("application/problem+json")
            .json(json!({
                "type": "urn:credgate:error:not_found",
                "title": "Not Found",
                "status": 404,
                "detail": format!("no dialect named `{name}` is served"),
            })),
    }
}
