//! Password resets (tokens and codes, by digest, each usable once) and security answers.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `DbRow`, `DbConn` and `lock_user`.

use async_trait::async_trait;
use credgate_core::model::{AuditEvent, PasswordUpdate, ResetKind, ResetRecord, SecurityAnswer};
use credgate_core::store::ResetStore;
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::audit::insert_events;
use super::users::{apply_password_update, finish};
use super::{lock_user, Backend};
use super::{DbConn, DbRow};
use crate::error::{self, duplicate_or_map};

/// Marks one usable reset used and returns it: the row only when this statement changed it.
const CONSUME: &str = "UPDATE reset_tokens SET used_at = $1 \
     WHERE digest = $2 AND used_at IS NULL AND expires_at > $1 \
     RETURNING digest, user_id, kind, created_at, expires_at, used_at";

fn record(row: &DbRow) -> Result<ResetRecord, StoreError> {
    let kind: String = row.try_get("kind").map_err(error::map)?;
    Ok(ResetRecord {
        digest: row.try_get("digest").map_err(error::map)?,
        user_id: row.try_get("user_id").map_err(error::map)?,
        kind: ResetKind::parse(&kind).ok_or_else(|| error::corrupt("reset kind"))?,
        created_at: row.try_get("created_at").map_err(error::map)?,
        expires_at: row.try_get("expires_at").map_err(error::map)?,
        used_at: row.try_get("used_at").map_err(error::map)?,
    })
}

/// The conditional update of `consume_reset`, inside the caller's write transaction.
async fn consume(
    conn: &mut DbConn,
    digest: &str,
    now: Timestamp,
) -> Result<Option<ResetRecord>, StoreError> {
    let row = sqlx::query(CONSUME)
        .bind(now)
        .bind(digest)
        .fetch_optional(&mut *conn)
        .await
        .map_err(error::map)?;
    row.as_ref().map(record).transpose()
}

#[async_trait]
impl ResetStore for Backend {
    /// `Duplicate("reset")` when the digest exists; `NotFound` when `user_id` names no user.
    async fn insert_reset(
        &self,
        reset: &ResetRecord,
        replace_outstanding: bool,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if replace_outstanding {
            // Deletes several of the user's rows: lock the user first. A missing user is the
            // insert's foreign-key violation below.
            lock_user(&mut tx, &reset.user_id).await?;
            sqlx::query(
                "DELETE FROM reset_tokens WHERE user_id = $1 AND kind = $2 AND used_at IS NULL",
            )
            .bind(&reset.user_id)
            .bind(reset.kind.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        }
        sqlx::query(
            "INSERT INTO reset_tokens (digest, user_id, kind, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&reset.digest)
        .bind(&reset.user_id)
        .bind(reset.kind.as_str())
        .bind(reset.created_at)
        .bind(reset.expires_at)
        .bind(reset.used_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| error::not_found_or(e, |e| duplicate_or_map(e, |_| "reset".into())))?;
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_reset(&self, digest: &str) -> Result<Option<ResetRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, user_id, kind, created_at, expires_at, used_at \
             FROM reset_tokens WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        row.as_ref().map(record).transpose()
    }

    /// The used row stays (with `used_at` set) until a password change deletes the user's resets.
    async fn consume_reset(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<ResetRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        let consumed = consume(&mut tx, digest, now).await?;
        if consumed.is_none() {
            tx.rollback().await.map_err(error::map)?;
            return Ok(None);
        }
        tx.commit().await.map_err(error::map)?;
        Ok(consumed)
    }

    /// `NotFound` when the reset is unknown, used, expired at `update.now` or another user's;
    /// then as `update_password`: `VersionMismatch` when the version moved on (the reset stays
    /// unused). On success the consumed reset stays, marked used; the user's others are deleted.
    async fn complete_reset(
        &self,
        digest: &str,
        update: &PasswordUpdate,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // The user's row first, then the reset: the order every multi-row write keeps.
        let applied = match lock_user(&mut tx, &update.user_id).await {
            Ok(()) => match consume(&mut tx, digest, update.now).await {
                Ok(Some(reset)) if reset.user_id == update.user_id => {
                    apply_password_update(&mut tx, update, Some(digest)).await
                }
                Ok(_) => Err(StoreError::NotFound),
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        finish(tx, applied).await
    }

    /// `NotFound` when `user_id` names no user. `updated_at` is the audit event's time.
    async fn set_security_answer(
        &self,
        user_id: &str,
        answer: &SecurityAnswer,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO security_answers (user_id, question, answer_hash, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id) DO UPDATE SET question = excluded.question, \
             answer_hash = excluded.answer_hash, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(&answer.question)
        .bind(&answer.answer_hash)
        .bind(audit.at)
        .execute(&mut *tx)
        .await
        .map_err(|e| error::not_found_or(e, error::map))?;
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn security_answer(&self, user_id: &str) -> Result<Option<SecurityAnswer>, StoreError> {
        let row =
            sqlx::query("SELECT question, answer_hash FROM security_answers WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
        row.map(|row| {
            Ok(SecurityAnswer {
                question: row.try_get("question").map_err(error::map)?,
                answer_hash: row.try_get("answer_hash").map_err(error::map)?,
            })
        })
        .transpose()
    }
}
