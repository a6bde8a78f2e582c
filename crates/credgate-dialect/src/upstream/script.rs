//! How a client of a dialect obtains and presents a session, as an example file writes it:
//! the login (or client-credentials grant) to send first, where its answer puts the session,
//! and the headers that present it on a route, with the session's values as the example's
//! template captures (`{{ cg_access }}`, `{{ cg_cookie_0 }}`, `{{ cg_csrf }}`). Derived from
//! the dialect file like every upstream call: no per-vendor code.

use credgate_core::SecretToken;

use super::{Session, UpstreamAuth, UpstreamCommand, UpstreamError, UpstreamRequest, Values};
use crate::dialect::Dialect;
use crate::spec::{AuthScheme, TokenRequirement};

/// A session for one route, as an example's `before` step and request headers.
#[derive(Debug)]
pub struct SessionScript {
    /// The login (or client grant) to send, with a path relative to the gateway.
    pub login: UpstreamRequest,
    /// The status a successful login answers.
    pub status: u16,
    /// Capture name -> where to read it (`json:/accessToken`, `cookie:JSESSIONID`).
    pub captures: Vec<(String, String)>,
    /// The headers that present the session on the route (values are capture templates).
    pub present: Vec<(String, String)>,
}

impl Dialect {
    /// How a client logs in (with `values` and `auth`) and presents the session on the route
    /// named `route`; `None` when the route needs no session or the dialect has no login.
    pub fn session_script(
        &self,
        route: &str,
        values: &Values,
        auth: &UpstreamAuth,
    ) -> Option<Result<SessionScript, UpstreamError>> {
        let target = self.routes.iter().find(|r| r.spec.name == route)?;
        let op = match target.spec.token {
            TokenRequirement::None => return None,
            TokenRequirement::Client => UpstreamCommand::ClientToken,
            TokenRequirement::User => UpstreamCommand::Login,
        };
        let login_route = self.upstream_route(op)?;
        let login = match self.upstream_request(op, "", values, auth, None) {
            Ok(login) => login,
            Err(e) => return Some(Err(e)),
        };
        let ctx = self.marker_context(1);
        let mut captures = Vec::new();
        let mut session = Session::default();
        if self.spec.auth.scheme == AuthScheme::Bearer {
            let rendered: Option<serde_json::Value> = (self.render(&login_route.ok.body, &ctx))
                .and_then(|t| serde_json::from_str(&t).ok());
            let mut pointers = Vec::new();
            if let Some(rendered) = &rendered {
                super::response::find_pointers(
                    rendered,
                    &super::response::marker(1, "access"),
                    "",
                    &mut pointers,
                );
            }
            let pointer = pointers.first()?;
            captures.push(("cg_access".to_owned(), format!("json:{pointer}")));
            session.bearer = Some(SecretToken::new("{{ cg_access }}"));
        }
        for c in &login_route.ok.cookies {
            let (Some(name), Some(value)) =
                (self.render(&c.name, &ctx), self.render(&c.value, &ctx))
            else {
                continue;
            };
            if value.contains(&super::response::marker(1, "access")) {
                let capture = format!("cg_cookie_{}", session.cookies.len());
                let template = SecretToken::new(format!("{{{{ {capture} }}}}"));
                captures.push((capture, format!("cookie:{name}")));
                session.cookies.push((name, template));
            } else if value.contains(&super::response::marker(1, "csrf")) {
                captures.push(("cg_csrf".to_owned(), format!("cookie:{name}")));
                session.csrf = Some(SecretToken::new("{{ cg_csrf }}"));
            }
        }
        let (mut present, mut cookies) = (Vec::new(), Vec::new());
        self.present_session(target.csrf, &session, &mut present, &mut cookies);
        if !cookies.is_empty() {
            let joined: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            present.push(("Cookie".into(), joined.join("; ")));
        }
        Some(Ok(SessionScript {
            login,
            status: login_route.ok.spec.status,
            captures,
            present,
        }))
    }
}
