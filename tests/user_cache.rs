//! The user-read cache in front of the store: reads by id, username and alias are served from
//! memory, and every write through the service's store is seen at once on the same instance.

use std::sync::Arc;

use credgate_core::import::{ImportOptions, ImportOutcome, ImportUser};
use credgate_core::model::UserKey;
use credgate_core::{
    Access, Command, CoreConfig, CredentialService, Error, Grant, ManualClock, NewUserSpec,
    Outcome, Password, Request, RequestMeta, Subject, TokenKind, TokenRequest,
};
use credgate_store::{SqliteStore, StoreOptions};

const PASSWORD: &str = "Cached-Reader-42";

fn meta() -> RequestMeta {
    RequestMeta {
        dialect: "test".into(),
        request_id: "r1".into(),
        client_addr: None,
    }
}

/// The service over a SQLite file, and a second handle on the same file that bypasses the
/// service (another process writing, as far as the cache can tell).
async fn service(dir: &tempfile::TempDir) -> (CredentialService, SqliteStore) {
    let url = dir.path().join("cache.db").display().to_string();
    let store = credgate_store::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    let config = CoreConfig {
        bcrypt_cost: 4,
        hash_threads: 1,
        ..CoreConfig::default()
    };
    let outbox = Arc::new(credgate_server::notify::Outbox::new(
        dir.path().join("outbox.jsonl"),
    ));
    let core = CredentialService::new(
        store,
        Arc::new(ManualClock::new(1_700_000_000)),
        outbox,
        config,
    )
    .unwrap();
    let beside = SqliteStore::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    (core, beside)
}

async fn session(core: &CredentialService, username: &str) -> credgate_core::SecretToken {
    let login = Request {
        meta: meta(),
        app_key: None,
        access: Access::Public,
        command: Command::IssueToken(TokenRequest {
            client: None,
            client_required: false,
            grant: Grant::Password {
                username: username.into(),
                password: Password::new(PASSWORD),
            },
            with_refresh: false,
        }),
    };
    match core.execute(login).await.unwrap() {
        Outcome::Token(t) => t.access,
        other => panic!("{other:?}"),
    }
}

/// `get.json`'s read: the caller asks for a user by username.
async fn read(
    core: &CredentialService,
    token: &credgate_core::SecretToken,
    username: &str,
) -> Result<credgate_core::User, Error> {
    let show = Request {
        meta: meta(),
        app_key: None,
        access: Access::Token {
            token: Some(token.clone()),
            kind: TokenKind::User,
        },
        command: Command::ShowUser {
            subject: Subject::Username(username.into()),
        },
    };
    match core.execute(show).await? {
        Outcome::User { user } => Ok(user),
        other => panic!("{other:?}"),
    }
}

/// The stored user with `email` in its profile, as an import row that updates it.
async fn with_email(core: &CredentialService, username: &str, email: &str) -> ImportUser {
    let store = core.store();
    let mut user = store
        .find_user(UserKey::Username(username))
        .await
        .unwrap()
        .unwrap();
    user.profile.insert("email".into(), email.into());
    let hash = store.credential(&user.id).await.unwrap().unwrap().hash;
    ImportUser {
        user,
        credential_hash: hash,
        id_given: true,
    }
}

#[tokio::test]
async fn a_changed_user_is_read_fresh_at_once_on_the_same_instance() {
    use credgate_core::store::UserStore;
    let dir = tempfile::tempdir().unwrap();
    let (core, beside) = service(&dir).await;
    let spec = NewUserSpec {
        username: "ursula".into(),
        password: Password::new(PASSWORD),
        ..NewUserSpec::default()
    };
    core.create_user(spec, &meta()).await.unwrap();
    let token = session(&core, "ursula").await;
    assert_eq!(
        read(&core, &token, "ursula")
            .await
            .unwrap()
            .profile
            .get("email"),
        None
    );

    // A write the service does not see (another process on the file) is not seen until the
    // entry expires: the read above is being served from memory.
    let update = ImportOptions {
        update: true,
        dry_run: false,
    };
    let row = with_email(&core, "ursula", "behind@example.com").await;
    let outcomes = beside.import_users(&[row], update).await.unwrap();
    assert_eq!(outcomes, vec![ImportOutcome::Updated]);
    assert_eq!(
        read(&core, &token, "ursula")
            .await
            .unwrap()
            .profile
            .get("email"),
        None
    );

    // The same change through the service's store is seen on the next read.
    let row = with_email(&core, "ursula", "fresh@example.com").await;
    assert_eq!(
        core.store().import_users(&[row], update).await.unwrap(),
        vec![ImportOutcome::Updated]
    );
    let user = read(&core, &token, "ursula").await.unwrap();
    assert_eq!(
        user.profile.get("email").map(String::as_str),
        Some("fresh@example.com")
    );
    // Every key the cache holds the user under was forgotten, not only the one written.
    let by_id = core
        .store()
        .find_user(UserKey::Id(&user.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        by_id.profile.get("email").map(String::as_str),
        Some("fresh@example.com")
    );
}

#[tokio::test]
async fn a_password_change_ends_cached_sessions_and_refreshes_the_user_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (core, _beside) = service(&dir).await;
    for name in ["vera", "walt"] {
        let spec = NewUserSpec {
            username: name.into(),
            password: Password::new(PASSWORD),
            ..NewUserSpec::default()
        };
        core.create_user(spec, &meta()).await.unwrap();
    }
    let vera = session(&core, "vera").await;
    let other = session(&core, "vera").await;
    let walt = session(&core, "walt").await;
    // Cached: both sessions and the user.
    read(&core, &vera, "vera").await.unwrap();
    read(&core, &other, "vera").await.unwrap();
    read(&core, &walt, "walt").await.unwrap();
    let change = Request {
        meta: meta(),
        app_key: None,
        access: Access::Token {
            token: Some(vera.clone()),
            kind: TokenKind::User,
        },
        command: Command::ChangePassword(credgate_core::ChangePassword {
            subject: Subject::Caller,
            current: Password::new(PASSWORD),
            new: Password::new("Cached-Reader-43-new"),
            confirm: None,
        }),
    };
    core.execute(change).await.unwrap();
    assert!(matches!(
        read(&core, &other, "vera").await.unwrap_err(),
        Error::Unauthenticated
    ));
    read(&core, &vera, "vera").await.unwrap();
    read(&core, &walt, "walt").await.unwrap();
}
