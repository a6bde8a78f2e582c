//! `credgate shadow examples DIR`: recorded shadow exchanges written as dialect example files
//! (`DIR/<dialect>/examples/shadow-*.toml`) that `credgate replay --examples DIR` runs against a
//! fresh gateway. The exchanges were stored with their secrets already replaced by markers
//! ([`credgate_server::shadow_exchange`]); here each marker gets one generated value, used alike
//! in the setup, the request and the expected answer. The user becomes a generated identity
//! (replay prefixes it per run, as for every example), the id it was named by a generated id,
//! a Basic client a generated client, an application key a generated key.
//! A request that carried a session (a bearer token, a cookie) gets a login of its own: a
//! `[[before]]` step the dialect file describes (its login, or client-credentials grant, with
//! the generated user and client), whose answer's session is captured and presented on the
//! request as the dialect's clients present it (the recorded session itself was never stored).
//! Only what a fresh gateway can answer on its own is written: exchanges whose comparison was
//! an agreement or a user not yet synced (a divergence is, by definition, an answer credgate
//! would not give), that carry no token the upstream issued (a reset token, a refresh token:
//! a fresh gateway never issued it), and whose session the dialect can open.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;

use credgate_core::{Password, SecretToken};
use credgate_dialect::example::Example;
use credgate_dialect::route::{CompiledRoute, Source};
use credgate_dialect::upstream::{SessionScript, UpstreamAuth, Values};
use credgate_dialect::Dialect;
use credgate_server::shadow_exchange::{secret_marker, CLIENT, USER, USER_ID};
use serde::Deserialize;
use serde_json::Value;

/// The dialects by name, to open sessions and read field meanings.
pub type Dialects = BTreeMap<String, Arc<Dialect>>;

/// A stored comparison as `GET /admin/shadow/exchanges` returns it.
#[derive(Debug, Deserialize)]
pub struct Recorded {
    pub seq: i64,
    pub dialect: String,
    pub route: String,
    pub request_id: String,
    pub result: String,
    pub exchange: Option<Value>,
}

/// What was written and what was left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub files: Vec<String>,
    /// Carried a session the dialect describes no way to open.
    pub with_session: usize,
    pub diverging: usize,
    /// Carried a token the upstream issued (a reset or refresh token).
    pub with_issued_token: usize,
}

/// Why an exchange is left out.
enum Skip {
    Session,
    IssuedToken,
}

/// A value no one has seen: 16 hex digits from the process's random hasher keys.
fn fresh(n: i64) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(n);
    format!("{:016x}", h.finish())
}

/// The exchanges as example files under `dir`, at most `per_route` per (dialect, route,
/// status).
pub fn write(
    dir: &Path,
    records: &[Recorded],
    per_route: usize,
    dialects: &Dialects,
) -> Result<Written, String> {
    let mut written = Written::default();
    let mut counts: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    for r in records {
        let Some(x) = &r.exchange else { continue };
        if r.result == "divergence" {
            written.diverging += 1;
            continue;
        }
        let status = x["status"].as_u64().unwrap_or(0);
        let n = counts
            .entry((r.dialect.clone(), r.route.clone(), status))
            .or_default();
        if *n >= per_route {
            continue;
        }
        let text = match example(r, x, dialects.get(&r.dialect).map(Arc::as_ref))? {
            Ok(text) => text,
            Err(Skip::Session) => {
                written.with_session += 1;
                continue;
            }
            Err(Skip::IssuedToken) => {
                written.with_issued_token += 1;
                continue;
            }
        };
        *n += 1;
        Example::parse(&text).map_err(|e| format!("exchange {}: {e}", r.seq))?;
        let folder = dir.join(&r.dialect).join("examples");
        std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        let name = format!("shadow-{}-{status}-{}.toml", r.route, r.seq);
        let path = folder.join(&name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.files.push(format!("{}/examples/{name}", r.dialect));
    }
    Ok(written)
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are, the rest as %XX.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The secret fields named in a body: `__CG_SECRET_<field>__` markers.
fn secret_fields(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("__CG_SECRET_") {
        let after = &rest[i + "__CG_SECRET_".len()..];
        let Some(end) = after.find("__") else { break };
        let field = after[..end].to_owned();
        if !out.contains(&field) {
            out.push(field);
        }
        rest = &after[end..];
    }
    out
}

/// Canonical fields whose value a fresh gateway never issued.
const ISSUED: &[&str] = &["token", "code", "refresh_token", "answer"];

/// The canonical field a route reads from body or query field `name`, if the route is known.
fn canonical_of<'a>(route: Option<&'a CompiledRoute>, name: &str) -> Option<&'a str> {
    route?
        .fields
        .iter()
        .find(|(_, sources)| {
            sources
                .iter()
                .any(|s| matches!(s, Source::Body(n) | Source::Query(n) if n == name))
        })
        .map(|(canonical, _)| canonical.as_str())
}

/// A v4-shaped id no one has seen.
fn fresh_id(n: i64) -> String {
    let hex = format!("{}{}", fresh(n), fresh(n + 1));
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

/// The generated values of one exchange's secrets: the password the user holds (the one sent
/// as `password` or `current`, when the upstream accepted it), and the body with every secret
/// marker replaced (a confirmation gets the new password's value).
fn fill_secrets(
    r: &Recorded,
    body: &str,
    route: Option<&CompiledRoute>,
    encode: &dyn Fn(&str) -> String,
) -> Result<(String, Option<String>), Skip> {
    let mut body = body.to_owned();
    let mut by_canonical: BTreeMap<String, String> = BTreeMap::new();
    let mut password = None;
    for field in secret_fields(&body) {
        let canonical = canonical_of(route, &field);
        let issued = match canonical {
            Some(c) => ISSUED.contains(&c),
            None => ["token", "code", "otp"]
                .iter()
                .any(|w| field.to_ascii_lowercase().contains(w)),
        };
        if issued {
            return Err(Skip::IssuedToken);
        }
        let key = match canonical {
            Some("confirm") => "new".to_owned(),
            Some(c) => c.to_owned(),
            None => field.clone(),
        };
        let value = by_canonical
            .entry(key)
            .or_insert_with(|| format!("Gen-{}-Qz7", fresh(r.seq)))
            .clone();
        let holds = match canonical {
            Some(c) => c == "password" || c == "current",
            None => field.to_ascii_lowercase().contains("password"),
        };
        if holds && password.is_none() {
            password = Some(value.clone());
        }
        body = body.replace(&secret_marker(&field), &encode(&value));
    }
    Ok((body, password))
}

fn example(
    r: &Recorded,
    x: &Value,
    dialect: Option<&Dialect>,
) -> Result<Result<String, Skip>, String> {
    let text = |k: &str| x[k].as_str().unwrap_or("").to_owned();
    let (content_type, status) = (text("content_type"), x["status"].as_u64().unwrap_or(0));
    let form = content_type.contains("x-www-form-urlencoded");
    let username = format!("shadow-user-{}@example.com", r.seq);
    let user_id = fresh_id(r.seq + 3);
    let encode = |v: &str| if form { form_encode(v) } else { v.to_owned() };
    let route = dialect.and_then(|d| d.routes.iter().find(|rt| rt.spec.name == r.route));
    let body = text("body")
        .replace(USER, &encode(&username))
        .replace(USER_ID, &encode(&user_id));
    let (body, password) = match fill_secrets(r, &body, route, &encode) {
        Ok(filled) => filled,
        Err(skip) => return Ok(Err(skip)),
    };
    let accepted = (200..300).contains(&status);
    // The user's password: the one sent, when the upstream accepted it; another one otherwise.
    let setup_password = match (&password, accepted) {
        (Some(p), true) => p.clone(),
        _ => format!("Gen-{}-Qz7", fresh(r.seq + 1)),
    };
    let mut out = String::new();
    let description = format!(
        "Recorded in shadow mode: {} {}, the legacy system answered {status} ({})",
        r.dialect, r.route, r.result
    );
    let _ = writeln!(out, "description = {}", quoted(&description));
    let source = format!(
        "credgate shadow examples: request {} (secrets generated, identities replaced, volatile values as wildcards)",
        r.request_id
    );
    let _ = writeln!(out, "source = {}\n", quoted(&source));
    let _ = writeln!(out, "[[setup.users]]\nusername = {}", quoted(&username));
    let _ = writeln!(out, "password = {}", quoted(&setup_password));
    let _ = writeln!(out, "id = {}\n", quoted(&user_id));
    let who = (username.as_str(), setup_password.as_str());
    let mut headers = match credentials(&mut out, r, x, dialect, route, who)? {
        Ok(headers) => headers,
        Err(skip) => return Ok(Err(skip)),
    };
    if !content_type.is_empty() {
        headers.insert("Content-Type".to_owned(), content_type.clone());
    }
    if let Some(accept) = x["accept"].as_str() {
        headers.insert("Accept".to_owned(), accept.to_owned());
    }
    let mut path = text("path")
        .replace(USER, &username)
        .replace(USER_ID, &user_id);
    let query = text("query")
        .replace(USER, &form_encode(&username))
        .replace(USER_ID, &form_encode(&user_id));
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let _ = writeln!(out, "[request]\nmethod = {}", quoted(&text("method")));
    let _ = writeln!(out, "path = {}", quoted(&path.replace(CLIENT, "")));
    let _ = writeln!(out, "headers = {}", inline(&headers));
    let _ = writeln!(out, "body = {}\n", quoted(&body));
    let _ = writeln!(out, "[response]\nstatus = {status}");
    if let Some(json) = x.get("response_json").filter(|j| !j.is_null()) {
        let json = json
            .to_string()
            .replace(USER_ID, &user_id)
            .replace(USER, &username);
        let _ = writeln!(out, "json = {}", quoted(&json));
    }
    Ok(Ok(out))
}

/// The setup clients and application keys an exchange needs, its login step when it carried
/// a session, and the request headers presenting them (`who`: the user's name and password).
fn credentials(
    out: &mut String,
    r: &Recorded,
    x: &Value,
    dialect: Option<&Dialect>,
    route: Option<&CompiledRoute>,
    (username, password): (&str, &str),
) -> Result<Result<BTreeMap<String, String>, Skip>, String> {
    let mut headers = BTreeMap::new();
    let client = (format!("shadow-client-{}", r.seq), fresh(r.seq + 2));
    let session = x["session"].as_bool().unwrap_or(true);
    let login_client = session && dialect.is_some_and(login_takes_client);
    if x["basic_client"].as_bool() == Some(true) || login_client {
        let _ = writeln!(out, "[[setup.clients]]\nclient_id = {}", quoted(&client.0));
        let _ = writeln!(out, "client_secret = {}\n", quoted(&client.1));
    }
    if x["basic_client"].as_bool() == Some(true) {
        let basic = base64(format!("{}:{}", client.0, client.1).as_bytes());
        headers.insert("Authorization".to_owned(), format!("Basic {basic}"));
    }
    let app_key = fresh(r.seq + 4);
    let app_header = dialect
        .and_then(|d| d.spec.auth.app_key.as_ref())
        .filter(|_| !route.is_some_and(|rt| rt.spec.no_app_key))
        .map(|a| a.header.clone());
    if let Some(header) = &app_header {
        let _ = writeln!(out, "[[setup.apps]]\nkey = {}\n", quoted(&app_key));
        headers.insert(header.clone(), app_key.clone());
    }
    if session {
        let auth = UpstreamAuth {
            client_id: Some(client.0.clone()),
            client_secret: Some(SecretToken::new(&client.1)),
            app_key: app_header.is_some().then(|| SecretToken::new(&app_key)),
        };
        let values = Values {
            username: Some(username.to_owned()),
            password: Some(Password::new(password)),
            ..Values::default()
        };
        let script = dialect.and_then(|d| d.session_script(&r.route, &values, &auth));
        let Some(Ok(script)) = script else {
            return Ok(Err(Skip::Session));
        };
        write_login(out, &script)?;
        headers.extend(script.present);
    }
    Ok(Ok(headers))
}

/// Whether the dialect's login (or client grant) authenticates a client too.
fn login_takes_client(dialect: &Dialect) -> bool {
    use credgate_dialect::upstream::UpstreamCommand;
    [UpstreamCommand::Login, UpstreamCommand::ClientToken]
        .iter()
        .filter_map(|op| dialect.upstream_route(*op))
        .any(|r| r.fields.contains_key("client_id"))
}

/// The login that opens the request's session, as a `[[before]]` step with its captures.
fn write_login(out: &mut String, script: &SessionScript) -> Result<(), String> {
    let login = &script.login;
    let body = String::from_utf8(login.body.clone()).map_err(|e| e.to_string())?;
    let headers: BTreeMap<String, String> = login.headers.iter().cloned().collect();
    let captures: Vec<String> = (script.captures.iter())
        .map(|(k, v)| format!("{k} = {}", quoted(v)))
        .collect();
    let _ = writeln!(out, "[[before]]\nmethod = {}", quoted(&login.method));
    let _ = writeln!(out, "path = {}", quoted(&login.url));
    let _ = writeln!(out, "headers = {}", inline(&headers));
    let _ = writeln!(out, "body = {}", quoted(&body));
    let _ = writeln!(out, "expect_status = {}", script.status);
    let _ = writeln!(out, "capture = {{ {} }}\n", captures.join(", "));
    Ok(())
}

fn inline(headers: &BTreeMap<String, String>) -> String {
    let pairs: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{} = {}", quoted(k), quoted(v)))
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crafter() -> Arc<Dialect> {
        let set = credgate_dialect::DialectSet::load(
            &credgate_dialect::DialectSource::embedded(),
            &credgate_dialect::LoadOptions::default(),
        )
        .unwrap();
        Arc::clone(set.get("crafter").unwrap())
    }

    #[test]
    fn a_cookie_session_is_opened_by_a_login_step_and_presented_with_its_csrf() {
        let r = Recorded {
            seq: 9,
            dialect: "crafter".into(),
            route: "change_password".into(),
            request_id: "req-9".into(),
            result: "agreement".into(),
            exchange: Some(json!({
                "method": "POST", "path": "/studio/api/1/services/api/1/user/change-password.json",
                "query": "", "content_type": "application/json", "accept": null,
                "basic_client": false, "session": true,
                "body": r#"{"current":"__CG_SECRET_current__","new":"__CG_SECRET_new__","username":"__CG_USER__"}"#,
                "status": 200, "response_content_type": "application/json",
                "response_json": {"message": "OK"},
            })),
        };
        let dialect = crafter();
        let Ok(text) = example(&r, r.exchange.as_ref().unwrap(), Some(&dialect)).unwrap() else {
            panic!("left out");
        };
        let parsed = Example::parse(&text).unwrap();
        let user = &parsed.setup.users[0];
        // The login uses the user's password, which is the change's current password.
        let login = &parsed.before[0];
        assert!(login.call.path.ends_with("/security/login.json"), "{text}");
        assert!(login.call.body.contains(&user.password), "{text}");
        assert_eq!(login.capture["cg_cookie_0"], "cookie:JSESSIONID");
        assert!(parsed
            .request
            .body
            .contains(&format!(r#""current":"{}""#, user.password)));
        let cookie = &parsed.request.headers["Cookie"];
        assert!(cookie.contains("JSESSIONID={{ cg_cookie_0 }}"), "{cookie}");
        // Double submit: the header equals the cookie's value.
        let xsrf = &parsed.request.headers["X-XSRF-TOKEN"];
        assert!(cookie.contains(&format!("XSRF-TOKEN={xsrf}")), "{cookie}");
        assert!(!text.contains("__CG_"), "{text}");
    }

    #[test]
    fn a_token_the_upstream_issued_cannot_be_replayed_and_is_left_out() {
        let r = Recorded {
            seq: 3,
            dialect: "crafter".into(),
            route: "set_password".into(),
            request_id: "req-3".into(),
            result: "not_synced".into(),
            exchange: Some(json!({
                "method": "POST", "path": "/studio/api/1/services/api/1/user/set-password.json",
                "query": "", "content_type": "application/json", "accept": null,
                "basic_client": false, "session": false,
                "body": r#"{"new":"__CG_SECRET_new__","token":"__CG_SECRET_token__"}"#,
                "status": 200, "response_content_type": "application/json",
                "response_json": {"message": "OK"},
            })),
        };
        let dialect = crafter();
        let left_out = example(&r, r.exchange.as_ref().unwrap(), Some(&dialect)).unwrap();
        assert!(matches!(left_out, Err(Skip::IssuedToken)));
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn one_generated_password_for_the_setup_and_the_request() {
        let r = Recorded {
            seq: 7,
            dialect: "crayon".into(),
            route: "token".into(),
            request_id: "req-1".into(),
            result: "agreement".into(),
            exchange: Some(json!({
                "method": "POST", "path": "/api/v1/connect/token", "query": "",
                "content_type": "application/x-www-form-urlencoded", "accept": null,
                "basic_client": true, "session": false,
                "body": "grant_type=password&username=__CG_USER__&password=__CG_SECRET_password__",
                "status": 200, "response_content_type": "application/json",
                "response_json": {"accessToken": "<string>", "tokenType": "Bearer"},
            })),
        };
        let Ok(text) = example(&r, r.exchange.as_ref().unwrap(), None).unwrap() else {
            panic!("left out");
        };
        let parsed = Example::parse(&text).unwrap();
        let user = &parsed.setup.users[0];
        assert!(parsed
            .request
            .body
            .contains(&format!("password={}", user.password)));
        assert!(parsed
            .request
            .body
            .contains("username=shadow-user-7%40example.com"));
        let client = &parsed.setup.clients[0];
        let basic = base64(format!("{}:{}", client.client_id, client.client_secret).as_bytes());
        assert_eq!(
            parsed.request.headers["Authorization"],
            format!("Basic {basic}")
        );
        assert!(!text.contains("__CG_"), "{text}");
    }
}
