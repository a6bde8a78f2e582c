//! Bulk import and export: outcomes per row, idempotency, conflicts, updates, dry runs, pages.

use credgate_core::import::{ImportOptions, ImportOutcome, ImportUser};
use credgate_core::model::{AuditKind, TokenKind, User, UserKey};
use credgate_core::Store;

use super::{event, new_user, token, T0};

/// A user to import with hash `hash-<username>`; `id` given or a fresh `gen-<username>`.
pub fn import_user(id: Option<&str>, username: &str) -> ImportUser {
    let mut user = new_user(id.unwrap_or(&format!("gen-{username}")), username).user;
    user.created_at = T0;
    ImportUser {
        user,
        credential_hash: format!("hash-{username}"),
        id_given: id.is_some(),
    }
}

fn with_alias(mut u: ImportUser, dialect: &str, external_id: &str) -> ImportUser {
    u.user.aliases.insert(dialect.into(), external_id.into());
    u
}

const WRITE: ImportOptions = ImportOptions {
    update: false,
    dry_run: false,
};
const UPDATE: ImportOptions = ImportOptions {
    update: true,
    dry_run: false,
};

async fn stored(store: &dyn Store, username: &str) -> Option<(User, String, i64)> {
    let user = store
        .find_user(UserKey::Username(username))
        .await
        .unwrap()?;
    let c = store.credential(&user.id).await.unwrap().unwrap();
    Some((user, c.hash, c.version))
}

fn conflict(outcome: &ImportOutcome, words: &str) {
    match outcome {
        ImportOutcome::Conflict(reason) => assert!(reason.contains(words), "{reason}"),
        other => panic!("expected a conflict about {words}, got {other:?}"),
    }
}

/// New users land whole (aliases, profile, flags, hash as given); the same batch again is a
/// no-op, also for rows whose id was not given (a fresh id each time).
pub async fn import_creates_then_unchanged(store: &dyn Store) {
    let mut ann = with_alias(import_user(Some("u-ann"), "ann"), "akana", "a1.fed");
    ann.user.admin = true;
    ann.user.externally_managed = true;
    ann.user
        .profile
        .insert("email".into(), "ann@example.com".into());
    let batch = vec![ann.clone(), import_user(None, "bob")];
    let outcomes = store.import_users(&batch, WRITE).await.unwrap();
    assert_eq!(
        outcomes,
        vec![ImportOutcome::Created, ImportOutcome::Created]
    );
    assert_eq!(
        stored(store, "ann").await,
        Some((ann.user.clone(), "hash-ann".into(), 1))
    );
    let by_alias = UserKey::Alias {
        dialect: "akana",
        external_id: "a1.fed",
    };
    assert_eq!(store.find_user(by_alias).await.unwrap(), Some(ann.user));
    let (bob, hash, _) = stored(store, "bob").await.unwrap();
    assert_eq!((bob.id.as_str(), hash.as_str()), ("gen-bob", "hash-bob"));

    let mut again = batch.clone();
    again[1].user.id = "gen-bob-other-run".into();
    let outcomes = store.import_users(&again, WRITE).await.unwrap();
    assert_eq!(
        outcomes,
        vec![ImportOutcome::Unchanged, ImportOutcome::Unchanged]
    );
    assert_eq!(store.list_users(0, 0).await.unwrap().len(), 2);
    assert!(store
        .find_user(UserKey::Id("gen-bob-other-run"))
        .await
        .unwrap()
        .is_none());
}

/// Rows that clash write nothing; the other rows of the batch still land.
pub async fn import_conflicts_leave_users_untouched(store: &dyn Store) {
    let first = vec![with_alias(import_user(Some("u-cat"), "cat"), "akana", "c1")];
    store.import_users(&first, WRITE).await.unwrap();
    let mut cat_admin = first[0].clone();
    cat_admin.user.admin = true;
    let outcomes = store.import_users(&[cat_admin], WRITE).await.unwrap();
    conflict(&outcomes[0], "admin flag");
    let batch = vec![
        import_user(Some("u-other"), "cat"),
        import_user(Some("u-other"), "cat"),
        with_alias(import_user(None, "dan"), "akana", "c1"),
        import_user(Some("u-cat"), "eve"),
        import_user(None, "fay"),
        import_user(None, "fay"),
        with_alias(import_user(None, "gus"), "akana", "g1"),
        with_alias(import_user(None, "hal"), "akana", "g1"),
    ];
    let outcomes = store.import_users(&batch, WRITE).await.unwrap();
    conflict(&outcomes[0], "another id");
    conflict(&outcomes[1], "earlier row");
    conflict(&outcomes[2], "alias akana=c1");
    conflict(&outcomes[3], "id u-cat");
    assert_eq!(outcomes[4], ImportOutcome::Created);
    conflict(&outcomes[5], "earlier row");
    assert_eq!(outcomes[6], ImportOutcome::Created);
    conflict(&outcomes[7], "alias akana=g1");
    assert_eq!(stored(store, "cat").await.unwrap().0, first[0].user);
    for absent in ["dan", "eve", "hal"] {
        assert!(
            stored(store, absent).await.is_none(),
            "{absent} was written"
        );
    }
    assert!(stored(store, "fay").await.is_some());
    assert!(stored(store, "gus").await.is_some());
}

/// With `update`, an existing user takes the file's data; a new hash moves the version and
/// ends sessions. The id still has to match.
pub async fn import_update_overwrites(store: &dyn Store) {
    let first = vec![with_alias(import_user(Some("u-ida"), "ida"), "akana", "i1")];
    store.import_users(&first, WRITE).await.unwrap();
    store
        .insert_token(
            &token("tok-ida", TokenKind::User, Some("u-ida"), T0 + 600),
            &[event(AuditKind::TokenIssued, Some("u-ida"))],
        )
        .await
        .unwrap();
    let mut changed = with_alias(import_user(None, "ida"), "crayon", "42");
    changed.user.admin = true;
    changed.credential_hash = "hash-ida-new".into();
    changed
        .user
        .profile
        .insert("email".into(), "ida@example.com".into());
    let outcomes = store
        .import_users(&[changed.clone(), import_user(Some("u-x"), "ida")], UPDATE)
        .await
        .unwrap();
    assert_eq!(outcomes[0], ImportOutcome::Updated);
    conflict(&outcomes[1], "earlier row");
    let (user, hash, version) = stored(store, "ida").await.unwrap();
    assert_eq!(user.id, "u-ida");
    assert!(user.admin);
    assert_eq!(user.aliases, changed.user.aliases);
    assert_eq!(user.profile, changed.user.profile);
    assert_eq!((hash.as_str(), version), ("hash-ida-new", 2));
    assert!(store.find_token("tok-ida").await.unwrap().is_none());
    let old_alias = UserKey::Alias {
        dialect: "akana",
        external_id: "i1",
    };
    assert!(store.find_user(old_alias).await.unwrap().is_none());
    let wrong_id = store
        .import_users(&[import_user(Some("u-not-ida"), "ida")], UPDATE)
        .await
        .unwrap();
    conflict(&wrong_id[0], "another id");
    assert_eq!(stored(store, "ida").await.unwrap().1, "hash-ida-new");
}

/// A dry run decides like a real import and writes nothing.
pub async fn import_dry_run_writes_nothing(store: &dyn Store) {
    store
        .import_users(&[import_user(Some("u-jo"), "jo")], WRITE)
        .await
        .unwrap();
    let mut jo = import_user(Some("u-jo"), "jo");
    jo.credential_hash = "hash-other".into();
    let batch = vec![jo, import_user(None, "kim")];
    let dry = ImportOptions {
        update: true,
        dry_run: true,
    };
    let outcomes = store.import_users(&batch, dry).await.unwrap();
    assert_eq!(
        outcomes,
        vec![ImportOutcome::Updated, ImportOutcome::Created]
    );
    assert!(stored(store, "kim").await.is_none());
    assert_eq!(stored(store, "jo").await.unwrap().1, "hash-jo");
}

/// Batches larger than one multi-row statement; export pages through everything in username
/// order and reads back exactly what was imported.
pub async fn import_large_batch_and_export_pages(store: &dyn Store) {
    let batch: Vec<ImportUser> = (0..1203)
        .map(|i| {
            let u = import_user(Some(&format!("id-{i:05}")), &format!("user-{i:05}"));
            with_alias(u, "akana", &format!("ak-{i}"))
        })
        .collect();
    let outcomes = store.import_users(&batch, WRITE).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::Created));
    let mut exported = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.export_users(after.as_deref(), 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.user.username.clone());
        exported.extend(page);
    }
    assert_eq!(exported.len(), batch.len());
    for (out, inp) in exported.iter().zip(&batch) {
        assert_eq!(out.user, inp.user);
        assert_eq!(out.credential_hash, inp.credential_hash);
    }
    let outcomes = store.import_users(&batch, WRITE).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::Unchanged));
}
