//! Resets through an upstream: a second credgate process plays the legacy vendor (Crafter
//! only, which mails its reset tokens to its own outbox); the front binds OAuth-style clients
//! to it, in shadow mode (the local copy follows, the outcomes are compared) and in passthrough
//! mode (the same forwarding, no local copy).

use std::time::{Duration, Instant};

use credgate_server::upstream::{UpstreamAuthSettings, UpstreamMode, UpstreamSettings};
use serde_json::{json, Value};

use crate::common::{start_with, Gateway, TracedBinary};
use crate::upstream_migrate::{front, front_users, BACKEND_ADMIN, CLIENT_ID, CLIENT_SECRET};
use crate::upstream_shadow::{admin_get, route_summary};

const EMAIL: &str = "rosalind@acmepaymentscorp.com";
const LEGACY_PASSWORD: &str = "Legacy-Pass-2019";
/// Accepted by the legacy system; shorter than the front's local policy wants.
const NEW_PASSWORD: &str = "Reset-Pass-2025";
const CRAFTER: &str = "/studio/api/1/services/api/1";

/// The legacy system: the real binary, Crafter only, its reset mails in `outbox.jsonl`.
async fn crafter_backend() -> TracedBinary {
    let disabled = r#"["akana","crayon","etapp","oauth-style"]"#.to_owned();
    let backend = TracedBinary::start_with(
        BACKEND_ADMIN,
        &[
            ("CREDGATE_DIALECTS__DISABLED", disabled),
            ("CREDGATE_RESET__OUTBOX", "outbox.jsonl".to_owned()),
        ],
    )
    .await;
    let res = reqwest::Client::new()
        .post(format!("{}/admin/users", backend.url))
        .bearer_auth(BACKEND_ADMIN)
        .json(&json!({"username": EMAIL, "password": LEGACY_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    backend
}

fn bound_to(backend: &TracedBinary, mode: UpstreamMode) -> UpstreamSettings {
    UpstreamSettings {
        name: "legacy-crafter".into(),
        dialect: "crafter".into(),
        base_url: backend.url.clone(),
        mode,
        timeout_ms: 5_000,
        retries: 1,
        auth: UpstreamAuthSettings::default(),
        inbound: vec!["oauth-style".into()],
    }
}

/// The reset token the legacy system mailed to `EMAIL` (the `n`th, from 1), once delivered.
async fn mailed_token(backend: &TracedBinary, n: usize) -> String {
    let path = backend.dir.path().join("outbox.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tokens: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["username"] == EMAIL)
            .filter_map(|v| v["token"].as_str().map(str::to_owned))
            .collect();
        if let Some(token) = tokens.get(n - 1) {
            return token.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no reset mail from the legacy system"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn legacy_login(backend: &TracedBinary, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}{CRAFTER}/security/login.json", backend.url))
        .json(&json!({"username": EMAIL, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An OAuth-style grant at `gw` (the Crayon client `front` registers serves here too).
async fn oauth_token(gw: &Gateway, form: &[(&str, &str)]) -> reqwest::Response {
    gw.http
        .post(gw.at("/auth/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn user_token(gw: &Gateway, password: &str) -> reqwest::Response {
    let form = [
        ("grant_type", "password"),
        ("username", EMAIL),
        ("password", password),
    ];
    oauth_token(gw, &form).await
}

async fn access(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// One OAuth-style reset call, with the client token its reset routes require.
async fn reset_call(gw: &Gateway, client: &str, path: &str, body: Value) -> reqwest::Response {
    gw.http
        .post(gw.at(&format!("/auth/password/{path}")))
        .bearer_auth(client)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A password change with a user session: 401 once the session has ended.
async fn change_status(gw: &Gateway, session: &str) -> u16 {
    gw.http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(session)
        .json(
            &json!({"CurrentPassword": "Not-The-Password-1", "NewPassword": "Whatever-Pass-2026"}),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_through_the_shadow_front_is_made_by_the_legacy_side_and_followed_locally() {
    let mut backend = crafter_backend().await;
    let shared = tempfile::tempdir().unwrap();
    // PostgreSQL where the test kit has it (CI), else a SQLite file.
    let db = crate::multi_instance::fresh_database()
        .unwrap_or_else(|| shared.path().join("front.db").display().to_string());
    let key = shared.path().join("digest.key");
    let (db2, key2) = (db.clone(), key.clone());
    let gw = front(bound_to(&backend, UpstreamMode::Shadow), move |s| {
        s.policy.min_length = 20;
        s.database_url = db2;
        s.digest_key_file = key2;
    })
    .await;
    // The user logs in through the front (synced), then forgets the password.
    let session = access(user_token(&gw, LEGACY_PASSWORD).await).await;
    assert_eq!(front_users(&gw).await.len(), 1);
    let client = access(oauth_token(&gw, &[("grant_type", "client_credentials")]).await).await;

    let res = reset_call(&gw, &client, "reset", json!({"Username": EMAIL})).await;
    assert_eq!(res.status(), 204);
    // The legacy system mailed its own token; the front sent none of its own.
    let token = mailed_token(&backend, 1).await;
    assert!(
        !gw.path("outbox.jsonl").exists(),
        "the front mailed a token"
    );
    let res = reset_call(
        &gw,
        &client,
        "reset/token/validate",
        json!({"Username": EMAIL, "Token": token}),
    )
    .await;
    assert_eq!(res.status(), 204);
    // A token the legacy side never issued is refused there, in OAuth-style's words.
    let res = reset_call(
        &gw,
        &client,
        "reset/token/process",
        json!({"Username": EMAIL, "Token": "made-up-token", "NewPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["Errors"][0]["Code"],
        "InvalidToken"
    );
    let res = reset_call(
        &gw,
        &client,
        "reset/token/process",
        json!({"Username": EMAIL, "Token": token, "NewPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());

    // Compared (the local copy is synced before the comparison is stored): the request is an
    // agreement, a token check cannot be made here, the accepted short password is policy.
    route_summary(&gw, "oauth-style", "request_reset", |r| {
        r["agreements"] == 1
    })
    .await;
    route_summary(&gw, "oauth-style", "validate_reset", |r| {
        r["not_synced"] == 1
    })
    .await;
    let row = route_summary(&gw, "oauth-style", "process_reset", |r| {
        r["divergences"]["policy"] == 1 && r["not_synced"] == 1
    })
    .await;
    assert_eq!(row["users_synced"], 1, "{row}");
    let divergences = admin_get(&gw, "/admin/shadow/divergences?dialect=oauth-style").await;
    assert_eq!(divergences[0]["upstream_outcome"], "ok");
    assert_eq!(divergences[0]["local_outcome"], "policy_violation");
    let recorded = admin_get(&gw, "/admin/shadow/exchanges?dialect=oauth-style")
        .await
        .to_string();
    for secret in [
        token.as_str(),
        NEW_PASSWORD,
        LEGACY_PASSWORD,
        &client,
        &session,
    ] {
        assert!(!recorded.contains(secret), "a secret in {recorded}");
    }

    // Changed where it lives, and here (checked before any login through the front, which
    // would sync it too): the local login takes the new password and the user's sessions
    // ended; the legacy login and the front's (answered by the legacy side) take it as well.
    assert_eq!(gw.login(EMAIL, NEW_PASSWORD).await.status(), 200);
    assert_eq!(gw.login(EMAIL, LEGACY_PASSWORD).await.status(), 400);
    assert_eq!(
        change_status(&gw, &session).await,
        401,
        "the old session ended"
    );
    assert_eq!(legacy_login(&backend, NEW_PASSWORD).await, 200);
    assert_eq!(legacy_login(&backend, LEGACY_PASSWORD).await, 401);
    assert_eq!(user_token(&gw, NEW_PASSWORD).await.status(), 200);
    let users = front_users(&gw).await;
    assert_eq!(users[0]["profile"]["legacy_password_policy"], "min_length");
    let audit = admin_get(&gw, "/admin/audit?limit=1000").await;
    let reset = (audit.as_array().unwrap().iter())
        .filter(|r| r["kind"] == "password_reset")
        .count();
    assert_eq!(reset, 2, "the forwarded reset and the local sync: {audit}");
    assert!(!audit.to_string().contains(&token));

    // Cut-over: the front alone, on the same database, takes the new password.
    backend.stop_and_collect();
    drop(gw);
    let alone = start_with(move |s, _| {
        s.database_url = db;
        s.digest_key_file = key;
    })
    .await;
    assert_eq!(user_token(&alone, NEW_PASSWORD).await.status(), 200);
    assert_eq!(user_token(&alone, LEGACY_PASSWORD).await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_through_a_passthrough_front_ends_the_users_sessions_there() {
    let backend = crafter_backend().await;
    let gw = front(bound_to(&backend, UpstreamMode::Passthrough), |_| {}).await;
    let session = access(user_token(&gw, LEGACY_PASSWORD).await).await;
    let client = access(oauth_token(&gw, &[("grant_type", "client_credentials")]).await).await;
    let res = reset_call(&gw, &client, "reset", json!({"Username": EMAIL})).await;
    assert_eq!(res.status(), 204);
    let token = mailed_token(&backend, 1).await;
    let res = reset_call(
        &gw,
        &client,
        "reset/token/process",
        json!({"Username": EMAIL, "Token": token, "NewPassword": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(legacy_login(&backend, NEW_PASSWORD).await, 200);
    assert_eq!(change_status(&gw, &session).await, 401, "the session ended");
    // The front keeps no user and no comparison in passthrough.
    assert!(front_users(&gw).await.is_empty());
    assert_eq!(user_token(&gw, NEW_PASSWORD).await.status(), 200);
    let summary = admin_get(&gw, "/admin/shadow/summary").await;
    assert_eq!(summary["routes"], json!([]));
}
