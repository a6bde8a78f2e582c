//! Bulk import: users taken over from a legacy system with their existing bcrypt hashes (or
//! plain passwords, hashed here), written in batches. The store decides per row, against what
//! is stored, whether it is created, unchanged, updated or a conflict; a row is never half
//! applied.

use std::collections::BTreeMap;

use serde_json::json;

use crate::error::Error;
use crate::model::{AuditKind, RequestMeta, User, UserKey};
use crate::secret::Password;
use crate::service::CredentialService;
use crate::store::StoreError;

/// One user to import, as the store writes it.
#[derive(Clone)]
pub struct ImportUser {
    /// `user.id` is either the id the source gave (`id_given`) or a fresh one, used only when
    /// the user is created.
    pub user: User,
    pub credential_hash: String,
    /// The source named the id: an existing user of that username must have this id.
    pub id_given: bool,
}

impl std::fmt::Debug for ImportUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportUser")
            .field("user", &self.user)
            .field("credential_hash", &"[redacted]")
            .field("id_given", &self.id_given)
            .finish()
    }
}

/// How an import treats users that already exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Overwrite an existing user (same username and id) whose data differ, instead of
    /// reporting a conflict. A changed hash bumps the credential version and ends the user's
    /// sessions and resets, like a password change.
    pub update: bool,
    /// Decide every row as a real import would, then roll back: nothing is written.
    pub dry_run: bool,
}

/// What became of one imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Created,
    /// The user exists with exactly these data (a re-import).
    Unchanged,
    /// The user existed with other data and `update` was set.
    Updated,
    /// Left untouched; the reason names what clashes (never a hash or a password).
    Conflict(String),
}

/// Where a row's credential comes from.
pub enum ImportSecret {
    /// An existing hash: bcrypt (`$2a$`/`$2b$`/`$2y$`), a wrapped hash or a legacy format
    /// (see [`crate::legacy`]), stored in its self-describing form.
    Hash(String),
    /// A plain password, hashed at the configured cost.
    Password(Password),
}

/// One parsed row of an import file.
pub struct ImportRow {
    pub username: String,
    pub id: Option<String>,
    pub secret: ImportSecret,
    pub admin: bool,
    pub externally_managed: bool,
    pub aliases: BTreeMap<String, String>,
    pub profile: BTreeMap<String, String>,
}

impl ImportRow {
    /// Why the row cannot be imported, if it cannot: the same identifier rules as user creation,
    /// a verifiable hash, a password bcrypt can take whole.
    pub fn problem(&self) -> Option<String> {
        if !crate::admin::is_clean_name(&self.username) {
            return Some(
                "invalid username (empty, padded, over 256 bytes or control characters)".into(),
            );
        }
        if self
            .id
            .as_deref()
            .is_some_and(|id| !crate::admin::is_clean_name(id))
        {
            return Some("invalid id (empty, padded, over 256 bytes or control characters)".into());
        }
        for (dialect, external_id) in &self.aliases {
            if !crate::admin::is_clean_name(dialect) || !crate::admin::is_clean_name(external_id) {
                return Some(format!(
                    "invalid alias for dialect `{}`",
                    dialect.escape_debug()
                ));
            }
        }
        match &self.secret {
            ImportSecret::Hash(hash) => crate::legacy::importable(hash).err(),
            ImportSecret::Password(pw) if pw.expose().is_empty() => Some("empty password".into()),
            ImportSecret::Password(pw)
                if pw.normalized().len() > crate::hasher::BCRYPT_MAX_BYTES =>
            {
                Some("password longer than 72 bytes (bcrypt's limit)".into())
            }
            ImportSecret::Password(_) => None,
        }
    }
}

impl CredentialService {
    /// Imports one batch of valid rows (see [`ImportRow::problem`]) in one store transaction and
    /// returns an outcome per row, in order. Plain passwords are hashed on the hash pool; a
    /// plain password that verifies against the user's stored hash counts as that hash, so a
    /// re-import of the same file is a no-op.
    pub async fn import_batch(
        &self,
        rows: Vec<ImportRow>,
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>, Error> {
        let now = self.clock.now();
        let mut hashes = self.hashes_for(&rows).await?.into_iter();
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let credential_hash = match row.secret {
                ImportSecret::Hash(hash) => {
                    crate::legacy::importable(&hash).map_err(|_| Error::Internal)?
                }
                ImportSecret::Password(_) => hashes.next().ok_or(Error::Internal)?,
            };
            let id_given = row.id.is_some();
            users.push(ImportUser {
                user: User {
                    id: row.id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                    username: row.username,
                    admin: row.admin,
                    externally_managed: row.externally_managed,
                    aliases: row.aliases,
                    profile: row.profile,
                    created_at: now,
                },
                credential_hash,
                id_given,
            });
        }
        match self.store.import_users(&users, options).await {
            // Another writer took a name between the store's checks and its insert: its rows
            // are visible now, so one retry reports them as conflicts.
            Err(StoreError::Duplicate(_)) => Ok(self.store.import_users(&users, options).await?),
            other => Ok(other?),
        }
    }

    /// A hash for each plain-password row, in order: the stored hash when the password
    /// matches it (a re-import), else a fresh one. Runs on every hashing thread at once.
    async fn hashes_for(&self, rows: &[ImportRow]) -> Result<Vec<String>, Error> {
        let mut stored = Vec::new();
        for row in rows {
            if let ImportSecret::Password(pw) = &row.secret {
                let user = self
                    .store
                    .find_user(UserKey::Username(&row.username))
                    .await?;
                let hash = match user {
                    Some(user) => self.store.credential(&user.id).await?.map(|c| c.hash),
                    None => None,
                };
                stored.push((pw.clone(), hash));
            }
        }
        let checks = stored
            .iter()
            .filter_map(|(pw, hash)| hash.clone().map(|h| (pw.clone(), h)))
            .collect();
        let mut matches = self.hasher.verify_many(checks).await?.into_iter();
        let mut fresh = Vec::new();
        let mut hashes: Vec<Option<String>> = Vec::with_capacity(stored.len());
        for (pw, hash) in stored {
            let kept = match hash {
                Some(h) if matches.next() == Some(true) => Some(h),
                _ => None,
            };
            if kept.is_none() {
                fresh.push(pw);
            }
            hashes.push(kept);
        }
        let mut fresh = self.hasher.hash_many(fresh).await?.into_iter();
        hashes
            .into_iter()
            .map(|kept| kept.or_else(|| fresh.next()).ok_or(Error::Internal))
            .collect()
    }

    /// Records one summary audit event for a whole import.
    pub async fn audit_import(
        &self,
        meta: &RequestMeta,
        detail: serde_json::Value,
    ) -> Result<(), Error> {
        let event = self.event(AuditKind::UsersImported, None, meta, json!(detail));
        Ok(self.store.append_audit(&[event]).await?)
    }
}
