//! Prometheus `/metrics`: the exposition parses, and counters move with traffic, labelled with
//! the dialect and the canonical outcome. Exact counts come from a real binary (its own
//! process, so no other test's traffic); in-process gateways share one recorder.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{self, TracedBinary, ADMIN_TOKEN};

/// One sample line of the text exposition.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses Prometheus text format 0.0.4 strictly enough to catch a broken exposition: HELP
/// and TYPE lines, `name{label="value",...} value` samples, every sample's family typed.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("comment without a name: {line}"));
            assert!(is_metric_name(name), "bad name in {line}");
            match kind {
                Some("HELP") => {}
                Some("TYPE") => {
                    let t = tail.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type in {line}"
                    );
                    typed.insert(name.to_owned(), t.to_owned());
                }
                _ => panic!("unknown comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample without a value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name, parse_labels(body, line))
            }
        };
        assert!(is_metric_name(name), "bad sample name in {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains_key(*f)))
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no TYPE line for {name}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line}"));
        assert!(is_metric_name(key), "bad label name in {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("dangling escape in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

/// The value of the one sample named `name` whose labels include `want` (0 when absent).
pub fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "several samples match {name} {want:?}: {found:?}"
    );
    found.first().map(|s| s.value).unwrap_or(0.0)
}

pub async fn scrape(http: &reqwest::Client, url: &str, token: Option<&str>) -> Vec<Sample> {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse_exposition(&res.text().await.unwrap())
}

const CLIENT_BASIC: &str = "Basic YTFiMmMzZDQtY3JheW9uLWNsaWVudDpDbDFlbnRTM2NyZXQ=";

/// A Crayon password login: (status, body).
async fn crayon_login(http: &reqwest::Client, base: &str, password: &str) -> (u16, Value) {
    let res = http
        .post(format!("{base}/api/v1/connect/token"))
        .header("Authorization", CLIENT_BASIC)
        .form(&[
            ("grant_type", "password"),
            ("username", "metric.user@example.com"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_tell_wrong_passwords_from_refusals_per_dialect() {
    let admin = "metrics-admin-token-0123456789";
    let gw =
        TracedBinary::start_with(admin, &[("CREDGATE_LIMITS__USER_FAILURES", "3".into())]).await;
    let http = reqwest::Client::new();
    let user = common::admin_create(
        &gw.url,
        admin,
        "/admin/users",
        json!({"username": "metric.user@example.com", "password": "Orchid-Meter-Pass-7"}),
    )
    .await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    common::admin_create(
        &gw.url,
        admin,
        "/admin/clients",
        json!({"client_id": "a1b2c3d4-crayon-client", "client_secret": "Cl1entS3cret"}),
    )
    .await;
    let (status, token) = crayon_login(&http, &gw.url, "Orchid-Meter-Pass-7").await;
    assert_eq!(status, 200);
    let change = http
        .put(format!("{}/api/v1/users/{user_id}/changepassword", gw.url))
        .bearer_auth(token["accessToken"].as_str().unwrap())
        .json(&json!({"Id": user_id, "OldPassword": "Wrong-Meter-Pass-0", "NewPassword": "Orchid-Meter-Pass-8"}))
        .send()
        .await
        .unwrap();
    assert_eq!(change.status(), 400);
    for wrong in ["Wrong-Meter-Pass-1", "Wrong-Meter-Pass-2"] {
        assert_eq!(crayon_login(&http, &gw.url, wrong).await.0, 400);
    }
    // Past the per-user limit (3 failures): refused before bcrypt, even with the right password.
    assert_eq!(
        crayon_login(&http, &gw.url, "Orchid-Meter-Pass-7").await.0,
        429
    );

    let metrics_url = format!("{}/metrics", gw.url);
    let anonymous = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the main listener's /metrics needs the admin token"
    );
    let s = scrape(&http, &metrics_url, Some(admin)).await;

    let login = |outcome| {
        value(
            &s,
            "credgate_logins_total",
            &[("dialect", "crayon"), ("outcome", outcome)],
        )
    };
    assert_eq!(login("ok"), 1.0);
    assert_eq!(login("invalid_credentials"), 2.0);
    assert_eq!(login("rate_limited"), 1.0);
    assert_eq!(
        value(
            &s,
            "credgate_password_changes_total",
            &[("dialect", "crayon"), ("outcome", "invalid_credentials")]
        ),
        1.0
    );
    let requests = |status, outcome| {
        value(
            &s,
            "credgate_http_requests_total",
            &[
                ("dialect", "crayon"),
                ("route", "token"),
                ("status", status),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(requests("200", "ok"), 1.0);
    assert_eq!(requests("400", "invalid_credentials"), 2.0);
    assert_eq!(requests("429", "rate_limited"), 1.0);
    assert_eq!(
        value(
            &s,
            "credgate_rate_limited_total",
            &[("dialect", "crayon"), ("scope", "user")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "credgate_http_request_duration_seconds_count",
            &[("dialect", "crayon"), ("route", "token")]
        ),
        4.0
    );
    assert_eq!(
        value(
            &s,
            "credgate_http_requests_total",
            &[
                ("dialect", "admin"),
                ("route", "/admin/users"),
                ("status", "201"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    // Routes are templates, never raw paths: nothing user-specific in any label.
    assert!(s.iter().all(|x| x
        .labels
        .values()
        .all(|v| !v.contains("metric.user") && !v.contains(&user_id))));
    // bcrypt: the user's hash, the client secret, four verifies; nothing left queued.
    assert!(value(&s, "credgate_hash_wait_seconds_count", &[]) >= 6.0);
    assert_eq!(value(&s, "credgate_hash_queue_depth", &[]), 0.0);
    assert!(s.iter().any(
        |x| x.name == "credgate_http_request_duration_seconds_bucket"
            && x.labels.get("le").map(String::as_str) == Some("+Inf")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_metrics_listener_serves_without_the_admin_token() {
    let metrics_addr = common::free_addr();
    let addr = metrics_addr.clone();
    let gw = common::start_with(move |s, _| s.metrics.listen = Some(addr)).await;
    gw.user("listener.user", "Orchid-Listener-Pass-3").await;
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let s = scrape(&gw.http, &metrics_url, None).await;
    assert!(
        value(
            &s,
            "credgate_http_requests_total",
            &[
                ("dialect", "admin"),
                ("route", "/admin/users"),
                ("status", "201")
            ]
        ) >= 1.0
    );
    // Only /metrics there; and no longer on the main listener.
    let other = gw
        .http
        .get(format!("http://{metrics_addr}/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let main = gw
        .http
        .get(gw.at("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_gateways_share_one_recorder_and_counters_only_grow() {
    let (a, b) = (common::start().await, common::start().await);
    let before = scrape(&a.http, &a.at("/metrics"), Some(ADMIN_TOKEN)).await;
    let labels = [
        ("dialect", "native"),
        ("route", "/v1/token"),
        ("status", "400"),
        ("outcome", "invalid_request"),
    ];
    let count = |s: &[Sample]| value(s, "credgate_http_requests_total", &labels);
    let res = b
        .http
        .post(b.at("/v1/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Gateway b's request shows in a's scrape: one recorder for the process.
    let after = scrape(&a.http, &a.at("/metrics"), Some(ADMIN_TOKEN)).await;
    assert!(count(&after) >= count(&before) + 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_switched_off() {
    let gw = common::start_with(|s, _| s.metrics.enabled = false).await;
    let res = gw
        .http
        .get(gw.at("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
