//! The example runner behind gated dialect reloads: each example of a changed dialect is
//! replayed (by [`crate::runner`]) against its own scratch gateway — a temporary SQLite file,
//! the candidate dialect alone, a loopback port — so examples never see each other's users.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use credgate_core::SystemClock;
use credgate_dialect::example::Example;
use credgate_dialect::DialectSet;
use credgate_server::reload::{Candidate, ExampleFailure, ExampleRunner, RunFuture};
use credgate_server::settings::{NotifierKind, Settings};

use crate::runner::{replay, Target};

/// Replays examples in process; installed by `credgate serve` and the test kit.
pub struct ExampleReplay;

impl ExampleRunner for ExampleReplay {
    fn run<'a>(&'a self, settings: &'a Settings, candidates: Vec<Candidate>) -> RunFuture<'a> {
        Box::pin(run_all(settings, candidates))
    }
}

async fn run_all(
    settings: &Settings,
    candidates: Vec<Candidate>,
) -> Result<Vec<ExampleFailure>, String> {
    let mut failures = Vec::new();
    for candidate in candidates {
        let Some(dir) = &candidate.examples else {
            tracing::warn!(dialect = %candidate.dialect, "reload: the dialect has no examples to replay");
            continue;
        };
        let set = Arc::new(candidate.set);
        for (name, example) in examples_in(dir)? {
            let fail = |mismatches| ExampleFailure {
                dialect: candidate.dialect.clone(),
                example: name.clone(),
                mismatches,
            };
            match example {
                Err(e) => failures.push(fail(vec![e])),
                Ok(example) => {
                    let scratch = Scratch::start(settings, Arc::clone(&set)).await?;
                    let result = replay(&scratch.target, &example).await;
                    scratch.stop().await;
                    if let Err(mismatches) = result {
                        failures.push(fail(mismatches));
                    }
                }
            }
        }
    }
    Ok(failures)
}

/// `(file stem, parsed example or why it does not parse)` for every `*.toml`, sorted.
type ExampleFile = (String, Result<Example, String>);

fn examples_in(dir: &Path) -> Result<Vec<ExampleFile>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|f| {
            let name = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parsed = std::fs::read_to_string(&f)
                .map_err(|e| e.to_string())
                .and_then(|text| Example::parse(&text))
                .map_err(|e| format!("{}: {e}", f.display()));
            (name, parsed)
        })
        .collect())
}

/// A throwaway gateway: the operator's policy and limits, the candidate dialect, its own
/// database and admin token, cheap bcrypt, no metrics, and resets kept in a local outbox.
struct Scratch {
    target: Target,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

impl Scratch {
    async fn start(settings: &Settings, dialects: Arc<DialectSet>) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("scratch folder: {e}"))?;
        let admin_token = credgate_core::token::generate();
        let mut s = settings.clone();
        s.listen = "127.0.0.1:0".into();
        s.database_url = dir.path().join("scratch.db").display().to_string();
        s.admin_token = Some(admin_token.clone());
        s.bcrypt_cost = 4;
        s.hash_threads = 1;
        s.workers = 1;
        s.store.auto_migrate = true;
        s.metrics.enabled = false;
        s.metrics.listen = None;
        s.dialects.mount.clear();
        s.dialects.dirs.clear();
        // Examples must never reach a real legacy backend.
        s.upstreams.clear();
        s.reset.notifier = NotifierKind::Outbox;
        s.reset.outbox = dir.path().join("outbox.jsonl");
        s.reset.webhook_url = None;
        let state = credgate_server::build_state_with(&s, Arc::new(SystemClock), dialects)
            .await
            .map_err(|e| format!("scratch gateway: {e}"))?;
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| format!("scratch gateway: {e}"))?;
        let url = listener
            .local_addr()
            .map(|a| format!("http://{a}"))
            .map_err(|e| format!("scratch gateway: {e}"))?;
        let server = credgate_server::serve(listener, state, &s)
            .map_err(|e| format!("scratch gateway: {e}"))?;
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self {
            target: Target::new(url, Some(admin_token.expose().to_owned())),
            handle,
            _dir: dir,
        })
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}
