//! How a route's success answer is read, worked out once from its templates: what a value-free
//! answer must be, and where the vendor puts the session token and the user's id. Rendering
//! the templates with marker values takes a tenth of a millisecond; an upstream client keeps
//! one reading per operation ([`Dialect::ok_reading`]) instead of rendering them on every call.

use credgate_core::{Error, SecretToken};
use serde_json::Value;

use super::response::{find_pointers, marker};
use super::{Reply, Session, UpstreamCommand};
use crate::dialect::Dialect;
use crate::http::HttpResponse;
use crate::spec::AuthScheme;

/// The reading of one operation's success answer.
#[derive(Debug, Clone)]
pub struct OkReading {
    op: UpstreamCommand,
    status: u16,
    /// A success body that does not depend on any value (`true`, `{"message": "OK"}`) must be
    /// exactly that: Crayon answering `false` with 200 is not a success. `None`: any body.
    fixed: Option<FixedBody>,
    /// JSON pointers to the user's upstream id, its id and the access token, in template order.
    user_ref: Vec<String>,
    id: Vec<String>,
    access: Vec<String>,
    /// The session's cookies by name: the access token's, or the CSRF value's.
    cookies: Vec<(String, CookieRole)>,
}

#[derive(Debug, Clone)]
struct FixedBody {
    text: String,
    json: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieRole {
    Access,
    Csrf,
}

impl Dialect {
    /// The reading of `op`'s success answer; `None` when the dialect has no route for it.
    pub fn ok_reading(&self, op: UpstreamCommand) -> Option<OkReading> {
        let route = self.upstream_route(op)?;
        let name = &route.ok.body;
        let ctx = self.marker_context(1);
        let fixed = match (
            self.render(name, &ctx),
            self.render(name, &self.marker_context(2)),
        ) {
            (Some(a), Some(b)) if a == b && !a.trim().is_empty() => Some(FixedBody {
                json: serde_json::from_str(&a).ok(),
                text: a.trim().to_owned(),
            }),
            _ => None,
        };
        let rendered: Option<Value> =
            (self.render(name, &ctx)).and_then(|t| serde_json::from_str(&t).ok());
        let pointers = |what: &str| {
            let mut out = Vec::new();
            if let Some(r) = &rendered {
                find_pointers(r, &marker(1, what), "", &mut out);
            }
            out
        };
        let cookies = (route.ok.cookies.iter())
            .filter_map(|c| {
                let (name, value) = (self.render(&c.name, &ctx)?, self.render(&c.value, &ctx)?);
                if value.contains(&marker(1, "access")) {
                    Some((name, CookieRole::Access))
                } else if value.contains(&marker(1, "csrf")) {
                    Some((name, CookieRole::Csrf))
                } else {
                    None
                }
            })
            .collect();
        Some(OkReading {
            op,
            status: route.ok.spec.status,
            fixed,
            user_ref: pointers("ref"),
            id: pointers("id"),
            access: if self.spec.auth.scheme == AuthScheme::Bearer {
                pointers("access")
            } else {
                Vec::new()
            },
            cookies,
        })
    }

    /// Reads the vendor's answer to the request `upstream_request(reading's op, ..)` built.
    pub fn read_reply(&self, reading: &OkReading, response: &HttpResponse) -> Result<Reply, Error> {
        if response.status == reading.status && reading.matches(response) {
            return Ok(match reading.op {
                UpstreamCommand::Login | UpstreamCommand::ClientToken => {
                    Reply::Session(reading.session(response))
                }
                _ => Reply::Done,
            });
        }
        match self.upstream_route(reading.op) {
            Some(route) => Err(self.recognise_error(route, response)),
            None => Err(Error::Internal),
        }
    }
}

impl OkReading {
    /// The operation whose answer this reads.
    pub fn op(&self) -> UpstreamCommand {
        self.op
    }

    fn matches(&self, response: &HttpResponse) -> bool {
        let Some(fixed) = &self.fixed else {
            return true;
        };
        let actual = String::from_utf8_lossy(&response.body);
        match (&fixed.json, serde_json::from_str::<Value>(&actual)) {
            (Some(x), Ok(y)) => *x == y,
            _ => fixed.text == actual.trim(),
        }
    }

    fn session(&self, response: &HttpResponse) -> Session {
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        // Every place the template puts a value (Crayon's answer may name the token under two
        // casings): the first the vendor's body has.
        let at = |pointers: &[String]| -> Option<String> {
            pointers
                .iter()
                .find_map(|p| match body.as_ref()?.pointer(p)? {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let mut session = Session {
            user_ref: at(&self.user_ref).or_else(|| at(&self.id)),
            bearer: at(&self.access).map(SecretToken::new),
            ..Session::default()
        };
        let set_cookies: Vec<(&str, &str)> = response
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next()?.trim().split_once('='))
            .collect();
        for (name, role) in &self.cookies {
            let Some((_, received)) = set_cookies.iter().find(|(n, _)| n == name) else {
                continue;
            };
            match role {
                CookieRole::Access => {
                    (session.cookies).push((name.clone(), SecretToken::new(*received)))
                }
                CookieRole::Csrf => session.csrf = Some(SecretToken::new(*received)),
            }
        }
        session
    }
}
