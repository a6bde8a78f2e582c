//! Shadow-mode comparisons (bounded by count and age) and the profile flag a sync sets.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `DbRow` and `lock_user`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use credgate_core::shadow::{
    ShadowBounds, ShadowComparison, ShadowQuery, ShadowRecord, ShadowTally,
};
use credgate_core::store::ShadowStore;
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::{lock_user, Backend, DbRow};
use crate::error;

/// `shadow_comparisons` limit: 0 means this many.
const DEFAULT_LIMIT: u32 = 100;
/// `shadow_comparisons` limit: never more than this many.
const MAX_LIMIT: u32 = 1000;

#[async_trait]
impl ShadowStore for Backend {
    async fn record_shadow(
        &self,
        c: &ShadowComparison,
        bounds: ShadowBounds,
    ) -> Result<(), StoreError> {
        let fields = serde_json::to_string(&c.fields).map_err(|_| error::corrupt("fields"))?;
        let exchange = match &c.exchange {
            Some(e) => Some(serde_json::to_string(e).map_err(|_| error::corrupt("exchange"))?),
            None => None,
        };
        // A comparison is a report, not a credential: it goes through the counters'
        // connections (on SQLite, no wait for the disk; see `settle_after_answer`).
        let mut tx = self.begin_counters().await?;
        sqlx::query(
            "INSERT INTO shadow_comparisons (at, dialect, route, request_id, result, kind, \
             upstream_outcome, upstream_status, local_outcome, local_status, fields, exchange, \
             synced) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(c.at)
        .bind(&c.dialect)
        .bind(&c.route)
        .bind(&c.request_id)
        .bind(&c.result)
        .bind(c.kind.as_deref())
        .bind(&c.upstream_outcome)
        .bind(i64::from(c.upstream_status))
        .bind(&c.local_outcome)
        .bind(i64::from(c.local_status))
        .bind(fields)
        .bind(exchange)
        .bind(c.synced)
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
        sqlx::query("DELETE FROM shadow_comparisons WHERE at < $1")
            .bind(bounds.oldest)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        sqlx::query(
            "DELETE FROM shadow_comparisons WHERE seq <= (SELECT seq FROM shadow_comparisons \
             ORDER BY seq DESC LIMIT 1 OFFSET $1)",
        )
        .bind(i64::from(bounds.max_records))
        .execute(&mut *tx)
        .await
        .map_err(error::map)?;
        tx.commit().await.map_err(error::map)
    }

    async fn shadow_comparisons(&self, q: &ShadowQuery) -> Result<Vec<ShadowRecord>, StoreError> {
        let limit = i64::from(match q.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        });
        let rows = sqlx::query(
            "SELECT seq, at, dialect, route, request_id, result, kind, upstream_outcome, \
             upstream_status, local_outcome, local_status, fields, exchange, synced \
             FROM shadow_comparisons WHERE ($1 IS NULL OR dialect = $1) \
             AND ($2 IS NULL OR route = $2) AND ($3 IS NULL OR result = $3) \
             AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR at >= $5) \
             ORDER BY seq DESC LIMIT $6",
        )
        .bind(q.dialect.as_deref())
        .bind(q.route.as_deref())
        .bind(q.result.as_deref())
        .bind(q.kind.as_deref())
        .bind(q.since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(error::map)?;
        rows.iter().map(record).collect()
    }

    async fn shadow_tallies(&self, since: Timestamp) -> Result<Vec<ShadowTally>, StoreError> {
        let rows = sqlx::query(
            "SELECT dialect, route, result, kind, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN synced THEN 1 ELSE 0 END) AS BIGINT) AS s FROM shadow_comparisons WHERE at >= $1 \
             GROUP BY dialect, route, result, kind ORDER BY dialect, route, result, kind",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(error::map)?;
        rows.iter()
            .map(|row| {
                let n: i64 = row.try_get("n").map_err(error::map)?;
                let s: Option<i64> = row.try_get("s").map_err(error::map)?;
                Ok(ShadowTally {
                    dialect: row.try_get("dialect").map_err(error::map)?,
                    route: row.try_get("route").map_err(error::map)?,
                    result: row.try_get("result").map_err(error::map)?,
                    kind: row.try_get("kind").map_err(error::map)?,
                    count: n.max(0) as u64,
                    synced: s.unwrap_or(0).max(0) as u64,
                })
            })
            .collect()
    }

    async fn set_profile_entry(
        &self,
        user_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_user(&mut tx, user_id).await?;
        let row = sqlx::query("SELECT profile FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::map)?
            .ok_or(StoreError::NotFound)?;
        let profile: String = row.try_get("profile").map_err(error::map)?;
        let mut profile: BTreeMap<String, String> =
            serde_json::from_str(&profile).map_err(|_| error::corrupt("user profile"))?;
        match value {
            Some(v) => profile.insert(key.to_owned(), v.to_owned()),
            None => profile.remove(key),
        };
        let profile =
            serde_json::to_string(&profile).map_err(|_| error::corrupt("user profile"))?;
        sqlx::query("UPDATE users SET profile = $2 WHERE id = $1")
            .bind(user_id)
            .bind(profile)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        tx.commit().await.map_err(error::map)
    }
}

fn record(row: &DbRow) -> Result<ShadowRecord, StoreError> {
    let fields: String = row.try_get("fields").map_err(error::map)?;
    let exchange: Option<String> = row.try_get("exchange").map_err(error::map)?;
    let status = |name: &str| -> Result<u16, StoreError> {
        let n: i64 = row.try_get(name).map_err(error::map)?;
        u16::try_from(n).map_err(|_| error::corrupt("status"))
    };
    let synced: bool = row.try_get("synced").map_err(error::map)?;
    Ok(ShadowRecord {
        seq: row.try_get("seq").map_err(error::map)?,
        comparison: ShadowComparison {
            at: row.try_get("at").map_err(error::map)?,
            dialect: row.try_get("dialect").map_err(error::map)?,
            route: row.try_get("route").map_err(error::map)?,
            request_id: row.try_get("request_id").map_err(error::map)?,
            result: row.try_get("result").map_err(error::map)?,
            kind: row.try_get("kind").map_err(error::map)?,
            upstream_outcome: row.try_get("upstream_outcome").map_err(error::map)?,
            upstream_status: status("upstream_status")?,
            local_outcome: row.try_get("local_outcome").map_err(error::map)?,
            local_status: status("local_status")?,
            fields: serde_json::from_str(&fields).map_err(|_| error::corrupt("fields"))?,
            exchange: match exchange {
                Some(e) => Some(serde_json::from_str(&e).map_err(|_| error::corrupt("exchange"))?),
                None => None,
            },
            synced,
        },
    })
}
