//! Passthrough: a Crayon client talks to the front gateway, which owns no password and
//! translates each call into Akana's API on the legacy backend (a second credgate process).

use credgate_server::upstream::UpstreamMode;
use serde_json::{json, Value};

use crate::upstream_migrate::{
    crayon_change, crayon_token, front, front_users, legacy_backend, seed, upstream, AKANA_ID,
};

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
    let backend = legacy_backend().await;
    let email = "margaret@acmepaymentscorp.com";
    seed(&backend, email, "Legacy-Pass-2019", AKANA_ID).await;
    let gw = front(
        upstream(&backend.url, UpstreamMode::Passthrough, &["crayon"]),
        |_| {},
    )
    .await;

    // A wrong password at login is Crayon's wrong-password answer.
    let res = crayon_token(&gw, email, "Not-Her-Password-1").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant"})
    );

    let res = crayon_token(&gw, email, "Legacy-Pass-2019").await;
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
        "Legacy-Pass-2019",
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 403);

    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        "Legacy-Pass-2019",
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
    assert_eq!(
        akana_login(&backend.url, email, "Legacy-Pass-2019").await,
        401
    );
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
    let backend = legacy_backend().await;
    let email = "held.session@acmepaymentscorp.com";
    seed(&backend, email, "Legacy-Pass-2019", AKANA_ID).await;
    let gw = front(
        upstream(
            &backend.url,
            UpstreamMode::Passthrough,
            &["crayon", "oauth-style"],
        ),
        |_| {},
    )
    .await;
    let res = crayon_token(&gw, email, "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // The Crayon session, presented to the OAuth-style dialect bound to the same upstream.
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(&token)
        .json(&json!({"CurrentPassword": "Legacy-Pass-2019", "NewPassword": "Moved-Over-Pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        akana_login(&backend.url, email, "Legacy-Pass-2019").await,
        200,
        "nothing reached the backend"
    );
    // Where it was opened, it works.
    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        "Legacy-Pass-2019",
        "Brand-New-Pass-2024",
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_through_a_passthrough_upstream_draw_on_the_local_budget() {
    let backend = legacy_backend().await;
    let email = "margaret@acmepaymentscorp.com";
    seed(&backend, email, "Legacy-Pass-2019", AKANA_ID).await;
    let gw = front(
        upstream(&backend.url, UpstreamMode::Passthrough, &["crayon"]),
        |s| {
            s.limits.user_failures = 3;
            s.limits.address_failures = 1000;
        },
    )
    .await;
    for i in 0..3 {
        let res = crayon_token(&gw, email, &format!("Wrong-Guess-{i}")).await;
        assert_eq!(res.status(), 400);
    }
    // Refused before the upstream is asked, even with the right password.
    let res = crayon_token(&gw, email, "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
}
