//! One dialect file compiled: its spec checked, its templates, routes and auth settings built.
//! Every problem is collected (not only the first), each at the line of the key it concerns.

use std::collections::BTreeMap;

use credgate_core::Error as CoreError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;

use crate::dialect::{Dialect, Mount, Unmatched};
use crate::load::{DialectSource, LoadError, LoadOptions};
use crate::parse::{parse_spec, Found};
use crate::route::{accepted_types, compile_sources, CompiledRoute, GrantKind, Response};
use crate::route::{Source, SourceList, SubjectSources};
use crate::router::PathTemplate;
use crate::spans::{key_path, Spans, Step};
use crate::spec::{DialectSpec, PathMatching, ResponseSpec, RouteSpec};
use crate::token_pattern::TokenPattern;

/// The compiled dialect (whatever of it could be compiled, when the file was readable) and
/// every problem found in it, in line order.
pub(crate) fn compile(
    source: &DialectSource,
    options: &LoadOptions,
) -> (Option<Dialect>, Vec<LoadError>) {
    let spans = Spans::new(&source.text);
    let mut problems = Problems {
        origin: &source.origin,
        spans: &spans,
        list: Vec::new(),
    };
    let mut found = Vec::new();
    let spec = parse_spec(&source.text, &spans, &mut found);
    for f in found {
        match f {
            Found::At(path, message) => problems.at(&path, message),
            Found::Offset(offset, message) => problems.at_offset(offset, message),
        }
    }
    let Some(mut spec) = spec else {
        return (None, problems.finish());
    };
    check_header(&spec, &mut problems);
    let mount = options.mounts.get(&spec.name).cloned().unwrap_or_default();
    check_mount(&mount, &mut problems);
    let mut vars = spec.vars.clone();
    if let Some(over) = options.vars.get(&spec.name) {
        vars.extend(over.clone());
    }
    if let (Some(csrf), Some(on)) = (spec.auth.csrf.as_mut(), options.csrf.get(&spec.name)) {
        csrf.enabled = *on;
    }
    if let Some(ttl) = options.token_ttl_secs.get(&spec.name) {
        spec.tokens.ttl_secs = Some(*ttl);
    }
    check_tokens(&spec, &mut problems);

    let mut env = template_env();
    let mut errors = BTreeMap::new();
    for (kind, r) in &spec.errors {
        let response = Response::new(&format!("errors.{kind}"), r, &spec.content_type);
        add_templates(
            &mut env,
            &mut problems,
            &response,
            &key_path!["errors", kind.as_str()],
        );
        errors.insert(kind.clone(), response);
    }
    let unmatched = compile_unmatched(&mut env, &spec, &mut problems);
    let routes: Vec<CompiledRoute> = (spec.routes.iter().enumerate())
        .filter_map(|(i, route)| compile_route(&mut env, &spec, &mount, i, route, &mut problems))
        .collect();
    let auth = compile_auth(&env, &spec, &vars, &mut problems);
    let dialect = Dialect {
        name: spec.name.clone(),
        origin: source.origin.clone(),
        source: source.text.clone(),
        vars,
        env,
        routes,
        cookie_name: auth.cookie_name,
        token_pattern: auth.token_pattern,
        csrf_cookie: auth.csrf_cookie,
        csrf_header: auth.csrf_header,
        csrf_pattern: auth.csrf_pattern,
        errors,
        unmatched,
        spec,
        mount,
    };
    (Some(dialect), problems.finish())
}

/// The dialect's name and its error table: every canonical error mapped, nothing else.
fn check_header(spec: &DialectSpec, problems: &mut Problems) {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if spec.name.is_empty() || !spec.name.chars().all(valid) {
        problems.at(
            &key_path!["name"],
            format!(
                "dialect name `{}` must be letters, digits, - or _",
                spec.name
            ),
        );
    }
    for kind in CoreError::KINDS {
        if !spec.errors.contains_key(*kind) {
            problems.at(
                &key_path!["errors"],
                format!("the error table does not map canonical error `{kind}`"),
            );
        }
    }
    check_kinds(&spec.errors, "[errors]", &key_path!["errors"], problems);
}

/// Declared lifetimes are positive: a token born expired would lock every client out.
fn check_tokens(spec: &DialectSpec, problems: &mut Problems) {
    for (key, value) in [
        ("ttl_secs", spec.tokens.ttl_secs),
        ("client_ttl_secs", spec.tokens.client_ttl_secs),
    ] {
        if value == Some(0) {
            problems.at(&key_path!["tokens", key], format!("{key} must be positive"));
        }
    }
}

/// Every key of an error table is a canonical error kind.
fn check_kinds(
    table: &BTreeMap<String, ResponseSpec>,
    what: &str,
    at: &[Step],
    problems: &mut Problems,
) {
    for k in table.keys() {
        if !CoreError::KINDS.contains(&k.as_str()) {
            let mut key = at.to_vec();
            key.push(Step::from(k.as_str()));
            problems.at(&key, format!("{what}: `{k}` is not a canonical error"));
        }
    }
}

fn check_mount(mount: &Mount, problems: &mut Problems) {
    let prefix = &mount.prefix;
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(['{', '}', '?', '#'])) {
        problems.at(
            &key_path!["name"],
            format!("mount prefix `{prefix}` must start with / and be a literal path"),
        );
    }
}

fn template_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    // Stricter than minijinja's own, which keeps `/`: `../` in a username must not reach a URL.
    env.add_filter("urlencode", urlencode_strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".json") {
            AutoEscape::Json
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Adds a response's templates to the environment, reporting syntax errors at `at`.
fn add_templates(
    env: &mut Environment<'static>,
    problems: &mut Problems,
    response: &Response,
    at: &[Step],
) {
    for (name, text) in response.templates() {
        if let Err(e) = env.add_template_owned(name.to_owned(), text.to_owned()) {
            problems.at(at, format!("template {name}: {e}"));
        }
    }
}

/// Route `i` compiled: its templates added, its method, path and field sources checked.
/// `None` when its method or path cannot be compiled (the problem is reported).
fn compile_route(
    env: &mut Environment<'static>,
    spec: &DialectSpec,
    mount: &Mount,
    i: usize,
    route: &RouteSpec,
    problems: &mut Problems,
) -> Option<CompiledRoute> {
    // Route problems are reported at the route's name, where an operator looks for a route.
    let at = key_path!["routes", i, "name"];
    let what = format!("route `{}` errors", route.name);
    check_kinds(
        &route.errors,
        &what,
        &key_path!["routes", i, "errors"],
        problems,
    );
    let response = |prefix: String, r: &ResponseSpec| Response::new(&prefix, r, &spec.content_type);
    let ok = response(format!("routes.{i}.ok"), &route.ok);
    let errors: BTreeMap<String, Response> = (route.errors.iter())
        .map(|(kind, r)| {
            (
                kind.clone(),
                response(format!("routes.{i}.errors.{kind}"), r),
            )
        })
        .collect();
    let challenge =
        (route.challenge.as_ref()).map(|r| response(format!("routes.{i}.challenge"), r));
    for r in std::iter::once(&ok)
        .chain(challenge.as_ref())
        .chain(errors.values())
    {
        add_templates(env, problems, r, &at);
    }
    let mut failures = Vec::new();
    let mut fail = |m: String| failures.push(m);
    let method = parse_method(&route.method).map_err(&mut fail).ok();
    let sources = compile_route_sources(route, &mut fail);
    let grants = compile_grants(route, &mut fail);
    let full = format!(
        "{}{}{}",
        mount.prefix.trim_end_matches('/'),
        spec.base.trim_end_matches('/'),
        route.path
    );
    let path = PathTemplate::compile_with(
        &full,
        route.trailing_slash || spec.trailing_slash,
        spec.paths == PathMatching::CaseInsensitive,
    )
    .map_err(&mut fail);
    for m in failures {
        problems.at(&at, format!("route `{}`: {m}", route.name));
    }
    let method = method?;
    let csrf = (spec.auth.csrf.as_ref()).is_some_and(|c| {
        c.enabled
            && !route.no_csrf
            && c.methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method.as_str()))
    });
    let mut route_spec = route.clone();
    route_spec.method = method.to_string();
    Some(CompiledRoute {
        index: i,
        method,
        path: path.ok()?,
        fields: sources.fields,
        subject: sources.subject,
        subject_check: sources.subject_check,
        grants,
        constants: sources.constants,
        accepts: accepted_types(route),
        csrf,
        ok,
        challenge,
        errors,
        spec: route_spec,
    })
}

/// The answers to unmatched paths and methods, their templates added.
fn compile_unmatched(
    env: &mut Environment<'static>,
    spec: &DialectSpec,
    problems: &mut Problems,
) -> Option<Unmatched> {
    let u = spec.unmatched.as_ref()?;
    let path = Response::new("unmatched.path", &u.path, &spec.content_type);
    let method = Response::new("unmatched.method", &u.method, &spec.content_type);
    add_templates(env, problems, &path, &key_path!["unmatched", "path"]);
    add_templates(env, problems, &method, &key_path!["unmatched", "method"]);
    Some(Unmatched { path, method })
}

fn parse_method(text: &str) -> Result<http::Method, String> {
    match text.to_ascii_uppercase().as_str() {
        "GET" => Ok(http::Method::GET),
        "POST" => Ok(http::Method::POST),
        "PUT" => Ok(http::Method::PUT),
        "PATCH" => Ok(http::Method::PATCH),
        "DELETE" => Ok(http::Method::DELETE),
        _ => Err(format!("unsupported method `{text}`")),
    }
}

/// A route's field sources, parsed.
struct RouteSources {
    fields: BTreeMap<String, SourceList>,
    subject: Option<SubjectSources>,
    subject_check: Option<SourceList>,
    constants: Vec<(Source, String)>,
}

fn compile_route_sources(route: &RouteSpec, fail: &mut dyn FnMut(String)) -> RouteSources {
    let fields = (route.fields.iter())
        .map(|(name, sources)| (name.clone(), compile_sources(sources, fail)))
        .collect();
    let subject = route.subject.as_ref().and_then(|s| {
        let sources = s.id.as_ref().or(s.username.as_ref())?;
        Some(SubjectSources {
            sources: compile_sources(sources, fail),
            by_id: s.id.is_some(),
            me: s.me.clone(),
        })
    });
    let subject_check = (route.subject_check.as_ref()).map(|s| compile_sources(s, fail));
    let constants = (route.constants.iter())
        .filter_map(|(src, v)| Some((Source::parse(src).map_err(&mut *fail).ok()?, v.clone())))
        .collect();
    for name in &route.required {
        if name != "subject" && !route.fields.contains_key(name) {
            fail(format!("required field `{name}` has no source in `fields`"));
        }
    }
    RouteSources {
        fields,
        subject,
        subject_check,
        constants,
    }
}

fn compile_grants(route: &RouteSpec, fail: &mut dyn FnMut(String)) -> BTreeMap<String, GrantKind> {
    let mut grants = BTreeMap::new();
    for (vendor, g) in &route.grants {
        match GrantKind::parse(g) {
            Some(kind) => {
                grants.insert(vendor.clone(), kind);
            }
            None => fail(format!("unknown grant `{g}`")),
        }
    }
    grants
}

/// The auth settings whose templates and patterns are fixed once the vars are known.
struct Auth {
    cookie_name: Option<String>,
    token_pattern: Option<TokenPattern>,
    csrf_cookie: Option<String>,
    csrf_header: Option<String>,
    csrf_pattern: Option<TokenPattern>,
}

fn compile_auth(
    env: &Environment<'static>,
    spec: &DialectSpec,
    vars: &BTreeMap<String, String>,
    problems: &mut Problems,
) -> Auth {
    let plain = |template: &str, at: &[Step], problems: &mut Problems| {
        let rendered = env.render_str(template, minijinja::context! { vars => vars });
        rendered.map_err(|e| problems.at(at, e.to_string())).ok()
    };
    let regex = |pattern: Option<&str>, at: &[Step], problems: &mut Problems| {
        let compiled = pattern.map(|p| Regex::new(p).map_err(|e| format!("bad pattern: {e}")));
        (compiled?.map_err(|m| problems.at(at, m)).ok()).map(TokenPattern::new)
    };
    let auth = &spec.auth;
    let cookie_name =
        (auth.cookie.as_deref()).and_then(|t| plain(t, &key_path!["auth", "cookie"], problems));
    let token_pattern = regex(
        auth.token_pattern.as_deref(),
        &key_path!["auth", "token_pattern"],
        problems,
    );
    let (csrf_cookie, csrf_header, csrf_pattern) = match &auth.csrf {
        Some(c) => (
            plain(&c.cookie, &key_path!["auth", "csrf", "cookie"], problems),
            plain(&c.header, &key_path!["auth", "csrf", "header"], problems),
            regex(
                c.pattern.as_deref(),
                &key_path!["auth", "csrf", "pattern"],
                problems,
            ),
        ),
        None => (None, None, None),
    };
    Auth {
        cookie_name,
        token_pattern,
        csrf_cookie,
        csrf_header,
        csrf_pattern,
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn urlencode_strict(value: minijinja::Value) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const RESERVED: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let text = value
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| value.to_string());
    utf8_percent_encode(&text, RESERVED).to_string()
}

/// What went wrong in one file, each at the line of the key it concerns.
struct Problems<'a> {
    origin: &'a str,
    spans: &'a Spans<'a>,
    list: Vec<LoadError>,
}

impl Problems<'_> {
    fn at(&mut self, path: &[Step], message: String) {
        let line = self.spans.line(path);
        self.push(line, message);
    }

    fn at_offset(&mut self, offset: Option<usize>, message: String) {
        let line = offset.map(|o| self.spans.line_at(o));
        self.push(line, message);
    }

    fn push(&mut self, line: Option<usize>, message: String) {
        self.list.push(LoadError {
            origin: self.origin.to_owned(),
            line,
            message,
        });
    }

    fn finish(mut self) -> Vec<LoadError> {
        self.list.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        self.list
    }
}
