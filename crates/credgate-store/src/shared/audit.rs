//! The append-only audit trail.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `DbRow` and `DbConn`.

use async_trait::async_trait;
use credgate_core::model::{AuditEvent, AuditQuery, AuditRecord};
use credgate_core::store::AuditLog;
use credgate_core::StoreError;
use sqlx::Row;

use super::Backend;
use super::{DbConn, DbRow};
use crate::error;

/// `audit_log` limit: 0 means this many.
const DEFAULT_LIMIT: u32 = 100;
/// `audit_log` limit: never more than this many.
const MAX_LIMIT: u32 = 1000;

macro_rules! select_audit {
    ($tail:literal) => {
        concat!(
            "SELECT seq, at, kind, user_id, dialect, request_id, client_addr, detail FROM audit ",
            $tail
        )
    };
}
const FOR_USER: &str = select_audit!("WHERE user_id = $1 ORDER BY seq DESC LIMIT $2");
const ALL: &str = select_audit!("ORDER BY seq DESC LIMIT $1");

/// Appends `events` inside the caller's transaction.
pub(super) async fn insert_events(
    conn: &mut DbConn,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    for event in events {
        let detail =
            serde_json::to_string(&event.detail).map_err(|_| error::corrupt("audit detail"))?;
        sqlx::query(
            "INSERT INTO audit (at, kind, user_id, dialect, request_id, client_addr, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event.at)
        .bind(event.kind.as_str())
        .bind(event.user_id.as_deref())
        .bind(&event.dialect)
        .bind(&event.request_id)
        .bind(event.client_addr.as_deref())
        .bind(detail)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    }
    Ok(())
}

fn record(row: DbRow) -> Result<AuditRecord, StoreError> {
    let detail: String = row.try_get("detail").map_err(error::map)?;
    Ok(AuditRecord {
        seq: row.try_get("seq").map_err(error::map)?,
        at: row.try_get("at").map_err(error::map)?,
        kind: row.try_get("kind").map_err(error::map)?,
        user_id: row.try_get("user_id").map_err(error::map)?,
        dialect: row.try_get("dialect").map_err(error::map)?,
        request_id: row.try_get("request_id").map_err(error::map)?,
        client_addr: row.try_get("client_addr").map_err(error::map)?,
        detail: serde_json::from_str(&detail).map_err(|_| error::corrupt("audit detail"))?,
    })
}

#[async_trait]
impl AuditLog for Backend {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await.map_err(error::map)
    }

    /// Newest first; `limit` 0 means 100, and at most 1000 are returned.
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::from(match query.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        });
        let rows = match &query.user_id {
            Some(user_id) => {
                sqlx::query(FOR_USER)
                    .bind(user_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => sqlx::query(ALL).bind(limit).fetch_all(&self.pool).await,
        }
        .map_err(error::map)?;
        rows.into_iter().map(record).collect()
    }
}
