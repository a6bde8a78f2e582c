//! Lazy migration from a legacy backend: a second credgate process serving only the Akana
//! dialect holds the legacy users; the front gateway, in `migrate` mode, verifies unknown users
//! against it over Akana's own API and takes them over.

use credgate_server::upstream::{UpstreamAuthSettings, UpstreamMode, UpstreamSettings};
use serde_json::{json, Value};

use crate::common::{start_with, Gateway, TracedBinary, ADMIN_TOKEN};

pub const BACKEND_ADMIN: &str = "legacy-backend-admin-token-0123";
pub const AKANA_ID: &str = "eceffbe3-3386-495b-80d3-7526f0eb0edc.acmepaymentscorp";
pub const CLIENT_ID: &str = "crayon-front-client";
pub const CLIENT_SECRET: &str = "Crayon-Front-S3cret";

/// The legacy system: the real binary, Akana dialect only.
pub async fn legacy_backend() -> TracedBinary {
    let disabled = r#"["crafter","crayon","etapp","oauth-style"]"#.to_owned();
    TracedBinary::start_with(
        BACKEND_ADMIN,
        &[
            ("CREDGATE_DIALECTS__DISABLED", disabled),
            ("CREDGATE_LOG_LEVEL", "info".to_owned()),
        ],
    )
    .await
}

/// Creates a legacy user known to Akana clients by `akana_id`; returns the backend's user id.
pub async fn seed(
    backend: &TracedBinary,
    username: &str,
    password: &str,
    akana_id: &str,
) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/admin/users", backend.url))
        .bearer_auth(BACKEND_ADMIN)
        .json(&json!({"username": username, "password": password, "aliases": {"akana": akana_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Audit kinds the backend recorded for one of its users (each upstream call leaves some).
pub async fn backend_audit(backend: &TracedBinary, user_id: &str) -> Vec<String> {
    let records: Vec<Value> = reqwest::Client::new()
        .get(format!(
            "{}/admin/audit?user_id={user_id}&limit=1000",
            backend.url
        ))
        .bearer_auth(BACKEND_ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    records
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

pub fn upstream(url: &str, mode: UpstreamMode, inbound: &[&str]) -> UpstreamSettings {
    UpstreamSettings {
        name: "legacy-akana".into(),
        dialect: "akana".into(),
        base_url: url.to_owned(),
        mode,
        timeout_ms: 5_000,
        retries: 1,
        auth: UpstreamAuthSettings::default(),
        inbound: inbound.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The front gateway, with a Crayon API client registered.
pub async fn front(
    upstream: UpstreamSettings,
    configure: impl FnOnce(&mut credgate_server::Settings),
) -> Gateway {
    let gw = start_with(|s, _| {
        s.upstreams = vec![upstream];
        configure(s);
    })
    .await;
    let res = gw
        .admin_post(
            "/admin/clients",
            json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        .await;
    assert_eq!(res.status(), 201);
    gw
}

/// A Crayon password grant at the front.
pub async fn crayon_token(gw: &Gateway, username: &str, password: &str) -> reqwest::Response {
    gw.http
        .post(gw.at("/api/v1/connect/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("scope", "CustomerApi"),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn crayon_change(
    gw: &Gateway,
    token: &str,
    id: &str,
    old: &str,
    new: &str,
) -> reqwest::Response {
    gw.http
        .put(gw.at(&format!("/api/v1/users/{id}/changepassword")))
        .bearer_auth(token)
        .json(&json!({"Id": id, "OldPassword": old, "NewPassword": new}))
        .send()
        .await
        .unwrap()
}

pub async fn front_users(gw: &Gateway) -> Vec<Value> {
    gw.http
        .get(gw.at("/admin/users?limit=100"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn access_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crayon_client_migrates_an_akana_user_on_first_login_then_stays_local() {
    let backend = legacy_backend().await;
    let legacy_id = seed(
        &backend,
        "margaret@acmepaymentscorp.com",
        "Legacy-Pass-2019",
        AKANA_ID,
    )
    .await;
    let short_id = seed(
        &backend,
        "otto@acmepaymentscorp.com",
        "Otto-Pw-9",
        "0a0b0c0d.acmepaymentscorp",
    )
    .await;
    // Today's policy is stricter than the legacy system's was.
    let gw = front(upstream(&backend.url, UpstreamMode::Migrate, &[]), |s| {
        s.policy.min_length = 12
    })
    .await;
    assert!(front_users(&gw).await.is_empty());

    let token =
        access_token(crayon_token(&gw, "margaret@acmepaymentscorp.com", "Legacy-Pass-2019").await)
            .await;
    let users = front_users(&gw).await;
    assert_eq!(users.len(), 1);
    let user = &users[0];
    assert_eq!(user["username"], "margaret@acmepaymentscorp.com");
    assert_eq!(user["aliases"], json!({"akana": AKANA_ID}));
    assert_eq!(
        user["profile"],
        json!({}),
        "the legacy password meets the policy"
    );
    let id = user["id"].as_str().unwrap().to_owned();
    let kinds: Vec<Value> = gw
        .audit(&id)
        .await
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert!(kinds.contains(&json!("user_migrated")), "{kinds:?}");
    assert_eq!(
        backend_audit(&backend, &legacy_id)
            .await
            .iter()
            .filter(|k| *k == "login_succeeded")
            .count(),
        1
    );

    // Recorded for operators (the recorder is shared by in-process gateways: at least).
    let samples = crate::metrics::scrape(&gw.http, &gw.at("/metrics"), Some(ADMIN_TOKEN)).await;
    let migrated = [("upstream", "legacy-akana")];
    assert!(crate::metrics::value(&samples, "credgate_users_migrated_total", &migrated) >= 1.0);
    let login_ok = [
        ("upstream", "legacy-akana"),
        ("operation", "login"),
        ("outcome", "ok"),
    ];
    assert!(crate::metrics::value(&samples, "credgate_upstream_calls_total", &login_ok) >= 1.0);

    // The change is served locally, then everything is.
    let res = crayon_change(&gw, &token, &id, "Legacy-Pass-2019", "Brand-New-Pass-2024").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "true");
    access_token(crayon_token(&gw, "margaret@acmepaymentscorp.com", "Brand-New-Pass-2024").await)
        .await;
    let res = crayon_token(&gw, "margaret@acmepaymentscorp.com", "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant"})
    );
    // Akana clients of the front know the user by the legacy id.
    let res = gw
        .http
        .post(gw.at("/api/login"))
        .json(&json!({"email": "margaret@acmepaymentscorp.com", "password": "Brand-New-Pass-2024"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["userFDN"], AKANA_ID);
    let legacy_calls = backend_audit(&backend, &legacy_id).await;
    assert_eq!(
        legacy_calls
            .iter()
            .filter(|k| *k == "login_succeeded" || *k == "login_failed")
            .count(),
        1,
        "the upstream is not called again for a migrated user: {legacy_calls:?}"
    );

    // A legacy password below today's policy still migrates, flagged; the next change must meet it.
    let token =
        access_token(crayon_token(&gw, "otto@acmepaymentscorp.com", "Otto-Pw-9").await).await;
    let otto = front_users(&gw)
        .await
        .into_iter()
        .find(|u| u["username"] == "otto@acmepaymentscorp.com")
        .unwrap();
    assert_eq!(otto["profile"]["legacy_password_policy"], "min_length");
    let otto_id = otto["id"].as_str().unwrap();
    let res = crayon_change(&gw, &token, otto_id, "Otto-Pw-9", "Otto-Pw-10").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["ErrorCode"],
        "PasswordPolicy"
    );
    let res = crayon_change(&gw, &token, otto_id, "Otto-Pw-9", "Otto-Longer-Pass-10").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        backend_audit(&backend, &short_id)
            .await
            .iter()
            .filter(|k| *k == "login_succeeded")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_legacy_passwords_and_outages_never_create_a_user() {
    let mut backend = legacy_backend().await;
    let legacy_id = seed(
        &backend,
        "margaret@acmepaymentscorp.com",
        "Legacy-Pass-2019",
        AKANA_ID,
    )
    .await;
    let gw = front(upstream(&backend.url, UpstreamMode::Migrate, &[]), |_| {}).await;

    // Refused by the legacy system: the dialect's wrong-password answer, no user.
    let res = crayon_token(&gw, "margaret@acmepaymentscorp.com", "Not-Her-Password-1").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant"})
    );
    assert!(front_users(&gw).await.is_empty());
    assert!(backend_audit(&backend, &legacy_id)
        .await
        .contains(&"login_failed".to_owned()));

    // Readiness names the upstream; only the database makes the instance unready.
    let ready = gw.http.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "upstreams": {"legacy-akana": "reachable"}})
    );

    // The legacy system is down: 503 in the client's dialect, never "wrong password", no user.
    backend.stop_and_collect();
    let ready = gw.http.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "degraded", "failing": ["upstream:legacy-akana"],
               "upstreams": {"legacy-akana": "unreachable"}})
    );
    let res = crayon_token(&gw, "margaret@acmepaymentscorp.com", "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(
        res.json::<Value>().await.unwrap()["ErrorCode"],
        "ServiceUnavailable"
    );
    let res = gw
        .http
        .post(gw.at("/api/login"))
        .json(&json!({"email": "margaret@acmepaymentscorp.com", "password": "Legacy-Pass-2019"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.text().await.unwrap(), "Service Unavailable");
    assert!(front_users(&gw).await.is_empty());
    let samples = crate::metrics::scrape(&gw.http, &gw.at("/metrics"), Some(ADMIN_TOKEN)).await;
    let down = [
        ("upstream", "legacy-akana"),
        ("operation", "login"),
        ("outcome", "unavailable"),
    ];
    assert!(crate::metrics::value(&samples, "credgate_upstream_calls_total", &down) >= 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_secrets_never_reach_the_front_gateways_logs_or_database() {
    let backend = legacy_backend().await;
    seed(
        &backend,
        "leaky@acmepaymentscorp.com",
        "Legacy-Leak-Pw-77",
        AKANA_ID,
    )
    .await;
    // The front as the real binary at TRACE, its upstream configured from the environment.
    let upstreams = format!(
        r#"[{{name="legacy-akana",dialect="akana",base_url="{}",mode="migrate",auth={{client_id="cg",client_secret="Upstream-Secret-Zq9",app_key="Upstream-Key-Wx4"}}}}]"#,
        backend.url
    );
    let admin = "front-leak-admin-token-0123456789";
    let mut gw = TracedBinary::start_with(admin, &[("CREDGATE_UPSTREAMS", upstreams)]).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/admin/clients", gw.url))
        .bearer_auth(admin)
        .json(&json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let token = |password: &'static str| {
        http.post(format!("{}/api/v1/connect/token", gw.url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", "leaky@acmepaymentscorp.com"),
                ("password", password),
            ])
            .send()
    };
    let res = token("Legacy-Leak-Wrong-1").await.unwrap();
    assert_eq!(res.status(), 400);
    let res = token("Legacy-Leak-Pw-77").await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "migrated through the configured upstream"
    );
    let access = res.json::<Value>().await.unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (logs, stored) = gw.stop_and_collect();
    assert!(
        logs.contains("legacy-akana"),
        "the upstream is named in the logs"
    );
    for secret in [
        "Legacy-Leak-Pw-77",
        "Legacy-Leak-Wrong-1",
        "Upstream-Secret-Zq9",
        "Upstream-Key-Wx4",
        CLIENT_SECRET,
        access.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        assert!(!stored.contains(secret), "{secret} in the database");
    }
}
