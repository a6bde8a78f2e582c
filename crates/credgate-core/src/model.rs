//! The canonical records the core reasons about and the store keeps.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::Timestamp;

/// A user as every dialect sees it. Never carries the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub admin: bool,
    /// Credentials live in another system: changes are refused with `ExternallyManaged`.
    pub externally_managed: bool,
    /// Dialect name -> the id that dialect's clients use (Akana's `<uuid>.<fedmember>`).
    pub aliases: BTreeMap<String, String>,
    /// Free-form attributes a dialect may render (email, first_name, ...).
    pub profile: BTreeMap<String, String>,
    pub created_at: Timestamp,
}

impl User {
    /// The id a dialect's clients know this user by.
    pub fn id_for(&self, dialect: &str) -> &str {
        self.aliases
            .get(dialect)
            .map(String::as_str)
            .unwrap_or(&self.id)
    }
}

/// The stored password of one user: a bcrypt hash and its compare-and-swap version.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub hash: String,
    pub version: i64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("hash", &"[redacted]")
            .field("version", &self.version)
            .finish()
    }
}

/// How a request names a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey<'a> {
    Id(&'a str),
    Username(&'a str),
    Alias {
        dialect: &'a str,
        external_id: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Issued to a user by a password grant or a login.
    User,
    /// Issued to an API client by a client-credentials grant.
    Client,
    /// Exchanged for a new user token by a refresh grant.
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "client" => Some(Self::Client),
            "refresh" => Some(Self::Refresh),
            _ => None,
        }
    }
}

/// A stored token: the secret itself is never kept, only its SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: String,
    pub kind: TokenKind,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    /// The dialect (or `native`) that issued it: the token is accepted there only.
    pub dialect: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// The session (token family): an access token and the refresh tokens rotated from it
    /// share it, and logout or a replayed refresh token revokes it whole.
    pub session_id: String,
    /// Digest of the application key (Et-App) it was issued with; required again to use it.
    pub app_digest: Option<String>,
    /// When a refresh token was exchanged: kept until it expires, so a replay is detected.
    pub spent_at: Option<Timestamp>,
}

/// An API client allowed to use client-credentials and password grants.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    pub secret_hash: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .finish()
    }
}

/// An application key (Et-App's `Et-App-Key`), stored as a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub key_digest: String,
    pub name: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    UserCreated,
    ClientCreated,
    AppCreated,
    PasswordChanged,
    PasswordChangeFailed,
    LoginSucceeded,
    LoginFailed,
    TokenIssued,
    TokenRevoked,
    SessionsRevoked,
    HashUpgraded,
    PasswordResetRequested,
    PasswordReset,
    PasswordResetFailed,
    ResetCodeExchanged,
    ResetDeliveryFailed,
    SecurityAnswerSet,
    AttemptRefused,
    /// One summary of a bulk import (counts, never rows).
    UsersImported,
    /// A user verified by a legacy system and created here (lazy migration).
    UserMigrated,
    /// An admin set or removed a user's two-factor method.
    TwoFactorSet,
    /// A right password of a two-factor user: the second factor is now awaited.
    SecondFactorRequested,
    /// A wrong, replayed or late second factor.
    SecondFactorFailed,
    /// One summary of a batch of weak legacy hashes wrapped in bcrypt (counts by format).
    HashesWrapped,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user_created",
            Self::ClientCreated => "client_created",
            Self::AppCreated => "app_created",
            Self::PasswordChanged => "password_changed",
            Self::PasswordChangeFailed => "password_change_failed",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::TokenIssued => "token_issued",
            Self::TokenRevoked => "token_revoked",
            Self::SessionsRevoked => "sessions_revoked",
            Self::HashUpgraded => "hash_upgraded",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::PasswordResetFailed => "password_reset_failed",
            Self::ResetCodeExchanged => "reset_code_exchanged",
            Self::ResetDeliveryFailed => "reset_delivery_failed",
            Self::SecurityAnswerSet => "security_answer_set",
            Self::AttemptRefused => "attempt_refused",
            Self::UsersImported => "users_imported",
            Self::UserMigrated => "user_migrated",
            Self::TwoFactorSet => "two_factor_set",
            Self::SecondFactorRequested => "second_factor_requested",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::HashesWrapped => "hashes_wrapped",
        }
    }
}

/// Who asked, through which dialect: stamped on every audit record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    pub dialect: String,
    pub request_id: String,
    pub client_addr: Option<String>,
}

/// One audit record. `detail` holds reasons and names, never a password or a token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub kind: AuditKind,
    pub user_id: Option<String>,
    pub dialect: String,
    pub request_id: String,
    pub client_addr: Option<String>,
    pub detail: serde_json::Value,
}

/// An audit record as read back, with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: Timestamp,
    pub kind: String,
    pub user_id: Option<String>,
    pub dialect: String,
    pub request_id: String,
    pub client_addr: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub limit: u32,
}

/// A new user with its first hash, written together with its audit record.
#[derive(Clone)]
pub struct NewUser {
    pub user: User,
    pub credential_hash: String,
}

/// A password change to commit atomically: compare-and-swap on `expected_version`, push the old
/// hash into the history, revoke the user's tokens except the session of the token whose digest
/// is `keep_token`, and append `audit`.
#[derive(Clone)]
pub struct PasswordUpdate {
    pub user_id: String,
    pub expected_version: i64,
    pub new_hash: String,
    pub keep_token: Option<String>,
    pub history_limit: usize,
    pub now: Timestamp,
    pub audit: Vec<AuditEvent>,
}

// Hashes are what an offline attack needs: keep them out of every log line that prints these.
impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("user", &self.user)
            .field("credential_hash", &"[redacted]")
            .finish()
    }
}

impl std::fmt::Debug for PasswordUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordUpdate")
            .field("user_id", &self.user_id)
            .field("expected_version", &self.expected_version)
            .field("new_hash", &"[redacted]")
            .field("history_limit", &self.history_limit)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetKind {
    /// A 256-bit reset token, delivered to the user or returned by a code exchange.
    Token,
    /// A short one-time code delivered to the user, exchanged for a reset token (Et-App).
    Code,
}

impl ResetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Code => "code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "token" => Some(Self::Token),
            "code" => Some(Self::Code),
            _ => None,
        }
    }
}

/// An outstanding password reset: only the SHA-256 digest of its secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRecord {
    pub digest: String,
    pub user_id: String,
    pub kind: ResetKind,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// A user's security question and the bcrypt hash of its answer (Et-App's reset step one).
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityAnswer {
    pub question: String,
    pub answer_hash: String,
}

impl std::fmt::Debug for SecurityAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityAnswer")
            .field("question", &self.question)
            .field("answer_hash", &"[redacted]")
            .finish()
    }
}
