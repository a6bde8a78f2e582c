//! A route compiled once at load into typed values, so that extraction, rendering, the OpenAPI
//! document and the upstream direction all ask it the same questions and nothing is re-parsed
//! per request.

use std::collections::BTreeMap;

use crate::router::PathTemplate;
use crate::spec::{BodyFormat, CookieSpec, ResponseSpec, RouteSpec, Sources};

/// Where a vendor carries a field: `body.OldPassword` is `Body("OldPassword")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Body(String),
    Path(String),
    Query(String),
    Header(String),
    Cookie(String),
    BasicUsername,
    BasicPassword,
}

impl Source {
    /// `body.X`, `path.X`, `query.X`, `header.X`, `cookie.X`, `basic.username`, `basic.password`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let named = |name: &str, make: fn(String) -> Self| Ok(make(name.to_owned()));
        match text.split_once('.') {
            Some((_, "")) | None => Err(Self::not_a_source(text)),
            Some(("body", name)) => named(name, Self::Body),
            Some(("path", name)) => named(name, Self::Path),
            Some(("query", name)) => named(name, Self::Query),
            Some(("header", name)) => named(name, Self::Header),
            Some(("cookie", name)) => named(name, Self::Cookie),
            Some(("basic", "username")) => Ok(Self::BasicUsername),
            Some(("basic", "password")) => Ok(Self::BasicPassword),
            Some(_) => Err(Self::not_a_source(text)),
        }
    }

    fn not_a_source(text: &str) -> String {
        format!("`{text}` is not a field source (body.X, path.X, query.X, header.X, cookie.X, basic.username, basic.password)")
    }

    /// The vendor's name of the field (`OldPassword`; `username` for Basic's user part).
    pub fn name(&self) -> &str {
        match self {
            Self::Body(n) | Self::Path(n) | Self::Query(n) | Self::Header(n) | Self::Cookie(n) => n,
            Self::BasicUsername => "username",
            Self::BasicPassword => "password",
        }
    }

    /// Where it travels, as OpenAPI's `in` says it (`body` and `basic` have no parameter).
    pub fn place(&self) -> &'static str {
        match self {
            Self::Body(_) => "body",
            Self::Path(_) => "path",
            Self::Query(_) => "query",
            Self::Header(_) => "header",
            Self::Cookie(_) => "cookie",
            Self::BasicUsername | Self::BasicPassword => "basic",
        }
    }
}

/// Several sources of one field, tried in order.
pub type SourceList = Vec<Source>;

/// The vendor's name of a field: that of its first source.
pub(crate) fn vendor_name(sources: &[Source]) -> String {
    sources
        .first()
        .map(Source::name)
        .unwrap_or_default()
        .to_owned()
}

/// A canonical grant, as a vendor's `grant_type` values map to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    Password,
    ClientCredentials,
    RefreshToken,
}

impl GrantKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "password" => Some(Self::Password),
            "client_credentials" => Some(Self::ClientCredentials),
            "refresh_token" => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

/// How a route names its subject: by id (alias or canonical id) or by username.
#[derive(Debug, Clone)]
pub struct SubjectSources {
    pub sources: SourceList,
    pub by_id: bool,
    /// A literal standing for the caller (`@me`).
    pub me: Option<String>,
}

/// A response with the names of its templates, fixed at load.
#[derive(Debug, Clone)]
pub struct Response {
    pub spec: ResponseSpec,
    /// The response's own content type, else the dialect's.
    pub content_type: String,
    pub(crate) body: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) cookies: Vec<CookieTemplates>,
    /// The names of the cookies it clears.
    pub(crate) clear: Vec<String>,
    /// The body compiled for rendering without minijinja, when it is JSON of a fixed shape and
    /// the response has no header or cookie templates (see `json_body`).
    pub(crate) fast_json: Option<crate::json_body::JsonBody>,
    /// The whole response when none of its templates uses template syntax, decided and built
    /// on first use (see `Dialect::constant_response`).
    pub(crate) constant: std::sync::OnceLock<Option<crate::http::HttpResponse>>,
}

/// The templates of one cookie a response sets.
#[derive(Debug, Clone)]
pub(crate) struct CookieTemplates {
    pub spec: CookieSpec,
    pub name: String,
    pub value: String,
    pub max_age: Option<String>,
}

impl Response {
    /// The response `spec` whose templates are named `{prefix}.…` (`routes.3.ok`,
    /// `errors.internal`).
    pub(crate) fn new(prefix: &str, spec: &ResponseSpec, default_content_type: &str) -> Self {
        let content_type = (spec.content_type.as_deref())
            .unwrap_or(default_content_type)
            .to_owned();
        // The suffix picks the escaping: JSON for JSON bodies, none otherwise.
        let suffix = if content_type.contains("json") {
            "json"
        } else {
            "txt"
        };
        let cookies = (spec.cookies.iter())
            .map(|c| {
                let at = format!("{prefix}.cookie.{}", c.name);
                CookieTemplates {
                    spec: c.clone(),
                    name: format!("{at}.name"),
                    value: format!("{at}.value"),
                    max_age: c.max_age.as_ref().map(|_| format!("{at}.max_age")),
                }
            })
            .collect();
        Self {
            content_type,
            body: format!("{prefix}.body.{suffix}"),
            headers: (spec.headers.keys())
                .map(|h| (h.clone(), format!("{prefix}.header.{h}")))
                .collect(),
            cookies,
            clear: (0..spec.clear_cookies.len())
                .map(|i| format!("{prefix}.clear.{i}"))
                .collect(),
            fast_json: (suffix == "json"
                && spec.headers.is_empty()
                && spec.cookies.is_empty()
                && spec.clear_cookies.is_empty())
            .then(|| crate::json_body::JsonBody::compile(&spec.body))
            .flatten(),
            constant: std::sync::OnceLock::new(),
            spec: spec.clone(),
        }
    }

    /// Every (template name, template text) pair of the response.
    pub(crate) fn templates(&self) -> Vec<(&str, &str)> {
        let mut all = vec![(self.body.as_str(), self.spec.body.as_str())];
        for (h, name) in &self.headers {
            all.push((name, &self.spec.headers[h]));
        }
        for c in &self.cookies {
            all.push((&c.name, &c.spec.name));
            all.push((&c.value, &c.spec.value));
            if let (Some(name), Some(text)) = (&c.max_age, &c.spec.max_age) {
                all.push((name, text));
            }
        }
        for (name, text) in self.clear.iter().zip(&self.spec.clear_cookies) {
            all.push((name, text));
        }
        all
    }
}

/// One route, compiled.
pub struct CompiledRoute {
    /// Position in the file.
    pub(crate) index: usize,
    pub spec: RouteSpec,
    pub method: http::Method,
    pub path: PathTemplate,
    /// Canonical field -> where the vendor puts it.
    pub fields: BTreeMap<String, SourceList>,
    pub subject: Option<SubjectSources>,
    /// A field the body may repeat that must equal the subject (Crayon's `Id`).
    pub subject_check: Option<SourceList>,
    /// Vendor `grant_type` value -> canonical grant.
    pub grants: BTreeMap<String, GrantKind>,
    /// Values an upstream call sends as they are.
    pub constants: Vec<(Source, String)>,
    /// Accepted request media types, lower case; empty for routes without a body.
    pub accepts: Vec<String>,
    /// Whether the dialect's CSRF check applies to this route.
    pub csrf: bool,
    pub ok: Response,
    /// The answer awaiting a second factor (`[routes.challenge]`), if the route has one.
    pub challenge: Option<Response>,
    /// The route's own overrides of the dialect's error table.
    pub errors: BTreeMap<String, Response>,
}

impl CompiledRoute {
    /// Whether the route maps a vendor grant to `grant` (a route without grants takes
    /// passwords only).
    pub fn has_grant(&self, grant: GrantKind) -> bool {
        self.grants.values().any(|g| *g == grant)
            || (self.grants.is_empty() && grant == GrantKind::Password)
    }

    /// Whether the route accepts media type `mt` (lower case, no parameters): listed, or
    /// within a listed range such as `application/*+json` or `text/*`.
    pub fn accepts_type(&self, mt: &str) -> bool {
        self.accepts
            .iter()
            .any(|a| a == mt || in_media_range(a, mt))
    }

    /// Whether `canonical` must be present.
    pub fn requires(&self, canonical: &str) -> bool {
        self.spec.required.iter().any(|r| r == canonical)
    }
}

/// Whether `mt` lies in `range` (`application/*+json`, `text/*`); plain types never match here.
fn in_media_range(range: &str, mt: &str) -> bool {
    let (Some((rtype, rsub)), Some((mtype, msub))) = (range.split_once('/'), mt.split_once('/'))
    else {
        return false;
    };
    let Some(suffix) = rsub.strip_prefix('*') else {
        return false;
    };
    rtype == mtype && !msub.contains('/') && msub.len() > suffix.len() && msub.ends_with(suffix)
}

/// The request media types a route accepts, lower case.
pub(crate) fn accepted_types(spec: &RouteSpec) -> Vec<String> {
    match (&spec.content_types, spec.body) {
        (_, BodyFormat::None) => Vec::new(),
        (Some(list), _) => list.iter().map(|s| s.to_ascii_lowercase()).collect(),
        (None, BodyFormat::Form) => vec!["application/x-www-form-urlencoded".into()],
        (None, BodyFormat::Json) => vec!["application/json".into()],
    }
}

/// Parses every source of `sources`, reporting each bad one to `fail`.
pub(crate) fn compile_sources(sources: &Sources, fail: &mut dyn FnMut(String)) -> SourceList {
    (sources.list().into_iter())
        .filter_map(|s| Source::parse(s).map_err(&mut *fail).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::in_media_range;

    #[test]
    fn media_ranges() {
        assert!(in_media_range(
            "application/*+json",
            "application/json-patch+json"
        ));
        assert!(in_media_range(
            "application/*+json",
            "application/vnd.x+json"
        ));
        assert!(!in_media_range("application/*+json", "application/json"));
        assert!(!in_media_range("application/*+json", "text/x+json"));
        assert!(!in_media_range("application/*+json", "application/+json"));
        assert!(in_media_range("text/*", "text/json"));
        assert!(!in_media_range("application/json", "application/json"));
    }
}
