//! API clients and application keys.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`).

use async_trait::async_trait;
use credgate_core::model::{App, AuditEvent, Client};
use credgate_core::store::ClientStore;
use credgate_core::StoreError;
use sqlx::Row;

use super::audit::insert_events;
use super::Backend;
use crate::error::{self, duplicate_or_map};

#[async_trait]
impl ClientStore for Backend {
    /// `Duplicate("client id")` when the id is taken.
    async fn insert_client(&self, client: &Client, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO clients (client_id, secret_hash, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&client.client_id)
            .bind(&client.secret_hash)
            .bind(client.name.as_deref())
            .bind(client.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or_map(e, |_| "client id".into()))?;
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, secret_hash, name, created_at FROM clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        row.map(|row| {
            Ok(Client {
                client_id: row.try_get("client_id").map_err(error::map)?,
                secret_hash: row.try_get("secret_hash").map_err(error::map)?,
                name: row.try_get("name").map_err(error::map)?,
                created_at: row.try_get("created_at").map_err(error::map)?,
            })
        })
        .transpose()
    }

    /// `Duplicate("app key")` when the key is already registered.
    async fn insert_app(&self, app: &App, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO apps (key_digest, name, created_at) VALUES ($1, $2, $3)")
            .bind(&app.key_digest)
            .bind(app.name.as_deref())
            .bind(app.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| duplicate_or_map(e, |_| "app key".into()))?;
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_app(&self, key_digest: &str) -> Result<Option<App>, StoreError> {
        let row =
            sqlx::query("SELECT key_digest, name, created_at FROM apps WHERE key_digest = $1")
                .bind(key_digest)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
        row.map(|row| {
            Ok(App {
                key_digest: row.try_get("key_digest").map_err(error::map)?,
                name: row.try_get("name").map_err(error::map)?,
                created_at: row.try_get("created_at").map_err(error::map)?,
            })
        })
        .transpose()
    }
}
