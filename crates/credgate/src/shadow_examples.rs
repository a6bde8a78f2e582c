//! `credgate shadow examples DIR`: recorded shadow exchanges written as dialect example files
//! (`DIR/<dialect>/examples/shadow-*.toml`) that `credgate replay --examples DIR` runs against a
//! fresh gateway. The exchanges were stored with their secrets already replaced by markers
//! ([`credgate_server::shadow_exchange`]); here each marker gets one generated value, used alike
//! in the setup, the request and the expected answer. The user becomes a generated identity
//! (replay prefixes it per run, as for every example), a Basic client a generated client.
//! Only what a fresh gateway can answer on its own is written: exchanges that carried no
//! session (a bearer token or cookie would need a login step the recording does not hold), and
//! whose comparison was an agreement or a user not yet synced (a divergence is, by definition,
//! an answer credgate would not give).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use credgate_dialect::example::Example;
use credgate_server::shadow_exchange::{secret_marker, CLIENT, USER};
use serde::Deserialize;
use serde_json::Value;

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
    pub with_session: usize,
    pub diverging: usize,
}

/// A value no one has seen: 16 hex digits from the process's random hasher keys.
fn fresh(n: i64) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(n);
    format!("{:016x}", h.finish())
}

/// The exchanges as example files under `dir`, at most `per_route` per (dialect, route,
/// status).
pub fn write(dir: &Path, records: &[Recorded], per_route: usize) -> Result<Written, String> {
    let mut written = Written::default();
    let mut counts: BTreeMap<(String, String, u64), usize> = BTreeMap::new();
    for r in records {
        let Some(x) = &r.exchange else { continue };
        if x["session"].as_bool().unwrap_or(true) {
            written.with_session += 1;
            continue;
        }
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
        *n += 1;
        let text = example(r, x)?;
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

fn example(r: &Recorded, x: &Value) -> Result<String, String> {
    let text = |k: &str| x[k].as_str().unwrap_or("").to_owned();
    let (content_type, status) = (text("content_type"), x["status"].as_u64().unwrap_or(0));
    let form = content_type.contains("x-www-form-urlencoded");
    let username = format!("shadow-user-{}@example.com", r.seq);
    let encode = |v: &str| if form { form_encode(v) } else { v.to_owned() };
    let mut body = text("body").replace(USER, &encode(&username));
    let mut password = None;
    for field in secret_fields(&body) {
        let value = format!("Gen-{}-Qz7", fresh(r.seq));
        if field.to_ascii_lowercase().contains("password") && password.is_none() {
            password = Some(value.clone());
        }
        body = body.replace(&secret_marker(&field), &encode(&value));
    }
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
    let _ = writeln!(out, "password = {}\n", quoted(&setup_password));
    let mut headers = BTreeMap::new();
    if x["basic_client"].as_bool() == Some(true) {
        let (id, secret) = (format!("shadow-client-{}", r.seq), fresh(r.seq + 2));
        let _ = writeln!(out, "[[setup.clients]]\nclient_id = {}", quoted(&id));
        let _ = writeln!(out, "client_secret = {}\n", quoted(&secret));
        let basic = base64(format!("{id}:{secret}").as_bytes());
        headers.insert("Authorization", format!("Basic {basic}"));
    }
    if !content_type.is_empty() {
        headers.insert("Content-Type", content_type.clone());
    }
    if let Some(accept) = x["accept"].as_str() {
        headers.insert("Accept", accept.to_owned());
    }
    let mut path = text("path").replace(USER, &username);
    let query = text("query").replace(USER, &form_encode(&username));
    if !query.is_empty() {
        path = format!("{path}?{query}");
    }
    let _ = writeln!(out, "[request]\nmethod = {}", quoted(&text("method")));
    let _ = writeln!(out, "path = {}", quoted(&path.replace(CLIENT, "")));
    let _ = writeln!(out, "headers = {}", inline(&headers));
    let _ = writeln!(out, "body = {}\n", quoted(&body));
    let _ = writeln!(out, "[response]\nstatus = {status}");
    if let Some(json) = x.get("response_json").filter(|j| !j.is_null()) {
        let json = json.to_string().replace(USER, &username);
        let _ = writeln!(out, "json = {}", quoted(&json));
    }
    Ok(out)
}

fn inline(headers: &BTreeMap<&str, String>) -> String {
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
        let text = example(&r, r.exchange.as_ref().unwrap()).unwrap();
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
