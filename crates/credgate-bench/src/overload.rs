//! Section 8, overload: ten times more simultaneous logins than the hash pool serves in a
//! second, each on its own connection, against a cost-12 gateway with the default bound on
//! the hash queue's wait. Every login must be answered (served, or shed at once with 503 and
//! `Retry-After`); reported are served/s, shed/s, the p99 of the answered logins, `/healthz`
//! p99 during the flood and the gateway's peak RSS.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::Figures;
use crate::run::Site;
use crate::stats::{self, micros};
use crate::{bound, BenchError};

/// What one flood produced.
#[derive(Debug, Default)]
pub struct Flood {
    pub served: usize,
    pub shed: usize,
    /// Answers other than 200 and 503, and failed requests.
    pub other: usize,
    pub elapsed: Duration,
    pub answered: Vec<Duration>,
    pub healthz: Vec<Duration>,
}

/// One login on its own connection: (status, latency); status 0 when no answer came.
async fn login(base: String, username: String, password: &'static str) -> (u16, Duration) {
    let client = crate::load::connection();
    let started = Instant::now();
    let status = client
        .post(format!("{base}/v1/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", username.as_str()),
            ("password", password),
        ])
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// Probes `/healthz` on one kept-alive connection until `stop`, every 10 ms.
async fn probe(base: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let client = crate::load::connection();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            samples.push(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    samples
}

/// Sends `logins` simultaneous logins of `username` and waits for every answer.
pub async fn flood(base: &str, username: &str, logins: usize) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(probe(base.to_owned(), Arc::clone(&stop)));
    let started = Instant::now();
    let tasks: Vec<_> = (0..logins)
        .map(|_| {
            tokio::spawn(login(
                base.to_owned(),
                username.to_owned(),
                crate::seed::PASSWORDS[0],
            ))
        })
        .collect();
    let mut out = Flood::default();
    for task in tasks {
        match task.await {
            Ok((200, took)) => {
                out.served += 1;
                out.answered.push(took);
            }
            Ok((503, took)) => {
                out.shed += 1;
                out.answered.push(took);
            }
            _ => out.other += 1,
        }
    }
    out.elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    out.healthz = prober.await.unwrap_or_default();
    out
}

/// Runs the section on `site` (a cost-`cost` gateway) and records its figures.
pub async fn overload(site: &Site, cost: u32, figures: &mut Figures) -> Result<(), BenchError> {
    let cores = bound::cores();
    let pairs = tokio::task::spawn_blocking(move || {
        bound::pairs_per_second(cost, cores, Duration::from_secs(2))
    })
    .await
    .map_err(|e| BenchError::Setup(e.to_string()))??;
    // A login is one verify, half a pair.
    let per_second = (2.0 * pairs).max(1.0);
    let logins = (10.0 * per_second).ceil() as usize;
    eprintln!("  overload: {logins} simultaneous logins (pool serves about {per_second:.1}/s)");
    let mut result = flood(&site.gateway.base, &site.login_user().username, logins).await;
    let secs = result.elapsed.as_secs_f64().max(1e-3);
    let p99 = stats::quantile(&mut result.answered, 0.99).unwrap_or_default();
    let healthz = stats::quantile(&mut result.healthz, 0.99).unwrap_or_default();
    let (peak_kib, _) = site.gateway.memory_kib()?;
    eprintln!(
        "  overload: {:.1} served/s, {:.1} shed/s, p99 answered {:.0} ms, /healthz p99 {:.1} ms, peak RSS {:.1} MiB, {} unanswered",
        result.served as f64 / secs,
        result.shed as f64 / secs,
        micros(p99) / 1e3,
        micros(healthz) / 1e3,
        peak_kib as f64 / 1024.0,
        result.other
    );
    figures.record("overload.served_per_s", result.served as f64 / secs);
    figures.record("overload.shed_per_s", result.shed as f64 / secs);
    figures.record("overload.p99_ms", micros(p99) / 1e3);
    figures.record("overload.healthz_p99_ms", micros(healthz) / 1e3);
    figures.record("overload.peak_rss_mib", peak_kib as f64 / 1024.0);
    if result.other > 0 {
        figures.note(format!(
            "overload: {} login(s) neither served nor shed",
            result.other
        ));
    }
    figures.note(format!(
        "overload (cost {cost}, {logins} simultaneous logins): {:.1} served/s, {:.1} shed/s, \
         p99 answered {:.0} ms, /healthz p99 {:.1} ms, peak RSS {:.1} MiB",
        result.served as f64 / secs,
        result.shed as f64 / secs,
        micros(p99) / 1e3,
        micros(healthz) / 1e3,
        peak_kib as f64 / 1024.0
    ));
    Ok(())
}
