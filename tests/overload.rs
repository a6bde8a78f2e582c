//! Graceful overload of the hash pool, against the real binary at bcrypt cost 4 with one
//! hashing thread and a bound of 1 ms on the wait: a flood of simultaneous logins is answered,
//! each one either served or refused at once with a 503 and `Retry-After`; the refusals are
//! counted per dialect and audited once for the burst; `/healthz` answers throughout.

use serde_json::{json, Value};

use crate::common::{self, TracedBinary};

const ADMIN: &str = "overload-admin-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_served_or_shed_at_once_with_retry_after() {
    let gw = TracedBinary::start_with(
        ADMIN,
        &[
            ("CREDGATE_HASH_THREADS", "1".into()),
            ("CREDGATE_HASH_MAX_WAIT_MS", "1".into()),
            ("CREDGATE_LIMITS__USER_FAILURES", "100000".into()),
            ("CREDGATE_LIMITS__ADDRESS_FAILURES", "100000".into()),
            ("CREDGATE_LOG_LEVEL", "info".into()),
        ],
    )
    .await;
    common::admin_create(
        &gw.url,
        ADMIN,
        "/admin/users",
        json!({"username": "flood.user", "password": "Flood-Gate-Pass-7"}),
    )
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let logins = (0..300).map(|_| {
        let (http, url) = (http.clone(), gw.url.clone());
        tokio::spawn(async move {
            let res = http
                .post(format!("{url}/v1/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "flood.user"),
                    ("password", "Flood-Gate-Pass-7"),
                ])
                .send()
                .await
                .unwrap();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = res.status().as_u16();
            (status, retry_after, res.json::<Value>().await.unwrap())
        })
    });
    let health = http.get(format!("{}/healthz", gw.url)).send();
    let (results, health) = tokio::join!(futures_util::future::join_all(logins), health);
    assert_eq!(health.unwrap().status(), 200);
    let (mut served, mut shed) = (0, 0);
    for r in results {
        let (status, retry_after, body) = r.unwrap();
        match status {
            200 => served += 1,
            503 => {
                shed += 1;
                let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
                assert!(secs >= 1);
                assert_eq!(body["type"], "urn:credgate:error:overloaded", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(served > 0, "the pool still serves");
    assert!(shed > 0, "a flood on one thread with a 1 ms bound sheds");

    // Counted per dialect, and audited once for the burst.
    let metrics = http
        .get(format!("{}/metrics", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("credgate_hash_shed_total{dialect=\"native\"}"))
        .unwrap_or_else(|| panic!("no shed counter: {metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(counted as usize, shed);
    // The burst's audit record is written in the background: polled with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (bursts, audit) = loop {
        let audit: Vec<Value> = http
            .get(format!("{}/admin/audit?limit=1000", gw.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bursts = audit
            .iter()
            .filter(|e| e["detail"]["reason"] == "hash_pool_overloaded")
            .count();
        if bursts > 0 || std::time::Instant::now() > deadline {
            break (bursts, audit);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(bursts, 1, "{audit:?}");
}
