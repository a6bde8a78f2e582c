//! The credential service: executes canonical commands against a [`Store`]. Every rule about
//! who may do what, every hash, every audit record lives here, once, for all dialects.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::afterwards::Afterwards;
use crate::clock::{Clock, Timestamp};
use crate::command::{
    Access, AppKey, ChangePassword, ClientCredentials, Command, Grant, IssuedToken, Outcome,
    Request, Subject, TokenRequest,
};
use crate::error::{Error, FieldReason, PolicyRule};
use crate::hasher::HashPool;
use crate::limits::Budgets;
use crate::model::{
    AuditEvent, AuditKind, PasswordUpdate, RequestMeta, TokenKind, TokenRecord, User, UserKey,
};
use crate::notify::Notifier;
use crate::passthrough::BindingMode;
use crate::policy::PolicyConfig;
use crate::secret::{Password, SecretToken};
use crate::session::{Grantee, Issuer, PasswordLogin, SessionFor};
use crate::store::{Store, StoreError};
use crate::token;
use crate::upstream::Migration;

/// How often the store's highest hash cost is re-read (imports may raise it).
const COST_RELEARN: Duration = Duration::from_secs(60);
/// Upstream reset lookups allowed to run at once; more are skipped (and audited).
const UPSTREAM_RESETS_IN_FLIGHT: usize = 16;

/// The core's settings; the server builds them from its configuration.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub bcrypt_cost: u32,
    /// Hashing threads; 0 means one per CPU.
    pub hash_threads: usize,
    /// Added to the hashing threads' nice value (Linux), so request threads win the CPU.
    pub hash_nice: i32,
    pub user_token_ttl: Duration,
    pub client_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// How long a token lookup may be served from memory. Bounds how late another instance's
    /// revocation is seen here; revocations made here are seen at once.
    pub token_cache_ttl: Duration,
    pub policy: PolicyConfig,
    pub limits: crate::limits::LimitConfig,
    pub reset_token_ttl: Duration,
    pub reset_code_ttl: Duration,
    /// A new reset request invalidates the user's older outstanding ones.
    pub reset_replaces_outstanding: bool,
    /// Report through the `metrics` facade (off for scratch gateways that validate dialects).
    pub record_metrics: bool,
    /// The key reset tokens and one-time codes are stored under; the server loads it from
    /// outside the database. Instances sharing a database must share it.
    pub digest_key: crate::token::DigestKey,
    /// Longest wait for a legacy system's own reset (run after the answer, in `migrate` mode).
    pub upstream_reset_timeout: Duration,
    /// Longest a request's first bcrypt job may be expected to wait for a hashing thread;
    /// beyond it the request is refused at once (`overloaded`). Zero: never refused.
    pub hash_max_wait: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            bcrypt_cost: 12,
            hash_threads: 0,
            hash_nice: 10,
            user_token_ttl: Duration::from_secs(3600),
            client_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            token_cache_ttl: Duration::from_secs(5),
            policy: PolicyConfig::default(),
            limits: crate::limits::LimitConfig::default(),
            reset_token_ttl: Duration::from_secs(30 * 60),
            reset_code_ttl: Duration::from_secs(10 * 60),
            reset_replaces_outstanding: true,
            record_metrics: true,
            digest_key: crate::token::DigestKey::generate(),
            upstream_reset_timeout: Duration::from_secs(10),
            hash_max_wait: Duration::from_secs(2),
        }
    }
}

/// Appends one audit record when the hash pool starts refusing work (once per burst).
fn shed_burst_audit(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> Arc<dyn Fn(u64) + Send + Sync> {
    Arc::new(move |retry_after| {
        let event = AuditEvent {
            at: clock.now(),
            kind: AuditKind::AttemptRefused,
            user_id: None,
            dialect: String::new(),
            request_id: String::new(),
            client_addr: None,
            detail: json!({"reason": "hash_pool_overloaded", "retry_after": retry_after}),
        };
        let store = Arc::clone(&store);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.append_audit(&[event]).await {
                    tracing::warn!(error = %e, "the hash pool's overload was not audited");
                }
            });
        }
    })
}

/// Where a shadowed login goes, and where its comparison is left.
pub(crate) struct Shadowing<'a> {
    upstream: Option<&'a str>,
    pending: &'a mut Option<crate::shadow::ShadowPending>,
}

/// What is known of the current password when checking reuse.
pub(crate) enum Current<'a> {
    Plain(&'a Password),
    Hash(&'a str),
}

/// An authenticated caller; cached by token digest for `token_cache_ttl`, so a session check
/// costs no database round trip (the user is as fresh as the token: within the same bound).
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) token: TokenRecord,
    user: Option<User>,
}

pub struct CredentialService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hasher: HashPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) config: CoreConfig,
    pub(crate) tokens: moka::future::Cache<String, Principal>,
    /// The store as given, behind the user-read cache (`store` is this same object).
    pub(crate) cache: Arc<crate::cache::CachingStore>,
    /// Legacy systems unknown users are migrated from (lazy migration), if any.
    pub(crate) upstream: Option<Arc<dyn crate::upstream::UpstreamDirectory>>,
    /// Legacy systems that answer for client dialects bound to them (passthrough), if any.
    pub(crate) passthrough: Option<Arc<dyn crate::passthrough::UpstreamAuthority>>,
    /// The last readiness probe: when, and whether the database took the write.
    pub(crate) readiness: std::sync::Mutex<Option<(crate::Timestamp, bool)>>,
    /// When the store's highest hash cost was last read, for the failure timing floor.
    cost_learned: std::sync::Mutex<Option<std::time::Instant>>,
    /// Upstream reset lookups running now (bounded; each runs after its answer).
    pub(crate) upstream_resets: Arc<tokio::sync::Semaphore>,
    /// Token lifetimes declared by the dialects served now.
    pub(crate) lifetimes: crate::lifetimes::Lifetimes,
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => Error::Conflict(format!("{what} already exists")),
            StoreError::VersionMismatch => {
                Error::Conflict("the password was changed concurrently".into())
            }
            StoreError::NotFound => Error::NotFound,
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "store unavailable");
                Error::Unavailable
            }
            StoreError::Backend(why) => {
                tracing::error!(%why, "store failure");
                Error::Internal
            }
        }
    }
}

impl CredentialService {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        notifier: Arc<dyn Notifier>,
        config: CoreConfig,
    ) -> Result<Self, Error> {
        let threads = match config.hash_threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        };
        let hasher = HashPool::with_nice(threads, config.bcrypt_cost, config.hash_nice)?
            .with_metrics(config.record_metrics)
            .with_max_wait(
                config.hash_max_wait,
                Arc::new(crate::overload::MonotonicTicker::default()),
            )
            .on_shed_burst(shed_burst_audit(Arc::clone(&store), Arc::clone(&clock)));
        let tokens = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(config.token_cache_ttl)
            .support_invalidation_closures()
            .build();
        let cache = Arc::new(crate::cache::CachingStore::new(
            store,
            tokens.clone(),
            config.token_cache_ttl,
        ));
        let store: Arc<dyn Store> = cache.clone();
        Ok(Self {
            store,
            cache,
            hasher,
            clock,
            notifier,
            config,
            tokens,
            upstream: None,
            passthrough: None,
            readiness: std::sync::Mutex::new(None),
            cost_learned: std::sync::Mutex::new(None),
            upstream_resets: Arc::new(tokio::sync::Semaphore::new(UPSTREAM_RESETS_IN_FLIGHT)),
            lifetimes: Default::default(),
        })
    }

    /// Reads the highest bcrypt cost the store holds (at most once a minute), so a failed login
    /// lasts as long as one against the slowest stored hash, whatever the user's own hash.
    async fn learn_max_cost(&self) {
        let due = match self.cost_learned.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= COST_RELEARN);
                if due {
                    *last = Some(std::time::Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        match self.store.max_hash_cost().await {
            Ok(Some(cost)) => self.hasher.observe_cost(cost),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the highest stored hash cost"),
        }
    }

    /// Migrates users unknown here from `legacy` when they log in.
    pub fn with_upstream(mut self, upstream: Arc<dyn crate::upstream::UpstreamDirectory>) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// Publishes this instance's changes (revoked sessions, changed users) on `feed`, for the
    /// other instances sharing the database.
    pub fn with_change_feed(self, feed: Arc<dyn crate::cache::ChangeFeed>) -> Self {
        self.cache.set_feed(feed);
        self
    }

    /// Where the changes other instances publish are applied to this instance's caches.
    pub fn change_sink(&self) -> Arc<dyn crate::cache::ChangeSink> {
        self.cache.clone()
    }

    pub fn hasher(&self) -> &HashPool {
        &self.hasher
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Executes one request: checks its evidence, then runs its command (and completes at once
    /// what it would leave for after the answer).
    pub async fn execute(&self, request: Request) -> Result<Outcome, Error> {
        let (result, after) = self.execute_with_afterwards(request).await;
        self.finish(after).await;
        result
    }

    /// [`Self::execute`], leaving what can follow the answer to the caller: the records to
    /// complete ([`Self::complete`]) and, for a request a shadow upstream answered, the
    /// comparison to make ([`Self::shadow_settle`]), both off the response path.
    pub async fn execute_with_afterwards(
        &self,
        request: Request,
    ) -> (Result<Outcome, Error>, Afterwards) {
        let counter = crate::telemetry::command_counter(&request.command)
            .filter(|_| self.config.record_metrics);
        let dialect = counter.map(|_| request.meta.dialect.clone());
        let mut after = Afterwards::default();
        let result = self.execute_request(request, &mut after).await;
        if let (Some(counter), Some(dialect)) = (counter, dialect) {
            let outcome = crate::telemetry::outcome_label(&result);
            crate::telemetry::count_command(counter, &dialect, outcome);
        }
        (result, after)
    }

    async fn execute_request(
        &self,
        request: Request,
        after: &mut Afterwards,
    ) -> Result<Outcome, Error> {
        let Request {
            meta,
            app_key,
            access,
            command,
        } = request;
        let issuer = Issuer::new(&meta, app_key.as_ref());
        if let Some(key) = app_key {
            self.check_app_key(key).await?;
        }
        let binding = self.passthrough_for(&meta.dialect);
        if let Some(b) = &binding {
            if b.mode == BindingMode::Passthrough && crate::passthrough::answers(&command) {
                return self
                    .execute_passthrough(
                        b.upstream.clone(),
                        issuer,
                        meta,
                        access,
                        command,
                        &mut after.records,
                    )
                    .await;
            }
        }
        let principal = match access {
            Access::Public => None,
            Access::Token { token, kind } => {
                Some(self.principal(token.as_ref(), kind, &issuer).await?)
            }
        };
        if let Some(b) = &binding {
            let step = crate::upstream_reset::ResetStep::of(&command);
            if let Some(step) = step.filter(|s| self.upstream_runs_reset(&meta.dialect, *s)) {
                return (self.forward_reset(b, step, command, &meta, &mut after.shadow)).await;
            }
        }
        let shadow = binding
            .filter(|b| b.mode == BindingMode::Shadow)
            .map(|b| b.upstream);
        let shadow = Shadowing {
            upstream: shadow.as_deref(),
            pending: &mut after.shadow,
        };
        self.run_command(command, principal, &issuer, &meta, shadow)
            .await
    }

    /// Runs one command for a caller whose evidence was checked (`principal`: the session it
    /// presented, if any).
    async fn run_command(
        &self,
        command: Command,
        principal: Option<Principal>,
        issuer: &Issuer,
        meta: &RequestMeta,
        shadow: Shadowing<'_>,
    ) -> Result<Outcome, Error> {
        match command {
            Command::IssueToken(req) => self.issue_token(req, issuer, meta, shadow).await,
            Command::ChangePassword(change) => {
                let caller = principal.ok_or(Error::Unauthenticated)?;
                self.change_command(&caller, change, meta, shadow).await
            }
            Command::Logout => {
                // The whole session ends: its refresh tokens too.
                let caller = principal.ok_or(Error::Unauthenticated)?;
                self.end_session(&caller.token, "logout", meta).await?;
                Ok(Outcome::LoggedOut)
            }
            Command::RenewSession => {
                let caller = principal.ok_or(Error::Unauthenticated)?;
                let user = caller.user.clone().ok_or(Error::Forbidden)?;
                self.revoke(&caller.token, meta).await?;
                let grantee = Grantee {
                    kind: TokenKind::User,
                    user: Some(user),
                    client_id: caller.token.client_id.clone(),
                    with_refresh: false,
                    session_id: Some(caller.token.session_id.clone()),
                };
                self.issue(grantee, issuer, meta, vec![])
                    .await
                    .map(Outcome::Token)
            }
            Command::RevokeToken {
                client,
                client_required,
                token,
            } => {
                self.revoke_token(client, client_required, &token, issuer, meta)
                    .await
            }
            Command::RequestReset { username } => self.request_reset(&username, meta).await,
            Command::ValidateReset { username, token } => {
                self.valid_reset(username.as_deref(), &token, meta).await?;
                Ok(Outcome::ResetValid)
            }
            Command::ResetPassword {
                username,
                token,
                new,
                confirm,
            } => {
                self.reset_password(username.as_deref(), &token, new, confirm, meta)
                    .await
            }
            Command::RequestResetCode { username, answer } => {
                self.request_reset_code(&username, &answer, meta).await
            }
            Command::ExchangeResetCode { code } => self.exchange_reset_code(&code, meta).await,
            Command::ShowUser { subject } => {
                let caller = principal.ok_or(Error::Unauthenticated)?;
                let user = self.subject_user(&caller, &subject, meta).await?;
                Ok(Outcome::User { user })
            }
        }
    }

    // ----- evidence -------------------------------------------------------------------------

    pub async fn check_app_key(&self, key: AppKey) -> Result<(), Error> {
        let presented = key.presented.ok_or(Error::UnknownApp)?;
        match self
            .store
            .find_app(&token::digest(presented.expose()))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(Error::UnknownApp),
        }
    }

    async fn principal(
        &self,
        token: Option<&SecretToken>,
        kind: TokenKind,
        issuer: &Issuer,
    ) -> Result<Principal, Error> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthenticated)?;
        let digest = token::digest(token.expose());
        let principal = match self.tokens.get(&digest).await {
            Some(principal) => principal,
            None => {
                let generation = self.cache.generation();
                let record = self
                    .store
                    .find_token(&digest)
                    .await?
                    .ok_or(Error::Unauthenticated)?;
                let user = match &record.user_id {
                    Some(id) => Some(
                        self.store
                            .find_user(UserKey::Id(id))
                            .await?
                            .ok_or(Error::Unauthenticated)?,
                    ),
                    None => None,
                };
                let principal = Principal {
                    token: record,
                    user,
                };
                self.cache
                    .remember_principal(digest.clone(), principal.clone(), generation)
                    .await;
                principal
            }
        };
        if principal.token.expires_at <= self.clock.now() {
            self.tokens.invalidate(&digest).await;
            return Err(Error::Unauthenticated);
        }
        // Another dialect's (or application key's) session, or a spent refresh token, is no
        // session here at all.
        if !issuer.admits(&principal.token) || principal.token.spent_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        if principal.token.kind != kind {
            // A valid token of the wrong kind (a client token where a user must act).
            return Err(Error::Forbidden);
        }
        Ok(principal)
    }

    // ----- tokens ---------------------------------------------------------------------------

    async fn issue_token(
        &self,
        req: TokenRequest,
        issuer: &Issuer,
        meta: &RequestMeta,
        shadow: Shadowing<'_>,
    ) -> Result<Outcome, Error> {
        let client_required = req.client_required || matches!(req.grant, Grant::ClientCredentials);
        let client_id = match req.client {
            Some(creds) => Some(self.authenticate_client(creds, meta).await?),
            None if client_required => return Err(Error::InvalidClient),
            None => None,
        };
        match req.grant {
            Grant::Password { username, password } => {
                let session = SessionFor {
                    client_id,
                    with_refresh: req.with_refresh,
                };
                if let Some(upstream) = shadow.upstream {
                    let login = PasswordLogin {
                        username: &username,
                        password: &password,
                        session,
                    };
                    return (self.shadow_login(upstream, login, issuer, meta, shadow.pending))
                        .await;
                }
                let user = self.authenticate_user(&username, &password, meta).await?;
                self.open_session(user, session, issuer, meta, json!({}))
                    .await
            }
            Grant::ClientCredentials => {
                let grantee = Grantee {
                    kind: TokenKind::Client,
                    user: None,
                    client_id,
                    with_refresh: false,
                    session_id: None,
                };
                self.issue(grantee, issuer, meta, vec![])
                    .await
                    .map(Outcome::Token)
            }
            Grant::Refresh { refresh_token } => {
                // Refresh tokens rotate: the one presented is spent, once, even under a race.
                (self.refresh(&refresh_token, client_id, issuer, meta).await).map(Outcome::Token)
            }
            Grant::SecondFactor { interim, code } => (self
                .finish_challenge(&interim, &code, client_id, issuer, meta)
                .await)
                .map(Outcome::Token),
        }
    }

    pub async fn authenticate_client(
        &self,
        creds: ClientCredentials,
        meta: &RequestMeta,
    ) -> Result<String, Error> {
        let client = self.store.find_client(&creds.client_id).await?;
        let budgets = Budgets::client(
            &self.config.limits,
            client.as_ref().map(|c| c.client_id.as_str()),
            meta,
        );
        // Taken before bcrypt: unknown ids share one budget, so they cannot queue bcrypt work.
        let held = self.reserve(budgets, None, meta).await?;
        let started = std::time::Instant::now();
        let ok = match &client {
            Some(c) => self.hasher.verify(&creds.secret, &c.secret_hash).await?,
            None => {
                self.hasher.verify_dummy(&creds.secret).await?;
                false
            }
        };
        if !ok {
            self.hasher.pad_failure(started).await;
            let detail = json!({"client_id": creds.client_id, "reason": "invalid_client"});
            self.store
                .append_audit(&[self.event(AuditKind::LoginFailed, None, meta, detail)])
                .await?;
            return Err(Error::InvalidClient);
        }
        self.forgive(held).await?;
        Ok(creds.client_id)
    }

    /// Verifies a username and password. An unknown user costs the same verify as a known one,
    /// and every failure takes at least the time of the slowest stored hash.
    async fn authenticate_user(
        &self,
        username: &str,
        password: &Password,
        meta: &RequestMeta,
    ) -> Result<User, Error> {
        let user = self.store.find_user(UserKey::Username(username)).await?;
        let budgets = Budgets::password(&self.config.limits, username, meta);
        // The slot is taken before the legacy system or bcrypt is asked: never hammered.
        let held = self
            .reserve(budgets, user.as_ref().map(|u| u.id.as_str()), meta)
            .await?;
        self.learn_max_cost().await;
        let started = std::time::Instant::now();
        let user = match user {
            Some(user) => Some(user),
            None => match self.migrate(username, password, meta).await {
                // The legacy system could not answer: no guess was checked.
                Err(e) => {
                    self.give_back(held).await?;
                    return Err(e);
                }
                Ok(Migration::Migrated(user)) => {
                    self.forgive(held).await?;
                    return Ok(user);
                }
                Ok(Migration::Raced(user)) => Some(user),
                Ok(Migration::NotMigrated) => None,
            },
        };
        let Some(user) = user else {
            self.hasher.verify_dummy(password).await?;
            self.hasher.pad_failure(started).await;
            let detail = json!({"username": username, "reason": "unknown_user"});
            self.store
                .append_audit(&[self.event(AuditKind::LoginFailed, None, meta, detail)])
                .await?;
            return Err(Error::InvalidCredentials);
        };
        let credential = self
            .store
            .credential(&user.id)
            .await?
            .ok_or(Error::InvalidCredentials)?;
        if !self.hasher.verify(password, &credential.hash).await? {
            self.hasher.pad_failure(started).await;
            let detail = json!({"reason": "wrong_password"});
            self.store
                .append_audit(&[self.event(AuditKind::LoginFailed, Some(&user.id), meta, detail)])
                .await?;
            return Err(Error::InvalidCredentials);
        }
        self.forgive(held).await?;
        if self.hasher.needs_upgrade(&credential.hash) {
            let stronger = self.hasher.hash(password).await?;
            let from = crate::legacy::format_name(&credential.hash);
            let detail = json!({"cost": self.hasher.cost(), "from": from});
            let audit = self.event(AuditKind::HashUpgraded, Some(&user.id), meta, detail);
            self.store
                .upgrade_hash(&user.id, credential.version, &stronger, &audit)
                .await?;
        }
        Ok(user)
    }

    /// A user's password was right: a second-factor challenge when the user has one, else a
    /// session, with its `login_succeeded` record.
    pub(crate) async fn open_session(
        &self,
        user: User,
        session: SessionFor,
        issuer: &Issuer,
        meta: &RequestMeta,
        detail: serde_json::Value,
    ) -> Result<Outcome, Error> {
        if let Some(setting) = self.store.two_factor(&user.id).await? {
            let client_id = session.client_id;
            return (self.start_challenge(&user, &setting, client_id, issuer, meta)).await;
        }
        let audit = vec![self.event(AuditKind::LoginSucceeded, Some(&user.id), meta, detail)];
        let issued = self
            .issue(session.grantee(user), issuer, meta, audit)
            .await?;
        Ok(Outcome::Token(issued))
    }

    pub(crate) async fn issue(
        &self,
        grantee: Grantee,
        issuer: &Issuer,
        meta: &RequestMeta,
        mut audit: Vec<AuditEvent>,
    ) -> Result<IssuedToken, Error> {
        let Grantee {
            kind,
            user,
            client_id,
            with_refresh,
            session_id,
        } = grantee;
        let now = self.clock.now();
        let ttl = self.lifetimes.of(&self.config, &issuer.dialect, kind);
        let user_id = user.as_ref().map(|u| u.id.clone());
        let access = token::generate();
        let digest = token::digest(access.expose());
        let record = TokenRecord {
            session_id: session_id.unwrap_or_else(|| digest.clone()),
            digest,
            kind,
            user_id: user_id.clone(),
            client_id: client_id.clone(),
            dialect: issuer.dialect.clone(),
            created_at: now,
            expires_at: now + ttl.as_secs() as i64,
            app_digest: issuer.app_digest.clone(),
            spent_at: None,
        };
        let detail = json!({"kind": kind.as_str(), "client_id": client_id});
        audit.push(self.event(AuditKind::TokenIssued, user_id.as_deref(), meta, detail));
        self.store.insert_token(&record, &audit).await?;
        let refresh = if with_refresh && kind == TokenKind::User {
            let refresh = token::generate();
            let record = TokenRecord {
                digest: token::digest(refresh.expose()),
                kind: TokenKind::Refresh,
                expires_at: now + self.config.refresh_token_ttl.as_secs() as i64,
                ..record.clone()
            };
            self.store.insert_token(&record, &[]).await?;
            Some(refresh)
        } else {
            None
        };
        Ok(IssuedToken {
            access,
            kind,
            issued_at: now,
            expires_at: record.expires_at,
            refresh,
            user,
            client_id,
        })
    }

    /// Deletes a token; returns whether this call was the one that deleted it.
    pub(crate) async fn revoke(
        &self,
        token: &TokenRecord,
        meta: &RequestMeta,
    ) -> Result<bool, Error> {
        let detail = json!({"kind": token.kind.as_str()});
        let audit = self.event(
            AuditKind::TokenRevoked,
            token.user_id.as_deref(),
            meta,
            detail,
        );
        let existed = self.store.delete_token(&token.digest, &[audit]).await?;
        self.tokens.invalidate(&token.digest).await;
        Ok(existed)
    }

    // ----- users ----------------------------------------------------------------------------

    /// The user a command acts on, if the caller may act on it. A non-admin asking for another
    /// user learns nothing of whether that user exists.
    async fn subject_user(
        &self,
        caller: &Principal,
        subject: &Subject,
        meta: &RequestMeta,
    ) -> Result<User, Error> {
        let me = caller.user.as_ref().ok_or(Error::Forbidden)?;
        let target = match subject {
            Subject::Caller => return Ok(me.clone()),
            Subject::Id(id) => match self
                .store
                .find_user(UserKey::Alias {
                    dialect: &meta.dialect,
                    external_id: id,
                })
                .await?
            {
                Some(user) => Some(user),
                None => self.store.find_user(UserKey::Id(id)).await?,
            },
            Subject::Username(name) => self.store.find_user(UserKey::Username(name)).await?,
        };
        match target {
            Some(user) if user.id == me.id || me.admin => Ok(user),
            None if me.admin => Err(Error::NotFound),
            _ => Err(Error::Forbidden),
        }
    }

    /// A password change: made by the shadow upstream when the dialect is bound to one (the
    /// local copy follows off the response path), else here.
    async fn change_command(
        &self,
        caller: &Principal,
        change: ChangePassword,
        meta: &RequestMeta,
        shadow: Shadowing<'_>,
    ) -> Result<Outcome, Error> {
        match shadow.upstream {
            Some(upstream) => {
                let user = self.subject_user(caller, &change.subject, meta).await?;
                let digest = &caller.token.digest;
                self.shadow_change(upstream, digest, user, change, meta, shadow.pending)
                    .await
            }
            None => self.change_password(caller, change, meta).await,
        }
    }

    async fn change_password(
        &self,
        caller: &Principal,
        change: ChangePassword,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let user = self.subject_user(caller, &change.subject, meta).await?;
        let fail = |reason: &str| {
            self.event(
                AuditKind::PasswordChangeFailed,
                Some(&user.id),
                meta,
                json!({"reason": reason}),
            )
        };
        if change.current.is_empty() {
            return Err(Error::invalid("current", FieldReason::Invalid));
        }
        if let Some(confirm) = &change.confirm {
            if confirm != &change.new {
                return Err(Error::invalid("confirm", FieldReason::Mismatch));
            }
        }
        if change.new.expose().chars().any(char::is_control) {
            return Err(Error::invalid("new", FieldReason::Invalid));
        }
        if user.externally_managed {
            self.store
                .append_audit(&[fail("externally_managed")])
                .await?;
            return Err(Error::ExternallyManaged);
        }
        let new_normalized = change.new.normalized();
        let mut broken = self.config.policy.check(&new_normalized, &user.username);
        let credential = self
            .store
            .credential(&user.id)
            .await?
            .ok_or(Error::Internal)?;
        let budgets = Budgets::password(&self.config.limits, &user.username, meta);
        let held = self.reserve(budgets, Some(&user.id), meta).await?;
        if !self
            .hasher
            .verify(&change.current, &credential.hash)
            .await?
        {
            self.store
                .append_audit(&[fail("wrong_current_password")])
                .await?;
            return Err(Error::InvalidCredentials);
        }
        self.forgive(held).await?;
        if broken.is_empty() {
            let current = Current::Plain(&change.current);
            broken.extend(self.history_rule(&user.id, &change.new, current).await?);
        }
        if !broken.is_empty() {
            let names: Vec<_> = broken.iter().map(PolicyRule::name).collect();
            self.store
                .append_audit(&[self.event(
                    AuditKind::PasswordChangeFailed,
                    Some(&user.id),
                    meta,
                    json!({"reason": "policy", "rules": names}),
                )])
                .await?;
            return Err(Error::PolicyViolation { rules: broken });
        }
        self.commit_change(caller, user, credential.version, &change.new, meta)
            .await
    }

    /// Stores a checked change: the new hash, the user's other sessions ended (the caller's own
    /// is kept when it changed its own password), audited.
    async fn commit_change(
        &self,
        caller: &Principal,
        user: User,
        expected_version: i64,
        new: &Password,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let new_hash = self.hasher.hash(new).await?;
        // The caller keeps the session it acted with when changing its own password.
        let keep_token = (caller.token.user_id.as_deref() == Some(user.id.as_str()))
            .then(|| caller.token.digest.clone());
        let changed_by = caller.user.as_ref().map(|u| u.id.clone());
        let update = PasswordUpdate {
            user_id: user.id.clone(),
            expected_version,
            new_hash,
            keep_token: keep_token.clone(),
            // The current hash counts as one of the last `history`.
            history_limit: self.config.policy.history.saturating_sub(1),
            now: self.clock.now(),
            audit: vec![
                self.event(
                    AuditKind::PasswordChanged,
                    Some(&user.id),
                    meta,
                    json!({"changed_by": changed_by}),
                ),
                self.event(
                    AuditKind::SessionsRevoked,
                    Some(&user.id),
                    meta,
                    json!({"kept_current": keep_token.is_some()}),
                ),
            ],
        };
        match self.store.update_password(&update).await {
            Ok(()) => {}
            Err(StoreError::VersionMismatch) => {
                let detail = json!({"reason": "concurrent_change"});
                let event = self.event(
                    AuditKind::PasswordChangeFailed,
                    Some(&user.id),
                    meta,
                    detail,
                );
                self.store.append_audit(&[event]).await?;
                return Err(Error::Conflict(
                    "the password was changed concurrently".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        let uid = user.id.clone();
        let _ = self
            .tokens
            .invalidate_entries_if(move |_, p| p.token.user_id.as_deref() == Some(uid.as_str()));
        Ok(Outcome::PasswordChanged { user })
    }

    /// The history rule, when `new` reuses a recent password (checked last, as it costs hashes).
    pub(crate) async fn history_rule(
        &self,
        user_id: &str,
        new: &Password,
        current: Current<'_>,
    ) -> Result<Option<PolicyRule>, Error> {
        let last = self.config.policy.history;
        Ok((self.reuses_recent(user_id, new, current).await?)
            .then_some(PolicyRule::History { last }))
    }

    /// Whether `new` equals the current password or one of the `history - 1` before it.
    pub(crate) async fn reuses_recent(
        &self,
        user_id: &str,
        new: &Password,
        current: Current<'_>,
    ) -> Result<bool, Error> {
        let last = self.config.policy.history;
        if last == 0 {
            return Ok(false);
        }
        let same_as_current = match current {
            // Verified against the current hash already: comparing is enough.
            Current::Plain(current) => new.normalized() == current.normalized(),
            Current::Hash(hash) => self.hasher.verify(new, hash).await?,
        };
        if same_as_current {
            return Ok(true);
        }
        for old in self
            .store
            .password_history(user_id, last.saturating_sub(1))
            .await?
        {
            if self.hasher.verify(new, &old).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn event(
        &self,
        kind: AuditKind,
        user_id: Option<&str>,
        meta: &RequestMeta,
        detail: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            at: self.clock.now(),
            kind,
            user_id: user_id.map(str::to_owned),
            dialect: meta.dialect.clone(),
            request_id: meta.request_id.clone(),
            client_addr: meta.client_addr.clone(),
            detail,
        }
    }
}
