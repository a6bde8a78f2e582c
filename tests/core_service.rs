//! The core service over a real SQLite file: timing-safe lookups, hash upgrades, history.

use std::sync::Arc;

use credgate_core::{
    Access, ChangePassword, Command, CoreConfig, CredentialService, Error, Grant, ManualClock,
    NewUserSpec, Outcome, Password, PolicyRule, Request, RequestMeta, Subject, TokenKind,
    TokenRequest,
};
use credgate_store::StoreOptions;

async fn service(dir: &tempfile::TempDir, cost: u32) -> CredentialService {
    service_on(dir, cost, Arc::new(ManualClock::new(1_700_000_000))).await
}

async fn service_on(
    dir: &tempfile::TempDir,
    cost: u32,
    clock: Arc<ManualClock>,
) -> CredentialService {
    let url = dir.path().join("core.db").display().to_string();
    let store = credgate_store::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    let config = CoreConfig {
        bcrypt_cost: cost,
        hash_threads: 1,
        ..CoreConfig::default()
    };
    let outbox = Arc::new(credgate_server::notify::Outbox::new(
        dir.path().join("outbox.jsonl"),
    ));
    CredentialService::new(store, clock, outbox, config).unwrap()
}

fn meta() -> RequestMeta {
    RequestMeta {
        dialect: "test".into(),
        request_id: "r1".into(),
        client_addr: None,
    }
}

fn login(username: &str, password: &str) -> Request {
    Request {
        meta: meta(),
        app_key: None,
        access: Access::Public,
        command: Command::IssueToken(TokenRequest {
            client: None,
            client_required: false,
            grant: Grant::Password {
                username: username.into(),
                password: Password::new(password),
            },
            with_refresh: false,
        }),
    }
}

async fn token(
    core: &CredentialService,
    username: &str,
    password: &str,
) -> credgate_core::SecretToken {
    match core.execute(login(username, password)).await.unwrap() {
        Outcome::Token(t) => t.access,
        other => panic!("{other:?}"),
    }
}

fn change(token: &credgate_core::SecretToken, current: &str, new: &str) -> Request {
    Request {
        meta: meta(),
        app_key: None,
        access: Access::Token {
            token: Some(token.clone()),
            kind: TokenKind::User,
        },
        command: Command::ChangePassword(ChangePassword {
            subject: Subject::Caller,
            current: Password::new(current),
            new: Password::new(new),
            confirm: None,
        }),
    }
}

async fn add_user(core: &CredentialService, username: &str, password: &str) {
    let spec = NewUserSpec {
        username: username.into(),
        password: Password::new(password),
        ..NewUserSpec::default()
    };
    core.create_user(spec, &meta()).await.unwrap();
}

#[tokio::test]
async fn unknown_users_cost_one_verify_against_the_dummy_hash() {
    let dir = tempfile::tempdir().unwrap();
    let core = service(&dir, 4).await;
    add_user(&core, "known", "Correct-Horse-7").await;
    let before = core.hasher().completed();
    let unknown = core
        .execute(login("nobody", "Whatever-123"))
        .await
        .unwrap_err();
    assert_eq!(
        core.hasher().completed() - before,
        1,
        "one verify for an unknown user"
    );
    let before = core.hasher().completed();
    let wrong = core
        .execute(login("known", "Whatever-123"))
        .await
        .unwrap_err();
    assert_eq!(
        core.hasher().completed() - before,
        1,
        "one verify for a wrong password"
    );
    assert_eq!(
        (unknown, wrong),
        (Error::InvalidCredentials, Error::InvalidCredentials)
    );
}

#[tokio::test]
async fn a_weaker_hash_is_upgraded_on_the_next_successful_login() {
    let dir = tempfile::tempdir().unwrap();
    let weak = service(&dir, 4).await;
    add_user(&weak, "upgrader", "Correct-Horse-7").await;
    let id = weak.users(10, 0).await.unwrap()[0].id.clone();
    drop(weak);
    let strong = service(&dir, 5).await;
    let cost = |h: &str| credgate_core::hasher::hash_cost(h).unwrap();
    let before = strong.store().credential(&id).await.unwrap().unwrap();
    assert_eq!(cost(&before.hash), 4);
    token(&strong, "upgrader", "Correct-Horse-7").await;
    let after = strong.store().credential(&id).await.unwrap().unwrap();
    assert_eq!(
        (cost(&after.hash), after.version),
        (5, before.version),
        "re-hashed, same version"
    );
    token(&strong, "upgrader", "Correct-Horse-7").await;
}

#[tokio::test]
async fn the_last_five_passwords_cannot_be_reused() {
    let dir = tempfile::tempdir().unwrap();
    let core = service(&dir, 4).await;
    add_user(&core, "hist", "Password-Zero-0").await;
    let t = token(&core, "hist", "Password-Zero-0").await;
    let history = |e: Error| matches!(e, Error::PolicyViolation { rules } if rules == [PolicyRule::History { last: 5 }]);
    assert!(history(
        core.execute(change(&t, "Password-Zero-0", "Password-Zero-0"))
            .await
            .unwrap_err()
    ));
    let names = [
        "Password-One-1",
        "Password-Two-2",
        "Password-Three-3",
        "Password-Four-4",
        "Password-Five-5",
    ];
    let mut current = "Password-Zero-0";
    for next in names {
        core.execute(change(&t, current, next)).await.unwrap();
        current = next;
    }
    // The current and the four before it are refused; the sixth-last is allowed again.
    for old in &names[1..] {
        assert!(
            history(core.execute(change(&t, current, old)).await.unwrap_err()),
            "{old}"
        );
    }
    core.execute(change(&t, current, "Password-Zero-0"))
        .await
        .unwrap();
}

#[tokio::test]
async fn confirmation_and_externally_managed_users() {
    let dir = tempfile::tempdir().unwrap();
    let core = service(&dir, 4).await;
    let spec = NewUserSpec {
        username: "ext".into(),
        password: Password::new("Correct-Horse-7"),
        externally_managed: true,
        ..NewUserSpec::default()
    };
    core.create_user(spec, &meta()).await.unwrap();
    let t = token(&core, "ext", "Correct-Horse-7").await;
    assert_eq!(
        core.execute(change(&t, "Correct-Horse-7", "Another-Horse-8"))
            .await
            .unwrap_err(),
        Error::ExternallyManaged
    );
    add_user(&core, "conf", "Correct-Horse-7").await;
    let t = token(&core, "conf", "Correct-Horse-7").await;
    let mut req = change(&t, "Correct-Horse-7", "Another-Horse-8");
    if let Command::ChangePassword(c) = &mut req.command {
        c.confirm = Some(Password::new("Another-Horse-9"));
    }
    assert!(matches!(
        core.execute(req).await.unwrap_err(),
        Error::InvalidRequest { .. }
    ));
}

/// A session check (token + its user) is served from memory for `token_cache_secs`: even with
/// the database gone it answers, while anything that must read the store reports it unavailable.
#[tokio::test]
async fn session_checks_need_no_database_round_trip_while_cached() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("core.db").display().to_string();
    let store = Arc::new(
        credgate_store::SqliteStore::open(&url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let config = CoreConfig {
        bcrypt_cost: 4,
        hash_threads: 1,
        ..CoreConfig::default()
    };
    let outbox = Arc::new(credgate_server::notify::Outbox::new(
        dir.path().join("outbox.jsonl"),
    ));
    let core = CredentialService::new(
        store.clone(),
        Arc::new(ManualClock::new(1_700_000_000)),
        outbox,
        config,
    )
    .unwrap();
    add_user(&core, "cached", "Correct-Horse-7").await;
    let session = token(&core, "cached", "Correct-Horse-7").await;
    let show = || Request {
        meta: meta(),
        app_key: None,
        access: Access::Token {
            token: Some(session.clone()),
            kind: TokenKind::User,
        },
        command: Command::ShowUser {
            subject: Subject::Caller,
        },
    };
    // The first check reads the store and fills the cache.
    core.execute(show()).await.unwrap();
    store.close().await;
    match core.execute(show()).await.unwrap() {
        Outcome::User { user } => assert_eq!(user.username, "cached"),
        other => panic!("{other:?}"),
    }
    let refused = core
        .execute(login("cached", "Correct-Horse-7"))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Unavailable | Error::Internal),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_presentations_of_one_refresh_token_leave_no_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let core = Arc::new(service(&dir, 4).await);
    add_user(&core, "rory", "Racing-Refresh-1").await;
    let mut first = login("rory", "Racing-Refresh-1");
    if let Command::IssueToken(t) = &mut first.command {
        t.with_refresh = true;
    }
    let Outcome::Token(issued) = core.execute(first).await.unwrap() else {
        panic!("a token")
    };
    let refresh = issued.refresh.unwrap();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (core, refresh_token) = (Arc::clone(&core), refresh.clone());
            tokio::spawn(async move {
                core.execute(Request {
                    meta: meta(),
                    app_key: None,
                    access: Access::Public,
                    command: Command::IssueToken(TokenRequest {
                        client: None,
                        client_required: false,
                        grant: Grant::Refresh { refresh_token },
                        with_refresh: true,
                    }),
                })
                .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            Ok(Outcome::Token(t)) => winners.push(t),
            Ok(other) => panic!("{other:?}"),
            Err(e) => assert!(matches!(e, Error::InvalidCredentials), "{e:?}"),
        }
    }
    assert!(winners.len() <= 1, "one refresh token, spent once");
    // The replays revoked the family: whatever the winner got is dead too, as is the original.
    for access in winners.iter().map(|w| &w.access).chain([&issued.access]) {
        let refused = core
            .execute(change(access, "Racing-Refresh-1", "Racing-Refresh-2"))
            .await;
        assert!(
            matches!(refused, Err(Error::Unauthenticated)),
            "{refused:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_dies_with_its_session_at_logout() {
    let dir = tempfile::tempdir().unwrap();
    let core = service(&dir, 4).await;
    add_user(&core, "lou", "Logout-Refresh-1").await;
    let refresh_grant = |refresh_token: credgate_core::SecretToken| Request {
        meta: meta(),
        app_key: None,
        access: Access::Public,
        command: Command::IssueToken(TokenRequest {
            client: None,
            client_required: false,
            grant: Grant::Refresh { refresh_token },
            with_refresh: true,
        }),
    };
    let mut first = login("lou", "Logout-Refresh-1");
    if let Command::IssueToken(t) = &mut first.command {
        t.with_refresh = true;
    }
    let Outcome::Token(issued) = core.execute(first).await.unwrap() else {
        panic!("a token")
    };
    // One rotation: the session now holds the new access and refresh tokens.
    let Outcome::Token(rotated) = core
        .execute(refresh_grant(issued.refresh.unwrap()))
        .await
        .unwrap()
    else {
        panic!("a token")
    };
    let logout = Request {
        meta: meta(),
        app_key: None,
        access: Access::Token {
            token: Some(rotated.access.clone()),
            kind: TokenKind::User,
        },
        command: Command::Logout,
    };
    assert!(matches!(core.execute(logout).await, Ok(Outcome::LoggedOut)));
    let refused = core.execute(refresh_grant(rotated.refresh.unwrap())).await;
    assert!(
        matches!(refused, Err(Error::InvalidCredentials)),
        "{refused:?}"
    );
    let refused = core
        .execute(change(
            &issued.access,
            "Logout-Refresh-1",
            "Logout-Refresh-2",
        ))
        .await;
    assert!(
        matches!(refused, Err(Error::Unauthenticated)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn expired_sessions_are_purged_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let core = service_on(&dir, 4, clock.clone()).await;
    add_user(&core, "purged", "Correct-Horse-7").await;
    let first = token(&core, "purged", "Correct-Horse-7").await;
    clock.advance(1800);
    let second = token(&core, "purged", "Correct-Horse-7").await;
    assert_eq!(core.purge_expired_sessions().await.unwrap(), 0);
    // The first token's hour is over, the second's is not.
    clock.advance(1801);
    assert_eq!(core.purge_expired_sessions().await.unwrap(), 1);
    for (t, kept) in [(&first, false), (&second, true)] {
        let digest = credgate_core::token::digest(t.expose());
        let found = core.store().find_token(&digest).await.unwrap();
        assert_eq!(found.is_some(), kept);
    }
}
