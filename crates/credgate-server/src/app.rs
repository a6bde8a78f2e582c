//! One `create_app` for the binary and the tests: state, routes, limits, middleware.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use arc_swap::ArcSwap;
use credgate_core::{Clock, CredentialService, SecretToken, SystemClock};
use credgate_dialect::{DialectSet, DialectSource, LoadOptions};
use credgate_store::StoreOptions;
use serde_json::json;

use crate::settings::Settings;
use crate::tls::ClientAuth;
use crate::{admin, dispatch, listeners, metrics, native, problem, reload};

pub struct AppState {
    pub core: Arc<CredentialService>,
    dialects: ArcSwap<DialectSet>,
    pub admin_token: Option<SecretToken>,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Re-reads and validates the dialect folders (SIGHUP, `POST /admin/dialects/reload`).
    pub reloader: reload::Reloader,
    /// Every cookie a dialect sets is marked `Secure` (`[cookies] secure`; a listener serving
    /// TLS itself, once credgate has one, turns it on as well).
    pub secure_cookies: bool,
    /// Proxies whose forwarding headers name the client address.
    pub proxies: crate::client_addr::TrustedProxies,
    /// The listeners' certificates (`[tls]`), re-read on SIGHUP.
    pub tls: Arc<crate::tls::Certificates>,
    /// Shadow mode: how comparisons are kept and judged.
    pub shadow: crate::shadow::ShadowSettings,
    /// The configured upstreams, probed by `/readyz`.
    pub upstreams: Vec<Arc<crate::upstream::UpstreamClient>>,
}

impl AppState {
    /// The set serving now; take it once per request.
    pub fn dialects(&self) -> Arc<DialectSet> {
        self.dialects.load_full()
    }

    /// Serves `set` from the next request on; requests under way finish on the set they took.
    pub fn swap_dialects(&self, set: Arc<DialectSet>) {
        self.core.set_token_lifetimes(set.token_lifetimes());
        self.dialects.store(set);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::settings::ConfigError),
    #[error("dialect: {0}")]
    Dialect(#[from] credgate_dialect::LoadError),
    #[error("database: {0}")]
    Store(#[from] credgate_core::StoreError),
    #[error("core: {0}")]
    Core(#[from] credgate_core::Error),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{key} = \"{addr}\": cannot listen: {reason}")]
    Listen {
        key: String,
        addr: String,
        reason: String,
    },
}

/// The shipped dialects, then those of the configured folders.
pub fn load_dialects(settings: &Settings) -> Result<DialectSet, credgate_dialect::LoadError> {
    let mut sources = DialectSource::embedded();
    for dir in &settings.dialects.dirs {
        sources.extend(DialectSource::from_dir(dir)?);
    }
    let set = DialectSet::load(&sources, &load_options(settings))?;
    if let Some(name) = settings
        .dialects
        .mount
        .keys()
        .find(|n| set.get(n).is_none())
    {
        return Err(credgate_dialect::LoadError {
            origin: format!("configuration [dialects.mount.{name}]"),
            line: None,
            message: format!("no dialect named `{name}` is loaded"),
        });
    }
    Ok(set)
}

pub fn load_options(settings: &Settings) -> LoadOptions {
    LoadOptions {
        disabled: settings.dialects.disabled.clone(),
        vars: settings.dialects.vars.clone(),
        csrf: settings.dialects.csrf.clone(),
        mounts: listeners::mounts(settings),
        token_ttl_secs: settings.dialects.token_ttl_secs.clone(),
    }
}

pub fn store_options(settings: &Settings) -> StoreOptions {
    settings.store.clone()
}

/// Opens the store and builds the core, as `serve` and the CLI commands do.
pub async fn build_core(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<Arc<CredentialService>, StartError> {
    build_core_with(
        settings,
        clock,
        &crate::upstream::Upstreams::default(),
        false,
    )
    .await
}

/// `build_core`, with the legacy systems users are lazily migrated from; with `listen`, it
/// also hears of other instances' changes (a serving gateway; a CLI command only publishes).
async fn build_core_with(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    upstreams: &crate::upstream::Upstreams,
    listen: bool,
) -> Result<Arc<CredentialService>, StartError> {
    credgate_core::legacy::set_limits(settings.legacy_hashes.limits());
    let store = credgate_store::open(&settings.database_url, &store_options(settings)).await?;
    let roots = crate::tls::client_roots(&settings.tls)
        .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?;
    let notifier = crate::notify::from_settings_with_roots(&settings.reset, &roots)
        .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?;
    let mut config = settings.core_config();
    config.digest_key = crate::digest_key::load(settings)
        .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?;
    let mut core = CredentialService::new(store, clock, notifier, config)?;
    // Replicas on PostgreSQL hear of each other's revocations and user changes at once.
    if let Some(feed) = credgate_store::open_feed(&settings.database_url, &store_options(settings))?
    {
        if listen {
            feed.start_listener(core.change_sink()).await;
        }
        core = core.with_change_feed(Arc::new(feed));
    }
    if let Some(directory) = upstreams.directory() {
        core = core.with_upstream(directory);
    }
    if let Some(authority) = upstreams.authority() {
        core = core.with_passthrough(authority);
    }
    Ok(Arc::new(core))
}

pub async fn build_state(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<web::Data<AppState>, StartError> {
    let dialects = Arc::new(load_dialects(settings)?);
    build_state_with(settings, clock, dialects).await
}

/// As [`build_state`], serving the given dialect set (a scratch gateway's candidate).
pub async fn build_state_with(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    dialects: Arc<DialectSet>,
) -> Result<web::Data<AppState>, StartError> {
    let upstreams = crate::upstream::Upstreams::build(settings)
        .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?;
    let core = build_core_with(settings, clock, &upstreams, true).await?;
    core.set_token_lifetimes(dialects.token_lifetimes());
    Ok(web::Data::new(AppState {
        core,
        dialects: ArcSwap::new(dialects),
        admin_token: settings.admin_token.clone(),
        max_body: settings.max_body_bytes,
        reloader: reload::Reloader::new(settings.clone()),
        // A gateway serving HTTPS itself marks its cookies Secure too.
        secure_cookies: settings.cookies.secure || settings.tls.cert.is_some(),
        shadow: settings.shadow,
        upstreams: upstreams.all.clone(),
        proxies: crate::client_addr::TrustedProxies::parse(&settings.limits.trusted_proxies)
            .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?,
        tls: Arc::new(crate::tls::Certificates::from_settings(settings)?),
    }))
}

/// Routes and middleware, shared by the binary and the tests.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize) {
    let payload = web::PayloadConfig::new(max_body);
    cfg.app_data(payload)
        .app_data(problem::query_config())
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        // In a scope: its pattern is a regex, which every dialect request (the default
        // service) would otherwise run; the scope's prefix is compared as text.
        .service(
            web::scope("/openapi").route("/{name}.json", web::get().to(crate::openapi::document)),
        )
        .service(
            web::scope("/v1")
                .route("/token", web::post().to(native::token))
                .route("/revoke", web::post().to(native::revoke))
                .route(
                    "/users/{id}/password",
                    web::put().to(native::change_password),
                )
                .route("/password-resets", web::post().to(native::request_reset))
                .route(
                    "/password-resets/validate",
                    web::post().to(native::validate_reset),
                )
                .route(
                    "/password-resets/complete",
                    web::post().to(native::complete_reset),
                ),
        )
        .service(
            web::scope("/admin")
                .route("/users", web::post().to(admin::create_user))
                .route("/users", web::get().to(admin::list_users))
                .route("/users/{id}", web::get().to(admin::get_user))
                .route(
                    "/users/{id}/security-answer",
                    web::put().to(admin::set_security_answer),
                )
                .route(
                    "/users/{id}/two-factor",
                    web::put().to(admin::set_two_factor),
                )
                .route("/clients", web::post().to(admin::create_client))
                .route("/apps", web::post().to(admin::create_app))
                .route("/dialects/reload", web::post().to(reload::reload_endpoint))
                .route("/audit", web::get().to(admin::audit))
                .route(
                    "/shadow/divergences",
                    web::get().to(crate::shadow::divergences),
                )
                .route("/shadow/summary", web::get().to(crate::shadow::summary))
                .route("/shadow/exchanges", web::get().to(crate::shadow::exchanges))
                .route("/hashes", web::get().to(crate::legacy_hashes::census)),
        )
        .default_service(web::to(dispatch::dispatch));
}

async fn healthz() -> HttpResponse {
    // The bytes `.json(json!({"status": "ok"}))` wrote, without building a JSON value per probe.
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(r#"{"status":"ok"}"#)
}

/// 200 while the database takes writes (a heartbeat row rewritten at most every few
/// seconds), else 503 naming the failing dependency, with `Retry-After`.
/// Readiness names each failing dependency. Only the database makes the instance unready: an
/// unreachable upstream is shared by every replica, so taking them all out of rotation would
/// also refuse the local users they could serve; it is reported as `degraded`.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probes = state.upstreams.iter().map(|u| async move {
        let reachable = u.reachable().await;
        (u.name.clone(), reachable)
    });
    let (database, upstreams) =
        futures_util::future::join(state.core.ready(), futures_util::future::join_all(probes))
            .await;
    let mut failing: Vec<String> = Vec::new();
    if database.is_err() {
        failing.push("database".to_owned());
    }
    let mut report = serde_json::Map::new();
    for (name, reachable) in upstreams {
        if !reachable {
            failing.push(format!("upstream:{name}"));
        }
        let word = if reachable {
            "reachable"
        } else {
            "unreachable"
        };
        report.insert(name, json!(word));
    }
    let status = match (database.is_ok(), failing.is_empty()) {
        (false, _) => "unavailable",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let mut body = json!({"status": status});
    if !failing.is_empty() {
        body["failing"] = json!(failing);
    }
    if !report.is_empty() {
        body["upstreams"] = json!(report);
    }
    if database.is_err() {
        body["detail"] = json!("the database does not accept writes");
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .insert_header(("Cache-Control", "no-store"))
            .json(body);
    }
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

/// Starts serving on an already bound main listener (and the extra listeners the settings
/// name); the returned server runs until stopped and finishes in-flight requests on
/// SIGTERM/SIGINT.
pub fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
) -> Result<Server, StartError> {
    let max_body = settings.max_body_bytes;
    let workers = match settings.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };
    let extra = listeners::bind_extra(settings)?;
    let tls = Arc::clone(&state.tls);
    let enabled = settings.metrics.enabled && metrics::install().is_some();
    let gate = crate::gate::Gate {
        listeners: Arc::new(listeners::Listeners::new(&extra)),
        body_deadline: std::time::Duration::from_millis(settings.body_timeout_ms),
        metrics: enabled,
    };
    let metrics_on_main = enabled
        && settings
            .metrics
            .listen
            .as_ref()
            .is_none_or(|l| *l == settings.listen);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Request ids, listeners, the body deadline, response headers, the access line
            // and the metrics: one middleware (`gate`).
            .wrap(gate.clone())
            .configure(|cfg| metrics::main_routes(cfg, metrics_on_main))
            .configure(|cfg| configure(cfg, max_body))
    })
    .workers(workers)
    .keep_alive(match settings.keep_alive_secs {
        0 => actix_web::http::KeepAlive::Disabled,
        secs => std::time::Duration::from_secs(secs).into(),
    })
    .client_request_timeout(std::time::Duration::from_millis(
        settings.client_request_timeout_ms,
    ))
    .shutdown_timeout(settings.shutdown_grace().as_secs_f64().ceil() as u64)
    .on_connect(crate::tls::on_connect);
    // Each listener serves HTTPS when it has a certificate, else plain HTTP.
    let mut listening = vec![(listener, tls.main(), ClientAuth::Optional)];
    for (extra, role) in extra {
        listening.push(match &role {
            listeners::Role::Dialects(listen) => {
                (extra, tls.dialect_listener(listen), ClientAuth::None)
            }
            _ => (extra, tls.main(), ClientAuth::Required),
        });
    }
    for (listener, resolver, auth) in listening {
        server = match resolver {
            Some(resolver) => {
                server.listen_rustls_0_23(listener, tls.server_config(resolver, auth)?)?
            }
            None => server.listen(listener)?,
        };
    }
    Ok(server.run())
}

/// Says how long a shutdown waits, and warns when a configured grace is shorter than one
/// request's bcrypt work: SIGTERM would then cut off accepted password changes.
fn log_shutdown_grace(settings: &Settings) {
    let grace = settings.shutdown_grace();
    let longest = settings.longest_hash_job();
    tracing::info!(
        grace_secs = grace.as_secs_f64().ceil(),
        longest_hash_job_ms = longest.as_millis() as u64,
        "shutdown waits for requests in flight"
    );
    if grace < longest + crate::settings::QUEUE_ALLOWANCE {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            needed_secs = (longest + crate::settings::QUEUE_ALLOWANCE)
                .as_secs_f64()
                .ceil(),
            "shutdown_grace_secs is shorter than the bcrypt work one queued request may need \
             at this bcrypt_cost: SIGTERM may cut requests off"
        );
    }
}

/// Everything `credgate serve` does after reading its configuration.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    run_with(settings, None).await
}

/// How often expired sessions are removed from the database.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes expired sessions every [`PURGE_EVERY`], off every request's path (an expired
/// session is refused whether or not it is still stored).
fn spawn_purger(core: Arc<CredentialService>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match core.purge_expired_sessions().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired sessions purged"),
                Err(e) => tracing::warn!(kind = e.kind(), "purging expired sessions failed"),
            }
        }
    });
}

/// As [`run`], with the runner that validates dialect reloads by their examples.
pub async fn run_with(
    settings: Settings,
    runner: Option<Arc<dyn reload::ExampleRunner>>,
) -> Result<(), StartError> {
    let state = build_state(&settings, Arc::new(SystemClock)).await?;
    if let Some(runner) = runner {
        state.reloader.install(runner);
    }
    let listener = listeners::bind(&settings.listen, settings.listen_backlog).map_err(|e| {
        StartError::Listen {
            key: "listen".into(),
            addr: settings.listen.clone(),
            reason: e.to_string(),
        }
    })?;
    log_shutdown_grace(&settings);
    reload::reload_on_sighup(state.clone());
    crate::legacy_hashes::spawn_wrapper(state.core.clone(), settings.legacy_hashes.wrap_per_sec);
    spawn_purger(state.core.clone());
    tracing::info!(listen = %settings.listen, dialects = ?state.dialects().dialects().iter().map(|d| d.name.clone()).collect::<Vec<_>>(), "credgate serving");
    serve(listener, state, &settings)?.await?;
    Ok(())
}
