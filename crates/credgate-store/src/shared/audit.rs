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

/// Events written by one statement at most (7 parameters each, well inside every backend's
/// limit).
const EVENTS_PER_STATEMENT: usize = 100;

/// Appends `events` inside the caller's transaction: one statement (one round trip) per
/// [`EVENTS_PER_STATEMENT`], rows in order, so their `seq` follows it.
pub(super) async fn insert_events(
    conn: &mut DbConn,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        insert_rows(&mut *conn, chunk).await?;
    }
    Ok(())
}

/// One `INSERT` of `events` (at least one) on `conn`: the pool, or a transaction's connection.
async fn insert_rows<'c, E>(conn: E, events: &[AuditEvent]) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = super::Db>,
{
    let rows: Vec<String> = (0..events.len())
        .map(|i| {
            let p: Vec<String> = (1..=7).map(|k| format!("${}", 7 * i + k)).collect();
            format!("({})", p.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO audit (at, kind, user_id, dialect, request_id, client_addr, detail) VALUES {}",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for event in events {
        let detail =
            serde_json::to_string(&event.detail).map_err(|_| error::corrupt("audit detail"))?;
        query = query
            .bind(event.at)
            .bind(event.kind.as_str())
            .bind(event.user_id.as_deref())
            .bind(&event.dialect)
            .bind(&event.request_id)
            .bind(event.client_addr.as_deref())
            .bind(detail);
    }
    query.execute(conn).await.map_err(error::map)?;
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
        match events.len() {
            0 => Ok(()),
            // One statement is atomic on its own: no transaction around it.
            n if n <= EVENTS_PER_STATEMENT => insert_rows(&self.pool, events).await,
            _ => {
                let mut tx = self.begin_write().await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(error::map)
            }
        }
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
