//! `[legacy_hashes]`: parameter ceilings of imported legacy hashes, and the background task of
//! `serve` that wraps weak ones in bcrypt at a bounded rate (on the hash threads, which run at
//! the lowered `hash_nice` priority); `GET /admin/hashes` counts users by format and state.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use credgate_core::legacy::Limits;
use credgate_core::{CredentialService, RequestMeta};
use serde::Deserialize;

use crate::admin::Admin;
use crate::app::AppState;
use crate::problem::problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyHashSettings {
    /// Most PBKDF2 iterations, sha-crypt rounds, phpass rounds or digest rounds of one hash.
    pub max_iterations: u32,
    /// Most memory of one argon2 or scrypt verify, in KiB.
    pub max_memory_kib: u32,
    /// Most argon2 passes.
    pub max_passes: u32,
    /// Most argon2 lanes or scrypt parallelism.
    pub max_parallelism: u32,
    /// Highest cost of a bcrypt inside a legacy format (Django's `bcrypt$`).
    pub max_bcrypt_cost: u32,
    /// Weak hashes `serve` wraps per second in the background; 0 turns it off.
    pub wrap_per_sec: u32,
}

impl Default for LegacyHashSettings {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_iterations: l.max_iterations,
            max_memory_kib: l.max_memory_kib,
            max_passes: l.max_passes,
            max_parallelism: l.max_parallelism,
            max_bcrypt_cost: l.max_bcrypt_cost,
            wrap_per_sec: 2,
        }
    }
}

impl LegacyHashSettings {
    pub fn limits(&self) -> Limits {
        Limits {
            max_iterations: self.max_iterations,
            max_memory_kib: self.max_memory_kib,
            max_passes: self.max_passes,
            max_parallelism: self.max_parallelism,
            max_bcrypt_cost: self.max_bcrypt_cost,
        }
    }
}

/// Wraps weak hashes in the background, `per_sec` at most, one small batch a second; a pass
/// over every user, then a rest before the next (new imports are picked up).
pub fn spawn_wrapper(core: Arc<CredentialService>, per_sec: u32) {
    if per_sec == 0 {
        return;
    }
    let meta = RequestMeta {
        dialect: "background".into(),
        request_id: "legacy-hash-wrapper".into(),
        client_addr: None,
    };
    tokio::spawn(async move {
        let mut after = String::new();
        let mut scanned = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            // Read ahead: most users are not weak, so a page covers more than `per_sec`.
            match core
                .rehash_batch(&after, 10 * per_sec, per_sec as usize, false, &meta)
                .await
            {
                Ok(batch) => {
                    if batch.wrapped > 0 {
                        tracing::info!(wrapped = batch.wrapped, "wrapped weak legacy hashes");
                    }
                    scanned += batch.scanned;
                    match batch.next {
                        Some(next) => after = next,
                        None => {
                            // Rest between passes: 1 ms per user read (at least 2 s), so a
                            // large database is not re-read over and over.
                            after.clear();
                            let rest = Duration::from_millis(scanned.max(2000));
                            scanned = 0;
                            tokio::time::sleep(rest).await;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "background wrapping of legacy hashes failed");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        }
    });
}

/// `GET /admin/hashes`: users by stored format and state.
pub async fn census(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    match state.core.hash_census(5000).await {
        Ok(census) => HttpResponse::Ok().json(census.to_json()),
        Err(e) => problem(&e),
    }
}
