//! The real binary at TRACE level, driven through every dialect: no password, token, CSRF
//! value, client secret or app key may reach its logs or its database files.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::security_common::*;

const BIN: &str = env!("CARGO_BIN_EXE_credgate");

/// Stops the spawned gateway even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_any_dialect_reaches_trace_logs_or_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(dir.path().join("trace.log")).unwrap();
    let admin = "leak-admin-token-0123456789abcdef";
    let server = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("CREDGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CREDGATE_DATABASE_URL", dir.path().join("gw.db"))
        .env("CREDGATE_ADMIN_TOKEN", admin)
        .env("CREDGATE_BCRYPT_COST", "4")
        .env("CREDGATE_LOG_LEVEL", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let gw = Remote {
        url: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let mut ready = false;
    for _ in 0..200 {
        if gw
            .http
            .get(gw.at("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "gateway did not become ready");

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
    for (i, d) in ALL.into_iter().enumerate() {
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
    let _ = server.0.kill();
    let _ = server.0.wait();

    let logs = std::fs::read_to_string(dir.path().join("trace.log")).unwrap();
    assert!(logs.contains("request"), "logs were captured");
    let mut stored = Vec::new();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let path = f.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("gw.db")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored);
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
