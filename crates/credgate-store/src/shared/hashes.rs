//! Bulk reads and compare-and-swap writes of stored password hashes (`credgate rehash` and the
//! background wrapping of weak legacy hashes).
//!
//! Shared by the SQLite and PostgreSQL stores.

use async_trait::async_trait;
use credgate_core::model::AuditEvent;
use credgate_core::store::{HashStore, HashSwap, StoredHash};
use credgate_core::StoreError;
use sqlx::Row;

use super::audit::insert_events;
use super::Backend;
use crate::error;

const PAGE: &str = "SELECT id, credential_version, password_hash FROM users \
     WHERE id > $1 ORDER BY id LIMIT $2";
const SWAP: &str = "UPDATE users SET password_hash = $1 \
     WHERE id = $2 AND credential_version = $3 AND password_hash = $4";

#[async_trait]
impl HashStore for Backend {
    async fn hash_page(&self, after: &str, limit: u32) -> Result<Vec<StoredHash>, StoreError> {
        let rows = sqlx::query(PAGE)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(error::map)?;
        rows.iter()
            .map(|row| {
                Ok(StoredHash {
                    user_id: row.try_get("id").map_err(error::map)?,
                    credential_version: row.try_get("credential_version").map_err(error::map)?,
                    hash: row.try_get("password_hash").map_err(error::map)?,
                })
            })
            .collect()
    }

    async fn swap_hashes(
        &self,
        swaps: &[HashSwap],
        audit: &[AuditEvent],
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut applied = 0;
        for swap in swaps {
            applied += sqlx::query(SWAP)
                .bind(&swap.new)
                .bind(&swap.user_id)
                .bind(swap.credential_version)
                .bind(&swap.old)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?
                .rows_affected();
        }
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)?;
        Ok(applied)
    }
}
