//! Resets of client dialects bound to an upstream (`passthrough` or `shadow`): the legacy
//! system, which holds the passwords, also runs their resets. A reset request, a token check
//! and a reset completion go to the upstream in its dialect (when its dialect has the route);
//! the client receives the upstream's outcome. The guessing limits are this gateway's, taken
//! before the upstream is asked, as for a local reset; every step is audited naming the upstream.
//!
//! In passthrough mode an accepted completion ends the user's sessions held here (as a local
//! reset ends them). In shadow mode the local copy follows off the response path: the new
//! password is stored with a fresh hash (flagged, not refused, when local policy would refuse
//! it), the user's local sessions end, and the comparison is recorded
//! ([`crate::shadow::ShadowPending`]). A reset token is the upstream's: it cannot be checked
//! here, so a token check, and a completion the upstream refused for its token, are counted as
//! `not_synced` rather than compared.

use std::collections::BTreeMap;

use serde_json::json;

use crate::command::{Command, Outcome};
use crate::error::{Error, FieldReason};
use crate::limits::{Budgets, Held, Reserved};
use crate::model::{AuditKind, RequestMeta, User, UserKey};
use crate::passthrough::{BindingMode, UpstreamBinding};
use crate::secret::{Password, SecretToken};
use crate::service::CredentialService;
use crate::shadow::{ShadowPending, ShadowRoute};

/// A step of a reset the upstream runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStep {
    /// Start a reset for a username (the upstream mails its user a token).
    Request,
    /// Check a token the upstream issued.
    Validate,
    /// Set a new password with a token the upstream issued.
    Complete,
}

impl ResetStep {
    /// The step a command is, if it is one an upstream may run.
    pub fn of(command: &Command) -> Option<Self> {
        match command {
            Command::RequestReset { .. } => Some(Self::Request),
            Command::ValidateReset { .. } => Some(Self::Validate),
            Command::ResetPassword { .. } => Some(Self::Complete),
            _ => None,
        }
    }

    fn route(self) -> ShadowRoute {
        match self {
            Self::Request => ShadowRoute::RequestReset,
            Self::Validate => ShadowRoute::ValidateReset,
            Self::Complete => ShadowRoute::ResetPassword,
        }
    }
}

/// One reset step for the upstream to run. `Debug` shows no secret.
#[derive(Debug)]
pub struct UpstreamResetRequest<'a> {
    pub step: ResetStep,
    /// The username, when the client dialect's request names one.
    pub username: Option<&'a str>,
    pub token: Option<&'a SecretToken>,
    pub new: Option<&'a Password>,
}

/// What a step's guessing budgets said.
enum Slots {
    /// The reset-request budget is spent: nothing is sent.
    Throttled,
    /// A request counted (its slot is never given back).
    Counted,
    /// A token guess's slots: forgiven when the upstream accepts the token.
    Held(Held),
}

/// A reset command's values.
struct Parts {
    username: Option<String>,
    token: Option<SecretToken>,
    new: Option<Password>,
}

impl Parts {
    fn of(command: Command) -> Result<Self, Error> {
        let (username, token, new, confirm) = match command {
            Command::RequestReset { username } => (Some(username), None, None, None),
            Command::ValidateReset { username, token } => (username, Some(token), None, None),
            Command::ResetPassword {
                username,
                token,
                new,
                confirm,
            } => (username, Some(token), Some(new), confirm),
            _ => return Err(Error::Internal),
        };
        if let (Some(confirm), Some(new)) = (&confirm, &new) {
            if confirm != new {
                return Err(Error::invalid("confirm", FieldReason::Mismatch));
            }
        }
        if new
            .as_ref()
            .is_some_and(|n| n.expose().chars().any(char::is_control))
        {
            return Err(Error::invalid("new", FieldReason::Invalid));
        }
        Ok(Self {
            username: username.filter(|u| !u.is_empty()),
            token,
            new,
        })
    }
}

impl CredentialService {
    /// Whether the upstream bound to `dialect` runs reset step `step` (its dialect has the
    /// route); the steps it does not run stay this gateway's own.
    pub(crate) fn upstream_runs_reset(&self, dialect: &str, step: ResetStep) -> bool {
        self.passthrough
            .as_ref()
            .is_some_and(|a| a.offers_reset(dialect, step))
    }

    /// Runs a reset step at the upstream `binding` names; in shadow mode leaves the comparison
    /// and the local sync in `pending`.
    pub(crate) async fn forward_reset(
        &self,
        binding: &UpstreamBinding,
        step: ResetStep,
        command: Command,
        meta: &RequestMeta,
        pending: &mut Option<ShadowPending>,
    ) -> Result<Outcome, Error> {
        let authority = self.passthrough.as_ref().ok_or(Error::Internal)?;
        let parts = Parts::of(command)?;
        let username = parts.username.as_deref();
        let shadow = binding.mode == BindingMode::Shadow;
        let before = match (shadow, username) {
            (true, Some(name)) => self.snapshot(UserKey::Username(name)).await?,
            _ => None,
        };
        let user_id = before.as_ref().map(|(u, _)| u.id.clone());
        let slots = match self
            .reset_slots(step, username, user_id.as_deref(), &binding.upstream, meta)
            .await?
        {
            // Throttled: the same answer, nothing sent (as a local reset request).
            Slots::Throttled => return Ok(Outcome::ResetRequested),
            Slots::Counted => None,
            Slots::Held(held) => Some(held),
        };
        let request = UpstreamResetRequest {
            step,
            username,
            token: parts.token.as_ref(),
            new: parts.new.as_ref(),
        };
        let result = authority.reset(&meta.dialect, &request).await;
        match (&result, slots) {
            (_, None) => {}
            (Ok(()), Some(held)) => self.forgive(held).await?,
            // A wrong token is a guess: its slots stay taken.
            (Err(Error::ResetTokenInvalid), Some(_)) => {}
            (Err(_), Some(held)) => self.give_back(held).await?,
        }
        self.audit_forwarded_reset(step, &result, username, user_id.as_deref(), binding, meta)
            .await?;
        if !shadow && step == ResetStep::Complete && result.is_ok() {
            if let Some(name) = username {
                self.end_upstream_sessions_of(&binding.upstream, name, meta)
                    .await?;
            }
        }
        let user = match &before {
            Some((user, _)) => user.clone(),
            None => named_user(username, self.clock.now()),
        };
        if shadow {
            *pending = Some(ShadowPending::for_reset(
                step.route(),
                &binding.upstream,
                meta,
                result.clone(),
                before,
                parts.new,
            ));
        }
        result.map(|()| match step {
            ResetStep::Request => Outcome::ResetRequested,
            ResetStep::Validate => Outcome::ResetValid,
            ResetStep::Complete => Outcome::PasswordReset { user },
        })
    }

    /// The guessing slots a step takes before the upstream is asked: a request draws on the
    /// reset-request budgets (refused: answer the same without sending), a token on the
    /// reset-token budgets (refused: `RateLimited`).
    async fn reset_slots(
        &self,
        step: ResetStep,
        username: Option<&str>,
        user_id: Option<&str>,
        upstream: &str,
        meta: &RequestMeta,
    ) -> Result<Slots, Error> {
        match step {
            ResetStep::Request => {
                let name = username.unwrap_or_default();
                let budgets = Budgets::reset_request(&self.config.limits, name, meta);
                match self.try_reserve(budgets, user_id, meta).await? {
                    // A request's slot is its count, never given back (as a local request).
                    Reserved::Held(_) => Ok(Slots::Counted),
                    Reserved::Refused { .. } => {
                        let detail =
                            json!({"username": name, "upstream": upstream, "outcome": "throttled"});
                        let audit =
                            self.event(AuditKind::PasswordResetRequested, user_id, meta, detail);
                        self.store.append_audit(&[audit]).await?;
                        Ok(Slots::Throttled)
                    }
                }
            }
            ResetStep::Validate | ResetStep::Complete => {
                let budgets = Budgets::reset_token(&self.config.limits, username, meta);
                Ok(Slots::Held(self.reserve(budgets, user_id, meta).await?))
            }
        }
    }

    async fn audit_forwarded_reset(
        &self,
        step: ResetStep,
        result: &Result<(), Error>,
        username: Option<&str>,
        user_id: Option<&str>,
        binding: &UpstreamBinding,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let mut detail = json!({"username": username, "upstream": binding.upstream});
        let kind = match (step, result) {
            (ResetStep::Request, Ok(())) => {
                detail["outcome"] = json!("forwarded_to_upstream");
                AuditKind::PasswordResetRequested
            }
            (ResetStep::Request, Err(e)) => {
                detail["outcome"] = json!(e.kind());
                AuditKind::PasswordResetRequested
            }
            // A token the upstream accepted is no event of its own (as locally).
            (ResetStep::Validate, Ok(())) => return Ok(()),
            (ResetStep::Complete, Ok(())) => AuditKind::PasswordReset,
            (_, Err(e)) => {
                detail["reason"] = json!(e.kind());
                AuditKind::PasswordResetFailed
            }
        };
        let event = self.event(kind, user_id, meta, detail);
        self.store.append_audit(&[event]).await?;
        Ok(())
    }

    /// After a reset the upstream accepted (passthrough): every session held here for the
    /// user through that upstream ends, as a local reset ends them all.
    async fn end_upstream_sessions_of(
        &self,
        upstream: &str,
        username: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let detail =
            json!({"username": username, "upstream": upstream, "reason": "password_reset"});
        let audit = self.event(AuditKind::TokenRevoked, None, meta, detail);
        self.store
            .delete_other_upstream_sessions(upstream, username, "", &[audit])
            .await?;
        Ok(())
    }
}

/// The user a completion's answer names when no local user stands for it (passthrough, or a
/// user not synced yet): known by the name the client gave.
fn named_user(username: Option<&str>, now: crate::clock::Timestamp) -> User {
    let name = username.unwrap_or_default().to_owned();
    User {
        id: name.clone(),
        username: name,
        admin: false,
        externally_managed: false,
        aliases: BTreeMap::new(),
        profile: BTreeMap::new(),
        created_at: now,
    }
}
