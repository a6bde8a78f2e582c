//! Vendor examples (`dialects/<name>/examples/*.toml`): one each, with what
//! must exist first, the request exactly as the vendor documents it, the expected answer, and
//! follow-up checks. The same files drive the test suite and replays against a deployment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub description: String,
    /// Where the example comes from (seed page, vendor notes) or why it was inferred.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub setup: Setup,
    /// Requests that prepare the example (log in, take a token), with captures.
    #[serde(default)]
    pub before: Vec<Step>,
    pub request: HttpCall,
    pub response: Expected,
    /// Checks after the request (the new password logs in, the old one does not).
    #[serde(default)]
    pub after: Vec<Step>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub users: Vec<SetupUser>,
    #[serde(default)]
    pub clients: Vec<SetupClient>,
    #[serde(default)]
    pub apps: Vec<SetupApp>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetupUser {
    pub username: String,
    pub password: String,
    pub id: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub externally_managed: bool,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub profile: BTreeMap<String, String>,
    /// Two-factor login from the start (`code` or `totp`), as the admin API takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetupClient {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetupApp {
    pub key: String,
}

/// An HTTP request; `path`, header values and `body` are templates over the captures.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(flatten)]
    pub call: HttpCall,
    pub expect_status: Option<u16>,
    /// Name -> where to read it: `json:/pointer`, `cookie:NAME` (from Set-Cookie),
    /// `header:NAME`, or `body`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub status: u16,
    /// Only the headers named here are compared, exactly (names ignore case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, compared byte for byte.
    pub body: Option<String>,
    /// The body as JSON, compared structurally; the strings `<string>`, `<number>` and `<any>`
    /// match any value of that kind.
    pub json: Option<String>,
}

impl Example {
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Every example of every dialect folder below `dir`, sorted: (dialect, file, example).
pub fn load_dir(dir: &Path) -> Result<Vec<(String, PathBuf, Example)>, String> {
    let mut out = Vec::new();
    let mut dialects: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("examples").is_dir())
        .collect();
    dialects.sort();
    for d in dialects {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(d.join("examples"))
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let example = Example::parse(&text).map_err(|e| format!("{}: {e}", f.display()))?;
            out.push((name.clone(), f, example));
        }
    }
    Ok(out)
}

/// Compares `actual` to `expected` with wildcards; returns the JSON pointer of each difference.
pub fn json_diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    diff_at("", expected, actual, &mut diffs);
    diffs
}

fn diff_at(at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::String(w), _) if w == "<any>" => {}
        (Value::String(w), Value::String(_)) if w == "<string>" => {}
        (Value::String(w), Value::Number(_)) if w == "<number>" => {}
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff_at(&format!("{at}/{k}"), ev, av, out),
                    None => out.push(format!("{at}/{k}: missing (expected {ev})")),
                }
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{at}/{k}: unexpected field"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff_at(&format!("{at}/{i}"), ev, av, out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!(
            "{}: expected {expected}, got {actual}",
            if at.is_empty() { "/" } else { at }
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_and_pointers() {
        let e = json!({"a": "<string>", "b": {"c": 1}, "d": "<number>"});
        assert!(json_diff(&e, &json!({"a": "x", "b": {"c": 1}, "d": 5})).is_empty());
        assert_eq!(
            json_diff(&e, &json!({"a": "x", "b": {"c": 2}, "d": 5})),
            vec!["/b/c: expected 1, got 2"]
        );
        assert_eq!(
            json_diff(&json!(true), &json!(false)),
            vec!["/: expected true, got false"]
        );
    }
}
