//! The conformance suite on real SQLite files, plus what only SQLite has (files, pragmas, URLs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use credgate_core::model::{AuditKind, UserKey};
use credgate_core::store::{AuditLog, Health, UserStore};
use credgate_core::{Store, StoreError};
use tempfile::TempDir;

use super::SqliteStore;
use crate::conformance::{self as suite, event, new_user};
use crate::StoreOptions;

/// A fresh, migrated store on a file in its own temporary directory.
struct Fixture {
    dir: TempDir,
    path: PathBuf,
    store: Arc<SqliteStore>,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credgate.db");
        let store = SqliteStore::open(path.to_str().unwrap(), &StoreOptions::default())
            .await
            .unwrap();
        Self {
            dir,
            path,
            store: Arc::new(store),
        }
    }

    fn url(&self) -> String {
        self.path.to_str().unwrap().to_owned()
    }

    fn dyn_store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let fixture = Fixture::new().await;
            suite::$name(&*fixture.store).await;
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
    refresh_spent_once_and_sessions_revoked,
    clients_and_apps,
    audit_log_queries,
    ping,
    heartbeat,
    resets_insert_find,
    resets_replace_outstanding,
    reset_consumed_once,
    reset_expired_not_consumed,
    complete_reset_commits,
    complete_reset_refused,
    complete_reset_stale_version,
    update_password_deletes_resets,
    security_answer_upsert,
    two_factor_settings,
    totp_step_claimed_once,
    login_challenges,
    attempt_counters,
    attempts_taken_together,
    settled_after_the_answer_with_the_record,
    max_hash_cost,
    upstream_sessions_lifecycle,
    upstream_user_ref_from_newest_session,
    other_upstream_sessions_end_on_change,
    shadow_comparisons_bounded_and_filtered,
    profile_entries_set_and_removed,
    hash_pages_and_swaps,
    import_creates_then_unchanged,
    import_conflicts_leave_users_untouched,
    import_update_overwrites,
    import_dry_run_writes_nothing,
    import_large_batch_and_export_pages,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_one_wins_same_store() {
    let fixture = Fixture::new().await;
    suite::concurrent_updates_one_wins(fixture.dyn_store(), fixture.dyn_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_one_wins_two_stores_one_file() {
    let fixture = Fixture::new().await;
    let other: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&fixture.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    suite::concurrent_updates_one_wins(fixture.dyn_store(), other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_one_wins_same_store() {
    let fixture = Fixture::new().await;
    suite::concurrent_consume_one_wins(fixture.dyn_store(), fixture.dyn_store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_one_wins_two_stores_one_file() {
    let fixture = Fixture::new().await;
    let other: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&fixture.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    suite::concurrent_consume_one_wins(fixture.dyn_store(), other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_in_memory_database() {
    let store = crate::open("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    suite::user_round_trip(&*store).await;
    // Each in-memory store is a database of its own, shared by its (single) connection.
    let other = crate::open("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    assert!(other
        .find_user(UserKey::Username("alice"))
        .await
        .unwrap()
        .is_none());
    suite::concurrent_updates_one_wins(other.clone(), other).await;
    // Eight racers on the single pooled connection.
    let third = crate::open("sqlite::memory:", &StoreOptions::default())
        .await
        .unwrap();
    suite::concurrent_consume_one_wins(third.clone(), third).await;
}

#[tokio::test]
async fn creates_the_file_and_its_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("credgate.db");
    let store = crate::open(path.to_str().unwrap(), &StoreOptions::default())
        .await
        .unwrap();
    assert!(path.is_file());
    store.ping().await.unwrap();
    store
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_urls_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_str().unwrap();
    for url in [
        format!("sqlite://{base}/a/one.db"),
        format!("sqlite:{base}/b/two.db"),
        format!("SQLite:{base}/three.db"),
    ] {
        let store = crate::open(&url, &StoreOptions::default()).await.unwrap();
        store.ping().await.unwrap();
    }
    assert!(dir.path().join("a/one.db").is_file());
    assert!(dir.path().join("b/two.db").is_file());
    assert!(dir.path().join("three.db").is_file());
}

#[tokio::test]
async fn pragmas_wal_full_sync_foreign_keys() {
    let fixture = Fixture::new().await;
    // Check several pooled connections, not only the first.
    let mut conns = Vec::new();
    for _ in 0..3 {
        conns.push(fixture.store.pool().acquire().await.unwrap());
    }
    for conn in &mut conns {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
    assert!(fixture.dir.path().join("credgate.db-wal").exists());
    // Only the guessing counters' connections commit without the fsync.
    let mut counters = fixture.store.counters().acquire().await.unwrap();
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *counters)
        .await
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *counters)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn postgres_and_unknown_urls_are_refused_clearly() {
    // PostgreSQL URLs go to the PostgreSQL store: unreachable is `Unavailable`, and no error
    // repeats the URL's password.
    let opts = StoreOptions {
        busy_timeout_ms: 300,
        ..StoreOptions::default()
    };
    for url in [
        "postgres://credgate:s3cret@127.0.0.1:1/credgate",
        "postgresql://credgate:s3cret@127.0.0.1:1/db",
    ] {
        match crate::open(url, &opts).await.map(|_| ()) {
            Err(StoreError::Unavailable(msg)) => assert!(!msg.contains("s3cret"), "{msg}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    for url in ["mysql://db/credgate", "", "   "] {
        assert!(matches!(
            crate::open(url, &StoreOptions::default()).await.map(|_| ()),
            Err(StoreError::Backend(_))
        ));
    }
    assert_eq!(
        crate::BackendKind::of("./data/credgate.db").unwrap(),
        crate::BackendKind::Sqlite
    );
    assert_eq!(
        crate::BackendKind::of("sqlite::memory:").unwrap(),
        crate::BackendKind::Sqlite
    );
    assert_eq!(
        crate::BackendKind::of("POSTGRES://x").unwrap(),
        crate::BackendKind::Postgres
    );
}

#[tokio::test]
async fn explicit_migration_without_auto_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").join("credgate.db");
    let url = path.to_str().unwrap();
    let manual = StoreOptions {
        auto_migrate: false,
        ..StoreOptions::default()
    };

    let unmigrated = crate::open(url, &manual).await.unwrap();
    let refused = unmigrated
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    drop(unmigrated);

    crate::migrate(url).await.unwrap();
    crate::migrate(url).await.unwrap(); // idempotent
    let store = crate::open(url, &manual).await.unwrap();
    store
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn data_survives_reopening() {
    let fixture = Fixture::new().await;
    fixture
        .store
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
    fixture.store.close().await;
    let reopened = SqliteStore::open(&fixture.url(), &StoreOptions::default())
        .await
        .unwrap();
    assert!(reopened
        .find_user(UserKey::Username("one"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        reopened.credential("u-1").await.unwrap().unwrap().version,
        1
    );
}

#[tokio::test]
async fn closed_pool_is_unavailable() {
    let fixture = Fixture::new().await;
    fixture.store.close().await;
    assert!(matches!(
        fixture.store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_write_lock_beyond_busy_timeout_is_unavailable() {
    let fixture = Fixture::new().await;
    let impatient = StoreOptions {
        busy_timeout_ms: 100,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&fixture.url(), &impatient).await.unwrap();
    let holder = fixture
        .store
        .pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .unwrap();
    let result = store
        .append_audit(&[event(AuditKind::LoginFailed, None)])
        .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    drop(holder);
    store
        .append_audit(&[event(AuditKind::LoginFailed, None)])
        .await
        .unwrap();
    // Reads are not blocked by a writer in WAL mode.
    let holder = fixture
        .store
        .pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .unwrap();
    assert_eq!(store.audit_log(&Default::default()).await.unwrap().len(), 1);
    drop(holder);
}

#[tokio::test]
async fn error_messages_carry_no_bound_values() {
    let fixture = Fixture::new().await;
    let mut user = new_user("u-1", "one");
    user.credential_hash = "$2b$12$SECRETHASHVALUE".into();
    fixture
        .store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-1")))
        .await
        .unwrap();
    user.user.id = "u-2".into();
    let err = fixture
        .store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-2")))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("SECRETHASHVALUE"));
    assert!(matches!(err, StoreError::Duplicate(ref what) if what == "username"));
}

/// A database that answers reads but refuses writes fails the heartbeat, not the ping: the
/// readiness probe is a real write.
#[tokio::test]
async fn a_read_only_database_fails_the_heartbeat_but_not_the_ping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    let writable = crate::open(path.to_str().unwrap(), &StoreOptions::default())
        .await
        .unwrap();
    writable.heartbeat(1_700_000_000).await.unwrap();
    drop(writable);
    let opts = StoreOptions {
        auto_migrate: false,
        ..StoreOptions::default()
    };
    let url = format!("sqlite://{}?mode=ro", path.display());
    let read_only = SqliteStore::open(&url, &opts).await.unwrap();
    read_only.ping().await.unwrap();
    assert!(read_only.heartbeat(1_700_000_001).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_two_stores_one_file() {
    let fixture = Fixture::new().await;
    let other: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&fixture.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    suite::concurrent_reservations_hold_the_limit(fixture.dyn_store(), other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batched_reservations_two_stores_one_file() {
    let fixture = Fixture::new().await;
    let other: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&fixture.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    suite::concurrent_batched_reservations_hold_the_limit(fixture.dyn_store(), other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_and_settlements_two_stores_one_file() {
    let fixture = Fixture::new().await;
    let other: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&fixture.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    suite::concurrent_reservations_and_settlements_never_deadlock(fixture.dyn_store(), other).await;
}
