//! Sessions standing for a passthrough upstream's user, kept by token digest.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write` and, in `tokens`, `delete_audited`).

use async_trait::async_trait;
use credgate_core::model::AuditEvent;
use credgate_core::store::UpstreamSessionStore;
use credgate_core::{StoreError, Timestamp, UpstreamSessionRecord};
use sqlx::Row;

use super::audit::insert_events;
use super::Backend;
use crate::error::{self, duplicate_or_map};

#[async_trait]
impl UpstreamSessionStore for Backend {
    async fn insert_upstream_session(
        &self,
        session: &UpstreamSessionRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO upstream_sessions (digest, upstream, dialect, app_digest, username, \
             user_ref, client_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&session.digest)
        .bind(&session.upstream)
        .bind(&session.dialect)
        .bind(session.app_digest.as_deref())
        .bind(&session.username)
        .bind(session.user_ref.as_deref())
        .bind(session.client_id.as_deref())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| duplicate_or_map(e, |_| "upstream session".into()))?;
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn purge_expired_upstream_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM upstream_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected())
    }

    async fn upstream_user_ref(
        &self,
        upstream: &str,
        username: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT user_ref FROM upstream_sessions WHERE upstream = $1 \
             AND lower(username) = lower($2) AND user_ref IS NOT NULL \
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(upstream)
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)
    }

    async fn set_upstream_user_ref(
        &self,
        digest: &str,
        user_ref: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE upstream_sessions SET user_ref = $2 WHERE digest = $1")
            .bind(digest)
            .bind(user_ref)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_upstream_session(
        &self,
        digest: &str,
    ) -> Result<Option<UpstreamSessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT digest, upstream, dialect, app_digest, username, user_ref, client_id, \
             created_at, expires_at FROM upstream_sessions WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(UpstreamSessionRecord {
            digest: row.try_get("digest").map_err(error::map)?,
            upstream: row.try_get("upstream").map_err(error::map)?,
            dialect: row.try_get("dialect").map_err(error::map)?,
            app_digest: row.try_get("app_digest").map_err(error::map)?,
            username: row.try_get("username").map_err(error::map)?,
            user_ref: row.try_get("user_ref").map_err(error::map)?,
            client_id: row.try_get("client_id").map_err(error::map)?,
            created_at: row.try_get("created_at").map_err(error::map)?,
            expires_at: row.try_get("expires_at").map_err(error::map)?,
        }))
    }

    /// Writes `audit` only when the session existed.
    async fn delete_upstream_session(
        &self,
        digest: &str,
        audit: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM upstream_sessions WHERE digest = $1").bind(digest);
        Ok(self.delete_audited(delete, audit).await? > 0)
    }

    async fn delete_other_upstream_sessions(
        &self,
        upstream: &str,
        username: &str,
        keep: &str,
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        let delete = sqlx::query(
            "DELETE FROM upstream_sessions WHERE upstream = $1 AND lower(username) = lower($2) \
             AND digest <> $3",
        )
        .bind(upstream)
        .bind(username)
        .bind(keep);
        self.delete_audited(delete, audit).await
    }
}
