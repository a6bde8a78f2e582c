//! The native canonical API: OAuth 2.0 token endpoint and a plain password-change resource.

use actix_web::{web, HttpRequest, HttpResponse};
use credgate_core::{
    Access, ChangePassword, ClientCredentials, Command, Error, FieldReason, Grant, Outcome,
    Password, Request, RequestMeta, SecretToken, Subject, TokenKind, TokenRequest,
};
use credgate_dialect::authorization::{basic_credentials, bearer_token};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::problem::{json_body, problem};
use crate::telemetry::request_id;

pub fn meta(req: &HttpRequest, label: &str) -> RequestMeta {
    RequestMeta {
        dialect: label.into(),
        request_id: request_id(req),
        client_addr: crate::client_addr::of(req),
    }
}

#[derive(Deserialize, Default)]
struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<Password>,
    client_id: Option<String>,
    client_secret: Option<Password>,
    refresh_token: Option<SecretToken>,
}

/// An RFC 6749 section 5.2 error.
fn oauth_error(status: u16, code: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status)
        .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    // The canonical kind behind each RFC 6749 code, for the metrics.
    let kind = match code {
        "invalid_grant" => "invalid_credentials",
        "invalid_client" => "invalid_client",
        _ => "invalid_request",
    };
    let mut response = HttpResponse::build(status);
    response
        .extensions_mut()
        .insert(crate::metrics::OutcomeLabel(kind));
    response
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "error": code }))
}

/// `POST /v1/token`: password, client_credentials and refresh_token grants, form or JSON.
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let parsed: Result<TokenForm, ()> = if is_json {
        serde_json::from_slice(&body).map_err(|_| ())
    } else {
        serde_urlencoded::from_bytes(&body).map_err(|_| ())
    };
    let Ok(mut form) = parsed else {
        return oauth_error(400, "invalid_request");
    };
    if let Some((id, secret)) = basic_auth(&req) {
        form.client_id = Some(id);
        form.client_secret = Some(secret);
    }
    let grant = match form.grant_type.as_deref() {
        Some("password") => match (form.username, form.password) {
            (Some(username), Some(password)) => Grant::Password { username, password },
            _ => return oauth_error(400, "invalid_request"),
        },
        Some("client_credentials") => Grant::ClientCredentials,
        Some("refresh_token") => match form.refresh_token {
            Some(refresh_token) => Grant::Refresh { refresh_token },
            None => return oauth_error(400, "invalid_request"),
        },
        Some(_) => return oauth_error(400, "unsupported_grant_type"),
        None => return oauth_error(400, "invalid_request"),
    };
    let client = form.client_id.map(|client_id| ClientCredentials {
        client_id,
        secret: form.client_secret.unwrap_or_default(),
    });
    let request = Request {
        meta: meta(&req, "native"),
        app_key: None,
        access: Access::Public,
        command: Command::IssueToken(TokenRequest {
            client,
            client_required: false,
            grant,
            with_refresh: true,
        }),
    };
    match state.core.execute(request).await {
        Ok(Outcome::Token(t)) => {
            let mut body = json!({"access_token": t.access.expose(), "token_type": "Bearer", "expires_in": t.expires_in()});
            if let Some(refresh) = &t.refresh {
                body["refresh_token"] = json!(refresh.expose());
            }
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(body)
        }
        Ok(_) => problem(&Error::Internal),
        Err(Error::InvalidCredentials) => oauth_error(400, "invalid_grant"),
        Err(Error::InvalidClient) => oauth_error(401, "invalid_client"),
        Err(Error::InvalidRequest { .. } | Error::MalformedRequest(_)) => {
            oauth_error(400, "invalid_request")
        }
        Err(e) => problem(&e),
    }
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: Option<Password>,
    new_password: Option<Password>,
}

/// `PUT /v1/users/{id}/password` with a Bearer user token -> 204. `{id}` may be `me`.
pub async fn change_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Authenticate before reading the body, as the dialects do: a caller without a token learns
    // nothing about what a valid body looks like.
    let Some(token) = bearer(&req) else {
        return problem(&Error::Unauthenticated);
    };
    let change: PasswordChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return problem(&Error::MalformedRequest(format!(
                "invalid JSON at line {} column {}",
                e.line(),
                e.column()
            )))
        }
    };
    let mut missing = Vec::new();
    if change
        .current_password
        .as_ref()
        .is_none_or(|p| p.is_empty())
    {
        missing.push(credgate_core::FieldProblem::new(
            "current_password",
            FieldReason::Missing,
        ));
    }
    if change.new_password.as_ref().is_none_or(|p| p.is_empty()) {
        missing.push(credgate_core::FieldProblem::new(
            "new_password",
            FieldReason::Missing,
        ));
    }
    if !missing.is_empty() {
        return problem(&Error::InvalidRequest { problems: missing });
    }
    let id = path.into_inner();
    let subject = if id == "me" {
        Subject::Caller
    } else {
        Subject::Id(id)
    };
    let request = Request {
        meta: meta(&req, "native"),
        app_key: None,
        access: Access::Token {
            token: Some(token),
            kind: TokenKind::User,
        },
        command: Command::ChangePassword(ChangePassword {
            subject,
            current: change.current_password.unwrap_or_default(),
            new: change.new_password.unwrap_or_default(),
            confirm: None,
        }),
    };
    match state.core.execute(request).await {
        Ok(_) => HttpResponse::NoContent()
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(e) => problem(&e),
    }
}

pub fn bearer(req: &HttpRequest) -> Option<SecretToken> {
    bearer_token(req.headers().get("authorization")?.to_str().ok()?)
}

fn basic_auth(req: &HttpRequest) -> Option<(String, Password)> {
    let (id, secret) = basic_credentials(req.headers().get("authorization")?.to_str().ok()?)?;
    Some((id, Password::new(secret)))
}

/// A required string field, or the problem naming it.
#[allow(clippy::result_large_err)] // the error is the response itself
fn required<T>(
    value: Option<T>,
    field: &str,
    empty: impl Fn(&T) -> bool,
) -> Result<T, HttpResponse> {
    match value {
        Some(v) if !empty(&v) => Ok(v),
        _ => Err(problem(&Error::invalid(field, FieldReason::Missing))),
    }
}

async fn run_public(
    req: &HttpRequest,
    state: &AppState,
    command: Command,
    ok: HttpResponse,
) -> HttpResponse {
    let request = Request {
        meta: meta(req, "native"),
        app_key: None,
        access: Access::Public,
        command,
    };
    match state.core.execute(request).await {
        Ok(_) => ok,
        Err(e) => problem(&e),
    }
}

#[derive(Deserialize)]
struct ResetRequestBody {
    username: Option<String>,
}

/// `POST /v1/password-resets` `{"username"}` -> 202, whether or not the user exists.
pub async fn request_reset(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let input: ResetRequestBody = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let username = match required(input.username, "username", |s| s.trim().is_empty()) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ok = HttpResponse::Accepted()
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    run_public(&req, &state, Command::RequestReset { username }, ok).await
}

#[derive(Deserialize)]
struct ResetTokenBody {
    username: Option<String>,
    token: Option<SecretToken>,
    new_password: Option<Password>,
}

/// `POST /v1/password-resets/validate` `{"username","token"}` -> 204 or 400.
pub async fn validate_reset(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let input: ResetTokenBody = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = match required(input.token, "token", SecretToken::is_empty) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ok = HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    run_public(
        &req,
        &state,
        Command::ValidateReset {
            username: input.username,
            token,
        },
        ok,
    )
    .await
}

/// `POST /v1/password-resets/complete` `{"username","token","new_password"}` -> 204.
pub async fn complete_reset(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let input: ResetTokenBody = match json_body(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let token = match required(input.token, "token", SecretToken::is_empty) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let new = match required(input.new_password, "new_password", Password::is_empty) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let command = Command::ResetPassword {
        username: input.username,
        token,
        new,
        confirm: None,
    };
    let ok = HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    run_public(&req, &state, command, ok).await
}
