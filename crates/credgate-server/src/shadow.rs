//! Shadow mode, the server's part: after the upstream's answer has gone out, the core works out
//! what credgate would have answered ([`CredentialService::shadow_settle`]); here both are
//! rendered in the client's dialect for their statuses, compared, counted
//! (`credgate_shadow_comparisons_total{dialect,route,result}`) and stored. The admin API reads
//! them back: `GET /admin/shadow/divergences` and `GET /admin/shadow/summary`.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use credgate_core::shadow::{
    ShadowBounds, ShadowComparison, ShadowPending, ShadowQuery, ShadowTally, ShadowVerdict,
};
use credgate_core::{CredentialService, Error};
use credgate_dialect::{RequestView, RouteMatch};
use serde::{Deserialize, Serialize};

use crate::admin::Admin;
use crate::app::AppState;
use crate::problem::Problem;

/// `[shadow]`: how comparisons are kept, and when a route is ready to cut over.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowSettings {
    /// Comparisons kept at most (the oldest go first).
    pub max_records: u32,
    /// Comparisons older than this are dropped, and the report's default window.
    pub max_age_secs: u64,
    /// Comparisons a route needs, with no divergence in the window, to be ready to cut over.
    pub ready_after: u64,
}

impl Default for ShadowSettings {
    fn default() -> Self {
        Self {
            max_records: 100_000,
            max_age_secs: 7 * 24 * 3600,
            ready_after: 1000,
        }
    }
}

/// What is needed to compare one request once its answer has gone out.
pub struct Answered<'a> {
    pub matched: &'a RouteMatch,
    pub view: &'a RequestView,
    pub request_id: String,
    /// The request and the answer the client received (the upstream's outcome in its dialect),
    /// recorded with their secrets replaced off the response path
    /// ([`crate::shadow_exchange::record`]).
    pub request: credgate_dialect::HttpRequest,
    pub answer: credgate_dialect::HttpResponse,
}

/// Compares and records off the response path (a task of its own).
pub fn spawn_compare(
    core: Arc<CredentialService>,
    settings: ShadowSettings,
    answered: Answered<'_>,
    pending: ShadowPending,
) {
    let m = RouteMatch {
        dialect: Arc::clone(&answered.matched.dialect),
        route: answered.matched.route,
        params: answered.matched.params.clone(),
    };
    let view = answered.view.clone();
    let (request, answer, request_id) = (answered.request, answered.answer, answered.request_id);
    tokio::spawn(async move {
        let exchange = crate::shadow_exchange::record(&request, &view, m.route(), &answer);
        let upstream_status = answer.status;
        let verdict = core.shadow_settle(pending).await;
        let local_status = match &verdict.local {
            Err(e) => m.dialect.render_error(Some(&m), &view, e).status,
            Ok(()) if verdict.upstream.is_ok() => upstream_status,
            Ok(()) => m.route().spec.ok.status,
        };
        let mut comparison = compare(
            &verdict,
            &m,
            (upstream_status, local_status),
            request_id,
            core.now(),
        );
        comparison.exchange = Some(exchange);
        metrics::counter!(
            "credgate_shadow_comparisons_total",
            "dialect" => comparison.dialect.clone(),
            "route" => comparison.route.clone(),
            "result" => comparison.result.clone()
        )
        .increment(1);
        let bounds = ShadowBounds {
            max_records: settings.max_records.max(1),
            oldest: core.now() - settings.max_age_secs as i64,
        };
        if let Err(e) = core.record_shadow(&comparison, bounds).await {
            tracing::warn!(kind = e.kind(), "shadow comparison not stored");
        }
    });
}

fn outcome(result: &Result<(), Error>) -> String {
    credgate_core::telemetry::outcome_label(result).to_owned()
}

/// The stored form of a verdict: canonical outcomes, statuses, and the names of what differs.
fn compare(
    verdict: &ShadowVerdict,
    m: &RouteMatch,
    (upstream_status, local_status): (u16, u16),
    request_id: String,
    at: i64,
) -> ShadowComparison {
    let result = verdict.result();
    let (upstream_outcome, local_outcome) = (outcome(&verdict.upstream), outcome(&verdict.local));
    let mut fields = Vec::new();
    if result.kind().is_some() {
        if upstream_outcome != local_outcome {
            fields.push("outcome".to_owned());
        }
        if upstream_status != local_status {
            fields.push("status".to_owned());
        }
        if let (Err(Error::PolicyViolation { .. }), _) | (_, Err(Error::PolicyViolation { .. })) =
            (&verdict.upstream, &verdict.local)
        {
            fields.push("rules".to_owned());
        }
    }
    ShadowComparison {
        at,
        dialect: m.dialect.name.clone(),
        route: m.route().spec.name.clone(),
        request_id,
        result: result.as_str().to_owned(),
        kind: result.kind().map(str::to_owned),
        upstream_outcome,
        upstream_status,
        local_outcome,
        local_status,
        fields,
        exchange: None,
        synced: verdict.synced,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DivergenceParams {
    dialect: Option<String>,
    route: Option<String>,
    kind: Option<String>,
    since: Option<i64>,
    #[serde(default)]
    limit: u32,
}

/// `GET /admin/shadow/divergences`: stored divergences, newest first.
pub async fn divergences(
    _: Admin,
    params: web::Query<DivergenceParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let p = params.into_inner();
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let query = ShadowQuery {
        dialect: nonempty(p.dialect),
        route: nonempty(p.route),
        result: Some("divergence".into()),
        kind: nonempty(p.kind),
        since: p.since,
        limit: p.limit,
    };
    let records = state.core.shadow_comparisons(&query).await?;
    Ok(HttpResponse::Ok().json(records))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeParams {
    dialect: Option<String>,
    #[serde(default)]
    limit: u32,
}

/// `GET /admin/shadow/exchanges`: recorded comparisons that carry their exchange (secrets
/// already replaced), newest first, for `credgate shadow examples`.
pub async fn exchanges(
    _: Admin,
    params: web::Query<ExchangeParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let p = params.into_inner();
    let query = ShadowQuery {
        dialect: p.dialect.filter(|s| !s.is_empty()),
        limit: p.limit,
        ..ShadowQuery::default()
    };
    let mut records = state.core.shadow_comparisons(&query).await?;
    records.retain(|r| r.comparison.exchange.is_some());
    Ok(HttpResponse::Ok().json(records))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    since: Option<i64>,
}

/// One route's standing in the window.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteSummary {
    pub dialect: String,
    pub route: String,
    /// Every request answered by the upstream and compared (not-synced users included).
    pub compared: u64,
    pub agreements: u64,
    /// Divergences by kind.
    pub divergences: BTreeMap<String, u64>,
    pub not_synced: u64,
    /// Requests that created or updated a local user.
    pub users_synced: u64,
    /// At least `ready_after` comparisons and no divergence in the window.
    pub ready: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    pub since: i64,
    pub ready_after: u64,
    pub routes: Vec<RouteSummary>,
}

/// Folds the stored counts into one summary per (dialect, route).
pub fn summarize(tallies: &[ShadowTally], ready_after: u64) -> Vec<RouteSummary> {
    let mut routes: BTreeMap<(String, String), RouteSummary> = BTreeMap::new();
    for t in tallies {
        let r = routes
            .entry((t.dialect.clone(), t.route.clone()))
            .or_insert_with(|| RouteSummary {
                dialect: t.dialect.clone(),
                route: t.route.clone(),
                ..RouteSummary::default()
            });
        r.compared += t.count;
        r.users_synced += t.synced;
        match t.result.as_str() {
            "agreement" => r.agreements += t.count,
            "not_synced" => r.not_synced += t.count,
            _ => {
                let kind = t.kind.clone().unwrap_or_else(|| "other".into());
                *r.divergences.entry(kind).or_default() += t.count;
            }
        }
    }
    let mut out: Vec<RouteSummary> = routes.into_values().collect();
    for r in &mut out {
        r.ready = r.compared >= ready_after && r.divergences.is_empty();
    }
    out
}

/// `GET /admin/shadow/summary`: per dialect and route since `since` (default: the kept window).
pub async fn summary(
    _: Admin,
    params: web::Query<SummaryParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let since = params
        .since
        .unwrap_or_else(|| state.core.now() - state.shadow.max_age_secs as i64);
    let tallies = state.core.shadow_tallies(since).await?;
    Ok(HttpResponse::Ok().json(Summary {
        since,
        ready_after: state.shadow.ready_after,
        routes: summarize(&tallies, state.shadow.ready_after),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tally(route: &str, result: &str, kind: Option<&str>, count: u64) -> ShadowTally {
        ShadowTally {
            dialect: "crayon".into(),
            route: route.into(),
            result: result.into(),
            kind: kind.map(str::to_owned),
            count,
            synced: 1,
        }
    }

    #[test]
    fn a_route_is_ready_with_enough_comparisons_and_no_divergence() {
        let tallies = [
            tally("token", "agreement", None, 4),
            tally("token", "not_synced", None, 1),
            tally("change", "agreement", None, 9),
            tally("change", "divergence", Some("policy"), 1),
        ];
        let s = summarize(&tallies, 5);
        let change = s.iter().find(|r| r.route == "change").unwrap();
        let token = s.iter().find(|r| r.route == "token").unwrap();
        assert_eq!((change.compared, change.agreements), (10, 9));
        assert_eq!(change.divergences["policy"], 1);
        assert!(!change.ready, "a divergence holds the cut-over back");
        assert_eq!(
            (token.compared, token.not_synced, token.users_synced),
            (5, 1, 2)
        );
        assert!(token.ready);
        assert!(!summarize(&tallies, 6)
            .iter()
            .any(|r| r.route == "token" && r.ready));
    }
}
