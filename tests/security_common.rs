//! The security suite's kit: one driver per dialect that logs in, changes a password and sends
//! raw requests exactly as that vendor's clients do, plus what each dialect answers.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};

use crate::common::{self, Gateway};

pub const CLIENT_ID: &str = "sec-partner-client";
pub const CLIENT_SECRET: &str = "Sec-Client-Secret-4711";
pub const APP_KEY: &str = "sec-etna-app-key-0123456789";
pub const AKANA_COOKIE: &str = "AtmoAuthToken_acmepaymentscorp";
pub const AKANA_CSRF_COOKIE: &str = "Csrf-Token_acmepaymentscorp";
pub const AKANA_CSRF_HEADER: &str = "X-Csrf-Token_acmepaymentscorp";
/// The value a Crafter client picks for its double-submit CSRF cookie and header.
pub const CRAFTER_XSRF: &str = "sec-caller-chosen-xsrf-1";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Akana,
    Crafter,
    Crayon,
    Etapp,
    Oauth,
}

pub use Dialect::{Akana, Crafter, Crayon, Etapp, Oauth};

pub const ALL: [Dialect; 5] = [Akana, Crafter, Crayon, Etapp, Oauth];

/// A user as the tests know it.
#[derive(Clone, Debug)]
pub struct Who {
    pub id: String,
    pub username: String,
}

/// What a client holds after logging in: what an attacker would steal.
#[derive(Clone, Debug)]
pub struct Session {
    /// The raw access token (Akana: the TokenID inside the cookie).
    pub token: String,
    /// Akana: the whole `AtmoAuthToken_*` cookie value.
    pub cookie: Option<String>,
    /// Akana: the `Csrf-Token_*` cookie value, echoed in the CSRF header.
    pub csrf: Option<String>,
}

/// How a request's CSRF proof is sent (cookie dialects only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csrf {
    Proper,
    Missing,
    Wrong,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Akana => "akana",
            Crafter => "crafter",
            Crayon => "crayon",
            Etapp => "etapp",
            Oauth => "oauth-style",
        }
    }

    pub fn has_subject(self) -> bool {
        self != Oauth
    }

    /// A wrong password at login.
    pub fn login_failed_status(self) -> u16 {
        match self {
            Akana | Crafter | Etapp => 401,
            Crayon | Oauth => 400,
        }
    }

    pub fn change_ok_status(self) -> u16 {
        match self {
            Oauth => 204,
            _ => 200,
        }
    }

    /// Acting on another user without the right to.
    pub fn forbidden_status(self) -> u16 {
        match self {
            Akana | Etapp => 401,
            Crafter | Crayon | Oauth => 403,
        }
    }

    pub fn csrf_status(self) -> u16 {
        match self {
            Akana => 401,
            _ => 403,
        }
    }

    pub fn login_path(self) -> &'static str {
        match self {
            Akana => "/api/login",
            Crafter => "/studio/api/1/services/api/1/security/login.json",
            Crayon => "/api/v1/connect/token",
            Etapp => "/api/token",
            Oauth => "/auth/token",
        }
    }

    pub fn change_method(self) -> Method {
        match self {
            Crafter | Oauth => Method::POST,
            _ => Method::PUT,
        }
    }

    pub fn change_path(self, who: &Who) -> String {
        let id = &who.id;
        match self {
            Akana => format!("/api/users/{id}/password"),
            Crafter => "/studio/api/1/services/api/1/user/change-password.json".into(),
            Crayon => format!("/api/v1/users/{id}/changepassword"),
            Etapp => format!("/api/v1.0/users/{id}/password/change"),
            Oauth => "/auth/password/change".into(),
        }
    }

    /// The vendor's names of the current and new password fields.
    pub fn current_field(self) -> &'static str {
        match self {
            Akana | Crayon | Etapp => "OldPassword",
            Crafter => "current",
            Oauth => "CurrentPassword",
        }
    }

    pub fn new_field(self) -> &'static str {
        match self {
            Akana | Crayon | Oauth => "NewPassword",
            Crafter => "new",
            Etapp => "Password",
        }
    }

    /// A change body in the vendor's shape, with any JSON values.
    pub fn change_body(self, who: &Who, current: Value, new: Value) -> Value {
        match self {
            Akana => json!({"OldPassword": current, "NewPassword": new}),
            Crafter => json!({"username": who.username, "current": current, "new": new}),
            Crayon => json!({"Id": who.id, "OldPassword": current, "NewPassword": new}),
            Etapp => json!({"OldPassword": current, "Password": new, "PasswordConfirm": new}),
            Oauth => json!({"CurrentPassword": current, "NewPassword": new}),
        }
    }

    /// True when an error answer is in this dialect's own style (not a generic framework page).
    pub fn error_style(self, content_type: &str, body: &str) -> bool {
        let json: Option<Value> = serde_json::from_str(body).ok();
        match self {
            Akana => content_type.starts_with("text/plain") && json.is_none() && !body.is_empty(),
            Crafter => json.is_some_and(|v| v["message"].is_string()),
            Crayon => json.is_some_and(|v| v["ErrorCode"].is_string() && v["Message"].is_string()),
            Etapp => json.is_some_and(|v| v["Message"].is_string() || v["error"].is_string()),
            Oauth => json.is_some_and(|v| v["Message"].is_string() && v["Errors"].is_array()),
        }
    }

    /// True when `body` is this dialect's `rate_limited` answer with `retry_after` seconds.
    pub fn rate_limited_body(self, body: &str, retry_after: u64) -> bool {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        match self {
            Akana => body == "Too Many Requests",
            Crafter => json == json!({"message": "Too many requests"}),
            Crayon => {
                json["ErrorCode"] == "TooManyRequests"
                    && (json["Parameters"]["RetryAfter"] == json!(retry_after)
                        || json["Parameters"]["RetryAfter"] == json!(retry_after.to_string()))
            }
            Etapp => json == json!({"Message": "Too many attempts. Retry later."}),
            Oauth => json["Errors"][0]["Code"] == "RateLimited",
        }
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

/// The dialect's own login request.
pub fn login_request(
    gw: &impl Endpoint,
    d: Dialect,
    username: &str,
    password: &str,
) -> RequestBuilder {
    let url = gw.at(d.login_path());
    match d {
        Akana => gw
            .client()
            .post(url)
            .json(&json!({"email": username, "password": password})),
        Crafter => gw
            .client()
            .post(url)
            .json(&json!({"username": username, "password": password})),
        Crayon => gw
            .client()
            .post(url)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", "CustomerApi"),
            ]),
        Etapp => gw
            .client()
            .post(url)
            .header("Et-App-Key", APP_KEY)
            .header("Username", username)
            .header("Password", password),
        Oauth => gw
            .client()
            .post(url)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ]),
    }
}

pub async fn login_raw(gw: &impl Endpoint, d: Dialect, username: &str, password: &str) -> Response {
    login_request(gw, d, username, password)
        .send()
        .await
        .unwrap()
}

fn cookie_value(res: &Response, name: &str) -> Option<String> {
    res.cookies()
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Reads the session out of a successful login answer.
pub async fn session_of(d: Dialect, res: Response) -> Session {
    match d {
        Akana => {
            let cookie = cookie_value(&res, AKANA_COOKIE).expect("Akana auth cookie");
            let csrf = cookie_value(&res, AKANA_CSRF_COOKIE).expect("Akana CSRF cookie");
            let decoded = percent_decode(&cookie);
            let token = decoded
                .split(',')
                .find_map(|p| p.strip_prefix("TokenID="))
                .expect("TokenID in the Akana cookie")
                .to_owned();
            Session {
                token,
                cookie: Some(cookie),
                csrf: Some(csrf),
            }
        }
        Crafter => Session {
            token: cookie_value(&res, "JSESSIONID").expect("JSESSIONID"),
            cookie: None,
            csrf: None,
        },
        Crayon | Etapp | Oauth => {
            let field = match d {
                Crayon => "accessToken",
                Etapp => "Token",
                _ => "access_token",
            };
            let body: Value = res.json().await.unwrap();
            Session {
                token: body[field].as_str().expect("token in body").to_owned(),
                cookie: None,
                csrf: None,
            }
        }
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

/// A request carrying the session the way the vendor's clients send it.
pub fn authed(
    gw: &impl Endpoint,
    d: Dialect,
    method: Method,
    path: &str,
    s: &Session,
    csrf: Csrf,
) -> RequestBuilder {
    let req = gw.client().request(method, gw.at(path));
    match d {
        Akana => {
            let mut cookie = format!("{AKANA_COOKIE}={}", s.cookie.as_deref().unwrap());
            let req = match csrf {
                Csrf::Proper => req.header(AKANA_CSRF_HEADER, s.csrf.as_deref().unwrap()),
                Csrf::Missing => req,
                Csrf::Wrong => {
                    cookie.push_str(&format!(
                        "; {AKANA_CSRF_COOKIE}={}",
                        s.csrf.as_deref().unwrap()
                    ));
                    req.header(
                        AKANA_CSRF_HEADER,
                        "TokenID%3D8ed70a13-8469-11e8-b37a-b155e4eabeb8%2CexpirationTime%3D153",
                    )
                }
            };
            req.header("Cookie", cookie)
        }
        Crafter => match csrf {
            Csrf::Proper => req
                .header(
                    "Cookie",
                    format!("JSESSIONID={}; XSRF-TOKEN={CRAFTER_XSRF}", s.token),
                )
                .header("X-XSRF-TOKEN", CRAFTER_XSRF),
            Csrf::Missing => req.header(
                "Cookie",
                format!("JSESSIONID={}; XSRF-TOKEN={CRAFTER_XSRF}", s.token),
            ),
            Csrf::Wrong => req
                .header(
                    "Cookie",
                    format!("JSESSIONID={}; XSRF-TOKEN={CRAFTER_XSRF}", s.token),
                )
                .header("X-XSRF-TOKEN", "attacker-chosen-value"),
        },
        Crayon | Oauth => req.bearer_auth(&s.token),
        Etapp => req.bearer_auth(&s.token).header("Et-App-Key", APP_KEY),
    }
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
    let mut req = authed(
        gw,
        d,
        d.change_method(),
        &d.change_path(who),
        s,
        Csrf::Proper,
    );
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
