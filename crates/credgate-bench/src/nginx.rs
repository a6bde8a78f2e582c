//! nginx answering a static 200 on loopback: the yardstick for the gateway's cheap path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BenchError;

pub struct Nginx {
    child: Child,
    conf: PathBuf,
    dir: PathBuf,
    pub url: String,
}

/// The nginx binary, or why there is none.
pub fn find() -> Result<PathBuf, String> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "nginx is not installed (apt-get install nginx-light)".to_owned())
}

fn config(dir: &Path, port: u16, workers: usize) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  keepalive_requests 10000000;\n  keepalive_timeout 120s;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ default_type text/plain; return 200 \"ok\\n\"; }}\n  }}\n}}\n"
    )
}

impl Nginx {
    /// Starts nginx with as many workers as the gateway has, and waits until it answers.
    pub async fn start(binary: &Path, dir: &Path, workers: usize) -> Result<Self, BenchError> {
        let port = crate::gateway::free_port()?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(dir, port, workers))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("starting nginx: {e}")))?;
        let mut nginx = Nginx {
            child,
            conf,
            dir: dir.to_path_buf(),
            url: format!("http://127.0.0.1:{port}/"),
        };
        let client = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(BenchError::Setup(format!(
                    "nginx exited with {status}: {log}"
                )));
            }
            if let Ok(r) = client.get(&nginx.url).send().await {
                if r.status().is_success() {
                    return Ok(nginx);
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup("nginx did not answer within 20 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the master to stop its workers and exit (killing only the master would orphan them).
    pub async fn stop(mut self, binary: &Path) -> Result<(), BenchError> {
        let stopped = Command::new(binary)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(&self.conf)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await?;
        if !stopped.success() {
            self.child.kill().await?;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(())
    }
}
