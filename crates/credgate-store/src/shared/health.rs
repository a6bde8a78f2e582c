//! The store's liveness check.
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
}
