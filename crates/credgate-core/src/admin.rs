//! Administration: creating users, API clients and application keys, and reading users and
//! the audit trail. Creation runs the same policy, hashing and audit as every other change.

use serde_json::json;

use crate::command::NewUserSpec;
use crate::error::{Error, FieldProblem, FieldReason};
use crate::model::{
    App, AuditKind, AuditQuery, AuditRecord, Client, NewUser, RequestMeta, User, UserKey,
};
use crate::secret::{Password, SecretToken};
use crate::service::CredentialService;
use crate::token;

impl CredentialService {
    pub async fn create_user(&self, spec: NewUserSpec, meta: &RequestMeta) -> Result<User, Error> {
        let mut problems = Vec::new();
        if !is_clean_name(&spec.username) {
            problems.push(FieldProblem::new("username", FieldReason::Invalid));
        }
        if spec.id.as_deref().is_some_and(|id| !is_clean_name(id)) {
            problems.push(FieldProblem::new("id", FieldReason::Invalid));
        }
        if spec
            .aliases
            .iter()
            .any(|(d, id)| !is_clean_name(d) || !is_clean_name(id))
        {
            problems.push(FieldProblem::new("aliases", FieldReason::Invalid));
        }
        if !problems.is_empty() {
            return Err(Error::InvalidRequest { problems });
        }
        let broken = self
            .config
            .policy
            .check(&spec.password.normalized(), &spec.username);
        if !broken.is_empty() {
            return Err(Error::PolicyViolation { rules: broken });
        }
        let hash = self.hasher.hash(&spec.password).await?;
        let user = User {
            id: spec.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            username: spec.username,
            admin: spec.admin,
            externally_managed: spec.externally_managed,
            aliases: spec.aliases,
            profile: spec.profile,
            created_at: self.clock.now(),
        };
        let detail =
            json!({"username": user.username, "admin": user.admin, "aliases": user.aliases});
        let audit = self.event(AuditKind::UserCreated, Some(&user.id), meta, detail);
        self.store
            .insert_user(
                &NewUser {
                    user: user.clone(),
                    credential_hash: hash,
                },
                &audit,
            )
            .await?;
        Ok(user)
    }

    pub async fn create_client(
        &self,
        client_id: String,
        secret: Password,
        name: Option<String>,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        if !is_clean_name(&client_id) {
            return Err(Error::invalid("client_id", FieldReason::Invalid));
        }
        if secret.expose().trim().is_empty() {
            return Err(Error::invalid("client_secret", FieldReason::Invalid));
        }
        let secret_hash = self.hasher.hash(&secret).await?;
        let audit = self.event(
            AuditKind::ClientCreated,
            None,
            meta,
            json!({"client_id": client_id}),
        );
        let client = Client {
            client_id,
            secret_hash,
            name,
            created_at: self.clock.now(),
        };
        Ok(self.store.insert_client(&client, &audit).await?)
    }

    pub async fn create_app(
        &self,
        key: SecretToken,
        name: Option<String>,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        if key.expose().trim().is_empty() || key.expose().chars().any(char::is_control) {
            return Err(Error::invalid("key", FieldReason::Invalid));
        }
        let audit = self.event(AuditKind::AppCreated, None, meta, json!({"name": name}));
        let app = App {
            key_digest: token::digest(key.expose()),
            name,
            created_at: self.clock.now(),
        };
        Ok(self.store.insert_app(&app, &audit).await?)
    }

    pub async fn user(&self, id: &str) -> Result<User, Error> {
        self.store
            .find_user(UserKey::Id(id))
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn users(&self, limit: u32, offset: u32) -> Result<Vec<User>, Error> {
        Ok(self.store.list_users(limit, offset).await?)
    }

    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, Error> {
        Ok(self.store.audit_log(query).await?)
    }

    /// Whether the database answers and accepts writes: a trivial query on every call (an
    /// outage shows at once), and a real write (the heartbeat row) at most once per
    /// [`READY_PROBE_SECS`], its result served from memory in between. A change of the write
    /// answer is logged, and published as the `credgate_store_writable` gauge.
    pub async fn ready(&self) -> Result<(), Error> {
        self.store.ping().await?;
        let now = self.clock.now();
        let cached = *self.readiness.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, ok)) = cached {
            if (at..at + READY_PROBE_SECS).contains(&now) {
                return if ok { Ok(()) } else { Err(Error::Unavailable) };
            }
        }
        let result = self.store.heartbeat(now).await;
        let ok = result.is_ok();
        let before = self
            .readiness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace((now, ok));
        if before.map(|(_, was)| was) != Some(ok) {
            if ok {
                tracing::info!("database accepts writes: ready");
            } else if let Err(e) = &result {
                tracing::error!(error = %e, "database refuses writes: not ready (/readyz 503)");
            }
            if self.config.record_metrics {
                metrics::gauge!("credgate_store_writable").set(if ok { 1.0 } else { 0.0 });
            }
        }
        Ok(result?)
    }
}

/// How long a readiness answer is reused before the heartbeat row is written again.
pub const READY_PROBE_SECS: i64 = 2;

/// Identifiers: non-empty, at most 256 bytes, no control characters, not padded with spaces.
pub(crate) fn is_clean_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.trim() == s && !s.chars().any(char::is_control)
}
