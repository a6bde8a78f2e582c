//! Guessing limits under concurrency, against the real binary: many simultaneous guesses at one
//! secret (at bcrypt cost 10, so they overlap) get at most the limit's number of checks, on
//! SQLite and on PostgreSQL with two instances; the right secret is then refused. Counted
//! through the audit trail: every checked wrong guess leaves one `login_failed` (or
//! `password_reset_failed`) record; refusals leave `attempt_refused`.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::common::{admin_create, TracedBinary};

const ADMIN: &str = "guess-limits-admin-token-0123";
const RIGHT: &str = "Right-Pass-Volley-1";

/// A client that opens a new connection for every request: each guess is its own connection.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The binary at bcrypt cost 10, with `env` on top.
async fn gateway(env: &[(&str, String)]) -> TracedBinary {
    let mut all = vec![
        ("CREDGATE_BCRYPT_COST", "10".to_owned()),
        ("CREDGATE_HASH_THREADS", "2".to_owned()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
        ("CREDGATE_LIMITS__USER_FAILURES", "5".to_owned()),
        ("CREDGATE_LIMITS__ADDRESS_FAILURES", "100000".to_owned()),
    ];
    all.extend(env.iter().cloned());
    TracedBinary::start_with(ADMIN, &all).await
}

async fn audit(base: &str) -> Vec<Value> {
    http()
        .get(format!("{base}/admin/audit?limit=100000"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn count(records: &[Value], kind: &str, pred: impl Fn(&Value) -> bool) -> usize {
    records
        .iter()
        .filter(|r| r["kind"] == kind && pred(r))
        .count()
}

async fn login(base: &str, user: &str, password: &str) -> u16 {
    http()
        .post(format!("{base}/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `n` simultaneous wrong passwords for `user`, spread over `bases`; the statuses.
async fn password_burst(bases: &[&str], user: &str, n: usize) -> Vec<u16> {
    join_all((0..n).map(|i| async move {
        login(bases[i % bases.len()], user, &format!("Wrong-Guess-{i}")).await
    }))
    .await
}

/// At most `limit` wrong passwords were checked (each answered 400 and audited), the rest
/// were refused (429) before bcrypt, and the right password is refused too.
async fn assert_burst_held(bases: &[&str], user_id: &str, statuses: &[u16], limit: usize) {
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, statuses.len(), "{statuses:?}");
    let records = audit(bases[0]).await;
    let audited = count(&records, "login_failed", |r| r["user_id"] == user_id);
    eprintln!(
        "burst of {}: {checked} checked, {refused} refused",
        statuses.len()
    );
    assert!(
        audited <= limit && checked <= limit,
        "{audited} bcrypt checks, limit {limit}"
    );
    for base in bases {
        assert_eq!(login(base, "burst", RIGHT).await, 429, "locked out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_wrong_passwords_get_at_most_the_limit_of_checks_on_sqlite() {
    let gw = gateway(&[]).await;
    let user = admin_create(
        &gw.url,
        ADMIN,
        "/admin/users",
        json!({"username": "burst", "password": RIGHT}),
    )
    .await;
    let statuses = password_burst(&[&gw.url], "burst", 48).await;
    assert_burst_held(&[&gw.url], user["id"].as_str().unwrap(), &statuses, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgresql_share_one_budget_under_bursts() {
    let Some(db) = crate::multi_instance::fresh_database() else {
        return;
    };
    let env = |outbox: &str| {
        vec![
            ("CREDGATE_DATABASE_URL", db.clone()),
            ("CREDGATE_RESET__OUTBOX", format!("{outbox}/outbox.jsonl")),
            (
                "CREDGATE_DIGEST_KEY",
                crate::multi_instance::SHARED_DIGEST_KEY.to_owned(),
            ),
        ]
    };
    let (a, b) = (gateway(&env("a")).await, gateway(&env("b")).await);
    let bases = [a.url.as_str(), b.url.as_str()];
    let user = admin_create(
        &a.url,
        ADMIN,
        "/admin/users",
        json!({"username": "burst", "password": RIGHT}),
    )
    .await;
    let statuses = password_burst(&bases, "burst", 48).await;
    assert_burst_held(&bases, user["id"].as_str().unwrap(), &statuses, 5).await;

    // One-time code guesses through both instances: one budget of 10 per address.
    admin_create(&a.url, ADMIN, "/admin/apps", json!({"key": "et-app-key"})).await;
    let statuses = code_burst(&bases, 120).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    eprintln!("code guesses over two instances: {checked} checked of 120");
    assert!(checked <= 10, "{checked} code lookups, budget 10");
    assert!(
        statuses.iter().all(|s| [400, 429].contains(s)),
        "{statuses:?}"
    );
}

/// `n` simultaneous Et-App code guesses, spread over `bases`; the statuses.
async fn code_burst(bases: &[&str], n: usize) -> Vec<u16> {
    join_all((0..n).map(|i| async move {
        http()
            .post(format!(
                "{}/api/v1.0/users/password/reset/code",
                bases[i % bases.len()]
            ))
            .header("Et-App-Key", "et-app-key")
            .json(&json!({"Code": format!("{:08}", i * 7919)}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_code_guesses_stay_within_the_budget() {
    let gw = gateway(&[("CREDGATE_BCRYPT_COST", "4".to_owned())]).await;
    admin_create(&gw.url, ADMIN, "/admin/apps", json!({"key": "et-app-key"})).await;
    let statuses = code_burst(&[&gw.url], 300).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    eprintln!("code guesses: {checked} checked of 300");
    assert!(checked <= 10, "{checked} code lookups, budget 10");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        300 - checked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_answers_are_limited_and_the_right_one_is_then_refused() {
    let gw = gateway(&[]).await;
    let user = admin_create(
        &gw.url,
        ADMIN,
        "/admin/users",
        json!({"username": "quinn", "password": RIGHT}),
    )
    .await;
    let id = user["id"].as_str().unwrap();
    admin_create(&gw.url, ADMIN, "/admin/apps", json!({"key": "et-app-key"})).await;
    let res = http()
        .put(format!("{}/admin/users/{id}/security-answer", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"question": "First pet?", "answer": "Rex the Dog"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let answer = |answer: String| {
        let url = format!("{}/api/v1.0/users/password/reset", gw.url);
        async move {
            http()
                .post(url)
                .header("Et-App-Key", "et-app-key")
                .json(&json!({"User": "quinn", "SecretQuestionAnswer": answer}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let statuses = join_all((0..30).map(|i| answer(format!("wrong answer {i}")))).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let records = audit(&gw.url).await;
    let audited = count(&records, "password_reset_failed", |r| r["user_id"] == id);
    eprintln!("security answers: {checked} checked of 30");
    assert!(
        checked <= 5 && audited <= 5,
        "{checked} answers checked, limit 5"
    );
    assert_eq!(answer("rex the dog".into()).await, 429, "locked out");
}

async fn client_token(base: &str, id: &str, secret: &str) -> u16 {
    http()
        .post(format!("{base}/v1/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_secrets_are_limited_and_unknown_clients_cannot_queue_bcrypt() {
    let gw = gateway(&[]).await;
    admin_create(
        &gw.url,
        ADMIN,
        "/admin/clients",
        json!({"client_id": "svc", "client_secret": "Client-Secret-Right-1"}),
    )
    .await;
    let statuses = join_all((0..30).map(|i| {
        let base = gw.url.clone();
        async move { client_token(&base, "svc", &format!("wrong-{i}")).await }
    }))
    .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    eprintln!("client secrets: {checked} checked of 30");
    assert!(checked <= 10, "{checked} secrets checked, limit 10");
    assert_eq!(
        client_token(&gw.url, "svc", "Client-Secret-Right-1").await,
        429
    );

    // Unknown client ids, each different: one shared budget, refused before bcrypt.
    let statuses = join_all((0..100).map(|i| {
        let base = gw.url.clone();
        async move { client_token(&base, &format!("ghost-{i}"), "whatever").await }
    }))
    .await;
    let records = audit(&gw.url).await;
    let ghosts = count(&records, "login_failed", |r| {
        r["detail"]["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("ghost-"))
    });
    eprintln!("unknown clients: {ghosts} bcrypt checks of 100");
    assert!(ghosts <= 10, "{ghosts} bcrypt checks for unknown clients");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 100 - ghosts);
}

/// A wrong login for a fresh name, as coming through a proxy that names `client`.
async fn via(gw: &crate::common::Gateway, client: &str, i: usize) -> u16 {
    gw.http
        .post(gw.at("/v1/token"))
        .header("X-Forwarded-For", format!("198.51.100.99, {client}"))
        .form(&[
            ("grant_type", "password"),
            ("username", &format!("sprayed-{i}")),
            ("password", "Wrong-Guess-1"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_come_from_trusted_proxies_only_and_ipv6_counts_by_its_64() {
    let limits = |s: &mut credgate_server::Settings, trusted: &[&str]| {
        s.limits.user_failures = 0;
        s.limits.address_failures = 3;
        s.limits.trusted_proxies = trusted.iter().map(|t| (*t).to_owned()).collect();
    };
    let gw = crate::common::start_with(|s, _| limits(s, &["127.0.0.1/32"])).await;
    for i in 0..3 {
        assert_eq!(via(&gw, "203.0.113.1", i).await, 400);
    }
    assert_eq!(
        via(&gw, "203.0.113.1", 3).await,
        429,
        "that client's budget"
    );
    assert_eq!(
        via(&gw, "203.0.113.2", 4).await,
        400,
        "another client's own"
    );
    for i in 10..13 {
        assert_eq!(via(&gw, "2001:db8:1:2::1", i).await, 400);
    }
    assert_eq!(
        via(&gw, "2001:db8:1:2:ffff::9", 13).await,
        429,
        "one /64, one budget"
    );
    assert_eq!(via(&gw, "2001:db8:1:3::1", 14).await, 400, "another /64");

    // Without trusted proxies the header is the client's own claim: ignored.
    let gw = crate::common::start_with(|s, _| limits(s, &[])).await;
    for i in 0..3 {
        assert_eq!(via(&gw, &format!("203.0.113.{i}"), i).await, 400);
    }
    assert_eq!(
        via(&gw, "203.0.113.50", 3).await,
        429,
        "one peer, one budget"
    );
}
