//! Two-factor login: settings with the TOTP replay mark, and single-use login challenges.

use credgate_core::model::AuditKind;
use credgate_core::{LoginChallenge, SecretToken, Store, TwoFactor, TwoFactorMethod};

use super::{add_users, assert_not_found, event, kinds_for, T0};

fn totp() -> TwoFactor {
    TwoFactor {
        method: TwoFactorMethod::Totp,
        totp_secret: Some(SecretToken::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")),
        last_step: None,
    }
}

pub fn challenge(digest: &str, user_id: &str, created_at: i64) -> LoginChallenge {
    LoginChallenge {
        digest: digest.into(),
        user_id: user_id.into(),
        code_digest: Some(format!("code-of-{digest}")),
        dialect: "etapp".into(),
        app_digest: Some("app-digest".into()),
        client_id: None,
        created_at,
        expires_at: created_at + 300,
    }
}

/// Set, read back, replace and remove a setting; TOTP steps are claimed only forward, once.
pub async fn two_factor_settings(store: &dyn Store) {
    add_users(store, &["u-alice"]).await;
    let audit = event(AuditKind::TwoFactorSet, Some("u-alice"));
    assert_not_found(
        store
            .set_two_factor("u-nobody", Some(&totp()), &audit)
            .await,
        "an unknown user",
    );
    assert!(store.two_factor("u-alice").await.unwrap().is_none());
    assert!(
        !store.claim_totp_step("u-alice", 5).await.unwrap(),
        "no setting, no claim"
    );

    store
        .set_two_factor("u-alice", Some(&totp()), &audit)
        .await
        .unwrap();
    let read = store.two_factor("u-alice").await.unwrap().unwrap();
    assert_eq!(read.method, TwoFactorMethod::Totp);
    assert_eq!(
        read.totp_secret.unwrap().expose(),
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    );
    assert_eq!(read.last_step, None);
    assert!(store.claim_totp_step("u-alice", 10).await.unwrap());
    assert!(
        !store.claim_totp_step("u-alice", 10).await.unwrap(),
        "a replay"
    );
    assert!(
        !store.claim_totp_step("u-alice", 9).await.unwrap(),
        "an older step"
    );
    assert!(store.claim_totp_step("u-alice", 11).await.unwrap());
    let read = store.two_factor("u-alice").await.unwrap().unwrap();
    assert_eq!(read.last_step, Some(11));

    let code = TwoFactor {
        method: TwoFactorMethod::Code,
        totp_secret: None,
        last_step: None,
    };
    store
        .set_two_factor("u-alice", Some(&code), &audit)
        .await
        .unwrap();
    let read = store.two_factor("u-alice").await.unwrap().unwrap();
    assert_eq!(read.method, TwoFactorMethod::Code);
    assert!(read.totp_secret.is_none());
    assert!(
        !store.claim_totp_step("u-alice", 12).await.unwrap(),
        "a code user has no TOTP steps"
    );
    store.set_two_factor("u-alice", None, &audit).await.unwrap();
    assert!(store.two_factor("u-alice").await.unwrap().is_none());
    assert_eq!(
        kinds_for(store, "u-alice").await,
        [
            "two_factor_set",
            "two_factor_set",
            "two_factor_set",
            "user_created"
        ]
    );
}

/// Of concurrent claims of one step exactly one wins.
pub async fn totp_step_claimed_once(store: &dyn Store) {
    add_users(store, &["u-alice"]).await;
    let audit = event(AuditKind::TwoFactorSet, Some("u-alice"));
    store
        .set_two_factor("u-alice", Some(&totp()), &audit)
        .await
        .unwrap();
    let claim = || store.claim_totp_step("u-alice", 42);
    let (a, b, c, d) = tokio::join!(claim(), claim(), claim(), claim());
    let wins = [a, b, c, d]
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
}

/// A challenge is found by digest, replaced by the user's next one, swept when expired, taken
/// once (also under concurrent takes), and ended by a change of the user's setting.
pub async fn login_challenges(store: &dyn Store) {
    add_users(store, &["u-alice", "u-bob"]).await;
    let audit = [event(AuditKind::SecondFactorRequested, Some("u-alice"))];
    assert_not_found(
        store
            .insert_challenge(&challenge("c-nobody", "u-nobody", T0), &[])
            .await,
        "an unknown user",
    );
    let first = challenge("c-1", "u-alice", T0);
    store.insert_challenge(&first, &audit).await.unwrap();
    assert_eq!(store.find_challenge("c-1").await.unwrap(), Some(first));
    assert_eq!(store.find_challenge("c-unknown").await.unwrap(), None);

    store
        .insert_challenge(&challenge("c-bob", "u-bob", T0), &[])
        .await
        .unwrap();
    store
        .insert_challenge(&challenge("c-2", "u-alice", T0 + 10), &audit)
        .await
        .unwrap();
    assert_eq!(
        store.find_challenge("c-1").await.unwrap(),
        None,
        "the user's next challenge replaces it"
    );
    assert!(store.find_challenge("c-bob").await.unwrap().is_some());
    // Past bob's expiry, any insert sweeps it.
    store
        .insert_challenge(&challenge("c-3", "u-alice", T0 + 400), &[])
        .await
        .unwrap();
    assert_eq!(store.find_challenge("c-bob").await.unwrap(), None);

    let take = || store.take_challenge("c-3");
    let (a, b, c) = tokio::join!(take(), take(), take());
    let wins = [a, b, c]
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1, "taken once");
    assert_eq!(store.find_challenge("c-3").await.unwrap(), None);

    store
        .insert_challenge(&challenge("c-4", "u-alice", T0 + 500), &[])
        .await
        .unwrap();
    store
        .set_two_factor(
            "u-alice",
            None,
            &event(AuditKind::TwoFactorSet, Some("u-alice")),
        )
        .await
        .unwrap();
    assert_eq!(
        store.find_challenge("c-4").await.unwrap(),
        None,
        "a changed setting ends pending challenges"
    );
    assert!(kinds_for(store, "u-alice")
        .await
        .contains(&"second_factor_requested".to_owned()));
}
