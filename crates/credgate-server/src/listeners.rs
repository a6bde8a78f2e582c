//! Extra listeners: a dialect mounted on its own address (`[dialects.mount.NAME] listen`), and
//! the metrics listener (`[metrics] listen`). One server listens on all of them; each request
//! is routed by the address it came in on. The native and admin APIs stay on the main listener.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{web, FromRequest, HttpResponse};
use credgate_dialect::Mount;
use serde::Deserialize;
use serde_json::json;

use crate::app::{AppState, StartError};
use crate::settings::Settings;

/// `[dialects.mount.NAME]`: where one dialect is served.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountSettings {
    /// Its own listen address (default: the main listener).
    pub listen: Option<String>,
    /// A path prefix put before every route of the dialect, e.g. `/akana`.
    pub prefix: Option<String>,
    /// This listener's own PEM certificate chain (default: `[tls] cert`).
    pub tls_cert: Option<std::path::PathBuf>,
    /// The key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
}

pub fn validate_mounts(mounts: &BTreeMap<String, MountSettings>) -> Result<(), String> {
    for (name, m) in mounts {
        if let Some(p) = &m.prefix {
            if !p.starts_with('/') || p.contains(['{', '}', '?', '#', ' ']) {
                return Err(format!(
                    "dialects.mount.{name}.prefix must start with / and be a literal path, got `{p}`"
                ));
            }
        }
        if m.listen.as_deref().is_some_and(|l| l.trim().is_empty()) {
            return Err(format!("dialects.mount.{name}.listen must not be empty"));
        }
    }
    Ok(())
}

/// The mounts as the dialect loader takes them; a `listen` equal to the main one means main.
pub fn mounts(settings: &Settings) -> BTreeMap<String, Mount> {
    settings
        .dialects
        .mount
        .iter()
        .map(|(name, m)| {
            let mount = Mount {
                listener: m.listen.clone().filter(|l| *l != settings.listen),
                prefix: m.prefix.clone().unwrap_or_default(),
            };
            (name.clone(), mount)
        })
        .collect()
}

/// What a listener serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Main,
    Metrics,
    /// The dialects mounted on this listen address (the key their mounts name).
    Dialects(String),
}

/// The extra listeners the settings ask for, bound; an address in use fails the start with
/// the key that named it.
pub fn bind_extra(settings: &Settings) -> Result<Vec<(TcpListener, Role)>, StartError> {
    let mut wanted: Vec<(String, Role, String)> = Vec::new();
    for (listener, name) in mounts(settings)
        .into_iter()
        .filter_map(|(name, m)| m.listener.map(|l| (l, name)))
    {
        if !wanted.iter().any(|(addr, _, _)| *addr == listener) {
            let key = format!("dialects.mount.{name}.listen");
            wanted.push((listener.clone(), Role::Dialects(listener), key));
        }
    }
    if let Some(addr) = settings
        .metrics
        .listen
        .as_ref()
        .filter(|_| settings.metrics.enabled)
    {
        if *addr != settings.listen {
            wanted.push((addr.clone(), Role::Metrics, "metrics.listen".into()));
        }
    }
    wanted
        .into_iter()
        .map(|(addr, role, key)| {
            tracing::info!(%addr, ?role, "listening");
            bind(&addr, settings.listen_backlog)
                .map(|l| (l, role))
                .map_err(|e| StartError::Listen {
                    key,
                    addr,
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// A listening socket on `addr` (the first of its resolved addresses that binds) whose queue
/// of connections not yet accepted holds `backlog` (the kernel caps it at
/// `net.core.somaxconn`). `std::net::TcpListener::bind` always asks for 128: a burst of new
/// connections beyond that waits a second for the client's SYN retry.
pub fn bind(addr: &str, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut last = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(addr)? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // As std does: a restart may rebind while old connections sit in TIME_WAIT.
        socket.set_reuse_address(true)?;
        let listening = socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX)));
        match listening {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Which role each bound address plays.
#[derive(Debug, Default)]
pub struct Listeners {
    roles: HashMap<SocketAddr, Role>,
}

impl Listeners {
    pub fn new(extra: &[(TcpListener, Role)]) -> Self {
        let roles = extra
            .iter()
            .filter_map(|(l, role)| l.local_addr().ok().map(|a| (a, role.clone())))
            .collect();
        Self { roles }
    }

    pub fn role(&self, addr: SocketAddr) -> Role {
        self.roles.get(&addr).cloned().unwrap_or(Role::Main)
    }
}

/// Answers a request that came in on an extra listener (not [`Role::Main`], which goes
/// through the normal routes): on a dialect listener straight from its dialects, on the metrics
/// listener `/metrics`.
pub async fn serve_extra(
    role: &Role,
    req: ServiceRequest,
) -> Result<ServiceResponse, actix_web::Error> {
    match role {
        Role::Main | Role::Metrics => {
            let res = if *role == Role::Metrics
                && req.path() == "/metrics"
                && req.method() == actix_web::http::Method::GET
            {
                crate::metrics::scrape()
            } else {
                HttpResponse::NotFound()
                    .json(json!({"type": "about:blank", "title": "Not Found", "status": 404}))
            };
            Ok(req.into_response(res))
        }
        Role::Dialects(listener) => {
            let (http, mut payload) = req.into_parts();
            let state = web::Data::<AppState>::extract(&http).await?;
            let payload = web::Payload::from_request(&http, &mut payload).await?;
            let res = crate::dispatch::dispatch_on(&http, payload, &state, Some(listener)).await;
            Ok(ServiceResponse::new(http, res))
        }
    }
}
