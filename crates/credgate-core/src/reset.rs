//! Password resets: request -> deliver -> validate -> reset, and Et-App's security-answer and
//! code exchange. Every answer to the client is the same whether or not the user exists.

use std::sync::Arc;

use rand::Rng;
use serde_json::json;

use crate::command::Outcome;
use crate::error::{Error, FieldReason, PolicyRule};
use crate::limits::{Budgets, Reserved};
use crate::model::{
    AuditKind, PasswordUpdate, RequestMeta, ResetKind, ResetRecord, SecurityAnswer, User, UserKey,
};
use crate::notify::ResetNotice;
use crate::secret::{Password, SecretToken};
use crate::service::{CredentialService, Current};
use crate::store::StoreError;
use crate::token;
use crate::upstream::UpstreamReset;

/// Digits in an Et-App one-time code.
const CODE_DIGITS: u32 = 8;

impl CredentialService {
    /// Answers the same whatever happens: a throttled request (per username, known or not, and
    /// per address) sends nothing and keeps the pending reset; a user not migrated yet is looked
    /// up in the legacy system after the answer, so its delay or failure never shows.
    pub(crate) async fn request_reset(
        &self,
        username: &str,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let user = self.store.find_user(UserKey::Username(username)).await?;
        let user_id = user.as_ref().map(|u| u.id.as_str());
        let budgets = Budgets::reset_request(&self.config.limits, username, meta);
        if let Reserved::Refused { .. } = self.try_reserve(budgets, user_id, meta).await? {
            let detail = json!({"username": username, "outcome": "throttled"});
            let audit = self.event(AuditKind::PasswordResetRequested, user_id, meta, detail);
            self.store.append_audit(&[audit]).await?;
            return Ok(Outcome::ResetRequested);
        }
        match user {
            Some(user) if !user.externally_managed => {
                self.issue_reset(&user, ResetKind::Token, token::generate(), meta)
                    .await?;
            }
            other => {
                // Same answer, and about the same work (one audited write), as a real request.
                let outcome = match (&other, &self.upstream) {
                    (Some(_), _) => "externally_managed",
                    (None, Some(_)) => {
                        self.spawn_upstream_reset(username, meta);
                        "looked_up_upstream"
                    }
                    (None, None) => "unknown_user",
                };
                let detail = json!({"username": username, "outcome": outcome});
                let user_id = other.as_ref().map(|u| u.id.as_str());
                self.store
                    .append_audit(&[self.event(
                        AuditKind::PasswordResetRequested,
                        user_id,
                        meta,
                        detail,
                    )])
                    .await?;
            }
        }
        Ok(Outcome::ResetRequested)
    }

    /// A reset for a user unknown here goes to the legacy system's own reset, where it has one,
    /// after the answer: bounded in time and in number (skipped when too many are running), its
    /// outcome audited.
    fn spawn_upstream_reset(&self, username: &str, meta: &RequestMeta) {
        let Some(upstream) = self.upstream.clone() else {
            return;
        };
        let mut audit = self.event(
            AuditKind::PasswordResetRequested,
            None,
            meta,
            json!({"username": username}),
        );
        let Ok(permit) = Arc::clone(&self.upstream_resets).try_acquire_owned() else {
            audit.detail["outcome"] = json!("upstream_busy");
            let store = Arc::clone(&self.store);
            tokio::spawn(async move { store.append_audit(&[audit]).await });
            return;
        };
        let (store, timeout) = (Arc::clone(&self.store), self.config.upstream_reset_timeout);
        let username = username.to_owned();
        tokio::spawn(async move {
            let outcome =
                match tokio::time::timeout(timeout, upstream.request_reset(&username)).await {
                    Ok(Ok(UpstreamReset::Forwarded { .. })) => "forwarded_to_upstream",
                    Ok(Ok(UpstreamReset::Unsupported)) => "unknown_user",
                    Ok(Err(_)) => "upstream_unavailable",
                    Err(_) => "upstream_timeout",
                };
            drop(permit);
            audit.detail["outcome"] = json!(outcome);
            if let Err(e) = store.append_audit(&[audit]).await {
                tracing::error!(error = %e, "could not audit an upstream reset");
            }
        });
    }

    /// Stores a reset's digest and hands the secret to the notifier, off the request path.
    async fn issue_reset(
        &self,
        user: &User,
        kind: ResetKind,
        secret: SecretToken,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let ttl = match kind {
            ResetKind::Token => self.config.reset_token_ttl,
            ResetKind::Code => self.config.reset_code_ttl,
        };
        let record = self.new_reset(&user.id, kind, &secret, now, ttl);
        let detail = json!({"kind": kind.as_str(), "outcome": "issued"});
        let audit = self.event(
            AuditKind::PasswordResetRequested,
            Some(&user.id),
            meta,
            detail,
        );
        self.store
            .insert_reset(&record, self.config.reset_replaces_outstanding, &[audit])
            .await?;
        let notice = ResetNotice {
            user_id: user.id.clone(),
            username: user.username.clone(),
            kind,
            secret,
            expires_at: record.expires_at,
            profile: user.profile.clone(),
            login: false,
        };
        let (notifier, store) = (Arc::clone(&self.notifier), Arc::clone(&self.store));
        let failure = self.event(
            AuditKind::ResetDeliveryFailed,
            Some(&user.id),
            meta,
            json!({}),
        );
        tokio::spawn(async move {
            if let Err(why) = notifier.deliver(&notice).await {
                tracing::warn!(user_id = %notice.user_id, %why, "reset delivery failed");
                let mut failure = failure;
                failure.detail = json!({"kind": notice.kind.as_str(), "reason": why});
                if let Err(e) = store.append_audit(&[failure]).await {
                    tracing::error!(error = %e, "could not audit a failed reset delivery");
                }
            }
        });
        Ok(())
    }

    /// The reset a token stands for, if it is a live token of `username` (when given).
    /// Unknown, expired, used and someone else's tokens are all the same error. Each guess
    /// draws on the reset-token budgets (per address, and per user when one is named).
    pub(crate) async fn valid_reset(
        &self,
        username: Option<&str>,
        secret: &SecretToken,
        meta: &RequestMeta,
    ) -> Result<(ResetRecord, User), Error> {
        let budgets = Budgets::reset_token(&self.config.limits, username, meta);
        let held = self.reserve(budgets, None, meta).await?;
        let record = self
            .store
            .find_reset(&self.config.digest_key.digest(secret.expose()))
            .await?
            .ok_or(Error::ResetTokenInvalid)?;
        if record.kind != ResetKind::Token
            || record.used_at.is_some()
            || record.expires_at <= self.clock.now()
        {
            return Err(Error::ResetTokenInvalid);
        }
        let user = self
            .store
            .find_user(UserKey::Id(&record.user_id))
            .await?
            .ok_or(Error::ResetTokenInvalid)?;
        if username.is_some_and(|name| name != user.username) {
            return Err(Error::ResetTokenInvalid);
        }
        self.forgive(held).await?;
        Ok((record, user))
    }

    pub(crate) async fn reset_password(
        &self,
        username: Option<&str>,
        secret: &SecretToken,
        new: Password,
        confirm: Option<Password>,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let (record, user) = self.valid_reset(username, secret, meta).await?;
        if confirm.is_some_and(|c| c != new) {
            return Err(Error::invalid("confirm", FieldReason::Mismatch));
        }
        if user.externally_managed {
            return Err(Error::ExternallyManaged);
        }
        if new.expose().chars().any(char::is_control) {
            return Err(Error::invalid("new", FieldReason::Invalid));
        }
        let credential = self
            .store
            .credential(&user.id)
            .await?
            .ok_or(Error::Internal)?;
        let mut broken = self.config.policy.check(&new.normalized(), &user.username);
        if broken.is_empty() {
            let current = Current::Hash(&credential.hash);
            broken.extend(self.history_rule(&user.id, &new, current).await?);
        }
        if !broken.is_empty() {
            let names: Vec<_> = broken.iter().map(PolicyRule::name).collect();
            let detail = json!({"reason": "policy", "rules": names});
            self.store
                .append_audit(&[self.event(
                    AuditKind::PasswordResetFailed,
                    Some(&user.id),
                    meta,
                    detail,
                )])
                .await?;
            return Err(Error::PolicyViolation { rules: broken });
        }
        let update = PasswordUpdate {
            user_id: user.id.clone(),
            expected_version: credential.version,
            new_hash: self.hasher.hash(&new).await?,
            keep_token: None,
            history_limit: self.config.policy.history.saturating_sub(1),
            now: self.clock.now(),
            audit: vec![
                self.event(AuditKind::PasswordReset, Some(&user.id), meta, json!({})),
                self.event(
                    AuditKind::SessionsRevoked,
                    Some(&user.id),
                    meta,
                    json!({"kept_current": false}),
                ),
            ],
        };
        match self.store.complete_reset(&record.digest, &update).await {
            Ok(()) => {}
            // Spent by a concurrent reset between our check and our commit.
            Err(StoreError::NotFound) => return Err(Error::ResetTokenInvalid),
            Err(e) => return Err(e.into()),
        }
        let uid = user.id.clone();
        let _ = self
            .tokens
            .invalidate_entries_if(move |_, p| p.token.user_id.as_deref() == Some(uid.as_str()));
        Ok(Outcome::PasswordReset { user })
    }

    /// Et-App step one: a right security answer sends a one-time code; a wrong answer and an
    /// unknown user get the same refusal after the same bcrypt work.
    pub(crate) async fn request_reset_code(
        &self,
        username: &str,
        answer: &Password,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let user = self.store.find_user(UserKey::Username(username)).await?;
        let budgets = Budgets::answer(&self.config.limits, username, meta);
        let held = self
            .reserve(budgets, user.as_ref().map(|u| u.id.as_str()), meta)
            .await?;
        let stored = match &user {
            Some(u) => self.store.security_answer(&u.id).await?,
            None => None,
        };
        let answer = Password::new(normalize_answer(answer.expose()));
        let right = match &stored {
            Some(s) => self.hasher.verify(&answer, &s.answer_hash).await?,
            None => {
                self.hasher.verify_dummy(&answer).await?;
                false
            }
        };
        match user {
            Some(user) if right && !user.externally_managed => {
                self.forgive(held).await?;
                let code = rand::rngs::OsRng.gen_range(0..10u64.pow(CODE_DIGITS));
                let code =
                    SecretToken::new(format!("{code:0width$}", width = CODE_DIGITS as usize));
                self.issue_reset(&user, ResetKind::Code, code, meta).await?;
                Ok(Outcome::ResetRequested)
            }
            user => {
                let detail = json!({"username": username, "outcome": "wrong_answer"});
                let user_id = user.as_ref().map(|u| u.id.as_str());
                self.store
                    .append_audit(&[self.event(
                        AuditKind::PasswordResetFailed,
                        user_id,
                        meta,
                        detail,
                    )])
                    .await?;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Et-App step two: a live code, used once, becomes a reset token.
    pub(crate) async fn exchange_reset_code(
        &self,
        code: &SecretToken,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        // A code names no user: guesses are bounded per address, in the store (every instance
        // shares the count), the slot taken before the code is looked up.
        let held = self
            .reserve(Budgets::code(&self.config.limits, meta), None, meta)
            .await?;
        let consumed = self
            .store
            .consume_reset(
                &self.config.digest_key.digest(code.expose()),
                self.clock.now(),
            )
            .await?;
        let Some(record) = consumed.filter(|r| r.kind == ResetKind::Code) else {
            return Err(Error::ResetTokenInvalid);
        };
        self.forgive(held).await?;
        let user = self
            .store
            .find_user(UserKey::Id(&record.user_id))
            .await?
            .ok_or(Error::ResetTokenInvalid)?;
        let secret = token::generate();
        let now = self.clock.now();
        let reset = self.new_reset(
            &user.id,
            ResetKind::Token,
            &secret,
            now,
            self.config.reset_token_ttl,
        );
        let audit = self.event(
            AuditKind::ResetCodeExchanged,
            Some(&user.id),
            meta,
            json!({}),
        );
        self.store
            .insert_reset(&reset, self.config.reset_replaces_outstanding, &[audit])
            .await?;
        Ok(Outcome::ResetIssued { token: secret })
    }

    /// Sets a user's security question and answer (stored as a bcrypt hash).
    pub async fn set_security_answer(
        &self,
        user_id: &str,
        question: String,
        answer: Password,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let user = self
            .store
            .find_user(UserKey::Id(user_id))
            .await?
            .ok_or(Error::NotFound)?;
        let normalized = normalize_answer(answer.expose());
        if question.trim().is_empty() || question.chars().any(char::is_control) {
            return Err(Error::invalid("question", FieldReason::Invalid));
        }
        if normalized.is_empty() || normalized.len() > crate::hasher::BCRYPT_MAX_BYTES {
            return Err(Error::invalid("answer", FieldReason::Invalid));
        }
        let answer_hash = self.hasher.hash(&Password::new(normalized)).await?;
        let audit = self.event(
            AuditKind::SecurityAnswerSet,
            Some(&user.id),
            meta,
            json!({"question": question}),
        );
        self.store
            .set_security_answer(
                &user.id,
                &SecurityAnswer {
                    question,
                    answer_hash,
                },
                &audit,
            )
            .await?;
        Ok(())
    }
}

impl CredentialService {
    /// An unused reset of `secret`, stored by its keyed digest.
    fn new_reset(
        &self,
        user_id: &str,
        kind: ResetKind,
        secret: &SecretToken,
        now: i64,
        ttl: std::time::Duration,
    ) -> ResetRecord {
        ResetRecord {
            digest: self.config.digest_key.digest(secret.expose()),
            user_id: user_id.to_owned(),
            kind,
            created_at: now,
            expires_at: now + ttl.as_secs() as i64,
            used_at: None,
        }
    }
}

/// Answers match ignoring case and surrounding or repeated spaces, as people type them.
fn normalize_answer(answer: &str) -> String {
    answer
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}
