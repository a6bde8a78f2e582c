//! Loading dialect files: where they come from, what the operator's configuration changes, and
//! the clash check across files. Every message names the file and, where it can, the line.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::compile::compile;
use crate::dialect::{CompiledRoute, Dialect, DialectSet, Mount};
use crate::spans::{key_path, Spans};

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
    /// Per-dialect session lifetime in seconds, replacing the dialect file's `[tokens] ttl_secs`.
    pub token_ttl_secs: BTreeMap<String, u64>,
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
            let (dialect, found) = compile(source, options);
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
                line: Spans::new(&here_d.source).line(&key_path!["routes", here_r.index, "name"]),
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
