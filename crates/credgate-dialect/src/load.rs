//! Loading dialect files: parse, validate every reference, compile templates and paths, and
//! refuse clashes. Every message names the file and, where it can, the line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use credgate_core::Error as CoreError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;

use crate::dialect::{CompiledRoute, Dialect, DialectSet, Mount};
use crate::router::PathTemplate;
use crate::spec::{DialectSpec, ResponseSpec, Sources};

/// The five seed dialects, compiled into the binary so it serves them with no files around.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "dialects/akana/dialect.toml",
        include_str!("../../../dialects/akana/dialect.toml"),
    ),
    (
        "dialects/crafter/dialect.toml",
        include_str!("../../../dialects/crafter/dialect.toml"),
    ),
    (
        "dialects/crayon/dialect.toml",
        include_str!("../../../dialects/crayon/dialect.toml"),
    ),
    (
        "dialects/etapp/dialect.toml",
        include_str!("../../../dialects/etapp/dialect.toml"),
    ),
    (
        "dialects/oauth-style/dialect.toml",
        include_str!("../../../dialects/oauth-style/dialect.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct LoadError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

/// One dialect file's text and where it came from.
#[derive(Debug, Clone)]
pub struct DialectSource {
    pub origin: String,
    pub text: String,
}

impl DialectSource {
    pub fn embedded() -> Vec<Self> {
        EMBEDDED
            .iter()
            .map(|(origin, text)| Self {
                origin: format!("{origin} (embedded)"),
                text: (*text).into(),
            })
            .collect()
    }

    /// Every `*/dialect.toml` directly below `dir`, in name order.
    pub fn from_dir(dir: &Path) -> Result<Vec<Self>, LoadError> {
        let fail = |e: std::io::Error| LoadError {
            origin: dir.display().to_string(),
            line: None,
            message: e.to_string(),
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(fail)? {
            let file = entry.map_err(fail)?.path().join("dialect.toml");
            if file.is_file() {
                let text = std::fs::read_to_string(&file).map_err(fail)?;
                found.push(Self {
                    origin: file.display().to_string(),
                    text,
                });
            }
        }
        found.sort_by(|a, b| a.origin.cmp(&b.origin));
        Ok(found)
    }
}

/// What the operator's configuration says about dialects.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Dialects not to serve.
    pub disabled: Vec<String>,
    /// Per-dialect overrides of `vars` (e.g. Akana's `fed_member_id`).
    pub vars: BTreeMap<String, BTreeMap<String, String>>,
    /// Per-dialect switch for CSRF checks (on by default).
    pub csrf: BTreeMap<String, bool>,
    /// Per-dialect listener and path prefix (default: the main listener, no prefix).
    pub mounts: BTreeMap<String, Mount>,
}

impl DialectSet {
    /// Loads `sources` in order; a later dialect of the same name replaces an earlier one, so a
    /// folder can override a shipped dialect.
    pub fn load(sources: &[DialectSource], options: &LoadOptions) -> Result<Self, LoadError> {
        let mut by_name: BTreeMap<String, Dialect> = BTreeMap::new();
        for source in sources {
            let dialect = compile(source, options)?;
            if !options.disabled.contains(&dialect.name) {
                by_name.insert(dialect.name.clone(), dialect);
            } else {
                by_name.remove(&dialect.name);
            }
        }
        let dialects: Vec<Arc<Dialect>> = by_name.into_values().map(Arc::new).collect();
        // Paths only clash on one listener: a dialect on its own listener or below its own
        // prefix may reuse another vendor's paths.
        type Key = (Option<String>, String, String);
        let mut seen: BTreeMap<Key, (String, String)> = BTreeMap::new();
        for d in &dialects {
            for r in &d.routes {
                let key = (
                    d.mount.listener.clone(),
                    r.spec.method.clone(),
                    r.path.shape.clone(),
                );
                if let Some((origin, route)) = seen.get(&key) {
                    let listener = key.0.as_deref().unwrap_or("the main listener");
                    return Err(LoadError {
                        origin: d.origin.clone(),
                        line: line_of(&d.source, &format!("name = \"{}\"", r.spec.name)),
                        message: format!(
                            "route `{}` ({} {}) clashes with route `{route}` of {origin} on {listener}; \
                             mount one of them on another listener or below a prefix ([dialects.mount.NAME])",
                            r.spec.name, r.spec.method, key.2
                        ),
                    });
                }
                seen.insert(key, (d.origin.clone(), r.spec.name.clone()));
            }
        }
        Ok(Self::new(dialects))
    }
}

fn compile(source: &DialectSource, options: &LoadOptions) -> Result<Dialect, LoadError> {
    let origin = source.origin.clone();
    let spec: DialectSpec = toml::from_str(&source.text).map_err(|e| LoadError {
        origin: origin.clone(),
        line: e
            .span()
            .map(|s| source.text[..s.start].matches('\n').count() + 1),
        message: e.message().to_owned(),
    })?;
    let err = |needle: &str, message: String| LoadError {
        origin: origin.clone(),
        line: line_of(&source.text, needle),
        message,
    };
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(err(
            "name",
            format!(
                "dialect name `{}` must be letters, digits, - or _",
                spec.name
            ),
        ));
    }
    for kind in CoreError::KINDS {
        if !spec.errors.contains_key(*kind) {
            return Err(err(
                "[errors]",
                format!("the error table does not map canonical error `{kind}`"),
            ));
        }
    }
    let check_kinds = |table: &BTreeMap<String, ResponseSpec>, what: &str| {
        table
            .keys()
            .find(|k| !CoreError::KINDS.contains(&k.as_str()))
            .map(|k| err(k, format!("{what}: `{k}` is not a canonical error")))
    };
    if let Some(e) = check_kinds(&spec.errors, "[errors]") {
        return Err(e);
    }

    let mount = options.mounts.get(&spec.name).cloned().unwrap_or_default();
    if !mount.prefix.is_empty()
        && (!mount.prefix.starts_with('/') || mount.prefix.contains(['{', '}', '?', '#']))
    {
        return Err(err(
            "name",
            format!(
                "mount prefix `{}` must start with / and be a literal path",
                mount.prefix
            ),
        ));
    }
    let mut vars = spec.vars.clone();
    if let Some(over) = options.vars.get(&spec.name) {
        vars.extend(over.clone());
    }
    let mut spec = spec;
    if let (Some(csrf), Some(on)) = (spec.auth.csrf.as_mut(), options.csrf.get(&spec.name)) {
        csrf.enabled = *on;
    }

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
    let mut add = |name: String, text: &str, needle: &str| {
        env.add_template_owned(name.clone(), text.to_owned())
            .map_err(|e| err(needle, format!("template {name}: {e}")))
    };

    let is_json = |ct: &str| ct.contains("json");
    let mut add_response =
        |prefix: &str, r: &ResponseSpec, needle: &str| -> Result<(), LoadError> {
            let ct = r.content_type.as_deref().unwrap_or(&spec.content_type);
            let suffix = if is_json(ct) { "json" } else { "txt" };
            add(format!("{prefix}.body.{suffix}"), &r.body, needle)?;
            for (h, v) in &r.headers {
                add(format!("{prefix}.header.{h}"), v, needle)?;
            }
            for c in &r.cookies {
                add(format!("{prefix}.cookie.{}.name", c.name), &c.name, needle)?;
                add(
                    format!("{prefix}.cookie.{}.value", c.name),
                    &c.value,
                    needle,
                )?;
                if let Some(age) = &c.max_age {
                    add(format!("{prefix}.cookie.{}.max_age", c.name), age, needle)?;
                }
            }
            Ok(())
        };
    for (kind, r) in &spec.errors {
        add_response(&format!("errors.{kind}"), r, &format!("{kind} ="))?;
    }
    let mut routes = Vec::new();
    for (i, route) in spec.routes.iter().enumerate() {
        let needle = format!("name = \"{}\"", route.name);
        let rerr = |m: String| err(&needle, format!("route `{}`: {m}", route.name));
        if let Some(e) = check_kinds(&route.errors, &format!("route `{}` errors", route.name)) {
            return Err(e);
        }
        add_response(&format!("routes.{i}.ok"), &route.ok, &needle)?;
        for (kind, r) in &route.errors {
            add_response(&format!("routes.{i}.errors.{kind}"), r, &needle)?;
        }
        let method = route.method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(rerr(format!("unsupported method `{}`", route.method)));
        }
        let full = format!(
            "{}{}{}",
            mount.prefix.trim_end_matches('/'),
            spec.base.trim_end_matches('/'),
            route.path
        );
        let path = PathTemplate::compile(&full, route.trailing_slash).map_err(rerr)?;
        let mut all_sources: Vec<&str> = route.fields.values().flat_map(Sources::list).collect();
        if let Some(s) = &route.subject {
            all_sources.extend(s.id.iter().chain(s.username.iter()).flat_map(Sources::list));
        }
        all_sources.extend(route.subject_check.iter().flat_map(Sources::list));
        all_sources.extend(route.constants.keys().map(String::as_str));
        for src in all_sources {
            check_source(src).map_err(rerr)?;
        }
        for name in &route.required {
            if name != "subject" && !route.fields.contains_key(name) {
                return Err(rerr(format!(
                    "required field `{name}` has no source in `fields`"
                )));
            }
        }
        for g in route.grants.values() {
            if !["password", "client_credentials", "refresh_token"].contains(&g.as_str()) {
                return Err(rerr(format!("unknown grant `{g}`")));
            }
        }
        let mut spec_route = route.clone();
        spec_route.method = method;
        routes.push(CompiledRoute {
            index: i,
            spec: spec_route,
            path,
        });
    }
    let cookie_name = match &spec.auth.cookie {
        Some(t) => Some(render_plain(&env, t, &vars).map_err(|m| err("cookie", m))?),
        None => None,
    };
    let token_pattern =
        compile_regex(spec.auth.token_pattern.as_deref()).map_err(|m| err("token_pattern", m))?;
    let (csrf_cookie, csrf_header, csrf_pattern) = match &spec.auth.csrf {
        Some(c) => (
            Some(render_plain(&env, &c.cookie, &vars).map_err(|m| err("csrf", m))?),
            Some(render_plain(&env, &c.header, &vars).map_err(|m| err("csrf", m))?),
            compile_regex(c.pattern.as_deref()).map_err(|m| err("csrf", m))?,
        ),
        None => (None, None, None),
    };
    Ok(Dialect {
        name: spec.name.clone(),
        origin,
        source: source.text.clone(),
        vars,
        env,
        routes,
        cookie_name,
        token_pattern,
        csrf_cookie,
        csrf_header,
        csrf_pattern,
        spec,
        mount,
    })
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

fn check_source(src: &str) -> Result<(), String> {
    match src.split_once('.') {
        Some(("body" | "path" | "query" | "header" | "cookie", name)) if !name.is_empty() => Ok(()),
        Some(("basic", "username" | "password")) => Ok(()),
        _ => Err(format!("`{src}` is not a field source (body.X, path.X, query.X, header.X, cookie.X, basic.username, basic.password)")),
    }
}

fn compile_regex(pattern: Option<&str>) -> Result<Option<Regex>, String> {
    pattern
        .map(|p| Regex::new(p).map_err(|e| format!("bad pattern: {e}")))
        .transpose()
}

fn render_plain(
    env: &Environment<'static>,
    template: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    env.render_str(template, minijinja::context! { vars => vars })
        .map_err(|e| e.to_string())
}

/// The first line (1-based) containing `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}
