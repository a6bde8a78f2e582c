//! Canonical commands and outcomes: what every dialect's request becomes, and what it renders.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::model::{RequestMeta, TokenKind, User};
use crate::secret::{Password, SecretToken};

/// One request, as the core sees it: who is asking, with what evidence, to do what.
#[derive(Debug)]
pub struct Request {
    pub meta: RequestMeta,
    /// Et-App-style application key, checked before anything else when `Some`.
    pub app_key: Option<AppKey>,
    pub access: Access,
    pub command: Command,
}

/// An application key requirement: `presented` is `None` when the header was absent.
#[derive(Debug)]
pub struct AppKey {
    pub presented: Option<SecretToken>,
}

/// The session a command needs.
#[derive(Debug)]
pub enum Access {
    /// No session (login and token endpoints).
    Public,
    /// A token of `kind` must be presented; `token` is `None` when none was sent.
    Token {
        token: Option<SecretToken>,
        kind: TokenKind,
    },
}

/// How a request names the user it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The caller's own user (`@me`, or a route whose subject is the token).
    Caller,
    /// An id as the dialect's clients know it: the dialect's alias, else the canonical id.
    Id(String),
    Username(String),
}

#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Password,
}

#[derive(Debug)]
pub enum Grant {
    Password {
        username: String,
        password: Password,
    },
    ClientCredentials,
    Refresh {
        refresh_token: SecretToken,
    },
    /// The second step of a two-factor login: the interim token of the first step and the
    /// code (delivered, or from an authenticator app).
    SecondFactor {
        interim: SecretToken,
        code: SecretToken,
    },
}

#[derive(Debug)]
pub struct TokenRequest {
    /// Client authentication, when the request carried any.
    pub client: Option<ClientCredentials>,
    /// Whether a client must authenticate (a client-credentials grant always needs one).
    pub client_required: bool,
    pub grant: Grant,
    /// Also issue a refresh token with a password grant.
    pub with_refresh: bool,
}

#[derive(Debug)]
pub struct ChangePassword {
    pub subject: Subject,
    pub current: Password,
    pub new: Password,
    pub confirm: Option<Password>,
}

#[derive(Debug)]
pub enum Command {
    /// Login or any token grant.
    IssueToken(TokenRequest),
    ChangePassword(ChangePassword),
    /// Ends the presented session.
    Logout,
    /// Replaces the presented session by a fresh one.
    RenewSession,
    /// Describes a user (the caller's own, or any for an admin).
    ShowUser {
        subject: Subject,
    },
    /// Starts a reset: a token is delivered to the user. Answers the same for unknown users.
    RequestReset {
        username: String,
    },
    /// Checks a reset token without using it. `username`, when given, must be its owner's.
    ValidateReset {
        username: Option<String>,
        token: SecretToken,
    },
    /// Sets a new password with a reset token, which is then spent.
    ResetPassword {
        username: Option<String>,
        token: SecretToken,
        new: Password,
        confirm: Option<Password>,
    },
    /// Starts a reset by security answer: a short one-time code is delivered (Et-App step one).
    RequestResetCode {
        username: String,
        answer: Password,
    },
    /// Exchanges a delivered code for a reset token (Et-App step two).
    ExchangeResetCode {
        code: SecretToken,
    },
    /// RFC 7009 revocation of an access or refresh token issued here to the same client.
    /// Answers the same whether or not the token was known.
    RevokeToken {
        client: Option<ClientCredentials>,
        /// Whether the client must authenticate.
        client_required: bool,
        token: SecretToken,
    },
}

/// A token just issued. `access` is shown to the client once and never stored.
#[derive(Debug)]
pub struct IssuedToken {
    pub access: SecretToken,
    pub kind: TokenKind,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub refresh: Option<SecretToken>,
    pub user: Option<User>,
    pub client_id: Option<String>,
}

impl IssuedToken {
    pub fn expires_in(&self) -> i64 {
        self.expires_at - self.issued_at
    }
}

#[derive(Debug)]
pub enum Outcome {
    Token(IssuedToken),
    PasswordChanged {
        user: User,
    },
    LoggedOut,
    User {
        user: User,
    },
    /// A reset (or code) was requested; nothing tells whether the user exists.
    ResetRequested,
    ResetValid,
    PasswordReset {
        user: User,
    },
    /// A reset token handed to the client in exchange for a code.
    ResetIssued {
        token: SecretToken,
    },
    /// A revocation request was handled (RFC 7009: also for unknown tokens).
    TokenRevoked,
    /// The password was right and the user logs in with two factors: the client repeats the
    /// login with the code and this interim token (which is no session).
    SecondFactorRequired {
        interim: SecretToken,
        method: crate::two_factor_model::TwoFactorMethod,
    },
}

/// What an admin gives to create a user.
#[derive(Debug, Default)]
pub struct NewUserSpec {
    pub username: String,
    pub password: Password,
    pub id: Option<String>,
    pub admin: bool,
    pub externally_managed: bool,
    pub aliases: BTreeMap<String, String>,
    pub profile: BTreeMap<String, String>,
}

impl Default for Password {
    fn default() -> Self {
        Password::new(String::new())
    }
}
