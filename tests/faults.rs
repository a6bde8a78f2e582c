//! Real faults on the real binary: a disk filled to its last byte, a PostgreSQL row lock held by
//! another session, a burst of connections, SIGTERM in the middle of slow password changes,
//! and sustained traffic with nobody scraping `/metrics`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{admin_create, TracedBinary};
use crate::security_common::{all, change, login, login_raw, Remote, Who, CRAFTER};
use crate::security_common::{APP_KEY, CLIENT_ID, CLIENT_SECRET};

const ADMIN: &str = "faults-admin-token-0123456789";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A small tmpfs mounted for one test; unmounted when dropped, even after a failed assertion.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root (CI runs the suite as root)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "skipped: mount -t tmpfs refused: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the filesystem refuses even one more byte (ENOSPC).
fn fill_to_the_last_byte(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0xa5u8; 1 << 16];
    let mut chunk = block.len();
    while chunk > 0 {
        match file.write(&block[..chunk]) {
            Ok(0) => chunk /= 2,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => chunk /= 2,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    path
}

fn is_problem_503(res: &reqwest::Response) -> bool {
    res.status() == 503 && res.headers().get("retry-after").is_some()
}

async fn create_user(base: &str, username: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"username": username, "password": "Full-Disk-Pass-1"}))
        .send()
        .await
        .unwrap()
}

async fn native_token(base: &str, username: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn native_change(base: &str, token: &str, current: &str, new: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{base}/v1/users/me/password"))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

async fn access_token(base: &str, username: &str, password: &str) -> String {
    let res = native_token(base, username, password).await;
    assert_eq!(res.status(), 200, "login of {username}");
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `GET /readyz` until it answers `status`, for at most `deadline`; returns its body.
async fn readyz_becomes(base: &str, status: u16, deadline: Duration) -> Value {
    let start = Instant::now();
    loop {
        let res = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if res.status() == status {
            return res.json().await.unwrap();
        }
        assert!(
            start.elapsed() < deadline,
            "/readyz did not answer {status} within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_503_in_every_dialect_and_writes_return_when_space_does() {
    let Some(disk) = Tmpfs::mount("4m") else {
        return;
    };
    let db = disk.path().join("gw.db").display().to_string();
    let env = [
        ("CREDGATE_DATABASE_URL", db.clone()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
    ];
    let mut gw = TracedBinary::start_with(ADMIN, &env).await;
    let base = gw.url.clone();
    admin_create(
        &base,
        ADMIN,
        "/admin/clients",
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    .await;
    admin_create(&base, ADMIN, "/admin/apps", json!({"key": APP_KEY})).await;
    let ann = admin_create(
        &base,
        ADMIN,
        "/admin/users",
        json!({"username": "ann", "password": "Before-Full-1"}),
    )
    .await;
    let token = access_token(&base, "ann", "Before-Full-1").await;
    let res = native_change(&base, &token, "Before-Full-1", "Acknowledged-2").await;
    assert_eq!(res.status(), 204, "acknowledged before the disk filled");

    let filler = fill_to_the_last_byte(disk.path());
    // Writes go on while the write-ahead log has room to reuse; the first that needs a new
    // page is refused, as a 503 and never a 500.
    let mut acknowledged = vec![ann["id"].as_str().unwrap().to_owned()];
    let mut refused = false;
    for i in 0..3000 {
        let res = create_user(&base, &format!("full-{i}")).await;
        match res.status().as_u16() {
            201 => acknowledged.push(res.json::<Value>().await.unwrap()["id"].to_string()),
            503 => {
                assert!(is_problem_503(&res), "Retry-After on the refused write");
                refused = true;
                break;
            }
            other => panic!("a write on a full disk answered {other}"),
        }
    }
    assert!(refused, "a full disk refused no write");

    let remote = Remote {
        url: base.clone(),
        http: reqwest::Client::new(),
    };
    for d in all() {
        for _ in 0..3 {
            let res = login_raw(&remote, d, "ann", "Acknowledged-2").await;
            assert!(is_problem_503(&res), "{d:?}: {}", res.status());
            let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
            let body = res.text().await.unwrap();
            assert!(d.error_style(&content_type, &body), "{d:?}: {body}");
        }
    }
    let res = native_change(&base, &token, "Acknowledged-2", "During-Full-3").await;
    assert!(is_problem_503(&res), "native change: {}", res.status());
    let ready = readyz_becomes(&base, 503, Duration::from_secs(10)).await;
    assert_eq!(ready["failing"], json!(["database"]), "{ready}");

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    loop {
        let res = create_user(&base, "after-full").await;
        if res.status() == 201 {
            break;
        }
        assert_eq!(res.status(), 503, "while recovering");
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "writes did not come back within 10 s of freeing space"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    readyz_becomes(&base, 200, Duration::from_secs(10)).await;
    let token = access_token(&base, "ann", "Acknowledged-2").await;
    let res = native_change(&base, &token, "Acknowledged-2", "After-Full-4").await;
    assert_eq!(res.status(), 204);
    let (logs, _) = gw.stop_and_collect();
    assert!(logs.contains("database refuses writes"), "the log says so");
    assert!(
        !logs.contains("transaction depth"),
        "no poisoned connection"
    );

    // Nothing acknowledged was lost: a new process on the same file sees every write.
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    for id in &acknowledged {
        let id = id.trim_matches('"');
        let res = reqwest::Client::new()
            .get(format!("{}/admin/users/{id}", gw.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "acknowledged user {id}");
    }
    assert_eq!(
        native_token(&gw.url, "ann", "After-Full-4").await.status(),
        200
    );
    drop(gw);
}

/// The backlog (`Send-Q` of a listening socket in `ss -ltn`) of the socket on `port`.
fn listen_backlog(port: u16) -> Option<u32> {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_gets_the_configured_backlog() {
    if Command::new("ss").arg("-V").output().is_err() {
        eprintln!("skipped: `ss` (iproute2) is not installed; it reads a socket's backlog");
        return;
    }
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map_or(4096, |s| s.trim().parse().unwrap_or(4096));
    let metrics = crate::common::free_addr();
    let akana = crate::common::free_addr();
    let env = [
        ("CREDGATE_LISTEN_BACKLOG", "1000".to_owned()),
        ("CREDGATE_METRICS__LISTEN", metrics.clone()),
        ("CREDGATE_DIALECTS__MOUNT__AKANA__LISTEN", akana.clone()),
    ];
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    let main_port: u16 = gw.url.rsplit(':').next().unwrap().parse().unwrap();
    for (what, port) in [
        ("main", main_port),
        (
            "metrics",
            metrics.rsplit(':').next().unwrap().parse().unwrap(),
        ),
        ("akana", akana.rsplit(':').next().unwrap().parse().unwrap()),
    ] {
        assert_eq!(
            listen_backlog(port),
            Some(1000.min(somaxconn)),
            "{what} listener"
        );
    }
}

#[test]
fn the_default_backlog_is_at_least_1024() {
    assert!(credgate_server::Settings::default().listen_backlog >= 1024);
}

/// A `psql` session holding `FOR UPDATE` on a user's row until it is dropped.
struct RowLock {
    child: std::process::Child,
}

impl RowLock {
    fn take(url: &str, username: &str) -> Self {
        let mut child = Command::new("psql")
            .args([url, "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "BEGIN; SELECT 'locked-' || count(*) FROM \
             (SELECT id FROM users WHERE username = '{username}' FOR UPDATE) AS held;"
        )
        .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked-1", "psql holds the row");
        Self { child }
    }
}

impl Drop for RowLock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_is_a_503_within_the_statement_timeout() {
    let Some(db) = crate::multi_instance::fresh_database() else {
        return;
    };
    let env = [
        ("CREDGATE_DATABASE_URL", db.clone()),
        // The lock wait alone would last 30 s: only the statement timeout can end it.
        ("CREDGATE_STORE__BUSY_TIMEOUT_MS", "30000".to_owned()),
        ("CREDGATE_STORE__STATEMENT_TIMEOUT_MS", "1000".to_owned()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
    ];
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    admin_create(
        &gw.url,
        ADMIN,
        "/admin/users",
        json!({"username": "lena", "password": "Locked-Out-1"}),
    )
    .await;
    let token = access_token(&gw.url, "lena", "Locked-Out-1").await;
    // A dialect session too (sessions are bound to the dialect that issued them), opened
    // before the lock: a login's token row references the locked user.
    let remote = Remote {
        url: gw.url.clone(),
        http: reqwest::Client::new(),
    };
    let crafter = login(&remote, CRAFTER, "lena", "Locked-Out-1").await;

    let lock = RowLock::take(&db, "lena");
    let started = Instant::now();
    let res = native_change(&gw.url, &token, "Locked-Out-1", "Never-Stored-2").await;
    let waited = started.elapsed();
    assert!(is_problem_503(&res), "{}", res.status());
    assert!(
        waited < Duration::from_secs(5),
        "answered after {waited:?}, not within the 1 s statement timeout"
    );
    let lena = Who {
        id: String::new(),
        username: "lena".into(),
    };
    let res = change(
        &remote,
        CRAFTER,
        &crafter,
        &lena,
        "Locked-Out-1",
        "Never-Stored-3",
    )
    .await;
    assert!(is_problem_503(&res), "crafter: {}", res.status());
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    assert!(CRAFTER.error_style(&content_type, &body), "crafter: {body}");

    drop(lock);
    let res = native_change(&gw.url, &token, "Locked-Out-1", "After-Lock-4").await;
    assert_eq!(
        res.status(),
        204,
        "the lock is gone, the change goes through"
    );
    assert_eq!(
        native_token(&gw.url, "lena", "Never-Stored-2")
            .await
            .status(),
        400,
        "the timed-out change was not stored"
    );
}

/// `credgate_hash_queue_depth` as the gateway reports it.
async fn hash_queue_depth(base: &str) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("credgate_hash_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_cost_12_changes_answers_every_accepted_request() {
    const IN_FLIGHT: usize = 6;
    let data = tempfile::tempdir().unwrap();
    let env = [
        (
            "CREDGATE_DATABASE_URL",
            data.path().join("gw.db").display().to_string(),
        ),
        ("CREDGATE_BCRYPT_COST", "12".to_owned()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
    ];
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    let mut tokens = Vec::new();
    for i in 0..IN_FLIGHT {
        let name = format!("sig{i}");
        admin_create(
            &gw.url,
            ADMIN,
            "/admin/users",
            json!({"username": name, "password": "Before-Term-1"}),
        )
        .await;
        tokens.push(access_token(&gw.url, &name, "Before-Term-1").await);
    }
    let changes: Vec<_> = tokens
        .iter()
        .map(|token| {
            let (base, token) = (gw.url.clone(), token.clone());
            tokio::spawn(async move {
                native_change(&base, &token, "Before-Term-1", "After-Term-2")
                    .await
                    .status()
            })
        })
        .collect();
    // Every change is inside the gateway (its bcrypt jobs queued) before the signal.
    let start = Instant::now();
    while hash_queue_depth(&gw.url).await < IN_FLIGHT as f64 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the changes never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for change in changes {
        assert_eq!(
            change.await.unwrap(),
            204,
            "an accepted change was answered"
        );
    }
    drop(gw);

    // And they were stored: a new process logs every user in with the new password.
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    for i in 0..IN_FLIGHT {
        let res = native_token(&gw.url, &format!("sig{i}"), "After-Term-2").await;
        assert_eq!(res.status(), 200);
    }
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `count` requests to `GET /healthz`, 16 at a time on kept-alive connections.
async fn healthz_burst(base: &str, count: usize) {
    let http = reqwest::Client::new();
    let per_task = count / 16;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{base}/healthz"));
            tokio::spawn(async move {
                for _ in 0..per_task {
                    let res = http.get(&url).send().await.unwrap();
                    assert_eq!(res.status(), 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Before the recorder's upkeep ran on a timer, each request left a histogram sample in memory
/// until the next scrape: measured on the debug binary, 160,000 requests after warm-up grew RSS
/// by 2.7 MiB (26.9 -> 29.6 MiB); with the upkeep thread by 0.2-0.25 MiB. The margin, 1.5 MiB,
/// sits between. Runs the binary cargo built for this test (debug under `cargo test`, release
/// under `cargo test --release`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_under_traffic_with_nobody_scraping() {
    const WARM_UP: usize = 32_000;
    const MARGIN_KIB: u64 = 1536;
    let gw = TracedBinary::start_with(ADMIN, &[("CREDGATE_LOG_LEVEL", "warn".to_owned())]).await;
    healthz_burst(&gw.url, WARM_UP).await;
    let warm = rss_kib(gw.pid());
    healthz_burst(&gw.url, 5 * WARM_UP).await;
    let after = rss_kib(gw.pid());
    eprintln!(
        "RSS after {WARM_UP} requests: {warm} KiB; after {} more: {after} KiB",
        5 * WARM_UP
    );
    assert!(
        after <= warm + MARGIN_KIB,
        "RSS grew from {warm} KiB to {after} KiB over {} requests",
        5 * WARM_UP
    );
}

/// The heartbeat row's timestamp, read straight from the gateway's SQLite file.
async fn beat_at(db: &Path) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let at = sqlx::query_scalar("SELECT beat_at FROM heartbeat")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_writes_the_heartbeat_at_most_every_two_seconds() {
    let gw = crate::common::start().await;
    let db = gw.path("credgate.db");
    let t0 = 1_700_000_000;
    let ready = gw.http.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(beat_at(&db).await, t0);
    gw.clock.advance(1);
    for _ in 0..5 {
        let ready = gw.http.get(gw.at("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
    assert_eq!(beat_at(&db).await, t0, "served from memory within 2 s");
    gw.clock.advance(1);
    let ready = gw.http.get(gw.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(beat_at(&db).await, t0 + 2, "written again after 2 s");
}
