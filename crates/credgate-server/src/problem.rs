//! The native API's error format: RFC 9457 problem details, one stable `type` per canonical
//! error. This table is the native "dialect"'s error mapping, in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use credgate_core::Error;
use serde_json::json;

/// A canonical error on the native or admin API: handlers return `Result<_, Problem>` and
/// actix renders it with [`problem`].
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Problem(#[from] pub Error);

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        status_of(&self.0)
    }

    fn error_response(&self) -> HttpResponse {
        problem(&self.0)
    }
}

pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::MalformedRequest(_)
        | Error::InvalidRequest { .. }
        | Error::PolicyViolation { .. } => StatusCode::BAD_REQUEST,
        Error::ResetTokenInvalid | Error::InvalidCredentials => StatusCode::BAD_REQUEST,
        Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Error::InvalidClient | Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden | Error::ExternallyManaged | Error::UnknownApp | Error::CsrfRejected => {
            StatusCode::FORBIDDEN
        }
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unavailable | Error::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `application/problem+json` for a canonical error.
pub fn problem(error: &Error) -> HttpResponse {
    let status = status_of(error);
    let mut body = json!({
        "type": format!("urn:credgate:error:{}", error.kind()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": error.to_string(),
    });
    match error {
        Error::InvalidRequest { problems } => body["errors"] = json!(problems),
        Error::PolicyViolation { rules } => {
            body["rules"] = json!(rules
                .iter()
                .map(|r| json!({"rule": r.name(), "message": r.message()}))
                .collect::<Vec<_>>())
        }
        _ => {}
    }
    let mut response = HttpResponse::build(status);
    response
        .extensions_mut()
        .insert(crate::metrics::OutcomeLabel(error.kind()));
    response
        .content_type("application/problem+json")
        .insert_header(("Cache-Control", "no-store"));
    match error {
        Error::Unauthenticated => {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        Error::RateLimited { retry_after } | Error::Overloaded { retry_after } => {
            response.insert_header(("Retry-After", retry_after.to_string()));
        }
        Error::Unavailable => {
            response.insert_header(("Retry-After", "5"));
        }
        _ => {}
    }
    response.json(body)
}

/// Parses a JSON body, or the 400 problem saying where it broke. The message gives only line
/// and column: serde's own text can quote a value, and a value may be a password.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            "a field is missing or has the wrong type"
        } else {
            "invalid JSON"
        };
        Problem(Error::MalformedRequest(format!(
            "{what} at line {} column {}",
            e.line(),
            e.column()
        )))
    })
}

/// Query strings that do not parse (`?limit=abc`) get a 400 problem, not actix's plain text.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|err, _| {
        let response = problem(&Error::MalformedRequest(format!(
            "bad query string: {}",
            query_error_reason(&err)
        )));
        actix_web::error::InternalError::from_response(err, response).into()
    })
}

/// Which parameter broke, without echoing its value.
fn query_error_reason(err: &actix_web::error::QueryPayloadError) -> String {
    let text = err.to_string();
    // serde_urlencoded's messages are "invalid digit found in string" and the like; they name
    // no value, but keep the message short and generic anyway.
    text.rsplit(": ").next().unwrap_or("invalid").to_owned()
}
