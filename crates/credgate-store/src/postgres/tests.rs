//! The conformance suite on a real PostgreSQL, each test on a database of its own. Needs
//! CREDGATE_TEST_POSTGRES_URL (`.ci/postgres.sh`): fails in CI without it, skips elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use credgate_core::store::Health;
use credgate_core::{Store, StoreError};

use super::PgStore;
use crate::conformance as suite;
use crate::StoreOptions;

/// The URL of a fresh, empty database, or `None` (skip) outside CI without a server.
async fn fresh_database() -> Option<String> {
    let Ok(url) = std::env::var("CREDGATE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CREDGATE_TEST_POSTGRES_URL is required in CI (see .ci/postgres.sh)"
        );
        eprintln!("skipped: CREDGATE_TEST_POSTGRES_URL is not set (run: eval \"$(bash .ci/postgres.sh)\")");
        return None;
    };
    let name = format!("credgate_s_{:016x}", rand_id());
    let admin = sqlx::PgPool::connect(&url)
        .await
        .expect("the test PostgreSQL answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

async fn store(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::open(url, &StoreOptions::default()).await.unwrap())
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(url) = fresh_database().await else { return };
            suite::$name(&*store(&url).await).await;
        }
    )*};
}

conformance!(
    user_round_trip,
    duplicates_refused,
    alias_lookup,
    password_update_commits,
    password_update_stale_version,
    upgrade_hash_keeps_version,
    tokens_lifecycle,
    clients_and_apps,
    audit_log_queries,
    ping,
    resets_insert_find,
    resets_replace_outstanding,
    reset_consumed_once,
    reset_expired_not_consumed,
    complete_reset_commits,
    complete_reset_refused,
    complete_reset_stale_version,
    update_password_deletes_resets,
    security_answer_upsert,
    attempt_counters,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_one_wins_two_stores_one_database() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (store(&url).await, store(&url).await);
    suite::concurrent_updates_one_wins(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_one_wins_two_stores_one_database() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (store(&url).await, store(&url).await);
    suite::concurrent_consume_one_wins(a, b).await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_a_panic() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = StoreOptions {
        auto_migrate: false,
        busy_timeout_ms: 300,
        ..StoreOptions::default()
    };
    let store = PgStore::open(&format!("postgres://nobody@127.0.0.1:{port}/none"), &opts)
        .await
        .unwrap();
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}
