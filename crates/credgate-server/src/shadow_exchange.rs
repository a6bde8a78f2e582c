//! The recorded form of a shadowed exchange, for `credgate shadow examples`. Secrets are
//! replaced here, at record time, so no password, token, cookie or client secret is ever
//! stored: a body field whose name says password, secret or token becomes `__CG_SECRET_<field>__`,
//! the user's name `__CG_USER__`, a Basic client's id `__CG_CLIENT__` (its secret is dropped),
//! and the answer's volatile values (tokens, dates, ids, numbers) become replay's wildcards.
//! A request that carries a session (a bearer token or a cookie) is marked `session`, with the
//! value left out (the example writer logs in first, as the dialect's clients do). The id a
//! request names its user by (Crayon's `/users/{id}/...`, its body's `Id`) becomes
//! `__CG_USER_ID__`.

use credgate_dialect::route::{CompiledRoute, Source};
use credgate_dialect::{HttpRequest, HttpResponse, RequestView};
use serde_json::{json, Map, Value};

pub const USER: &str = "__CG_USER__";
pub const USER_ID: &str = "__CG_USER_ID__";
pub const CLIENT: &str = "__CG_CLIENT__";

/// The identities a record replaces: the user's name, and the id the request names it by.
#[derive(Clone, Copy)]
struct Who<'a> {
    user: Option<&'a str>,
    id: Option<&'a str>,
    /// Body and query fields the route reads a secret from (Crafter's `current` and `new`).
    secrets: &'a [String],
}

/// Canonical fields that carry a secret.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "current",
    "new",
    "confirm",
    "token",
    "code",
    "answer",
    "client_secret",
    "refresh_token",
];

/// The body and query field names `route` reads a secret from.
fn secret_sources(route: &CompiledRoute) -> Vec<String> {
    (route.fields.iter())
        .filter(|(canonical, _)| SECRET_FIELDS.contains(&canonical.as_str()))
        .flat_map(|(_, sources)| sources.iter())
        .filter_map(|s| match s {
            Source::Body(n) | Source::Query(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

impl Who<'_> {
    /// Whether a body or query field named `name` holds a secret.
    fn secret(&self, name: &str) -> bool {
        secret_name(name) || self.secrets.iter().any(|s| s == name)
    }

    /// The marker standing for `value`, if it is one of the identities.
    fn marker(&self, value: &str) -> Option<&'static str> {
        if Some(value) == self.user {
            Some(USER)
        } else if Some(value) == self.id {
            Some(USER_ID)
        } else {
            None
        }
    }

    fn swap(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(u) = self.user {
            out = out.replace(u, USER);
        }
        if let Some(id) = self.id {
            out = out.replace(id, USER_ID);
        }
        out
    }
}

/// The placeholder of a secret body field.
pub fn secret_marker(field: &str) -> String {
    format!("__CG_SECRET_{field}__")
}

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "code", "otp"]
        .iter()
        .any(|s| n.contains(s))
}

/// The exchange of a request to `route` with its secrets replaced; `view` names its user.
pub fn record(
    req: &HttpRequest,
    view: &RequestView,
    route: &CompiledRoute,
    answer: &HttpResponse,
) -> Value {
    // The user's name: given as such, or as the subject of a route that names users by name.
    let named = (route.subject.as_ref())
        .filter(|s| !s.by_id)
        .and(view.subject.as_deref());
    let user = (view.username.as_deref().or(named)).filter(|u| !u.is_empty());
    // An id the request names its user by (not the caller's `me` literal, not the username).
    let id = (route.subject.as_ref()).filter(|s| s.by_id).and_then(|s| {
        let raw = view.subject.as_deref()?;
        (s.me.as_deref() != Some(raw) && Some(raw) != user && raw.len() > 2).then_some(raw)
    });
    let secrets = secret_sources(route);
    let who = Who {
        user,
        id,
        secrets: &secrets,
    };
    record_for(req, who, answer)
}

fn record_for(req: &HttpRequest, who: Who<'_>, answer: &HttpResponse) -> Value {
    let swap_user = |s: &str| who.swap(s);
    let authorization = req.header("authorization").unwrap_or("");
    let basic = authorization
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("basic "));
    let session = (!authorization.is_empty() && !basic) || req.header("cookie").is_some();
    let content_type = req.header("content-type").unwrap_or("").to_owned();
    let body = String::from_utf8_lossy(&req.body);
    let body = if content_type.contains("json") {
        match serde_json::from_str::<Value>(&body) {
            Ok(v) => serde_json::to_string(&scrub_request(None, v, who)).unwrap_or_default(),
            Err(_) => String::new(),
        }
    } else if content_type.contains("x-www-form-urlencoded") {
        scrub_form(&body, who)
    } else {
        String::new()
    };
    let response_json = if answer
        .header("content-type")
        .is_some_and(|c| c.contains("json"))
    {
        serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .map(|v| wildcard(None, v, who))
    } else {
        None
    };
    json!({
        "method": req.method,
        "path": swap_user(&req.path),
        // A query may carry a secret too (Crafter's `validate-token.json?token=`).
        "query": swap_user(&scrub_form(&req.query, who)),
        "content_type": content_type,
        "accept": req.header("accept"),
        "basic_client": basic,
        "session": session,
        "body": body,
        "status": answer.status,
        "response_content_type": answer.header("content-type"),
        "response_json": response_json,
    })
}

fn scrub_request(name: Option<&str>, value: Value, user: Who<'_>) -> Value {
    match value {
        Value::String(_) if name.is_some_and(|n| user.secret(n)) => {
            Value::String(secret_marker(name.unwrap_or("")))
        }
        Value::String(s) if user.marker(&s).is_some() => {
            Value::String(user.marker(&s).unwrap_or(USER).into())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = scrub_request(Some(&k), v, user);
                    (k, v)
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| scrub_request(name, v, user))
                .collect(),
        ),
        other => other,
    }
}

fn scrub_form(body: &str, user: Who<'_>) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap_or_default();
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = if user.secret(&k) {
                secret_marker(&k)
            } else if let Some(marker) = user.marker(&v) {
                marker.to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// A field that carries a token, date or id (not its type: `tokenType` is a constant).
fn volatile_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    !n.ends_with("type")
        && [
            "token", "id", "date", "time", "expir", "session", "csrf", "uuid", "fdn",
        ]
        .iter()
        .any(|s| n.contains(s))
}

/// The answer with its volatile values as replay's wildcards (`<string>`, `<number>`).
fn wildcard(name: Option<&str>, value: Value, user: Who<'_>) -> Value {
    match value {
        Value::String(s) if user.marker(&s).is_some() => {
            Value::String(user.marker(&s).unwrap_or(USER).into())
        }
        Value::String(s)
            if name.is_some_and(volatile_name)
                || s.len() > 24
                || s.chars().any(|c| c.is_ascii_digit()) =>
        {
            Value::String("<string>".into())
        }
        Value::Number(_) => Value::String("<number>".into()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = wildcard(Some(&k), v, user);
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| wildcard(name, v, user)).collect())
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_record() {
        let req = HttpRequest {
            method: "POST".into(),
            path: "/api/v1/connect/token".into(),
            query: String::new(),
            headers: vec![
                ("Authorization".into(), "Basic Y2xpZW50OnMzY3JldA==".into()),
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: b"grant_type=password&username=jo%40x.com&password=Hunter%232&scope=A".to_vec(),
        };
        let answer = HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"accessToken":"abc.def","expiresIn":3600,"tokenType":"Bearer"}"#.to_vec(),
        };
        let who = Who {
            user: Some("jo@x.com"),
            id: None,
            secrets: &[],
        };
        let r = record_for(&req, who, &answer);
        let text = r.to_string();
        assert!(!text.contains("Hunter"), "{text}");
        assert!(!text.contains("Y2xpZW50"), "{text}");
        assert!(!text.contains("abc.def"), "{text}");
        assert!(!text.contains("jo%40x.com") && !text.contains("jo@x.com"));
        assert_eq!(r["basic_client"], true);
        assert_eq!(r["session"], false);
        assert_eq!(r["response_json"]["tokenType"], "Bearer");
        assert_eq!(r["response_json"]["expiresIn"], "<number>");
    }

    #[test]
    fn a_reset_token_in_the_query_is_replaced() {
        let req = HttpRequest {
            method: "GET".into(),
            path: "/studio/api/1/services/api/1/user/validate-token.json".into(),
            query: "token=Upstream-Reset-Token-123&lang=en".into(),
            headers: vec![],
            body: vec![],
        };
        let answer = HttpResponse {
            status: 200,
            headers: vec![],
            body: br#"{"message": "OK"}"#.to_vec(),
        };
        let who = Who {
            user: None,
            id: None,
            secrets: &[],
        };
        let r = record_for(&req, who, &answer);
        assert!(!r.to_string().contains("Upstream-Reset-Token-123"), "{r}");
        assert_eq!(r["query"], "token=__CG_SECRET_token__&lang=en");
    }

    #[test]
    fn the_users_id_becomes_a_marker_and_a_session_is_only_flagged() {
        let id = "e758d6be-6fe4-491c-9f1c-5b6b8d6f79b2";
        let req = HttpRequest {
            method: "PUT".into(),
            path: format!("/api/v1/users/{id}/changepassword"),
            query: String::new(),
            headers: vec![
                ("Authorization".into(), "Bearer live-session-token".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: format!(r#"{{"Id": "{id}", "OldPassword": "Old-1", "NewPassword": "New-2"}}"#)
                .into_bytes(),
        };
        let answer = HttpResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"true".to_vec(),
        };
        let who = Who {
            user: None,
            id: Some(id),
            secrets: &[],
        };
        let r = record_for(&req, who, &answer);
        let text = r.to_string();
        for secret in [id, "live-session-token", "Old-1", "New-2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(r["path"], "/api/v1/users/__CG_USER_ID__/changepassword");
        assert_eq!(r["session"], true);
        assert_eq!(r["response_json"], true);
    }
}
