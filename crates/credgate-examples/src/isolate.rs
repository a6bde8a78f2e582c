//! Isolating an example for a gateway that keeps its data: the examples were written for a
//! fresh gateway each (fixed usernames, ids, client ids and keys, passwords they change), so a
//! second replay against the same deployment would collide with the first. [`isolate`] gives
//! every identity the example's setup creates a prefix unique to this replay, everywhere it
//! occurs: the setup, paths, headers (inside HTTP Basic credentials too), bodies in JSON or
//! form encoding, and the expected answer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use credgate_dialect::example::{Example, HttpCall};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a form body leaves unencoded (RFC 3986 unreserved characters).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A prefix for replay number `run` (unique per invocation), example number `index`: only
/// characters every encoding leaves alone, so a prefixed identity encodes as prefix + encoding.
pub fn prefix(run: &str, index: usize) -> String {
    format!("rp{run}-{index}-")
}

/// A run id unlikely to repeat: the clock and the process id, in base 36.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut n = (nanos ^ (u128::from(std::process::id()) << 64)) % 36u128.pow(8);
    let mut out = String::new();
    for _ in 0..8 {
        let digit = u32::try_from(n % 36).unwrap_or_default();
        out.push(char::from_digit(digit, 36).unwrap_or('0'));
        n /= 36;
    }
    out
}

/// `example` with every identity its setup creates prefixed by `prefix`; an example without
/// setup comes back unchanged.
pub fn isolate(example: &Example, prefix: &str) -> Example {
    let rewrite = Rewrite::new(example, prefix);
    let mut out = example.clone();
    for user in &mut out.setup.users {
        user.username = format!("{prefix}{}", user.username);
        user.id = user.id.as_ref().map(|id| format!("{prefix}{id}"));
        for alias in user.aliases.values_mut() {
            *alias = format!("{prefix}{alias}");
        }
        for value in user.profile.values_mut() {
            *value = rewrite.text(value);
        }
    }
    for client in &mut out.setup.clients {
        client.client_id = format!("{prefix}{}", client.client_id);
    }
    for app in &mut out.setup.apps {
        app.key = format!("{prefix}{}", app.key);
    }
    let calls = std::iter::once(&mut out.request)
        .chain(out.before.iter_mut().map(|s| &mut s.call))
        .chain(out.after.iter_mut().map(|s| &mut s.call));
    for call in calls {
        rewrite.call(call);
    }
    let expected = &mut out.response;
    for value in expected.headers.values_mut() {
        *value = rewrite.text(value);
    }
    expected.body = expected.body.as_deref().map(|b| rewrite.text(b));
    expected.json = expected.json.as_deref().map(|b| rewrite.text(b));
    out
}

/// (needle, replacement) pairs, longest needle first so `jane.doe` wins over `jane`.
struct Rewrite {
    pairs: Vec<(String, String)>,
}

impl Rewrite {
    fn new(example: &Example, prefix: &str) -> Self {
        let s = &example.setup;
        let identities = s
            .users
            .iter()
            .flat_map(|u| {
                std::iter::once(u.username.clone())
                    .chain(u.id.clone())
                    .chain(u.aliases.values().cloned())
            })
            .chain(s.clients.iter().map(|c| c.client_id.clone()))
            .chain(s.apps.iter().map(|a| a.key.clone()));
        let mut pairs = Vec::new();
        for id in identities.filter(|i| !i.is_empty()) {
            let form = utf8_percent_encode(&id, FORM).to_string();
            let json = serde_json::to_string(&id).unwrap_or_default();
            let json = json.trim_matches('"').to_owned();
            for needle in [id.clone(), form, json] {
                if !pairs.iter().any(|(n, _)| *n == needle) {
                    pairs.push((needle.clone(), format!("{prefix}{needle}")));
                }
            }
        }
        pairs.sort_by_key(|(needle, _)| std::cmp::Reverse(needle.len()));
        Self { pairs }
    }

    fn call(&self, call: &mut HttpCall) {
        call.path = self.text(&call.path);
        call.body = self.text(&call.body);
        for (name, value) in call.headers.iter_mut() {
            *value = if name.eq_ignore_ascii_case("authorization") {
                self.authorization(value)
            } else {
                self.text(value)
            };
        }
    }

    /// HTTP Basic credentials are rewritten inside their base64; other schemes as text.
    fn authorization(&self, value: &str) -> String {
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return self.text(value);
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return self.text(value);
        }
        match BASE64
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(plain) => format!("{scheme} {}", BASE64.encode(self.text(&plain))),
            None => value.to_owned(),
        }
    }

    /// Replaces whole identities only: a needle counts where it is not part of a longer name
    /// (no letter, digit, `_`, `.` or `-` right before or after it), so the id `1842` is left
    /// alone inside `118420` and `jane` inside `jane.doe`.
    fn text(&self, input: &str) -> String {
        let bytes = input.as_bytes();
        let mut out = String::with_capacity(input.len());
        let mut i = 0;
        while i < input.len() {
            let at_boundary = i == 0 || !is_name_byte(bytes[i - 1]);
            let hit = at_boundary
                .then(|| {
                    self.pairs.iter().find(|(needle, _)| {
                        input[i..].starts_with(needle.as_str())
                            && bytes
                                .get(i + needle.len())
                                .is_none_or(|b| !is_name_byte(*b))
                    })
                })
                .flatten();
            match hit {
                Some((needle, replacement)) => {
                    out.push_str(replacement);
                    i += needle.len();
                }
                None => {
                    let ch = input[i..].chars().next().unwrap_or_default();
                    out.push(ch);
                    i += ch.len_utf8().max(1);
                }
            }
        }
        out
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
description = "d"
[[setup.users]]
username = "john.smith@example.com"
password = "Oldpassword#2019"
id = "1842"
profile = { email = "john.smith@example.com" }
[[setup.clients]]
client_id = "partner-app"
client_secret = "s3cret"
[request]
method = "POST"
path = "/users/1842/x?v=118420"
headers = { Authorization = "Basic cGFydG5lci1hcHA6czNjcmV0" }
body = "username=john.smith%40example.com&id=1842&other=kabbage-partner-app"
[response]
status = 200
body = "1842"
json = '{"userName": "john.smith@example.com"}'
"#;

    #[test]
    fn prefixes_identities_in_every_encoding_and_nothing_else() {
        let e = Example::parse(EXAMPLE).unwrap();
        let out = isolate(&e, "rpX-1-");
        assert_eq!(out.setup.users[0].username, "rpX-1-john.smith@example.com");
        assert_eq!(out.setup.users[0].id.as_deref(), Some("rpX-1-1842"));
        assert_eq!(out.setup.users[0].password, "Oldpassword#2019");
        assert_eq!(
            out.setup.users[0].profile["email"],
            "rpX-1-john.smith@example.com"
        );
        assert_eq!(out.setup.clients[0].client_id, "rpX-1-partner-app");
        assert_eq!(out.request.path, "/users/rpX-1-1842/x?v=118420");
        assert_eq!(
            out.request.body,
            "username=rpX-1-john.smith%40example.com&id=rpX-1-1842&other=kabbage-partner-app"
        );
        let basic = &out.request.headers["Authorization"];
        let plain = BASE64.decode(basic.trim_start_matches("Basic ")).unwrap();
        assert_eq!(plain, b"rpX-1-partner-app:s3cret");
        assert_eq!(out.response.body.as_deref(), Some("rpX-1-1842"));
        assert_eq!(
            out.response.json.as_deref(),
            Some(r#"{"userName": "rpX-1-john.smith@example.com"}"#)
        );
    }

    #[test]
    fn run_ids_are_short_and_safe() {
        let id = run_id();
        assert_eq!(id.len(), 8);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
