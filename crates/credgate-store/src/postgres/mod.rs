//! The PostgreSQL store: the same traits and the same portable SQL as SQLite, for several
//! gateway instances sharing one database. Races are settled by row locks and conditional
//! updates in the database, never by in-process locks.
//!
//! Transactions run at READ COMMITTED. A transaction that locks several rows belonging to one
//! user (a password change, a reset that replaces others) first locks the user's row with
//! `FOR NO KEY UPDATE` (`lock_user`), so such transactions queue per user instead of
//! deadlocking on each other's token and reset rows. `StoreOptions::busy_timeout_ms` bounds
//! both the wait for a pooled connection and every lock wait (`lock_timeout`); either running
//! out is `Unavailable`, like SQLite's busy timeout.

use std::time::Duration;

use credgate_core::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};

use crate::error;
use crate::{optional_secs, StoreOptions};

#[path = "../shared/attempts.rs"]
mod attempts;
#[path = "../shared/audit.rs"]
mod audit;
#[path = "../shared/clients.rs"]
mod clients;
#[path = "../shared/hashes.rs"]
mod hashes;
#[path = "../shared/health.rs"]
mod health;
#[path = "../shared/import.rs"]
mod import;
#[path = "../shared/resets.rs"]
mod resets;
#[path = "../shared/shadow.rs"]
mod shadow;
#[path = "../shared/tokens.rs"]
mod tokens;
#[path = "../shared/two_factor.rs"]
mod two_factor;
#[path = "../shared/upstream_sessions.rs"]
mod upstream_sessions;
#[path = "../shared/users.rs"]
mod users;

mod feed;
#[cfg(test)]
mod tests;

pub use feed::{PgFeed, CHANNEL};

// The names the shared store code (`../shared/*.rs`) is written against.
type Backend = PgStore;
type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;
type DbConn = sqlx::PgConnection;

/// Rows another transaction holds are skipped, not waited for: they are being deleted by a
/// revocation (or stay for the next purge), and a bulk delete that waited could deadlock with a
/// password change revoking the same user's tokens in another order.
const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM tokens WHERE digest IN \
     (SELECT digest FROM tokens WHERE expires_at < $1 FOR UPDATE SKIP LOCKED)";

/// The schema, embedded at compile time. Running it takes PostgreSQL's advisory lock, so
/// instances starting together migrate one after the other.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// A [`credgate_core::Store`] on a PostgreSQL database, safe to share between processes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects lazily: the pool opens connections on demand, so a store on a database that is
    /// still coming up answers `Unavailable` until it is up. With `opts.auto_migrate` the
    /// migrations run at once, which needs the database (`Unavailable` when it is down).
    pub async fn open(database_url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        // The message never repeats the URL: it may carry a password.
        let options: PgConnectOptions = database_url
            .trim()
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL cannot be parsed".into()))?;
        let wait_ms = opts.busy_timeout_ms.max(100);
        let options = options.options([
            ("lock_timeout", format!("{wait_ms}ms")),
            (
                "statement_timeout",
                format!("{}ms", opts.statement_timeout_ms),
            ),
            (
                "idle_in_transaction_session_timeout",
                format!("{}ms", opts.idle_in_transaction_timeout_ms),
            ),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(wait_ms))
            .max_lifetime(optional_secs(opts.max_lifetime_secs))
            .idle_timeout(optional_secs(opts.idle_timeout_secs))
            .test_before_acquire(opts.test_before_acquire)
            .after_release(|conn, _| {
                Box::pin(async move {
                    // A failed COMMIT must not hand the next request a connection still inside
                    // a transaction.
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "discarding a database connection left inside a transaction"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect_lazy_with(options);
        let store = Self { pool };
        if opts.auto_migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Applies the migrations not yet applied, under sqlx's advisory lock. They run on a
    /// connection taken out of the pool and closed afterwards: the lock is a session lock, and
    /// it must not outlive a failed run on a pooled connection.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(error::map)?.detach();
        let result = migrate_on(&mut conn).await;
        if let Err(err) = conn.close().await {
            tracing::debug!(error = %err, "closing the migration connection failed");
        }
        result
    }

    /// The underlying pool, for diagnostics and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool the guessing counters are written through: the one pool (a commit's cost is
    /// the server's `synchronous_commit`, the operator's choice).
    fn counters(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction on the counters' pool: the one pool.
    async fn begin_counters(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.begin_write().await
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A read-committed transaction; write transactions order their row locks as the module
    /// documentation says.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(error::map)
    }
}

/// Runs the migrator on `conn`. Waiting for another instance's migration is not a lock wait to
/// cut short, and building an index on a large table may take long: `lock_timeout` and
/// `statement_timeout` are lifted for this session.
async fn migrate_on(conn: &mut PgConnection) -> Result<(), StoreError> {
    for lift in ["SET lock_timeout = 0", "SET statement_timeout = 0"] {
        sqlx::query(lift)
            .execute(&mut *conn)
            .await
            .map_err(error::map)?;
    }
    MIGRATOR.run_direct(conn).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => error::map(e),
        other => StoreError::Backend(format!("migration failed: {other}")),
    })
}

/// Locks the user's row for the rest of the transaction (`FOR NO KEY UPDATE`: inserts that
/// reference the user are not blocked); nothing is locked when there is no such user. Taken
/// first by every transaction that locks several of the user's rows.
async fn lock_user(conn: &mut DbConn, user_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map_err(error::map)?;
    Ok(())
}
