//! The dashboard and alerting rules that ship in deploy/: the rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`), and every metric name the dashboard and the
//! rules use is one a real gateway exports, scraped after traffic that touches each of them
//! (a shadow-mode front adds the comparisons).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use credgate_server::upstream::UpstreamMode;

use crate::common::{Gateway, TracedBinary, ADMIN_TOKEN};
use crate::upstream_migrate::{
    crayon_token, front, legacy_backend, seed, upstream, AKANA_ID, CLIENT_ID,
};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// promtool, when installed; in CI it must be (`.ci/run` installs Debian's prometheus).
fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing in CI (apt-get install prometheus)"
        );
        eprintln!("skipped: promtool is not installed");
        return None;
    }
    Some("promtool")
}

#[test]
fn the_alerting_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let check = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(deploy("prometheus/alerts.yml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test = std::process::Command::new(promtool)
        .args(["test", "rules", "alerts.test.yml"])
        .current_dir(deploy("prometheus"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

/// Every `credgate_*` name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("credgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The expressions of the dashboard's panels and variables.
fn dashboard_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(deploy("grafana/credgate.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            names.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    names.extend(metric_names(&dashboard["templating"]["list"].to_string()));
    names
}

/// A flood of logins on one hashing thread with a 1 ms bound: some are shed.
async fn flood(gw: &Gateway) {
    gw.user("flood.user", "Flood-Gate-Pass-7").await;
    let logins = (0..200).map(|_| {
        let http = reqwest::Client::new();
        let url = gw.at("/v1/token");
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "flood.user"),
                    ("password", "Flood-Gate-Pass-7"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(logins).await;
    assert!(statuses.contains(&503), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_rules_use_is_exported() {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let mut wanted = metric_names(&rules);
    wanted.extend(dashboard_names());
    assert!(wanted.len() >= 10, "{wanted:?}");

    // Traffic touching every metric: a lazy migration through an upstream, a refused login
    // and a guessing limit, a password change, readiness, and a shed flood.
    let backend = legacy_backend().await;
    seed(
        &backend,
        "margaret@acmepaymentscorp.com",
        "Legacy-Pass-2019",
        AKANA_ID,
    )
    .await;
    let gw = front(upstream(&backend.url, UpstreamMode::Migrate, &[]), |s| {
        s.hash_threads = 1;
        s.hash_max_wait_ms = 1;
        // The flood's logins all hold a user budget at once; the guessing limit is met
        // through a client's secret instead.
        s.limits.user_failures = 100_000;
        s.limits.address_failures = 100_000;
        s.limits.client_failures = 2;
    })
    .await;
    let res = crayon_token(&gw, "margaret@acmepaymentscorp.com", "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 200);
    gw.user("dash.user", "Dash-Board-Pass-1").await;
    gw.login("dash.user", "wrong-password-guess").await;
    let mut refused = false;
    for _ in 0..4 {
        let res = gw
            .http
            .post(gw.at("/v1/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", "not-the-secret"),
            ])
            .send()
            .await
            .unwrap();
        refused |= res.status() == 429;
    }
    assert!(refused, "the client's guessing limit refuses");
    assert_eq!(
        gw.http.get(gw.at("/readyz")).send().await.unwrap().status(),
        200
    );
    flood(&gw).await;
    let other = gw.user("change.user", "Change-Me-Pass-1").await;
    let token = gw.token("change.user", "Change-Me-Pass-1").await;
    gw.change(&token, &other, "Change-Me-Pass-1", "Changed-Pass-22")
        .await;

    let scrape = scrape(&gw).await;
    let mut exported = exported_names(&scrape);
    exported.extend(shadow_front_names(&backend).await);
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{scrape}");
}

async fn scrape(gw: &Gateway) -> String {
    let res = gw.http.get(gw.at("/metrics")).bearer_auth(ADMIN_TOKEN);
    res.send().await.unwrap().text().await.unwrap()
}

/// The sample names of a Prometheus scrape.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// What a front in shadow mode exports once it has compared one login. The comparison runs
/// after the answer, so the scrape is polled until it shows (or a deadline passes).
async fn shadow_front_names(backend: &TracedBinary) -> BTreeSet<String> {
    let gw = front(
        upstream(&backend.url, UpstreamMode::Shadow, &["crayon"]),
        |_| {},
    )
    .await;
    let res = crayon_token(&gw, "margaret@acmepaymentscorp.com", "Legacy-Pass-2019").await;
    assert_eq!(res.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let scrape = scrape(&gw).await;
        let names = exported_names(&scrape);
        if names.contains("credgate_shadow_comparisons_total") {
            return names;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no shadow comparison was counted:\n{scrape}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
