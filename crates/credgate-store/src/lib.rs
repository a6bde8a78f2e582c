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

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How a store connects; the same for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Upper bound of the connection pool (at least 1 is used).
    pub max_connections: u32,
    /// How long a statement waits for a lock held by another connection before failing with
    /// `Unavailable`: SQLite's busy timeout, PostgreSQL's `lock_timeout`. On PostgreSQL it also
    /// bounds the wait for a pooled connection (at least 100 ms).
    pub busy_timeout_ms: u64,
    /// Apply pending migrations when the store opens.
    pub auto_migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            busy_timeout_ms: 5_000,
            auto_migrate: true,
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
