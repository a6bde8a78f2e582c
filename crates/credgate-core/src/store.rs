//! What the core needs from storage: small async capability traits, implemented by
//! credgate-store for SQLite and PostgreSQL. Each method is one transaction.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::import::{ImportOptions, ImportOutcome, ImportUser};
use crate::model::{
    App, AuditEvent, AuditQuery, AuditRecord, Client, Credential, NewUser, PasswordUpdate,
    ResetRecord, SecurityAnswer, TokenRecord, User, UserKey,
};
use crate::passthrough::UpstreamSessionRecord;
use crate::shadow::{ShadowBounds, ShadowComparison, ShadowQuery, ShadowRecord, ShadowTally};
use crate::two_factor_model::{LoginChallenge, TwoFactor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (username, id, alias, client id, app key).
    #[error("already exists: {0}")]
    Duplicate(String),
    /// A compare-and-swap lost: the row changed since it was read.
    #[error("changed concurrently")]
    VersionMismatch,
    #[error("not found")]
    NotFound,
    /// The database cannot be reached right now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Backend(String),
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts the user, its aliases and first credential, and the audit event, atomically.
    async fn insert_user(&self, new: &NewUser, audit: &AuditEvent) -> Result<(), StoreError>;
    async fn find_user(&self, key: UserKey<'_>) -> Result<Option<User>, StoreError>;
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<User>, StoreError>;
    async fn credential(&self, user_id: &str) -> Result<Option<Credential>, StoreError>;
    /// The hashes the user had before the current one, newest first.
    async fn password_history(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;
    /// Commits a password change; `VersionMismatch` when another change won. Also deletes every
    /// outstanding reset token and code of the user (a changed password ends all resets).
    async fn update_password(&self, update: &PasswordUpdate) -> Result<(), StoreError>;
    /// Replaces the hash of the same password by a stronger one, only if the version is still
    /// `expected_version`; the version does not move. Returns whether it was applied.
    async fn upgrade_hash(
        &self,
        user_id: &str,
        expected_version: i64,
        new_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;
    /// Bulk import of one batch in ONE transaction, with one outcome per user, in order. A user
    /// whose username exists is `Unchanged` when every field (id when `id_given`, flags,
    /// aliases, profile, hash) matches, else `Updated` with `options.update` (the id must still
    /// match), else a `Conflict`. A new user whose id or alias belongs to another user, or that
    /// clashes with an earlier user of the batch, is a `Conflict`. Conflicts write nothing.
    /// With `options.dry_run` the outcomes are decided and everything is rolled back.
    async fn import_users(
        &self,
        users: &[ImportUser],
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>, StoreError>;
    /// Users with their current hashes, ordered by username, the first `limit` after
    /// `after_username` (from the start when `None`): pages for a streamed export.
    async fn export_users(
        &self,
        after_username: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NewUser>, StoreError>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_token(
        &self,
        token: &TokenRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    async fn find_token(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Removes one token; returns whether it existed.
    async fn delete_token(&self, digest: &str, audit: &[AuditEvent]) -> Result<bool, StoreError>;
    /// Marks an unspent refresh token with `expires_at > now` spent (a conditional update) and
    /// returns whether this call spent it: under concurrent calls exactly one gets `true`.
    async fn spend_refresh(&self, digest: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// Removes every token of a session (access and refresh tokens, spent or not), writing
    /// `audit` when there was any; returns how many.
    async fn revoke_session(
        &self,
        session_id: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError>;
    /// Removes tokens that expired before `now`; returns how many.
    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert_client(&self, client: &Client, audit: &AuditEvent) -> Result<(), StoreError>;
    async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError>;
    async fn insert_app(&self, app: &App, audit: &AuditEvent) -> Result<(), StoreError>;
    async fn find_app(&self, key_digest: &str) -> Result<Option<App>, StoreError>;
}

/// Password resets: tokens and codes stored as digests, each usable once.
#[async_trait]
pub trait ResetStore: Send + Sync {
    /// Inserts a reset with its audit events. With `replace_outstanding`, first deletes the
    /// user's other unused resets of the same kind.
    async fn insert_reset(
        &self,
        reset: &ResetRecord,
        replace_outstanding: bool,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    async fn find_reset(&self, digest: &str) -> Result<Option<ResetRecord>, StoreError>;
    /// Marks a reset used if it is unused and `expires_at > now`, atomically (a conditional
    /// update), and returns it; `None` when it is unknown, used or expired. Under concurrent
    /// calls exactly one gets `Some`.
    async fn consume_reset(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<ResetRecord>, StoreError>;
    /// In ONE transaction: consume the reset as `consume_reset` does (`NotFound` when it cannot
    /// be consumed), then apply `update` exactly as `update_password` does (compare-and-swap,
    /// history, token revocation, deletion of the user's other resets, audit).
    async fn complete_reset(&self, digest: &str, update: &PasswordUpdate)
        -> Result<(), StoreError>;
    /// Sets or replaces the user's security question and answer hash, with its audit event.
    async fn set_security_answer(
        &self,
        user_id: &str,
        answer: &SecurityAnswer,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
    async fn security_answer(&self, user_id: &str) -> Result<Option<SecurityAnswer>, StoreError>;
}

/// Two-factor login: each user's setting and the pending login challenges.
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    async fn two_factor(&self, user_id: &str) -> Result<Option<TwoFactor>, StoreError>;
    /// Sets (`Some`, replacing any earlier setting and its TOTP replay mark) or removes (`None`)
    /// the user's setting, deleting the user's pending challenges, with its audit event;
    /// `NotFound` when the user does not exist.
    async fn set_two_factor(
        &self,
        user_id: &str,
        setting: Option<&TwoFactor>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Records `step` as the user's newest accepted TOTP step if it is newer than the stored one,
    /// in ONE conditional update; returns whether this call recorded it (`false`: a replay).
    /// Of concurrent calls with the same step exactly one gets `true`.
    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;
    /// Inserts a challenge after deleting the user's other challenges and every expired one
    /// (at `challenge.created_at`), with its audit events; `NotFound` when the user is unknown.
    async fn insert_challenge(
        &self,
        challenge: &LoginChallenge,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    async fn find_challenge(&self, digest: &str) -> Result<Option<LoginChallenge>, StoreError>;
    /// Deletes a challenge; returns whether this call deleted it (of concurrent calls, one).
    async fn take_challenge(&self, digest: &str) -> Result<bool, StoreError>;
}

/// One slot taken from a guessing budget, or the refusal to take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Whether the slot was taken: the attempt may run.
    pub allowed: bool,
    /// Slots counted in the window now (at most `limit + 1`).
    pub count: u32,
    pub window_start: Timestamp,
}

/// One slot to take: `key`'s budget of `limit` per `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptAsk<'a> {
    pub key: &'a str,
    pub window: i64,
    pub limit: u32,
}

/// What becomes of a slot taken earlier, once its attempt is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSettlement<'a> {
    /// One slot taken in the window that started at `window_start` goes back (the guess was
    /// right, or another budget refused the attempt); nothing when that window is over.
    Release {
        key: &'a str,
        window_start: Timestamp,
        limit: u32,
    },
    /// The key's count is forgotten (a right password forgives the user's failures).
    Clear { key: &'a str },
}

/// Guessing budgets in fixed windows, shared by every gateway instance. An attempt takes its
/// slot before the secret is checked, so concurrent guesses cannot outrun the count.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Takes one slot of every budget in `asks`, all or none, in ONE atomic statement (one
    /// commit). A slot of `key`'s budget of `limit` per `window` seconds: a new window starts
    /// when the stored one ended (`window_start + window <= now`); past the limit nothing more
    /// is counted and `allowed` is false. One [`Reservation`] per ask, in order; when any is
    /// refused, the slots the others gave are handed back before this returns (meanwhile a
    /// concurrent attempt may find them taken: the strict side). Rows are taken in key order,
    /// so concurrent calls cannot deadlock; of N concurrent attempts in one window, at most
    /// `limit` are allowed per key, on one instance or many.
    async fn reserve_attempts(
        &self,
        asks: &[AttemptAsk<'_>],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError>;
    /// Applies every settlement in ONE transaction (one durable commit).
    async fn settle_attempts(&self, settle: &[SlotSettlement<'_>]) -> Result<(), StoreError>;
    /// Applies every settlement and appends `audit` in ONE transaction, through the connections
    /// the counters are written through: for what completes a request after its answer has
    /// gone out (on SQLite, atomic and safe from a crashed process; a power cut before the next
    /// durable commit can lose it, as it can the counters).
    async fn settle_after_answer(
        &self,
        settle: &[SlotSettlement<'_>],
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    /// The highest bcrypt cost among stored password hashes; `None` when there is none.
    async fn max_hash_cost(&self) -> Result<Option<u32>, StoreError>;
}

/// Sessions of this gateway that stand for an upstream's (passthrough), kept by token digest.
#[async_trait]
pub trait UpstreamSessionStore: Send + Sync {
    /// Inserts the session with its audit events; `Duplicate("upstream session")` when the
    /// digest exists.
    async fn insert_upstream_session(
        &self,
        session: &UpstreamSessionRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError>;
    async fn find_upstream_session(
        &self,
        digest: &str,
    ) -> Result<Option<UpstreamSessionRecord>, StoreError>;
    /// Removes the sessions expired at `now`; returns how many.
    async fn purge_expired_upstream_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// The upstream's id for `username` (case-insensitive) at `upstream`, from the newest
    /// stored session naming one: what a new session of that user most likely gets.
    async fn upstream_user_ref(
        &self,
        upstream: &str,
        username: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Sets the upstream's id of a stored session's user; whether the session exists.
    async fn set_upstream_user_ref(
        &self,
        digest: &str,
        user_ref: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// Removes one session, writing `audit` when it existed; returns whether it existed.
    async fn delete_upstream_session(
        &self,
        digest: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError>;
    /// Removes every session of `username` (case-insensitive) at `upstream` but `keep`, writing
    /// `audit` when any existed; returns how many were removed.
    async fn delete_other_upstream_sessions(
        &self,
        upstream: &str,
        username: &str,
        keep: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError>;
}

/// Shadow-mode comparisons, bounded by count and age, and the profile flag a sync sets.
#[async_trait]
pub trait ShadowStore: Send + Sync {
    /// Stores one comparison, then drops those older than `bounds.oldest` and the oldest
    /// beyond `bounds.max_records`.
    async fn record_shadow(
        &self,
        comparison: &ShadowComparison,
        bounds: ShadowBounds,
    ) -> Result<(), StoreError>;
    /// Newest first; `limit` 0 means 100, and at most 1000 are returned.
    async fn shadow_comparisons(
        &self,
        query: &ShadowQuery,
    ) -> Result<Vec<ShadowRecord>, StoreError>;
    /// Counts by (dialect, route, result, kind) of the comparisons at or after `since`.
    async fn shadow_tallies(&self, since: Timestamp) -> Result<Vec<ShadowTally>, StoreError>;
    /// Sets (`Some`) or removes (`None`) one entry of a user's profile; `NotFound` when there
    /// is no such user.
    async fn set_profile_entry(
        &self,
        user_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// Newest first.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Rewrites the heartbeat row with `now`: succeeds only while the database accepts writes
    /// (a full disk or a read-only database fails it where `ping` still passes).
    async fn heartbeat(&self, now: Timestamp) -> Result<(), StoreError>;
}

/// One user's stored password hash, as `credgate rehash` reads it.
#[derive(Clone)]
pub struct StoredHash {
    pub user_id: String,
    pub credential_version: i64,
    pub hash: String,
}

/// Replaces `old` by `new` if the user's hash is still `old` at `credential_version`.
#[derive(Clone)]
pub struct HashSwap {
    pub user_id: String,
    pub credential_version: i64,
    pub old: String,
    pub new: String,
}

/// Bulk reads and compare-and-swap writes of stored hashes (wrapping weak legacy hashes).
#[async_trait]
pub trait HashStore: Send + Sync {
    /// Up to `limit` users' hashes with ids above `after` (`""` for the first page), by id.
    async fn hash_page(&self, after: &str, limit: u32) -> Result<Vec<StoredHash>, StoreError>;
    /// Applies every swap whose user still has `old` at the same credential version (others
    /// changed meanwhile and are left), with `audit`, in one transaction; how many applied.
    async fn swap_hashes(
        &self,
        swaps: &[HashSwap],
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError>;
}

/// Everything the core needs, in one object.
pub trait Store:
    UserStore
    + TokenStore
    + ClientStore
    + ResetStore
    + TwoFactorStore
    + AttemptStore
    + AuditLog
    + Health
    + UpstreamSessionStore
    + ShadowStore
    + HashStore
    + 'static
{
}

impl<T> Store for T where
    T: UserStore
        + TokenStore
        + ClientStore
        + ResetStore
        + TwoFactorStore
        + AttemptStore
        + AuditLog
        + Health
        + UpstreamSessionStore
        + ShadowStore
        + HashStore
        + 'static
{
}
