//! Every shipped dialect as an upstream, end to end: a legacy credgate process serving all five
//! dialects, and front gateways calling it in each vendor's API (bearer, cookie + session CSRF,
//! cookie + double submit, app key, client Basic), in passthrough and migrate mode; and resets
//! of users not migrated yet forwarded to the vendors that have a reset by username.

use credgate_server::upstream::{UpstreamAuthSettings, UpstreamMode, UpstreamSettings};
use serde_json::{json, Value};

use crate::common::TracedBinary;
use crate::upstream_migrate::{crayon_change, crayon_token, front, front_users, BACKEND_ADMIN};

const LEGACY_CLIENT: &str = "credgate-at-legacy";
const LEGACY_SECRET: &str = "Legacy-Client-S3cret";
const LEGACY_APP_KEY: &str = "legacy-etna-app-key-42";
const DIALECTS: [&str; 5] = ["akana", "crafter", "crayon", "etapp", "oauth-style"];

async fn admin_post(backend: &TracedBinary, path: &str, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", backend.url))
        .bearer_auth(BACKEND_ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{path}");
    res.json().await.unwrap_or(Value::Null)
}

/// The legacy system, serving every dialect, knowing credgate as an API client and an app.
async fn backend() -> TracedBinary {
    let backend =
        TracedBinary::start_with(BACKEND_ADMIN, &[("CREDGATE_LOG_LEVEL", "info".to_owned())]).await;
    admin_post(
        &backend,
        "/admin/clients",
        json!({"client_id": LEGACY_CLIENT, "client_secret": LEGACY_SECRET}),
    )
    .await;
    admin_post(&backend, "/admin/apps", json!({"key": LEGACY_APP_KEY})).await;
    backend
}

fn upstream(url: &str, dialect: &str, mode: UpstreamMode) -> UpstreamSettings {
    UpstreamSettings {
        name: format!("legacy-{dialect}"),
        dialect: dialect.into(),
        base_url: url.into(),
        mode,
        timeout_ms: 5_000,
        retries: 1,
        auth: UpstreamAuthSettings {
            client_id: Some(LEGACY_CLIENT.into()),
            client_secret: Some(credgate_core::SecretToken::new(LEGACY_SECRET)),
            app_key: Some(credgate_core::SecretToken::new(LEGACY_APP_KEY)),
        },
        inbound: match mode {
            UpstreamMode::Passthrough | UpstreamMode::Shadow => vec!["crayon".into()],
            UpstreamMode::Migrate => vec![],
        },
    }
}

/// A native password grant on the legacy system: whether the password is the one it holds.
async fn legacy_accepts(backend: &TracedBinary, username: &str, password: &str) -> bool {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/token", backend.url))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    res.status() == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_serves_as_a_passthrough_and_a_migrate_upstream() {
    let backend = backend().await;
    for dialect in DIALECTS {
        let username = format!("legacy.{dialect}@example.com");
        let akana_id = format!("{}.acmepaymentscorp", dialect.replace('-', ""));
        let created = admin_post(
            &backend,
            "/admin/users",
            json!({"username": username, "password": "Legacy-Pass-2019", "aliases": {"akana": akana_id}}),
        )
        .await;
        let legacy_id = created["id"].as_str().unwrap().to_owned();

        // Passthrough: the Crayon client's change lands on the legacy system, in its dialect.
        let gw = front(
            upstream(&backend.url, dialect, UpstreamMode::Passthrough),
            |_| {},
        )
        .await;
        let res = crayon_token(&gw, &username, "Legacy-Pass-2019").await;
        assert_eq!(res.status(), 200, "{dialect}");
        let token = res.json::<Value>().await.unwrap()["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        // The id the upstream knows: Akana's login names it; Crayon's is the client's to know.
        let id = match dialect {
            "akana" => akana_id.clone(),
            "crayon" => legacy_id.clone(),
            _ => username.clone(),
        };
        let res = crayon_change(&gw, &token, &id, "Wrong-Pass-0000", "Brand-New-Pass-2024").await;
        assert_eq!(res.status(), 400, "{dialect}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["ErrorCode"],
            "WrongOldPassword",
            "{dialect}"
        );
        let res = crayon_change(&gw, &token, &id, "Legacy-Pass-2019", "Brand-New-Pass-2024").await;
        assert_eq!(
            res.status(),
            200,
            "{dialect}: {}",
            res.text().await.unwrap()
        );
        assert!(
            legacy_accepts(&backend, &username, "Brand-New-Pass-2024").await,
            "{dialect}"
        );
        assert!(
            !legacy_accepts(&backend, &username, "Legacy-Pass-2019").await,
            "{dialect}"
        );
        assert!(front_users(&gw).await.is_empty(), "{dialect}");

        // Migrate: the first login verifies against the legacy system's login in its dialect.
        let gw = front(
            upstream(&backend.url, dialect, UpstreamMode::Migrate),
            |_| {},
        )
        .await;
        let res = crayon_token(&gw, &username, "Brand-New-Pass-2024").await;
        assert_eq!(res.status(), 200, "{dialect}");
        let users = front_users(&gw).await;
        assert_eq!(users.len(), 1, "{dialect}");
        assert_eq!(users[0]["username"], username.as_str());
        let expected_aliases = if dialect == "akana" {
            json!({"akana": akana_id})
        } else {
            json!({})
        };
        assert_eq!(users[0]["aliases"], expected_aliases, "{dialect}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_for_a_user_not_migrated_is_the_legacy_systems_own_reset() {
    let backend = backend().await;
    for dialect in ["crafter", "oauth-style"] {
        let username = format!("forgetful.{dialect}@example.com");
        admin_post(
            &backend,
            "/admin/users",
            json!({"username": username, "password": "Legacy-Pass-2019"}),
        )
        .await;
        let gw = front(
            upstream(&backend.url, dialect, UpstreamMode::Migrate),
            |_| {},
        )
        .await;
        let res = gw
            .http
            .post(gw.at("/v1/password-resets"))
            .json(&json!({"username": username}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "{dialect}");
        // The legacy system issued its reset (its outbox is what mails the user).
        let outbox = backend.dir.path().join("data/reset-outbox.jsonl");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&outbox).unwrap_or_default();
            if text.contains(&username) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{dialect}: no reset at the legacy system"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(front_users(&gw).await.is_empty(), "{dialect}");
    }
}
