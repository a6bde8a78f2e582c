//! Seeds a gateway's database through the store itself, before the gateway starts: users with
//! a pre-computed hash, a session token for every issuer each, an Et-App key and a reset token.
//! Going through the admin API would cost one bcrypt run per user at the measured cost (minutes
//! at cost 12) and measure nothing.

use std::collections::BTreeMap;
use std::path::Path;

use credgate_core::import::{ImportOptions, ImportOutcome, ImportUser};
use credgate_core::model::{
    App, AuditEvent, AuditKind, NewUser, ResetRecord, TokenKind, TokenRecord, User,
};
use credgate_core::store::{ClientStore, ResetStore, TokenStore, UserStore};
use credgate_core::{ResetKind, Timestamp};
use credgate_store::{SqliteStore, StoreOptions};
use serde_json::json;

use crate::targets::Api;
use crate::BenchError;

/// The two passwords every bench user alternates between; both pass the default policy.
pub const PASSWORDS: [&str; 2] = ["Bench-Alpha-Passphrase-17", "Bench-Bravo-Passphrase-29"];
pub const APP_KEY: &str = "bench-et-app-key-0123456789abcdef";

/// The issuers bench sessions are seeded for: every benchmarked API (sessions are bound to the
/// dialect, or the native API, that issued them), with whether its sessions are bound to the
/// application key too.
fn issuers() -> Vec<(String, bool)> {
    (Api::all().iter())
        .map(|api| match api {
            Api::Native => ("native".to_owned(), false),
            Api::Dialect(d) => (d.name.clone(), d.spec.auth.app_key.is_some()),
        })
        .collect()
}

/// A seeded user with a live session token for every issuer.
#[derive(Debug, Clone)]
pub struct BenchUser {
    pub id: String,
    pub username: String,
    /// Issuer -> token; all of one session, so a password change through one API keeps the
    /// user's sessions of the others.
    pub tokens: BTreeMap<String, String>,
}

impl BenchUser {
    /// The user's token for the dialect (or `native`) named `issuer`.
    pub fn token(&self, issuer: &str) -> String {
        self.tokens.get(issuer).cloned().unwrap_or_default()
    }
}

/// What a seeded database holds for the load generator.
pub struct Seeded {
    pub users: Vec<BenchUser>,
    /// A username and a valid, unused reset token of that user (the last one).
    pub reset: (String, String),
}

pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn store_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(format!("seeding the store: {e}"))
}

pub fn user_record(id: String, username: String, at: Timestamp) -> User {
    User {
        id,
        username,
        admin: false,
        externally_managed: false,
        aliases: BTreeMap::new(),
        profile: BTreeMap::new(),
        created_at: at,
    }
}

pub fn audit(kind: AuditKind, user_id: Option<&str>, at: Timestamp) -> AuditEvent {
    AuditEvent {
        at,
        kind,
        user_id: user_id.map(str::to_owned),
        dialect: "bench".into(),
        request_id: "bench-seed".into(),
        client_addr: None,
        detail: json!({}),
    }
}

pub async fn open(dir: &Path) -> Result<SqliteStore, BenchError> {
    let url = crate::gateway::database_path(dir).display().to_string();
    let opts = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    SqliteStore::open(&url, &opts).await.map_err(store_err)
}

/// Writes `count` users whose password is `PASSWORDS[0]` (hashed as `hash`), each with a
/// session token, plus the app key and one reset token.
pub async fn seed(store: &SqliteStore, count: usize, hash: &str) -> Result<Seeded, BenchError> {
    let at = now();
    let issuers = issuers();
    let app = App {
        key_digest: credgate_core::token::digest(APP_KEY),
        name: Some("bench".into()),
        created_at: at,
    };
    store
        .insert_app(&app, &audit(AuditKind::AppCreated, None, at))
        .await
        .map_err(store_err)?;
    let mut users = Vec::with_capacity(count);
    for i in 0..count {
        let id = format!("bench-{i:06}");
        let username = format!("bench.user.{i:06}");
        let new = NewUser {
            user: user_record(id.clone(), username.clone(), at),
            credential_hash: hash.to_owned(),
        };
        store
            .insert_user(&new, &audit(AuditKind::UserCreated, Some(&id), at))
            .await
            .map_err(store_err)?;
        let session_id = format!("bench-session-{i:06}");
        let mut tokens = BTreeMap::new();
        for (issuer, with_app) in &issuers {
            let token = credgate_core::token::generate().expose().to_owned();
            let record = TokenRecord {
                digest: credgate_core::token::digest(&token),
                kind: TokenKind::User,
                user_id: Some(id.clone()),
                client_id: None,
                dialect: issuer.clone(),
                created_at: at,
                expires_at: at + 24 * 3600,
                session_id: session_id.clone(),
                app_digest: with_app.then(|| credgate_core::token::digest(APP_KEY)),
                spent_at: None,
            };
            store.insert_token(&record, &[]).await.map_err(store_err)?;
            tokens.insert(issuer.clone(), token);
        }
        users.push(BenchUser {
            id,
            username,
            tokens,
        });
    }
    // The last user never changes its password (a change ends the user's resets).
    let first = users
        .last()
        .ok_or_else(|| BenchError::Setup("no users to seed".into()))?;
    let reset_token = credgate_core::token::generate().expose().to_owned();
    let reset = ResetRecord {
        digest: bench_digest_key().digest(&reset_token),
        user_id: first.id.clone(),
        kind: ResetKind::Token,
        created_at: at,
        expires_at: at + 24 * 3600,
        used_at: None,
    };
    store
        .insert_reset(&reset, false, &[])
        .await
        .map_err(store_err)?;
    Ok(Seeded {
        reset: (first.username.clone(), reset_token),
        users,
    })
}

/// Writes `count` more users (no sessions), all with `hash`, through the store's bulk import
/// in batches: the bulk of the scale section's large store.
pub async fn fill(store: &SqliteStore, count: usize, hash: &str) -> Result<(), BenchError> {
    const BATCH: usize = 5_000;
    let at = now();
    let mut start = 0;
    while start < count {
        let batch: Vec<ImportUser> = (start..count.min(start + BATCH))
            .map(|i| ImportUser {
                user: user_record(format!("filler-{i:07}"), format!("filler.user.{i:07}"), at),
                credential_hash: hash.to_owned(),
                id_given: true,
            })
            .collect();
        let outcomes = store
            .import_users(&batch, ImportOptions::default())
            .await
            .map_err(store_err)?;
        if let Some(other) = outcomes.iter().find(|o| **o != ImportOutcome::Created) {
            return Err(BenchError::Setup(format!("bulk import: {other:?}")));
        }
        start += BATCH;
    }
    Ok(())
}

/// The digest key of the benchmark's gateways (given to them as `CREDGATE_DIGEST_KEY`), so the
/// reset the seeder stores is the one the gateway finds.
pub const BENCH_DIGEST_KEY: &str =
    "62656e63682d6469676573742d6b65792d6e6f742d7365637265742d30313233";

pub fn bench_digest_key() -> credgate_core::token::DigestKey {
    match credgate_core::token::DigestKey::from_hex(BENCH_DIGEST_KEY) {
        Ok(key) => key,
        // A constant of the right form: never taken.
        Err(_) => credgate_core::token::DigestKey::generate(),
    }
}
