//! Users, their aliases and credentials; the password-change transaction.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `Db`, `DbRow`, `DbConn` and `lock_user`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use credgate_core::import::{ImportOptions, ImportOutcome, ImportUser};
use credgate_core::model::{AuditEvent, Credential, NewUser, PasswordUpdate, User, UserKey};
use credgate_core::store::UserStore;
use credgate_core::StoreError;
use sqlx::{Row, Transaction};

use super::audit::insert_events;
use super::{lock_user, Backend};
use super::{Db, DbConn, DbRow};
use crate::error::{self, duplicate_or_map};

/// A user row joined with its aliases (one row per alias, or one with NULL alias columns).
macro_rules! select_user {
    ($from:literal, $tail:literal) => {
        concat!(
            "SELECT u.id, u.username, u.admin, u.externally_managed, u.profile, u.created_at, ",
            "a.dialect, a.external_id FROM ",
            $from,
            " u LEFT JOIN user_aliases a ON a.user_id = u.id ",
            $tail
        )
    };
}

const FIND_BY_ID: &str = select_user!("users", "WHERE u.id = $1 ORDER BY a.dialect");
const FIND_BY_USERNAME: &str = select_user!("users", "WHERE u.username = $1 ORDER BY a.dialect");
const FIND_BY_ALIAS: &str = select_user!(
    "users",
    "WHERE u.id = (SELECT user_id FROM user_aliases WHERE dialect = $1 AND external_id = $2) ORDER BY a.dialect"
);
const LIST: &str = select_user!(
    "(SELECT id, username, admin, externally_managed, profile, created_at FROM users \
     ORDER BY username LIMIT $1 OFFSET $2)",
    "ORDER BY u.username, a.dialect"
);

/// `list_users` limit: 0 means this many.
const DEFAULT_LIST_LIMIT: u32 = 100;
/// `list_users` limit: never more than this many.
const MAX_LIST_LIMIT: u32 = 1000;

/// Folds joined rows into users; rows of one user must be adjacent.
pub(super) fn users_from_rows(rows: Vec<DbRow>) -> Result<Vec<User>, StoreError> {
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id").map_err(error::map)?;
        if users.last().is_none_or(|u| u.id != id) {
            let profile: String = row.try_get("profile").map_err(error::map)?;
            let profile: BTreeMap<String, String> =
                serde_json::from_str(&profile).map_err(|_| error::corrupt("user profile"))?;
            users.push(User {
                id,
                username: row.try_get("username").map_err(error::map)?,
                admin: row.try_get("admin").map_err(error::map)?,
                externally_managed: row.try_get("externally_managed").map_err(error::map)?,
                aliases: BTreeMap::new(),
                profile,
                created_at: row.try_get("created_at").map_err(error::map)?,
            });
        }
        let dialect: Option<String> = row.try_get("dialect").map_err(error::map)?;
        let external_id: Option<String> = row.try_get("external_id").map_err(error::map)?;
        if let (Some(dialect), Some(external_id), Some(user)) =
            (dialect, external_id, users.last_mut())
        {
            user.aliases.insert(dialect, external_id);
        }
    }
    Ok(users)
}

/// Saturating conversion for LIMIT binds.
fn limit_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The body of a password change, inside the caller's write transaction: compare-and-swap on the
/// version, history insert and trim, revocation of the user's tokens except `keep_token`,
/// deletion of the user's resets except `keep_reset`, audit. `NotFound` when the user does not
/// exist, `VersionMismatch` when its version moved on; on any error the caller must roll back.
/// The caller has locked the user's row (`lock_user`) before anything else.
pub(super) async fn apply_password_update(
    conn: &mut DbConn,
    update: &PasswordUpdate,
    keep_reset: Option<&str>,
) -> Result<(), StoreError> {
    if update.history_limit > 0 {
        // The outgoing hash, copied only while the version still matches; rolled back by the
        // caller if the compare-and-swap fails anyway.
        sqlx::query(
            "INSERT INTO password_history (user_id, hash, changed_at) \
             SELECT id, password_hash, $3 FROM users WHERE id = $1 AND credential_version = $2",
        )
        .bind(&update.user_id)
        .bind(update.expected_version)
        .bind(update.now)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    }
    let swapped = sqlx::query(
        "UPDATE users SET password_hash = $1, credential_version = credential_version + 1 \
         WHERE id = $2 AND credential_version = $3",
    )
    .bind(&update.new_hash)
    .bind(&update.user_id)
    .bind(update.expected_version)
    .execute(&mut *conn)
    .await
    .map_err(error::map)?
    .rows_affected();
    if swapped == 0 {
        let exists =
            sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT) FROM users WHERE id = $1")
                .bind(&update.user_id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(error::map)?
                .is_some();
        return Err(if exists {
            StoreError::VersionMismatch
        } else {
            StoreError::NotFound
        });
    }
    sqlx::query(
        "DELETE FROM password_history WHERE user_id = $1 AND seq NOT IN \
         (SELECT seq FROM password_history WHERE user_id = $1 ORDER BY seq DESC LIMIT $2)",
    )
    .bind(&update.user_id)
    .bind(limit_i64(update.history_limit))
    .execute(&mut *conn)
    .await
    .map_err(error::map)?;
    let revoke = match &update.keep_token {
        // The kept session survives whole: its access token and its refresh tokens.
        Some(keep) => sqlx::query(
            "DELETE FROM tokens WHERE user_id = $1 AND COALESCE(session_id, digest) <> \
             COALESCE((SELECT COALESCE(session_id, digest) FROM tokens WHERE digest = $2), $2)",
        )
        .bind(&update.user_id)
        .bind(keep),
        None => sqlx::query("DELETE FROM tokens WHERE user_id = $1").bind(&update.user_id),
    };
    revoke.execute(&mut *conn).await.map_err(error::map)?;
    let resets = match keep_reset {
        Some(keep) => sqlx::query("DELETE FROM reset_tokens WHERE user_id = $1 AND digest <> $2")
            .bind(&update.user_id)
            .bind(keep),
        None => sqlx::query("DELETE FROM reset_tokens WHERE user_id = $1").bind(&update.user_id),
    };
    resets.execute(&mut *conn).await.map_err(error::map)?;
    insert_events(&mut *conn, &update.audit).await
}

/// Commits `tx` when `result` is `Ok`, rolls it back otherwise and returns the original error.
pub(super) async fn finish(
    tx: Transaction<'_, Db>,
    result: Result<(), StoreError>,
) -> Result<(), StoreError> {
    match result {
        Ok(()) => tx.commit().await.map_err(error::map),
        Err(err) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::debug!(error = %rollback, "rollback failed");
            }
            Err(err)
        }
    }
}

#[async_trait]
impl UserStore for Backend {
    async fn insert_user(&self, new: &NewUser, audit: &AuditEvent) -> Result<(), StoreError> {
        let user = &new.user;
        let profile =
            serde_json::to_string(&user.profile).map_err(|_| error::corrupt("user profile"))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, username, admin, externally_managed, profile, created_at, \
             password_hash, credential_version) VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(user.admin)
        .bind(user.externally_managed)
        .bind(&profile)
        .bind(user.created_at)
        .bind(&new.credential_hash)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            duplicate_or_map(e, |c| {
                if c.contains("username") {
                    "username".into()
                } else {
                    "id".into()
                }
            })
        })?;
        for (dialect, external_id) in &user.aliases {
            sqlx::query(
                "INSERT INTO user_aliases (dialect, external_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(dialect)
            .bind(external_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or_map(e, |_| format!("alias {dialect}")))?;
        }
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_user(&self, key: UserKey<'_>) -> Result<Option<User>, StoreError> {
        let query = match key {
            UserKey::Id(id) => sqlx::query(FIND_BY_ID).bind(id),
            UserKey::Username(username) => sqlx::query(FIND_BY_USERNAME).bind(username),
            UserKey::Alias {
                dialect,
                external_id,
            } => sqlx::query(FIND_BY_ALIAS).bind(dialect).bind(external_id),
        };
        let rows = query.fetch_all(&self.pool).await.map_err(error::map)?;
        Ok(users_from_rows(rows)?.into_iter().next())
    }

    /// Ordered by username; `limit` 0 means 100, and at most 1000 are returned.
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<User>, StoreError> {
        let limit = match limit {
            0 => DEFAULT_LIST_LIMIT,
            n => n.min(MAX_LIST_LIMIT),
        };
        let rows = sqlx::query(LIST)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        users_from_rows(rows)
    }

    async fn credential(&self, user_id: &str) -> Result<Option<Credential>, StoreError> {
        let row = sqlx::query("SELECT password_hash, credential_version FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.map(|row| {
            Ok(Credential {
                hash: row.try_get("password_hash").map_err(error::map)?,
                version: row.try_get("credential_version").map_err(error::map)?,
            })
        })
        .transpose()
    }

    async fn password_history(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT hash FROM password_history WHERE user_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit_i64(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error::map)
    }

    /// `NotFound` when the user does not exist, `VersionMismatch` when its version moved on.
    async fn update_password(&self, update: &PasswordUpdate) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let applied = match lock_user(&mut tx, &update.user_id).await {
            Ok(()) => apply_password_update(&mut tx, update, None).await,
            Err(err) => Err(err),
        };
        finish(tx, applied).await
    }

    /// Writes `audit` only when the hash was replaced.
    async fn upgrade_hash(
        &self,
        user_id: &str,
        expected_version: i64,
        new_hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $1 WHERE id = $2 AND credential_version = $3",
        )
        .bind(new_hash)
        .bind(user_id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(error::map)?
        .rows_affected();
        if changed == 0 {
            tx.rollback().await.map_err(error::map)?;
            return Ok(false);
        }
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)?;
        Ok(true)
    }

    async fn import_users(
        &self,
        users: &[ImportUser],
        options: ImportOptions,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        super::import::import_users(self, users, options).await
    }

    async fn export_users(
        &self,
        after_username: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NewUser>, StoreError> {
        super::import::export_users(self, after_username, limit).await
    }
}
