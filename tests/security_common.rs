//! The security suite's kit: a driver that logs in, changes a password and sends raw requests
//! exactly as each dialect's clients do, and knows what each dialect answers, all read from the
//! dialect files (the same code that speaks a dialect to an upstream builds the requests).

use std::sync::{Arc, OnceLock};

use credgate_core::{Password, SecretToken};
use credgate_dialect::route::{CompiledRoute, Source};
use credgate_dialect::spec::{AuthScheme, BodyFormat, CsrfStyle};
use credgate_dialect::upstream::{
    Reply, Session as UpstreamSession, UpstreamAuth, UpstreamCommand, UpstreamRequest, Values,
};
use credgate_dialect::{
    Dialect as Compiled, DialectSet, DialectSource, HttpRequest, HttpResponse, LoadOptions,
    RequestView, RouteMatch,
};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::common::{self, Gateway};

pub const CLIENT_ID: &str = "sec-partner-client";
pub const CLIENT_SECRET: &str = "Sec-Client-Secret-4711";
pub const APP_KEY: &str = "sec-etna-app-key-0123456789";
pub const AKANA_COOKIE: &str = "AtmoAuthToken_acmepaymentscorp";
pub const AKANA_CSRF_COOKIE: &str = "Csrf-Token_acmepaymentscorp";
/// The value a Crafter client picks for its double-submit CSRF cookie and header.
pub const CRAFTER_XSRF: &str = "sec-caller-chosen-xsrf-1";

/// A user as the tests know it.
#[derive(Clone, Debug)]
pub struct Who {
    pub id: String,
    pub username: String,
}

/// What a client holds after logging in: what an attacker would steal.
#[derive(Clone, Debug)]
pub struct Session {
    /// The raw access token (for a cookie dialect, what the dialect reads from its cookie).
    pub token: String,
    /// Cookie dialects: the session cookie's whole value, as the login set it.
    pub cookie: Option<String>,
    /// Session-bound CSRF (Akana): the value the login set, echoed in the CSRF header.
    pub csrf: Option<String>,
}

/// How a request's CSRF proof is sent (cookie dialects only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csrf {
    Proper,
    Missing,
    Wrong,
}

/// A shipped dialect under attack, by name. Everything the suite knows of it (paths, field
/// names, statuses, error style, how its clients log in and carry a session) is read from its
/// dialect file, so a new dialect folder is attacked by every generic test without code here.
/// The named constants are for the tests of one vendor's own behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect(pub &'static str);

pub const AKANA: Dialect = Dialect("akana");
pub const CRAFTER: Dialect = Dialect("crafter");
pub const CRAYON: Dialect = Dialect("crayon");
pub const ETAPP: Dialect = Dialect("etapp");
pub const OAUTH: Dialect = Dialect("oauth-style");

/// The shipped dialects, compiled as the gateway compiles them.
fn shipped() -> &'static DialectSet {
    static SET: OnceLock<DialectSet> = OnceLock::new();
    SET.get_or_init(|| {
        DialectSet::load(&DialectSource::embedded(), &LoadOptions::default())
            .expect("the shipped dialects load")
    })
}

/// Every shipped dialect whose clients log in and change passwords.
pub fn all() -> Vec<Dialect> {
    let names = shipped().dialects().iter().filter(|d| {
        d.upstream_route(UpstreamCommand::Login).is_some()
            && d.upstream_route(UpstreamCommand::ChangePassword).is_some()
    });
    names
        .map(|d| Dialect(Box::leak(d.name.clone().into_boxed_str())))
        .collect()
}

impl Dialect {
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The compiled dialect.
    pub fn compiled(self) -> &'static Arc<Compiled> {
        shipped()
            .get(self.0)
            .unwrap_or_else(|| panic!("no shipped dialect `{}`", self.0))
    }

    fn route(self, command: UpstreamCommand) -> &'static CompiledRoute {
        self.compiled()
            .upstream_route(command)
            .unwrap_or_else(|| panic!("{}: no route for {}", self.0, command.as_str()))
    }

    /// The status of canonical error `kind` on the route of `command`.
    fn error_status(self, command: UpstreamCommand, kind: &str) -> u16 {
        let route = self.route(command);
        self.compiled()
            .error_response(Some(route), kind)
            .map_or(500, |r| r.spec.status)
    }

    /// Whether the change route names its user (in the path or the body).
    pub fn has_subject(self) -> bool {
        self.route(UpstreamCommand::ChangePassword)
            .subject
            .is_some()
    }

    /// A wrong password at login.
    pub fn login_failed_status(self) -> u16 {
        self.error_status(UpstreamCommand::Login, "invalid_credentials")
    }

    pub fn change_ok_status(self) -> u16 {
        self.route(UpstreamCommand::ChangePassword).ok.spec.status
    }

    /// Acting on another user without the right to.
    pub fn forbidden_status(self) -> u16 {
        self.error_status(UpstreamCommand::ChangePassword, "forbidden")
    }

    pub fn csrf_status(self) -> u16 {
        self.error_status(UpstreamCommand::ChangePassword, "csrf_rejected")
    }

    pub fn login_path(self) -> &'static str {
        &self.route(UpstreamCommand::Login).path.template
    }

    pub fn change_method(self) -> Method {
        let method = &self.route(UpstreamCommand::ChangePassword).method;
        Method::from_bytes(method.as_str().as_bytes()).expect("an HTTP method")
    }

    /// The change request for `who` as the dialect's clients send it (placeholder passwords):
    /// built by the same code that speaks the dialect to an upstream.
    fn change_request(self, who: &Who) -> UpstreamRequest {
        let values = Values {
            username: Some(who.username.clone()),
            current: Some(Password::new("current-placeholder")),
            new: Some(Password::new("new-placeholder")),
            subject_ref: Some(who.id.clone()),
            ..Values::default()
        };
        let session = UpstreamSession::default();
        self.compiled()
            .upstream_request(
                UpstreamCommand::ChangePassword,
                "",
                &values,
                &upstream_auth(),
                Some(&session),
            )
            .expect("a change request")
    }

    pub fn change_path(self, who: &Who) -> String {
        self.change_request(who).url
    }

    /// The vendor's name of a canonical field of the change route.
    fn field(self, canonical: &str) -> &'static str {
        let sources = &self.route(UpstreamCommand::ChangePassword).fields[canonical];
        sources.first().map(Source::name).expect("a source")
    }

    /// The vendor's name of a canonical field of the login route.
    pub fn login_field(self, canonical: &str) -> &'static str {
        let sources = &self.route(UpstreamCommand::Login).fields[canonical];
        sources.first().map(Source::name).expect("a source")
    }

    /// How the login route takes its body.
    pub fn login_body(self) -> BodyFormat {
        self.route(UpstreamCommand::Login).spec.body
    }

    /// The vendor's names of the current and new password fields.
    pub fn current_field(self) -> &'static str {
        self.field("current")
    }

    pub fn new_field(self) -> &'static str {
        self.field("new")
    }

    /// A change body in the vendor's shape, with any JSON values.
    pub fn change_body(self, who: &Who, current: Value, new: Value) -> Value {
        let mut body: Value =
            serde_json::from_slice(&self.change_request(who).body).expect("a JSON change body");
        let route = self.route(UpstreamCommand::ChangePassword);
        for (canonical, value) in [("current", &current), ("new", &new), ("confirm", &new)] {
            if let Some(Source::Body(name)) = route.fields.get(canonical).and_then(|s| s.first()) {
                body[name.as_str()] = value.clone();
            }
        }
        body
    }

    /// Every error answer the dialect renders, from its table and its routes' overrides.
    fn error_answers(self) -> Vec<HttpResponse> {
        let d = self.compiled();
        let view = RequestView::default();
        let mut answers = Vec::new();
        for error in sample_errors() {
            answers.push(d.render_error(None, &view, &error));
            for i in 0..d.routes.len() {
                let m = RouteMatch {
                    dialect: Arc::clone(d),
                    route: i,
                    params: Vec::new(),
                };
                answers.push(d.render_error(Some(&m), &view, &error));
            }
        }
        answers
    }

    /// True when an error answer is in this dialect's own style (not a generic framework page):
    /// a JSON object with every top-level member of one of the dialect's own JSON error bodies,
    /// or, for a dialect that answers some errors in plain text, non-empty plain text.
    pub fn error_style(self, content_type: &str, body: &str) -> bool {
        let json: Option<Value> = serde_json::from_str(body).ok();
        self.error_answers().iter().any(|answer| {
            let own: Option<Value> = serde_json::from_slice(&answer.body).ok();
            match (&own, &json) {
                (Some(Value::Object(own)), Some(Value::Object(got))) => {
                    !own.is_empty() && own.keys().all(|k| got.contains_key(k))
                }
                (None, None) => {
                    !answer.body.is_empty()
                        && !body.is_empty()
                        && content_type.starts_with("text/plain")
                }
                _ => false,
            }
        })
    }

    /// True when `body` is this dialect's `rate_limited` answer with `retry_after` seconds (its
    /// table's, or a route's own override: OAuth-style's token route adds RFC 6749 members).
    pub fn rate_limited_body(self, body: &str, retry_after: u64) -> bool {
        let d = self.compiled();
        let error = credgate_core::Error::RateLimited { retry_after };
        let routes = (0..d.routes.len()).map(|i| {
            Some(RouteMatch {
                dialect: Arc::clone(d),
                route: i,
                params: Vec::new(),
            })
        });
        std::iter::once(None).chain(routes).any(|m| {
            let expected = d.render_error(m.as_ref(), &RequestView::default(), &error);
            let expected = String::from_utf8_lossy(&expected.body).into_owned();
            match (
                serde_json::from_str::<Value>(&expected),
                serde_json::from_str::<Value>(body),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => expected == body,
            }
        })
    }
}

/// One value of every canonical error, with sample details.
fn sample_errors() -> Vec<credgate_core::Error> {
    use credgate_core::{Error, FieldProblem, FieldReason};
    vec![
        Error::MalformedRequest("malformed".into()),
        Error::UnsupportedMediaType,
        Error::PayloadTooLarge,
        Error::RequestTimeout,
        Error::InvalidRequest {
            problems: vec![FieldProblem::new("new", FieldReason::Missing)],
        },
        Error::InvalidCredentials,
        Error::InvalidClient,
        Error::Unauthenticated,
        Error::Forbidden,
        Error::ExternallyManaged,
        Error::PolicyViolation { rules: Vec::new() },
        Error::UnknownApp,
        Error::CsrfRejected,
        Error::NotFound,
        Error::RateLimited { retry_after: 60 },
        Error::Conflict("conflict".into()),
        Error::ResetTokenInvalid,
        Error::Unavailable,
        Error::Internal,
    ]
}

/// What the suite's clients present besides a user's session: the partner client and the
/// Et-App application key.
fn upstream_auth() -> UpstreamAuth {
    UpstreamAuth {
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(SecretToken::new(CLIENT_SECRET)),
        app_key: Some(SecretToken::new(APP_KEY)),
    }
}

/// Where requests go: the in-process gateway or a spawned binary.
pub trait Endpoint {
    fn client(&self) -> &reqwest::Client;
    fn at(&self, path: &str) -> String;
}

impl Endpoint for Gateway {
    fn client(&self) -> &reqwest::Client {
        &self.http
    }
    fn at(&self, path: &str) -> String {
        Gateway::at(self, path)
    }
}

/// A gateway reached by URL only.
pub struct Remote {
    pub url: String,
    pub http: reqwest::Client,
}

impl Endpoint for Remote {
    fn client(&self) -> &reqwest::Client {
        &self.http
    }
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A fresh gateway with the partner client and the Et-App application key registered; the
/// reset outbox stays in the gateway's temporary folder.
pub async fn gateway() -> Gateway {
    gateway_with(|_| {}).await
}

pub async fn gateway_with(configure: impl FnOnce(&mut credgate_server::Settings)) -> Gateway {
    let gw = common::start_with(|s, dir| {
        s.reset.outbox = dir.join("reset-outbox.jsonl");
        configure(s);
    })
    .await;
    let res = gw
        .admin_post(
            "/admin/clients",
            json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = gw.admin_post("/admin/apps", json!({"key": APP_KEY})).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    gw
}

pub async fn user(gw: &Gateway, username: &str, password: &str) -> Who {
    Who {
        id: gw.user(username, password).await,
        username: username.to_owned(),
    }
}

pub async fn admin_user(gw: &Gateway, username: &str, password: &str) -> Who {
    let res = gw
        .admin_post(
            "/admin/users",
            json!({"username": username, "password": password, "admin": true}),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    Who {
        id: res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        username: username.to_owned(),
    }
}

/// The dialect's own login request, built from its login route.
pub fn login_request(
    gw: &impl Endpoint,
    d: Dialect,
    username: &str,
    password: &str,
) -> RequestBuilder {
    let values = Values {
        username: Some(username.to_owned()),
        password: Some(Password::new(password)),
        ..Values::default()
    };
    let r = d
        .compiled()
        .upstream_request(UpstreamCommand::Login, "", &values, &upstream_auth(), None)
        .expect("a login request");
    let method = Method::from_bytes(r.method.as_bytes()).expect("an HTTP method");
    let mut req = gw.client().request(method, gw.at(&r.url));
    for (name, value) in r.headers {
        req = req.header(name, value);
    }
    req.body(r.body)
}

pub async fn login_raw(gw: &impl Endpoint, d: Dialect, username: &str, password: &str) -> Response {
    login_request(gw, d, username, password)
        .send()
        .await
        .unwrap()
}

/// Reads the session out of a successful login answer, as the dialect's clients read it.
pub async fn session_of(d: Dialect, res: Response) -> Session {
    let status = res.status().as_u16();
    let headers = (res.headers().iter())
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = res.bytes().await.unwrap().to_vec();
    let answer = HttpResponse {
        status,
        headers,
        body,
    };
    let c = d.compiled();
    let held = match c.upstream_reply(UpstreamCommand::Login, &answer) {
        Ok(Reply::Session(s)) => s,
        other => panic!("{}: no session in the login answer: {other:?}", d.name()),
    };
    let cookie = held.cookies.first().map(|(_, v)| v.expose().to_owned());
    // The raw token: what the dialect reads from a request that carries this session.
    let token = match (&held.bearer, &cookie, c.session_cookie()) {
        (Some(t), _, _) => t.expose().to_owned(),
        (None, Some(value), Some(name)) => {
            let carried = HttpRequest {
                headers: vec![("cookie".into(), format!("{name}={value}"))],
                ..HttpRequest::default()
            };
            let token = c.presented_token(&carried).expect("a token in the cookie");
            token.expose().to_owned()
        }
        _ => panic!("{}: the login answer holds no token", d.name()),
    };
    Session {
        token,
        cookie,
        csrf: held.csrf.map(|c| c.expose().to_owned()),
    }
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Logs in through the dialect; the login must succeed.
pub async fn login(gw: &impl Endpoint, d: Dialect, username: &str, password: &str) -> Session {
    let res = login_raw(gw, d, username, password).await;
    let status = res.status();
    if status != 200 {
        panic!(
            "{}: login of {username} failed with {status}: {}",
            d.name(),
            res.text().await.unwrap_or_default()
        );
    }
    session_of(d, res).await
}

pub async fn logs_in(gw: &impl Endpoint, d: Dialect, username: &str, password: &str) -> bool {
    login_raw(gw, d, username, password).await.status() == 200
}

/// A request carrying the session the way the dialect's clients send it: by its auth scheme,
/// with its CSRF proof (`csrf`) and its application key.
pub fn authed(
    gw: &impl Endpoint,
    d: Dialect,
    method: Method,
    path: &str,
    s: &Session,
    csrf: Csrf,
) -> RequestBuilder {
    let c = d.compiled();
    let mut req = gw.client().request(method, gw.at(path));
    let mut cookies = Vec::new();
    match c.spec.auth.scheme {
        AuthScheme::Bearer => req = req.bearer_auth(&s.token),
        AuthScheme::Cookie => {
            let name = c.session_cookie().expect("a session cookie");
            let value = s.cookie.clone().unwrap_or_else(|| s.token.clone());
            cookies.push(format!("{name}={value}"));
        }
    }
    if let (Some(spec), Some(header)) = (&c.spec.auth.csrf, c.csrf_header()) {
        let cookie = c.csrf_cookie().unwrap_or_default();
        match (spec.style, csrf) {
            (CsrfStyle::Session, Csrf::Proper) => {
                req = req.header(header, s.csrf.clone().expect("a CSRF value"));
            }
            (CsrfStyle::Session, Csrf::Missing) => {}
            (CsrfStyle::Session, Csrf::Wrong) => {
                // The right value in the cookie does not make a wrong header right.
                cookies.push(format!("{cookie}={}", s.csrf.clone().unwrap_or_default()));
                req = req.header(
                    header,
                    "TokenID%3D8ed70a13-8469-11e8-b37a-b155e4eabeb8%2CexpirationTime%3D153",
                );
            }
            (CsrfStyle::DoubleSubmit, _) => {
                cookies.push(format!("{cookie}={CRAFTER_XSRF}"));
                match csrf {
                    Csrf::Proper => req = req.header(header, CRAFTER_XSRF),
                    Csrf::Missing => {}
                    Csrf::Wrong => req = req.header(header, "attacker-chosen-value"),
                }
            }
        }
    }
    if let Some(app) = &c.spec.auth.app_key {
        req = req.header(app.header.as_str(), APP_KEY);
    }
    if !cookies.is_empty() {
        req = req.header("Cookie", cookies.join("; "));
    }
    req
}

/// A change request with any body bytes and content type.
pub async fn change_raw(
    gw: &impl Endpoint,
    d: Dialect,
    s: &Session,
    who: &Who,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let path = d.change_path(who);
    let mut req = authed(gw, d, d.change_method(), &path, s, Csrf::Proper);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req.body(body).send().await.unwrap()
}

pub async fn change_json(
    gw: &impl Endpoint,
    d: Dialect,
    s: &Session,
    who: &Who,
    body: &Value,
) -> Response {
    change_raw(
        gw,
        d,
        s,
        who,
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

/// The vendor's change request for `who`, acting with session `s`.
pub async fn change(
    gw: &impl Endpoint,
    d: Dialect,
    s: &Session,
    who: &Who,
    current: &str,
    new: &str,
) -> Response {
    change_json(
        gw,
        d,
        s,
        who,
        &d.change_body(who, json!(current), json!(new)),
    )
    .await
}

/// Status, headers and body of an answer, for messages and checks.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn of(res: Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn in_style(&self, d: Dialect) -> bool {
        d.error_style(self.content_type(), &self.body)
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {}",
            self.status,
            self.content_type(),
            self.body.chars().take(300).collect::<String>()
        )
    }
}

/// How many `password_changed` records the audit holds for the user.
pub async fn password_changes(gw: &Gateway, who: &Who) -> usize {
    gw.audit(&who.id)
        .await
        .iter()
        .filter(|r| r["kind"] == "password_changed")
        .count()
}
