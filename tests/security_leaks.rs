//! The real binary at TRACE level, driven through every dialect: no password, token, CSRF
//! value, client secret or app key may reach its logs or its database files.

use serde_json::{json, Value};

use crate::security_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_any_dialect_reaches_trace_logs_or_the_database() {
    let admin = "leak-admin-token-0123456789abcdef";
    let mut server = crate::common::TracedBinary::start(admin).await;
    let gw = Remote {
        url: server.url.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };

    let admin_post = |path: &str, body: Value| {
        gw.http
            .post(gw.at(path))
            .bearer_auth(admin)
            .json(&body)
            .send()
    };
    let res = admin_post(
        "/admin/clients",
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let res = admin_post("/admin/apps", json!({"key": APP_KEY}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let mut secrets: Vec<String> = vec![admin.into(), CLIENT_SECRET.into(), APP_KEY.into()];
    for (i, d) in all().into_iter().enumerate() {
        let old = format!("Leak-Old-Secret-{i}-Qx7");
        let new = format!("Leak-New-Secret-{i}-Zp4");
        let wrong = format!("Leak-Wrong-Guess-{i}-Vb2");
        let username = format!("leak.user{i}@example.com");
        let res = admin_post(
            "/admin/users",
            json!({"username": username, "password": old}),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 201);
        let who = Who {
            id: res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            username: username.clone(),
        };
        secrets.extend([old.clone(), new.clone(), wrong.clone()]);

        assert!(!logs_in(&gw, d, &username, &wrong).await, "{}", d.name());
        let s = login(&gw, d, &username, &old).await;
        // A failed change, then a malformed body holding the password.
        let a = Answer::of(change(&gw, d, &s, &who, &wrong, &new).await).await;
        assert_eq!(a.status, 400, "{}: {a}", d.name());
        let truncated = format!(
            "{{\"{}\":\"{old}\",\"{}\":\"{new}\"",
            d.current_field(),
            d.new_field()
        );
        let a = Answer::of(
            change_raw(
                &gw,
                d,
                &s,
                &who,
                Some("application/json"),
                truncated.into_bytes(),
            )
            .await,
        )
        .await;
        assert_eq!(a.status, 400, "{}: {a}", d.name());
        let a = Answer::of(change(&gw, d, &s, &who, &old, &new).await).await;
        assert_eq!(a.status, d.change_ok_status(), "{}: {a}", d.name());
        let s2 = login(&gw, d, &username, &new).await;
        for session in [s, s2] {
            secrets.push(session.token);
            secrets.extend(session.cookie);
            secrets.extend(session.csrf);
        }
    }
    let (logs, stored) = server.stop_and_collect();
    let mut leaks = Vec::new();
    for secret in &secrets {
        // The cookie values are URL-encoded; look for the decoded form as well.
        for form in [secret.clone(), percent_decode(secret)] {
            if logs.contains(&form) {
                leaks.push(format!("logs contain {form:?}"));
            }
            if stored.contains(&form) {
                leaks.push(format!("database contains {form:?}"));
            }
        }
    }
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "secrets leaked:\n  {}",
        leaks.join("\n  ")
    );
}
