//! Gated hot reload of the dialect set (SIGHUP, `POST /admin/dialects/reload`): re-read the
//! dialect folders, find the dialects whose files changed, replay each one's examples against
//! a scratch gateway, and swap the new set in only when every example passes. Otherwise the old
//! set keeps serving and the failures are logged and answered. The example runner is injected
//! (the `credgate` crate provides it on top of its example runner).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use actix_web::{web, HttpResponse};
use credgate_dialect::{DialectSet, DialectSource};
use serde::Serialize;

use crate::admin::Admin;
use crate::app::AppState;
use crate::settings::Settings;

/// One changed dialect to prove before it is served: alone and unmounted (its examples use
/// the vendor's own paths), with the operator's vars and CSRF settings.
pub struct Candidate {
    pub dialect: String,
    pub set: DialectSet,
    /// `<folder>/examples` next to its dialect file, when there is one.
    pub examples: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExampleFailure {
    pub dialect: String,
    /// The example's file name without `.toml`.
    pub example: String,
    pub mismatches: Vec<String>,
}

pub type RunFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ExampleFailure>, String>> + Send + 'a>>;

/// Replays the candidates' examples against scratch gateways built from `settings`.
pub trait ExampleRunner: Send + Sync {
    fn run<'a>(&'a self, settings: &'a Settings, candidates: Vec<Candidate>) -> RunFuture<'a>;
}

/// What a reload did; the body of the admin endpoint's answer.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    /// `reloaded`, `unchanged` or `rejected`.
    pub status: &'static str,
    pub changed: Vec<String>,
    /// Why the new files could not be loaded at all.
    pub error: Option<String>,
    pub failures: Vec<ExampleFailure>,
}

impl ReloadReport {
    pub fn accepted(&self) -> bool {
        self.status != "rejected"
    }

    fn rejected(
        changed: Vec<String>,
        error: Option<String>,
        failures: Vec<ExampleFailure>,
    ) -> Self {
        Self {
            status: "rejected",
            changed,
            error,
            failures,
        }
    }
}

/// The settings to re-read from, the injected runner, and a lock so reloads run one at a time.
pub struct Reloader {
    settings: Settings,
    runner: OnceLock<Arc<dyn ExampleRunner>>,
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            runner: OnceLock::new(),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Installs the example runner (once; later calls are ignored).
    pub fn install(&self, runner: Arc<dyn ExampleRunner>) {
        let _ = self.runner.set(runner);
    }
}

/// Re-reads, validates and (when every changed dialect's examples pass) swaps the dialect set.
pub async fn reload(state: &AppState) -> ReloadReport {
    let reloader = &state.reloader;
    let _one_at_a_time = reloader.busy.lock().await;
    let report = attempt(state, reloader).await;
    log(&report);
    report
}

async fn attempt(state: &AppState, reloader: &Reloader) -> ReloadReport {
    let settings = &reloader.settings;
    let candidate = match crate::app::load_dialects(settings) {
        Ok(set) => set,
        Err(e) => return ReloadReport::rejected(vec![], Some(e.to_string()), vec![]),
    };
    let current = state.dialects();
    let changed = changed_dialects(&current, &candidate);
    if changed.is_empty() {
        return ReloadReport {
            status: "unchanged",
            changed,
            error: None,
            failures: vec![],
        };
    }
    let Some(runner) = reloader.runner.get() else {
        let why = "no example runner is installed: a reload cannot be validated".to_owned();
        return ReloadReport::rejected(changed, Some(why), vec![]);
    };
    let mut candidates = Vec::new();
    let mut options = crate::app::load_options(settings);
    options.mounts.clear();
    for name in &changed {
        // A removed dialect has nothing left to prove.
        let Some(d) = candidate.get(name) else {
            continue;
        };
        let source = DialectSource {
            origin: d.origin.clone(),
            text: d.source_text().to_owned(),
        };
        match DialectSet::load(&[source], &options) {
            Ok(set) => candidates.push(Candidate {
                dialect: name.clone(),
                set,
                examples: examples_dir(&d.origin),
            }),
            Err(e) => return ReloadReport::rejected(changed, Some(e.to_string()), vec![]),
        }
    }
    match runner.run(settings, candidates).await {
        Err(e) => ReloadReport::rejected(changed, Some(e), vec![]),
        Ok(failures) if !failures.is_empty() => ReloadReport::rejected(changed, None, failures),
        Ok(_) => {
            state.swap_dialects(Arc::new(candidate));
            ReloadReport {
                status: "reloaded",
                changed,
                error: None,
                failures: vec![],
            }
        }
    }
}

/// Dialects added, removed, or whose file (text or location) differs.
fn changed_dialects(current: &DialectSet, candidate: &DialectSet) -> Vec<String> {
    let mut names: Vec<String> = current
        .dialects()
        .iter()
        .chain(candidate.dialects())
        .map(|d| d.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names.retain(|name| match (current.get(name), candidate.get(name)) {
        (Some(a), Some(b)) => a.origin != b.origin || a.source_text() != b.source_text(),
        _ => true,
    });
    names
}

/// `<dir>/examples` for a dialect file on disk; none for the embedded ones.
fn examples_dir(origin: &str) -> Option<PathBuf> {
    let dir = Path::new(origin).parent()?.join("examples");
    dir.is_dir().then_some(dir)
}

fn log(report: &ReloadReport) {
    match report.status {
        "reloaded" => tracing::info!(changed = ?report.changed, "dialect reload: new set serving"),
        "unchanged" => tracing::info!("dialect reload: no dialect file changed"),
        _ => {
            tracing::warn!(changed = ?report.changed, error = ?report.error,
                failures = report.failures.len(), "dialect reload rejected; the old set keeps serving");
            for f in &report.failures {
                tracing::warn!(dialect = %f.dialect, example = %f.example,
                    mismatches = ?f.mismatches, "dialect reload: example failed");
            }
        }
    }
}

/// `POST /admin/dialects/reload`: 200 when swapped (or unchanged), 422 when refused.
pub async fn reload_endpoint(_: Admin, state: web::Data<AppState>) -> HttpResponse {
    let report = reload(&state).await;
    if report.accepted() {
        HttpResponse::Ok().json(report)
    } else {
        HttpResponse::UnprocessableEntity().json(report)
    }
}

/// Reloads on every SIGHUP for as long as the process runs.
pub fn reload_on_sighup(state: web::Data<AppState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP reload unavailable");
            return;
        }
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading TLS certificates and dialects");
            state.tls.reload();
            reload(&state).await;
        }
    });
}
