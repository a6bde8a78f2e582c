//! The store's liveness check and the readiness probe's write.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with its
//! `pool`).

use async_trait::async_trait;
use credgate_core::store::Health;
use credgate_core::StoreError;

use super::Backend;
use crate::error;

#[async_trait]
impl Health for Backend {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn heartbeat(&self, now: credgate_core::Timestamp) -> Result<(), StoreError> {
        sqlx::query(HEARTBEAT)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }
}

/// The readiness probe's write: one row, rewritten.
const HEARTBEAT: &str = "INSERT INTO heartbeat (name, beat_at) VALUES ('readiness', $1) \
     ON CONFLICT (name) DO UPDATE SET beat_at = excluded.beat_at";
