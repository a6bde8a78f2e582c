//! Canonical outcome or error -> the vendor's status, headers and body.

use credgate_core::{Error, FieldReason, IssuedToken, Outcome, User};
use minijinja::{context, Value};
use serde::Serialize;

use crate::dialect::{Dialect, RouteMatch};
use crate::extract::{csrf_value, vendor_name, RequestView};
use crate::http::HttpResponse;
use crate::spec::ResponseSpec;

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
        let (user, token): (Option<&User>, Option<&IssuedToken>) = match outcome {
            Outcome::Token(t) => (t.user.as_ref(), Some(t)),
            Outcome::PasswordChanged { user } | Outcome::User { user } => (Some(user), None),
            Outcome::PasswordReset { user } => (Some(user), None),
            Outcome::LoggedOut
            | Outcome::ResetRequested
            | Outcome::ResetValid
            | Outcome::ResetIssued { .. }
            | Outcome::TokenRevoked => (None, None),
        };
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
        let route = m.route();
        self.render_spec(&format!("routes.{}.ok", route.index), &route.spec.ok, ctx)
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
        let (name, spec) = match route.and_then(|r| r.spec.errors.get(kind).map(|s| (r, s))) {
            Some((r, s)) => (format!("routes.{}.errors.{kind}", r.index), s),
            None => match self.spec.errors.get(kind) {
                Some(s) => (format!("errors.{kind}"), s),
                None => return plain_500(),
            },
        };
        let problems: Vec<ProblemView> = match error {
            Error::InvalidRequest { problems } => problems
                .iter()
                .map(|p| {
                    let field = route
                        .map_or_else(|| p.field.clone(), |r| self.vendor_field(&r.spec, &p.field));
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
            Error::RateLimited { retry_after } => *retry_after,
            _ => 0,
        };
        let ctx = context! {
            error => kind, message => error.to_string(), problems => problems, missing => missing,
            rules => rules, retry_after => retry_after, ..self.base_context(view)
        };
        self.render_spec(&name, spec, ctx)
    }

    /// The vendor's name of a canonical field on a route, for error messages.
    fn vendor_field(&self, route: &crate::spec::RouteSpec, canonical: &str) -> String {
        let subject = route
            .subject
            .as_ref()
            .and_then(|s| s.id.as_ref().or(s.username.as_ref()));
        let sources = match canonical {
            "subject" => subject,
            "subject_check" => route.subject_check.as_ref(),
            other => route.fields.get(other),
        };
        sources.map_or_else(|| canonical.to_owned(), vendor_name)
    }

    fn render_spec(&self, name: &str, spec: &ResponseSpec, ctx: Value) -> HttpResponse {
        match self.try_render(name, spec, &ctx) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(dialect = %self.name, template = name, error = %e, "response template failed");
                match self
                    .spec
                    .errors
                    .get("internal")
                    .filter(|_| !name.starts_with("errors.internal"))
                {
                    Some(internal) => self.render_spec("errors.internal", internal, ctx),
                    None => plain_500(),
                }
            }
        }
    }

    fn try_render(
        &self,
        name: &str,
        spec: &ResponseSpec,
        ctx: &Value,
    ) -> Result<HttpResponse, minijinja::Error> {
        let content_type = spec
            .content_type
            .as_deref()
            .unwrap_or(&self.spec.content_type);
        let suffix = if content_type.contains("json") {
            "json"
        } else {
            "txt"
        };
        let body = self
            .env
            .get_template(&format!("{name}.body.{suffix}"))?
            .render(ctx)?;
        let mut headers = Vec::new();
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        for h in spec.headers.keys() {
            let value = self
                .env
                .get_template(&format!("{name}.header.{h}"))?
                .render(ctx)?;
            headers.push((h.clone(), header_safe(h, value)?));
        }
        for c in &spec.cookies {
            let cookie_name = self
                .env
                .get_template(&format!("{name}.cookie.{}.name", c.name))?
                .render(ctx)?;
            let value = self
                .env
                .get_template(&format!("{name}.cookie.{}.value", c.name))?
                .render(ctx)?;
            let mut cookie = format!("{cookie_name}={}; Path={}", cookie_safe(&value), c.path);
            if let Some(_age) = &c.max_age {
                let age = self
                    .env
                    .get_template(&format!("{name}.cookie.{}.max_age", c.name))?
                    .render(ctx)?;
                cookie.push_str(&format!("; Max-Age={}", age.trim()));
            }
            if c.http_only {
                cookie.push_str("; HttpOnly");
            }
            if c.secure {
                cookie.push_str("; Secure");
            }
            cookie.push_str("; SameSite=Lax");
            headers.push(("Set-Cookie".into(), header_safe("Set-Cookie", cookie)?));
        }
        for c in &spec.clear_cookies {
            let cookie_name = self.env.render_str(c, ctx)?;
            headers.push((
                "Set-Cookie".into(),
                header_safe("Set-Cookie", format!("{cookie_name}=; Path=/; Max-Age=0"))?,
            ));
        }
        // Credential answers must never be cached by a proxy or a browser.
        headers.push(("Cache-Control".into(), "no-store".into()));
        headers.push(("Pragma".into(), "no-cache".into()));
        Ok(HttpResponse {
            status: spec.status,
            headers,
            body: body.into_bytes(),
        })
    }
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
