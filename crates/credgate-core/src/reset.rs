//! Password resets: request -> deliver -> validate -> reset, and Et-App's security-answer and
//! code exchange. Every answer to the client is the same whether or not the user exists.

use std::sync::Arc;

use rand::Rng;
use serde_json::json;

use crate::command::Outcome;
use crate::error::{Error, FieldReason, PolicyRule};
use crate::model::{
    AuditKind, PasswordUpdate, RequestMeta, ResetKind, ResetRecord, SecurityAnswer, User, UserKey,
};
use crate::notify::ResetNotice;
use crate::secret::{Password, SecretToken};
use crate::service::{CredentialService, Current};
use crate::store::StoreError;
use crate::token;

/// Digits in an Et-App one-time code.
const CODE_DIGITS: u32 = 8;
/// Failed code exchanges one client address may make while a code lives. A code exchange names
/// no user, so guesses are bounded per address: 10 tries at 10^8 codes is a 1 in 10^7 chance.
const CODE_ATTEMPTS: u32 = 10;

impl CredentialService {
    pub(crate) async fn request_reset(
        &self,
        username: &str,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let user = self.store.find_user(UserKey::Username(username)).await?;
        match user {
            Some(user) if !user.externally_managed => {
                self.issue_reset(&user, ResetKind::Token, token::generate(), meta)
                    .await?;
            }
            other => {
                // Same answer, and about the same work (one audited write), as a real request.
                // A user not migrated yet: the legacy system's own reset, where it has one.
                let outcome = if other.is_some() {
                    "externally_managed"
                } else {
                    self.upstream_reset(username).await?
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
        let record = new_reset(&user.id, kind, &secret, now, ttl);
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
    /// Unknown, expired, used and someone else's tokens are all the same error.
    pub(crate) async fn valid_reset(
        &self,
        username: Option<&str>,
        secret: &SecretToken,
    ) -> Result<(ResetRecord, User), Error> {
        let record = self
            .store
            .find_reset(&token::digest(secret.expose()))
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
        let (record, user) = self.valid_reset(username, secret).await?;
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
        if broken.is_empty()
            && self
                .reuses_recent(&user.id, &new, Current::Hash(&credential.hash))
                .await?
        {
            broken.push(PolicyRule::History {
                last: self.config.policy.history,
            });
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
        let address = meta.client_addr.clone().unwrap_or_default();
        let failures = self.code_failures.get(&address).await.unwrap_or(0);
        if failures >= CODE_ATTEMPTS {
            let detail = json!({"reason": "too_many_code_attempts"});
            let audit = self.event(AuditKind::PasswordResetFailed, None, meta, detail);
            self.store.append_audit(&[audit]).await?;
            if self.config.record_metrics {
                crate::telemetry::count_refusal(&meta.dialect, "code");
            }
            return Err(Error::RateLimited {
                retry_after: self.config.reset_code_ttl.as_secs(),
            });
        }
        let consumed = self
            .store
            .consume_reset(&token::digest(code.expose()), self.clock.now())
            .await?;
        let Some(record) = consumed.filter(|r| r.kind == ResetKind::Code) else {
            self.code_failures.insert(address, failures + 1).await;
            return Err(Error::ResetTokenInvalid);
        };
        let user = self
            .store
            .find_user(UserKey::Id(&record.user_id))
            .await?
            .ok_or(Error::ResetTokenInvalid)?;
        let secret = token::generate();
        let now = self.clock.now();
        let reset = new_reset(
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

/// An unused reset of `secret`, stored by its digest.
fn new_reset(
    user_id: &str,
    kind: ResetKind,
    secret: &SecretToken,
    now: i64,
    ttl: std::time::Duration,
) -> ResetRecord {
    ResetRecord {
        digest: token::digest(secret.expose()),
        user_id: user_id.to_owned(),
        kind,
        created_at: now,
        expires_at: now + ttl.as_secs() as i64,
        used_at: None,
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
