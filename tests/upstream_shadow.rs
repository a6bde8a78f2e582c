//! Shadow mode: a second credgate process plays the legacy vendor (Akana only); the front, in
//! shadow mode with a stricter local policy, lets it answer Crayon clients, keeps its own copy
//! of the users in sync and reports where its own answer would have differed.

use std::time::{Duration, Instant};

use credgate_server::upstream::UpstreamMode;
use serde_json::{json, Value};

use crate::common::{start_with, Gateway, ADMIN_TOKEN};
use crate::upstream_migrate::{
    access_token, crayon_change, crayon_token, front, front_users, legacy_backend, seed, upstream,
    AKANA_ID,
};

const EMAIL: &str = "margaret@acmepaymentscorp.com";
const LEGACY_PASSWORD: &str = "Legacy-Pass-2019";

pub(crate) async fn admin_get(gw: &Gateway, path: &str) -> Value {
    let res = gw
        .http
        .get(gw.at(path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

/// The summary row of `dialect`'s `route`, once `until` holds for it (comparisons run after
/// the answer).
pub(crate) async fn route_summary(
    gw: &Gateway,
    dialect: &str,
    route: &str,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let summary = admin_get(gw, "/admin/shadow/summary").await;
        let row = summary["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["dialect"] == dialect && r["route"] == route)
            .cloned()
            .unwrap_or(Value::Null);
        if until(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "{route}: {summary}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shadow_front(url: &str) -> credgate_server::upstream::UpstreamSettings {
    upstream(url, UpstreamMode::Shadow, &["crayon"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_side_answers_credgate_syncs_and_reports_policy_divergences() {
    let backend = legacy_backend().await;
    seed(&backend, EMAIL, LEGACY_PASSWORD, AKANA_ID).await;
    // Today's local policy is stricter than the legacy system's.
    let gw = front(shadow_front(&backend.url), |s| s.policy.min_length = 20).await;
    let (token_route, change_route) = ("token", "change_password");

    // A wrong password for a user credgate does not hold yet: the legacy answer, not_synced.
    let res = crayon_token(&gw, EMAIL, "Not-Her-Password-1").await;
    assert_eq!(res.status(), 400);
    route_summary(&gw, "crayon", token_route, |r| r["not_synced"] == 1).await;
    assert!(front_users(&gw).await.is_empty());

    // The legacy side accepts: the user is synced (fresh hash, alias, policy flag).
    let token = access_token(crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await).await;
    let users = front_users(&gw).await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(
        users[0]["aliases"],
        json!({"akana": AKANA_ID, "crayon": AKANA_ID})
    );
    assert_eq!(users[0]["profile"]["legacy_password_policy"], "min_length");
    let row = route_summary(&gw, "crayon", token_route, |r| r["users_synced"] == 1).await;
    assert_eq!(row["not_synced"], 2, "{row}");

    // Both refuse a wrong password: an agreement.
    let res = crayon_token(&gw, EMAIL, "Not-Her-Password-2").await;
    assert_eq!(res.status(), 400);
    route_summary(&gw, "crayon", token_route, |r| r["agreements"] == 1).await;
    // The session issued while the legacy side checked that guess (credgate holds the user now)
    // was revoked at its refusal.
    let audit = crate::upstream_passthrough::front_audit(&gw).await;
    let kinds: Vec<_> = (audit.iter().rev())
        .filter(|(k, _)| k.starts_with("token_") || k.starts_with("login_"))
        .map(|(k, d)| format!("{k}:{}", d["reason"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            "login_failed:refused_by_upstream",
            "login_succeeded:",
            "token_issued:",
            "token_issued:",
            "login_failed:refused_by_upstream",
            "token_revoked:invalid_credentials"
        ],
        "{audit:?}"
    );
    // An accepted login of a user credgate holds: its session was issued while the legacy side
    // checked the password, and its `login_succeeded` follows the answer.
    let again = access_token(crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await).await;
    let audit = crate::upstream_passthrough::front_audit_until(&gw, |a| {
        a.iter().filter(|(k, _)| k == "login_succeeded").count() == 2
    })
    .await;
    assert_eq!(
        (&audit[0].0, &audit[1].0),
        (&"login_succeeded".into(), &"token_issued".into())
    );
    route_summary(&gw, "crayon", token_route, |r| r["agreements"] == 2).await;
    assert_ne!(again, token);

    // A change the legacy side accepts and local policy refuses: made there, a policy divergence.
    let res = crayon_change(&gw, &token, AKANA_ID, LEGACY_PASSWORD, "Short-Pass-2024").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let row = route_summary(&gw, "crayon", change_route, |r| {
        r["divergences"]["policy"] == 1
    })
    .await;
    assert_eq!(row["ready"], false);
    let divergences = admin_get(&gw, "/admin/shadow/divergences?kind=policy").await;
    let d = &divergences[0];
    assert_eq!(
        (d["upstream_outcome"].clone(), d["local_outcome"].clone()),
        (json!("ok"), json!("policy_violation"))
    );
    assert_eq!(d["upstream_status"], 200);
    assert_eq!(d["local_status"], 400);
    assert!(d["fields"].as_array().unwrap().contains(&json!("rules")));
    let printed = divergences.to_string();
    for secret in [LEGACY_PASSWORD, "Short-Pass-2024", token.as_str()] {
        assert!(!printed.contains(secret), "{printed}");
    }
    // The operator's report says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .args([
            "shadow",
            "report",
            "--target",
            &gw.url,
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .env_remove("CREDGATE_CONFIG")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report
            .contains("crayon/change_password: compared 1, agreements 0, divergences 1 (policy=1)"),
        "{report}"
    );
    assert!(
        report.contains("crayon/token: compared 4, agreements 2"),
        "{report}"
    );
    // Filters: another dialect has none.
    assert_eq!(
        admin_get(&gw, "/admin/shadow/divergences?dialect=etapp").await,
        json!([])
    );
    // The local copy followed the change (the comparison is stored after the sync): the
    // native API, answered locally, takes the new password, and the flag names the rule.
    assert_eq!(gw.login(EMAIL, "Short-Pass-2024").await.status(), 200);
    let users = front_users(&gw).await;
    assert_eq!(users[0]["profile"]["legacy_password_policy"], "min_length");
    // The session that made the change still works (it is kept by the sync).
    let res = crayon_change(
        &gw,
        &token,
        AKANA_ID,
        "Short-Pass-2024",
        "Another-Pass-2025",
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_side_stopped_gives_the_dialects_503_and_records_unavailable() {
    let mut backend = legacy_backend().await;
    seed(&backend, EMAIL, LEGACY_PASSWORD, AKANA_ID).await;
    let gw = front(shadow_front(&backend.url), |_| {}).await;
    access_token(crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await).await;
    backend.stop_and_collect();
    let res = crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await;
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap()["ErrorCode"],
        "ServiceUnavailable"
    );
    route_summary(&gw, "crayon", "token", |r| {
        r["divergences"]["unavailable"] == 1
    })
    .await;
    let d = admin_get(&gw, "/admin/shadow/divergences?kind=unavailable").await;
    assert_eq!(d[0]["upstream_status"], 503);
    assert_eq!(
        d[0]["local_outcome"], "ok",
        "credgate would have answered alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_over_keeps_sessions_and_synced_users_log_in_alone() {
    let mut backend = legacy_backend().await;
    seed(&backend, EMAIL, LEGACY_PASSWORD, AKANA_ID).await;
    let shared = tempfile::tempdir().unwrap();
    let db = shared.path().join("front.db").display().to_string();
    let key = shared.path().join("digest.key");
    let (db2, key2) = (db.clone(), key.clone());
    let shadow = front(shadow_front(&backend.url), move |s| {
        s.database_url = db2;
        s.digest_key_file = key2;
    })
    .await;
    let token = access_token(crayon_token(&shadow, EMAIL, LEGACY_PASSWORD).await).await;

    // The legacy process stops; the front restarts without the upstream on the same database.
    backend.stop_and_collect();
    drop(shadow);
    let alone = start_with(move |s, _| {
        s.database_url = db;
        s.digest_key_file = key;
    })
    .await;
    assert!(front_users(&alone).await.len() == 1);
    // The session opened before the switch still works.
    let res = crayon_change(
        &alone,
        &token,
        AKANA_ID,
        LEGACY_PASSWORD,
        "After-Cutover-2025",
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // The synced user logs in alone, with the current password.
    let res = gw_token_status(&alone, "After-Cutover-2025").await;
    assert_eq!(res, 200);
    assert_eq!(gw_token_status(&alone, LEGACY_PASSWORD).await, 400);
}

async fn gw_token_status(gw: &Gateway, password: &str) -> u16 {
    // Crayon needs its API client, registered on the first start (same database).
    crayon_token(gw, EMAIL, password).await.status().as_u16()
}

fn credgate_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .args(args)
        .env_remove("CREDGATE_CONFIG")
        .env_remove("CREDGATE_ADMIN_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_exchanges_become_examples_that_replay_passes_on_a_fresh_gateway() {
    use crate::upstream_migrate::CLIENT_SECRET;
    let backend = legacy_backend().await;
    seed(&backend, EMAIL, LEGACY_PASSWORD, AKANA_ID).await;
    let gw = front(shadow_front(&backend.url), |_| {}).await;
    // Refused and accepted logins, before and after the user is synced, and a change.
    assert_eq!(
        crayon_token(&gw, EMAIL, "Not-Her-Password-1")
            .await
            .status(),
        400
    );
    let token = access_token(crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await).await;
    assert_eq!(
        crayon_token(&gw, EMAIL, "Not-Her-Password-2")
            .await
            .status(),
        400
    );
    let again = access_token(crayon_token(&gw, EMAIL, LEGACY_PASSWORD).await).await;
    let res = crayon_change(&gw, &token, AKANA_ID, LEGACY_PASSWORD, "Changed-Pass-2025").await;
    assert_eq!(res.status(), 200);
    route_summary(&gw, "crayon", "token", |r| r["compared"] == 4).await;
    route_summary(&gw, "crayon", "change_password", |r| r["compared"] == 1).await;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let out = credgate_cli(&[
        "shadow",
        "examples",
        folder,
        "--dialect",
        "crayon",
        "--target",
        &gw.url,
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("5 examples written; left out: 0 diverging, 0 with a token the upstream issued, 0 with a session the dialect cannot open"),
        "{printed}"
    );

    // The change made with a session logs in first and presents the session it captured.
    let change = written_example(
        &dir.path().join("crayon/examples"),
        "shadow-change_password-200",
    );
    assert!(change.contains("[[before]]"), "{change}");
    assert!(change.contains("Bearer {{ cg_access }}"), "{change}");

    // No secret and no identity of the traffic in the files.
    let mut texts = String::new();
    for entry in std::fs::read_dir(dir.path().join("crayon/examples")).unwrap() {
        texts.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    let encoded_email = EMAIL.replace('@', "%40");
    for secret in [
        LEGACY_PASSWORD,
        "Not-Her-Password-1",
        "Not-Her-Password-2",
        "Changed-Pass-2025",
        CLIENT_SECRET,
        token.as_str(),
        again.as_str(),
        EMAIL,
        encoded_email.as_str(),
        AKANA_ID,
    ] {
        assert!(!texts.contains(secret), "{secret} in {texts}");
    }
    // The recorded form in the admin API holds no secret either.
    let stored = admin_get(&gw, "/admin/shadow/exchanges?dialect=crayon")
        .await
        .to_string();
    for secret in [
        LEGACY_PASSWORD,
        "Changed-Pass-2025",
        CLIENT_SECRET,
        token.as_str(),
    ] {
        assert!(!stored.contains(secret), "{secret} in {stored}");
    }

    // A fresh gateway answers them alone, as the legacy system did.
    let fresh = start_with(|_, _| {}).await;
    let out = credgate_cli(&[
        "replay",
        "--target",
        &fresh.url,
        "--admin-token",
        ADMIN_TOKEN,
        "--examples",
        folder,
        "--dialect",
        "crayon",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.ends_with("5 passed, 0 failed\n"), "{printed}");
}

/// The text of the example file in `folder` whose name contains `part` (it must be written).
pub(crate) fn written_example(folder: &std::path::Path, part: &str) -> String {
    let path = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(part))
        .unwrap_or_else(|| panic!("no example named *{part}* in {}", folder.display()));
    std::fs::read_to_string(path).unwrap()
}
