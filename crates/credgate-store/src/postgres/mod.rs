//! The PostgreSQL store: the same traits and the same portable SQL as SQLite, for several
//! gateway instances sharing one database. Races are settled by row locks and conditional
//! updates in the database, never by in-process locks.

use std::time::Duration;

use async_trait::async_trait;
use credgate_core::store::Health;
use credgate_core::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use crate::error;
use crate::StoreOptions;

mod attempts;
mod audit;
mod clients;
mod resets;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

/// Migrations take PostgreSQL's advisory lock, so instances starting together are safe.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects lazily: the gateway starts even while the database is still coming up, and
    /// every request that needs it answers `Unavailable` until it does.
    pub async fn open(database_url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let options: PgConnectOptions = database_url
            .parse()
            .map_err(|_| StoreError::Backend("the PostgreSQL URL cannot be parsed".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(opts.busy_timeout_ms.max(100)))
            .connect_lazy_with(options);
        let store = Self { pool };
        if opts.auto_migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => error::map(e),
            other => StoreError::Backend(format!("migration failed: {other}")),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(error::map)
    }
}

#[async_trait]
impl Health for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}
