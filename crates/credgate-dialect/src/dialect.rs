//! A loaded dialect and the set of them that the gateway serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Environment;
use regex::Regex;

use crate::router::PathTemplate;
use crate::spec::{DialectSpec, RouteSpec};

pub struct Dialect {
    pub name: String,
    /// The file it came from, for messages.
    pub origin: String,
    pub(crate) source: String,
    pub vars: BTreeMap<String, String>,
    pub(crate) env: Environment<'static>,
    pub routes: Vec<CompiledRoute>,
    pub(crate) cookie_name: Option<String>,
    pub(crate) token_pattern: Option<Regex>,
    pub(crate) csrf_cookie: Option<String>,
    pub(crate) csrf_header: Option<String>,
    pub(crate) csrf_pattern: Option<Regex>,
    pub spec: DialectSpec,
}

impl std::fmt::Debug for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialect")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish()
    }
}

pub struct CompiledRoute {
    /// Position in the file, which names its templates.
    pub(crate) index: usize,
    pub spec: RouteSpec,
    pub path: PathTemplate,
}

/// A route that matched a request, with its decoded path parameters.
pub struct RouteMatch {
    pub dialect: Arc<Dialect>,
    pub route: usize,
    pub params: Vec<(String, String)>,
}

impl RouteMatch {
    pub fn route(&self) -> &CompiledRoute {
        &self.dialect.routes[self.route]
    }
}

/// What a path lookup found.
pub enum Lookup {
    Found(RouteMatch),
    /// The path exists, but not for this method: these are the allowed ones.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

#[derive(Debug)]
pub struct DialectSet {
    dialects: Vec<Arc<Dialect>>,
    /// (dialect, route) pairs, most literal path first.
    order: Vec<(usize, usize)>,
}

impl DialectSet {
    pub(crate) fn new(dialects: Vec<Arc<Dialect>>) -> Self {
        let mut order: Vec<(usize, usize)> = dialects
            .iter()
            .enumerate()
            .flat_map(|(d, dl)| (0..dl.routes.len()).map(move |r| (d, r)))
            .collect();
        order.sort_by_key(|&(d, r)| std::cmp::Reverse(dialects[d].routes[r].path.specificity));
        Self { dialects, order }
    }

    pub fn dialects(&self) -> &[Arc<Dialect>] {
        &self.dialects
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Dialect>> {
        self.dialects.iter().find(|d| d.name == name)
    }

    pub fn lookup(&self, method: &str, path: &str) -> Lookup {
        let mut allowed = Vec::new();
        for &(d, r) in &self.order {
            let route = &self.dialects[d].routes[r];
            if let Some(params) = route.path.matches(path) {
                if route.spec.method.eq_ignore_ascii_case(method) {
                    return Lookup::Found(RouteMatch {
                        dialect: Arc::clone(&self.dialects[d]),
                        route: r,
                        params,
                    });
                }
                allowed.push(route.spec.method.clone());
            }
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            allowed.sort();
            allowed.dedup();
            Lookup::MethodNotAllowed(allowed)
        }
    }
}
