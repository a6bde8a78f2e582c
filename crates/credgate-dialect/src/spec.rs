//! The typed form of a `dialect.toml`. Unknown keys are refused so a typo fails at start-up
//! with its line, instead of silently changing what the gateway serves.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialectSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Path prefix every route of the dialect sits under (`/studio`, `/api`).
    #[serde(default)]
    pub base: String,
    /// Default content type of responses.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Body field names match ignoring ASCII case (ASP.NET-style binders).
    #[serde(default)]
    pub case_insensitive_fields: bool,
    /// How request paths match the routes' templates: `exact` (the default) or
    /// `case-insensitive` (ASP.NET routing: literal segments such as `/Users/` match in any case).
    #[serde(default)]
    pub paths: PathMatching,
    /// Every route also matches its path with a trailing slash (ASP.NET routing does).
    #[serde(default)]
    pub trailing_slash: bool,
    /// Values templates can read as `vars.NAME`; the operator's config may override them.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: AuthSpec,
    /// How long the sessions it issues live (the vendor's documented value).
    #[serde(default)]
    pub tokens: TokensSpec,
    pub routes: Vec<RouteSpec>,
    /// Every canonical error kind, once: status, headers and body in the vendor's style.
    pub errors: BTreeMap<String, ResponseSpec>,
    /// The answers to requests under the dialect's base path that match none of its routes;
    /// without it they get the gateway's native problem JSON.
    pub unmatched: Option<UnmatchedSpec>,
}

/// How a dialect's paths match requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathMatching {
    #[default]
    Exact,
    CaseInsensitive,
}

/// The vendor's answers to an unknown path and to a known path with the wrong method (an
/// `Allow` header listing the route's methods is added to the latter).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnmatchedSpec {
    pub path: ResponseSpec,
    pub method: ResponseSpec,
}

fn default_content_type() -> String {
    "application/json".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    #[serde(default)]
    pub scheme: AuthScheme,
    /// With `cookie`: the cookie's name (a template, e.g. `AtmoAuthToken_{{ vars.fed_member_id }}`).
    pub cookie: Option<String>,
    /// With `cookie`: a regex whose first group finds the token in the URL-decoded cookie value.
    pub token_pattern: Option<String>,
    pub csrf: Option<CsrfSpec>,
    /// An application-key header checked on every route (Et-App's `Et-App-Key`).
    pub app_key: Option<AppKeySpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>`.
    #[default]
    Bearer,
    /// A session cookie holding the token.
    Cookie,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfSpec {
    pub style: CsrfStyle,
    /// Cookie name (template).
    pub cookie: String,
    /// Header name (template).
    pub header: String,
    /// Methods that must carry the header.
    #[serde(default = "default_csrf_methods")]
    pub methods: Vec<String>,
    /// With `session`: a regex whose first group finds the CSRF value in the URL-decoded header.
    pub pattern: Option<String>,
    /// Checked unless the operator turns it off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// With `double_submit`: the gateway sets the (script-readable) cookie itself, on login and
    /// on any answer to a client that has none, as Spring's cookie CSRF repository does.
    #[serde(default)]
    pub issue: bool,
    /// The `Path` of an issued cookie (below the dialect's mount prefix).
    #[serde(default = "root_path")]
    pub cookie_path: String,
}

fn default_csrf_methods() -> Vec<String> {
    vec!["POST".into(), "PUT".into(), "PATCH".into(), "DELETE".into()]
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsrfStyle {
    /// The server derives the value from the session and sets it as a cookie at login; the
    /// client echoes it in the header (Akana).
    Session,
    /// The client picks a value and sends it as cookie and header alike (Crafter).
    DoubleSubmit,
}

/// Token lifetimes in seconds; an absent one is the configuration's `token_ttl_secs` or
/// `client_token_ttl_secs`. The operator's `[dialects.token_ttl_secs]` overrides `ttl_secs`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensSpec {
    /// User sessions: logins, password and refresh grants, renewals.
    pub ttl_secs: Option<u64>,
    /// Client-credentials tokens.
    pub client_ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppKeySpec {
    pub header: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// A login with username and password: issues a user session.
    Login,
    /// An OAuth-style token endpoint: the grant decides.
    Token,
    ChangePassword,
    Logout,
    RenewSession,
    ShowUser,
    /// Starts a reset (`username`); the token goes to the user, never to the caller.
    RequestReset,
    /// Checks a reset `token` (and `username`, when the vendor sends one).
    ValidateReset,
    /// Sets `new` (and `confirm`) with a reset `token`.
    ResetPassword,
    /// Starts a reset by security `answer` for `username`: a one-time code goes to the user.
    RequestResetCode,
    /// Exchanges a delivered `code` for a reset token, rendered as `reset.token`.
    ExchangeResetCode,
    /// RFC 7009 revocation of `token` (an access or refresh token), with the route's client
    /// authentication; succeeds for unknown tokens too.
    RevokeToken,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRequirement {
    /// A user's session (password grant or login).
    #[default]
    User,
    /// A client-credentials token.
    Client,
    /// No session at all.
    None,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    #[default]
    None,
    Json,
    Form,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Never asked for.
    #[default]
    None,
    /// Checked when sent.
    Optional,
    Required,
}

/// Where a request names its user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct SubjectSpec {
    /// An id as the dialect's clients know it (alias or canonical id).
    pub id: Option<Sources>,
    pub username: Option<Sources>,
    /// A literal standing for the caller (`@me`).
    pub me: Option<String>,
}

/// One place (`body.OldPassword`, `path.id`, `query.username`, `header.Username`,
/// `basic.username`, `basic.password`, `cookie.NAME`) or several tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Sources {
    One(String),
    Any(Vec<String>),
}

impl Sources {
    pub fn list(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_str()],
            Self::Any(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub method: String,
    /// Under `base`; `{name}` captures one path segment (or part of one, as in `v{version}`).
    pub path: String,
    /// Also match the path with a trailing slash.
    #[serde(default)]
    pub trailing_slash: bool,
    pub command: CommandKind,
    #[serde(default)]
    pub token: TokenRequirement,
    #[serde(default)]
    pub body: BodyFormat,
    /// Accepted request media types (parameters such as charset are ignored).
    pub content_types: Option<Vec<String>>,
    #[serde(default)]
    pub subject: Option<SubjectSpec>,
    /// Canonical field -> where the vendor puts it.
    #[serde(default)]
    pub fields: BTreeMap<String, Sources>,
    /// Canonical fields that must be present (`subject` names the subject source).
    #[serde(default)]
    pub required: Vec<String>,
    /// With `token`: vendor grant_type value -> canonical grant (`password`,
    /// `client_credentials`, `refresh_token`); without a grant field the grant is `password`.
    #[serde(default)]
    pub grants: BTreeMap<String, String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// With `token`: issue a refresh token alongside a password grant.
    #[serde(default)]
    pub refresh: bool,
    /// Skip the dialect's app-key check on this route.
    #[serde(default)]
    pub no_app_key: bool,
    /// Skip the dialect's CSRF check on this route (a vendor's documented exception).
    #[serde(default)]
    pub no_csrf: bool,
    /// A field the body may repeat that must equal the subject (Crayon's `Id`).
    pub subject_check: Option<Sources>,
    /// Values an upstream call sends as they are (`{ "body.scope" = "CustomerApi" }`), where
    /// the vendor's clients always send a field the gateway has no use for. Ignored inbound.
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    pub ok: ResponseSpec,
    /// With `login`/`token`: the answer when the user logs in with two factors and the second
    /// is awaited (`challenge.token` is the interim token). Without it such a login fails as
    /// `invalid_credentials`, so no dialect bypasses a user's second factor.
    pub challenge: Option<ResponseSpec>,
    /// Per-route overrides of the dialect's error table.
    #[serde(default)]
    pub errors: BTreeMap<String, ResponseSpec>,
    /// Free text: where the route comes from, and what was inferred.
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseSpec {
    pub status: u16,
    pub content_type: Option<String>,
    /// A minijinja template; JSON content types escape every `{{ value }}` as JSON.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub cookies: Vec<CookieSpec>,
    #[serde(default)]
    pub clear_cookies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieSpec {
    pub name: String,
    pub value: String,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default)]
    pub http_only: bool,
    #[serde(default)]
    pub secure: bool,
    /// Seconds; a template such as `{{ token.expires_in }}`. Absent: a session cookie.
    pub max_age: Option<String>,
}

fn root_path() -> String {
    "/".into()
}
