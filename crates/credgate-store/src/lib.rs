//! credgate-store: durable implementations of credgate-core's [`Store`], so users, tokens and the
//! audit trail survive restarts and a password change commits as one transaction.
//!
//! [`open`] picks the backend from the database URL: SQLite (`sqlite:` URLs or plain file paths,
//! the embedded default) or PostgreSQL (`postgres://` or `postgresql://`, for several gateway
//! instances sharing one database). Both run the same portable SQL (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`).
#![deny(clippy::unwrap_used, clippy::expect_used)]
// `src/shared/*.rs` is a module of both backends on purpose: one text, two `Backend` types.
#![allow(clippy::duplicate_mod)]

use std::sync::Arc;

use credgate_core::{Store, StoreError};

mod error;
pub mod files;
pub mod postgres;
pub mod sqlite;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;

pub use postgres::{PgFeed, PgStore};
pub use sqlite::SqliteStore;

/// How a store connects (the `[store]` table of the configuration). Keys named after one
/// backend are ignored by the other.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreOptions {
    /// Upper bound of the connection pool (at least 1 is used).
    pub max_connections: u32,
    /// How long a statement waits for a lock held by another connection before failing with
    /// `Unavailable`: SQLite's busy timeout, PostgreSQL's `lock_timeout`. On PostgreSQL it also
    /// bounds the wait for a pooled connection (at least 100 ms).
    pub busy_timeout_ms: u64,
    /// Apply pending migrations when the store opens.
    pub auto_migrate: bool,
    /// A pooled connection is closed and replaced after this long (0: never).
    pub max_lifetime_secs: u64,
    /// An idle pooled connection is closed after this long (0: never).
    pub idle_timeout_secs: u64,
    /// PostgreSQL: check a pooled connection with a round trip before handing it out, so a
    /// connection the server dropped (a restart) is replaced instead of failing a request.
    /// SQLite's connections live in the process: nothing to check.
    pub test_before_acquire: bool,
    /// PostgreSQL `statement_timeout`: a statement running longer is cancelled and the request
    /// answered `Unavailable` (0: no limit).
    pub statement_timeout_ms: u64,
    /// PostgreSQL `idle_in_transaction_session_timeout`: a session idle inside a transaction
    /// this long is ended by the server, releasing its locks (0: no limit).
    pub idle_in_transaction_timeout_ms: u64,
    /// SQLite `wal_autocheckpoint`: the write-ahead log is checkpointed into the database once
    /// it holds this many pages (0: only the periodic checkpoint).
    pub wal_autocheckpoint_pages: u32,
    /// SQLite `journal_size_limit`: after a checkpoint the write-ahead log is cut back to at
    /// most this many bytes (negative: never).
    pub journal_size_limit_bytes: i64,
    /// SQLite: a full checkpoint that also truncates the write-ahead log runs this often
    /// (0: never), so a quiet database gives its log's disk space back.
    pub checkpoint_interval_secs: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout_ms: 5_000,
            auto_migrate: true,
            max_lifetime_secs: 30 * 60,
            idle_timeout_secs: 10 * 60,
            test_before_acquire: true,
            statement_timeout_ms: 5_000,
            idle_in_transaction_timeout_ms: 10_000,
            wal_autocheckpoint_pages: 256,
            journal_size_limit_bytes: 4 * 1024 * 1024,
            checkpoint_interval_secs: 60,
        }
    }
}

/// The backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// `postgres://` / `postgresql://` URLs are PostgreSQL; `sqlite:` URLs and anything without
    /// a `scheme://` (a file path such as `./data/credgate.db`) are SQLite.
    pub fn of(database_url: &str) -> Result<Self, StoreError> {
        let url = database_url.trim();
        let lower = url.to_ascii_lowercase();
        if url.is_empty() {
            Err(StoreError::Backend("the database URL is empty".into()))
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if lower.starts_with("sqlite:") || !lower.contains("://") {
            Ok(Self::Sqlite)
        } else {
            Err(StoreError::Backend(
                "unsupported database URL: use a sqlite: URL, a file path or a postgres:// URL"
                    .into(),
            ))
        }
    }
}

/// Opens the store a database URL names, creating (and, with `auto_migrate`, migrating) a
/// SQLite file and its parent directory on first start.
pub async fn open(database_url: &str, opts: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    match BackendKind::of(database_url)? {
        BackendKind::Sqlite => Ok(Arc::new(SqliteStore::open(database_url, opts).await?)),
        BackendKind::Postgres => Ok(Arc::new(PgStore::open(database_url, opts).await?)),
    }
}

/// The change feed between instances sharing the database: PostgreSQL's `LISTEN/NOTIFY`;
/// `None` for SQLite (one instance per file; other processes see changes within
/// `token_cache_secs`).
pub fn open_feed(database_url: &str, opts: &StoreOptions) -> Result<Option<PgFeed>, StoreError> {
    match BackendKind::of(database_url)? {
        BackendKind::Sqlite => Ok(None),
        BackendKind::Postgres => Ok(Some(PgFeed::open(
            database_url,
            std::time::Duration::from_millis(opts.busy_timeout_ms.max(100)),
        )?)),
    }
}

/// Applies pending migrations and returns: the explicit migration command.
pub async fn migrate(database_url: &str) -> Result<(), StoreError> {
    match BackendKind::of(database_url)? {
        BackendKind::Sqlite => {
            let opts = StoreOptions {
                max_connections: 1,
                auto_migrate: false,
                ..StoreOptions::default()
            };
            let store = SqliteStore::open(database_url, &opts).await?;
            let result = store.migrate().await;
            store.close().await;
            result
        }
        BackendKind::Postgres => {
            let opts = StoreOptions {
                max_connections: 1,
                auto_migrate: false,
                ..StoreOptions::default()
            };
            let store = PgStore::open(database_url, &opts).await?;
            let result = store.migrate().await;
            store.close().await;
            result
        }
    }
}

/// `secs` as a pool duration; 0 means none.
fn optional_secs(secs: u64) -> Option<std::time::Duration> {
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}
