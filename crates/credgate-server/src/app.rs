//! One `create_app` for the binary and the tests: state, routes, limits, middleware.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use credgate_core::{Clock, CredentialService, SecretToken, SystemClock};
use credgate_dialect::{DialectSet, DialectSource, LoadOptions};
use credgate_store::StoreOptions;
use serde_json::json;

use crate::settings::Settings;
use crate::{admin, dispatch, native, problem, telemetry};

pub struct AppState {
    pub core: Arc<CredentialService>,
    dialects: Arc<DialectSet>,
    pub admin_token: Option<SecretToken>,
    /// Largest request body accepted.
    pub max_body: usize,
}

impl AppState {
    pub fn dialects(&self) -> Arc<DialectSet> {
        Arc::clone(&self.dialects)
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
}

/// The shipped dialects, then those of the configured folders.
pub fn load_dialects(settings: &Settings) -> Result<DialectSet, credgate_dialect::LoadError> {
    let mut sources = DialectSource::embedded();
    for dir in &settings.dialects.dirs {
        sources.extend(DialectSource::from_dir(dir)?);
    }
    let options = LoadOptions {
        disabled: settings.dialects.disabled.clone(),
        vars: settings.dialects.vars.clone(),
        csrf: settings.dialects.csrf.clone(),
    };
    DialectSet::load(&sources, &options)
}

pub fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions {
        max_connections: settings.store.max_connections,
        busy_timeout_ms: settings.store.busy_timeout_ms,
        auto_migrate: settings.store.auto_migrate,
    }
}

/// Opens the store and builds the core, as `serve` and the CLI commands do.
pub async fn build_core(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<Arc<CredentialService>, StartError> {
    let store = credgate_store::open(&settings.database_url, &store_options(settings)).await?;
    let notifier = crate::notify::from_settings(&settings.reset)
        .map_err(|e| StartError::Config(crate::settings::ConfigError(e)))?;
    Ok(Arc::new(CredentialService::new(
        store,
        clock,
        notifier,
        settings.core_config(),
    )?))
}

pub async fn build_state(
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> Result<web::Data<AppState>, StartError> {
    let dialects = Arc::new(load_dialects(settings)?);
    let core = build_core(settings, clock).await?;
    Ok(web::Data::new(AppState {
        core,
        dialects,
        admin_token: settings.admin_token.clone(),
        max_body: settings.max_body_bytes,
    }))
}

/// Routes and middleware, shared by the binary and the tests.
pub fn configure(cfg: &mut web::ServiceConfig, max_body: usize) {
    let payload = web::PayloadConfig::new(max_body);
    cfg.app_data(payload)
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::scope("/v1")
                .route("/token", web::post().to(native::token))
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
                .route("/clients", web::post().to(admin::create_client))
                .route("/apps", web::post().to(admin::create_app))
                .route("/audit", web::get().to(admin::audit)),
        )
        .default_service(web::to(dispatch::dispatch));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.core.ready().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Err(e) => problem::problem(&e),
    }
}

/// Starts serving on an already bound listener; the returned server runs until stopped and
/// finishes in-flight requests on SIGTERM/SIGINT.
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
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(telemetry::request_ids))
            .configure(|cfg| configure(cfg, max_body))
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Everything `credgate serve` does after reading its configuration.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    let state = build_state(&settings, Arc::new(SystemClock)).await?;
    let listener = TcpListener::bind(&settings.listen)?;
    tracing::info!(listen = %settings.listen, dialects = ?state.dialects().dialects().iter().map(|d| d.name.clone()).collect::<Vec<_>>(), "credgate serving");
    serve(listener, state, &settings)?.await?;
    Ok(())
}
