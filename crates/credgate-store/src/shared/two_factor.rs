//! Two-factor login: per-user settings (with the TOTP replay mark) and pending challenges.
//!
//! Shared by the SQLite and PostgreSQL stores: each backend module provides `Backend` (with
//! `begin_write`), `DbRow` and `lock_user`.

use async_trait::async_trait;
use credgate_core::model::AuditEvent;
use credgate_core::store::TwoFactorStore;
use credgate_core::{LoginChallenge, SecretToken, StoreError, TwoFactor, TwoFactorMethod};
use sqlx::Row;

use super::audit::insert_events;
use super::DbRow;
use super::{lock_user, Backend};
use crate::error::{self, duplicate_or_map};

const CHALLENGE_COLUMNS: &str =
    "digest, user_id, code_digest, dialect, app_digest, client_id, created_at, expires_at";

fn challenge(row: &DbRow) -> Result<LoginChallenge, StoreError> {
    Ok(LoginChallenge {
        digest: row.try_get("digest").map_err(error::map)?,
        user_id: row.try_get("user_id").map_err(error::map)?,
        code_digest: row.try_get("code_digest").map_err(error::map)?,
        dialect: row.try_get("dialect").map_err(error::map)?,
        app_digest: row.try_get("app_digest").map_err(error::map)?,
        client_id: row.try_get("client_id").map_err(error::map)?,
        created_at: row.try_get("created_at").map_err(error::map)?,
        expires_at: row.try_get("expires_at").map_err(error::map)?,
    })
}

#[async_trait]
impl TwoFactorStore for Backend {
    async fn two_factor(&self, user_id: &str) -> Result<Option<TwoFactor>, StoreError> {
        let row =
            sqlx::query("SELECT method, totp_secret, last_step FROM two_factor WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
        row.map(|row| {
            let method: String = row.try_get("method").map_err(error::map)?;
            let secret: Option<String> = row.try_get("totp_secret").map_err(error::map)?;
            Ok(TwoFactor {
                method: TwoFactorMethod::parse(&method)
                    .ok_or_else(|| error::corrupt("two-factor method"))?,
                totp_secret: secret.map(SecretToken::new),
                last_step: row.try_get("last_step").map_err(error::map)?,
            })
        })
        .transpose()
    }

    async fn set_two_factor(
        &self,
        user_id: &str,
        setting: Option<&TwoFactor>,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_user(&mut tx, user_id).await?;
        let exists =
            sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT) FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::map)?
                .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        for statement in [
            "DELETE FROM login_challenges WHERE user_id = $1",
            "DELETE FROM two_factor WHERE user_id = $1",
        ] {
            sqlx::query(statement)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
        }
        if let Some(setting) = setting {
            sqlx::query(
                "INSERT INTO two_factor (user_id, method, totp_secret, last_step, updated_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(setting.method.as_str())
            .bind(setting.totp_secret.as_ref().map(|s| s.expose().to_owned()))
            .bind(setting.last_step)
            .bind(audit.at)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        }
        insert_events(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn claim_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE two_factor SET last_step = $2 \
             WHERE user_id = $1 AND method = 'totp' AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(error::map)?
        .rows_affected();
        tx.commit().await.map_err(error::map)?;
        Ok(claimed == 1)
    }

    async fn insert_challenge(
        &self,
        c: &LoginChallenge,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_user(&mut tx, &c.user_id).await?;
        sqlx::query("DELETE FROM login_challenges WHERE user_id = $1 OR expires_at <= $2")
            .bind(&c.user_id)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        sqlx::query(&format!(
            "INSERT INTO login_challenges ({CHALLENGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&c.digest)
        .bind(&c.user_id)
        .bind(&c.code_digest)
        .bind(&c.dialect)
        .bind(&c.app_digest)
        .bind(&c.client_id)
        .bind(c.created_at)
        .bind(c.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| error::not_found_or(e, |e| duplicate_or_map(e, |_| "challenge".into())))?;
        insert_events(&mut tx, audit).await?;
        tx.commit().await.map_err(error::map)
    }

    async fn find_challenge(&self, digest: &str) -> Result<Option<LoginChallenge>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM login_challenges WHERE digest = $1"
        ))
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::map)?;
        row.as_ref().map(challenge).transpose()
    }

    async fn take_challenge(&self, digest: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("DELETE FROM login_challenges WHERE digest = $1")
            .bind(digest)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?
            .rows_affected();
        tx.commit().await.map_err(error::map)?;
        Ok(taken == 1)
    }
}
