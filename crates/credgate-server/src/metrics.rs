//! Prometheus metrics. One recorder per process, installed by the first gateway that serves
//! metrics and shared by every later one (the test suite runs many gateways in one process);
//! `GET /metrics` renders it. Every request is counted by dialect, route template, status and
//! canonical outcome, and timed; the core records logins, changes, refusals and bcrypt waits.
//!
//! On the main listener `/metrics` needs the admin token (it faces clients); on its own
//! listener (`[metrics] listen`) it is open, for a scraper on a private address.

use std::collections::HashMap;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;

use crate::admin::Admin;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Record metrics and serve `GET /metrics`.
    pub enabled: bool,
    /// Serve `/metrics` (without the admin token) on this address instead of the main listener.
    pub listen: Option<String>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// Latency buckets in seconds: sub-millisecond routing up to slow bcrypt under load.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets. The recorder keeps every sample
/// until then (about 20 bytes each): left to scrapes alone, memory grows without bound while
/// nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Installs the process-wide recorder once, with its upkeep thread; `None` when another
/// recorder was there first.
pub fn install() -> Option<&'static PrometheusHandle> {
    static UPKEEP: Once = Once::new();
    let handle = recorder();
    if let Some(handle) = handle {
        UPKEEP.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    handle.run_upkeep();
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "metrics upkeep thread not started");
            }
        });
    }
    handle
}

fn recorder() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .and_then(|b| b.install_recorder());
            match installed {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "credgate_http_requests_total",
        "HTTP requests by dialect, route template, status and canonical outcome"
    );
    describe_histogram!(
        "credgate_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer a request, by dialect and route template"
    );
    describe_gauge!(
        "credgate_hash_queue_depth",
        "bcrypt jobs submitted and not finished"
    );
    describe_histogram!(
        "credgate_hash_wait_seconds",
        Unit::Seconds,
        "Time a bcrypt job waited for a hashing thread"
    );
    describe_counter!(
        "credgate_hash_shed_total",
        "Requests refused at once because the hash pool could not start them in time, by dialect"
    );
    describe_counter!(
        "credgate_hash_skipped_total",
        "Queued bcrypt jobs dropped unhashed because their request was cancelled"
    );
    describe_counter!(
        "credgate_logins_total",
        "Password logins by canonical outcome"
    );
    describe_counter!(
        "credgate_password_changes_total",
        "Password changes by canonical outcome"
    );
    describe_gauge!(
        "credgate_store_writable",
        "1 while the database accepts the readiness probe's write, 0 while it refuses it"
    );
    describe_counter!(
        "credgate_rate_limited_total",
        "Attempts refused by a guessing limit (and throttled reset requests), by scope"
    );
}

/// The Prometheus text exposition of everything recorded in this process.
pub fn scrape() -> HttpResponse {
    match HANDLE.get().and_then(Option::as_ref) {
        Some(handle) => {
            handle.run_upkeep();
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .insert_header(("Cache-Control", "no-store"))
                .body(handle.render())
        }
        None => HttpResponse::ServiceUnavailable()
            .json(json!({"type": "about:blank", "title": "metrics are not being recorded", "status": 503})),
    }
}

/// `GET /metrics` on the main listener: the admin token is required.
async fn scrape_as_admin(_: Admin) -> HttpResponse {
    scrape()
}

/// Registers `/metrics` on the main listener when metrics are served there.
pub fn main_routes(cfg: &mut web::ServiceConfig, on_main: bool) {
    if on_main {
        cfg.route("/metrics", web::get().to(scrape_as_admin));
    }
}

/// Labels a handler attaches to its response; requests without them are labelled by path.
#[derive(Debug, Clone)]
pub struct RequestLabels {
    pub dialect: String,
    /// The route's name or template, never the raw path (bounded cardinality).
    pub route: String,
    pub outcome: &'static str,
}

/// The canonical outcome of a native or admin response (set where the problem is rendered).
#[derive(Debug, Clone, Copy)]
pub struct OutcomeLabel(pub &'static str);

/// Counts and times one answered request (called by the one middleware every request passes,
/// `gate`, when `enabled`).
pub fn observe<B>(res: &ServiceResponse<B>, enabled: bool, started: Instant) {
    if enabled {
        let status = res.status();
        // Borrowed from the response, not copied (two strings fewer per request).
        let extensions = res.response().extensions();
        let fallback;
        let labels = match extensions.get::<RequestLabels>() {
            Some(labels) => labels,
            None => {
                fallback = {
                    let path = res.request().path();
                    let dialect = if path.starts_with("/admin") {
                        "admin"
                    } else if path == "/metrics" {
                        "metrics"
                    } else {
                        "native"
                    };
                    let outcome = res
                        .response()
                        .extensions()
                        .get::<OutcomeLabel>()
                        .map(|o| o.0)
                        .unwrap_or(if status.as_u16() < 400 { "ok" } else { "error" });
                    RequestLabels {
                        dialect: dialect.into(),
                        route: res
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".into()),
                        outcome,
                    }
                };
                &fallback
            }
        };
        let elapsed = started.elapsed().as_secs_f64();
        with_handles(labels, status, |route, requests| {
            requests.increment(1);
            route.duration.record(elapsed);
        });
        if labels.outcome == "overloaded" {
            metrics::counter!("credgate_hash_shed_total", "dialect" => labels.dialect.clone())
                .increment(1);
        }
    }
}

/// The handles of one (dialect, route): resolved once per worker thread and label set, so a
/// request does not build and hash its label set in the recorder's registry.
struct RouteHandles {
    duration: metrics::Histogram,
    /// `credgate_http_requests_total` by (status, outcome).
    requests: Vec<(u16, &'static str, metrics::Counter)>,
}

thread_local! {
    static HANDLES: std::cell::RefCell<HashMap<String, HashMap<String, RouteHandles>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Calls `f` with the request's handles (the same series the labels name, created on first
/// use). The label sets are the bounded ones of [`RequestLabels`].
fn with_handles(
    labels: &RequestLabels,
    status: StatusCode,
    f: impl FnOnce(&RouteHandles, &metrics::Counter),
) {
    HANDLES.with(|cell| {
        let mut all = cell.borrow_mut();
        // One lookup per level on the usual path; the first request of a dialect inserts.
        let routes = match all.get_mut(&labels.dialect) {
            Some(routes) => routes,
            None => all.entry(labels.dialect.clone()).or_default(),
        };
        let route = match routes.get_mut(&labels.route) {
            Some(route) => route,
            None => {
                let (dialect, route) = (labels.dialect.clone(), labels.route.clone());
                let handles = RouteHandles {
                    duration: metrics::histogram!("credgate_http_request_duration_seconds",
                        "dialect" => dialect, "route" => route),
                    requests: Vec::new(),
                };
                routes.entry(labels.route.clone()).or_insert(handles)
            }
        };
        let found = (route.requests.iter())
            .position(|(s, o, _)| *s == status.as_u16() && *o == labels.outcome);
        let index = found.unwrap_or_else(|| {
            let counter = metrics::counter!("credgate_http_requests_total",
                "dialect" => labels.dialect.clone(), "route" => labels.route.clone(),
                "status" => status.as_str().to_owned(), "outcome" => labels.outcome);
            route
                .requests
                .push((status.as_u16(), labels.outcome, counter));
            route.requests.len() - 1
        });
        if let Some((_, _, counter)) = route.requests.get(index) {
            f(route, counter);
        }
    });
}
