//! Two gateway processes on one PostgreSQL: credentials, sessions, resets and races are
//! decided by the database, not by either process. Needs CREDGATE_TEST_POSTGRES_URL (set by
//! `.ci/postgres.sh`); fails in CI without it, skips with a reason elsewhere.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::TracedBinary;

const ADMIN: &str = "multi-instance-admin-token-0123";
/// The digest key every instance on one database shares (hex, 32 bytes).
pub const SHARED_DIGEST_KEY: &str =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A fresh database on the test server, or `None` (skip) outside CI when there is none.
pub fn fresh_database() -> Option<String> {
    let Ok(url) = std::env::var("CREDGATE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CREDGATE_TEST_POSTGRES_URL is required in CI (see .ci/postgres.sh)"
        );
        eprintln!("skipped: CREDGATE_TEST_POSTGRES_URL is not set (run: eval \"$(bash .ci/postgres.sh)\")");
        return None;
    };
    let name = format!(
        "credgate_m_{}",
        &credgate_core::token::digest(&format!("{:?}", std::time::Instant::now()))[..12]
    );
    let out = Command::new("psql")
        .arg(&url)
        .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Two gateways on `db`; token lookups are not cached, so revocations are seen at once.
async fn pair(db: &str) -> (TracedBinary, TracedBinary) {
    let env = |dir: &str| {
        vec![
            ("CREDGATE_DATABASE_URL", db.to_owned()),
            ("CREDGATE_TOKEN_CACHE_SECS", "0".to_owned()),
            ("CREDGATE_LOG_LEVEL", "info".to_owned()),
            ("CREDGATE_RESET__OUTBOX", format!("{dir}/outbox.jsonl")),
            // Instances sharing a database share the digest key of resets.
            ("CREDGATE_DIGEST_KEY", SHARED_DIGEST_KEY.to_owned()),
        ]
    };
    let a = TracedBinary::start_with(ADMIN, &env("outbox-a")).await;
    let b = TracedBinary::start_with(ADMIN, &env("outbox-b")).await;
    (a, b)
}

async fn login(
    http: &reqwest::Client,
    gw: &TracedBinary,
    user: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{}/v1/token", gw.url))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn token(http: &reqwest::Client, gw: &TracedBinary, user: &str, password: &str) -> String {
    let res = login(http, gw, user, password).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn change(
    http: &reqwest::Client,
    gw: &TracedBinary,
    token: &str,
    current: &str,
    new: &str,
) -> u16 {
    http.put(format!("{}/v1/users/me/password", gw.url))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_credentials_sessions_and_resets() {
    let Some(db) = fresh_database() else { return };
    let (a, b) = pair(&db).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/admin/users", a.url))
        .bearer_auth(ADMIN)
        .json(&json!({"username": "pat", "password": "Shared-Pass-One-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // A session from B dies when the password changes through A.
    let on_b = token(&http, &b, "pat", "Shared-Pass-One-1").await;
    let on_a = token(&http, &a, "pat", "Shared-Pass-One-1").await;
    assert_eq!(
        change(&http, &a, &on_a, "Shared-Pass-One-1", "Shared-Pass-Two-2").await,
        204
    );
    assert_eq!(
        login(&http, &b, "pat", "Shared-Pass-One-1").await.status(),
        400,
        "old password refused on B"
    );
    assert_eq!(
        login(&http, &b, "pat", "Shared-Pass-Two-2").await.status(),
        200
    );
    assert_eq!(
        change(&http, &b, &on_b, "Shared-Pass-Two-2", "Shared-Pass-Three-3").await,
        401,
        "revoked on B"
    );

    // A reset token used on A cannot be used again on B.
    let res = http
        .post(format!("{}/v1/password-resets", a.url))
        .json(&json!({"username": "pat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let outbox = a.dir.path().join("outbox-a/outbox.jsonl");
    let mut reset_token = None;
    for _ in 0..400 {
        if let Some(line) = std::fs::read_to_string(&outbox)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        {
            reset_token = serde_json::from_str::<Value>(&line).unwrap()["token"]
                .as_str()
                .map(str::to_owned);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let reset_token = reset_token.expect("reset delivered to A's outbox");
    let complete = |gw: &TracedBinary, new: &str| {
        http.post(format!("{}/v1/password-resets/complete", gw.url))
            .json(&json!({"username": "pat", "token": reset_token, "new_password": new}))
            .send()
    };
    assert_eq!(
        complete(&a, "Shared-Pass-Four-4").await.unwrap().status(),
        204
    );
    assert_eq!(
        complete(&b, "Shared-Pass-Five-5").await.unwrap().status(),
        400
    );
    assert_eq!(
        login(&http, &b, "pat", "Shared-Pass-Four-4").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_changes_across_two_instances_exactly_one_wins() {
    let Some(db) = fresh_database() else { return };
    let (a, b) = pair(&db).await;
    let http = reqwest::Client::new();
    http.post(format!("{}/admin/users", a.url))
        .bearer_auth(ADMIN)
        .json(&json!({"username": "quinn", "password": "Race-Start-Pass-1"}))
        .send()
        .await
        .unwrap();
    let session = token(&http, &a, "quinn", "Race-Start-Pass-1").await;
    let attempts = (0..20).map(|i| {
        let (http, gw, session) = (&http, if i % 2 == 0 { &a } else { &b }, session.clone());
        async move {
            change(
                http,
                gw,
                &session,
                "Race-Start-Pass-1",
                &format!("Race-Winner-Pass-{i}"),
            )
            .await
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [204, 400, 409, 429].contains(s)),
        "{statuses:?}"
    );
}
