//! An OpenAPI 3.1 document generated from a compiled dialect: its routes, where each field
//! travels, its auth scheme, its success answer and its whole error table. Response schemas
//! come from rendering the dialect's own templates with sample values, so the document shows
//! the vendor's bodies exactly as the gateway sends them.

use std::collections::BTreeMap;

use credgate_core::Error as CoreError;
use minijinja::{context, Value as Ctx};
use serde_json::{json, Map, Value};

use crate::dialect::Dialect;
use crate::route::{vendor_name, CompiledRoute, Response, Source};
use crate::spec::{AuthScheme, BodyFormat, ClientAuth, CommandKind, CsrfStyle, TokenRequirement};

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
            .insert(route.method.as_str().to_ascii_lowercase(), op);
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

/// Canonical field -> its sources, subject and subject check included.
fn all_fields(route: &CompiledRoute) -> Vec<(String, &[Source])> {
    let mut fields: Vec<(String, &[Source])> = (route.fields.iter())
        .map(|(k, v)| (k.clone(), v.as_slice()))
        .collect();
    if let Some(s) = &route.subject {
        fields.push(("subject".into(), &s.sources));
    }
    if let Some(check) = &route.subject_check {
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
    op.insert("description".into(), json!(description(d, route)));
    let (parameters, body) = parameters_and_body(route);
    if !parameters.is_empty() {
        op.insert("parameters".into(), json!(parameters));
    }
    if let Some(body) = body {
        op.insert("requestBody".into(), body);
    }
    let security = security(d, route, schemes);
    if !security.is_empty() {
        op.insert("security".into(), json!(security));
    }
    op.insert("responses".into(), responses(d, route));
    Value::Object(op)
}

fn description(d: &Dialect, route: &CompiledRoute) -> String {
    let spec = &route.spec;
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
    description
}

/// The route's parameters (path, query, header, cookie) and its request body, if it has one.
fn parameters_and_body(route: &CompiledRoute) -> (Vec<Value>, Option<Value>) {
    let fields = all_fields(route);
    let required =
        |canonical: &str, sources: &[Source]| route.requires(canonical) && sources.len() == 1;
    let mut parameters: Vec<Value> = (route.path.params().iter())
        .map(|name| path_parameter(route, &fields, name))
        .collect();
    let mut body_props = Map::new();
    let mut body_required = Vec::new();
    for (canonical, sources) in &fields {
        for src in sources.iter() {
            let (at, name) = (src.place(), src.name());
            match src {
                Source::Query(_) | Source::Header(_) | Source::Cookie(_)
                    if !(parameters.iter()).any(|p| p["in"] == at && p["name"] == name) =>
                {
                    parameters.push(json!({
                        "name": name, "in": at, "required": required(canonical, sources),
                        "description": format!("canonical field `{canonical}`"),
                        "schema": {"type": "string"},
                    }));
                }
                Source::Body(_) => {
                    let mut schema = json!({"type": "string", "description": format!("canonical field `{canonical}`")});
                    if canonical == "grant_type" && !route.grants.is_empty() {
                        schema["enum"] = json!(route.grants.keys().collect::<Vec<_>>());
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
    if route.spec.body == BodyFormat::None {
        return (parameters, None);
    }
    let mut schema = json!({"type": "object", "properties": body_props});
    if !body_required.is_empty() {
        schema["required"] = json!(body_required);
    }
    let content: Map<String, Value> = (route.accepts.iter())
        .map(|t| (t.clone(), json!({ "schema": schema })))
        .collect();
    let body = json!({"required": !body_required.is_empty(), "content": content});
    (parameters, Some(body))
}

fn path_parameter(route: &CompiledRoute, fields: &[(String, &[Source])], name: &String) -> Value {
    let at = Source::Path(name.clone());
    let canonical = (fields.iter())
        .find(|(_, s)| s.contains(&at))
        .map(|(c, _)| c.clone());
    let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    if let Some(c) = canonical {
        p["description"] = json!(format!("canonical field `{c}`"));
    }
    if let Some(me) = route.subject.as_ref().and_then(|s| s.me.as_ref()) {
        if (fields.iter()).any(|(c, s)| c == "subject" && s.contains(&at)) {
            p["description"] = json!(format!("the user's id, or `{me}` for the caller"));
        }
    }
    p
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
                let csrf = auth.csrf.as_ref().filter(|_| route.csrf);
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
    let client_sources = route.fields.get("client_id");
    let by_basic = client_sources.is_some_and(|s| s.contains(&Source::BasicUsername));
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
        let only_basic = client_sources.is_some_and(|s| s.len() == 1);
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
    let ok = sample(d, &route.ok, route, None);
    out.insert(
        route.spec.ok.status.to_string(),
        response_object("Success.", &[(None, ok)]),
    );
    let mut by_status: BTreeMap<u16, Vec<(Option<&str>, Sample)>> = BTreeMap::new();
    for kind in CoreError::KINDS {
        if !applies(d, route, kind) {
            continue;
        }
        let Some(r) = d.error_response(Some(route), kind) else {
            continue;
        };
        let s = sample(d, r, route, Some(kind));
        by_status
            .entry(r.spec.status)
            .or_default()
            .push((Some(kind), s));
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
                && route.csrf
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
fn sample(d: &Dialect, r: &Response, route: &CompiledRoute, kind: Option<&str>) -> Sample {
    let ctx = sample_context(d, route, kind);
    let ct = r.content_type.as_str();
    let render = |template: &str| {
        (d.env.get_template(template))
            .and_then(|t| t.render(&ctx))
            .unwrap_or_default()
    };
    let body = render(&r.body);
    let mut headers: Vec<(String, String)> = (r.headers.iter())
        .map(|(h, template)| (h.clone(), render(template)))
        .collect();
    let mut cookies: Vec<String> = r.cookies.iter().map(|c| render(&c.name)).collect();
    cookies.extend(r.clear.iter().map(|c| format!("{} (cleared)", render(c))));
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
    let field = (route.spec.required.first())
        .and_then(|c| route.fields.get(c))
        .map(|s| vendor_name(s))
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
pub fn command_name(c: CommandKind) -> &'static str {
    match c {
        CommandKind::Login => "login",
        CommandKind::Token => "token",
        CommandKind::ChangePassword => "change_password",
        CommandKind::Logout => "logout",
        CommandKind::RenewSession => "renew_session",
        CommandKind::ShowUser => "show_user",
        CommandKind::RequestReset => "request_reset",
        CommandKind::ValidateReset => "validate_reset",
        CommandKind::ResetPassword => "reset_password",
        CommandKind::RequestResetCode => "request_reset_code",
        CommandKind::ExchangeResetCode => "exchange_reset_code",
        CommandKind::RevokeToken => "revoke_token",
    }
}

fn command_summary(c: CommandKind) -> &'static str {
    match c {
        CommandKind::Login => "Log in with username and password",
        CommandKind::Token => "Issue a token (OAuth-style grants)",
        CommandKind::ChangePassword => "Change a password",
        CommandKind::Logout => "End the session",
        CommandKind::RenewSession => "Renew the session",
        CommandKind::ShowUser => "Show a user",
        CommandKind::RequestReset => "Request a password reset",
        CommandKind::ValidateReset => "Validate a reset token",
        CommandKind::ResetPassword => "Set a new password with a reset token",
        CommandKind::RequestResetCode => "Request a reset code by security answer",
        CommandKind::ExchangeResetCode => "Exchange a reset code for a reset token",
        CommandKind::RevokeToken => "Revoke an access or refresh token (RFC 7009)",
    }
}
