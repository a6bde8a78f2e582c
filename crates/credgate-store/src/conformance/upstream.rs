//! Conformance: sessions standing for an upstream's user (passthrough).

use credgate_core::model::AuditKind;
use credgate_core::shadow::{ShadowBounds, ShadowComparison, ShadowQuery};
use credgate_core::{Store, StoreError, UpstreamSessionRecord};

use super::{event, T0};

pub fn upstream_session(digest: &str, expires_at: i64) -> UpstreamSessionRecord {
    UpstreamSessionRecord {
        digest: digest.into(),
        upstream: "legacy".into(),
        dialect: "crayon".into(),
        app_digest: None,
        username: "margaret@example.com".into(),
        user_ref: Some("ext-1".into()),
        client_id: Some("front".into()),
        created_at: T0,
        expires_at,
    }
}

pub async fn upstream_sessions_lifecycle(store: &dyn Store) {
    let s = upstream_session("u-1", T0 + 3600);
    store
        .insert_upstream_session(&s, &[event(AuditKind::TokenIssued, None)])
        .await
        .unwrap();
    assert_eq!(
        store.find_upstream_session("u-1").await.unwrap(),
        Some(s.clone())
    );
    assert!(store.find_upstream_session("u-2").await.unwrap().is_none());
    assert!(matches!(
        store.insert_upstream_session(&s, &[]).await,
        Err(StoreError::Duplicate(_))
    ));
    // Expired sessions are purged; the others stay.
    let old = upstream_session("u-old", T0 + 10);
    store.insert_upstream_session(&old, &[]).await.unwrap();
    assert_eq!(
        store.purge_expired_upstream_sessions(T0 + 9).await.unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_expired_upstream_sessions(T0 + 10)
            .await
            .unwrap(),
        1
    );
    assert!(store
        .find_upstream_session("u-old")
        .await
        .unwrap()
        .is_none());
    assert!(store.find_upstream_session("u-1").await.unwrap().is_some());

    let audit = [event(AuditKind::TokenRevoked, None)];
    assert!(store.delete_upstream_session("u-1", &audit).await.unwrap());
    assert!(!store.delete_upstream_session("u-1", &audit).await.unwrap());
    assert!(store.find_upstream_session("u-1").await.unwrap().is_none());
    let revoked = store
        .audit_log(&credgate_core::model::AuditQuery {
            user_id: None,
            limit: 100,
        })
        .await
        .unwrap()
        .iter()
        .filter(|r| r.kind == AuditKind::TokenRevoked.as_str())
        .count();
    assert_eq!(revoked, 1, "audited once, when it existed");
}

/// The upstream's id a new session of a user most likely gets: the newest session's that
/// names one, whatever the username's case; a session's id can be set afterwards.
pub async fn upstream_user_ref_from_newest_session(store: &dyn Store) {
    assert_eq!(
        store
            .upstream_user_ref("legacy", "margaret@example.com")
            .await
            .unwrap(),
        None
    );
    let first = upstream_session("r-1", T0 + 3600);
    let newer = UpstreamSessionRecord {
        user_ref: Some("ext-2".into()),
        created_at: T0 + 5,
        ..upstream_session("r-2", T0 + 3600)
    };
    let newest_without = UpstreamSessionRecord {
        user_ref: None,
        created_at: T0 + 9,
        ..upstream_session("r-3", T0 + 3600)
    };
    let elsewhere = UpstreamSessionRecord {
        upstream: "another".into(),
        user_ref: Some("other-9".into()),
        created_at: T0 + 20,
        ..upstream_session("r-4", T0 + 3600)
    };
    for s in [&first, &newer, &newest_without, &elsewhere] {
        store.insert_upstream_session(s, &[]).await.unwrap();
    }
    let found = store.upstream_user_ref("legacy", "Margaret@Example.com");
    assert_eq!(found.await.unwrap().as_deref(), Some("ext-2"));
    assert!(store
        .set_upstream_user_ref("r-3", Some("ext-3"))
        .await
        .unwrap());
    let found = store.upstream_user_ref("legacy", "margaret@example.com");
    assert_eq!(found.await.unwrap().as_deref(), Some("ext-3"));
    assert!(store.set_upstream_user_ref("r-1", None).await.unwrap());
    let cleared = store.find_upstream_session("r-1").await.unwrap().unwrap();
    assert_eq!(cleared.user_ref, None);
    assert!(!store
        .set_upstream_user_ref("r-none", Some("x"))
        .await
        .unwrap());
}

pub async fn other_upstream_sessions_end_on_change(store: &dyn Store) {
    for digest in ["keep", "other-1", "other-2"] {
        store
            .insert_upstream_session(&upstream_session(digest, T0 + 3600), &[])
            .await
            .unwrap();
    }
    let someone_else = UpstreamSessionRecord {
        username: "jane@example.com".into(),
        ..upstream_session("jane", T0 + 3600)
    };
    let elsewhere = UpstreamSessionRecord {
        upstream: "another".into(),
        ..upstream_session("elsewhere", T0 + 3600)
    };
    for s in [&someone_else, &elsewhere] {
        store.insert_upstream_session(s, &[]).await.unwrap();
    }
    let audit = [event(AuditKind::TokenRevoked, None)];
    let ended = store
        .delete_other_upstream_sessions("legacy", "Margaret@Example.com", "keep", &audit)
        .await
        .unwrap();
    assert_eq!(ended, 2, "the username matches whatever its case");
    for (digest, alive) in [
        ("keep", true),
        ("other-1", false),
        ("other-2", false),
        ("jane", true),
        ("elsewhere", true),
    ] {
        let found = store.find_upstream_session(digest).await.unwrap();
        assert_eq!(found.is_some(), alive, "{digest}");
    }
    let none = store
        .delete_other_upstream_sessions("legacy", "margaret@example.com", "keep", &audit)
        .await
        .unwrap();
    assert_eq!(none, 0);
    let revoked = store
        .audit_log(&credgate_core::model::AuditQuery {
            user_id: None,
            limit: 100,
        })
        .await
        .unwrap()
        .iter()
        .filter(|r| r.kind == AuditKind::TokenRevoked.as_str())
        .count();
    assert_eq!(revoked, 1, "audited only when sessions ended");
}

pub fn comparison(at: i64, route: &str, result: &str, kind: Option<&str>) -> ShadowComparison {
    ShadowComparison {
        at,
        dialect: "crayon".into(),
        route: route.into(),
        request_id: format!("req-{at}"),
        result: result.into(),
        kind: kind.map(str::to_owned),
        upstream_outcome: "ok".into(),
        upstream_status: 200,
        local_outcome: kind.unwrap_or("ok").into(),
        local_status: if kind.is_some() { 400 } else { 200 },
        fields: kind
            .map(|_| vec!["outcome".to_owned(), "status".to_owned()])
            .unwrap_or_default(),
        exchange: None,
        synced: result == "not_synced",
    }
}

pub async fn shadow_comparisons_bounded_and_filtered(store: &dyn Store) {
    let bounds = ShadowBounds {
        max_records: 4,
        oldest: T0,
    };
    let rows = [
        comparison(T0 - 5, "token", "agreement", None),
        comparison(T0, "token", "agreement", None),
        comparison(T0 + 1, "token", "not_synced", None),
        comparison(T0 + 2, "change_password", "divergence", Some("policy")),
        comparison(T0 + 3, "token", "divergence", Some("credentials")),
        comparison(T0 + 4, "change_password", "agreement", None),
    ];
    for row in &rows {
        store.record_shadow(row, bounds).await.unwrap();
    }
    // Older than `oldest` and beyond the four newest: gone.
    let all = store
        .shadow_comparisons(&ShadowQuery::default())
        .await
        .unwrap();
    let ats: Vec<i64> = all.iter().map(|r| r.comparison.at).collect();
    assert_eq!(ats, vec![T0 + 4, T0 + 3, T0 + 2, T0 + 1]);
    assert_eq!(all[1].comparison, rows[4]);
    let policy = ShadowQuery {
        kind: Some("policy".into()),
        ..ShadowQuery::default()
    };
    let found = store.shadow_comparisons(&policy).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].comparison.fields, vec!["outcome", "status"]);
    let query = ShadowQuery {
        route: Some("token".into()),
        since: Some(T0 + 2),
        limit: 10,
        ..ShadowQuery::default()
    };
    let found = store.shadow_comparisons(&query).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].comparison.kind.as_deref(), Some("credentials"));
    let tallies = store.shadow_tallies(T0 + 2).await.unwrap();
    assert_eq!(tallies.len(), 3, "{tallies:?}");
    assert!(tallies.iter().all(|t| t.count == 1));
    let synced: u64 = store
        .shadow_tallies(0)
        .await
        .unwrap()
        .iter()
        .map(|t| t.synced)
        .sum();
    assert_eq!(synced, 1);
}

pub async fn profile_entries_set_and_removed(store: &dyn Store) {
    use credgate_core::model::UserKey;
    let new = super::new_user("u-flag", "flagged@example.com");
    store
        .insert_user(&new, &event(AuditKind::UserCreated, Some("u-flag")))
        .await
        .unwrap();
    store
        .set_profile_entry("u-flag", "legacy_password_policy", Some("min_length"))
        .await
        .unwrap();
    let user = store
        .find_user(UserKey::Id("u-flag"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.profile["legacy_password_policy"], "min_length");
    store
        .set_profile_entry("u-flag", "legacy_password_policy", None)
        .await
        .unwrap();
    let user = store
        .find_user(UserKey::Id("u-flag"))
        .await
        .unwrap()
        .unwrap();
    assert!(user.profile.is_empty());
    assert!(matches!(
        store.set_profile_entry("nobody", "k", Some("v")).await,
        Err(StoreError::NotFound)
    ));
}
