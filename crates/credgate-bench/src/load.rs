//! The load generator: a fixed number of client tasks, each looping on its own keep-alive
//! connection; a warm-up, then a timed window in which completions and latencies count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats;

/// One kind of request, sent over and over.
pub trait Workload: Send + Sync + 'static {
    /// The next request of connection `conn`.
    fn request(&self, client: &reqwest::Client, conn: usize) -> reqwest::RequestBuilder;
    fn expected_status(&self) -> u16;
    /// Called after each expected answer on `conn`, so stateful workloads move on.
    fn succeeded(&self, _conn: usize) {}
}

#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub connections: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// Each connection sends at most one request per `pace` (a probe, not a flood).
    pub pace: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Expected answers per second in the window.
    pub rate: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Every latency of the window, sorted.
    pub samples: Vec<Duration>,
}

#[derive(Default)]
struct ConnectionLog {
    latencies: Vec<Duration>,
    completions: Vec<Duration>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

/// A client that keeps exactly one connection to the gateway.
pub fn connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap_or_default()
}

/// Runs `workload` on `spec.connections` connections; in-flight requests are always allowed
/// to finish, so no work spills into the next measurement and no change is left unknown.
pub async fn run(workload: Arc<dyn Workload>, spec: LoadSpec) -> LoadResult {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.window;
    let tasks: Vec<_> = (0..spec.connections)
        .map(|conn| {
            let workload = Arc::clone(&workload);
            tokio::spawn(connection_loop(
                workload,
                conn,
                measure_from,
                end,
                spec.pace,
            ))
        })
        .collect();
    let mut all = ConnectionLog::default();
    for task in tasks {
        let Ok(log) = task.await else {
            all.errors += 1;
            continue;
        };
        all.latencies.extend(log.latencies);
        all.completions.extend(log.completions);
        all.ok += log.ok;
        all.errors += log.errors;
        all.first_error = all.first_error.or(log.first_error);
    }
    LoadResult {
        rate: stats::rate(&mut all.completions),
        p50: stats::quantile(&mut all.latencies, 0.50).unwrap_or_default(),
        p99: stats::quantile(&mut all.latencies, 0.99).unwrap_or_default(),
        ok: all.ok,
        errors: all.errors,
        first_error: all.first_error,
        samples: all.latencies,
    }
}

async fn connection_loop(
    workload: Arc<dyn Workload>,
    conn: usize,
    measure_from: Instant,
    end: Instant,
    pace: Option<Duration>,
) -> ConnectionLog {
    let client = connection();
    let mut log = ConnectionLog::default();
    let mut ticker = pace.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let answer = workload.request(&client, conn).send().await;
        let outcome = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.bytes().await;
                match body {
                    Ok(_) if status == workload.expected_status() => Ok(()),
                    Ok(b) => Err(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&b[..b.len().min(200)])
                    )),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(format!("request failed: {e}")),
        };
        let t1 = Instant::now();
        match outcome {
            Ok(()) => {
                workload.succeeded(conn);
                log.ok += 1;
                if t0 >= measure_from {
                    log.latencies.push(t1 - t0);
                }
                if t1 >= measure_from && t1 <= end {
                    log.completions.push(t1 - measure_from);
                }
            }
            Err(e) => {
                log.errors += 1;
                log.first_error.get_or_insert(e);
                // A refused connection must not turn into a busy loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    log
}
