//! Examples from shadowed traffic with a cookie session: Crafter clients (session cookie,
//! double-submit CSRF, passwords in fields named `current` and `new`) in front of the Akana
//! legacy process. The written examples log in first and present the session as Crafter's
//! clients do, and a fresh gateway passes them.

use std::time::{Duration, Instant};

use credgate_server::upstream::UpstreamMode;
use serde_json::{json, Value};

use crate::common::{start_with, Gateway, ADMIN_TOKEN};
use crate::upstream_migrate::{front, legacy_backend, seed, upstream, AKANA_ID};
use crate::upstream_shadow::written_example;

const EMAIL: &str = "grace@acmepaymentscorp.com";
const LEGACY_PASSWORD: &str = "Legacy-Pass-2019";
const NEW_PASSWORD: &str = "Cookie-Changed-2025";
const CRAFTER: &str = "/studio/api/1/services/api/1";

/// Logs in as a Crafter client; the session cookie's value.
async fn crafter_login(gw: &Gateway, password: &str) -> Option<String> {
    let res = gw
        .http
        .post(gw.at(&format!("{CRAFTER}/security/login.json")))
        .json(&json!({"username": EMAIL, "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("JSESSIONID="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    (res.status() == 200).then_some(cookie).flatten()
}

/// A Crafter change with the session cookie and the double-submit CSRF pair.
async fn crafter_change(gw: &Gateway, session: &str, current: &str, new: &str) -> u16 {
    gw.http
        .post(gw.at(&format!("{CRAFTER}/user/change-password.json")))
        .header(
            "Cookie",
            format!("JSESSIONID={session}; XSRF-TOKEN=chosen-by-client"),
        )
        .header("X-XSRF-TOKEN", "chosen-by-client")
        .json(&json!({"username": EMAIL, "current": current, "new": new}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .args(args)
        .env_remove("CREDGATE_CONFIG")
        .env_remove("CREDGATE_ADMIN_TOKEN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_session_change_becomes_an_example_that_logs_in_first_and_replays() {
    let backend = legacy_backend().await;
    seed(&backend, EMAIL, LEGACY_PASSWORD, AKANA_ID).await;
    let gw = front(
        upstream(&backend.url, UpstreamMode::Shadow, &["crafter"]),
        |_| {},
    )
    .await;
    let session = crafter_login(&gw, LEGACY_PASSWORD).await.expect("login");
    assert_eq!(
        crafter_change(&gw, &session, LEGACY_PASSWORD, NEW_PASSWORD).await,
        200
    );
    // Both comparisons stored (after the answers went out).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let res = gw
            .http
            .get(gw.at("/admin/shadow/exchanges?dialect=crafter"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let stored: Value = res.json().await.unwrap();
        if stored.as_array().unwrap().len() == 2 {
            // Crafter names its passwords `current` and `new`: replaced all the same.
            let text = stored.to_string();
            for secret in [LEGACY_PASSWORD, NEW_PASSWORD, session.as_str(), EMAIL] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "{stored}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let (ok, printed) = cli(&[
        "shadow",
        "examples",
        folder,
        "--dialect",
        "crafter",
        "--target",
        &gw.url,
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert!(ok, "{printed}");
    assert!(printed.contains("2 examples written"), "{printed}");
    let change = written_example(&dir.path().join("crafter/examples"), "change_password");
    assert!(change.contains("cookie:JSESSIONID"), "{change}");
    assert!(change.contains("X-XSRF-TOKEN"), "{change}");

    let fresh = start_with(|_, _| {}).await;
    let (ok, printed) = cli(&[
        "replay",
        "--target",
        &fresh.url,
        "--admin-token",
        ADMIN_TOKEN,
        "--examples",
        folder,
        "--dialect",
        "crafter",
    ]);
    assert!(ok, "{printed}");
    assert!(printed.ends_with("2 passed, 0 failed\n"), "{printed}");
}
