//! Delivery of reset tokens and codes "to the user": the core hands a notice to a
//! [`Notifier`] off the request path; the server provides webhook and outbox implementations.

use async_trait::async_trait;
use serde_json::json;

use crate::clock::Timestamp;
use crate::model::ResetKind;
use crate::secret::SecretToken;

/// One reset to deliver. Its Debug form never shows the secret.
#[derive(Debug, Clone)]
pub struct ResetNotice {
    pub user_id: String,
    pub username: String,
    pub kind: ResetKind,
    /// The token or code itself: the one place it leaves the gateway.
    pub secret: SecretToken,
    pub expires_at: Timestamp,
    /// Profile attributes (email, ...) a mail service needs to reach the user.
    pub profile: std::collections::BTreeMap<String, String>,
    /// A login's second-factor code rather than a reset (event `login_code_requested`).
    pub login: bool,
}

impl ResetNotice {
    /// The delivered JSON event: `{"event","user_id","username","token"|"code","expires_at",...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let secret_key = match self.kind {
            ResetKind::Token => "token",
            ResetKind::Code => "code",
        };
        let name = if self.login {
            "login_code_requested"
        } else {
            "password_reset_requested"
        };
        let mut event = json!({
            "event": name,
            "user_id": self.user_id,
            "username": self.username,
            "expires_at": self.expires_at,
            "profile": self.profile,
        });
        event[secret_key] = json!(self.secret.expose());
        event
    }
}

#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one notice; the error says why it could not (without the secret).
    async fn deliver(&self, notice: &ResetNotice) -> Result<(), String>;
}
