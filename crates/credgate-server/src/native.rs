//! The native canonical API: OAuth 2.0 token endpoint and a plain password-change resource.

use actix_web::{web, HttpRequest, HttpResponse};
use credgate_core::{
    Access, ChangePassword, ClientCredentials, Command, Error, FieldProblem, FieldReason, Grant,
    Outcome, Password, Request, SecretToken, Subject, TokenKind, TokenRequest,
};
use credgate_dialect::authorization::basic_credentials;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::extract::{meta, Bearer, Json, NativeMeta};
use crate::problem::{problem, Problem};

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
    let Ok(form) = parsed else {
        return oauth_error(400, "invalid_request");
    };
    let client = client_credentials(&req, form.client_id, form.client_secret);
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
        // The native API has no second step: a two-factor user logs in through a dialect that
        // has one (Et-App); no session is issued here.
        Ok(Outcome::SecondFactorRequired { .. }) => oauth_error(400, "invalid_grant"),
        Ok(_) => problem(&Error::Internal),
        Err(Error::InvalidCredentials) => oauth_error(400, "invalid_grant"),
        Err(Error::InvalidClient) => oauth_error(401, "invalid_client"),
        Err(Error::InvalidRequest { .. } | Error::MalformedRequest(_)) => {
            oauth_error(400, "invalid_request")
        }
        Err(e) => problem(&e),
    }
}

#[derive(Deserialize, Default)]
struct RevokeForm {
    token: Option<SecretToken>,
    /// RFC 7009 lets the server ignore the hint: every kind of token is looked up.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Password>,
}

/// `POST /v1/revoke` (RFC 7009): form `token` (and `token_type_hint`), the same client
/// authentication as `/v1/token`. 200 also for unknown tokens; a refresh token ends its session.
pub async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(form) = serde_urlencoded::from_bytes::<RevokeForm>(&body) else {
        return oauth_error(400, "invalid_request");
    };
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return oauth_error(400, "invalid_request");
    };
    let client = client_credentials(&req, form.client_id, form.client_secret);
    let request = Request {
        meta: meta(&req, "native"),
        app_key: None,
        access: Access::Public,
        command: Command::RevokeToken {
            client,
            client_required: false,
            token,
        },
    };
    match state.core.execute(request).await {
        Ok(_) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        Err(Error::InvalidClient) => oauth_error(401, "invalid_client"),
        Err(e) => problem(&e),
    }
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: Option<Password>,
    new_password: Option<Password>,
}

/// `PUT /v1/users/{id}/password` with a Bearer user token -> 204. `{id}` may be `me`.
pub async fn change_password(
    Bearer(token): Bearer,
    NativeMeta(meta): NativeMeta,
    path: web::Path<String>,
    Json(change): Json<PasswordChange>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let blank = |p: &Option<Password>| p.as_ref().is_none_or(|p| p.is_empty());
    let missing: Vec<FieldProblem> = [
        ("current_password", &change.current_password),
        ("new_password", &change.new_password),
    ]
    .into_iter()
    .filter(|(_, value)| blank(value))
    .map(|(field, _)| FieldProblem::new(field, FieldReason::Missing))
    .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidRequest { problems: missing }.into());
    }
    let id = path.into_inner();
    let subject = if id == "me" {
        Subject::Caller
    } else {
        Subject::Id(id)
    };
    let request = Request {
        meta,
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
    state.core.execute(request).await?;
    Ok(no_content())
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The client's credentials: HTTP Basic when the request carries it (RFC 6749 2.3.1), else
/// those of the body.
fn client_credentials(
    req: &HttpRequest,
    client_id: Option<String>,
    client_secret: Option<Password>,
) -> Option<ClientCredentials> {
    let (client_id, secret) = match basic_auth(req) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (client_id, client_secret),
    };
    client_id.map(|client_id| ClientCredentials {
        client_id,
        secret: secret.unwrap_or_default(),
    })
}

fn basic_auth(req: &HttpRequest) -> Option<(String, Password)> {
    let (id, secret) = basic_credentials(req.headers().get("authorization")?.to_str().ok()?)?;
    Some((id, Password::new(secret)))
}

/// A required string field, or the problem naming it.
fn required<T>(value: Option<T>, field: &str, empty: impl Fn(&T) -> bool) -> Result<T, Problem> {
    match value {
        Some(v) if !empty(&v) => Ok(v),
        _ => Err(Error::invalid(field, FieldReason::Missing).into()),
    }
}

/// Runs a command that needs no token; `ok` is the answer to its success.
async fn run_public(
    meta: credgate_core::RequestMeta,
    state: &AppState,
    command: Command,
    ok: HttpResponse,
) -> Result<HttpResponse, Problem> {
    let request = Request {
        meta,
        app_key: None,
        access: Access::Public,
        command,
    };
    state.core.execute(request).await?;
    Ok(ok)
}

#[derive(Deserialize)]
pub struct ResetRequestBody {
    username: Option<String>,
}

/// `POST /v1/password-resets` `{"username"}` -> 202, whether or not the user exists.
pub async fn request_reset(
    NativeMeta(meta): NativeMeta,
    Json(input): Json<ResetRequestBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let username = required(input.username, "username", |s| s.trim().is_empty())?;
    let ok = HttpResponse::Accepted()
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    run_public(meta, &state, Command::RequestReset { username }, ok).await
}

#[derive(Deserialize)]
pub struct ResetTokenBody {
    username: Option<String>,
    token: Option<SecretToken>,
    new_password: Option<Password>,
}

/// `POST /v1/password-resets/validate` `{"username","token"}` -> 204 or 400.
pub async fn validate_reset(
    NativeMeta(meta): NativeMeta,
    Json(input): Json<ResetTokenBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let token = required(input.token, "token", SecretToken::is_empty)?;
    let command = Command::ValidateReset {
        username: input.username,
        token,
    };
    run_public(meta, &state, command, no_content()).await
}

/// `POST /v1/password-resets/complete` `{"username","token","new_password"}` -> 204.
pub async fn complete_reset(
    NativeMeta(meta): NativeMeta,
    Json(input): Json<ResetTokenBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let token = required(input.token, "token", SecretToken::is_empty)?;
    let new = required(input.new_password, "new_password", Password::is_empty)?;
    let command = Command::ResetPassword {
        username: input.username,
        token,
        new,
        confirm: None,
    };
    run_public(meta, &state, command, no_content()).await
}
