//! The [`Store`](crate::Store) traits for [`CachingStore`]: reads of users through the cache,
//! every other call forwarded; each write that can change a user or end a token forgets the
//! cached entries it touches and publishes the change.

use async_trait::async_trait;

use crate::cache::{CachingStore, Change};
use crate::clock::Timestamp;
use crate::import::{ImportOptions, ImportOutcome, ImportUser};
use crate::model::{
    App, AuditEvent, AuditQuery, AuditRecord, Client, Credential, NewUser, PasswordUpdate,
    ResetRecord, SecurityAnswer, TokenRecord, User, UserKey,
};
use crate::passthrough::UpstreamSessionRecord;
use crate::shadow::{ShadowBounds, ShadowComparison, ShadowQuery, ShadowRecord, ShadowTally};
use crate::store::{
    AttemptAsk, AttemptStore, AuditLog, ClientStore, HashStore, HashSwap, Health, Reservation,
    ResetStore, ShadowStore, SlotSettlement, StoreError, StoredHash, TokenStore, TwoFactorStore,
    UpstreamSessionStore, UserStore,
};
use crate::two_factor_model::{LoginChallenge, TwoFactor};

#[async_trait]
impl UserStore for CachingStore {
    async fn insert_user(&self, new: &NewUser, audit: &AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_user(new, audit).await
    }
    async fn find_user(&self, key: UserKey<'_>) -> Result<Option<User>, StoreError> {
        self.cached_user(key).await
    }
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<User>, StoreError> {
        self.inner.list_users(limit, offset).await
    }
    async fn credential(&self, user_id: &str) -> Result<Option<Credential>, StoreError> {
        self.inner.credential(user_id).await
    }
    async fn password_history(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.password_history(user_id, limit).await
    }
    async fn update_password(&self, update: &PasswordUpdate) -> Result<(), StoreError> {
        let result = self.inner.update_password(update).await;
        if result.is_ok() {
            self.changed(&[Change::User(update.user_id.clone())]).await;
        }
        result
    }
    async fn upgrade_hash(
        &self,
        user_id: &str,
        expected_version: i64,
        new_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        // Same password, same user data, same sessions: nothing cached changes.
        self.inner
            .upgrade_hash(user_id, expected_version, new_hash, audit)
            .await
    }
    async fn import_users(
        &self,
        users: &[ImportUser],
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let outcomes = self.inner.import_users(users, options).await?;
        if !options.dry_run && outcomes.contains(&ImportOutcome::Updated) {
            self.changed(&[Change::All]).await;
        }
        Ok(outcomes)
    }
    async fn export_users(
        &self,
        after_username: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NewUser>, StoreError> {
        self.inner.export_users(after_username, limit).await
    }
}

#[async_trait]
impl TokenStore for CachingStore {
    async fn insert_token(
        &self,
        token: &TokenRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.inner.insert_token(token, audit).await
    }
    async fn find_token(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.inner.find_token(digest).await
    }
    async fn delete_token(&self, digest: &str, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        let existed = self.inner.delete_token(digest, audit).await?;
        self.changed(&[Change::Token(digest.to_owned())]).await;
        Ok(existed)
    }
    async fn spend_refresh(&self, digest: &str, now: Timestamp) -> Result<bool, StoreError> {
        let spent = self.inner.spend_refresh(digest, now).await?;
        if spent {
            self.changed(&[Change::Token(digest.to_owned())]).await;
        }
        Ok(spent)
    }
    async fn revoke_session(
        &self,
        session_id: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        let removed = self.inner.revoke_session(session_id, audit).await?;
        self.changed(&[Change::Session(session_id.to_owned())])
            .await;
        Ok(removed)
    }
    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        // Expired tokens are refused by their expiry wherever they are cached.
        self.inner.purge_expired_tokens(now).await
    }
}

#[async_trait]
impl ClientStore for CachingStore {
    async fn insert_client(&self, client: &Client, audit: &AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_client(client, audit).await
    }
    async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.inner.find_client(client_id).await
    }
    async fn insert_app(&self, app: &App, audit: &AuditEvent) -> Result<(), StoreError> {
        self.inner.insert_app(app, audit).await
    }
    async fn find_app(&self, key_digest: &str) -> Result<Option<App>, StoreError> {
        self.inner.find_app(key_digest).await
    }
}

#[async_trait]
impl ResetStore for CachingStore {
    async fn insert_reset(
        &self,
        reset: &ResetRecord,
        replace_outstanding: bool,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.inner
            .insert_reset(reset, replace_outstanding, audit)
            .await
    }
    async fn find_reset(&self, digest: &str) -> Result<Option<ResetRecord>, StoreError> {
        self.inner.find_reset(digest).await
    }
    async fn consume_reset(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<ResetRecord>, StoreError> {
        self.inner.consume_reset(digest, now).await
    }
    async fn complete_reset(
        &self,
        digest: &str,
        update: &PasswordUpdate,
    ) -> Result<(), StoreError> {
        let result = self.inner.complete_reset(digest, update).await;
        if result.is_ok() {
            self.changed(&[Change::User(update.user_id.clone())]).await;
        }
        result
    }
    async fn set_security_answer(
        &self,
        user_id: &str,
        answer: &SecurityAnswer,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.set_security_answer(user_id, answer, audit).await
    }
    async fn security_answer(&self, user_id: &str) -> Result<Option<SecurityAnswer>, StoreError> {
        self.inner.security_answer(user_id).await
    }
}

#[async_trait]
impl AttemptStore for CachingStore {
    async fn reserve_attempts(
        &self,
        asks: &[AttemptAsk<'_>],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        self.inner.reserve_attempts(asks, now).await
    }
    async fn settle_attempts(&self, settle: &[SlotSettlement<'_>]) -> Result<(), StoreError> {
        self.inner.settle_attempts(settle).await
    }
    async fn settle_after_answer(
        &self,
        settle: &[SlotSettlement<'_>],
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.inner.settle_after_answer(settle, audit).await
    }
    async fn max_hash_cost(&self) -> Result<Option<u32>, StoreError> {
        self.inner.max_hash_cost().await
    }
}

#[async_trait]
impl AuditLog for CachingStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.inner.append_audit(events).await
    }
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit_log(query).await
    }
}

#[async_trait]
impl Health for CachingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn heartbeat(&self, now: Timestamp) -> Result<(), StoreError> {
        self.inner.heartbeat(now).await
    }
}

#[async_trait]
impl TwoFactorStore for CachingStore {
    // A user's second factor is read from the store on each login, never from the cache.
    async fn two_factor(&self, user_id: &str) -> Result<Option<TwoFactor>, StoreError> {
        self.inner.two_factor(user_id).await
    }
    async fn set_two_factor(
        &self,
        user_id: &str,
        setting: Option<&TwoFactor>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.inner.set_two_factor(user_id, setting, audit).await
    }
    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        self.inner.claim_totp_step(user_id, step).await
    }
    async fn insert_challenge(
        &self,
        challenge: &LoginChallenge,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.inner.insert_challenge(challenge, audit).await
    }
    async fn find_challenge(&self, digest: &str) -> Result<Option<LoginChallenge>, StoreError> {
        self.inner.find_challenge(digest).await
    }
    async fn take_challenge(&self, digest: &str) -> Result<bool, StoreError> {
        self.inner.take_challenge(digest).await
    }
}

#[async_trait]
impl UpstreamSessionStore for CachingStore {
    // Upstream-backed sessions are not cached: each request reads its record.
    async fn insert_upstream_session(
        &self,
        session: &UpstreamSessionRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        self.inner.insert_upstream_session(session, audit).await
    }
    async fn purge_expired_upstream_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_expired_upstream_sessions(now).await
    }
    async fn upstream_user_ref(
        &self,
        upstream: &str,
        username: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.upstream_user_ref(upstream, username).await
    }
    async fn set_upstream_user_ref(
        &self,
        digest: &str,
        user_ref: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.inner.set_upstream_user_ref(digest, user_ref).await
    }
    async fn find_upstream_session(
        &self,
        digest: &str,
    ) -> Result<Option<UpstreamSessionRecord>, StoreError> {
        self.inner.find_upstream_session(digest).await
    }
    async fn delete_upstream_session(
        &self,
        digest: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        self.inner.delete_upstream_session(digest, audit).await
    }
    async fn delete_other_upstream_sessions(
        &self,
        upstream: &str,
        username: &str,
        keep: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        self.inner
            .delete_other_upstream_sessions(upstream, username, keep, audit)
            .await
    }
}

#[async_trait]
impl ShadowStore for CachingStore {
    async fn record_shadow(
        &self,
        comparison: &ShadowComparison,
        bounds: ShadowBounds,
    ) -> Result<(), StoreError> {
        self.inner.record_shadow(comparison, bounds).await
    }
    async fn shadow_comparisons(
        &self,
        query: &ShadowQuery,
    ) -> Result<Vec<ShadowRecord>, StoreError> {
        self.inner.shadow_comparisons(query).await
    }
    async fn shadow_tallies(&self, since: Timestamp) -> Result<Vec<ShadowTally>, StoreError> {
        self.inner.shadow_tallies(since).await
    }
    async fn set_profile_entry(
        &self,
        user_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        // The profile is part of the cached user.
        let result = self.inner.set_profile_entry(user_id, key, value).await;
        if result.is_ok() {
            self.changed(&[Change::User(user_id.to_owned())]).await;
        }
        result
    }
}

#[async_trait]
impl HashStore for CachingStore {
    async fn hash_page(&self, after: &str, limit: u32) -> Result<Vec<StoredHash>, StoreError> {
        self.inner.hash_page(after, limit).await
    }
    async fn swap_hashes(
        &self,
        swaps: &[HashSwap],
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        // As `upgrade_hash`: the same password under a new hash; nothing cached changes.
        self.inner.swap_hashes(swaps, audit).await
    }
}
