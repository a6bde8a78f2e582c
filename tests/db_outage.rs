//! The database goes away mid-run: readiness and every dialect answer a clean 503, nothing
//! acknowledged is lost, and the gateway recovers by itself when the database returns. Runs
//! its own throwaway PostgreSQL cluster so stopping it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::TracedBinary;

const ADMIN: &str = "outage-admin-token-0123456789";

/// A PostgreSQL cluster of its own, run as the `postgres` user; stopped when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn as_postgres(command: String) -> std::process::Output {
    Command::new("su")
        .args(["postgres", "-s", "/bin/sh", "-c", &command])
        .output()
        .unwrap()
}

impl Cluster {
    fn start() -> Option<Self> {
        let Ok(pg_ctl) = std::env::var("CREDGATE_TEST_PG_CTL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CREDGATE_TEST_PG_CTL is required in CI (see .ci/postgres.sh)"
            );
            eprintln!(
                "skipped: CREDGATE_TEST_PG_CTL is not set (run: eval \"$(bash .ci/postgres.sh)\")"
            );
            return None;
        };
        let bin = Path::new(&pg_ctl).parent().unwrap().to_path_buf();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        for p in [dir.path(), &data] {
            Command::new("chown")
                .arg("postgres")
                .arg(p)
                .status()
                .unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let init = as_postgres(format!(
            "{}/initdb -D {} -U postgres --auth=trust -E UTF8",
            bin.display(),
            data.display()
        ));
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let cluster = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        cluster.up();
        let created = as_postgres(format!(
            "{}/createdb -h 127.0.0.1 -p {port} -U postgres outage",
            cluster.bin.display()
        ));
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        Some(cluster)
    }

    fn up(&self) {
        let out =
            as_postgres(format!(
            "{}/pg_ctl -D {} -l {}/log -w -o '-p {} -k /tmp -c listen_addresses=127.0.0.1' start",
            self.bin.display(), self.data.display(), self.data.display(), self.port
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn down(&self) {
        let out = as_postgres(format!(
            "{}/pg_ctl -D {} -m fast -w stop",
            self.bin.display(),
            self.data.display()
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/outage", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres(format!(
            "{}/pg_ctl -D {} -m immediate stop",
            self.bin.display(),
            self.data.display()
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_a_clean_503_and_the_gateway_recovers() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let env = [
        ("CREDGATE_DATABASE_URL", cluster.url()),
        ("CREDGATE_STORE__BUSY_TIMEOUT_MS", "1000".to_owned()),
        ("CREDGATE_LOG_LEVEL", "info".to_owned()),
    ];
    let gw = TracedBinary::start_with(ADMIN, &env).await;
    let http = reqwest::Client::new();
    let at = |p: &str| format!("{}{p}", gw.url);
    http.post(at("/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"username": "olga", "password": "Before-Outage-1"}))
        .send()
        .await
        .unwrap();
    let res = http
        .post(at("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "olga"),
            ("password", "Before-Outage-1"),
        ])
        .send()
        .await
        .unwrap();
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .put(at("/v1/users/me/password"))
        .bearer_auth(&token)
        .json(&json!({"current_password": "Before-Outage-1", "new_password": "Acknowledged-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "acknowledged before the outage");

    cluster.down();
    assert_eq!(http.get(at("/readyz")).send().await.unwrap().status(), 503);
    let res = http
        .post(at("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "olga"),
            ("password", "Acknowledged-2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let res = http
        .post(at("/studio/api/1/services/api/1/security/login.json"))
        .json(&json!({"username": "olga", "password": "Acknowledged-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "Service unavailable"})
    );
    let res = http
        .post(at("/auth/password/change"))
        .bearer_auth(&token)
        .json(&json!({"CurrentPassword": "Acknowledged-2", "NewPassword": "During-Outage-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "5");

    cluster.up();
    let mut ready = false;
    for _ in 0..300 {
        if http
            .get(at("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway recovered without a restart");
    let res = http
        .post(at("/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "olga"),
            ("password", "Acknowledged-2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the acknowledged change survived");
}
