//! The canonical error: every outcome that is not a success, in terms no vendor owns.
//! Each dialect maps every variant (by [`Error::kind`]) to its own status and body.

use serde::Serialize;

/// What was wrong with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// Canonical field name (`current`, `new`, `username`, ...).
    pub field: String,
    pub reason: FieldReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldReason {
    Missing,
    /// Present but of the wrong JSON type (number, object, null where a string is expected).
    WrongType,
    /// Present but unusable: empty, whitespace only, control characters, too long.
    Invalid,
    /// Does not agree with another value (confirmation, id in the body vs the path).
    Mismatch,
    /// A value the endpoint does not support (an unknown grant type).
    Unsupported,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, reason: FieldReason) -> Self {
        Self {
            field: field.into(),
            reason,
        }
    }
}

/// A password policy rule, reported by name so that dialects can show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum PolicyRule {
    MinLength { min: usize },
    MaxLength { max_bytes: usize },
    Username,
    Common,
    Strength { min_score: u8 },
    History { last: usize },
}

impl PolicyRule {
    pub fn name(&self) -> &'static str {
        match self {
            Self::MinLength { .. } => "min_length",
            Self::MaxLength { .. } => "max_length",
            Self::Username => "username",
            Self::Common => "common",
            Self::Strength { .. } => "strength",
            Self::History { .. } => "history",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::MinLength { min } => format!("Password must be at least {min} characters long"),
            Self::MaxLength { max_bytes } => {
                format!("Password must be at most {max_bytes} bytes long")
            }
            Self::Username => "Password must not contain the username".into(),
            Self::Common => "Password is too common".into(),
            Self::Strength { .. } => "Password is too easy to guess".into(),
            Self::History { last } => {
                format!("Password must differ from the last {last} passwords")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The body could not be read at all (not JSON, not the declared form).
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// The body is larger than the gateway accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body did not arrive within the deadline (`body_timeout_ms`); the connection closes.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("invalid request: {problems:?}")]
    InvalidRequest { problems: Vec<FieldProblem> },
    /// Wrong username/password or wrong current password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Client authentication failed at a token endpoint.
    #[error("invalid client")]
    InvalidClient,
    /// No, an invalid, or an expired session.
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("externally managed user")]
    ExternallyManaged,
    #[error("password policy violated: {rules:?}")]
    PolicyViolation { rules: Vec<PolicyRule> },
    #[error("unknown application key")]
    UnknownApp,
    #[error("CSRF check failed")]
    CsrfRejected,
    #[error("not found")]
    NotFound,
    #[error("rate limited, retry after {retry_after}s")]
    RateLimited { retry_after: u64 },
    /// A concurrent change won the race, or a unique value is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid or expired reset token")]
    ResetTokenInvalid,
    /// A dependency (database, upstream) is down: retry later.
    #[error("service unavailable")]
    Unavailable,
    /// The hash pool could not start this request's work within the configured wait: come
    /// back after `retry_after` seconds.
    #[error("overloaded, retry after {retry_after}s")]
    Overloaded { retry_after: u64 },
    #[error("internal error")]
    Internal,
}

impl Error {
    /// Every kind, in a fixed order: each dialect's error table must name each one.
    pub const KINDS: &'static [&'static str] = &[
        "malformed_request",
        "unsupported_media_type",
        "payload_too_large",
        "request_timeout",
        "invalid_request",
        "invalid_credentials",
        "invalid_client",
        "unauthenticated",
        "forbidden",
        "externally_managed",
        "policy_violation",
        "unknown_app",
        "csrf_rejected",
        "not_found",
        "rate_limited",
        "conflict",
        "reset_token_invalid",
        "unavailable",
        "overloaded",
        "internal",
    ];

    /// The stable snake_case name of the variant; the key in dialect error tables.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedRequest(_) => "malformed_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidClient => "invalid_client",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::ExternallyManaged => "externally_managed",
            Self::PolicyViolation { .. } => "policy_violation",
            Self::UnknownApp => "unknown_app",
            Self::CsrfRejected => "csrf_rejected",
            Self::NotFound => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Conflict(_) => "conflict",
            Self::ResetTokenInvalid => "reset_token_invalid",
            Self::Unavailable => "unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Internal => "internal",
        }
    }

    pub fn invalid(field: &str, reason: FieldReason) -> Self {
        Self::InvalidRequest {
            problems: vec![FieldProblem::new(field, reason)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_list_is_complete_and_unique() {
        let samples = [
            Error::MalformedRequest(String::new()),
            Error::UnsupportedMediaType,
            Error::PayloadTooLarge,
            Error::RequestTimeout,
            Error::InvalidRequest { problems: vec![] },
            Error::InvalidCredentials,
            Error::InvalidClient,
            Error::Unauthenticated,
            Error::Forbidden,
            Error::ExternallyManaged,
            Error::PolicyViolation { rules: vec![] },
            Error::UnknownApp,
            Error::CsrfRejected,
            Error::NotFound,
            Error::RateLimited { retry_after: 1 },
            Error::Conflict(String::new()),
            Error::ResetTokenInvalid,
            Error::Unavailable,
            Error::Overloaded { retry_after: 1 },
            Error::Internal,
        ];
        let kinds: Vec<_> = samples.iter().map(Error::kind).collect();
        assert_eq!(kinds, Error::KINDS);
    }
}
