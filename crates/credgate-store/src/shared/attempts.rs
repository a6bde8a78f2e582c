//! Failure counters for guessing limits, updated by atomic upserts; an attempt's budgets are
//! taken together in one statement, and settled together in one transaction.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_counters` and `counters`, the pool the counters are written through) and `DbConn`.

use async_trait::async_trait;
use credgate_core::model::AuditEvent;
use credgate_core::store::{AttemptAsk, AttemptStore, Reservation, SlotSettlement};
use credgate_core::{StoreError, Timestamp};
use sqlx::Row;

use super::audit::insert_events;
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

/// Takes one slot of each budget (distinct keys, in key order) in ONE statement: `RESERVE`
/// for many rows, each with its own window and limit. Returns (key, reservation) per row.
async fn reserve_together(
    pool: &sqlx::Pool<super::Db>,
    asks: &[&AttemptAsk<'_>],
    now: Timestamp,
) -> Result<Vec<(String, Reservation)>, StoreError> {
    // $1 is now; row i has its key, window and limit at $(2+3i), $(3+3i), $(4+3i).
    let param = |i: usize, k: usize| format!("${}", 2 + 3 * i + k);
    let per_key = |k: usize| {
        let arms: String = (0..asks.len())
            .map(|i| format!(" WHEN {} THEN {}", param(i, 0), param(i, k)))
            .collect();
        format!("(CASE attempt_counters.key{arms} END)")
    };
    let (window, limit) = (per_key(1), per_key(2));
    let rows: Vec<String> = (0..asks.len())
        .map(|i| format!("({}, 1, $1)", param(i, 0)))
        .collect();
    let sql = format!(
        "INSERT INTO attempt_counters (key, count, window_start) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN attempt_counters.window_start + {window} <= $1 THEN 1 \
                        WHEN attempt_counters.count > {limit} THEN attempt_counters.count \
                        ELSE attempt_counters.count + 1 END, \
           window_start = CASE WHEN attempt_counters.window_start + {window} <= $1 THEN $1 \
                               ELSE attempt_counters.window_start END \
         RETURNING key, count, window_start",
        rows.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(now);
    for ask in asks {
        query = query
            .bind(ask.key)
            .bind(ask.window)
            .bind(i64::from(ask.limit));
    }
    let rows = query.fetch_all(pool).await.map_err(error::map)?;
    let mut taken = Vec::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get("key").map_err(error::map)?;
        let (count, start): (i64, i64) = (
            row.try_get("count").map_err(error::map)?,
            row.try_get("window_start").map_err(error::map)?,
        );
        let limit = (asks.iter().find(|a| a.key == key))
            .ok_or_else(|| error::corrupt("reservation"))?
            .limit;
        let reservation = Reservation {
            allowed: count <= i64::from(limit),
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_start: start,
        };
        taken.push((key, reservation));
    }
    Ok(taken)
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

/// Applies `settle` inside the caller's transaction, rows in key order as
/// [`reserve_together`] takes them: a settlement and a concurrent reservation on PostgreSQL
/// never wait for each other's rows in opposite orders (a deadlock).
async fn settle_in(conn: &mut DbConn, settle: &[SlotSettlement<'_>]) -> Result<(), StoreError> {
    let mut ordered: Vec<&SlotSettlement<'_>> = settle.iter().collect();
    ordered.sort_by_key(|s| match s {
        SlotSettlement::Release { key, .. } | SlotSettlement::Clear { key } => *key,
    });
    for s in ordered {
        settle_one(&mut *conn, s).await?;
    }
    Ok(())
}

impl Backend {
    /// [`AttemptStore::reserve_attempts`] for asks naming one key twice: one statement each,
    /// in key order, in one transaction, rolled back when one refuses.
    async fn reserve_one_by_one(
        &self,
        asks: &[AttemptAsk<'_>],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        let mut order: Vec<usize> = (0..asks.len()).collect();
        order.sort_by_key(|&i| asks[i].key);
        let mut tx = self.begin_counters().await?;
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
}

#[async_trait]
impl AttemptStore for Backend {
    /// One statement for all the budgets (one round trip, one commit), rows in key order;
    /// when one refuses, the slots the others gave are handed back at once.
    async fn reserve_attempts(
        &self,
        asks: &[AttemptAsk<'_>],
        now: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        let mut order: Vec<&AttemptAsk<'_>> = asks.iter().collect();
        order.sort_by_key(|a| a.key);
        order.dedup_by_key(|a| a.key);
        let taken = match asks {
            [] => return Ok(Vec::new()),
            [ask] => return Ok(vec![reserve_on(self.counters(), ask, now).await?]),
            // One row cannot be counted twice by one statement.
            _ if order.len() < asks.len() => return self.reserve_one_by_one(asks, now).await,
            _ => reserve_together(self.counters(), &order, now).await?,
        };
        let mut answers = Vec::with_capacity(asks.len());
        for ask in asks {
            let found = taken.iter().find(|(key, _)| key == ask.key);
            answers.push(found.ok_or_else(|| error::corrupt("reservation"))?.1);
        }
        if answers.iter().any(|r| !r.allowed) {
            let back: Vec<SlotSettlement<'_>> = (asks.iter().zip(&answers))
                .filter(|(_, r)| r.allowed)
                .map(|(a, r)| SlotSettlement::Release {
                    key: a.key,
                    window_start: r.window_start,
                    limit: a.limit,
                })
                .collect();
            self.settle_attempts(&back).await?;
        }
        Ok(answers)
    }

    async fn settle_attempts(&self, settle: &[SlotSettlement<'_>]) -> Result<(), StoreError> {
        match settle {
            [] => Ok(()),
            [one] => settle_one(self.counters(), one).await,
            _ => {
                let mut tx = self.begin_counters().await?;
                settle_in(&mut tx, settle).await?;
                tx.commit().await.map_err(error::map)
            }
        }
    }

    async fn settle_after_answer(
        &self,
        settle: &[SlotSettlement<'_>],
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_counters().await?;
        settle_in(&mut tx, settle).await?;
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)
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
