//! The real `credgate` binary: CLI commands, and no secret in its TRACE logs or its database.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

pub const BIN: &str = env!("CARGO_BIN_EXE_credgate");

/// Runs the binary in `dir` (its database and digest key there) with `stdin` as its input.
pub fn credgate(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("CREDGATE_DATABASE_URL", dir.join("cli.db"))
        .env("CREDGATE_BCRYPT_COST", "4")
        .env("CREDGATE_DIGEST_KEY_FILE", dir.join("digest.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cli_manages_users_clients_and_apps() {
    let dir = tempfile::tempdir().unwrap();
    let out = credgate(
        dir.path(),
        &[
            "user",
            "add",
            "--username",
            "frank",
            "--alias",
            "akana=f1.acme",
            "--password-stdin",
        ],
        "Orchid-Secret-Pass-9\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = credgate(
        dir.path(),
        &["user", "add", "--username", "gina", "--password-stdin"],
        "password\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Password is too common"));
    let out = credgate(dir.path(), &["user", "list"], "");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("frank") && listing.contains("akana=f1.acme"),
        "{listing}"
    );
    assert!(!listing.contains("Orchid-Secret"));
    assert!(credgate(
        dir.path(),
        &["client", "add", "--client-id", "c1", "--secret-stdin"],
        "client-secret-1\n"
    )
    .status
    .success());
    assert!(
        credgate(dir.path(), &["app", "add", "--key-stdin"], "app-key-1\n")
            .status
            .success()
    );
    let out = credgate(
        dir.path(),
        &["--config", "missing.toml", "user", "list"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(dir.path().join("bad.toml"), "bcrypt_cots = 4\n").unwrap();
    let out = credgate(dir.path(), &["--config", "bad.toml", "serve"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bcrypt_cots"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_reaches_trace_logs_or_the_database() {
    let admin = "binary-admin-token-0123456789";
    let mut server = crate::common::TracedBinary::start(admin).await;
    let base = server.url.clone();
    let http = reqwest::Client::new();

    let (old, new) = ("Hunter-Two-Old-Secret", "Hunter-Two-New-Secret");
    let res = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(admin)
        .json(&json!({"username": "henry", "password": old}))
        .send()
        .await
        .unwrap();
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .post(format!("{base}/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "henry"),
            ("password", old),
        ])
        .send()
        .await
        .unwrap();
    let token = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A failed change and a malformed body, whose traces must not echo the body either.
    http.put(format!("{base}/v1/users/{id}/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": "Wrong-Guess-Secret", "new_password": new}))
        .send()
        .await
        .unwrap();
    http.put(format!("{base}/v1/users/{id}/password"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"current_password\":\"{old}\""))
        .send()
        .await
        .unwrap();
    let res = http
        .put(format!("{base}/v1/users/{id}/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": old, "new_password": new}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (logs, stored) = server.stop_and_collect();
    for secret in [old, new, "Wrong-Guess-Secret", token.as_str(), admin] {
        assert!(!logs.contains(secret), "logs contain a secret");
        assert!(!stored.contains(secret), "database contains a secret");
    }
}
