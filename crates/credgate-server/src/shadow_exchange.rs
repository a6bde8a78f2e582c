//! The recorded form of a shadowed exchange, for `credgate shadow examples`. Secrets are
//! replaced here, at record time, so no password, token, cookie or client secret is ever
//! stored: a body field whose name says password, secret or token becomes `__CG_SECRET_<field>__`,
//! the user's name `__CG_USER__`, a Basic client's id `__CG_CLIENT__` (its secret is dropped),
//! and the answer's volatile values (tokens, dates, ids, numbers) become replay's wildcards.
//! A request that carries a session (a bearer token or a cookie) is marked `session`, with the
//! value left out.

use credgate_dialect::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

pub const USER: &str = "__CG_USER__";
pub const CLIENT: &str = "__CG_CLIENT__";

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

/// The exchange with its secrets replaced; `username` is the request's user, if it names one.
pub fn record(req: &HttpRequest, username: Option<&str>, answer: &HttpResponse) -> Value {
    let user = username.filter(|u| !u.is_empty());
    let swap_user = |s: &str| match user {
        Some(u) => s.replace(u, USER),
        None => s.to_owned(),
    };
    let authorization = req.header("authorization").unwrap_or("");
    let basic = authorization
        .get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("basic "));
    let session = (!authorization.is_empty() && !basic) || req.header("cookie").is_some();
    let content_type = req.header("content-type").unwrap_or("").to_owned();
    let body = String::from_utf8_lossy(&req.body);
    let body = if content_type.contains("json") {
        match serde_json::from_str::<Value>(&body) {
            Ok(v) => serde_json::to_string(&scrub_request(None, v, user)).unwrap_or_default(),
            Err(_) => String::new(),
        }
    } else if content_type.contains("x-www-form-urlencoded") {
        scrub_form(&body, user)
    } else {
        String::new()
    };
    let response_json = if answer
        .header("content-type")
        .is_some_and(|c| c.contains("json"))
    {
        serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .map(|v| wildcard(None, v, user))
    } else {
        None
    };
    json!({
        "method": req.method,
        "path": swap_user(&req.path),
        // A query may carry a secret too (Crafter's `validate-token.json?token=`).
        "query": swap_user(&scrub_form(&req.query, user)),
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

fn scrub_request(name: Option<&str>, value: Value, user: Option<&str>) -> Value {
    match value {
        Value::String(_) if name.is_some_and(secret_name) => {
            Value::String(secret_marker(name.unwrap_or("")))
        }
        Value::String(s) if Some(s.as_str()) == user => Value::String(USER.into()),
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

fn scrub_form(body: &str, user: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(body).unwrap_or_default();
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = if secret_name(&k) {
                secret_marker(&k)
            } else if Some(v.as_str()) == user {
                USER.to_owned()
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
fn wildcard(name: Option<&str>, value: Value, user: Option<&str>) -> Value {
    match value {
        Value::String(s) if Some(s.as_str()) == user => Value::String(USER.into()),
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
        let r = record(&req, Some("jo@x.com"), &answer);
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
        let r = record(&req, None, &answer);
        assert!(!r.to_string().contains("Upstream-Reset-Token-123"), "{r}");
        assert_eq!(r["query"], "token=__CG_SECRET_token__&lang=en");
    }
}
