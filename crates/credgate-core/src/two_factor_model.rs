//! Two-factor login: a user's setting and the pending login challenges (what the store keeps).

use crate::clock::Timestamp;
use crate::secret::SecretToken;

/// How a user proves the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorMethod {
    /// A one-time code delivered through the notifier (as reset codes are).
    Code,
    /// An RFC 6238 code from an authenticator app.
    Totp,
}

impl TwoFactorMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Totp => "totp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "code" => Some(Self::Code),
            "totp" => Some(Self::Totp),
            _ => None,
        }
    }
}

/// A user's two-factor setting. Debug never shows the TOTP secret.
#[derive(Debug, Clone)]
pub struct TwoFactor {
    pub method: TwoFactorMethod,
    /// The TOTP shared secret in base32 (`Totp` only).
    pub totp_secret: Option<SecretToken>,
    /// The newest TOTP time step accepted so far: a code of it or an older step is a replay.
    pub last_step: Option<i64>,
}

/// A password accepted, the second factor awaited: stored by the keyed digest of the interim
/// token handed to the client, bound like a session to its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    pub digest: String,
    pub user_id: String,
    /// The keyed digest of the delivered code (`Code` method); `None` for TOTP.
    pub code_digest: Option<String>,
    pub dialect: String,
    pub app_digest: Option<String>,
    pub client_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
