//! Which routes a path can match, by its first segment (issue 16): decided once when a dialect
//! set is built, so a request runs the path check of a few routes instead of every route of
//! every dialect. A necessary condition only: the candidates are still checked in full, in the
//! set's order (most literal first), so lookups answer exactly as a scan of every route does.

use std::collections::HashMap;

/// (dialect, route) pairs by the first path segment (ASCII lower case) their templates need.
#[derive(Debug, Default)]
pub(crate) struct RouteIndex {
    by_segment: HashMap<String, Vec<(usize, usize)>>,
    /// Routes whose first segment is not literal (a parameter in it), in order: candidates for
    /// every path.
    any: Vec<(usize, usize)>,
    /// Every route, in order: for paths the index does not judge (non-ASCII, no leading `/`).
    all: Vec<(usize, usize)>,
}

impl RouteIndex {
    /// `order` is the set's lookup order; `template` gives a route's full path template.
    pub(crate) fn new<'a>(
        order: &[(usize, usize)],
        template: impl Fn(usize, usize) -> &'a str,
    ) -> Self {
        let keys: Vec<Option<String>> = order
            .iter()
            .map(|&(d, r)| template_segment(template(d, r)))
            .collect();
        let mut by_segment: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        for key in keys.iter().flatten() {
            by_segment.entry(key.clone()).or_default();
        }
        let mut any = Vec::new();
        for (&pair, key) in order.iter().zip(&keys) {
            match key {
                Some(key) => by_segment.entry(key.clone()).or_default().push(pair),
                None => {
                    // A candidate for every segment, at its place in the order.
                    any.push(pair);
                    for list in by_segment.values_mut() {
                        list.push(pair);
                    }
                }
            }
        }
        Self {
            by_segment,
            any,
            all: order.to_vec(),
        }
    }

    /// The routes that can match `path`, in lookup order.
    pub(crate) fn candidates(&self, path: &str) -> &[(usize, usize)] {
        let Some(rest) = path.strip_prefix('/') else {
            return &self.all;
        };
        if !path.is_ascii() {
            return &self.all;
        }
        let segment = rest.split('/').next().unwrap_or_default();
        let found = if segment.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_segment.get(&segment.to_ascii_lowercase())
        } else {
            self.by_segment.get(segment)
        };
        found.map_or(&self.any, Vec::as_slice)
    }
}

/// The first segment every path a template matches starts with (ASCII lower case), or `None`
/// when a parameter is part of it.
fn template_segment(template: &str) -> Option<String> {
    let rest = template.strip_prefix('/')?;
    let (literal, whole) = match rest.find('{') {
        Some(open) => (&rest[..open], false),
        None => (rest.trim_end_matches('/'), true),
    };
    match literal.find('/') {
        Some(slash) => Some(literal[..slash].to_ascii_lowercase()),
        None if whole => Some(literal.to_ascii_lowercase()),
        None => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::router::PathTemplate;

    #[test]
    fn segments_of_templates() {
        assert_eq!(
            template_segment("/api/login/status").as_deref(),
            Some("api")
        );
        assert_eq!(template_segment("/Api/{id}").as_deref(), Some("api"));
        assert_eq!(template_segment("/x.json/").as_deref(), Some("x.json"));
        assert_eq!(template_segment("/").as_deref(), Some(""));
        assert_eq!(template_segment("/{tenant}/login"), None);
        assert_eq!(template_segment("/v{version}/token"), None);
    }

    /// Every path a route matches is among its candidates: the index never hides a match.
    #[test]
    fn the_index_never_hides_a_match() {
        let templates = [
            "/api/login/status",
            "/API/Login",
            "/api/v{version}/users/{id}",
            "/{tenant}/token",
            "/v{version}/token",
            "/",
            "/studio/api/1/status.json/",
            "/é/k",
        ];
        let paths = [
            "/",
            "/api/login/status",
            "/Api/LOGIN",
            "/api/login",
            "/api/v1/users/7",
            "/acme/token",
            "/v2/token",
            "/studio/api/1/status.json",
            "/studio/api/1/status.json/",
            "/STUDIO/api/1/status.json",
            "/é/k",
            "/É/k",
            "",
            "api/login",
            "/x",
            "/api",
        ];
        for ignore_case in [false, true] {
            let compiled: Vec<PathTemplate> = (templates.iter())
                .map(|t| PathTemplate::compile_with(t, true, ignore_case).unwrap())
                .collect();
            let order: Vec<(usize, usize)> = (0..compiled.len()).map(|i| (0, i)).collect();
            let index = RouteIndex::new(&order, |_, r| compiled[r].template.as_str());
            for path in paths {
                let candidates = index.candidates(path);
                let mut last = None;
                for &(_, r) in candidates {
                    assert!(last < Some(r), "order kept for {path}");
                    last = Some(r);
                }
                for (r, t) in compiled.iter().enumerate() {
                    if t.matches(path).is_some() {
                        assert!(candidates.contains(&(0, r)), "{path} hides {}", t.template);
                    }
                }
            }
        }
    }
}
