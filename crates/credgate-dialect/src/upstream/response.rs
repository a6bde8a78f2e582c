//! The vendor's answer -> a canonical outcome or error, recognised from the route's own `ok`
//! response and the error table, rendered with marker values.

use credgate_core::{Error, Outcome, PolicyConfig, PolicyRule, SecretToken};
use minijinja::Value as Template;
use serde_json::{json, Value};

use super::UpstreamCommand;
use crate::dialect::{CompiledRoute, Dialect};
use crate::extract::RequestView;
use crate::http::HttpResponse;

/// A session opened on an upstream: what later calls present. Never printed.
#[derive(Clone, Default)]
pub struct Session {
    pub bearer: Option<SecretToken>,
    /// Session cookies (name, value as received).
    pub cookies: Vec<(String, SecretToken)>,
    /// A session-bound CSRF value to echo (Akana's `Csrf-Token_*` cookie).
    pub csrf: Option<SecretToken>,
    /// The id the upstream knows the user by, when its login answer names it.
    pub user_ref: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.cookies.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Session")
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .field("cookies", &names)
            .field("user_ref", &self.user_ref)
            .finish()
    }
}

impl Session {
    pub(crate) fn double_submit_value(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new().chain_update(b"credgate-outbound-csrf:");
        for token in self
            .bearer
            .iter()
            .chain(self.cookies.iter().map(|(_, v)| v))
        {
            h.update(token.expose().as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// What a successful upstream call gave.
#[derive(Debug)]
pub enum Reply {
    /// A login or grant: the session to present next.
    Session(Session),
    Done,
}

/// Ties between equally similar error bodies (several vendors answer many errors alike) go
/// to the earliest kind here, then to the table's order.
const PREFERENCE: &[&str] = &[
    "invalid_credentials",
    "policy_violation",
    "unauthenticated",
    "not_found",
    "rate_limited",
    "unavailable",
    "invalid_request",
    "reset_token_invalid",
    "forbidden",
    "externally_managed",
    "conflict",
    "csrf_rejected",
];

/// Stands for every value in an error template when its literal text is turned into a pattern.
const ERROR_MARK: &str = "credgateerrormark";

pub(super) fn marker(set: u8, what: &str) -> String {
    format!("credgatemark{set}{what}")
}

impl Dialect {
    /// The session a client of this dialect holds once its login answered with `outcome` (a
    /// token): the login's success answer rendered, then read back as a client reads it. Load
    /// generators and test drivers use it to speak any dialect with a session they seeded.
    pub fn session_for(&self, outcome: &Outcome) -> Option<Session> {
        let route = self.upstream_route(UpstreamCommand::Login)?;
        let answer = self.render_ok(route, &RequestView::default(), outcome);
        match self.upstream_reply(UpstreamCommand::Login, &answer) {
            Ok(Reply::Session(session)) => Some(session),
            _ => None,
        }
    }

    /// Reads the vendor's answer to the request `upstream_request(op, ..)` built. A client
    /// calling often keeps [`Dialect::ok_reading`] and calls [`Dialect::read_reply`].
    pub fn upstream_reply(
        &self,
        op: UpstreamCommand,
        response: &HttpResponse,
    ) -> Result<Reply, Error> {
        let reading = self.ok_reading(op).ok_or(Error::Internal)?;
        self.read_reply(&reading, response)
    }

    /// The context a success template sees, with markers where values vary.
    pub(super) fn marker_context(&self, set: u8) -> Template {
        let m = |w: &str| marker(set, w);
        Template::from_serialize(json!({
            "base": self.spec.base, "vars": self.vars, "dialect": self.name,
            "path": {}, "request": {},
            "user": {"id": m("id"), "ref": m("ref"), "username": m("user"), "admin": false,
                     "externally_managed": false, "profile": {}, "aliases": {}},
            "token": {"access": m("access"), "refresh": m("refresh"), "kind": "user",
                      "expires_in": 3600, "issued_at": 1, "expires_at": 3601,
                      "issued_at_ms": 1000, "expires_at_ms": 3_601_000,
                      "csrf": m("csrf"), "client_id": m("client")},
            "reset": {"token": m("reset")},
        }))
    }

    /// The context an error template sees; with `mark`, every value is that marker.
    fn error_context(&self, mark: Option<&str>) -> Template {
        let (problems, missing, rules) = match mark {
            Some(m) => (
                json!([{"field": m, "canonical": m, "reason": "missing", "message": m}]),
                json!([m]),
                json!([{"name": m, "message": m}]),
            ),
            None => (json!([]), json!([]), json!([])),
        };
        Template::from_serialize(json!({
            "base": self.spec.base, "vars": self.vars, "dialect": self.name, "path": {},
            "request": {}, "error": mark.unwrap_or(""), "message": mark.unwrap_or(""),
            "problems": problems, "missing": missing, "rules": rules,
            "retry_after": mark.map_or(json!(0), |m| json!(m)),
        }))
    }

    pub(super) fn render(&self, name: &str, ctx: &Template) -> Option<String> {
        self.env.get_template(name).ok()?.render(ctx).ok()
    }

    /// The canonical error whose rendering (route override first, then the table) is most
    /// like what the vendor sent. Anything unrecognised, and every 5xx, is `Unavailable`: an
    /// upstream that misbehaves must never read as a wrong password.
    pub(super) fn recognise_error(&self, route: &CompiledRoute, response: &HttpResponse) -> Error {
        if response.status >= 500 {
            return Error::Unavailable;
        }
        let actual = String::from_utf8_lossy(&response.body);
        let actual = actual.trim();
        let plain = self.error_context(None);
        let marked = self.error_context(Some(ERROR_MARK));
        let mut best: Option<(i64, usize, &str)> = None;
        let overrides = route.errors.iter().map(|(k, r)| (k, r, 1));
        let table = (self.errors.iter())
            .filter(|(k, _)| !route.errors.contains_key(*k))
            .map(|(k, r)| (k, r, 0));
        for (kind, r, bonus) in overrides.chain(table) {
            if r.spec.status != response.status {
                continue;
            }
            let name = r.body.as_str();
            // The template's literal text around its values, as a pattern, says most; how
            // alike the bodies are decides otherwise.
            let pattern = self.render(name, &marked).and_then(|t| literal_pattern(&t));
            let score = match pattern {
                Some((re, literal)) if re.is_match(actual) => 10_000 + literal,
                _ => {
                    let rendered = self.render(name, &plain).unwrap_or_default();
                    similarity(&rendered, actual)
                }
            } * 2
                + bonus;
            let rank = PREFERENCE
                .iter()
                .position(|p| p == kind)
                .unwrap_or(PREFERENCE.len());
            let better = match best {
                None => true,
                Some((s, r, _)) => score > s || (score == s && rank < r),
            };
            if better {
                best = Some((score, rank, kind.as_str()));
            }
        }
        let Some((_, _, kind)) = best else {
            tracing::warn!(dialect = %self.name, status = response.status, "unrecognised upstream answer");
            return match response.status {
                429 => Error::RateLimited {
                    retry_after: retry_after(response),
                },
                _ => Error::Unavailable,
            };
        };
        match kind {
            "malformed_request" => Error::MalformedRequest("refused by the upstream".into()),
            "unsupported_media_type" => Error::UnsupportedMediaType,
            "payload_too_large" => Error::PayloadTooLarge,
            "request_timeout" => Error::RequestTimeout,
            "invalid_request" => Error::InvalidRequest { problems: vec![] },
            "invalid_credentials" => Error::InvalidCredentials,
            "invalid_client" => Error::InvalidClient,
            "unauthenticated" => Error::Unauthenticated,
            "forbidden" => Error::Forbidden,
            "externally_managed" => Error::ExternallyManaged,
            "policy_violation" => Error::PolicyViolation {
                rules: rules_named_in(actual),
            },
            "unknown_app" => Error::UnknownApp,
            "csrf_rejected" => Error::CsrfRejected,
            "not_found" => Error::NotFound,
            "rate_limited" => Error::RateLimited {
                retry_after: retry_after(response),
            },
            "conflict" => Error::Conflict("refused by the upstream".into()),
            "reset_token_invalid" => Error::ResetTokenInvalid,
            "overloaded" => Error::Overloaded {
                retry_after: retry_after(response),
            },
            _ => Error::Unavailable,
        }
    }
}

/// The JSON pointer of every string equal to `needle`, in document order.
pub(super) fn find_pointers(value: &Value, needle: &str, at: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s == needle => out.push(at.to_owned()),
        Value::Object(map) => {
            for (k, v) in map {
                let key = k.replace('~', "~0").replace('/', "~1");
                find_pointers(v, needle, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_pointers(v, needle, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A rendered template with each marker turned into "anything", anchored; and how many
/// literal characters it holds (more literal text is a more specific match).
fn literal_pattern(rendered: &str) -> Option<(regex::Regex, i64)> {
    let parts: Vec<&str> = rendered.trim().split(ERROR_MARK).collect();
    let literal: usize = parts.iter().map(|p| p.len()).sum();
    let escaped: Vec<String> = parts.iter().map(|p| regex::escape(p)).collect();
    let re = regex::Regex::new(&format!("(?s)^{}$", escaped.join(".*?"))).ok()?;
    Some((re, literal as i64))
}

/// How alike a rendered error body and a received one are: JSON by agreeing leaves, text by
/// exact match or common prefix.
fn similarity(rendered: &str, actual: &str) -> i64 {
    match (
        serde_json::from_str::<Value>(rendered),
        serde_json::from_str::<Value>(actual),
    ) {
        (Ok(r), Ok(a)) => {
            let mut leaves = Vec::new();
            collect_leaves(&r, String::new(), &mut leaves);
            leaves
                .iter()
                .map(|(p, v)| match a.pointer(p) {
                    Some(x) if x == v => 2,
                    _ => -1,
                })
                .sum()
        }
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => -1,
        (Err(_), Err(_)) if rendered.trim() == actual.trim() => 1000,
        (Err(_), Err(_)) => rendered
            .chars()
            .zip(actual.chars())
            .take_while(|(a, b)| a == b)
            .count() as i64,
    }
}

fn collect_leaves(value: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                collect_leaves(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                collect_leaves(v, format!("{at}/{i}"), out);
            }
        }
        other => out.push((at, other.clone())),
    }
}

fn retry_after(response: &HttpResponse) -> u64 {
    response
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// The policy rules a vendor's body names (by rule name or message), with today's defaults
/// for their parameters: the vendor's own limits are not in its answer.
fn rules_named_in(body: &str) -> Vec<PolicyRule> {
    let d = PolicyConfig::default();
    [
        PolicyRule::MinLength { min: d.min_length },
        PolicyRule::MaxLength {
            max_bytes: d.max_bytes,
        },
        PolicyRule::Username,
        PolicyRule::Common,
        PolicyRule::Strength { min_score: 3 },
        PolicyRule::History { last: d.history },
    ]
    .into_iter()
    .filter(|r| body.contains(r.name()) || body.contains(&r.message()))
    .collect()
}
