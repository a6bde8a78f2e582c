//! Replicas on PostgreSQL hear of each other's changes through LISTEN/NOTIFY: a password
//! changed on A ends B's cached sessions within a second, with `token_cache_secs` left at its
//! default (5 s). Needs CREDGATE_TEST_POSTGRES_URL, like `multi_instance`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::TracedBinary;
use crate::multi_instance::{fresh_database, SHARED_DIGEST_KEY};

const ADMIN: &str = "notify-replicas-admin-token-0123";
const OLD: &str = "Replica-Pass-One-1";
const NEW: &str = "Replica-Pass-Two-2";

async fn replica(db: &str) -> TracedBinary {
    // token_cache_secs is not set: the default applies.
    let env = vec![
        ("CREDGATE_DATABASE_URL", db.to_owned()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
        ("CREDGATE_DIGEST_KEY", SHARED_DIGEST_KEY.to_owned()),
    ];
    TracedBinary::start_with(ADMIN, &env).await
}

/// Akana's session cookie from a login on `gw`.
async fn akana_session(http: &reqwest::Client, gw: &TracedBinary, user: &str) -> String {
    let res = http
        .post(format!("{}/api/login", gw.url))
        .json(&json!({"email": user, "password": OLD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("AtmoAuthToken_"))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned()
}

async fn status(http: &reqwest::Client, gw: &TracedBinary, cookie: &str) -> u16 {
    http.get(format!("{}/api/login/status", gw.url))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_ends_cached_sessions_on_the_other_within_a_second() {
    let Some(db) = fresh_database() else { return };
    let a = replica(&db).await;
    let b = replica(&db).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/admin/users", a.url))
        .bearer_auth(ADMIN)
        .json(&json!({"username": "nora", "password": OLD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let on_b = akana_session(&http, &b, "nora").await;
    // B now holds the session (and its user) in its cache, for up to token_cache_secs.
    assert_eq!(status(&http, &b, &on_b).await, 200);
    assert_eq!(status(&http, &b, &on_b).await, 200);

    let token = http
        .post(format!("{}/v1/token", a.url))
        .form(&[
            ("grant_type", "password"),
            ("username", "nora"),
            ("password", OLD),
        ])
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = http
        .put(format!("{}/v1/users/me/password", a.url))
        .bearer_auth(&token)
        .json(&json!({"current_password": OLD, "new_password": NEW}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let changed_at = Instant::now();

    // Polled with a deadline: B must refuse the session well before its cache entry expires.
    let deadline = changed_at + Duration::from_secs(1);
    let mut last = 200;
    while Instant::now() < deadline {
        last = status(&http, &b, &on_b).await;
        if last == 401 {
            break;
        }
    }
    assert_eq!(
        last,
        401,
        "B still served the session {:?} after the change on A",
        changed_at.elapsed()
    );
    // And the new password works on B at once (no stale user or credential there).
    let again = http
        .post(format!("{}/api/login", b.url))
        .json(&json!({"email": "nora", "password": NEW}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}
