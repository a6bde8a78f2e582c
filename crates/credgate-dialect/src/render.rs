//! Canonical outcome or error -> the vendor's status, headers and body.

use credgate_core::{Error, FieldReason, IssuedToken, Outcome, User};
use minijinja::{context, Value};
use serde::Serialize;

use crate::dialect::{Dialect, RouteMatch};
use crate::extract::{csrf_value, RequestView};
use crate::http::HttpResponse;
use crate::route::vendor_name;
use crate::route::{CompiledRoute, Response};

#[derive(Serialize)]
struct UserView<'a> {
    id: &'a str,
    /// The id this dialect's clients know the user by (its alias, else the canonical id).
    r#ref: &'a str,
    username: &'a str,
    admin: bool,
    externally_managed: bool,
    profile: &'a std::collections::BTreeMap<String, String>,
    aliases: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct TokenView<'a> {
    access: &'a str,
    refresh: Option<&'a str>,
    kind: &'static str,
    expires_in: i64,
    issued_at: i64,
    expires_at: i64,
    issued_at_ms: i64,
    expires_at_ms: i64,
    csrf: String,
    client_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ProblemView {
    field: String,
    canonical: String,
    reason: FieldReason,
    message: String,
}

impl Dialect {
    fn user_view<'a>(&self, user: &'a User) -> UserView<'a> {
        UserView {
            id: &user.id,
            r#ref: user.id_for(&self.name),
            username: &user.username,
            admin: user.admin,
            externally_managed: user.externally_managed,
            profile: &user.profile,
            aliases: &user.aliases,
        }
    }

    fn base_context(&self, view: &RequestView) -> Value {
        context! { base => self.spec.base, vars => self.vars, dialect => self.name, path => view.path, request => view }
    }

    /// The success response of the matched route.
    pub fn render_outcome(
        &self,
        m: &RouteMatch,
        view: &RequestView,
        outcome: &Outcome,
    ) -> HttpResponse {
        if let Outcome::SecondFactorRequired { interim, method } = outcome {
            let route = m.route();
            let Some(challenge) = &route.challenge else {
                return self.render_error(Some(m), view, &Error::InvalidCredentials);
            };
            let challenge_view = context! { token => interim.expose(), method => method.as_str() };
            let ctx = context! { challenge => challenge_view, ..self.base_context(view) };
            return self.render_response(challenge, ctx);
        }
        self.render_ok(m.route(), view, outcome)
    }

    /// The success response of `route`.
    pub(crate) fn render_ok(
        &self,
        route: &CompiledRoute,
        view: &RequestView,
        outcome: &Outcome,
    ) -> HttpResponse {
        if let Some(constant) = self.constant_response(&route.ok) {
            return constant;
        }
        let (user, token): (Option<&User>, Option<&IssuedToken>) = match outcome {
            Outcome::Token(t) => (t.user.as_ref(), Some(t)),
            Outcome::PasswordChanged { user } | Outcome::User { user } => (Some(user), None),
            Outcome::PasswordReset { user } => (Some(user), None),
            Outcome::LoggedOut
            | Outcome::ResetRequested
            | Outcome::ResetValid
            | Outcome::ResetIssued { .. }
            | Outcome::TokenRevoked
            | Outcome::SecondFactorRequired { .. } => (None, None),
        };
        if let Some(fast) = self.fast_response(&route.ok, view, user) {
            return fast;
        }
        self.render_ok_templated(route, view, outcome, user, token)
    }

    /// `render_ok` through minijinja.
    pub(crate) fn render_ok_templated(
        &self,
        route: &CompiledRoute,
        view: &RequestView,
        outcome: &Outcome,
        user: Option<&User>,
        token: Option<&IssuedToken>,
    ) -> HttpResponse {
        let reset = match outcome {
            Outcome::ResetIssued { token } => Some(context! { token => token.expose() }),
            _ => None,
        };
        let token = token.map(|t| TokenView {
            access: t.access.expose(),
            refresh: t.refresh.as_ref().map(|r| r.expose()),
            kind: t.kind.as_str(),
            expires_in: t.expires_in(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            issued_at_ms: t.issued_at * 1000,
            expires_at_ms: t.expires_at * 1000,
            csrf: csrf_value(&t.access),
            client_id: t.client_id.as_deref(),
        });
        let ctx = context! { user => user.map(|u| self.user_view(u)), token => token, reset => reset, ..self.base_context(view) };
        self.render_response(&route.ok, ctx)
    }

    /// The response rendered by `json_body` when its body has that fixed shape; `None` leaves
    /// it to minijinja.
    fn fast_response(
        &self,
        response: &Response,
        view: &RequestView,
        user: Option<&User>,
    ) -> Option<HttpResponse> {
        let scope = crate::json_body::Scope {
            base: &self.spec.base,
            dialect: &self.name,
            vars: &self.vars,
            params: &view.path,
            user,
        };
        let body = response.fast_json.as_ref()?.render(&scope)?;
        // As `try_render_with` builds it for a response without header or cookie templates.
        let mut headers = Vec::with_capacity(3);
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), response.content_type.clone()));
        }
        headers.push(("Cache-Control".into(), "no-store".into()));
        headers.push(("Pragma".into(), "no-cache".into()));
        Some(HttpResponse {
            status: response.spec.status,
            headers,
            body: body.into_bytes(),
        })
    }

    /// The vendor's answer to a canonical error, from the route's overrides or the dialect table.
    pub fn render_error(
        &self,
        m: Option<&RouteMatch>,
        view: &RequestView,
        error: &Error,
    ) -> HttpResponse {
        let kind = error.kind();
        let route = m.map(|m| m.route());
        let Some(response) = self.error_response(route, kind) else {
            return plain_500();
        };
        if let Some(constant) = self.constant_response(response) {
            return constant;
        }
        let problems: Vec<ProblemView> = match error {
            Error::InvalidRequest { problems } => problems
                .iter()
                .map(|p| {
                    let field =
                        route.map_or_else(|| p.field.clone(), |r| vendor_field(r, &p.field));
                    let message = match p.reason {
                        FieldReason::Missing => format!("{field} is required"),
                        FieldReason::WrongType => format!("{field} must be a string"),
                        FieldReason::Invalid => format!("{field} is invalid"),
                        FieldReason::Mismatch => format!("{field} does not match"),
                        FieldReason::Unsupported => format!("{field} is not supported"),
                    };
                    ProblemView {
                        field,
                        canonical: p.field.clone(),
                        reason: p.reason,
                        message,
                    }
                })
                .collect(),
            _ => Vec::new(),
        };
        let missing: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        let rules: Vec<Value> = match error {
            Error::PolicyViolation { rules } => rules
                .iter()
                .map(|r| context! { name => r.name(), message => r.message() })
                .collect(),
            _ => Vec::new(),
        };
        let retry_after = match error {
            Error::RateLimited { retry_after } | Error::Overloaded { retry_after } => *retry_after,
            _ => 0,
        };
        let ctx = context! {
            error => kind, message => error.to_string(), problems => problems, missing => missing,
            rules => rules, retry_after => retry_after, ..self.base_context(view)
        };
        self.render_response(response, ctx)
    }

    pub(crate) fn render_response(&self, response: &Response, ctx: Value) -> HttpResponse {
        match self.try_render(response, &ctx) {
            Ok(r) => r,
            Err(e) => {
                let template = response.body.as_str();
                tracing::error!(dialect = %self.name, template, error = %e, "response template failed");
                match self.errors.get("internal") {
                    Some(internal) if !template.starts_with("errors.internal") => {
                        self.render_response(internal, ctx)
                    }
                    _ => plain_500(),
                }
            }
        }
    }

    fn try_render(
        &self,
        response: &Response,
        ctx: &Value,
    ) -> Result<HttpResponse, minijinja::Error> {
        self.try_render_with(response, |name| self.env.get_template(name)?.render(ctx))
    }

    /// The response when none of its templates uses template syntax (`{"message": "OK"}`, most
    /// error bodies): no context is built and nothing is evaluated. `None` otherwise.
    /// Decided once per response: its templates never change while the dialect is loaded.
    fn constant_response(&self, response: &Response) -> Option<HttpResponse> {
        let constant = response.constant.get_or_init(|| {
            self.try_render_with(response, |name| {
                self.literal(name).ok_or_else(|| {
                    minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "not constant")
                })
            })
            .ok()
        });
        constant.clone()
    }

    /// A template's text when it has no template syntax, as rendering would give it
    /// (minijinja drops one trailing newline).
    fn literal(&self, name: &str) -> Option<String> {
        let template = self.env.get_template(name).ok()?;
        let source = template.source();
        if ["{{", "{%", "{#"].iter().any(|open| source.contains(open)) {
            return None;
        }
        let text = source.strip_suffix('\n').unwrap_or(source);
        Some(text.strip_suffix('\r').unwrap_or(text).to_owned())
    }

    fn try_render_with(
        &self,
        response: &Response,
        render: impl Fn(&str) -> Result<String, minijinja::Error>,
    ) -> Result<HttpResponse, minijinja::Error> {
        let body = render(&response.body)?;
        let mut headers = Vec::new();
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), response.content_type.clone()));
        }
        for (h, template) in &response.headers {
            headers.push((h.clone(), header_safe(h, render(template)?)?));
        }
        for c in &response.cookies {
            let cookie_name = render(&c.name)?;
            let value = render(&c.value)?;
            let mut cookie = format!(
                "{cookie_name}={}; Path={}",
                cookie_safe(&value),
                c.spec.path
            );
            if let Some(age) = &c.max_age {
                cookie.push_str(&format!("; Max-Age={}", render(age)?.trim()));
            }
            if c.spec.http_only {
                cookie.push_str("; HttpOnly");
            }
            if c.spec.secure {
                cookie.push_str("; Secure");
            }
            cookie.push_str("; SameSite=Lax");
            headers.push(("Set-Cookie".into(), header_safe("Set-Cookie", cookie)?));
        }
        for template in &response.clear {
            let cookie_name = render(template)?;
            headers.push((
                "Set-Cookie".into(),
                header_safe("Set-Cookie", format!("{cookie_name}=; Path=/; Max-Age=0"))?,
            ));
        }
        // Credential answers must never be cached by a proxy or a browser.
        headers.push(("Cache-Control".into(), "no-store".into()));
        headers.push(("Pragma".into(), "no-cache".into()));
        Ok(HttpResponse {
            status: response.spec.status,
            headers,
            body: body.into_bytes(),
        })
    }
}

/// The vendor's name of a canonical field on a route, for error messages.
fn vendor_field(route: &CompiledRoute, canonical: &str) -> String {
    let sources = match canonical {
        "subject" => route.subject.as_ref().map(|s| &s.sources),
        "subject_check" => route.subject_check.as_ref(),
        other => route.fields.get(other),
    };
    sources.map_or_else(|| canonical.to_owned(), |s| vendor_name(s))
}

/// Refuses header values that could split the response; templates must encode what they embed.
fn header_safe(name: &str, value: String) -> Result<String, minijinja::Error> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("header {name} would contain a control character"),
        ));
    }
    Ok(value)
}

/// Percent-encodes anything outside RFC 6265's cookie-octet set. `%` is a cookie octet and is
/// kept, so a value the template already URL-encoded (Akana's `TokenID%3D..%2C..`) is sent as is
/// instead of being encoded twice.
fn cookie_safe(value: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
    const NOT_COOKIE_OCTET: &AsciiSet =
        &CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\');
    utf8_percent_encode(value, NOT_COOKIE_OCTET).to_string()
}

fn plain_500() -> HttpResponse {
    HttpResponse {
        status: 500,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: b"Internal Server Error".to_vec(),
    }
}
