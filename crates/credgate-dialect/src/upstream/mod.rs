//! A dialect used in the other direction: credgate as a *client* of the vendor's API.
//!
//! Nothing here is written per vendor. The request is derived from the same route the gateway
//! serves: its method and path, its field sources (`body.OldPassword`, `header.Username`,
//! `basic.username`, `path.UserID`) read as "where to put" instead of "where to read", its auth
//! scheme (bearer, cookie + CSRF, app key, client Basic). The answer is recognised from the
//! route's `ok` response and the error table: templates are rendered with marker values to find
//! where the vendor puts the session token and the user's id, and each error template is
//! compared with the body received to name the canonical error.

mod reading;
mod request;
mod response;
mod script;

use credgate_core::{Password, SecretToken};

pub use reading::OkReading;
pub use request::UpstreamRequest;
pub use response::{Reply, Session};
pub use script::SessionScript;

/// What credgate asks of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCommand {
    /// A login (or password grant) with username and password: opens a session.
    Login,
    /// A password change within a session opened by `Login`.
    ChangePassword,
    /// Starts a reset for a username (the vendor mails its user).
    RequestReset,
    /// Checks a reset token the vendor issued.
    ValidateReset,
    /// Sets a new password with a reset token the vendor issued.
    ResetPassword,
    /// A client-credentials grant: a session for the routes that need a client token.
    ClientToken,
}

impl UpstreamCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::ChangePassword => "change_password",
            Self::RequestReset => "request_reset",
            Self::ValidateReset => "validate_reset",
            Self::ResetPassword => "reset_password",
            Self::ClientToken => "client_token",
        }
    }
}

/// The credentials credgate itself presents to an upstream (not a user's).
#[derive(Clone, Default)]
pub struct UpstreamAuth {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretToken>,
    pub app_key: Option<SecretToken>,
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAuth")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("app_key", &self.app_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The canonical values of one upstream call. `subject_ref` is the id the upstream knows the
/// user by (its own id, e.g. Akana's `<uuid>.<fedmember>`); without it routes that name the
/// user by id use their `me` literal.
#[derive(Debug, Default)]
pub struct Values {
    pub username: Option<String>,
    pub password: Option<Password>,
    pub current: Option<Password>,
    pub new: Option<Password>,
    pub subject_ref: Option<String>,
    /// A reset token the vendor issued (its route's `token` field).
    pub reset_token: Option<SecretToken>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("dialect `{dialect}` has no route for {operation}")]
    NoRoute {
        dialect: String,
        operation: &'static str,
    },
    #[error("dialect `{dialect}`, route `{route}`: no value for `{field}`")]
    MissingValue {
        dialect: String,
        route: String,
        field: String,
    },
    #[error("route `{route}` needs a session; log in first")]
    NoSession { route: String },
    #[error("template: {0}")]
    Template(String),
}
