//! The test kit: a real gateway on a free loopback port with a fresh SQLite file, a manual
//! clock, bcrypt cost 4, and an admin token; built by the same code as `credgate serve`.

use std::net::TcpListener;
use std::sync::Arc;

use credgate_core::ManualClock;
use credgate_server::Settings;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct Gateway {
    pub url: String,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    /// Holds the database file; removed when the gateway is dropped.
    dir: tempfile::TempDir,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop accepting and let workers end; the runtime may already be going away.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// A loopback address free a moment ago, for settings that name their own listeners.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub fn test_settings(dir: &tempfile::TempDir) -> Settings {
    Settings {
        database_url: dir.path().join("credgate.db").display().to_string(),
        admin_token: Some(credgate_core::SecretToken::new(ADMIN_TOKEN)),
        bcrypt_cost: 4,
        hash_threads: 2,
        workers: 2,
        reset: credgate_server::settings::ResetSettings {
            outbox: dir.path().join("outbox.jsonl"),
            ..Default::default()
        },
        digest_key_file: dir.path().join("digest.key"),
        ..Settings::default()
    }
}

pub async fn start() -> Gateway {
    start_with(|_, _| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut Settings, &std::path::Path)) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    configure(&mut settings, dir.path());
    let clock = ManualClock::new(1_700_000_000);
    let state = credgate_server::build_state(&settings, Arc::new(clock.clone()))
        .await
        .unwrap();
    state
        .reloader
        .install(Arc::new(credgate_examples::scratch::ExampleReplay));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = credgate_server::serve(listener, state, &settings).unwrap();
    let handle = server.handle();
    tokio::spawn(server);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Gateway {
        url,
        clock,
        http,
        dir,
        handle,
    }
}

impl Gateway {
    /// A file in the gateway's temporary folder.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.at(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a user through the admin API and returns its id.
    pub async fn user(&self, username: &str, password: &str) -> String {
        let res = self
            .admin_post(
                "/admin/users",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A native password-grant token.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.at("/v1/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        let res = self.login(username, password).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn change(
        &self,
        token: &str,
        id: &str,
        current: &str,
        new: &str,
    ) -> reqwest::Response {
        self.http
            .put(self.at(&format!("/v1/users/{id}/password")))
            .bearer_auth(token)
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
            .await
            .unwrap()
    }

    pub async fn audit(&self, user_id: &str) -> Vec<Value> {
        let res = self
            .http
            .get(self.at(&format!("/admin/audit?user_id={user_id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    }
}

/// Creates something through a running gateway's admin API (`POST {base}{path}`), asserts 201
/// and returns the created resource.
pub async fn admin_create(base: &str, admin_token: &str, path: &str, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "POST {path}");
    res.json().await.unwrap()
}

/// The real `credgate` binary serving on a free loopback port with TRACE logs captured to a
/// file, for tests that look for secrets in what it writes. Killed when dropped.
pub struct TracedBinary {
    pub url: String,
    pub dir: tempfile::TempDir,
    child: std::process::Child,
}

impl TracedBinary {
    pub async fn start(admin_token: &str) -> Self {
        Self::start_with(admin_token, &[]).await
    }

    /// Started with extra `CREDGATE_*` variables (they win over the defaults here).
    pub async fn start_with(admin_token: &str, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("trace.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
            .arg("serve")
            .current_dir(dir.path())
            .env("CREDGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("CREDGATE_DATABASE_URL", dir.path().join("gw.db"))
            .env("CREDGATE_ADMIN_TOKEN", admin_token)
            .env("CREDGATE_BCRYPT_COST", "4")
            .env("CREDGATE_LOG_LEVEL", "trace")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Self {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            let ready = http.get(format!("{}/readyz", gateway.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return gateway;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the gateway binary did not become ready");
    }

    /// Stops the process and returns (its logs, the bytes of every database file), as text.
    pub fn stop_and_collect(&mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let logs = std::fs::read_to_string(self.dir.path().join("trace.log")).unwrap();
        let mut stored = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("gw.db")
            {
                stored.extend(std::fs::read(&path).unwrap());
            }
        }
        (logs, String::from_utf8_lossy(&stored).into_owned())
    }
}

impl TracedBinary {
    /// The process id, to send it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TracedBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
