//! An OpenAPI 3.1 document generated from a compiled dialect: its routes, where each field
//! travels, its auth scheme, its success answer and its whole error table. Response schemas
//! come from rendering the dialect's own templates with sample values, so the document shows
//! the vendor's bodies exactly as the gateway sends them.

use std::collections::BTreeMap;

use credgate_core::Error as CoreError;
use minijinja::{context, Value as Ctx};
use serde_json::{json, Map, Value};

use crate::dialect::{CompiledRoute, Dialect};
use crate::spec::{
    AuthScheme, BodyFormat, ClientAuth, CommandName, CsrfStyle, ResponseSpec, Sources,
    TokenRequirement,
};

/// The OpenAPI version the documents declare.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// The dialect's OpenAPI 3.1 document.
pub fn document(d: &Dialect) -> Value {
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut schemes = Map::new();
    for route in &d.routes {
        let op = operation(d, route, &mut schemes);
        paths
            .entry(route.path.template.clone())
            .or_default()
            .insert(route.spec.method.to_ascii_lowercase(), op);
    }
    let mut doc = json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": format!("{} (credgate dialect)", d.name),
            "description": d.spec.description,
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "tags": [{"name": d.name, "description": d.spec.description}],
    });
    if !schemes.is_empty() {
        doc["components"] = json!({ "securitySchemes": schemes });
    }
    doc
}

/// Where a field travels, split from `body.OldPassword`.
fn place(source: &str) -> (&str, &str) {
    source.split_once('.').unwrap_or((source, ""))
}

/// Canonical field -> its sources, subject and subject check included.
fn all_fields(route: &CompiledRoute) -> Vec<(String, &Sources)> {
    let spec = &route.spec;
    let mut fields: Vec<(String, &Sources)> =
        spec.fields.iter().map(|(k, v)| (k.clone(), v)).collect();
    if let Some(s) = &spec.subject {
        if let Some(src) = s.id.as_ref().or(s.username.as_ref()) {
            fields.push(("subject".into(), src));
        }
    }
    if let Some(check) = &spec.subject_check {
        fields.push(("subject_check".into(), check));
    }
    fields
}

fn operation(d: &Dialect, route: &CompiledRoute, schemes: &mut Map<String, Value>) -> Value {
    let spec = &route.spec;
    let mut op = Map::new();
    op.insert("operationId".into(), json!(spec.name));
    op.insert("tags".into(), json!([d.name]));
    op.insert("summary".into(), json!(command_summary(spec.command)));
    let mut description = format!("credgate command `{}`.", command_name(spec.command));
    if spec.trailing_slash {
        description.push_str(" Also answered with a trailing slash.");
    }
    if d.spec.case_insensitive_fields && spec.body != BodyFormat::None {
        description.push_str(" Body field names match ignoring case.");
    }
    if !spec.notes.is_empty() {
        description.push_str(&format!(" {}", spec.notes));
    }
    op.insert("description".into(), json!(description));

    let fields = all_fields(route);
    let required = |canonical: &str, sources: &Sources| {
        spec.required.iter().any(|r| r == canonical) && sources.list().len() == 1
    };
    let mut parameters: Vec<Value> = route
        .path
        .params()
        .iter()
        .map(|name| {
            let canonical = fields
                .iter()
                .find(|(_, s)| s.list().contains(&format!("path.{name}").as_str()))
                .map(|(c, _)| c.clone());
            let mut p =
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
            if let Some(c) = canonical {
                p["description"] = json!(format!("canonical field `{c}`"));
            }
            if let Some(me) = spec.subject.as_ref().and_then(|s| s.me.as_ref()) {
                if fields.iter().any(|(c, s)| {
                    c == "subject" && s.list().contains(&format!("path.{name}").as_str())
                }) {
                    p["description"] = json!(format!("the user's id, or `{me}` for the caller"));
                }
            }
            p
        })
        .collect();
    let mut body_props = Map::new();
    let mut body_required = Vec::new();
    for (canonical, sources) in &fields {
        for src in sources.list() {
            let (at, name) = place(src);
            match at {
                "query" | "header" | "cookie"
                    if !parameters
                        .iter()
                        .any(|p| p["in"] == at && p["name"] == name) =>
                {
                    parameters.push(json!({
                        "name": name, "in": at, "required": required(canonical, sources),
                        "description": format!("canonical field `{canonical}`"),
                        "schema": {"type": "string"},
                    }));
                }
                "body" => {
                    let mut schema = json!({"type": "string", "description": format!("canonical field `{canonical}`")});
                    if canonical == "grant_type" && !spec.grants.is_empty() {
                        schema["enum"] = json!(spec.grants.keys().collect::<Vec<_>>());
                    }
                    body_props.insert(name.to_owned(), schema);
                    if required(canonical, sources) && !body_required.contains(&name) {
                        body_required.push(name);
                    }
                }
                _ => {}
            }
        }
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), json!(parameters));
    }
    if spec.body != BodyFormat::None {
        let types = match (&spec.content_types, spec.body) {
            (Some(list), _) => list.clone(),
            (None, BodyFormat::Form) => vec!["application/x-www-form-urlencoded".into()],
            (None, _) => vec!["application/json".into()],
        };
        let mut schema = json!({"type": "object", "properties": body_props});
        if !body_required.is_empty() {
            schema["required"] = json!(body_required);
        }
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| (t, json!({ "schema": schema })))
            .collect();
        op.insert(
            "requestBody".into(),
            json!({"required": !body_required.is_empty(), "content": content}),
        );
    }
    let security = security(d, route, schemes);
    if !security.is_empty() {
        op.insert("security".into(), json!(security));
    }
    op.insert("responses".into(), responses(d, route));
    Value::Object(op)
}

/// The security requirements of a route (alternatives, each a set that must all be present),
/// registering the schemes it names.
fn security(d: &Dialect, route: &CompiledRoute, schemes: &mut Map<String, Value>) -> Vec<Value> {
    let spec = &route.spec;
    let auth = &d.spec.auth;
    let mut all: Vec<&str> = Vec::new();
    if let (Some(app), false) = (&auth.app_key, spec.no_app_key) {
        schemes.insert(
            "appKey".into(),
            json!({"type": "apiKey", "in": "header", "name": app.header, "description": "The application key registered with `credgate app add`."}),
        );
        all.push("appKey");
    }
    if spec.token != TokenRequirement::None {
        match auth.scheme {
            AuthScheme::Bearer => {
                schemes.insert(
                    "bearer".into(),
                    json!({"type": "http", "scheme": "bearer", "description": "An access token issued by this dialect's login or token route."}),
                );
                all.push("bearer");
            }
            AuthScheme::Cookie => {
                let name = d.cookie_name.clone().unwrap_or_default();
                schemes.insert(
                    "session".into(),
                    json!({"type": "apiKey", "in": "cookie", "name": name, "description": "The session cookie set at login."}),
                );
                all.push("session");
                let csrf = auth.csrf.as_ref().filter(|c| {
                    c.enabled
                        && c.methods
                            .iter()
                            .any(|m| m.eq_ignore_ascii_case(&spec.method))
                });
                if let Some(c) = csrf {
                    let how = match c.style {
                        CsrfStyle::Session => "The CSRF value the login set as a cookie, echoed.",
                        CsrfStyle::DoubleSubmit => {
                            "Any value, equal to the CSRF cookie's (double submit)."
                        }
                    };
                    schemes.insert(
                        "csrfHeader".into(),
                        json!({"type": "apiKey", "in": "header", "name": d.csrf_header, "description": how}),
                    );
                    all.push("csrfHeader");
                    if c.style == CsrfStyle::DoubleSubmit {
                        schemes.insert(
                            "csrfCookie".into(),
                            json!({"type": "apiKey", "in": "cookie", "name": d.csrf_cookie, "description": "The client's CSRF value, equal to the header's."}),
                        );
                        all.push("csrfCookie");
                    }
                }
            }
        }
    }
    let client_sources = spec.fields.get("client_id").map(Sources::list);
    let by_basic = client_sources
        .as_ref()
        .is_some_and(|s| s.contains(&"basic.username"));
    let mut alternatives = Vec::new();
    if spec.client_auth != ClientAuth::None && by_basic {
        schemes.insert(
            "clientBasic".into(),
            json!({"type": "http", "scheme": "basic", "description": "Client credentials: client id and secret."}),
        );
        let mut with = all.clone();
        with.push("clientBasic");
        alternatives.push(with);
        // The credentials may also travel in the body, or not be needed at all.
        let only_basic = client_sources.as_ref().is_some_and(|s| s.len() == 1);
        if spec.client_auth == ClientAuth::Optional || !only_basic {
            alternatives.push(all);
        }
    } else if !all.is_empty() {
        alternatives.push(all);
    }
    alternatives
        .into_iter()
        .map(|names| {
            let set: Map<String, Value> =
                names.into_iter().map(|n| (n.into(), json!([]))).collect();
            Value::Object(set)
        })
        .collect()
}

/// The success response and every error the route can answer, grouped by status.
fn responses(d: &Dialect, route: &CompiledRoute) -> Value {
    let mut out = Map::new();
    let ok = sample(
        d,
        &format!("routes.{}.ok", route.index),
        &route.spec.ok,
        route,
        None,
    );
    out.insert(
        route.spec.ok.status.to_string(),
        response_object("Success.", &[(None, ok)]),
    );
    let mut by_status: BTreeMap<u16, Vec<(Option<&str>, Sample)>> = BTreeMap::new();
    for kind in CoreError::KINDS {
        if !applies(d, route, kind) {
            continue;
        }
        let (name, r) = match route.spec.errors.get(*kind) {
            Some(r) => (format!("routes.{}.errors.{kind}", route.index), r),
            None => match d.spec.errors.get(*kind) {
                Some(r) => (format!("errors.{kind}"), r),
                None => continue,
            },
        };
        let s = sample(d, &name, r, route, Some(kind));
        by_status.entry(r.status).or_default().push((Some(kind), s));
    }
    for (status, samples) in by_status {
        let kinds: Vec<&str> = samples.iter().filter_map(|(k, _)| *k).collect();
        let mut obj = response_object(
            &format!("Canonical errors: {}.", kinds.join(", ")),
            &samples,
        );
        obj["x-credgate-errors"] = json!(kinds);
        match out.get_mut(&status.to_string()) {
            // An error sharing the success status (unusual): keep both descriptions.
            Some(existing) => existing["x-credgate-errors"] = json!(kinds),
            None => {
                out.insert(status.to_string(), obj);
            }
        }
    }
    Value::Object(out)
}

/// Errors a route cannot produce are left out: CSRF only where checked, app keys only where
/// asked for.
fn applies(d: &Dialect, route: &CompiledRoute, kind: &str) -> bool {
    let auth = &d.spec.auth;
    match kind {
        "csrf_rejected" => {
            route.spec.token != TokenRequirement::None
                && auth.scheme == AuthScheme::Cookie
                && auth.csrf.as_ref().is_some_and(|c| {
                    c.enabled
                        && c.methods
                            .iter()
                            .any(|m| m.eq_ignore_ascii_case(&route.spec.method))
                })
        }
        "unknown_app" => auth.app_key.is_some() && !route.spec.no_app_key,
        _ => true,
    }
}

/// One rendered response: its content type, body and headers.
struct Sample {
    content_type: Option<String>,
    body: String,
    headers: Vec<(String, String)>,
}

fn response_object(description: &str, samples: &[(Option<&str>, Sample)]) -> Value {
    let mut obj = json!({ "description": description });
    let mut content: BTreeMap<String, (Vec<Value>, Map<String, Value>)> = BTreeMap::new();
    let mut headers = Map::new();
    for (kind, s) in samples {
        for (name, value) in &s.headers {
            let h = headers
                .entry(name.clone())
                .or_insert_with(|| json!({"schema": {"type": "string"}}));
            if name.eq_ignore_ascii_case("set-cookie") {
                h["description"] = json!(value);
            } else {
                h["example"] = json!(value);
            }
        }
        let Some(ct) = &s.content_type else { continue };
        let (schema, example) = match serde_json::from_str::<Value>(&s.body) {
            Ok(v) if ct.contains("json") => (schema_of(&v), v),
            _ => (json!({"type": "string"}), json!(s.body)),
        };
        let entry = content.entry(ct.clone()).or_default();
        if !entry.0.contains(&schema) {
            entry.0.push(schema);
        }
        entry
            .1
            .insert(kind.unwrap_or("ok").to_owned(), json!({ "value": example }));
    }
    if !content.is_empty() {
        let content: Map<String, Value> = content
            .into_iter()
            .map(|(ct, (mut schemas, examples))| {
                let schema = if schemas.len() == 1 {
                    schemas.remove(0)
                } else {
                    json!({ "anyOf": schemas })
                };
                (ct, json!({"schema": schema, "examples": examples}))
            })
            .collect();
        obj["content"] = json!(content);
    }
    if !headers.is_empty() {
        obj["headers"] = Value::Object(headers);
    }
    obj
}

/// A JSON Schema describing `v`'s shape (types and keys, nothing required).
fn schema_of(v: &Value) -> Value {
    match v {
        Value::Null => json!({"type": "null"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_f64() => json!({"type": "number"}),
        Value::Number(_) => json!({"type": "integer"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => match items.first() {
            Some(first) => json!({"type": "array", "items": schema_of(first)}),
            None => json!({"type": "array"}),
        },
        Value::Object(map) => {
            let props: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), schema_of(v))).collect();
            json!({"type": "object", "properties": props})
        }
    }
}

/// Renders a response's templates with sample values (never real data).
fn sample(
    d: &Dialect,
    name: &str,
    r: &ResponseSpec,
    route: &CompiledRoute,
    kind: Option<&str>,
) -> Sample {
    let ctx = sample_context(d, route, kind);
    let ct = r.content_type.as_deref().unwrap_or(&d.spec.content_type);
    let suffix = if ct.contains("json") { "json" } else { "txt" };
    let render = |template: String| {
        d.env
            .get_template(&template)
            .and_then(|t| t.render(&ctx))
            .unwrap_or_default()
    };
    let body = render(format!("{name}.body.{suffix}"));
    let mut headers: Vec<(String, String)> = r
        .headers
        .keys()
        .map(|h| (h.clone(), render(format!("{name}.header.{h}"))))
        .collect();
    let mut cookies: Vec<String> = r
        .cookies
        .iter()
        .map(|c| render(format!("{name}.cookie.{}.name", c.name)))
        .collect();
    cookies.extend(r.clear_cookies.iter().map(|c| {
        format!(
            "{} (cleared)",
            d.env.render_str(c, &ctx).unwrap_or_default()
        )
    }));
    if !cookies.is_empty() {
        headers.push(("Set-Cookie".into(), format!("Sets {}", cookies.join(", "))));
    }
    Sample {
        content_type: (!body.is_empty()).then(|| ct.to_owned()),
        body,
        headers,
    }
}

fn sample_context(d: &Dialect, route: &CompiledRoute, kind: Option<&str>) -> Ctx {
    let path: BTreeMap<&str, String> = route
        .path
        .params()
        .iter()
        .map(|p| (p.as_str(), format!("{p}-value")))
        .collect();
    let user_id = "7d0b7a4e-1c3f-4f63-9a55-2d1f0c6b8e21";
    let field = route
        .spec
        .required
        .first()
        .and_then(|c| route.spec.fields.get(c))
        .map(crate::extract::vendor_name)
        .unwrap_or_else(|| "field".into());
    context! {
        base => d.spec.base, vars => d.vars, dialect => d.name, path => path,
        request => context! { path => path, username => "jane", subject => user_id },
        user => context! {
            id => user_id, r#ref => user_id, username => "jane", admin => false,
            externally_managed => false, profile => BTreeMap::<String, String>::new(),
            aliases => BTreeMap::<String, String>::new(),
        },
        token => context! {
            access => "ACCESS_TOKEN", refresh => "REFRESH_TOKEN", kind => "user",
            expires_in => 3600, issued_at => 1_700_000_000, expires_at => 1_700_003_600,
            issued_at_ms => 1_700_000_000_000_i64, expires_at_ms => 1_700_003_600_000_i64,
            csrf => "CSRF_VALUE", client_id => (),
        },
        reset => context! { token => "RESET_TOKEN" },
        error => kind, message => "what went wrong",
        problems => vec![context! { field => field, canonical => "field", reason => "missing", message => format!("{field} is required") }],
        missing => vec![field.clone()],
        rules => vec![context! { name => "min_length", message => "must be at least 8 characters" }],
        retry_after => 60,
    }
}

/// The canonical command's name, as dialect files spell it.
pub fn command_name(c: CommandName) -> &'static str {
    match c {
        CommandName::Login => "login",
        CommandName::Token => "token",
        CommandName::ChangePassword => "change_password",
        CommandName::Logout => "logout",
        CommandName::RenewSession => "renew_session",
        CommandName::ShowUser => "show_user",
        CommandName::RequestReset => "request_reset",
        CommandName::ValidateReset => "validate_reset",
        CommandName::ResetPassword => "reset_password",
        CommandName::RequestResetCode => "request_reset_code",
        CommandName::ExchangeResetCode => "exchange_reset_code",
        CommandName::RevokeToken => "revoke_token",
    }
}

fn command_summary(c: CommandName) -> &'static str {
    match c {
        CommandName::Login => "Log in with username and password",
        CommandName::Token => "Issue a token (OAuth-style grants)",
        CommandName::ChangePassword => "Change a password",
        CommandName::Logout => "End the session",
        CommandName::RenewSession => "Renew the session",
        CommandName::ShowUser => "Show a user",
        CommandName::RequestReset => "Request a password reset",
        CommandName::ValidateReset => "Validate a reset token",
        CommandName::ResetPassword => "Set a new password with a reset token",
        CommandName::RequestResetCode => "Request a reset code by security answer",
        CommandName::ExchangeResetCode => "Exchange a reset code for a reset token",
        CommandName::RevokeToken => "Revoke an access or refresh token (RFC 7009)",
    }
}
