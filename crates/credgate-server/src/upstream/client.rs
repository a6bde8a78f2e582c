//! Sending upstream requests: pooled reqwest clients (rustls), one per upstream and thread, a
//! timeout per attempt, and bounded retries for idempotent calls only. Nothing secret is logged:
//! requests are named by upstream, operation and status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use credgate_core::Error;
use credgate_dialect::upstream::{
    OkReading, Reply, Session, UpstreamAuth, UpstreamCommand, Values,
};
use credgate_dialect::{Dialect, HttpResponse};

use super::per_thread::PerThread;
use super::UpstreamSettings;

/// Largest upstream answer read; credential answers are small.
const MAX_ANSWER: usize = 1024 * 1024;

/// How long a readiness probe waits for an upstream: well inside a probe's usual period.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct UpstreamClient {
    pub name: String,
    pub dialect: Arc<Dialect>,
    base_url: String,
    auth: UpstreamAuth,
    http: PerThread,
    retries: u32,
    /// How each operation's success answer is read, worked out once.
    readings: Vec<OkReading>,
}

/// Why a call failed, for the metric's `outcome` label.
enum Failure {
    /// The upstream answered with an error it means (wrong password, policy, ...).
    Rejected(Error),
    Timeout,
    Unavailable,
    /// The request could not be built: a configuration problem.
    Misconfigured,
}

impl UpstreamClient {
    pub fn new(
        settings: &UpstreamSettings,
        dialect: Arc<Dialect>,
        roots: &[reqwest::Certificate],
    ) -> Result<Self, String> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let roots = roots.to_vec();
        let http = PerThread::new(move || {
            crate::tls::with_roots(reqwest::Client::builder(), &roots)
                .use_rustls_tls()
                .timeout(timeout)
                .connect_timeout(timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                // A redirect would carry credentials to a place nobody configured.
                .redirect(reqwest::redirect::Policy::none())
        })
        .map_err(|e| format!("upstream {}: {e}", settings.name))?;
        Ok(Self {
            name: settings.name.clone(),
            base_url: settings.base_url.clone(),
            auth: UpstreamAuth {
                client_id: settings.auth.client_id.clone(),
                client_secret: settings.auth.client_secret.clone(),
                app_key: settings.auth.app_key.clone(),
            },
            readings: [
                UpstreamCommand::Login,
                UpstreamCommand::ChangePassword,
                UpstreamCommand::RequestReset,
                UpstreamCommand::ClientToken,
            ]
            .into_iter()
            .filter_map(|op| dialect.ok_reading(op))
            .collect(),
            dialect,
            http,
            retries: settings.retries,
        })
    }

    /// Whether the upstream answers HTTP at all (`/readyz`): any status counts, since a legacy
    /// API's root may well be a 404; only a refused connection or a timeout does not.
    pub async fn reachable(&self) -> bool {
        self.http
            .get()
            .head(&self.base_url)
            .timeout(PROBE_TIMEOUT)
            .send()
            .await
            .is_ok()
    }

    /// One operation on the upstream. Outages and unreadable answers are `Unavailable`.
    pub async fn call(
        &self,
        op: UpstreamCommand,
        values: &Values,
        session: Option<&Session>,
    ) -> Result<Reply, Error> {
        let started = Instant::now();
        let result = self.attempt_all(op, values, session).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Failure::Rejected(Error::Unavailable)) => "unavailable",
            Err(Failure::Rejected(_)) => "rejected",
            Err(Failure::Timeout) => "timeout",
            Err(Failure::Unavailable) => "unavailable",
            Err(Failure::Misconfigured) => "error",
        };
        let (upstream, operation) = (self.name.clone(), op.as_str());
        metrics::counter!("credgate_upstream_calls_total", "upstream" => upstream.clone(), "operation" => operation, "outcome" => outcome).increment(1);
        metrics::histogram!("credgate_upstream_call_duration_seconds", "upstream" => upstream, "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        tracing::debug!(upstream = %self.name, operation, outcome, "upstream call");
        result.map_err(|f| match f {
            Failure::Rejected(e) => e,
            _ => Error::Unavailable,
        })
    }

    async fn attempt_all(
        &self,
        op: UpstreamCommand,
        values: &Values,
        session: Option<&Session>,
    ) -> Result<Reply, Failure> {
        let request = self
            .dialect
            .upstream_request(op, &self.base_url, values, &self.auth, session)
            .map_err(|e| {
                tracing::error!(upstream = %self.name, error = %e, "cannot build the upstream request");
                Failure::Misconfigured
            })?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Failure::Misconfigured)?;
        let attempts = if request.idempotent() {
            1 + self.retries
        } else {
            1
        };
        let mut failure = Failure::Unavailable;
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100 << (attempt - 2).min(4))).await;
            }
            let mut builder = self.http.get().request(method.clone(), &request.url);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let answer = match builder.body(request.body.clone()).send().await {
                Ok(answer) => answer,
                Err(e) => {
                    failure = if e.is_timeout() {
                        Failure::Timeout
                    } else {
                        Failure::Unavailable
                    };
                    tracing::warn!(upstream = %self.name, operation = op.as_str(), attempt, timeout = e.is_timeout(), "upstream unreachable");
                    continue;
                }
            };
            let response = match read(answer).await {
                Ok(r) => r,
                Err(f) => {
                    failure = f;
                    continue;
                }
            };
            if response.status >= 500 && attempt < attempts {
                tracing::warn!(upstream = %self.name, operation = op.as_str(), status = response.status, attempt, "upstream error, retrying");
                continue;
            }
            let reading = self.readings.iter().find(|r| r.op() == op);
            return match reading {
                Some(reading) => self.dialect.read_reply(reading, &response),
                None => self.dialect.upstream_reply(op, &response),
            }
            .map_err(Failure::Rejected);
        }
        Err(failure)
    }
}

async fn read(answer: reqwest::Response) -> Result<HttpResponse, Failure> {
    let status = answer.status().as_u16();
    let headers = answer
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    if answer
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(Failure::Unavailable);
    }
    let body = answer.bytes().await.map_err(|e| {
        if e.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Unavailable
        }
    })?;
    if body.len() > MAX_ANSWER {
        return Err(Failure::Unavailable);
    }
    Ok(HttpResponse {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// Errors that are credgate's own business with the upstream (its client secret, app key,
/// a request the upstream could not read) are an outage to the caller, not the caller's fault.
pub fn for_caller(upstream: &str, error: Error) -> Error {
    match error {
        Error::InvalidClient
        | Error::UnknownApp
        | Error::CsrfRejected
        | Error::MalformedRequest(_)
        | Error::UnsupportedMediaType
        | Error::PayloadTooLarge
        | Error::RequestTimeout
        | Error::Internal => {
            tracing::error!(%upstream, kind = error.kind(), "the upstream refused credgate's own request; check its auth settings");
            Error::Unavailable
        }
        other => other,
    }
}
