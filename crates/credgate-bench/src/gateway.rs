//! The real gateway binary as a child process on a loopback port with its own SQLite file.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BenchError;

/// How a gateway is configured for one part of the benchmark.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub bcrypt_cost: u32,
    /// Extra `CREDGATE_*` variables (name without the prefix, value).
    pub env: Vec<(String, String)>,
}

pub struct Gateway {
    child: Child,
    pub base: String,
    pub pid: u32,
    pub dir: PathBuf,
}

/// A free loopback port (bound, then released for the child to bind).
pub fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub fn database_path(dir: &Path) -> PathBuf {
    dir.join("credgate.db")
}

impl Gateway {
    /// Starts `binary serve` in `dir` (so no `./config.toml` is read) on the database the
    /// seeder wrote there, and waits until `/healthz` answers.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        config: &GatewayConfig,
    ) -> Result<Self, BenchError> {
        let port = free_port()?;
        let log = std::fs::File::create(dir.join("gateway.log"))?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve").current_dir(dir);
        for (key, _) in std::env::vars() {
            if key.starts_with("CREDGATE_") {
                cmd.env_remove(key);
            }
        }
        let db = database_path(dir);
        let defaults = [
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("DATABASE_URL", db.display().to_string()),
            ("BCRYPT_COST", config.bcrypt_cost.to_string()),
            ("LOG_LEVEL", "warn".into()),
            ("DIGEST_KEY", crate::seed::BENCH_DIGEST_KEY.into()),
            (
                "RESET__OUTBOX",
                dir.join("outbox.jsonl").display().to_string(),
            ),
        ];
        for (key, value) in defaults.iter().cloned().chain(
            config
                .env
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>(),
        ) {
            cmd.env(format!("CREDGATE_{key}"), value);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("starting {}: {e}", binary.display())))?;
        let pid = child.id().unwrap_or_default();
        let mut gateway = Gateway {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pid,
            dir: dir.to_path_buf(),
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self) -> Result<(), BenchError> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default();
                return Err(BenchError::Setup(format!(
                    "the gateway exited with {status}: {log}"
                )));
            }
            let url = format!("{}/healthz", self.base);
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(
                    "the gateway did not answer /healthz within 60 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Peak and current resident set size in KiB (`VmHWM`, `VmRSS` of /proc/PID/status).
    pub fn memory_kib(&self) -> Result<(u64, u64), BenchError> {
        proc_memory_kib(self.pid)
    }

    pub async fn stop(mut self) -> Result<(), BenchError> {
        self.child.kill().await?;
        Ok(())
    }
}

pub fn proc_memory_kib(pid: u32) -> Result<(u64, u64), BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| BenchError::Setup(format!("no {name} in /proc/{pid}/status")))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}
