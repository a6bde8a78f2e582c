//! Lazy migration from legacy backends. A user unknown here is checked against the legacy
//! system (through [`UpstreamDirectory`], implemented by the server with the dialects spoken as a client);
//! a verified password becomes a local user with a fresh bcrypt hash, and every later request
//! is served locally. The core knows nothing of how the legacy system is reached.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::json;

use crate::error::{Error, PolicyRule};
use crate::model::{AuditKind, NewUser, RequestMeta, User, UserKey};
use crate::secret::Password;
use crate::service::CredentialService;
use crate::store::StoreError;

/// A user the legacy system vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAccount {
    /// The upstream's configured name, for audit and metrics.
    pub upstream: String,
    /// (dialect, id): the id the legacy system knows the user by, kept as the alias its
    /// dialect's clients address the user with.
    pub alias: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamVerdict {
    Verified(UpstreamAccount),
    /// Wrong password, or a user the legacy system does not know either.
    Refused,
}

/// What became of a reset for a user not migrated yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamReset {
    /// The legacy system started its own reset (its mail reaches the user); the user's next
    /// login with the new password migrates them.
    Forwarded { upstream: String },
    /// No legacy system offers a reset by username.
    Unsupported,
}

/// The legacy systems users are migrated from. Every failure to reach them (timeout, 5xx,
/// refused connection, an answer that cannot be read) is `Err(Error::Unavailable)`, never a
/// refusal: an outage must not read as a wrong password.
#[async_trait]
pub trait UpstreamDirectory: Send + Sync {
    async fn verify(&self, username: &str, password: &Password) -> Result<UpstreamVerdict, Error>;
    async fn request_reset(&self, username: &str) -> Result<UpstreamReset, Error>;
}

/// The outcome of trying to migrate an unknown user at login.
pub(crate) enum Migration {
    Migrated(User),
    /// Another request migrated the same user first: verify against the local user now.
    Raced(User),
    NotMigrated,
}

/// Profile key that records the policy rules a migrated password broke at migration. The
/// policy is not forced then (that would lock people out); the next change is checked in full.
pub const LEGACY_POLICY_FLAG: &str = "legacy_password_policy";

impl CredentialService {
    /// Consults the legacy systems for `username`, unknown here, and migrates on success.
    pub(crate) async fn migrate(
        &self,
        username: &str,
        password: &Password,
        meta: &RequestMeta,
    ) -> Result<Migration, Error> {
        let Some(upstream) = &self.upstream else {
            return Ok(Migration::NotMigrated);
        };
        let account = match upstream.verify(username, password).await? {
            UpstreamVerdict::Verified(account) => account,
            UpstreamVerdict::Refused => return Ok(Migration::NotMigrated),
        };
        let aliases = account.alias.iter().cloned().collect();
        self.adopt_user(username, password, account, aliases, meta)
            .await
    }

    /// Creates a local user for a password the legacy system verified: a fresh bcrypt hash,
    /// the legacy id as an alias (`aliases`), the policy rules the password breaks flagged (not
    /// forced).
    pub(crate) async fn adopt_user(
        &self,
        username: &str,
        password: &Password,
        account: UpstreamAccount,
        aliases: BTreeMap<String, String>,
        meta: &RequestMeta,
    ) -> Result<Migration, Error> {
        let broken: Vec<&str> = self
            .config
            .policy
            .check(&password.normalized(), username)
            .iter()
            .map(PolicyRule::name)
            .collect();
        let hash = self.hasher.hash(password).await?;
        let mut profile = BTreeMap::new();
        if !broken.is_empty() {
            profile.insert(LEGACY_POLICY_FLAG.to_owned(), broken.join(","));
        }
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            username: username.to_owned(),
            admin: false,
            externally_managed: false,
            aliases,
            profile,
            created_at: self.clock.now(),
        };
        let detail = json!({
            "username": username,
            "upstream": account.upstream,
            "external_id": account.alias.as_ref().map(|(_, id)| id),
            "policy_failures": broken,
        });
        let audit = self.event(AuditKind::UserMigrated, Some(&user.id), meta, detail);
        let new = NewUser {
            user: user.clone(),
            credential_hash: hash,
        };
        // User, alias, hash and audit record in one transaction: never half a user.
        match self.store.insert_user(&new, &audit).await {
            Ok(()) => {
                metrics::counter!("credgate_users_migrated_total", "upstream" => account.upstream)
                    .increment(1);
                Ok(Migration::Migrated(user))
            }
            Err(StoreError::Duplicate(what)) => {
                match self.store.find_user(UserKey::Username(username)).await? {
                    Some(existing) => Ok(Migration::Raced(existing)),
                    None => {
                        // The legacy id is already another local user's alias.
                        tracing::error!(upstream = %account.upstream, %what, "migration clashes with a local user");
                        Err(Error::Conflict(format!("{what} already exists")))
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
