//! Canonical values -> the vendor's request, from the route's own field sources.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};

use credgate_core::Password;

use super::{Session, UpstreamAuth, UpstreamCommand, UpstreamError, Values};
use crate::dialect::{CompiledRoute, Dialect};
use crate::route::{GrantKind, Source};
use crate::spec::{AuthScheme, BodyFormat, CommandKind, CsrfStyle, TokenRequirement};

/// RFC 3986 path-segment characters kept as they are (Et-App's `@me` stays `@me`).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@')
    .remove(b':');

/// One request to send. Header values and the body hold secrets: Debug shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    pub method: String,
    /// Absolute: the upstream's base URL, the dialect's base path, the route's path.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("UpstreamRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl UpstreamRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether sending it twice does no more than sending it once (retries are limited to these).
    pub fn idempotent(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "PUT" | "DELETE")
    }
}

impl Dialect {
    /// The route an operation uses: the dialect's login, else its token route with the grant.
    pub fn upstream_route(&self, op: UpstreamCommand) -> Option<&CompiledRoute> {
        let find = |pred: &dyn Fn(&CompiledRoute) -> bool| self.routes.iter().find(|r| pred(r));
        match op {
            UpstreamCommand::Login => {
                find(&|r| r.spec.command == CommandKind::Login).or_else(|| {
                    find(&|r| {
                        r.spec.command == CommandKind::Token && r.has_grant(GrantKind::Password)
                    })
                })
            }
            UpstreamCommand::ClientToken => find(&|r| {
                r.spec.command == CommandKind::Token && r.has_grant(GrantKind::ClientCredentials)
            }),
            UpstreamCommand::ChangePassword => {
                find(&|r| r.spec.command == CommandKind::ChangePassword)
            }
            UpstreamCommand::RequestReset => find(&|r| r.spec.command == CommandKind::RequestReset),
            UpstreamCommand::ValidateReset => {
                find(&|r| r.spec.command == CommandKind::ValidateReset)
            }
            UpstreamCommand::ResetPassword => {
                find(&|r| r.spec.command == CommandKind::ResetPassword)
            }
        }
    }

    /// The vendor request for `op`. `session` is what a previous `Login` (or `ClientToken`)
    /// returned; routes that need one refuse to build without it.
    pub fn upstream_request(
        &self,
        op: UpstreamCommand,
        base_url: &str,
        values: &Values,
        auth: &UpstreamAuth,
        session: Option<&Session>,
    ) -> Result<UpstreamRequest, UpstreamError> {
        let route = self
            .upstream_route(op)
            .ok_or_else(|| UpstreamError::NoRoute {
                dialect: self.name.clone(),
                operation: op.as_str(),
            })?;
        let spec = &route.spec;
        let missing = |field: &str| UpstreamError::MissingValue {
            dialect: self.name.clone(),
            route: spec.name.clone(),
            field: field.to_owned(),
        };
        let placed = place_values(route, op, values, auth).map_err(|f| missing(&f))?;
        let url = format!(
            "{}{}",
            base_url.trim_end_matches('/'),
            self.fill_path(route, &placed).map_err(|p| missing(&p))?
        );
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut cookies: Vec<(String, String)> = Vec::new();
        let mut query: Vec<(String, String)> = Vec::new();
        let mut body = Map::new();
        let mut basic: (Option<String>, Option<String>) = (None, None);
        for (source, value) in placed {
            match source {
                Source::Body(name) => {
                    body.insert(name, Value::String(value));
                }
                Source::Header(name) => headers.push((name, value)),
                Source::Query(name) => query.push((name, value)),
                Source::Cookie(name) => cookies.push((name, value)),
                Source::BasicUsername => basic.0 = Some(value),
                Source::BasicPassword => basic.1 = Some(value),
                Source::Path(_) => {}
            }
        }
        if let (Some(id), Some(secret)) = basic {
            // RFC 6749 2.3.1: form-encode id and secret, then Basic-encode the pair.
            let pair = format!("{}:{}", form_encode(&id), form_encode(&secret));
            headers.push((
                "Authorization".into(),
                format!("Basic {}", STANDARD.encode(pair)),
            ));
        }
        if let Some(app_key) = self.spec.auth.app_key.as_ref().filter(|_| !spec.no_app_key) {
            let key = auth.app_key.as_ref().ok_or_else(|| missing("app_key"))?;
            headers.push((app_key.header.clone(), key.expose().to_owned()));
        }
        if spec.token != TokenRequirement::None {
            let session = session.ok_or_else(|| UpstreamError::NoSession {
                route: spec.name.clone(),
            })?;
            self.present_session(route.csrf, session, &mut headers, &mut cookies);
        }
        if !cookies.is_empty() {
            let joined: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.push(("Cookie".into(), joined.join("; ")));
        }
        let body = encode_body(spec.body, body);
        if spec.body != BodyFormat::None {
            // The first type the route accepts: the vendor's own.
            let content_type = route.accepts.first().cloned().unwrap_or_default();
            headers.push(("Content-Type".into(), content_type));
        }
        let url = if query.is_empty() {
            url
        } else {
            format!(
                "{url}?{}",
                serde_urlencoded::to_string(query).unwrap_or_default()
            )
        };
        Ok(UpstreamRequest {
            method: route.method.to_string(),
            url,
            headers,
            body,
        })
    }

    /// The route's path with `{name}` filled from `path.name` values, else the dialect's vars.
    fn fill_path(
        &self,
        route: &CompiledRoute,
        placed: &[(Source, String)],
    ) -> Result<String, String> {
        let template = format!(
            "{}{}",
            self.spec.base.trim_end_matches('/'),
            route.spec.path
        );
        let mut out = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map_or(rest.len(), |i| open + i);
            let name = &rest[open + 1..close];
            let value = placed
                .iter()
                .find(|(s, _)| matches!(s, Source::Path(n) if n == name))
                .map(|(_, v)| v.as_str())
                .or_else(|| self.vars.get(name).map(String::as_str))
                .ok_or_else(|| format!("path.{name}"))?;
            out.push_str(&rest[..open]);
            out.push_str(&utf8_percent_encode(value, PATH_SEGMENT).to_string());
            rest = rest.get(close + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The session as the dialect's auth scheme carries it, with CSRF where the route needs it.
    pub(super) fn present_session(
        &self,
        csrf_applies: bool,
        session: &Session,
        headers: &mut Vec<(String, String)>,
        cookies: &mut Vec<(String, String)>,
    ) {
        match self.spec.auth.scheme {
            AuthScheme::Bearer => {
                if let Some(token) = &session.bearer {
                    headers.push(("Authorization".into(), format!("Bearer {}", token.expose())));
                }
            }
            AuthScheme::Cookie => {
                for (name, value) in &session.cookies {
                    cookies.push((name.clone(), value.expose().to_owned()));
                }
            }
        }
        let Some(csrf) = self.spec.auth.csrf.as_ref().filter(|_| csrf_applies) else {
            return;
        };
        let (Some(cookie), Some(header)) = (&self.csrf_cookie, &self.csrf_header) else {
            return;
        };
        match csrf.style {
            // The value the vendor set at login, echoed.
            CsrfStyle::Session => {
                if let Some(value) = &session.csrf {
                    headers.push((header.clone(), value.expose().to_owned()));
                }
            }
            // Any value works if cookie and header agree; derived from the session, so it is
            // stable for the session and reveals nothing of it.
            CsrfStyle::DoubleSubmit => {
                let value = session.double_submit_value();
                cookies.push((cookie.clone(), value.clone()));
                headers.push((header.clone(), value));
            }
        }
    }
}

/// (source, value) pairs: each canonical value where the route reads it from. `Err` names a
/// value the route requires and the caller did not give.
fn place_values(
    route: &CompiledRoute,
    op: UpstreamCommand,
    values: &Values,
    auth: &UpstreamAuth,
) -> Result<Vec<(Source, String)>, String> {
    let grant = match op {
        UpstreamCommand::ClientToken => GrantKind::ClientCredentials,
        _ => GrantKind::Password,
    };
    let secret = |p: &Option<Password>| p.as_ref().map(|p| p.expose().to_owned());
    let mut placed: Vec<(Source, String)> = Vec::new();
    for (canonical, sources) in &route.fields {
        let value = match canonical.as_str() {
            "username" if op != UpstreamCommand::ClientToken => values.username.clone(),
            "password" if op != UpstreamCommand::ClientToken => secret(&values.password),
            "current" => secret(&values.current),
            "new" => secret(&values.new),
            "token"
                if matches!(
                    op,
                    UpstreamCommand::ValidateReset | UpstreamCommand::ResetPassword
                ) =>
            {
                values.reset_token.as_ref().map(|t| t.expose().to_owned())
            }
            // An optional confirmation (Crafter's UI-only `confirmation`) is left out, as the
            // vendor's documented request has it.
            "confirm" if route.requires("confirm") => secret(&values.new),
            "grant_type" => (route.grants.iter())
                .find(|(_, canonical)| **canonical == grant)
                .map(|(vendor, _)| vendor.clone()),
            "client_id" => auth.client_id.clone(),
            "client_secret" => auth.client_secret.as_ref().map(|s| s.expose().to_owned()),
            _ => None,
        };
        match value {
            Some(v) => placed.extend(sources.first().map(|s| (s.clone(), v))),
            None if route.requires(canonical) => return Err(canonical.clone()),
            None => {}
        }
    }
    if let Some(subject) = &route.subject {
        let value = if subject.by_id {
            values.subject_ref.clone().or_else(|| subject.me.clone())
        } else {
            values.username.clone()
        };
        let (Some(v), Some(source)) = (value, subject.sources.first()) else {
            return Err("subject".into());
        };
        if let Some(check) = route.subject_check.as_ref().and_then(|c| c.first()) {
            placed.push((check.clone(), v.clone()));
        }
        placed.push((source.clone(), v));
    }
    placed.extend(route.constants.iter().cloned());
    Ok(placed)
}

/// The body's fields in the route's format.
fn encode_body(format: BodyFormat, body: Map<String, Value>) -> Vec<u8> {
    match format {
        BodyFormat::None => Vec::new(),
        BodyFormat::Json => serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        BodyFormat::Form => {
            let pairs: Vec<(String, String)> = (body.into_iter())
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect();
            serde_urlencoded::to_string(pairs)
                .unwrap_or_default()
                .into_bytes()
        }
    }
}

fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}
