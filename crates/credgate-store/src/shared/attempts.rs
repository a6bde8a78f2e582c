//! Failure counters for guessing limits, updated by one atomic upsert each.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend`.

use async_trait::async_trait;
use credgate_core::store::AttemptStore;
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::Backend;
use crate::error;

/// Starts a new window when the stored one has ended, else counts one more in it. Every
/// expression reads the row as it was, in SQLite and PostgreSQL alike.
const RECORD: &str = "INSERT INTO attempt_counters (key, count, window_start) VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
       count = CASE WHEN attempt_counters.window_start + $3 <= $2 THEN 1 ELSE attempt_counters.count + 1 END, \
       window_start = CASE WHEN attempt_counters.window_start + $3 <= $2 THEN $2 ELSE attempt_counters.window_start END \
     RETURNING count, window_start";

#[async_trait]
impl AttemptStore for Backend {
    async fn failures(
        &self,
        key: &str,
        now: Timestamp,
        window: i64,
    ) -> Result<(u32, Timestamp), StoreError> {
        let row = sqlx::query("SELECT count, window_start FROM attempt_counters WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(error::map)?;
        let Some(row) = row else { return Ok((0, now)) };
        let (count, start): (i64, i64) = (
            row.try_get("count").map_err(error::map)?,
            row.try_get("window_start").map_err(error::map)?,
        );
        if start + window <= now {
            return Ok((0, now));
        }
        Ok((u32::try_from(count).unwrap_or(u32::MAX), start))
    }

    async fn record_failure(
        &self,
        key: &str,
        now: Timestamp,
        window: i64,
    ) -> Result<(u32, Timestamp), StoreError> {
        let row = sqlx::query(RECORD)
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_one(self.pool())
            .await
            .map_err(error::map)?;
        let (count, start): (i64, i64) = (
            row.try_get("count").map_err(error::map)?,
            row.try_get("window_start").map_err(error::map)?,
        );
        Ok((u32::try_from(count).unwrap_or(u32::MAX), start))
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM attempt_counters WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
