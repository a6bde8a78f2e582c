//! The conformance suite on a real PostgreSQL, each test on a database of its own, plus what only
//! the PostgreSQL store has (URL selection, shared migrations, lock timeouts, outages). Needs
//! CREDGATE_TEST_POSTGRES_URL (`.ci/postgres.sh`): fails in CI without it, skips elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use credgate_core::model::{AuditKind, ResetKind, TokenKind, UserKey};
use credgate_core::store::{AuditLog, Health, ResetStore, TokenStore, UserStore};
use credgate_core::{Store, StoreError};

use super::PgStore;
use crate::conformance::{
    self as suite, event, new_user, password_update, reset, reset_update, token, T0,
};
use crate::StoreOptions;

/// A fresh, empty database on the test server, dropped (with its connections) when this is.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    /// `None` (skip) outside CI when no server is configured; a panic in CI.
    async fn new() -> Option<Self> {
        let Ok(admin_url) = std::env::var("CREDGATE_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CREDGATE_TEST_POSTGRES_URL is required in CI (see .ci/postgres.sh)"
            );
            eprintln!("skipped: CREDGATE_TEST_POSTGRES_URL is not set (run: eval \"$(bash .ci/postgres.sh)\")");
            return None;
        };
        let name = format!("credgate_t_{:016x}", rand_id());
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("the test PostgreSQL answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    async fn store(&self) -> Arc<PgStore> {
        Arc::new(
            PgStore::open(&self.url, &StoreOptions::default())
                .await
                .unwrap(),
        )
    }
}

impl Drop for TestDb {
    /// Runs on a thread of its own: drop may happen inside the test's runtime, even unwinding.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok::<(), sqlx::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
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

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(db) = TestDb::new().await else { return };
            suite::$name(&*db.store().await).await;
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
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store: Arc<dyn Store> = db.store().await;
    suite::concurrent_updates_one_wins(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_one_wins_two_stores_one_database() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    suite::concurrent_updates_one_wins(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_one_wins_same_store() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store: Arc<dyn Store> = db.store().await;
    suite::concurrent_consume_one_wins(store.clone(), store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_one_wins_two_stores_one_database() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    suite::concurrent_consume_one_wins(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_migrate_select_postgres_by_url() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    assert_eq!(
        crate::BackendKind::of(&db.url).unwrap(),
        crate::BackendKind::Postgres
    );
    crate::migrate(&db.url).await.unwrap();
    crate::migrate(&db.url).await.unwrap(); // idempotent
    let postgresql = db.url.replacen("postgres://", "postgresql://", 1);
    for (i, url) in [db.url.as_str(), postgresql.as_str()]
        .into_iter()
        .enumerate()
    {
        let store = crate::open(url, &StoreOptions::default()).await.unwrap();
        store.ping().await.unwrap();
        let id = format!("u-{i}");
        store
            .insert_user(
                &new_user(&id, &format!("user-{i}")),
                &event(AuditKind::UserCreated, Some(&id)),
            )
            .await
            .unwrap();
    }
    // Both URLs named the same database.
    let store = crate::open(&postgresql, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(store.list_users(0, 0).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_migration_without_auto_migrate() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let manual = StoreOptions {
        auto_migrate: false,
        ..StoreOptions::default()
    };
    let unmigrated = crate::open(&db.url, &manual).await.unwrap();
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

    crate::migrate(&db.url).await.unwrap();
    let store = crate::open(&db.url, &manual).await.unwrap();
    store
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
}

/// Instances starting together on an empty database: the advisory lock lets one migrate while
/// the others wait, and every one of them starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::open(&url, &StoreOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for start in starts {
        stores.push(start.await.unwrap().unwrap());
    }
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(
        applied,
        i64::try_from(super::MIGRATOR.iter().count()).unwrap()
    );
    stores[0]
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
    assert!(stores[5]
        .find_user(UserKey::Username("one"))
        .await
        .unwrap()
        .is_some());
}

/// The column types PostgreSQL is strict about: BIGINT for every number, BOOLEAN for flags.
#[tokio::test]
async fn schema_uses_bigint_and_boolean() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(!columns.is_empty());
    for (table, column, ty) in &columns {
        let expected = match column.as_str() {
            "admin" | "externally_managed" | "synced" => "boolean",
            "seq" | "count" | "credential_version" | "at" | "last_step" => "bigint",
            "upstream_status" | "local_status" => "bigint",
            c if c.ends_with("_at") || c == "window_start" => "bigint",
            _ => "text",
        };
        assert_eq!(ty, expected, "{table}.{column}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    store
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
    store.close().await;
    let reopened = db.store().await;
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
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn error_messages_carry_no_bound_values() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let store = db.store().await;
    let mut user = new_user("u-1", "one");
    user.credential_hash = "$2b$12$SECRETHASHVALUE".into();
    store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-1")))
        .await
        .unwrap();
    user.user.id = "u-2".into();
    let err = store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-2")))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("SECRETHASHVALUE"));
    assert!(matches!(err, StoreError::Duplicate(ref what) if what == "username"));
    // A token for an unknown user: the foreign key, reported as NotFound without the values.
    let err = store
        .insert_token(
            &token("DIGESTVALUE", TokenKind::User, Some("NOSUCHUSER"), T0 + 60),
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

/// A row lock held beyond the busy timeout (`lock_timeout`) is `Unavailable`, as SQLite's busy
/// timeout is; once released, the same change goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_row_lock_beyond_busy_timeout_is_unavailable() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let patient = db.store().await;
    patient
        .insert_user(
            &new_user("u-1", "one"),
            &event(AuditKind::UserCreated, Some("u-1")),
        )
        .await
        .unwrap();
    let impatient = PgStore::open(
        &db.url,
        &StoreOptions {
            busy_timeout_ms: 200,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let mut holder = patient.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE id = 'u-1' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let result = impatient
        .update_password(&password_update("u-1", 1, "hash-1"))
        .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Reads are not blocked by the lock.
    assert_eq!(
        impatient.credential("u-1").await.unwrap().unwrap().version,
        1
    );
    holder.rollback().await.unwrap();
    impatient
        .update_password(&password_update("u-1", 1, "hash-1"))
        .await
        .unwrap();
}

/// Every kind of write on one user's rows, from two stores at once, round after round: each
/// call ends in a documented outcome, never a deadlock or another backend error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_writes_on_one_user_never_deadlock() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    a.insert_user(
        &new_user("u-mix", "mix"),
        &event(AuditKind::UserCreated, Some("u-mix")),
    )
    .await
    .unwrap();
    for round in 0..15 {
        for i in 0..4 {
            a.insert_reset(
                &reset(
                    &format!("r-{round}-{i}"),
                    "u-mix",
                    ResetKind::Token,
                    T0 + 600,
                ),
                false,
                &[],
            )
            .await
            .unwrap();
            let expires = if i % 2 == 0 { T0 - 1 } else { T0 + 600 };
            a.insert_token(
                &token(
                    &format!("t-{round}-{i}"),
                    TokenKind::User,
                    Some("u-mix"),
                    expires,
                ),
                &[],
            )
            .await
            .unwrap();
        }
        let version = a.credential("u-mix").await.unwrap().unwrap().version;
        let barrier = Arc::new(tokio::sync::Barrier::new(7));
        let mut tasks = Vec::new();
        for task in 0..7 {
            let store = if task % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome: Result<(), StoreError> = match task {
                    0 => {
                        let update = reset_update("u-mix", version, &format!("h-{round}-r"));
                        store.complete_reset(&format!("r-{round}-0"), &update).await
                    }
                    1 => {
                        let update = password_update("u-mix", version, &format!("h-{round}-p"));
                        store.update_password(&update).await
                    }
                    2 => {
                        let fresh = reset(
                            &format!("r-{round}-new"),
                            "u-mix",
                            ResetKind::Token,
                            T0 + 600,
                        );
                        store.insert_reset(&fresh, true, &[]).await
                    }
                    3 => store
                        .consume_reset(&format!("r-{round}-1"), T0 + 10)
                        .await
                        .map(drop),
                    4 => store.purge_expired_tokens(T0).await.map(drop),
                    5 => store
                        .delete_token(&format!("t-{round}-1"), &[])
                        .await
                        .map(drop),
                    _ => {
                        store
                            .append_audit(&[event(AuditKind::LoginFailed, Some("u-mix"))])
                            .await
                    }
                };
                (task, outcome)
            }));
        }
        let mut changed = 0;
        for task in tasks {
            match task.await.unwrap() {
                (0 | 1, Ok(())) => changed += 1,
                // The reset is gone (the change won first) or the version moved on.
                (0, Err(StoreError::NotFound | StoreError::VersionMismatch)) => {}
                (1, Err(StoreError::VersionMismatch)) => {}
                (_, Ok(())) => {}
                (task, Err(err)) => panic!("round {round}, task {task}: {err:?}"),
            }
        }
        assert_eq!(changed, 1, "round {round}: one password change wins");
        assert_eq!(
            b.credential("u-mix").await.unwrap().unwrap().version,
            version + 1
        );
    }
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
    let url = format!("postgres://nobody:s3cret@127.0.0.1:{port}/none");
    let store = PgStore::open(&url, &opts).await.unwrap();
    match store.ping().await {
        Err(StoreError::Unavailable(msg)) => assert!(!msg.contains("s3cret"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Migrating needs the server: opening with auto_migrate is Unavailable too, and so is the
    // explicit migration.
    let auto = StoreOptions {
        auto_migrate: true,
        ..opts
    };
    assert!(matches!(
        crate::open(&url, &auto).await.map(drop),
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        crate::migrate(&url).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_two_stores_one_database() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    suite::concurrent_reservations_hold_the_limit(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batched_reservations_two_stores_one_database() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    suite::concurrent_batched_reservations_hold_the_limit(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_and_settlements_two_stores_one_database() {
    let Some(db) = TestDb::new().await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    suite::concurrent_reservations_and_settlements_never_deadlock(a, b).await;
}
