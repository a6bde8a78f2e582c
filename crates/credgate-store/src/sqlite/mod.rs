//! The embedded backend: one SQLite file in WAL mode, shared by a small connection pool.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock up front, so two
//! writers queue on the busy timeout instead of deadlocking on a read-to-write lock upgrade.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use credgate_core::StoreError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqlitePool, Transaction};

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

#[cfg(test)]
mod tests;

// The names the shared store code (`../shared/*.rs`) is written against.
type Backend = SqliteStore;
type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;
type DbConn = sqlx::SqliteConnection;

/// SQLite runs one writer at a time (`BEGIN IMMEDIATE`), so there is no lock order to keep.
async fn lock_user(_conn: &mut DbConn, _user_id: &str) -> Result<(), StoreError> {
    Ok(())
}

/// With one writer at a time there is nothing to skip.
const PURGE_EXPIRED_TOKENS: &str = "DELETE FROM tokens WHERE expires_at < $1";

/// The schema, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a request waits for a free pooled connection before the store reports `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`credgate_core::Store`] on a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The guessing counters' pool of one connection: the same file, its commits not waiting
    /// for the disk (see [`SqliteStore::open`]). The main pool itself for an in-memory database.
    counters: SqlitePool,
    /// The periodic checkpoint runs while a clone of this store exists.
    alive: Arc<()>,
}

impl SqliteStore {
    /// Opens `database_url` (`sqlite:` URL or file path), creating the file and its parent
    /// directory if missing, and migrates it when `opts.auto_migrate`.
    pub async fn open(database_url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let target = Target::parse(database_url)?;
        if let Some(dir) = target.parent_dir() {
            crate::files::create_private_dir(dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the database directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        target.make_private()?;
        let options = target
            .options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(opts.busy_timeout_ms))
            .pragma(
                "wal_autocheckpoint",
                opts.wal_autocheckpoint_pages.to_string(),
            )
            .pragma(
                "journal_size_limit",
                opts.journal_size_limit_bytes.to_string(),
            );
        let pool = pool_options(opts, target.in_memory)
            .connect_with(options.clone())
            .await
            .map_err(error::map)?;
        // Guessing counters are rate-limit state, not credentials: in WAL mode with
        // synchronous=NORMAL their commits are atomic and survive the process's death, and only
        // a power loss before the next full commit's fsync can roll the last ones back. That
        // takes one fsync off every login's response path. The same holds for what completes a
        // request after its answer (`settle_after_answer`) and for shadow comparisons.
        // Everything on this pool writes, and SQLite has one writer: one connection is enough.
        // A second would only wait on the busy handler for the same lock; with one, writers
        // queue in the pool (woken when it frees) and its thread stays warm. That took about
        // 0.2 ms off each login through a passthrough or shadow front (BENCHMARKS.md).
        let counters = if target.in_memory {
            pool.clone()
        } else {
            pool_options(opts, false)
                .max_connections(1)
                .connect_lazy_with(options.synchronous(SqliteSynchronous::Normal))
        };
        let store = Self {
            pool,
            counters,
            alive: Arc::new(()),
        };
        if opts.auto_migrate {
            store.migrate().await?;
        }
        if !target.in_memory && opts.checkpoint_interval_secs > 0 {
            let every = Duration::from_secs(opts.checkpoint_interval_secs);
            tokio::spawn(checkpoint_regularly(
                store.pool.clone(),
                Arc::downgrade(&store.alive),
                every,
            ));
        }
        Ok(store)
    }

    /// Applies the migrations not yet applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => error::map(e),
            other => StoreError::Backend(format!("migration failed: {other}")),
        })
    }

    /// The underlying pool, for diagnostics and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.counters.close().await;
        self.pool.close().await;
    }

    /// The pool the guessing counters are written through.
    fn counters(&self) -> &SqlitePool {
        &self.counters
    }

    /// A write transaction on the counters' pool (see [`Self::begin_write`]).
    async fn begin_counters(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.counters
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::map)
    }

    /// A write transaction holding the database's write lock from its first statement.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::map)
    }
}

/// The pool: explicit lifetimes, and no connection goes back into it inside a transaction.
/// `test_before_acquire` is PostgreSQL's: a SQLite connection lives in this process, nothing
/// can drop it, and its check would only be one more round trip to the connection's thread
/// before every statement.
fn pool_options(opts: &StoreOptions, in_memory: bool) -> SqlitePoolOptions {
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .after_release(|conn, _| {
            Box::pin(async move {
                // A failed COMMIT or ROLLBACK (a full disk, an I/O error) can leave the
                // connection inside a transaction, or sqlx believing it is: the next BEGIN on it
                // would fail for good. Outside one there is nothing to settle (a dropped
                // transaction's queued rollback keeps the depth up until it has run), and the
                // common case costs no round trip.
                if !conn.is_in_transaction() {
                    return Ok(true);
                }
                // The round trip runs after the rollback a dropped transaction queued, so the
                // depth read next is settled.
                let settled = conn.ping().await.is_ok();
                let clean = settled && !conn.is_in_transaction();
                if !clean {
                    tracing::warn!("discarding a database connection left inside a transaction");
                }
                Ok(clean)
            })
        });
    if in_memory {
        // Each connection would otherwise see its own empty database, and the database
        // vanishes with its last connection: keep exactly one, forever.
        pool.max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool.max_connections(opts.max_connections.max(1))
            .max_lifetime(optional_secs(opts.max_lifetime_secs))
            .idle_timeout(optional_secs(opts.idle_timeout_secs))
    }
}

/// Copies the write-ahead log into the database and truncates it, every `every`, until the
/// store is gone: a quiet database gives the log's disk space back. A failure (a full disk, a
/// long reader) is retried at the next tick.
async fn checkpoint_regularly(pool: SqlitePool, alive: Weak<()>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if alive.strong_count() == 0 || pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %err, "periodic checkpoint failed");
        }
    }
}

/// What a database URL or path resolves to.
struct Target {
    options: SqliteConnectOptions,
    in_memory: bool,
}

impl Target {
    fn parse(database_url: &str) -> Result<Self, StoreError> {
        let url = database_url.trim();
        if url.is_empty() {
            return Err(StoreError::Backend("the database URL is empty".into()));
        }
        if url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("sqlite:"))
        {
            // sqlx only strips a lowercase scheme.
            let normalized = format!("sqlite:{}", &url[7..]);
            let options = SqliteConnectOptions::from_str(&normalized)
                .map_err(|e| StoreError::Backend(format!("invalid sqlite URL: {e}")))?;
            let rest = url[7..].trim_start_matches('/');
            let in_memory = rest.starts_with(":memory:") || url.contains("mode=memory");
            Ok(Self { options, in_memory })
        } else if url.contains("://") {
            Err(StoreError::Backend("not a sqlite URL or file path".into()))
        } else {
            // A plain path: no URL parsing, so `?` and `#` in file names stay literal.
            Ok(Self {
                options: SqliteConnectOptions::new().filename(url),
                in_memory: false,
            })
        }
    }

    /// Creates the database file as 0600 before SQLite does (its `-wal` and `-shm` take the
    /// database file's mode), and tightens existing ones readable by others.
    fn make_private(&self) -> Result<(), StoreError> {
        if self.in_memory {
            return Ok(());
        }
        let db = self.options.get_filename();
        let result = crate::files::ensure_private_file(db).and_then(|()| {
            crate::files::sqlite_files(db)
                .iter()
                .skip(1)
                .try_for_each(|f| crate::files::tighten(f))
        });
        result.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot secure the database file {}: {e}",
                db.display()
            ))
        })
    }

    /// The directory that must exist before SQLite can create the file.
    fn parent_dir(&self) -> Option<&Path> {
        if self.in_memory {
            return None;
        }
        self.options
            .get_filename()
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    }
}
