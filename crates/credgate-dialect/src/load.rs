//! Loading dialect files: parse, validate every reference, compile templates and paths, and
//! refuse clashes. Every message names the file and, where it can, the line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use credgate_core::Error as CoreError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use regex::Regex;
use serde::Deserialize;

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
    /// folder can override a shipped dialect. Fails with the first problem found.
    pub fn load(sources: &[DialectSource], options: &LoadOptions) -> Result<Self, LoadError> {
        Self::load_all(sources, options).map_err(|mut all| all.swap_remove(0))
    }

    /// Like [`DialectSet::load`], but reports every problem it can find (never an empty list):
    /// each file is checked through, and every route clash is named.
    pub fn load_all(
        sources: &[DialectSource],
        options: &LoadOptions,
    ) -> Result<Self, Vec<LoadError>> {
        let mut problems = Vec::new();
        let mut by_name: BTreeMap<String, Dialect> = BTreeMap::new();
        for source in sources {
            // A dialect with problems still takes part in the clash check, so that one run
            // shows those too.
            let (dialect, found) = compile_all(source, options);
            problems.extend(found);
            match dialect {
                Some(dialect) if options.disabled.contains(&dialect.name) => {
                    by_name.remove(&dialect.name);
                }
                Some(dialect) => {
                    by_name.insert(dialect.name.clone(), dialect);
                }
                None => {}
            }
        }
        let dialects: Vec<Arc<Dialect>> = by_name.into_values().map(Arc::new).collect();
        problems.extend(route_clashes(&dialects));
        if problems.is_empty() {
            Ok(Self::new(dialects))
        } else {
            Err(problems)
        }
    }
}

/// Every pair of routes, across `dialects`, that the router could not tell apart.
pub fn route_clashes(dialects: &[Arc<Dialect>]) -> Vec<LoadError> {
    let mut problems = Vec::new();
    // Paths only clash on one listener: a dialect on its own listener or below its own
    // prefix may reuse another vendor's paths.
    type Key = (Option<String>, String, String);
    let mut seen: BTreeMap<Key, (&Dialect, &CompiledRoute)> = BTreeMap::new();
    for d in dialects {
        for r in &d.routes {
            let key = (
                d.mount.listener.clone(),
                r.spec.method.clone(),
                r.path.shape.clone(),
            );
            let Some(&(first_d, first_r)) = seen.get(&key) else {
                seen.insert(key, (d, r));
                continue;
            };
            // Named in the operator's file rather than in a shipped one, where it can be fixed.
            let shipped = |d: &Dialect| d.origin.ends_with("(embedded)");
            let ((here_d, here_r), (there_d, there_r)) = if shipped(d) && !shipped(first_d) {
                ((first_d, first_r), (&**d, r))
            } else {
                ((&**d, r), (first_d, first_r))
            };
            let listener = key.0.as_deref().unwrap_or("the main listener");
            problems.push(LoadError {
                origin: here_d.origin.clone(),
                line: line_of(&here_d.source, &format!("name = \"{}\"", here_r.spec.name)),
                message: format!(
                    "route `{}` ({} {}) clashes with route `{}` of {} on {listener}; \
                     mount one of them on another listener or below a prefix ([dialects.mount.NAME])",
                    here_r.spec.name, here_r.spec.method, key.2, there_r.spec.name, there_d.origin
                ),
            });
        }
    }
    problems
}

/// What went wrong in one file, each with its line where one can be found.
struct Problems<'a> {
    origin: &'a str,
    text: &'a str,
    list: Vec<LoadError>,
}

impl Problems<'_> {
    fn at(&mut self, needle: &str, message: String) {
        self.list.push(LoadError {
            origin: self.origin.to_owned(),
            line: line_of(self.text, needle),
            message,
        });
    }

    fn at_offset(&mut self, offset: Option<usize>, message: String) {
        self.list.push(LoadError {
            origin: self.origin.to_owned(),
            line: offset.map(|o| self.text[..o.min(self.text.len())].matches('\n').count() + 1),
            message,
        });
    }
}

/// The typed spec of a file; unknown keys are reported all at once, and the rest of the file
/// is still read so that its other problems show too.
fn parse_spec(source: &DialectSource, problems: &mut Problems) -> Option<DialectSpec> {
    let error = match toml::from_str::<DialectSpec>(&source.text) {
        Ok(spec) => return Some(spec),
        Err(e) => e,
    };
    let unknown = crate::keys::unknown_keys(&source.text);
    if unknown.is_empty() {
        problems.at_offset(error.span().map(|s| s.start), error.message().to_owned());
        return None;
    }
    for u in &unknown {
        problems.at_offset(Some(u.offset), u.message());
    }
    let table = crate::keys::strip(&source.text, &unknown)?;
    match DialectSpec::deserialize(toml::Value::Table(table)) {
        Ok(spec) => Some(spec),
        Err(e) => {
            problems.at_offset(None, e.message().to_owned());
            None
        }
    }
}

/// The compiled dialect (whatever of it could be compiled, when the file was readable) and
/// every problem found in it.
fn compile_all(source: &DialectSource, options: &LoadOptions) -> (Option<Dialect>, Vec<LoadError>) {
    let origin = source.origin.clone();
    let mut problems = Problems {
        origin: &source.origin,
        text: &source.text,
        list: Vec::new(),
    };
    let Some(spec) = parse_spec(source, &mut problems) else {
        problems.list.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        return (None, problems.list);
    };
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        problems.at(
            "name",
            format!(
                "dialect name `{}` must be letters, digits, - or _",
                spec.name
            ),
        );
    }
    for kind in CoreError::KINDS {
        if !spec.errors.contains_key(*kind) {
            problems.at(
                "[errors]",
                format!("the error table does not map canonical error `{kind}`"),
            );
        }
    }
    let check_kinds =
        |table: &BTreeMap<String, ResponseSpec>, what: &str, problems: &mut Problems| {
            for k in table.keys() {
                if !CoreError::KINDS.contains(&k.as_str()) {
                    problems.at(k, format!("{what}: `{k}` is not a canonical error"));
                }
            }
        };
    check_kinds(&spec.errors, "[errors]", &mut problems);

    let mount = options.mounts.get(&spec.name).cloned().unwrap_or_default();
    if !mount.prefix.is_empty()
        && (!mount.prefix.starts_with('/') || mount.prefix.contains(['{', '}', '?', '#']))
    {
        problems.at(
            "name",
            format!(
                "mount prefix `{}` must start with / and be a literal path",
                mount.prefix
            ),
        );
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
    let add = |env: &mut Environment<'static>,
               problems: &mut Problems,
               name: String,
               text: &str,
               needle: &str| {
        if let Err(e) = env.add_template_owned(name.clone(), text.to_owned()) {
            problems.at(needle, format!("template {name}: {e}"));
        }
    };

    let is_json = |ct: &str| ct.contains("json");
    let default_ct = spec.content_type.clone();
    let add_response = |env: &mut Environment<'static>,
                        problems: &mut Problems,
                        prefix: &str,
                        r: &ResponseSpec,
                        needle: &str| {
        let ct = r.content_type.as_deref().unwrap_or(&default_ct);
        let suffix = if is_json(ct) { "json" } else { "txt" };
        add(
            env,
            problems,
            format!("{prefix}.body.{suffix}"),
            &r.body,
            needle,
        );
        for (h, v) in &r.headers {
            add(env, problems, format!("{prefix}.header.{h}"), v, needle);
        }
        for c in &r.cookies {
            let cookie = format!("{prefix}.cookie.{}", c.name);
            add(env, problems, format!("{cookie}.name"), &c.name, needle);
            add(env, problems, format!("{cookie}.value"), &c.value, needle);
            if let Some(age) = &c.max_age {
                add(env, problems, format!("{cookie}.max_age"), age, needle);
            }
        }
        for (i, c) in r.clear_cookies.iter().enumerate() {
            add(env, problems, format!("{prefix}.clear.{i}"), c, needle);
        }
    };
    for (kind, r) in &spec.errors {
        add_response(
            &mut env,
            &mut problems,
            &format!("errors.{kind}"),
            r,
            &format!("{kind} ="),
        );
    }
    let mut routes = Vec::new();
    for (i, route) in spec.routes.iter().enumerate() {
        let needle = format!("name = \"{}\"", route.name);
        let rerr = |problems: &mut Problems, m: String| {
            problems.at(&needle, format!("route `{}`: {m}", route.name))
        };
        check_kinds(
            &route.errors,
            &format!("route `{}` errors", route.name),
            &mut problems,
        );
        add_response(
            &mut env,
            &mut problems,
            &format!("routes.{i}.ok"),
            &route.ok,
            &needle,
        );
        for (kind, r) in &route.errors {
            add_response(
                &mut env,
                &mut problems,
                &format!("routes.{i}.errors.{kind}"),
                r,
                &needle,
            );
        }
        let method = route.method.to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            rerr(
                &mut problems,
                format!("unsupported method `{}`", route.method),
            );
        }
        let full = format!(
            "{}{}{}",
            mount.prefix.trim_end_matches('/'),
            spec.base.trim_end_matches('/'),
            route.path
        );
        let path = PathTemplate::compile(&full, route.trailing_slash);
        let mut all_sources: Vec<&str> = route.fields.values().flat_map(Sources::list).collect();
        if let Some(s) = &route.subject {
            all_sources.extend(s.id.iter().chain(s.username.iter()).flat_map(Sources::list));
        }
        all_sources.extend(route.subject_check.iter().flat_map(Sources::list));
        all_sources.extend(route.constants.keys().map(String::as_str));
        for src in all_sources {
            if let Err(m) = check_source(src) {
                rerr(&mut problems, m);
            }
        }
        for name in &route.required {
            if name != "subject" && !route.fields.contains_key(name) {
                rerr(
                    &mut problems,
                    format!("required field `{name}` has no source in `fields`"),
                );
            }
        }
        for g in route.grants.values() {
            if !["password", "client_credentials", "refresh_token"].contains(&g.as_str()) {
                rerr(&mut problems, format!("unknown grant `{g}`"));
            }
        }
        match path {
            Ok(path) => {
                let mut spec_route = route.clone();
                spec_route.method = method;
                routes.push(CompiledRoute {
                    index: i,
                    spec: spec_route,
                    path,
                });
            }
            Err(m) => rerr(&mut problems, m),
        }
    }
    let plain = |template: &str, needle: &str, problems: &mut Problems| {
        render_plain(&env, template, &vars)
            .map_err(|m| problems.at(needle, m))
            .ok()
    };
    let cookie_name = match &spec.auth.cookie {
        Some(t) => plain(t, "cookie", &mut problems),
        None => None,
    };
    let regex = |pattern: Option<&str>, needle: &str, problems: &mut Problems| {
        compile_regex(pattern)
            .map_err(|m| problems.at(needle, m))
            .ok()
            .flatten()
    };
    let token_pattern = regex(
        spec.auth.token_pattern.as_deref(),
        "token_pattern",
        &mut problems,
    );
    let (csrf_cookie, csrf_header, csrf_pattern) = match &spec.auth.csrf {
        Some(c) => (
            plain(&c.cookie, "csrf", &mut problems),
            plain(&c.header, "csrf", &mut problems),
            regex(c.pattern.as_deref(), "csrf", &mut problems),
        ),
        None => (None, None, None),
    };
    problems.list.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    let dialect = Dialect {
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
    };
    (Some(dialect), problems.list)
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
