//! A bare actix-web handler answering a static 200 on loopback: the stack credgate is built on,
//! with none of credgate's work, measured next to nginx so the cheap path's ratios can be read
//! against what the stack itself reaches on this machine. It runs as this binary started again
//! with `--serve-bare-actix PORT` (actix-web needs its own runtime, not the bench's).

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BenchError;

/// Serves `GET /` → 200 `ok` on 127.0.0.1:`port` with `workers` workers until killed.
pub fn serve(port: u16, workers: usize) -> std::io::Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new().route(
                "/",
                web::get()
                    .to(|| async { HttpResponse::Ok().content_type("text/plain").body("ok\n") }),
            )
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}

pub struct BareActix {
    child: Child,
    pub url: String,
}

impl BareActix {
    /// Starts the handler with `workers` workers (as many as the gateway has) and waits until
    /// it answers.
    pub async fn start(workers: usize) -> Result<Self, BenchError> {
        let port = crate::gateway::free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .args(["--serve-bare-actix", &port.to_string()])
            .args(["--bare-actix-workers", &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut bare = BareActix {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let client = reqwest::Client::builder().no_proxy().build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = bare.child.try_wait()? {
                return Err(BenchError::Setup(format!(
                    "the bare actix-web handler exited with {status}"
                )));
            }
            if let Ok(r) = client.get(&bare.url).send().await {
                if r.status().is_success() {
                    return Ok(bare);
                }
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(
                    "the bare actix-web handler did not answer within 20 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) -> Result<(), BenchError> {
        self.child.kill().await?;
        Ok(())
    }
}
