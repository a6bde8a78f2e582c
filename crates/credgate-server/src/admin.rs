//! The admin API. **Permissions**: every route needs `Authorization: Bearer <admin_token>`;
//! with no admin token configured the API does not exist (404).

use std::collections::BTreeMap;
use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use credgate_core::model::AuditQuery;
use credgate_core::{Error, NewUserSpec, Password, SecretToken, User};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::extract::{bearer, AdminMeta, Json};
use crate::problem::{problem, Problem};

/// Proof that the caller presented the admin token: handlers take it as an argument.
pub struct Admin;

#[derive(Debug, thiserror::Error)]
pub enum AdminRefused {
    #[error("admin API disabled")]
    Disabled,
    #[error("admin token required")]
    BadToken,
    /// `[tls] client_ca` is set and the connection presented no client certificate.
    #[error("client certificate required")]
    NoClientCertificate,
}

impl ResponseError for AdminRefused {
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Disabled => HttpResponse::NotFound()
                .json(json!({"type": "about:blank", "title": "Not Found", "status": 404})),
            Self::BadToken => problem(&Error::Unauthenticated),
            Self::NoClientCertificate => problem(&Error::Forbidden),
        }
    }
}

impl FromRequest for Admin {
    type Error = AdminRefused;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>();
        let expected = state.and_then(|s| s.admin_token.clone());
        let wants_cert = state.is_some_and(|s| s.tls.wants_client_certificates());
        if expected.is_some()
            && wants_cert
            && req.conn_data::<crate::tls::ClientCertificate>().is_none()
        {
            return ready(Err(AdminRefused::NoClientCertificate));
        }
        ready(match (expected, bearer(req)) {
            (None, _) => Err(AdminRefused::Disabled),
            (Some(want), Some(got))
                if credgate_core::token::constant_time_eq(
                    want.expose().as_bytes(),
                    got.expose().as_bytes(),
                ) =>
            {
                Ok(Admin)
            }
            _ => Err(AdminRefused::BadToken),
        })
    }
}

pub fn user_json(user: &User) -> serde_json::Value {
    json!({
        "id": user.id, "username": user.username, "admin": user.admin,
        "externally_managed": user.externally_managed, "aliases": user.aliases,
        "profile": user.profile, "created_at": user.created_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: Password,
    id: Option<String>,
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    externally_managed: bool,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    profile: BTreeMap<String, String>,
    /// Two-factor login from the start: `code` or `totp` (its secret is in the answer).
    two_factor: Option<String>,
}

pub async fn create_user(
    _: Admin,
    AdminMeta(meta): AdminMeta,
    Json(input): Json<CreateUser>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let spec = NewUserSpec {
        username: input.username,
        password: input.password,
        id: input.id,
        admin: input.admin,
        externally_managed: input.externally_managed,
        aliases: input.aliases,
        profile: input.profile,
    };
    let choice = match input.two_factor.as_deref() {
        None => None,
        Some(m) => Some(parse_two_factor(m).ok_or_else(|| {
            credgate_core::Error::invalid("two_factor", credgate_core::FieldReason::Invalid)
        })?),
    };
    let user = state.core.create_user(spec, &meta).await?;
    let mut body = json!({"id": user.id});
    if let Some(choice) = choice {
        let enrolled = state.core.set_two_factor(&user.id, choice, &meta).await?;
        body["two_factor"] = enrollment_json(&enrolled);
    }
    Ok(HttpResponse::Created().json(body))
}

/// `{"method"}`, with `totp_secret` and `otpauth_uri` for a TOTP enrollment.
fn enrollment_json(enrolled: &credgate_core::two_factor::Enrollment) -> serde_json::Value {
    let mut body = json!({
        "method": enrolled.method.map_or("off", credgate_core::TwoFactorMethod::as_str),
    });
    if let (Some(secret), Some(uri)) = (&enrolled.totp_secret, &enrolled.otpauth_uri) {
        body["totp_secret"] = json!(secret.expose());
        body["otpauth_uri"] = json!(uri.expose());
    }
    body
}

pub async fn get_user(
    _: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user = state.core.user(&path).await?;
    Ok(HttpResponse::Ok().json(user_json(&user)))
}

#[derive(Deserialize)]
pub struct Page {
    #[serde(default)]
    limit: u32,
    #[serde(default)]
    offset: u32,
}

pub async fn list_users(
    _: Admin,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let users = state.core.users(page.limit, page.offset).await?;
    Ok(HttpResponse::Ok().json(users.iter().map(user_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    client_id: String,
    client_secret: Password,
    name: Option<String>,
}

pub async fn create_client(
    _: Admin,
    AdminMeta(meta): AdminMeta,
    Json(input): Json<CreateClient>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let client_id = input.client_id.clone();
    state
        .core
        .create_client(input.client_id, input.client_secret, input.name, &meta)
        .await?;
    Ok(HttpResponse::Created().json(json!({"client_id": client_id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    key: SecretToken,
    name: Option<String>,
}

pub async fn create_app(
    _: Admin,
    AdminMeta(meta): AdminMeta,
    Json(input): Json<CreateApp>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    state
        .core
        .create_app(input.key, input.name.clone(), &meta)
        .await?;
    Ok(HttpResponse::Created().json(json!({"name": input.name})))
}

#[derive(Deserialize)]
pub struct AuditParams {
    user_id: Option<String>,
    #[serde(default)]
    limit: u32,
}

pub async fn audit(
    _: Admin,
    params: web::Query<AuditParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query = AuditQuery {
        user_id: params.user_id.clone().filter(|s| !s.is_empty()),
        limit: params.limit,
    };
    let records = state.core.audit(&query).await?;
    Ok(HttpResponse::Ok().json(records))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityAnswerBody {
    question: String,
    answer: Password,
}

/// `PUT /admin/users/{id}/security-answer` `{"question","answer"}` -> 204 (the answer is hashed).
pub async fn set_security_answer(
    _: Admin,
    AdminMeta(meta): AdminMeta,
    path: web::Path<String>,
    Json(input): Json<SecurityAnswerBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    state
        .core
        .set_security_answer(&path, input.question, input.answer, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoFactorBody {
    /// `code` (delivered through the notifier), `totp` (an authenticator app) or `off`.
    method: String,
}

/// `PUT /admin/users/{id}/two-factor` `{"method": "code"|"totp"|"off"}` -> 200
/// `{"method"}`, with `totp_secret` and `otpauth_uri` (shown this once) for `totp`.
pub async fn set_two_factor(
    _: Admin,
    AdminMeta(meta): AdminMeta,
    path: web::Path<String>,
    Json(input): Json<TwoFactorBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let choice = parse_two_factor(&input.method).ok_or_else(|| {
        credgate_core::Error::invalid("method", credgate_core::FieldReason::Invalid)
    })?;
    let enrolled = state.core.set_two_factor(&path, choice, &meta).await?;
    let body = enrollment_json(&enrolled);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `code`, `totp` or `off`, as the admin API and `credgate user two-factor` take it.
pub fn parse_two_factor(method: &str) -> Option<credgate_core::two_factor::TwoFactorChoice> {
    use credgate_core::two_factor::TwoFactorChoice;
    match method.to_ascii_lowercase().as_str() {
        "code" => Some(TwoFactorChoice::Code),
        "totp" => Some(TwoFactorChoice::Totp),
        "off" | "none" => Some(TwoFactorChoice::Off),
        _ => None,
    }
}
