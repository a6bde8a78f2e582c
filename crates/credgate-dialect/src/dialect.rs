//! A loaded dialect and the set of them that the gateway serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Environment;

pub use crate::route::CompiledRoute;
use crate::route::Response;
use crate::spec::DialectSpec;
use crate::token_pattern::TokenPattern;

pub struct Dialect {
    pub name: String,
    /// The file it came from, for messages.
    pub origin: String,
    pub(crate) source: String,
    pub vars: BTreeMap<String, String>,
    pub(crate) env: Environment<'static>,
    pub routes: Vec<CompiledRoute>,
    pub(crate) cookie_name: Option<String>,
    pub(crate) token_pattern: Option<TokenPattern>,
    pub(crate) csrf_cookie: Option<String>,
    pub(crate) csrf_header: Option<String>,
    pub(crate) csrf_pattern: Option<TokenPattern>,
    /// The error table, compiled.
    pub errors: BTreeMap<String, Response>,
    /// The answers to unmatched paths and methods under the base path, when the file has them.
    pub(crate) unmatched: Option<Unmatched>,
    pub spec: DialectSpec,
    /// Where it is served: its listener and path prefix.
    pub mount: Mount,
}

/// A dialect's answers to requests that match none of its routes.
#[derive(Debug, Clone)]
pub(crate) struct Unmatched {
    pub path: Response,
    pub method: Response,
}

/// Where a dialect is served: on the main listener unless `listener` names another, with
/// every route path below `prefix` (empty: the vendor's own paths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub listener: Option<String>,
    pub prefix: String,
}

impl Dialect {
    /// The dialect file's text, as loaded (a reload compares it to tell what changed).
    pub fn source_text(&self) -> &str {
        &self.source
    }

    /// The session cookie's name, its templates rendered (cookie dialects).
    pub fn session_cookie(&self) -> Option<&str> {
        self.cookie_name.as_deref()
    }

    /// The CSRF header's name, its templates rendered.
    pub fn csrf_header(&self) -> Option<&str> {
        self.csrf_header.as_deref()
    }

    /// The CSRF cookie's name, its templates rendered.
    pub fn csrf_cookie(&self) -> Option<&str> {
        self.csrf_cookie.as_deref()
    }

    /// The answer to canonical error `kind`: the route's own override, else the dialect's.
    pub fn error_response<'a>(
        &'a self,
        route: Option<&'a CompiledRoute>,
        kind: &str,
    ) -> Option<&'a Response> {
        (route.and_then(|r| r.errors.get(kind))).or_else(|| self.errors.get(kind))
    }
}

impl std::fmt::Debug for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialect")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish()
    }
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
    /// The routes a path can match (by its first segment), most literal path first.
    index: crate::route_index::RouteIndex,
}

impl DialectSet {
    pub(crate) fn new(dialects: Vec<Arc<Dialect>>) -> Self {
        let mut order: Vec<(usize, usize)> = dialects
            .iter()
            .enumerate()
            .flat_map(|(d, dl)| (0..dl.routes.len()).map(move |r| (d, r)))
            .collect();
        order.sort_by_key(|&(d, r)| std::cmp::Reverse(dialects[d].routes[r].path.specificity));
        let index = crate::route_index::RouteIndex::new(&order, |d, r| {
            dialects[d].routes[r].path.template.as_str()
        });
        Self { dialects, index }
    }

    pub fn dialects(&self) -> &[Arc<Dialect>] {
        &self.dialects
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Dialect>> {
        self.dialects.iter().find(|d| d.name == name)
    }

    /// Each dialect's token lifetimes (its `[tokens]`, with the operator's override applied).
    pub fn token_lifetimes(
        &self,
    ) -> std::collections::HashMap<String, credgate_core::TokenLifetimes> {
        let secs = |s: Option<u64>| s.map(std::time::Duration::from_secs);
        (self.dialects.iter())
            .map(|d| {
                let lifetimes = credgate_core::TokenLifetimes {
                    user: secs(d.spec.tokens.ttl_secs),
                    client: secs(d.spec.tokens.client_ttl_secs),
                };
                (d.name.clone(), lifetimes)
            })
            .collect()
    }

    /// The route for a request on the main listener.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup {
        self.lookup_on(None, method, path)
    }

    /// The route for a request on `listener` (`None`: the main one); only the dialects mounted
    /// there are considered.
    pub fn lookup_on(&self, listener: Option<&str>, method: &str, path: &str) -> Lookup {
        let mut allowed = Vec::new();
        for &(d, r) in self.index.candidates(path) {
            if self.dialects[d].mount.listener.as_deref() != listener {
                continue;
            }
            let route = &self.dialects[d].routes[r];
            if let Some(params) = route.path.matches(path) {
                if route.method.as_str().eq_ignore_ascii_case(method) {
                    return Lookup::Found(RouteMatch {
                        dialect: Arc::clone(&self.dialects[d]),
                        route: r,
                        params,
                    });
                }
                allowed.push(route.method.to_string());
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
