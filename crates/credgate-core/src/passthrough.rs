//! Passthrough: client dialects bound to an upstream (`inbound = [...]`) are answered by the
//! legacy system, through the same path as local requests. The core applies the guessing limits
//! (per user and per address, before the upstream is asked), writes the audit records (naming
//! the upstream), counts the metrics and speaks the canonical errors; the server implements the
//! [`UpstreamAuthority`] port with the upstream's dialect spoken as a client.
//!
//! A passthrough login hands the client a token of this gateway. Its session is stored (the
//! token's digest, the username and the upstream's id for the user; never the upstream's own
//! session secret), so any replica sharing the database serves it and a restart keeps it. A
//! change opens an upstream session with the current password for that one call only.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use crate::afterwards::Deferred;
use crate::clock::Timestamp;
use crate::command::{
    Access, ChangePassword, Command, Grant, IssuedToken, Outcome, Subject, TokenRequest,
};
use crate::error::{Error, FieldReason};
use crate::limits::{Budgets, Held};
use crate::model::{AuditKind, RequestMeta, TokenKind, User};
use crate::secret::Password;
use crate::service::CredentialService;
use crate::session::Issuer;
use crate::token;

/// What the upstream said about a login it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamLogin {
    /// The id the upstream knows the user by, when its login answer names it.
    pub user_ref: Option<String>,
    /// The upstream's dialect: the id is kept as the user's alias there (shadow mode).
    pub dialect: String,
}

/// How an upstream answers for a client dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingMode {
    /// The upstream answers; credgate keeps no password.
    Passthrough,
    /// The upstream answers; credgate keeps its users in sync and compares its own answer.
    Shadow,
}

/// The upstream answering for a client dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamBinding {
    pub upstream: String,
    pub mode: BindingMode,
}

/// A password change for the upstream to make.
#[derive(Debug)]
pub struct UpstreamChange<'a> {
    pub username: &'a str,
    /// The upstream's id for the user, from its login answer.
    pub user_ref: Option<&'a str>,
    /// The id the client named the user by (for upstreams that name users by id only).
    pub subject_id: Option<&'a str>,
    pub current: &'a Password,
    pub new: &'a Password,
}

/// The legacy systems that answer for client dialects. Every failure to reach one is
/// `Err(Error::Unavailable)`; a refused password is `Err(Error::InvalidCredentials)`.
#[async_trait]
pub trait UpstreamAuthority: Send + Sync {
    /// The upstream that answers for client dialect `dialect`, if one does.
    fn upstream_for(&self, dialect: &str) -> Option<UpstreamBinding>;
    /// Checks a username and password at the upstream (opens a session there).
    async fn login(
        &self,
        dialect: &str,
        username: &str,
        password: &Password,
    ) -> Result<UpstreamLogin, Error>;
    /// Changes a password at the upstream, within a session opened with the current password
    /// for this call only.
    async fn change_password(
        &self,
        dialect: &str,
        change: &UpstreamChange<'_>,
    ) -> Result<(), Error>;
    /// Whether the upstream for `dialect` runs reset step `step` (see
    /// [`crate::upstream_reset`]); by default none does.
    fn offers_reset(&self, _dialect: &str, _step: crate::upstream_reset::ResetStep) -> bool {
        false
    }
    /// Runs a reset step at the upstream. A token it refuses is `Err(ResetTokenInvalid)`.
    async fn reset(
        &self,
        _dialect: &str,
        _request: &crate::upstream_reset::UpstreamResetRequest<'_>,
    ) -> Result<(), Error> {
        Err(Error::Internal)
    }
}

/// A session of this gateway that stands for a user the upstream vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSessionRecord {
    /// Digest of the access token handed to the client.
    pub digest: String,
    pub upstream: String,
    /// The client dialect (and application key) that opened it: accepted there only.
    pub dialect: String,
    pub app_digest: Option<String>,
    pub username: String,
    pub user_ref: Option<String>,
    pub client_id: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl UpstreamSessionRecord {
    /// The user as the client dialect renders it: known by the upstream's id.
    fn user(&self) -> User {
        User {
            id: self
                .user_ref
                .clone()
                .unwrap_or_else(|| self.username.clone()),
            username: self.username.clone(),
            admin: false,
            externally_managed: false,
            aliases: BTreeMap::new(),
            profile: BTreeMap::new(),
            created_at: self.created_at,
        }
    }

    /// Whether a request's subject is this session's user. Without the upstream's id for it,
    /// an id cannot be checked here: the upstream, which authorizes the call, decides.
    fn is(&self, subject: &Subject) -> bool {
        match (subject, &self.user_ref) {
            (Subject::Caller, _) | (Subject::Id(_), None) => true,
            (Subject::Id(id), Some(own)) => own == id || id == &self.username,
            (Subject::Username(name), _) => name.eq_ignore_ascii_case(&self.username),
        }
    }
}

/// Whether a command is answered by a passthrough upstream; the others (client-credentials
/// grants, say) stay this gateway's own.
pub(crate) fn answers(command: &Command) -> bool {
    matches!(
        command,
        Command::IssueToken(TokenRequest {
            grant: Grant::Password { .. },
            ..
        }) | Command::ChangePassword(_)
            | Command::ShowUser { .. }
            | Command::Logout
            | Command::RenewSession
    )
}

impl CredentialService {
    /// Answers for client dialects bound to a passthrough upstream.
    pub fn with_passthrough(mut self, authority: std::sync::Arc<dyn UpstreamAuthority>) -> Self {
        self.passthrough = Some(authority);
        self
    }

    /// The upstream answering for `dialect`, if any.
    pub(crate) fn passthrough_for(&self, dialect: &str) -> Option<UpstreamBinding> {
        self.passthrough.as_ref()?.upstream_for(dialect)
    }

    /// Runs a command [`answers`] accepts against the upstream `upstream`.
    pub(crate) async fn execute_passthrough(
        &self,
        upstream: String,
        issuer: Issuer,
        meta: RequestMeta,
        access: Access,
        command: Command,
        after: &mut Option<Deferred>,
    ) -> Result<Outcome, Error> {
        match command {
            Command::IssueToken(TokenRequest {
                client,
                client_required,
                grant: Grant::Password { username, password },
                ..
            }) => {
                let client_id = match client {
                    Some(c) => Some(self.authenticate_client(c, &meta).await?),
                    None if client_required => return Err(Error::InvalidClient),
                    None => None,
                };
                let open = Opening {
                    upstream,
                    username,
                    user_ref: None,
                    client_id,
                };
                let (issued, deferred) =
                    (self.passthrough_login(open, &password, &issuer, &meta)).await?;
                *after = Some(deferred);
                Ok(Outcome::Token(issued))
            }
            Command::ChangePassword(change) => {
                let held = self.upstream_session(&access, &issuer).await?;
                self.upstream_change(&held, change, &meta).await?;
                self.end_other_upstream_sessions(&held, &meta).await?;
                Ok(Outcome::PasswordChanged { user: held.user() })
            }
            Command::ShowUser { subject } => {
                let held = self.upstream_session(&access, &issuer).await?;
                if !held.is(&subject) {
                    return Err(Error::Forbidden);
                }
                Ok(Outcome::User { user: held.user() })
            }
            Command::Logout => {
                let held = self.upstream_session(&access, &issuer).await?;
                self.close_upstream_session(&held, "logout", &meta).await?;
                Ok(Outcome::LoggedOut)
            }
            Command::RenewSession => {
                let held = self.upstream_session(&access, &issuer).await?;
                if !self.close_upstream_session(&held, "renewal", &meta).await? {
                    // Another request renewed or ended it first.
                    return Err(Error::Unauthenticated);
                }
                let open = Opening {
                    upstream: held.upstream,
                    username: held.username,
                    user_ref: held.user_ref,
                    client_id: held.client_id,
                };
                self.open_upstream_session(open, &issuer, &meta)
                    .await
                    .map(Outcome::Token)
            }
            _ => Err(Error::Internal),
        }
    }

    /// A login the upstream answers: its session is stored while the upstream checks the
    /// password, and its token handed out once the upstream accepts. The login's record and
    /// the forgiving of its slots are left for after the answer.
    async fn passthrough_login(
        &self,
        open: Opening,
        password: &Password,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<(IssuedToken, Deferred), Error> {
        let (upstream, username) = (open.upstream.clone(), open.username.clone());
        let early = self.open_upstream_session_early(open, issuer, meta);
        let (answer, early) =
            (self.upstream_login_held(&upstream, &username, password, meta, early)).await?;
        let (login, held) = match answer {
            Ok(accepted) => accepted,
            Err(e) => {
                if let Ok((_, record)) = &early {
                    self.close_upstream_session(record, e.kind(), meta).await?;
                }
                return Err(e);
            }
        };
        let (mut issued, mut record) = early?;
        if login.user_ref != record.user_ref {
            // Durable before the answer, as the rest of the session is.
            let user_ref = login.user_ref.as_deref();
            (self.store)
                .set_upstream_user_ref(&record.digest, user_ref)
                .await?;
            record.user_ref = login.user_ref;
            issued.user = Some(record.user());
        }
        let detail = json!({"username": record.username, "upstream": record.upstream});
        let audit = vec![self.event(AuditKind::LoginSucceeded, None, meta, detail)];
        Ok((issued, Deferred::new(Some(held), audit)))
    }

    /// A password checked by the upstream, drawing on the same budgets as a local check: the
    /// slots are taken before the upstream is asked (a refusal of the budgets is the outer
    /// error), and `alongside` runs while the upstream answers, for the work a login can do
    /// before knowing the answer. An accepted login's slots are left to the caller to forgive
    /// after the answer has gone out.
    pub(crate) async fn upstream_login_held<T>(
        &self,
        upstream: &str,
        username: &str,
        password: &Password,
        meta: &RequestMeta,
        alongside: impl std::future::Future<Output = T>,
    ) -> Result<(Result<(UpstreamLogin, Held), Error>, T), Error> {
        let authority = self.passthrough.as_ref().ok_or(Error::Internal)?;
        let budgets = Budgets::password(&self.config.limits, username, meta);
        let held = self.reserve(budgets, None, meta).await?;
        let started = std::time::Instant::now();
        let (answer, side) = tokio::join!(
            authority.login(&meta.dialect, username, password),
            alongside
        );
        let answer = match answer {
            Ok(login) => Ok((login, held)),
            Err(Error::InvalidCredentials | Error::NotFound) => {
                self.hasher.pad_failure(started).await;
                let detail = json!({"username": username, "upstream": upstream, "reason": "refused_by_upstream"});
                self.store
                    .append_audit(&[self.event(AuditKind::LoginFailed, None, meta, detail)])
                    .await?;
                Err(Error::InvalidCredentials)
            }
            Err(e) => {
                // No guess was checked: the slots go back.
                self.give_back(held).await?;
                let detail =
                    json!({"username": username, "upstream": upstream, "reason": e.kind()});
                self.store
                    .append_audit(&[self.event(AuditKind::LoginFailed, None, meta, detail)])
                    .await?;
                Err(e)
            }
        };
        Ok((answer, side))
    }

    /// A session for a login the upstream is still checking, stored with its `token_issued`
    /// record (durable before the answer, so the answer waits for no commit of its own): the
    /// token is shown only if the upstream accepts, and the session is closed otherwise. The
    /// user's upstream id is the one of their newest session, until the answer says.
    async fn open_upstream_session_early(
        &self,
        mut open: Opening,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<(IssuedToken, UpstreamSessionRecord), Error> {
        open.user_ref = (self.store)
            .upstream_user_ref(&open.upstream, &open.username)
            .await?;
        let (issued, record) = self.upstream_session_record(open, issuer);
        let detail = json!({"username": record.username, "upstream": record.upstream});
        let audit = [self.event(AuditKind::TokenIssued, None, meta, detail)];
        self.store.insert_upstream_session(&record, &audit).await?;
        Ok((issued, record))
    }

    /// Stores a session standing for an upstream user (a renewal's) and hands out its token.
    async fn open_upstream_session(
        &self,
        open: Opening,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<IssuedToken, Error> {
        let (issued, record) = self.upstream_session_record(open, issuer);
        let detail = json!({"username": record.username, "upstream": record.upstream});
        let audit = [self.event(AuditKind::TokenIssued, None, meta, detail)];
        self.store.insert_upstream_session(&record, &audit).await?;
        Ok(issued)
    }

    /// A new session standing for an upstream user, and the token naming it.
    fn upstream_session_record(
        &self,
        open: Opening,
        issuer: &Issuer,
    ) -> (IssuedToken, UpstreamSessionRecord) {
        let now = self.clock.now();
        let access = token::generate();
        let record = UpstreamSessionRecord {
            digest: token::digest(access.expose()),
            upstream: open.upstream,
            dialect: issuer.dialect.clone(),
            app_digest: issuer.app_digest.clone(),
            username: open.username,
            user_ref: open.user_ref,
            client_id: open.client_id,
            created_at: now,
            expires_at: now + self.config.user_token_ttl.as_secs() as i64,
        };
        let issued = IssuedToken {
            access,
            kind: TokenKind::User,
            issued_at: now,
            expires_at: record.expires_at,
            refresh: None,
            user: Some(record.user()),
            client_id: record.client_id.clone(),
        };
        (issued, record)
    }

    /// The stored session a request's token names, if it is alive and was opened here (same
    /// client dialect, same application key).
    async fn upstream_session(
        &self,
        access: &Access,
        issuer: &Issuer,
    ) -> Result<UpstreamSessionRecord, Error> {
        let token = match access {
            Access::Token {
                token: Some(t),
                kind: TokenKind::User,
            } if !t.is_empty() => t,
            Access::Token { token: Some(_), .. } => return Err(Error::Forbidden),
            _ => return Err(Error::Unauthenticated),
        };
        let record = self
            .store
            .find_upstream_session(&token::digest(token.expose()))
            .await?
            .ok_or(Error::Unauthenticated)?;
        let admitted = record.dialect == issuer.dialect && record.app_digest == issuer.app_digest;
        if !admitted || record.expires_at <= self.clock.now() {
            return Err(Error::Unauthenticated);
        }
        Ok(record)
    }

    /// Ends a stored upstream session; whether this call ended it.
    async fn close_upstream_session(
        &self,
        held: &UpstreamSessionRecord,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<bool, Error> {
        let detail =
            json!({"username": held.username, "upstream": held.upstream, "reason": reason});
        let audit = self.event(AuditKind::TokenRevoked, None, meta, detail);
        Ok(self
            .store
            .delete_upstream_session(&held.digest, &[audit])
            .await?)
    }

    /// After a password change, as a local change does: the user's other sessions through
    /// this upstream end; the one that made the change is kept.
    async fn end_other_upstream_sessions(
        &self,
        held: &UpstreamSessionRecord,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let detail = json!({"username": held.username, "upstream": held.upstream, "reason": "password_changed"});
        let audit = self.event(AuditKind::TokenRevoked, None, meta, detail);
        self.store
            .delete_other_upstream_sessions(&held.upstream, &held.username, &held.digest, &[audit])
            .await?;
        Ok(())
    }

    /// A password change the upstream makes: checked, limited and audited here first.
    async fn upstream_change(
        &self,
        held: &UpstreamSessionRecord,
        change: ChangePassword,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let authority = self.passthrough.as_ref().ok_or(Error::Internal)?;
        if !held.is(&change.subject) {
            return Err(Error::Forbidden);
        }
        if change.current.is_empty() {
            return Err(Error::invalid("current", FieldReason::Invalid));
        }
        if change.confirm.as_ref().is_some_and(|c| c != &change.new) {
            return Err(Error::invalid("confirm", FieldReason::Mismatch));
        }
        // The current password is a guess like a login's: same budgets, taken first.
        let budgets = Budgets::password(&self.config.limits, &held.username, meta);
        let slots = self.reserve(budgets, None, meta).await?;
        let subject_id = match &change.subject {
            Subject::Id(id) => Some(id.as_str()),
            _ => None,
        };
        let request = UpstreamChange {
            username: &held.username,
            user_ref: held.user_ref.as_deref(),
            subject_id,
            current: &change.current,
            new: &change.new,
        };
        let result = authority.change_password(&held.dialect, &request).await;
        let (kind, detail) = match &result {
            Ok(()) => {
                self.forgive(slots).await?;
                (AuditKind::PasswordChanged, json!({}))
            }
            Err(Error::InvalidCredentials) => (
                AuditKind::PasswordChangeFailed,
                json!({"reason": "wrong_current_password"}),
            ),
            Err(e) => {
                self.give_back(slots).await?;
                (AuditKind::PasswordChangeFailed, json!({"reason": e.kind()}))
            }
        };
        let mut detail = detail;
        detail["username"] = json!(held.username);
        detail["upstream"] = json!(held.upstream);
        self.store
            .append_audit(&[self.event(kind, None, meta, detail)])
            .await?;
        result
    }
}

/// What a new upstream-backed session is opened for.
struct Opening {
    upstream: String,
    username: String,
    user_ref: Option<String>,
    client_id: Option<String>,
}
