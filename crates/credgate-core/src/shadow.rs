//! Shadow mode: the legacy system answers, credgate keeps its copy in sync and compares.
//!
//! A login or password change of a client dialect bound to a `shadow` upstream is sent to the
//! upstream (through the same [`UpstreamAuthority`](crate::UpstreamAuthority) port as
//! passthrough, with the same guessing limits and audit), and its outcome is the client's. The
//! session handed out is a session of this gateway, bound to the local user, so it outlives a
//! cut-over. What credgate would have answered on its own is worked out afterwards, off the
//! response path ([`CredentialService::shadow_settle`]), from a snapshot of the local state
//! taken before the request: without side effects. Only then is the local copy brought in line
//! with what the upstream accepted.

use std::collections::BTreeMap;

use serde_json::json;

use crate::afterwards::Deferred;
use crate::clock::Timestamp;
use crate::command::{ChangePassword, IssuedToken, Outcome, Subject};
use crate::error::{Error, FieldReason, PolicyRule};
use crate::limits::Budgets;
use crate::model::{AuditKind, PasswordUpdate, RequestMeta, User, UserKey};
use crate::passthrough::{UpstreamChange, UpstreamLogin};
use crate::secret::Password;
use crate::service::{CredentialService, Current};
use crate::session::{Issuer, PasswordLogin, SessionFor};
use crate::token;
use crate::upstream::{Migration, UpstreamAccount, LEGACY_POLICY_FLAG};

/// The shadowed routes' kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowRoute {
    Login,
    ChangePassword,
    RequestReset,
    ValidateReset,
    ResetPassword,
}

impl ShadowRoute {
    /// Whether an upstream outcome of this route cannot be checked here: a reset token is the
    /// upstream's, so its check, and a completion refused for its token, are not compared.
    fn unknowable(self, upstream: &Result<(), Error>) -> bool {
        match self {
            Self::ValidateReset => true,
            Self::ResetPassword => matches!(upstream, Err(Error::ResetTokenInvalid)),
            _ => false,
        }
    }
}

/// A request the upstream answered, waiting to be compared and synced. Holds the passwords
/// it needs (redacted in `Debug`) until [`CredentialService::shadow_settle`] consumes it.
#[derive(Debug)]
pub struct ShadowPending {
    route: ShadowRoute,
    upstream: String,
    meta: RequestMeta,
    upstream_result: Result<(), Error>,
    /// The local user and its credential (hash, version) before the request.
    before: Option<Snapshot>,
    /// The password logged in with, or the current one of a change.
    password: Password,
    new: Option<Password>,
    /// The session the sync keeps when it replaces the hash.
    keep_token: Option<String>,
    /// The request itself created the local user.
    created: bool,
    /// What completes the request once its answer has gone out: an accepted login's slots to
    /// forgive and its `login_succeeded` record.
    after: Deferred,
}

/// The local user and its credential (hash, version), as read before a request.
pub(crate) type Snapshot = (User, Option<(String, i64)>);

impl ShadowPending {
    pub(crate) fn keep(&mut self, digest: String) {
        self.keep_token = Some(digest);
    }

    /// A reset step the upstream ran; `new` is a completion's password.
    pub(crate) fn for_reset(
        route: ShadowRoute,
        upstream: &str,
        meta: &RequestMeta,
        upstream_result: Result<(), Error>,
        before: Option<Snapshot>,
        new: Option<Password>,
    ) -> Self {
        Self {
            route,
            upstream: upstream.to_owned(),
            meta: meta.clone(),
            upstream_result,
            before,
            password: Password::new(String::new()),
            new,
            // A reset ends every session of the user, as a local reset does.
            keep_token: None,
            created: false,
            after: Deferred::default(),
        }
    }
}

/// The outcome of one comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowVerdict {
    pub route: ShadowRoute,
    pub upstream: Result<(), Error>,
    pub local: Result<(), Error>,
    /// credgate did not hold the user before the request: not a divergence.
    pub not_synced: bool,
    /// The request created or updated the local copy.
    pub synced: bool,
}

/// `agreement`, `divergence` or `not_synced`, with the divergence's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowResult {
    Agreement,
    Divergence(&'static str),
    NotSynced,
}

impl ShadowResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agreement => "agreement",
            Self::Divergence(_) => "divergence",
            Self::NotSynced => "not_synced",
        }
    }

    pub fn kind(self) -> Option<&'static str> {
        match self {
            Self::Divergence(kind) => Some(kind),
            _ => None,
        }
    }
}

/// The divergence class of a canonical error.
pub fn divergence_kind(error: &Error) -> &'static str {
    match error {
        Error::PolicyViolation { .. } => "policy",
        Error::InvalidCredentials => "credentials",
        Error::NotFound => "not_found",
        Error::Unauthenticated | Error::Forbidden | Error::ExternallyManaged => "authorization",
        Error::InvalidRequest { .. } | Error::MalformedRequest(_) => "validation",
        Error::Unavailable => "unavailable",
        Error::RateLimited { .. } => "rate_limited",
        Error::Conflict(_) => "conflict",
        _ => "other",
    }
}

impl ShadowVerdict {
    /// Same outcome kind = agreement (the same dialect and route render the same status);
    /// an upstream that could not answer is always an `unavailable` divergence.
    pub fn result(&self) -> ShadowResult {
        if let Err(Error::Unavailable) = &self.upstream {
            return ShadowResult::Divergence("unavailable");
        }
        if self.not_synced {
            return ShadowResult::NotSynced;
        }
        match (&self.upstream, &self.local) {
            (Ok(()), Ok(())) => ShadowResult::Agreement,
            (Err(a), Err(b)) if a.kind() == b.kind() && same_rules(a, b) => ShadowResult::Agreement,
            (Err(e), _) | (Ok(()), Err(e)) => ShadowResult::Divergence(divergence_kind(e)),
        }
    }
}

fn same_rules(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (Error::PolicyViolation { rules: x }, Error::PolicyViolation { rules: y }) => {
            x.iter().map(PolicyRule::name).collect::<Vec<_>>()
                == y.iter().map(PolicyRule::name).collect::<Vec<_>>()
        }
        _ => true,
    }
}

impl CredentialService {
    /// A shadowed login: the upstream decides. While it answers, the local user is read and,
    /// when credgate holds it without a second factor, its session is issued (durable before the
    /// answer; the token is shown only if the upstream accepts, and revoked otherwise). A user
    /// the upstream accepts and credgate does not hold is created at once (the session is bound
    /// to it). The comparison is left in `pending`.
    pub(crate) async fn shadow_login(
        &self,
        upstream: &str,
        login: PasswordLogin<'_>,
        issuer: &Issuer,
        meta: &RequestMeta,
        pending: &mut Option<ShadowPending>,
    ) -> Result<Outcome, Error> {
        let PasswordLogin {
            username,
            password,
            session,
        } = login;
        let early = self.shadow_login_early(username, &session, issuer, meta);
        let (answer, early) =
            (self.upstream_login_held(upstream, username, password, meta, early)).await?;
        let (before, issued) = early?;
        let (result, held) = match answer {
            Ok((login, held)) => (Ok(login), Some(held)),
            Err(e) => (Err(e), None),
        };
        let mut shadow = ShadowPending {
            route: ShadowRoute::Login,
            upstream: upstream.to_owned(),
            meta: meta.clone(),
            upstream_result: result.as_ref().map(|_| ()).map_err(Clone::clone),
            before: before.clone(),
            password: password.clone(),
            new: None,
            keep_token: None,
            created: false,
            after: Deferred::new(held, Vec::new()),
        };
        let detail = json!({"upstream": upstream});
        let outcome = match (result, before, issued) {
            (Err(e), _, issued) => {
                if let Some(issued) = issued {
                    self.withdraw(&issued, e.kind(), meta).await?;
                }
                Err(e)
            }
            (Ok(_), Some((user, _)), Some(issued)) => {
                let event = self.event(AuditKind::LoginSucceeded, Some(&user.id), meta, detail);
                shadow.after.audit.push(event);
                Ok(Outcome::Token(issued))
            }
            // A second factor to meet.
            (Ok(_), Some((user, _)), None) => {
                (self.open_session(user, session, issuer, meta, detail)).await
            }
            (Ok(login), None, _) => {
                shadow.created = true;
                let user = self.adopt_upstream_user(upstream, username, password, login, meta);
                self.open_session(user.await?, session, issuer, meta, detail)
                    .await
            }
        };
        if let Ok(Outcome::Token(issued)) = &outcome {
            // A later sync of the hash keeps the session just opened.
            shadow.keep(token::digest(issued.access.expose()));
        }
        *pending = Some(shadow);
        outcome
    }

    /// What a shadowed login does before the upstream's answer: reads the local user and, when
    /// credgate holds it without a second factor, issues its session.
    async fn shadow_login_early(
        &self,
        username: &str,
        session: &SessionFor,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<(Option<Snapshot>, Option<IssuedToken>), Error> {
        let before = self.snapshot(UserKey::Username(username)).await?;
        let Some((user, _)) = &before else {
            return Ok((before, None));
        };
        if self.store.two_factor(&user.id).await?.is_some() {
            return Ok((before, None));
        }
        let grantee = session.clone().grantee(user.clone());
        let issued = self.issue(grantee, issuer, meta, Vec::new()).await?;
        Ok((before, Some(issued)))
    }

    /// Revokes a session issued before the upstream refused the login (its token was never
    /// shown).
    async fn withdraw(
        &self,
        issued: &IssuedToken,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let user_id = issued.user.as_ref().map(|u| u.id.as_str());
        let detail = json!({"kind": issued.kind.as_str(), "reason": reason});
        let audit = self.event(AuditKind::TokenRevoked, user_id, meta, detail);
        let session_id = token::digest(issued.access.expose());
        self.store.revoke_session(&session_id, &[audit]).await?;
        Ok(())
    }

    /// Creates the local user the upstream vouched for, as lazy migration does. The upstream's
    /// id is the user's alias in its own dialect and in the client's: the client keeps
    /// addressing the user by it, before and after a cut-over.
    async fn adopt_upstream_user(
        &self,
        upstream: &str,
        username: &str,
        password: &Password,
        login: UpstreamLogin,
        meta: &RequestMeta,
    ) -> Result<User, Error> {
        let mut aliases = BTreeMap::new();
        if let Some(id) = &login.user_ref {
            aliases.insert(login.dialect.clone(), id.clone());
            aliases.insert(meta.dialect.clone(), id.clone());
        }
        let account = UpstreamAccount {
            upstream: upstream.to_owned(),
            alias: login.user_ref.map(|id| (login.dialect, id)),
        };
        match (self.adopt_user(username, password, account, aliases, meta)).await? {
            Migration::Migrated(user) | Migration::Raced(user) => Ok(user),
            Migration::NotMigrated => Err(Error::Internal),
        }
    }

    /// A shadowed password change by a local session: checked and limited here, made by the
    /// upstream; the local copy follows in [`Self::shadow_settle`].
    pub(crate) async fn shadow_change(
        &self,
        upstream: &str,
        caller_digest: &str,
        user: User,
        change: ChangePassword,
        meta: &RequestMeta,
        pending: &mut Option<ShadowPending>,
    ) -> Result<Outcome, Error> {
        let authority = self.passthrough.as_ref().ok_or(Error::Internal)?;
        if change.current.is_empty() {
            return Err(Error::invalid("current", FieldReason::Invalid));
        }
        if change.confirm.as_ref().is_some_and(|c| c != &change.new) {
            return Err(Error::invalid("confirm", FieldReason::Mismatch));
        }
        let before = self.snapshot(UserKey::Id(&user.id)).await?;
        let budgets = Budgets::password(&self.config.limits, &user.username, meta);
        let slots = self.reserve(budgets, Some(&user.id), meta).await?;
        let subject_id = match &change.subject {
            Subject::Id(id) => Some(id.as_str()),
            _ => None,
        };
        let request = UpstreamChange {
            username: &user.username,
            user_ref: None,
            subject_id,
            current: &change.current,
            new: &change.new,
        };
        let result = authority.change_password(&meta.dialect, &request).await;
        match &result {
            Ok(()) => self.forgive(slots).await?,
            Err(Error::InvalidCredentials) => {}
            Err(_) => self.give_back(slots).await?,
        }
        if let Err(e) = &result {
            let detail = json!({"upstream": upstream, "reason": e.kind()});
            let event = self.event(
                AuditKind::PasswordChangeFailed,
                Some(&user.id),
                meta,
                detail,
            );
            self.store.append_audit(&[event]).await?;
        }
        *pending = Some(ShadowPending {
            route: ShadowRoute::ChangePassword,
            upstream: upstream.to_owned(),
            meta: meta.clone(),
            upstream_result: result.clone(),
            before,
            password: change.current,
            new: Some(change.new),
            keep_token: Some(caller_digest.to_owned()),
            created: false,
            after: Deferred::default(),
        });
        result.map(|()| Outcome::PasswordChanged { user })
    }

    pub(crate) async fn snapshot(&self, key: UserKey<'_>) -> Result<Option<Snapshot>, Error> {
        let Some(user) = self.store.find_user(key).await? else {
            return Ok(None);
        };
        let credential = self.store.credential(&user.id).await?;
        Ok(Some((user, credential.map(|c| (c.hash, c.version)))))
    }

    /// Works out what credgate would have answered (reads only, against the snapshot), then
    /// brings the local copy in line with what the upstream accepted. Runs off the response
    /// path; a failure to sync is logged, never the caller's.
    pub async fn shadow_settle(&self, mut pending: ShadowPending) -> ShadowVerdict {
        self.complete(std::mem::take(&mut pending.after)).await;
        let local = self.shadow_local(&pending).await;
        let mut synced = pending.created;
        if pending.upstream_result.is_ok() && !pending.created {
            match self.shadow_sync(&pending, &local).await {
                Ok(done) => synced |= done,
                Err(e) => {
                    tracing::warn!(upstream = %pending.upstream, kind = e.kind(), "shadow sync failed")
                }
            }
        }
        ShadowVerdict {
            route: pending.route,
            not_synced: pending.before.is_none()
                || pending.route.unknowable(&pending.upstream_result),
            upstream: pending.upstream_result,
            local,
            synced,
        }
    }

    async fn shadow_local(&self, p: &ShadowPending) -> Result<(), Error> {
        match p.route {
            ShadowRoute::Login | ShadowRoute::ChangePassword => {}
            // Answered the same whoever asks.
            ShadowRoute::RequestReset | ShadowRoute::ValidateReset => return Ok(()),
            ShadowRoute::ResetPassword => return self.reset_local(p).await,
        }
        let Some((user, Some((hash, _)))) = &p.before else {
            self.hasher.verify_dummy(&p.password).await?;
            return Err(Error::InvalidCredentials);
        };
        if !self.hasher.verify(&p.password, hash).await? {
            return Err(Error::InvalidCredentials);
        }
        let Some(new) = &p.new else { return Ok(()) };
        if new.expose().chars().any(char::is_control) {
            return Err(Error::invalid("new", FieldReason::Invalid));
        }
        self.policy_verdict(user, new, Some(Current::Plain(&p.password)))
            .await
    }

    /// Local policy and history on `new`, as credgate alone would judge it.
    async fn policy_verdict(
        &self,
        user: &User,
        new: &Password,
        current: Option<Current<'_>>,
    ) -> Result<(), Error> {
        let mut broken = self.config.policy.check(&new.normalized(), &user.username);
        if let (true, Some(current)) = (broken.is_empty(), current) {
            broken.extend(self.history_rule(&user.id, new, current).await?);
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(Error::PolicyViolation { rules: broken })
        }
    }

    /// What credgate would have answered to a completion, were the upstream's token valid
    /// here: the local policy (and history) on the new password.
    async fn reset_local(&self, p: &ShadowPending) -> Result<(), Error> {
        let (Some((user, credential)), Some(new)) = (&p.before, &p.new) else {
            return Ok(());
        };
        if user.externally_managed {
            return Err(Error::ExternallyManaged);
        }
        let current = credential.as_ref().map(|(hash, _)| Current::Hash(hash));
        self.policy_verdict(user, new, current).await
    }

    /// Replaces the local hash by one of the password the upstream now holds (a changed or
    /// reset password, or a login whose password differs here); flags a password local policy
    /// would refuse. Returns whether anything changed.
    async fn shadow_sync(
        &self,
        p: &ShadowPending,
        local: &Result<(), Error>,
    ) -> Result<bool, Error> {
        let Some((user, Some((_, version)))) = &p.before else {
            return Ok(false);
        };
        if matches!(
            p.route,
            ShadowRoute::RequestReset | ShadowRoute::ValidateReset
        ) {
            return Ok(false);
        }
        let password = match (&p.new, local) {
            (Some(new), _) => new,
            (None, Ok(())) => return Ok(false),
            (None, Err(_)) => &p.password,
        };
        let broken: Vec<&str> = self
            .config
            .policy
            .check(&password.normalized(), &user.username)
            .iter()
            .map(PolicyRule::name)
            .collect();
        let detail = json!({"upstream": p.upstream, "synced": true, "policy_failures": broken});
        let audit = match p.route {
            ShadowRoute::ResetPassword => vec![
                self.event(AuditKind::PasswordReset, Some(&user.id), &p.meta, detail),
                self.event(
                    AuditKind::SessionsRevoked,
                    Some(&user.id),
                    &p.meta,
                    json!({"kept_current": false, "upstream": p.upstream}),
                ),
            ],
            _ => vec![self.event(AuditKind::PasswordChanged, Some(&user.id), &p.meta, detail)],
        };
        let update = PasswordUpdate {
            user_id: user.id.clone(),
            expected_version: *version,
            new_hash: self.hasher.hash(password).await?,
            keep_token: p.keep_token.clone(),
            history_limit: self.config.policy.history.saturating_sub(1),
            now: self.clock.now(),
            audit,
        };
        self.store.update_password(&update).await?;
        let flag = (!broken.is_empty()).then(|| broken.join(","));
        if flag.as_deref() != user.profile.get(LEGACY_POLICY_FLAG).map(String::as_str) {
            self.store
                .set_profile_entry(&user.id, LEGACY_POLICY_FLAG, flag.as_deref())
                .await?;
        }
        let uid = user.id.clone();
        let keep = p.keep_token.clone();
        let _ = self.tokens.invalidate_entries_if(move |digest, principal| {
            principal.token.user_id.as_deref() == Some(uid.as_str())
                && keep.as_deref() != Some(digest.as_str())
        });
        Ok(true)
    }
}

/// One stored comparison: canonical outcomes and statuses, the fields that differ; never a
/// password, token or cookie value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShadowComparison {
    pub at: Timestamp,
    pub dialect: String,
    pub route: String,
    pub request_id: String,
    /// `agreement`, `divergence` or `not_synced`.
    pub result: String,
    pub kind: Option<String>,
    pub upstream_outcome: String,
    pub upstream_status: u16,
    pub local_outcome: String,
    pub local_status: u16,
    pub fields: Vec<String>,
    /// The exchange with every secret replaced by a placeholder (for example files).
    pub exchange: Option<serde_json::Value>,
    pub synced: bool,
}

/// A stored comparison with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShadowRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub comparison: ShadowComparison,
}

/// Which comparisons to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct ShadowQuery {
    pub dialect: Option<String>,
    pub route: Option<String>,
    pub result: Option<String>,
    pub kind: Option<String>,
    pub since: Option<Timestamp>,
    pub limit: u32,
}

/// Comparisons of one (dialect, route, result, kind), counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowTally {
    pub dialect: String,
    pub route: String,
    pub result: String,
    pub kind: Option<String>,
    pub count: u64,
    pub synced: u64,
}

/// How the stored comparisons are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ShadowBounds {
    pub max_records: u32,
    /// Comparisons older than this (`at < oldest`) are dropped.
    pub oldest: Timestamp,
}

impl CredentialService {
    pub async fn record_shadow(
        &self,
        comparison: &ShadowComparison,
        bounds: ShadowBounds,
    ) -> Result<(), Error> {
        Ok(self.store.record_shadow(comparison, bounds).await?)
    }

    pub async fn shadow_comparisons(
        &self,
        query: &ShadowQuery,
    ) -> Result<Vec<ShadowRecord>, Error> {
        Ok(self.store.shadow_comparisons(query).await?)
    }

    pub async fn shadow_tallies(&self, since: Timestamp) -> Result<Vec<ShadowTally>, Error> {
        Ok(self.store.shadow_tallies(since).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(upstream: Result<(), Error>, local: Result<(), Error>) -> ShadowVerdict {
        ShadowVerdict {
            route: ShadowRoute::Login,
            upstream,
            local,
            not_synced: false,
            synced: false,
        }
    }

    fn policy(rules: Vec<PolicyRule>) -> Error {
        Error::PolicyViolation { rules }
    }

    #[test]
    fn outcomes_are_compared_by_kind_and_divergences_classified() {
        assert_eq!(verdict(Ok(()), Ok(())).result(), ShadowResult::Agreement);
        let wrong = || Err(Error::InvalidCredentials);
        assert_eq!(verdict(wrong(), wrong()).result(), ShadowResult::Agreement);
        assert_eq!(
            verdict(wrong(), Ok(())).result(),
            ShadowResult::Divergence("credentials")
        );
        let short = policy(vec![PolicyRule::MinLength { min: 20 }]);
        assert_eq!(
            verdict(Ok(()), Err(short.clone())).result(),
            ShadowResult::Divergence("policy")
        );
        // Both refuse on policy, but for different rules: still a policy divergence.
        let history = policy(vec![PolicyRule::History { last: 5 }]);
        assert_eq!(
            verdict(Err(short.clone()), Err(history)).result(),
            ShadowResult::Divergence("policy")
        );
        assert_eq!(
            verdict(Err(short.clone()), Err(short)).result(),
            ShadowResult::Agreement
        );
        assert_eq!(
            verdict(Err(Error::Forbidden), Ok(())).result(),
            ShadowResult::Divergence("authorization")
        );
        assert_eq!(
            verdict(Ok(()), Err(Error::NotFound)).result(),
            ShadowResult::Divergence("not_found")
        );
    }

    #[test]
    fn an_upstream_reset_token_cannot_be_judged_here() {
        let refused = Err(Error::ResetTokenInvalid);
        assert!(ShadowRoute::ValidateReset.unknowable(&Ok(())));
        assert!(ShadowRoute::ResetPassword.unknowable(&refused));
        assert!(!ShadowRoute::ResetPassword.unknowable(&Ok(())));
        assert!(!ShadowRoute::RequestReset.unknowable(&Ok(())));
        assert!(!ShadowRoute::Login.unknowable(&refused));
    }

    #[test]
    fn an_upstream_outage_is_unavailable_and_unknown_users_are_not_synced() {
        let mut v = verdict(Err(Error::Unavailable), Ok(()));
        v.not_synced = true;
        assert_eq!(v.result(), ShadowResult::Divergence("unavailable"));
        let mut v = verdict(Ok(()), Err(Error::InvalidCredentials));
        v.not_synced = true;
        assert_eq!(v.result(), ShadowResult::NotSynced);
        assert_eq!(v.result().as_str(), "not_synced");
        assert_eq!(v.result().kind(), None);
    }
}
