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

/// Serves every request on 127.0.0.1:`port` by sending it to `upstream` (same method, path,
/// query, content type and body; one reqwest client per worker, as credgate keeps one per
/// upstream and thread) and answering with the upstream's status, content type and body: the
/// cost of one HTTP hop through actix-web and reqwest, with none of credgate's work.
pub fn forward(port: u16, workers: usize, upstream: &str) -> std::io::Result<()> {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    async fn pass(
        req: HttpRequest,
        body: web::Bytes,
        to: web::Data<(reqwest::Client, String)>,
    ) -> HttpResponse {
        let (client, base) = to.get_ref();
        let url = format!("{base}{}", req.uri());
        let Ok(method) = reqwest::Method::from_bytes(req.method().as_str().as_bytes()) else {
            return HttpResponse::MethodNotAllowed().finish();
        };
        let mut sent = client.request(method, url).body(body);
        if let Some(kind) = req.headers().get("content-type") {
            sent = sent.header("content-type", kind.as_bytes());
        }
        let Ok(answer) = sent.send().await else {
            return HttpResponse::BadGateway().finish();
        };
        let status = answer.status().as_u16();
        let kind = answer.headers().get("content-type").cloned();
        let Ok(body) = answer.bytes().await else {
            return HttpResponse::BadGateway().finish();
        };
        let status = actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
        let mut res = HttpResponse::build(status);
        if let Some(kind) = kind {
            res.insert_header(("content-type", kind.as_bytes()));
        }
        res.body(body)
    }
    let base = upstream.trim_end_matches('/').to_owned();
    let clients = (0..workers.max(1))
        .map(|_| reqwest::Client::builder().no_proxy().build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    let (clients, next) = (
        std::sync::Arc::new(clients),
        std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    );
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let client = clients[n % clients.len()].clone();
            App::new()
                .app_data(web::Data::new((client, base.clone())))
                .default_service(web::to(pass))
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
