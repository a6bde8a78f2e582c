//! Failure counters for guessing limits, updated by one atomic upsert each.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend`.

use async_trait::async_trait;
use credgate_core::store::{AttemptStore, Reservation};
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::Backend;
use crate::error;

/// Takes a slot: starts a new window when the stored one has ended, else counts one more in
/// it, but never past `limit + 1` (the mark of a refusal). One statement, so concurrent
/// callers are serialized by the row lock (PostgreSQL) or the single writer (SQLite); every
/// expression reads the row as it was, in SQLite and PostgreSQL alike.
const RESERVE: &str = "INSERT INTO attempt_counters (key, count, window_start) VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
       count = CASE WHEN attempt_counters.window_start + $3 <= $2 THEN 1 \
                    WHEN attempt_counters.count > $4 THEN attempt_counters.count \
                    ELSE attempt_counters.count + 1 END, \
       window_start = CASE WHEN attempt_counters.window_start + $3 <= $2 THEN $2 ELSE attempt_counters.window_start END \
     RETURNING count, window_start";

/// Gives a slot back; a refusal mark (`limit + 1`) falls to `limit - 1`: one slot free.
const RELEASE: &str = "UPDATE attempt_counters SET \
       count = CASE WHEN count > $3 THEN $3 - 1 ELSE count - 1 END \
     WHERE key = $1 AND window_start = $2 AND count > 0";

/// Stored hashes look like `$2b$12$...`: the cost is the two digits after the second `$`.
const MAX_COST: &str = "SELECT MAX(substr(password_hash, 5, 2)) AS cost FROM users \
     WHERE substr(password_hash, 1, 2) = '$2' AND substr(password_hash, 5, 2) BETWEEN '04' AND '31'";

#[async_trait]
impl AttemptStore for Backend {
    async fn reserve_attempt(
        &self,
        key: &str,
        now: Timestamp,
        window: i64,
        limit: u32,
    ) -> Result<Reservation, StoreError> {
        let row = sqlx::query(RESERVE)
            .bind(key)
            .bind(now)
            .bind(window)
            .bind(i64::from(limit))
            .fetch_one(self.pool())
            .await
            .map_err(error::map)?;
        let (count, start): (i64, i64) = (
            row.try_get("count").map_err(error::map)?,
            row.try_get("window_start").map_err(error::map)?,
        );
        Ok(Reservation {
            allowed: count <= i64::from(limit),
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_start: start,
        })
    }

    async fn release_attempt(
        &self,
        key: &str,
        window_start: Timestamp,
        limit: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(RELEASE)
            .bind(key)
            .bind(window_start)
            .bind(i64::from(limit))
            .execute(self.pool())
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM attempt_counters WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn max_hash_cost(&self) -> Result<Option<u32>, StoreError> {
        let row = sqlx::query(MAX_COST)
            .fetch_one(self.pool())
            .await
            .map_err(error::map)?;
        let cost: Option<String> = row.try_get("cost").map_err(error::map)?;
        Ok(cost.and_then(|c| c.parse().ok()))
    }
}
