//! Private files, bounded request bodies and Secure cookies, against the real binary where the
//! process itself matters (its umask, its connections).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, TracedBinary, ADMIN_TOKEN};
use crate::security_common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A spawned gateway process, killed and reaped when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `credgate serve` started by a shell with umask 022, in `dir`, with the default data paths
/// (`./data/credgate.db`, `./data/reset-outbox.jsonl`); logs go to `dir/serve.log`.
async fn serve_under_umask_022(dir: &Path) -> (Served, String) {
    let port = common::free_addr();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let child = Served(
        Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$0\" serve")
            .arg(env!("CARGO_BIN_EXE_credgate"))
            .current_dir(dir)
            .env_remove("CREDGATE_CONFIG")
            .env_remove("CREDGATE_DATABASE_URL")
            .env("CREDGATE_LISTEN", &port)
            .env("CREDGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CREDGATE_BCRYPT_COST", "4")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let ready = http.get(format!("{url}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return (child, url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway binary did not become ready");
}

fn stop(served: Served) {
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (child, url) = serve_under_umask_022(dir).await;
    common::admin_create(
        &url,
        ADMIN_TOKEN,
        "/admin/users",
        json!({"username": "mona", "password": "Private-Files-Pass-1"}),
    )
    .await;
    let res = reqwest::Client::new()
        .post(format!("{url}/v1/password-resets"))
        .json(&json!({"username": "mona"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let data = dir.join("data");
    // The notice is delivered after the answer: wait for the outbox (bounded).
    let started = Instant::now();
    while !data.join("reset-outbox.jsonl").exists() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let files = [
        "credgate.db",
        "credgate.db-wal",
        "credgate.db-shm",
        "reset-outbox.jsonl",
    ];
    let check = || {
        assert_eq!(mode(&data), 0o700, "data folder");
        for f in files {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    };
    check();
    stop(child);

    // Files an older version (or a loose umask) left readable: reported at start, tightened.
    for f in ["credgate.db", "reset-outbox.jsonl"] {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (child, _) = serve_under_umask_022(dir).await;
    stop(child);
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(log.contains("readable by other users"), "{log}");
    for f in ["credgate.db", "reset-outbox.jsonl"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f} tightened");
    }
}

/// Sends a request head announcing `length` body bytes, then one byte every `every`; returns
/// what the server answered (until it closed) and when the answer started.
pub(crate) async fn trickle(
    addr: &str,
    head: &str,
    length: usize,
    every: Duration,
) -> (String, Duration) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rx, mut tx) = stream.into_split();
    let head = format!("{head}Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n");
    tx.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..length {
            if tx.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut answer = Vec::new();
    let mut first = None;
    let mut buf = [0u8; 4096];
    // Reading to the end proves the server closed the connection.
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    first.get_or_insert_with(|| started.elapsed());
                    answer.extend_from_slice(&buf[..n]);
                }
            }
        }
    })
    .await;
    writer.abort();
    assert!(read.is_ok(), "the connection stayed open");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        first.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_a_closed_connection() {
    let gw = TracedBinary::start_with(
        ADMIN_TOKEN,
        &[("CREDGATE_BODY_TIMEOUT_MS", "300".to_owned())],
    )
    .await;
    let addr = gw.url.trim_start_matches("http://").to_owned();
    for path in ["/api/v1/connect/token", "/v1/token", "/admin/users"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n"
        );
        let (answer, after) = trickle(&addr, &head, 60, Duration::from_millis(100)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{path}: {answer}"
        );
        assert!(
            after >= Duration::from_millis(300) && after < Duration::from_secs(3),
            "{path}: answered after {after:?}"
        );
        // In the caller's own style: Crayon's error model on its route, the problem document
        // on the native and admin APIs.
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let own = if path.starts_with("/api/") {
            "\"ErrorCode\": \"RequestTimeout\""
        } else {
            "urn:credgate:error:request_timeout"
        };
        assert!(body.contains(own), "{path}: {answer}");
    }
    // A body that arrives in time is served as usual, and the gateway still answers.
    let res = reqwest::Client::new()
        .post(format!("{}/v1/token", gw.url))
        .form(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = reqwest::get(format!("{}/healthz", gw.url)).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_configured() {
    for secure in [false, true] {
        let gw = gateway_with(|s| s.cookies.secure = secure).await;
        let pw = "Secure-Cookie-Pass-1";
        user(&gw, "secure.cookie@example.com", pw).await;
        for d in [AKANA, CRAFTER] {
            let res = login_raw(&gw, d, "secure.cookie@example.com", pw).await;
            assert_eq!(res.status(), 200);
            let cookies: Vec<String> = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            assert!(!cookies.is_empty(), "{}", d.name());
            for c in &cookies {
                let attrs: Vec<String> = c
                    .split(';')
                    .skip(1)
                    .map(|a| a.trim().to_ascii_lowercase())
                    .collect();
                assert_eq!(
                    attrs.iter().filter(|a| *a == "secure").count(),
                    usize::from(secure),
                    "{}: {c}",
                    d.name()
                );
            }
            if d == AKANA {
                // The CSRF cookie stays readable by scripts; the session cookie does not.
                let csrf = cookies
                    .iter()
                    .find(|c| c.starts_with(AKANA_CSRF_COOKIE))
                    .unwrap();
                assert!(!csrf.to_ascii_lowercase().contains("httponly"), "{csrf}");
                let session = cookies
                    .iter()
                    .find(|c| c.starts_with(AKANA_COOKIE))
                    .unwrap();
                assert!(
                    session.to_ascii_lowercase().contains("httponly"),
                    "{session}"
                );
            }
        }
    }
}
