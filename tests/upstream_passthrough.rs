//! Passthrough: a Crayon client talks to the front gateway, which owns no password and
//! translates each call into Akana's API on the legacy backend (a second credgate process).

use credgate_server::upstream::UpstreamMode;
use serde_json::{json, Value};

use crate::common::{start_with, Gateway, TracedBinary};
use crate::upstream_migrate::{
    access_token, backend_audit, crayon_change, crayon_token, front, front_users, legacy_backend,
    seed, upstream, AKANA_ID,
};

const LEGACY_PASSWORD: &str = "Legacy-Pass-2019";

/// A legacy Akana backend holding `email` (password [`LEGACY_PASSWORD`], Akana id [`AKANA_ID`]),
/// and a front passing the `inbound` dialects' requests through to it.
struct Scene {
    backend: TracedBinary,
    gw: Gateway,
    /// The backend's id for the user, for its audit trail.
    legacy_id: String,
}

async fn passthrough_scene(
    email: &str,
    inbound: &[&str],
    configure: impl FnOnce(&mut credgate_server::Settings),
) -> Scene {
    let backend = legacy_backend().await;
    let legacy_id = seed(&backend, email, LEGACY_PASSWORD, AKANA_ID).await;
    let gw = front(
        upstream(&backend.url, UpstreamMode::Passthrough, inbound),
        configure,
    )
    .await;
    Scene {
        backend,
        gw,
        legacy_id,
    }
}

async fn akana_login(url: &str, email: &str, password: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{url}/api/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crayon_change_password_changes_it_on_the_akana_backend() {
    let email = "margaret@acmepaymentscorp.com";
    let Scene { backend, gw, .. } = passthrough_scene(email, &["crayon"], |_| {}).await;

    // A wrong password at login is Crayon's wrong-password answer.
    let res = crayon_token(&gw, email, "Not-Her-Password-1").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant"})
    );

    let res = crayon_token(&gw, email, LEGACY_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    let token = body["accessToken"].as_str().unwrap().to_owned();

    // Akana's "old password is incorrect" comes back as Crayon's WrongOldPassword.
    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        "Not-Her-Password-1",
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["ErrorCode"],
        "WrongOldPassword"
    );
    // Another user's id is refused before anything is sent.
    let res = crayon_change(
        &gw,
        &token,
        "someone-else.acmepaymentscorp",
        LEGACY_PASSWORD,
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 403);

    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        LEGACY_PASSWORD,
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "true");

    // The password changed where it lives; the front keeps no user.
    assert_eq!(
        akana_login(&backend.url, email, "Brand-New-Pass-2024").await,
        200
    );
    assert_eq!(akana_login(&backend.url, email, LEGACY_PASSWORD).await, 401);
    assert!(front_users(&gw).await.is_empty());

    // A token the front never issued is Crayon's 401.
    let res = crayon_change(
        &gw,
        "made-up-token",
        AKANA_ID,
        "Brand-New-Pass-2024",
        "Other-New-Pass-2025",
    )
    .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_session_works_only_in_the_client_dialect_that_opened_it() {
    let email = "held.session@acmepaymentscorp.com";
    let Scene { backend, gw, .. } =
        passthrough_scene(email, &["crayon", "oauth-style"], |_| {}).await;
    let token = access_token(crayon_token(&gw, email, LEGACY_PASSWORD).await).await;
    // The Crayon session, presented to the OAuth-style dialect bound to the same upstream.
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(&token)
        .json(&json!({"CurrentPassword": LEGACY_PASSWORD, "NewPassword": "Moved-Over-Pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        akana_login(&backend.url, email, LEGACY_PASSWORD).await,
        200,
        "nothing reached the backend"
    );
    // Where it was opened, it works.
    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        LEGACY_PASSWORD,
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_through_a_passthrough_upstream_draw_on_the_local_budget() {
    let email = "margaret@acmepaymentscorp.com";
    let Scene {
        gw,
        backend: _legacy,
        ..
    } = passthrough_scene(email, &["crayon"], |s| {
        s.limits.user_failures = 3;
        s.limits.address_failures = 1000;
    })
    .await;
    for i in 0..3 {
        let res = crayon_token(&gw, email, &format!("Wrong-Guess-{i}")).await;
        assert_eq!(res.status(), 400);
    }
    // Refused before the upstream is asked, even with the right password.
    let res = crayon_token(&gw, email, LEGACY_PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}

/// The front's audit records once `ready` holds for them: a login's `login_succeeded` is
/// written just after its answer has gone out.
pub(crate) async fn front_audit_until(
    gw: &crate::common::Gateway,
    ready: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audit = front_audit(gw).await;
        if ready(&audit) || std::time::Instant::now() > deadline {
            return audit;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Audit records the front wrote (newest first), as (kind, detail).
pub(crate) async fn front_audit(gw: &crate::common::Gateway) -> Vec<(String, Value)> {
    let records: Vec<Value> = gw
        .http
        .get(gw.at("/admin/audit?limit=1000"))
        .bearer_auth(crate::common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    records
        .iter()
        .map(|r| (r["kind"].as_str().unwrap().to_owned(), r["detail"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_stop_guesses_before_the_upstream_sees_them_and_the_front_audits_them() {
    let email = "guessed.user@acmepaymentscorp.com";
    let Scene {
        backend,
        gw,
        legacy_id,
    } = passthrough_scene(email, &["crayon"], |s| {
        s.limits.user_failures = 3;
        s.limits.address_failures = 1000;
    })
    .await;
    for i in 0..9 {
        let res = crayon_token(&gw, email, &format!("Wrong-Guess-{i}")).await;
        let expected = if i < 3 { 400 } else { 429 };
        assert_eq!(res.status(), expected, "guess {i}");
    }
    // The legacy system saw the three guesses the budget allowed, no more.
    let seen = backend_audit(&backend, &legacy_id).await;
    let failures = seen.iter().filter(|k| *k == "login_failed").count();
    assert_eq!(failures, 3, "{seen:?}");
    // The front's own trail: each guess the upstream refused, naming it, then the refusals.
    let audit = front_audit(&gw).await;
    let refused_upstream: Vec<_> = audit
        .iter()
        .filter(|(k, d)| k == "login_failed" && d["upstream"] == "legacy-akana")
        .collect();
    assert_eq!(refused_upstream.len(), 3, "{audit:?}");
    assert!(refused_upstream
        .iter()
        .all(|(_, d)| d["username"] == email && d["reason"] == "refused_by_upstream"));
    let refusals = audit.iter().filter(|(k, _)| k == "attempt_refused").count();
    assert_eq!(refusals, 6, "{audit:?}");
    // Each session stored while the upstream checked a guess was closed at its refusal.
    let count = |kind: &str, reason: Option<&str>| {
        (audit.iter())
            .filter(|(k, d)| k == kind && reason.is_none_or(|r| d["reason"] == r))
            .count()
    };
    assert_eq!(count("token_issued", None), 3, "{audit:?}");
    assert_eq!(count("token_revoked", Some("invalid_credentials")), 3);
    // No secret in the trail.
    let printed = format!("{audit:?}");
    assert!(!printed.contains("Wrong-Guess"), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_budget_stops_guesses_at_many_users_before_the_upstream() {
    let victim = "spray.target@acmepaymentscorp.com";
    let Scene {
        backend,
        gw,
        legacy_id,
    } = passthrough_scene(victim, &["crayon"], |s| {
        s.limits.user_failures = 1000;
        s.limits.address_failures = 4;
    })
    .await;
    for i in 0..4 {
        let res = crayon_token(&gw, &format!("other{i}@acmepaymentscorp.com"), "Spray-1").await;
        assert_eq!(res.status(), 400);
    }
    // The address is spent: the victim's right password never reaches the upstream.
    let res = crayon_token(&gw, victim, LEGACY_PASSWORD).await;
    assert_eq!(res.status(), 429);
    let seen = backend_audit(&backend, &legacy_id).await;
    assert!(!seen.iter().any(|k| k.starts_with("login")), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_login_and_change_are_audited_with_the_upstream_name() {
    let email = "audited.user@acmepaymentscorp.com";
    let Scene {
        gw,
        backend: _legacy,
        ..
    } = passthrough_scene(email, &["crayon"], |_| {}).await;
    let token = access_token(crayon_token(&gw, email, LEGACY_PASSWORD).await).await;
    let res = crayon_change(&gw, &token, AKANA_ID, LEGACY_PASSWORD, "Brand-New-2024-x").await;
    assert_eq!(res.status(), 200);
    let audit = front_audit_until(&gw, |a| a.iter().any(|(k, _)| k == "login_succeeded")).await;
    let kinds: Vec<&str> = audit
        .iter()
        .filter(|(_, d)| d["upstream"] == "legacy-akana")
        .map(|(k, _)| k.as_str())
        .collect();
    for kind in ["login_succeeded", "token_issued", "password_changed"] {
        assert!(kinds.contains(&kind), "{kind}: {audit:?}");
    }
    let printed = format!("{audit:?}");
    assert!(!printed.contains(LEGACY_PASSWORD) && !printed.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_on_one_replica_works_on_the_other() {
    let Some(db) = crate::multi_instance::fresh_database() else {
        return;
    };
    let email = "replicated.user@acmepaymentscorp.com";
    let shared = db.clone();
    let Scene { backend, gw: a, .. } =
        passthrough_scene(email, &["crayon"], |s| s.database_url = shared).await;
    let settings = |db: String| {
        let bound = upstream(&backend.url, UpstreamMode::Passthrough, &["crayon"]);
        move |s: &mut credgate_server::Settings, _: &std::path::Path| {
            s.upstreams = vec![bound];
            s.database_url = db;
        }
    };
    let token = access_token(crayon_token(&a, email, LEGACY_PASSWORD).await).await;
    // A second replica (its own process state, the same database) serves the session.
    let b = start_with(settings(db.clone())).await;
    let res = crayon_change(&b, &token, AKANA_ID, LEGACY_PASSWORD, "Brand-New-2024-x").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        akana_login(&backend.url, email, "Brand-New-2024-x").await,
        200
    );
    // A restart keeps it too: a fresh front on the same database.
    drop(a);
    let c = start_with(settings(db.clone())).await;
    let res = crayon_change(
        &c,
        &token,
        AKANA_ID,
        "Brand-New-2024-x",
        "Third-Pass-2025-y",
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        akana_login(&backend.url, email, "Third-Pass-2025-y").await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_change_ends_the_users_other_passthrough_sessions() {
    let email = "many.sessions@acmepaymentscorp.com";
    let other = "someone.else@acmepaymentscorp.com";
    let other_id = "0a1b2c3d-0000-4000-8000-000000000001.acmepaymentscorp";
    let Scene { backend, gw, .. } = passthrough_scene(email, &["crayon"], |_| {}).await;
    seed(&backend, other, "Other-Pass-2019", other_id).await;
    let acting = access_token(crayon_token(&gw, email, LEGACY_PASSWORD).await).await;
    // Another device of the same user, and another user.
    let second = access_token(crayon_token(&gw, email, LEGACY_PASSWORD).await).await;
    let theirs = access_token(crayon_token(&gw, other, "Other-Pass-2019").await).await;
    // A live session with a wrong current password is Crayon's WrongOldPassword (400); an
    // ended one is 401.
    let probe = |token: String, id: &'static str| {
        let gw = &gw;
        async move {
            crayon_change(gw, &token, id, "Not-The-Password-1", "Whatever-Pass-2024")
                .await
                .status()
        }
    };
    assert_eq!(probe(second.clone(), AKANA_ID).await, 400);

    let res = crayon_change(&gw, &acting, AKANA_ID, LEGACY_PASSWORD, "Brand-New-2024-x").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        probe(second, AKANA_ID).await,
        401,
        "the other session ended"
    );
    assert_eq!(
        probe(acting, AKANA_ID).await,
        400,
        "the acting session is kept"
    );
    assert_eq!(
        probe(theirs, other_id).await,
        400,
        "another user's session is untouched"
    );
    let audit = front_audit(&gw).await;
    assert!(
        audit
            .iter()
            .any(|(k, d)| k == "token_revoked" && d["reason"] == "password_changed"),
        "{audit:?}"
    );
}
