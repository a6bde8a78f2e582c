//! The backend-independent store test suite: every `Store` implementation must pass it.
//!
//! Each check takes a store of its own, freshly migrated and empty, and panics on failure.
//! Enabled in this crate's tests and, for other crates, by the `testing` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use credgate_core::model::{
    App, AuditEvent, AuditKind, AuditQuery, AuditRecord, Client, NewUser, PasswordUpdate,
    ResetKind, ResetRecord, SecurityAnswer, TokenKind, TokenRecord, User, UserKey,
};
use credgate_core::store::{AttemptAsk, Reservation, SlotSettlement};
use credgate_core::{Store, StoreError, Timestamp};
use serde_json::json;

mod attempts;
pub use attempts::*;
mod import;
pub use import::*;
mod two_factor;
pub use two_factor::*;
mod upstream;
pub use upstream::*;

/// The fixed "now" of every fixture.
pub const T0: Timestamp = 1_700_000_000;

/// A user with no aliases or profile whose first hash is `hash-0`.
pub fn new_user(id: &str, username: &str) -> NewUser {
    NewUser {
        user: User {
            id: id.into(),
            username: username.into(),
            admin: false,
            externally_managed: false,
            aliases: BTreeMap::new(),
            profile: BTreeMap::new(),
            created_at: T0,
        },
        credential_hash: "hash-0".into(),
    }
}

pub fn event(kind: AuditKind, user_id: Option<&str>) -> AuditEvent {
    AuditEvent {
        at: T0,
        kind,
        user_id: user_id.map(str::to_owned),
        dialect: "test".into(),
        request_id: "req-1".into(),
        client_addr: Some("192.0.2.1".into()),
        detail: json!({}),
    }
}

pub fn token(
    digest: &str,
    kind: TokenKind,
    user_id: Option<&str>,
    expires_at: Timestamp,
) -> TokenRecord {
    TokenRecord {
        digest: digest.into(),
        kind,
        user_id: user_id.map(str::to_owned),
        client_id: None,
        dialect: "test".into(),
        created_at: T0,
        expires_at,
        session_id: digest.into(),
        app_digest: None,
        spent_at: None,
    }
}

pub fn password_update(user_id: &str, expected_version: i64, new_hash: &str) -> PasswordUpdate {
    PasswordUpdate {
        user_id: user_id.into(),
        expected_version,
        new_hash: new_hash.into(),
        keep_token: None,
        history_limit: 5,
        now: T0 + 60,
        audit: vec![
            event(AuditKind::PasswordChanged, Some(user_id)),
            event(AuditKind::SessionsRevoked, Some(user_id)),
        ],
    }
}

/// An unused reset created at `T0`.
pub fn reset(digest: &str, user_id: &str, kind: ResetKind, expires_at: Timestamp) -> ResetRecord {
    ResetRecord {
        digest: digest.into(),
        user_id: user_id.into(),
        kind,
        created_at: T0,
        expires_at,
        used_at: None,
    }
}

/// A password update as a completed reset writes it (`now` is `T0 + 60`).
pub fn reset_update(user_id: &str, expected_version: i64, new_hash: &str) -> PasswordUpdate {
    PasswordUpdate {
        audit: vec![
            event(AuditKind::PasswordReset, Some(user_id)),
            event(AuditKind::SessionsRevoked, Some(user_id)),
        ],
        ..password_update(user_id, expected_version, new_hash)
    }
}

async fn add_users(store: &dyn Store, ids: &[&str]) {
    for id in ids {
        store
            .insert_user(
                &new_user(id, &format!("name-{id}")),
                &event(AuditKind::UserCreated, Some(id)),
            )
            .await
            .unwrap();
    }
}

async fn add_resets(store: &dyn Store, resets: &[ResetRecord]) {
    for r in resets {
        store.insert_reset(r, false, &[]).await.unwrap();
    }
}

async fn used_at(store: &dyn Store, digest: &str) -> Option<Option<Timestamp>> {
    store.find_reset(digest).await.unwrap().map(|r| r.used_at)
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

async fn audit_for(store: &dyn Store, user_id: &str) -> Vec<AuditRecord> {
    store
        .audit_log(&AuditQuery {
            user_id: Some(user_id.into()),
            limit: 1000,
        })
        .await
        .unwrap()
}

async fn kinds_for(store: &dyn Store, user_id: &str) -> Vec<String> {
    audit_for(store, user_id)
        .await
        .into_iter()
        .map(|r| r.kind)
        .collect()
}

fn assert_duplicate(result: Result<(), StoreError>, what: &str) {
    match result {
        Err(StoreError::Duplicate(got)) => assert_eq!(got, what),
        other => panic!("expected Duplicate({what}), got {other:?}"),
    }
}

/// A user with aliases and a profile reads back whole by id and username; listing pages by username.
pub async fn user_round_trip(store: &dyn Store) {
    let mut alice = new_user("u-alice", "alice");
    alice.user.admin = true;
    alice
        .user
        .aliases
        .insert("akana".into(), "0d3c.fed1".into());
    alice.user.aliases.insert("et".into(), "E-17".into());
    alice
        .user
        .profile
        .insert("email".into(), "alice@example.com".into());
    alice
        .user
        .profile
        .insert("first_name".into(), "Alice \"Al\" Ünïcode".into());
    let mut created = event(AuditKind::UserCreated, Some("u-alice"));
    created.detail = json!({"username": "alice", "aliases": {"akana": "0d3c.fed1"}, "admin": true});
    store.insert_user(&alice, &created).await.unwrap();

    assert_eq!(
        store.find_user(UserKey::Id("u-alice")).await.unwrap(),
        Some(alice.user.clone())
    );
    assert_eq!(
        store.find_user(UserKey::Username("alice")).await.unwrap(),
        Some(alice.user.clone())
    );
    assert_eq!(store.find_user(UserKey::Id("nobody")).await.unwrap(), None);
    assert_eq!(
        store.find_user(UserKey::Username("Alice")).await.unwrap(),
        None,
        "usernames are exact"
    );

    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-0", 1)
    );
    assert!(store.credential("nobody").await.unwrap().is_none());
    assert!(store
        .password_history("u-alice", 10)
        .await
        .unwrap()
        .is_empty());

    let audit = audit_for(store, "u-alice").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].kind, "user_created");
    assert_eq!(audit[0].detail, created.detail);

    let mut bob = new_user("u-bob", "bob");
    bob.user.externally_managed = true;
    store
        .insert_user(&bob, &event(AuditKind::UserCreated, Some("u-bob")))
        .await
        .unwrap();
    let mut carol = new_user("u-carol", "carol");
    carol.user.aliases.insert("akana".into(), "c.fed1".into());
    store
        .insert_user(&carol, &event(AuditKind::UserCreated, Some("u-carol")))
        .await
        .unwrap();
    assert_eq!(
        store.find_user(UserKey::Id("u-bob")).await.unwrap(),
        Some(bob.user.clone())
    );

    let all = store.list_users(0, 0).await.unwrap();
    assert_eq!(
        all,
        vec![alice.user.clone(), bob.user.clone(), carol.user.clone()]
    );
    assert_eq!(
        store.list_users(2, 0).await.unwrap(),
        vec![alice.user.clone(), bob.user.clone()]
    );
    assert_eq!(
        store.list_users(2, 2).await.unwrap(),
        vec![carol.user.clone()]
    );
    assert!(store.list_users(2, 3).await.unwrap().is_empty());
}

/// A taken id, username or alias is refused as `Duplicate`, naming the clash, and writes nothing.
pub async fn duplicates_refused(store: &dyn Store) {
    let mut alice = new_user("u-alice", "alice");
    alice.user.aliases.insert("akana".into(), "a.fed".into());
    store
        .insert_user(&alice, &event(AuditKind::UserCreated, Some("u-alice")))
        .await
        .unwrap();

    let same_id = new_user("u-alice", "alice2");
    assert_duplicate(
        store
            .insert_user(&same_id, &event(AuditKind::UserCreated, Some("u-alice")))
            .await,
        "id",
    );
    let same_name = new_user("u-other", "alice");
    assert_duplicate(
        store
            .insert_user(&same_name, &event(AuditKind::UserCreated, Some("u-other")))
            .await,
        "username",
    );
    let mut same_alias = new_user("u-mallory", "mallory");
    same_alias.user.aliases.insert("et".into(), "fresh".into());
    same_alias
        .user
        .aliases
        .insert("akana".into(), "a.fed".into());
    assert_duplicate(
        store
            .insert_user(
                &same_alias,
                &event(AuditKind::UserCreated, Some("u-mallory")),
            )
            .await,
        "alias akana",
    );

    // The failed inserts left nothing behind: no user, no alias, no audit.
    assert_eq!(store.find_user(UserKey::Id("u-other")).await.unwrap(), None);
    assert_eq!(
        store.find_user(UserKey::Id("u-mallory")).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .find_user(UserKey::Alias {
                dialect: "et",
                external_id: "fresh"
            })
            .await
            .unwrap(),
        None
    );
    assert!(audit_for(store, "u-other").await.is_empty());
    assert!(audit_for(store, "u-mallory").await.is_empty());
    assert_eq!(audit_for(store, "u-alice").await.len(), 1);
    assert_eq!(
        store.find_user(UserKey::Id("u-alice")).await.unwrap(),
        Some(alice.user.clone())
    );

    // The same alias id in another dialect is someone else's to have.
    let mut other = new_user("u-mallory", "mallory");
    other.user.aliases.insert("et".into(), "a.fed".into());
    store
        .insert_user(&other, &event(AuditKind::UserCreated, Some("u-mallory")))
        .await
        .unwrap();
}

/// Aliases resolve per dialect.
pub async fn alias_lookup(store: &dyn Store) {
    let mut alice = new_user("u-alice", "alice");
    alice.user.aliases.insert("akana".into(), "x-1".into());
    let mut bob = new_user("u-bob", "bob");
    bob.user.aliases.insert("et".into(), "x-1".into());
    bob.user.aliases.insert("akana".into(), "x-2".into());
    store
        .insert_user(&alice, &event(AuditKind::UserCreated, Some("u-alice")))
        .await
        .unwrap();
    store
        .insert_user(&bob, &event(AuditKind::UserCreated, Some("u-bob")))
        .await
        .unwrap();

    let found = |dialect: &'static str, external_id: &'static str| async move {
        store
            .find_user(UserKey::Alias {
                dialect,
                external_id,
            })
            .await
            .unwrap()
            .map(|u| u.id)
    };
    assert_eq!(found("akana", "x-1").await.as_deref(), Some("u-alice"));
    assert_eq!(found("et", "x-1").await.as_deref(), Some("u-bob"));
    assert_eq!(found("akana", "x-2").await.as_deref(), Some("u-bob"));
    assert_eq!(found("et", "x-2").await, None);
    assert_eq!(
        found("akana", "u-alice").await,
        None,
        "an id is not an alias"
    );
    let bob_found = store
        .find_user(UserKey::Alias {
            dialect: "akana",
            external_id: "x-2",
        })
        .await
        .unwrap();
    assert_eq!(
        bob_found,
        Some(bob.user.clone()),
        "alias lookup returns every alias"
    );
}

/// A password change swaps the hash, bumps the version, keeps a trimmed history, revokes the
/// user's other tokens and writes its audit events.
pub async fn password_update_commits(store: &dyn Store) {
    store
        .insert_user(
            &new_user("u-alice", "alice"),
            &event(AuditKind::UserCreated, Some("u-alice")),
        )
        .await
        .unwrap();
    store
        .insert_user(
            &new_user("u-bob", "bob"),
            &event(AuditKind::UserCreated, Some("u-bob")),
        )
        .await
        .unwrap();
    let far = T0 + 3600;
    let current_refresh = TokenRecord {
        session_id: "alice-current".into(),
        ..token(
            "alice-current-refresh",
            TokenKind::Refresh,
            Some("u-alice"),
            far,
        )
    };
    for t in [
        token("alice-current", TokenKind::User, Some("u-alice"), far),
        current_refresh,
        token("alice-other", TokenKind::User, Some("u-alice"), far),
        token("alice-refresh", TokenKind::Refresh, Some("u-alice"), far),
        token("bob-token", TokenKind::User, Some("u-bob"), far),
        token("client-token", TokenKind::Client, None, far),
    ] {
        store.insert_token(&t, &[]).await.unwrap();
    }

    let mut first = password_update("u-alice", 1, "hash-1");
    first.keep_token = Some("alice-current".into());
    first.history_limit = 2;
    store.update_password(&first).await.unwrap();
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-1", 2)
    );
    assert_eq!(
        store.password_history("u-alice", 10).await.unwrap(),
        ["hash-0"]
    );
    assert!(
        store.find_token("alice-current").await.unwrap().is_some(),
        "the kept token survives"
    );
    assert!(
        store
            .find_token("alice-current-refresh")
            .await
            .unwrap()
            .is_some(),
        "the kept token's session survives whole, its refresh token too"
    );
    assert!(store.find_token("alice-other").await.unwrap().is_none());
    assert!(store.find_token("alice-refresh").await.unwrap().is_none());
    assert!(
        store.find_token("bob-token").await.unwrap().is_some(),
        "other users' tokens survive"
    );
    assert!(store.find_token("client-token").await.unwrap().is_some());
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["sessions_revoked", "password_changed", "user_created"]
    );

    let mut second = password_update("u-alice", 2, "hash-2");
    second.history_limit = 2;
    store.update_password(&second).await.unwrap();
    assert!(
        store.find_token("alice-current").await.unwrap().is_none(),
        "no keep_token: all revoked"
    );
    assert_eq!(
        store.password_history("u-alice", 10).await.unwrap(),
        ["hash-1", "hash-0"]
    );

    let mut third = password_update("u-alice", 3, "hash-3");
    third.history_limit = 2;
    store.update_password(&third).await.unwrap();
    assert_eq!(
        store.password_history("u-alice", 10).await.unwrap(),
        ["hash-2", "hash-1"],
        "trimmed to 2"
    );
    assert_eq!(
        store.password_history("u-alice", 1).await.unwrap(),
        ["hash-2"]
    );
    assert!(store
        .password_history("u-alice", 0)
        .await
        .unwrap()
        .is_empty());

    let mut fourth = password_update("u-alice", 4, "hash-4");
    fourth.history_limit = 0;
    store.update_password(&fourth).await.unwrap();
    assert!(
        store
            .password_history("u-alice", 10)
            .await
            .unwrap()
            .is_empty(),
        "history_limit 0 keeps none"
    );
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-4", 5)
    );
    assert_eq!(store.credential("u-bob").await.unwrap().unwrap().version, 1);
    assert!(store
        .password_history("u-bob", 10)
        .await
        .unwrap()
        .is_empty());
}

/// A stale `expected_version` is refused as `VersionMismatch` and changes nothing; an unknown user
/// is `NotFound`.
pub async fn password_update_stale_version(store: &dyn Store) {
    store
        .insert_user(
            &new_user("u-alice", "alice"),
            &event(AuditKind::UserCreated, Some("u-alice")),
        )
        .await
        .unwrap();
    store
        .insert_token(
            &token("alice-token", TokenKind::User, Some("u-alice"), T0 + 3600),
            &[],
        )
        .await
        .unwrap();

    for stale in [0, 2, 7] {
        match store
            .update_password(&password_update("u-alice", stale, "hash-x"))
            .await
        {
            Err(StoreError::VersionMismatch) => {}
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
    }
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-0", 1)
    );
    assert!(store
        .password_history("u-alice", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.find_token("alice-token").await.unwrap().is_some());
    assert_eq!(kinds_for(store, "u-alice").await, ["user_created"]);

    match store
        .update_password(&password_update("nobody", 1, "hash-x"))
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(audit_for(store, "nobody").await.is_empty());
}

/// Two changes racing from the same version: exactly one wins, every round. `a` and `b` may be
/// the same store or two stores on one database.
pub async fn concurrent_updates_one_wins(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.insert_user(
        &new_user("u-race", "race"),
        &event(AuditKind::UserCreated, Some("u-race")),
    )
    .await
    .unwrap();
    const ROUNDS: i64 = 10;
    let mut winners = Vec::new();
    for version in 1..=ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let racer = |store: Arc<dyn Store>, name: &'static str| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut update =
                    password_update("u-race", version, &format!("hash-{version}-{name}"));
                update.history_limit = 100;
                barrier.wait().await;
                store.update_password(&update).await
            })
        };
        let first = racer(a.clone(), "a");
        let second = racer(b.clone(), "b");
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        let winner = match (first, second) {
            (Ok(()), Err(StoreError::VersionMismatch)) => "a",
            (Err(StoreError::VersionMismatch), Ok(())) => "b",
            other => panic!("round {version}: expected exactly one winner, got {other:?}"),
        };
        let winning_hash = format!("hash-{version}-{winner}");
        for store in [&a, &b] {
            let credential = store.credential("u-race").await.unwrap().unwrap();
            assert_eq!(
                (credential.hash.as_str(), credential.version),
                (winning_hash.as_str(), version + 1)
            );
        }
        winners.push(winning_hash);
    }
    // The history holds each round's outgoing hash exactly once, newest first.
    let mut expected: Vec<String> = std::iter::once("hash-0".to_owned())
        .chain(winners)
        .collect();
    expected.pop();
    expected.reverse();
    assert_eq!(b.password_history("u-race", 100).await.unwrap(), expected);
    let changed = kinds_for(&*a, "u-race")
        .await
        .into_iter()
        .filter(|k| k == "password_changed")
        .count();
    assert_eq!(changed, ROUNDS as usize);
}

/// A hash upgrade keeps the version, and is refused (false, nothing written) on a stale version.
pub async fn upgrade_hash_keeps_version(store: &dyn Store) {
    store
        .insert_user(
            &new_user("u-alice", "alice"),
            &event(AuditKind::UserCreated, Some("u-alice")),
        )
        .await
        .unwrap();
    let upgraded = event(AuditKind::HashUpgraded, Some("u-alice"));

    assert!(store
        .upgrade_hash("u-alice", 1, "hash-0-stronger", &upgraded)
        .await
        .unwrap());
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-0-stronger", 1)
    );
    assert!(
        store
            .password_history("u-alice", 10)
            .await
            .unwrap()
            .is_empty(),
        "an upgrade is not a change"
    );
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["hash_upgraded", "user_created"]
    );

    assert!(!store
        .upgrade_hash("u-alice", 2, "hash-wrong", &upgraded)
        .await
        .unwrap());
    store
        .update_password(&password_update("u-alice", 1, "hash-1"))
        .await
        .unwrap();
    assert!(
        !store
            .upgrade_hash("u-alice", 1, "hash-0-again", &upgraded)
            .await
            .unwrap(),
        "raced a change"
    );
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-1", 2)
    );
    let upgrades = kinds_for(store, "u-alice")
        .await
        .into_iter()
        .filter(|k| k == "hash_upgraded")
        .count();
    assert_eq!(upgrades, 1, "refused upgrades write no audit");
    assert!(!store
        .upgrade_hash("nobody", 1, "hash", &upgraded)
        .await
        .unwrap());
}

/// Tokens: insert with audit, find, duplicate, delete once, purge what expired before now.
pub async fn tokens_lifecycle(store: &dyn Store) {
    store
        .insert_user(
            &new_user("u-alice", "alice"),
            &event(AuditKind::UserCreated, Some("u-alice")),
        )
        .await
        .unwrap();
    let mut user_token = token("d-user", TokenKind::User, Some("u-alice"), T0 + 100);
    user_token.client_id = Some("cli".into());
    user_token.dialect = "akana".into();
    let issued = [
        event(AuditKind::LoginSucceeded, Some("u-alice")),
        event(AuditKind::TokenIssued, Some("u-alice")),
    ];
    store.insert_token(&user_token, &issued).await.unwrap();
    assert_eq!(
        store.find_token("d-user").await.unwrap(),
        Some(user_token.clone())
    );
    assert_eq!(store.find_token("d-none").await.unwrap(), None);
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["token_issued", "login_succeeded", "user_created"]
    );

    let client_token = TokenRecord {
        client_id: Some("cli".into()),
        ..token("d-client", TokenKind::Client, None, T0 + 10)
    };
    store.insert_token(&client_token, &[]).await.unwrap();
    assert_eq!(
        store.find_token("d-client").await.unwrap(),
        Some(client_token)
    );
    let refresh = token("d-refresh", TokenKind::Refresh, Some("u-alice"), T0 + 20);
    store.insert_token(&refresh, &[]).await.unwrap();
    assert_eq!(store.find_token("d-refresh").await.unwrap(), Some(refresh));

    let clash = token("d-user", TokenKind::User, None, T0);
    assert_duplicate(
        store
            .insert_token(&clash, &[event(AuditKind::TokenIssued, Some("x"))])
            .await,
        "token",
    );
    assert!(
        audit_for(store, "x").await.is_empty(),
        "a refused insert writes no audit"
    );
    match store
        .insert_token(
            &token("d-ghost", TokenKind::User, Some("nobody"), T0 + 10),
            &[],
        )
        .await
    {
        Err(StoreError::NotFound) => {}
        other => panic!("a token for an unknown user: expected NotFound, got {other:?}"),
    }

    let revoked = [event(AuditKind::TokenRevoked, Some("u-alice"))];
    assert!(store.delete_token("d-user", &revoked).await.unwrap());
    assert_eq!(store.find_token("d-user").await.unwrap(), None);
    assert!(!store.delete_token("d-user", &revoked).await.unwrap());
    let revocations = kinds_for(store, "u-alice")
        .await
        .into_iter()
        .filter(|k| k == "token_revoked")
        .count();
    assert_eq!(revocations, 1, "deleting a missing token writes no audit");

    // Expired means expires_at < now: d-client (T0+10) goes at T0+20, d-refresh (T0+20) stays.
    store
        .insert_token(
            &token("d-late", TokenKind::User, Some("u-alice"), T0 + 30),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.purge_expired_tokens(T0 + 20).await.unwrap(), 1);
    assert_eq!(store.find_token("d-client").await.unwrap(), None);
    assert!(store.find_token("d-refresh").await.unwrap().is_some());
    assert_eq!(store.purge_expired_tokens(T0 + 20).await.unwrap(), 0);
    assert_eq!(store.purge_expired_tokens(T0 + 1000).await.unwrap(), 2);
    assert_eq!(store.find_token("d-late").await.unwrap(), None);
}

/// Refresh tokens are spent once (a conditional update), and a session is revoked whole.
pub async fn refresh_spent_once_and_sessions_revoked(store: &dyn Store) {
    store
        .insert_user(
            &new_user("u-alice", "alice"),
            &event(AuditKind::UserCreated, Some("u-alice")),
        )
        .await
        .unwrap();
    let in_session = |digest: &str, kind, session: &str| TokenRecord {
        session_id: session.into(),
        app_digest: Some("app-digest".into()),
        ..token(digest, kind, Some("u-alice"), T0 + 100)
    };
    for t in [
        in_session("s1-access", TokenKind::User, "s1"),
        in_session("s1-refresh", TokenKind::Refresh, "s1"),
        in_session("s1-refresh-2", TokenKind::Refresh, "s1"),
        in_session("s2-access", TokenKind::User, "s2"),
    ] {
        store.insert_token(&t, &[]).await.unwrap();
    }
    let found = store.find_token("s1-refresh").await.unwrap().unwrap();
    assert_eq!(found, in_session("s1-refresh", TokenKind::Refresh, "s1"));

    assert!(
        !store.spend_refresh("s1-access", T0).await.unwrap(),
        "not a refresh token"
    );
    assert!(
        !store.spend_refresh("s1-refresh", T0 + 100).await.unwrap(),
        "expired"
    );
    assert!(store.spend_refresh("s1-refresh", T0).await.unwrap());
    assert!(
        !store.spend_refresh("s1-refresh", T0 + 1).await.unwrap(),
        "spent once"
    );
    let spent = store.find_token("s1-refresh").await.unwrap().unwrap();
    assert_eq!(spent.spent_at, Some(T0), "a spent token is kept, marked");

    let audit = [event(AuditKind::SessionsRevoked, Some("u-alice"))];
    assert_eq!(store.revoke_session("s1", &audit).await.unwrap(), 3);
    for gone in ["s1-access", "s1-refresh", "s1-refresh-2"] {
        assert!(store.find_token(gone).await.unwrap().is_none(), "{gone}");
    }
    assert!(store.find_token("s2-access").await.unwrap().is_some());
    assert_eq!(store.revoke_session("s1", &audit).await.unwrap(), 0);
    let revocations = kinds_for(store, "u-alice")
        .await
        .into_iter()
        .filter(|k| k == "sessions_revoked")
        .count();
    assert_eq!(revocations, 1, "revoking an empty session writes no audit");
}

/// API clients and app keys: insert with audit, find, duplicate.
pub async fn clients_and_apps(store: &dyn Store) {
    let client = Client {
        client_id: "cli".into(),
        secret_hash: "secret-hash".into(),
        name: Some("CLI".into()),
        created_at: T0,
    };
    let mut created = event(AuditKind::ClientCreated, None);
    created.detail = json!({"client_id": "cli"});
    store.insert_client(&client, &created).await.unwrap();
    assert_eq!(
        store.find_client("cli").await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(store.find_client("other").await.unwrap(), None);
    let unnamed = Client {
        client_id: "bare".into(),
        name: None,
        ..client.clone()
    };
    store.insert_client(&unnamed, &created).await.unwrap();
    assert_eq!(store.find_client("bare").await.unwrap(), Some(unnamed));
    assert_duplicate(store.insert_client(&client, &created).await, "client id");

    let app = App {
        key_digest: "app-digest".into(),
        name: Some("Mobile".into()),
        created_at: T0,
    };
    store
        .insert_app(&app, &event(AuditKind::AppCreated, None))
        .await
        .unwrap();
    assert_eq!(
        store.find_app("app-digest").await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(store.find_app("other").await.unwrap(), None);
    assert_duplicate(
        store
            .insert_app(&app, &event(AuditKind::AppCreated, None))
            .await,
        "app key",
    );

    let kinds: Vec<String> = store
        .audit_log(&AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        ["app_created", "client_created", "client_created"],
        "refused inserts write no audit"
    );
}

/// The audit log reads newest first, filters by user, honours `limit` (0 = 100, at most 1000)
/// and returns every field as written.
pub async fn audit_log_queries(store: &dyn Store) {
    store.append_audit(&[]).await.unwrap();
    let mut first = event(AuditKind::LoginFailed, None);
    first.client_addr = None;
    first.detail =
        json!({"reason": "unknown_user", "nested": {"list": [1, 2.5, null, "x"], "flag": true}});
    first.at = T0 + 1;
    store
        .append_audit(std::slice::from_ref(&first))
        .await
        .unwrap();
    let batch: Vec<AuditEvent> = (0..6)
        .map(|i| {
            let mut e = event(
                AuditKind::LoginSucceeded,
                Some(if i % 2 == 0 { "u-a" } else { "u-b" }),
            );
            e.at = T0 + 10 + i;
            e.detail = json!({"i": i});
            e
        })
        .collect();
    store.append_audit(&batch).await.unwrap();

    let all = store.audit_log(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    let order: Vec<i64> = all.iter().map(|r| r.at).collect();
    assert_eq!(
        order,
        [T0 + 15, T0 + 14, T0 + 13, T0 + 12, T0 + 11, T0 + 10, T0 + 1]
    );
    let oldest = &all[6];
    assert_eq!(
        (
            oldest.kind.as_str(),
            &oldest.user_id,
            oldest.dialect.as_str(),
            oldest.request_id.as_str(),
            &oldest.client_addr
        ),
        ("login_failed", &None, "test", "req-1", &None)
    );
    assert_eq!(oldest.detail, first.detail);
    assert_eq!(all[0].client_addr.as_deref(), Some("192.0.2.1"));

    let only_a = store
        .audit_log(&AuditQuery {
            user_id: Some("u-a".into()),
            limit: 0,
        })
        .await
        .unwrap();
    let details: Vec<_> = only_a.iter().map(|r| r.detail.clone()).collect();
    assert_eq!(details, [json!({"i": 4}), json!({"i": 2}), json!({"i": 0})]);
    assert!(only_a.iter().all(|r| r.user_id.as_deref() == Some("u-a")));
    let two = store
        .audit_log(&AuditQuery {
            user_id: None,
            limit: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        two.iter().map(|r| r.seq).collect::<Vec<_>>(),
        all[..2].iter().map(|r| r.seq).collect::<Vec<_>>()
    );
    let one_b = store
        .audit_log(&AuditQuery {
            user_id: Some("u-b".into()),
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(one_b.len(), 1);
    assert_eq!(one_b[0].detail, json!({"i": 5}));
    assert!(store
        .audit_log(&AuditQuery {
            user_id: Some("u-none".into()),
            limit: 10
        })
        .await
        .unwrap()
        .is_empty());

    let many: Vec<AuditEvent> = (0..1100)
        .map(|_| event(AuditKind::TokenIssued, Some("u-many")))
        .collect();
    store.append_audit(&many).await.unwrap();
    let default = store
        .audit_log(&AuditQuery {
            user_id: Some("u-many".into()),
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(default.len(), 100, "limit 0 means 100");
    let capped = store
        .audit_log(&AuditQuery {
            user_id: None,
            limit: u32::MAX,
        })
        .await
        .unwrap();
    assert_eq!(capped.len(), 1000, "at most 1000");
}

/// Resets: insert with audit, find, duplicate digest, unknown user.
pub async fn resets_insert_find(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let token = reset("r-token", "u-alice", ResetKind::Token, T0 + 600);
    let requested = [event(AuditKind::PasswordResetRequested, Some("u-alice"))];
    store.insert_reset(&token, false, &requested).await.unwrap();
    assert_eq!(
        store.find_reset("r-token").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.find_reset("r-none").await.unwrap(), None);
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["password_reset_requested", "user_created"]
    );

    let code = reset("r-code", "u-bob", ResetKind::Code, T0 + 60);
    store.insert_reset(&code, true, &[]).await.unwrap();
    assert_eq!(
        store.find_reset("r-code").await.unwrap(),
        Some(code.clone())
    );
    let used = ResetRecord {
        used_at: Some(T0 + 1),
        ..reset("r-used", "u-bob", ResetKind::Token, T0 + 60)
    };
    store.insert_reset(&used, false, &[]).await.unwrap();
    assert_eq!(store.find_reset("r-used").await.unwrap(), Some(used));

    // A clashing digest is refused, whoever it belongs to, and the refused insert (with
    // replace_outstanding) deletes nothing and writes no audit.
    let clash = reset("r-token", "u-bob", ResetKind::Code, T0 + 600);
    assert_duplicate(
        store
            .insert_reset(
                &clash,
                true,
                &[event(AuditKind::PasswordResetRequested, Some("x"))],
            )
            .await,
        "reset",
    );
    assert!(audit_for(store, "x").await.is_empty());
    assert_eq!(store.find_reset("r-token").await.unwrap(), Some(token));
    assert_eq!(store.find_reset("r-code").await.unwrap(), Some(code));

    assert_not_found(
        store
            .insert_reset(
                &reset("r-ghost", "nobody", ResetKind::Token, T0 + 600),
                false,
                &[event(AuditKind::PasswordResetRequested, Some("nobody"))],
            )
            .await,
        "a reset for an unknown user",
    );
    assert_eq!(store.find_reset("r-ghost").await.unwrap(), None);
    assert!(audit_for(store, "nobody").await.is_empty());
}

/// `replace_outstanding` deletes only the same user's unused resets of the same kind.
pub async fn resets_replace_outstanding(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let far = T0 + 600;
    add_resets(
        store,
        &[
            reset("a-tok-1", "u-alice", ResetKind::Token, far),
            reset("a-tok-used", "u-alice", ResetKind::Token, far),
            reset("a-code-1", "u-alice", ResetKind::Code, far),
            reset("b-tok-1", "u-bob", ResetKind::Token, far),
            reset("b-code-1", "u-bob", ResetKind::Code, far),
        ],
    )
    .await;
    assert!(store
        .consume_reset("a-tok-used", T0)
        .await
        .unwrap()
        .is_some());

    let replacement = reset("a-tok-2", "u-alice", ResetKind::Token, far);
    store.insert_reset(&replacement, true, &[]).await.unwrap();
    assert_eq!(used_at(store, "a-tok-1").await, None, "replaced");
    assert_eq!(
        used_at(store, "a-tok-used").await,
        Some(Some(T0)),
        "used: kept"
    );
    assert_eq!(
        used_at(store, "a-code-1").await,
        Some(None),
        "other kind: kept"
    );
    assert_eq!(
        used_at(store, "b-tok-1").await,
        Some(None),
        "other user: kept"
    );
    assert_eq!(used_at(store, "a-tok-2").await, Some(None));

    store
        .insert_reset(
            &reset("a-code-2", "u-alice", ResetKind::Code, far),
            true,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(used_at(store, "a-code-1").await, None);
    assert_eq!(used_at(store, "a-tok-2").await, Some(None));
    assert_eq!(used_at(store, "b-code-1").await, Some(None));

    store
        .insert_reset(
            &reset("a-tok-3", "u-alice", ResetKind::Token, far),
            false,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        used_at(store, "a-tok-2").await,
        Some(None),
        "without replace_outstanding nothing is deleted"
    );
}

/// A reset is consumed once: the first call gets it (marked used), later calls get `None`.
pub async fn reset_consumed_once(store: &dyn Store) {
    add_users(store, &["u-alice"]).await;
    let token = reset("r-1", "u-alice", ResetKind::Token, T0 + 600);
    let code = reset("c-1", "u-alice", ResetKind::Code, T0 + 600);
    add_resets(store, &[token.clone(), code.clone()]).await;

    let consumed = store.consume_reset("r-1", T0 + 10).await.unwrap();
    assert_eq!(
        consumed,
        Some(ResetRecord {
            used_at: Some(T0 + 10),
            ..token
        })
    );
    assert_eq!(store.consume_reset("r-1", T0 + 11).await.unwrap(), None);
    assert_eq!(store.consume_reset("r-1", T0 + 10).await.unwrap(), None);
    assert_eq!(
        used_at(store, "r-1").await,
        Some(Some(T0 + 10)),
        "the first use stays"
    );
    assert_eq!(store.consume_reset("r-none", T0).await.unwrap(), None);

    assert_eq!(
        store.consume_reset("c-1", T0 + 20).await.unwrap(),
        Some(ResetRecord {
            used_at: Some(T0 + 20),
            ..code
        })
    );
    assert_eq!(store.consume_reset("c-1", T0 + 20).await.unwrap(), None);
}

/// A reset is usable while `expires_at > now`; an expired one is not consumed.
pub async fn reset_expired_not_consumed(store: &dyn Store) {
    add_users(store, &["u-alice"]).await;
    add_resets(
        store,
        &[
            reset("r-1", "u-alice", ResetKind::Token, T0 + 100),
            reset("r-2", "u-alice", ResetKind::Token, T0 + 100),
        ],
    )
    .await;
    assert_eq!(
        store.consume_reset("r-1", T0 + 100).await.unwrap(),
        None,
        "expires_at == now"
    );
    assert_eq!(store.consume_reset("r-1", T0 + 5000).await.unwrap(), None);
    assert_eq!(used_at(store, "r-1").await, Some(None), "left unused");
    assert!(store.consume_reset("r-2", T0 + 99).await.unwrap().is_some());
}

/// Many concurrent consumers of one reset: exactly one gets it, every round; likewise for
/// concurrent completions. Tasks alternate between `a` and `b` (the same store or two stores on
/// one database).
pub async fn concurrent_consume_one_wins(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const TASKS: usize = 8;
    a.insert_user(
        &new_user("u-race", "race"),
        &event(AuditKind::UserCreated, Some("u-race")),
    )
    .await
    .unwrap();
    for round in 0..5 {
        let digest = format!("r-{round}");
        a.insert_reset(
            &reset(&digest, "u-race", ResetKind::Token, T0 + 600),
            false,
            &[],
        )
        .await
        .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, digest) = (barrier.clone(), digest.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.consume_reset(&digest, T0 + 10).await
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Some(record)) => {
                    assert_eq!(record.used_at, Some(T0 + 10));
                    winners += 1;
                }
                Ok(None) => {}
                Err(err) => panic!("round {round}: consume failed: {err:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one consumer wins");
    }

    for round in 0..3 {
        let version = round + 1;
        let digest = format!("complete-{round}");
        a.insert_reset(
            &reset(&digest, "u-race", ResetKind::Token, T0 + 600),
            false,
            &[],
        )
        .await
        .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, digest) = (barrier.clone(), digest.clone());
                tokio::spawn(async move {
                    let update = reset_update("u-race", version, &format!("hash-{round}-{i}"));
                    barrier.wait().await;
                    store.complete_reset(&digest, &update).await
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => winners += 1,
                Err(StoreError::NotFound) => {}
                Err(err) => panic!("round {round}: complete failed: {err:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one completion wins");
        for store in [&a, &b] {
            let credential = store.credential("u-race").await.unwrap().unwrap();
            assert_eq!(credential.version, version + 1);
        }
    }
    let resets = kinds_for(&*b, "u-race")
        .await
        .into_iter()
        .filter(|k| k == "password_reset")
        .count();
    assert_eq!(resets, 3);
}

/// Completing a reset changes the password as `update_password` does, consumes the reset and
/// deletes the user's other resets, all at once.
pub async fn complete_reset_commits(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let far = T0 + 600;
    for t in [
        token("alice-1", TokenKind::User, Some("u-alice"), far),
        token("alice-refresh", TokenKind::Refresh, Some("u-alice"), far),
        token("bob-1", TokenKind::User, Some("u-bob"), far),
    ] {
        store.insert_token(&t, &[]).await.unwrap();
    }
    add_resets(
        store,
        &[
            reset("r-use", "u-alice", ResetKind::Token, far),
            reset("r-other", "u-alice", ResetKind::Token, far),
            reset("c-other", "u-alice", ResetKind::Code, far),
            reset("r-bob", "u-bob", ResetKind::Token, far),
        ],
    )
    .await;
    assert!(store.consume_reset("c-other", T0).await.unwrap().is_some());

    store
        .complete_reset("r-use", &reset_update("u-alice", 1, "hash-1"))
        .await
        .unwrap();
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-1", 2)
    );
    assert_eq!(
        store.password_history("u-alice", 10).await.unwrap(),
        ["hash-0"]
    );
    assert!(store.find_token("alice-1").await.unwrap().is_none());
    assert!(store.find_token("alice-refresh").await.unwrap().is_none());
    assert!(store.find_token("bob-1").await.unwrap().is_some());
    assert_eq!(
        used_at(store, "r-use").await,
        Some(Some(T0 + 60)),
        "consumed"
    );
    assert_eq!(
        used_at(store, "r-other").await,
        None,
        "other resets deleted"
    );
    assert_eq!(used_at(store, "c-other").await, None, "used ones too");
    assert_eq!(
        used_at(store, "r-bob").await,
        Some(None),
        "other users' resets kept"
    );
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["sessions_revoked", "password_reset", "user_created"]
    );
    assert_not_found(
        store
            .complete_reset("r-use", &reset_update("u-alice", 2, "hash-again"))
            .await,
        "a completed reset again",
    );

    // keep_token spares one token.
    store
        .insert_token(
            &token("alice-keep", TokenKind::User, Some("u-alice"), far),
            &[],
        )
        .await
        .unwrap();
    store
        .insert_token(
            &token("alice-drop", TokenKind::User, Some("u-alice"), far),
            &[],
        )
        .await
        .unwrap();
    add_resets(store, &[reset("r-2", "u-alice", ResetKind::Token, far)]).await;
    let mut update = reset_update("u-alice", 2, "hash-2");
    update.keep_token = Some("alice-keep".into());
    store.complete_reset("r-2", &update).await.unwrap();
    assert!(store.find_token("alice-keep").await.unwrap().is_some());
    assert!(store.find_token("alice-drop").await.unwrap().is_none());
    assert_eq!(
        store.credential("u-alice").await.unwrap().unwrap().version,
        3
    );
    assert_eq!(
        used_at(store, "r-use").await,
        None,
        "deleted by the next change"
    );
}

/// A used, expired, unknown or another user's reset cannot complete: `NotFound`, nothing changed
/// (the other user's reset is not consumed either).
pub async fn complete_reset_refused(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let far = T0 + 600;
    store
        .insert_token(
            &token("alice-1", TokenKind::User, Some("u-alice"), far),
            &[],
        )
        .await
        .unwrap();
    add_resets(
        store,
        &[
            reset("r-used", "u-alice", ResetKind::Token, far),
            // reset_update's now is T0 + 60.
            reset("r-expired", "u-alice", ResetKind::Token, T0 + 60),
            reset("r-spare", "u-alice", ResetKind::Token, far),
            reset("r-bob", "u-bob", ResetKind::Token, far),
        ],
    )
    .await;
    assert!(store.consume_reset("r-used", T0).await.unwrap().is_some());

    for digest in ["r-used", "r-expired", "r-none", "r-bob"] {
        assert_not_found(
            store
                .complete_reset(digest, &reset_update("u-alice", 1, "hash-x"))
                .await,
            digest,
        );
    }
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-0", 1)
    );
    assert!(store
        .password_history("u-alice", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.find_token("alice-1").await.unwrap().is_some());
    assert_eq!(used_at(store, "r-used").await, Some(Some(T0)));
    assert_eq!(used_at(store, "r-expired").await, Some(None));
    assert_eq!(used_at(store, "r-spare").await, Some(None));
    assert_eq!(used_at(store, "r-bob").await, Some(None), "not consumed");
    assert_eq!(kinds_for(store, "u-alice").await, ["user_created"]);
    assert_eq!(kinds_for(store, "u-bob").await, ["user_created"]);
    assert_eq!(store.credential("u-bob").await.unwrap().unwrap().version, 1);
}

/// A stale version is `VersionMismatch`, and the whole transaction rolls back: the reset stays
/// usable.
pub async fn complete_reset_stale_version(store: &dyn Store) {
    add_users(store, &["u-alice"]).await;
    let far = T0 + 600;
    store
        .insert_token(
            &token("alice-1", TokenKind::User, Some("u-alice"), far),
            &[],
        )
        .await
        .unwrap();
    add_resets(
        store,
        &[
            reset("r-1", "u-alice", ResetKind::Token, far),
            reset("r-2", "u-alice", ResetKind::Code, far),
        ],
    )
    .await;
    for stale in [0, 2] {
        match store
            .complete_reset("r-1", &reset_update("u-alice", stale, "hash-x"))
            .await
        {
            Err(StoreError::VersionMismatch) => {}
            other => panic!("expected VersionMismatch, got {other:?}"),
        }
    }
    assert_eq!(
        used_at(store, "r-1").await,
        Some(None),
        "rolled back: not consumed"
    );
    assert_eq!(used_at(store, "r-2").await, Some(None));
    let credential = store.credential("u-alice").await.unwrap().unwrap();
    assert_eq!(
        (credential.hash.as_str(), credential.version),
        ("hash-0", 1)
    );
    assert!(store
        .password_history("u-alice", 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.find_token("alice-1").await.unwrap().is_some());
    assert_eq!(kinds_for(store, "u-alice").await, ["user_created"]);

    store
        .complete_reset("r-1", &reset_update("u-alice", 1, "hash-1"))
        .await
        .unwrap();
    assert_eq!(
        store.credential("u-alice").await.unwrap().unwrap().version,
        2
    );
}

/// A password change deletes every reset of the user, used or not; a refused one deletes none.
pub async fn update_password_deletes_resets(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let far = T0 + 600;
    add_resets(
        store,
        &[
            reset("a-tok", "u-alice", ResetKind::Token, far),
            reset("a-code", "u-alice", ResetKind::Code, far),
            reset("a-used", "u-alice", ResetKind::Token, far),
            reset("b-tok", "u-bob", ResetKind::Token, far),
        ],
    )
    .await;
    assert!(store.consume_reset("a-used", T0).await.unwrap().is_some());

    assert!(matches!(
        store
            .update_password(&password_update("u-alice", 5, "hash-x"))
            .await,
        Err(StoreError::VersionMismatch)
    ));
    assert_eq!(
        used_at(store, "a-tok").await,
        Some(None),
        "a refused change deletes nothing"
    );

    store
        .update_password(&password_update("u-alice", 1, "hash-1"))
        .await
        .unwrap();
    for digest in ["a-tok", "a-code", "a-used"] {
        assert_eq!(store.find_reset(digest).await.unwrap(), None, "{digest}");
    }
    assert_eq!(used_at(store, "b-tok").await, Some(None));
    assert_eq!(store.consume_reset("a-tok", T0 + 61).await.unwrap(), None);
}

/// Security answers: none at first, set, replaced, per user; an unknown user is `NotFound`.
pub async fn security_answer_upsert(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    assert_eq!(store.security_answer("u-alice").await.unwrap(), None);
    let first = SecurityAnswer {
        question: "First pet?".into(),
        answer_hash: "answer-hash-1".into(),
    };
    let set = event(AuditKind::SecurityAnswerSet, Some("u-alice"));
    store
        .set_security_answer("u-alice", &first, &set)
        .await
        .unwrap();
    assert_eq!(store.security_answer("u-alice").await.unwrap(), Some(first));
    assert_eq!(store.security_answer("u-bob").await.unwrap(), None);

    let second = SecurityAnswer {
        question: "Städtename \"Ünïcode\"?".into(),
        answer_hash: "answer-hash-2".into(),
    };
    store
        .set_security_answer("u-alice", &second, &set)
        .await
        .unwrap();
    assert_eq!(
        store.security_answer("u-alice").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(
        kinds_for(store, "u-alice").await,
        ["security_answer_set", "security_answer_set", "user_created"]
    );

    let bobs = SecurityAnswer {
        question: "Q".into(),
        answer_hash: "bob-hash".into(),
    };
    store
        .set_security_answer(
            "u-bob",
            &bobs,
            &event(AuditKind::SecurityAnswerSet, Some("u-bob")),
        )
        .await
        .unwrap();
    assert_eq!(store.security_answer("u-bob").await.unwrap(), Some(bobs));
    assert_eq!(
        store.security_answer("u-alice").await.unwrap(),
        Some(second)
    );

    assert_not_found(
        store
            .set_security_answer(
                "nobody",
                &SecurityAnswer {
                    question: "Q".into(),
                    answer_hash: "h".into(),
                },
                &event(AuditKind::SecurityAnswerSet, Some("nobody")),
            )
            .await,
        "an unknown user",
    );
    assert!(audit_for(store, "nobody").await.is_empty());
    assert_eq!(store.security_answer("nobody").await.unwrap(), None);
}

/// The store answers a trivial query.
pub async fn ping(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// The readiness probe's write succeeds, again and again, on a writable database.
pub async fn heartbeat(store: &dyn Store) {
    store.heartbeat(T0).await.unwrap();
    store.heartbeat(T0 + 1).await.unwrap();
    store.heartbeat(T0 + 1).await.unwrap();
}

/// A slot of `key`'s budget of `limit` per 900 s.
pub(crate) fn ask(key: &str, limit: u32) -> AttemptAsk<'_> {
    AttemptAsk {
        key,
        window: 900,
        limit,
    }
}

/// One slot of `key`'s budget of `limit` per 900 s, taken alone.
pub(crate) async fn take_slot(
    store: &dyn Store,
    key: &str,
    now: Timestamp,
    limit: u32,
) -> Reservation {
    let taken = (store.reserve_attempts(&[ask(key, limit)], now))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    taken[0]
}

/// Guessing budgets: slots taken up to the limit, refused past it (without counting further),
/// given back, cleared, and a new window after the old one.
pub async fn attempt_counters(store: &dyn Store) {
    let take = |now: i64| take_slot(store, "user:a", now, 2);
    let r = take(T0).await;
    assert_eq!((r.allowed, r.count, r.window_start), (true, 1, T0));
    let r = take(T0 + 10).await;
    assert_eq!((r.allowed, r.count, r.window_start), (true, 2, T0));
    for _ in 0..3 {
        let r = take(T0 + 20).await;
        assert_eq!(
            (r.allowed, r.count),
            (false, 3),
            "refusals are not counted further"
        );
    }
    let release = |window_start: i64| SlotSettlement::Release {
        key: "user:a",
        window_start,
        limit: 2,
    };
    // One slot given back after refusals: exactly one more attempt may run.
    store.settle_attempts(&[release(T0)]).await.unwrap();
    assert!(take(T0 + 30).await.allowed);
    assert!(!take(T0 + 31).await.allowed);
    // A release for a window that is over changes nothing.
    store.settle_attempts(&[release(T0 - 900)]).await.unwrap();
    assert!(!take(T0 + 32).await.allowed);
    // The window ends: a fresh budget.
    let r = take(T0 + 900).await;
    assert_eq!((r.allowed, r.count, r.window_start), (true, 1, T0 + 900));
    // Keys are independent; a cleared key starts over.
    assert_eq!(take_slot(store, "user:b", T0, 1).await.count, 1);
    assert!(!take_slot(store, "user:b", T0, 1).await.allowed);
    let clear = SlotSettlement::Clear { key: "user:b" };
    store.settle_attempts(&[clear]).await.unwrap();
    assert!(take_slot(store, "user:b", T0, 1).await.allowed);
}

/// Many concurrent reservations on one key (through one or two stores on the same database):
/// exactly `limit` are allowed.
pub async fn concurrent_reservations_hold_the_limit(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            take_slot(&*store, "user:burst", T0, 5).await.allowed
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    assert_eq!(allowed, 5);
}

/// The highest bcrypt cost among stored password hashes.
pub async fn max_hash_cost(store: &dyn Store) {
    assert_eq!(store.max_hash_cost().await.unwrap(), None);
    let mut user = new_user("u-cost-low", "cost-low");
    user.credential_hash = format!("$2b$04${}", "a".repeat(53));
    store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-cost-low")))
        .await
        .unwrap();
    let mut user = new_user("u-cost-high", "cost-high");
    user.credential_hash = format!("$2y$11${}", "a".repeat(53));
    store
        .insert_user(&user, &event(AuditKind::UserCreated, Some("u-cost-high")))
        .await
        .unwrap();
    assert_eq!(store.max_hash_cost().await.unwrap(), Some(11));
}

/// Hashes are read page by page in id order, and swapped only while unchanged.
pub async fn hash_pages_and_swaps(store: &dyn Store) {
    use credgate_core::store::HashSwap;
    for (id, hash) in [
        ("u-1", "{SHA}one"),
        ("u-2", "{SHA}two"),
        ("u-3", "{SHA}three"),
    ] {
        let mut user = new_user(id, &format!("name-{id}"));
        user.credential_hash = hash.into();
        store
            .insert_user(&user, &event(AuditKind::UserCreated, Some(id)))
            .await
            .unwrap();
    }
    let first = store.hash_page("", 2).await.unwrap();
    let ids: Vec<_> = first.iter().map(|h| h.user_id.as_str()).collect();
    assert_eq!(ids, ["u-1", "u-2"]);
    assert_eq!(first[0].hash, "{SHA}one");
    assert_eq!(first[0].credential_version, 1);
    let rest = store.hash_page("u-2", 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user_id, "u-3");
    assert!(store.hash_page("u-3", 2).await.unwrap().is_empty());

    let swap = |id: &str, version, old: &str| HashSwap {
        user_id: id.into(),
        credential_version: version,
        old: old.into(),
        new: format!("wrapped-{id}"),
    };
    let swaps = [
        swap("u-1", 1, "{SHA}one"),
        // Stale: the hash changed since it was read.
        swap("u-2", 1, "{SHA}other"),
        // Stale: the credential version moved on.
        swap("u-3", 2, "{SHA}three"),
    ];
    let audit = event(AuditKind::HashesWrapped, None);
    assert_eq!(store.swap_hashes(&swaps, &[audit]).await.unwrap(), 1);
    let after = store.hash_page("", 10).await.unwrap();
    let hashes: Vec<_> = after.iter().map(|h| h.hash.as_str()).collect();
    assert_eq!(hashes, ["wrapped-u-1", "{SHA}two", "{SHA}three"]);
    assert_eq!(store.credential("u-1").await.unwrap().unwrap().version, 1);
    let logged = store
        .audit_log(&AuditQuery {
            user_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        logged.iter().filter(|r| r.kind == "hashes_wrapped").count(),
        1
    );
}
