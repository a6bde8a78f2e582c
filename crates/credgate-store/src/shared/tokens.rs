//! Issued tokens, kept by digest.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`) and `PURGE_EXPIRED_TOKENS`.

use async_trait::async_trait;
use credgate_core::model::{AuditEvent, TokenKind, TokenRecord};
use credgate_core::store::TokenStore;
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::audit::insert_events;
use super::Backend;
use crate::error::{self, duplicate_or_map};

#[async_trait]
impl TokenStore for Backend {
    /// `Duplicate("token")` when the digest exists; `NotFound` when `user_id` names no user.
    async fn insert_token(
        &self,
        token: &TokenRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO tokens (digest, kind, user_id, client_id, dialect, created_at, expires_at, \
             session_id, app_digest, spent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&token.digest)
        .bind(token.kind.as_str())
        .bind(token.user_id.as_deref())
        .bind(token.client_id.as_deref())
        .bind(&token.dialect)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.session_id)
        .bind(token.app_digest.as_deref())
        .bind(token.spent_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| error::not_found_or(e, |e| duplicate_or_map(e, |_| "token".into())))?;
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_token(&self, digest: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, kind, user_id, client_id, dialect, created_at, expires_at, \
             COALESCE(session_id, digest) AS session_id, app_digest, spent_at \
             FROM tokens WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind").map_err(error::map)?;
        Ok(Some(TokenRecord {
            digest: row.try_get("digest").map_err(error::map)?,
            kind: TokenKind::parse(&kind).ok_or_else(|| error::corrupt("token kind"))?,
            user_id: row.try_get("user_id").map_err(error::map)?,
            client_id: row.try_get("client_id").map_err(error::map)?,
            dialect: row.try_get("dialect").map_err(error::map)?,
            created_at: row.try_get("created_at").map_err(error::map)?,
            expires_at: row.try_get("expires_at").map_err(error::map)?,
            session_id: row.try_get("session_id").map_err(error::map)?,
            app_digest: row.try_get("app_digest").map_err(error::map)?,
            spent_at: row.try_get("spent_at").map_err(error::map)?,
        }))
    }

    /// Writes `audit` only when the token existed.
    async fn delete_token(&self, digest: &str, audit: &[AuditEvent]) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM tokens WHERE digest = $1").bind(digest);
        let deleted = self.delete_audited(delete, audit).await?;
        Ok(deleted > 0)
    }

    async fn spend_refresh(&self, digest: &str, now: Timestamp) -> Result<bool, StoreError> {
        let spent = sqlx::query(
            "UPDATE tokens SET spent_at = $2 WHERE digest = $1 AND kind = 'refresh' \
             AND spent_at IS NULL AND expires_at > $2",
        )
        .bind(digest)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(error::map)?
        .rows_affected();
        Ok(spent == 1)
    }

    /// Writes `audit` only when the session had tokens.
    async fn revoke_session(
        &self,
        session_id: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        let delete = sqlx::query("DELETE FROM tokens WHERE session_id = $1").bind(session_id);
        self.delete_audited(delete, audit).await
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64, StoreError> {
        // The statement is the backend's: PostgreSQL skips rows other transactions hold.
        let result = sqlx::query(super::PURGE_EXPIRED_TOKENS)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(result.rows_affected())
    }
}

/// A statement with its arguments bound, ready to run.
pub(super) type Bound<'q> =
    sqlx::query::Query<'q, super::Db, <super::Db as sqlx::Database>::Arguments<'q>>;

impl Backend {
    /// Runs `delete` (a statement with its arguments bound) and writes `audit` in the same
    /// transaction, only when it deleted something; the number of rows deleted.
    pub(super) async fn delete_audited(
        &self,
        delete: Bound<'_>,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = delete
            .execute(&mut *tx)
            .await
            .map_err(error::map)?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await.map_err(error::map)?;
            return Ok(0);
        }
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)?;
        Ok(deleted)
    }
}
