//! What a dialect answers beyond its routes: the vendor's own error for an unknown path or a
//! wrong method under its base path, and the script-readable CSRF cookie a double-submit
//! vendor (Spring's cookie CSRF repository) hands to any client that has none.

use std::sync::Arc;

use minijinja::context;

use crate::dialect::{Dialect, DialectSet};
use crate::extract::RequestView;
use crate::http::{HttpRequest, HttpResponse};
use crate::route::CompiledRoute;
use crate::spec::{CommandKind, CsrfStyle, PathMatching};

impl Dialect {
    /// The path every route of the dialect sits under, mount prefix included (`/studio`).
    fn full_base(&self) -> String {
        format!(
            "{}{}",
            self.mount.prefix.trim_end_matches('/'),
            self.spec.base.trim_end_matches('/')
        )
    }

    /// Whether `path` lies under the dialect's base path (at a segment boundary); a dialect
    /// without a base claims nothing.
    fn claims(&self, path: &str) -> bool {
        let base = self.full_base();
        if base.is_empty() || path.len() < base.len() || !path.is_char_boundary(base.len()) {
            return false;
        }
        let (head, tail) = path.split_at(base.len());
        let same = match self.spec.paths {
            PathMatching::Exact => head == base,
            PathMatching::CaseInsensitive => head.eq_ignore_ascii_case(&base),
        };
        same && (tail.is_empty() || tail.starts_with('/'))
    }

    /// The vendor's answer to `req`, which matched no route of the dialect (`allowed`: the
    /// methods of the route whose path it matched, if one did). `None` without `[unmatched]`.
    pub fn render_unmatched(&self, req: &HttpRequest, allowed: &[String]) -> Option<HttpResponse> {
        let unmatched = self.unmatched.as_ref()?;
        let ctx = context! {
            base => self.spec.base, vars => self.vars, dialect => self.name,
            path => RequestView::default().path, method => req.method, allowed => allowed,
        };
        let mut res = if allowed.is_empty() {
            self.render_response(&unmatched.path, ctx)
        } else {
            let mut res = self.render_response(&unmatched.method, ctx);
            res.headers.push(("Allow".into(), allowed.join(", ")));
            res
        };
        self.issue_csrf_cookie(None, req, &mut res);
        Some(res)
    }

    /// Whether [`Dialect::issue_csrf_cookie`] may add a cookie at all (a double-submit CSRF
    /// cookie the gateway issues): callers skip gathering the request's cookies otherwise.
    pub fn issues_csrf_cookies(&self) -> bool {
        (self.spec.auth.csrf.as_ref())
            .is_some_and(|c| c.issue && c.style == CsrfStyle::DoubleSubmit)
            && self.csrf_cookie.is_some()
    }

    /// Adds the dialect's CSRF cookie to `res` where the dialect issues one (`issue = true`):
    /// to a client that sent none, and a fresh one on a successful login. The double-submit
    /// check on writes is unchanged: the cookie alone never passes it.
    pub fn issue_csrf_cookie(
        &self,
        route: Option<&CompiledRoute>,
        req: &HttpRequest,
        res: &mut HttpResponse,
    ) {
        let Some(csrf) = self.spec.auth.csrf.as_ref() else {
            return;
        };
        let Some(name) = self.csrf_cookie.as_deref() else {
            return;
        };
        if !csrf.issue || csrf.style != CsrfStyle::DoubleSubmit {
            return;
        }
        let has_one = req.cookie(name).is_some_and(|v| !v.is_empty());
        let logged_in = route.is_some_and(|r| r.spec.command == CommandKind::Login)
            && (200..300).contains(&res.status);
        if has_one && !logged_in {
            return;
        }
        let value = credgate_core::token::generate();
        let path = format!(
            "{}{}",
            self.mount.prefix.trim_end_matches('/'),
            csrf.cookie_path
        );
        // Script-readable on purpose (no HttpOnly): the vendor's UI copies it into the header.
        res.headers.push((
            "Set-Cookie".into(),
            format!("{name}={}; Path={path}; SameSite=Lax", value.expose()),
        ));
    }
}

impl DialectSet {
    /// The dialect on `listener` whose base path holds `path`: the one with the longest base.
    /// `None` when none does, or when two dialects share that base (neither can answer for
    /// the other; a prefix mount separates them).
    pub fn owner_of(&self, listener: Option<&str>, path: &str) -> Option<&Arc<Dialect>> {
        let mut claimants: Vec<&Arc<Dialect>> = (self.dialects().iter())
            .filter(|d| d.mount.listener.as_deref() == listener && d.claims(path))
            .collect();
        claimants.sort_by_key(|d| std::cmp::Reverse(d.full_base().len()));
        match claimants.as_slice() {
            [] => None,
            [only] => Some(*only),
            [a, b, ..] if a.full_base().len() > b.full_base().len() => Some(*a),
            _ => None,
        }
    }

    /// The owning vendor's answer to a request that matched no route (`allowed`: the methods
    /// its path is served with, empty when the path is unknown); `None`: the native answer.
    pub fn render_unmatched(
        &self,
        listener: Option<&str>,
        req: &HttpRequest,
        allowed: &[String],
    ) -> Option<(Arc<Dialect>, HttpResponse)> {
        // A wrong method: the dialect whose route has the path, even on a shared base.
        let by_route = (self.dialects().iter()).find(|d| {
            !allowed.is_empty()
                && d.mount.listener.as_deref() == listener
                && d.routes.iter().any(|r| r.path.matches(&req.path).is_some())
        });
        let owner = by_route.or_else(|| self.owner_of(listener, &req.path))?;
        let res = owner.render_unmatched(req, allowed)?;
        Some((Arc::clone(owner), res))
    }
}
