//! Failure counters for guessing limits, updated by one atomic upsert each; an attempt's
//! budgets are taken (and settled) together, in one transaction.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`) and `DbConn`.

use async_trait::async_trait;
use credgate_core::store::{AttemptAsk, AttemptStore, Reservation, SlotSettlement};
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::{Backend, DbConn};
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

/// Takes one slot (`RESERVE`) on `conn`: the pool, or a transaction's connection.
async fn reserve_on<'c, E>(
    conn: E,
    ask: &AttemptAsk<'_>,
    now: Timestamp,
) -> Result<Reservation, StoreError>
where
    E: sqlx::Executor<'c, Database = super::Db>,
{
    let row = sqlx::query(RESERVE)
        .bind(ask.key)
        .bind(now)
        .bind(ask.window)
        .bind(i64::from(ask.limit))
        .fetch_one(conn)
        .await
        .map_err(error::map)?;
    let (count, start): (i64, i64) = (
        row.try_get("count").map_err(error::map)?,
        row.try_get("window_start").map_err(error::map)?,
    );
    Ok(Reservation {
        allowed: count <= i64::from(ask.limit),
        count: u32::try_from(count).unwrap_or(u32::MAX),
        window_start: start,
    })
}

/// Applies one settlement on `conn`: the pool, or a transaction's connection.
async fn settle_one<'c, E>(conn: E, settle: &SlotSettlement<'_>) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = super::Db>,
{
    let query = match *settle {
        SlotSettlement::Release {
            key,
            window_start,
            limit,
        } => sqlx::query(RELEASE)
            .bind(key)
            .bind(window_start)
            .bind(i64::from(limit)),
        SlotSettlement::Clear { key } => {
            sqlx::query("DELETE FROM attempt_counters WHERE key = $1").bind(key)
        }
    };
    query.execute(conn).await.map_err(error::map)?;
    Ok(())
}

/// Applies `settle` inside the caller's transaction.
pub(super) async fn settle_in(
    conn: &mut DbConn,
    settle: &[SlotSettlement<'_>],
) -> Result<(), StoreError> {
    for s in settle {
        settle_one(&mut *conn, s).await?;
    }
    Ok(())
}

#[async_trait]
impl AttemptStore for Backend {
    async fn reserve_attempt(
        &self,
        key: &str,
        now: Timestamp,
        window: i64,
        limit: u32,
    ) -> Result<Reservation, StoreError> {
        let ask = AttemptAsk { key, window, limit };
        reserve_on(self.pool(), &ask, now).await
    }

    /// One budget is one statement; more are one transaction, taking rows in key order and
    /// rolled back when one refuses.
    async fn reserve_attempts(
        &self,
        asks: &[AttemptAsk<'_>],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        match asks {
            [] => return Ok(Vec::new()),
            [ask] => return Ok(vec![reserve_on(self.pool(), ask, now).await?]),
            _ => {}
        }
        let mut order: Vec<usize> = (0..asks.len()).collect();
        order.sort_by_key(|&i| asks[i].key);
        let mut tx = self.begin_write().await?;
        let mut taken = vec![None; asks.len()];
        for i in order {
            taken[i] = Some(reserve_on(&mut *tx, &asks[i], now).await?);
        }
        let taken: Vec<Reservation> = taken.into_iter().flatten().collect();
        if taken.iter().all(|r| r.allowed) {
            tx.commit().await.map_err(error::map)?;
        } else {
            tx.rollback().await.map_err(error::map)?;
        }
        Ok(taken)
    }

    async fn release_attempt(
        &self,
        key: &str,
        window_start: Timestamp,
        limit: u32,
    ) -> Result<(), StoreError> {
        let settle = SlotSettlement::Release {
            key,
            window_start,
            limit,
        };
        settle_one(self.pool(), &settle).await
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        settle_one(self.pool(), &SlotSettlement::Clear { key }).await
    }

    async fn settle_attempts(&self, settle: &[SlotSettlement<'_>]) -> Result<(), StoreError> {
        match settle {
            [] => Ok(()),
            [one] => settle_one(self.pool(), one).await,
            _ => {
                let mut tx = self.begin_write().await?;
                settle_in(&mut tx, settle).await?;
                tx.commit().await.map_err(error::map)
            }
        }
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
