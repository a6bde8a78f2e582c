//! Every unknown key of a dialect file at once, each with its line. The typed parse (serde's
//! `deny_unknown_fields`) stops at the first one; an operator linting a new dialect wants them
//! all. The key lists mirror `spec.rs` and a test keeps them equal to serde's own lists.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// The keys a table may hold.
#[derive(Debug)]
pub(crate) enum Shape {
    /// These keys only, each with the shape of its value.
    Struct(&'static [(&'static str, Shape)]),
    /// Any key, every value of this shape.
    Map(&'static Shape),
    ArrayOf(&'static Shape),
    /// Not checked here (scalars, free-form tables).
    Any,
}

use Shape::{Any, ArrayOf, Map, Struct};

pub(crate) const COOKIE: Shape = Struct(&[
    ("name", Any),
    ("value", Any),
    ("path", Any),
    ("http_only", Any),
    ("secure", Any),
    ("max_age", Any),
]);
pub(crate) const RESPONSE: Shape = Struct(&[
    ("status", Any),
    ("content_type", Any),
    ("body", Any),
    ("headers", Any),
    ("cookies", ArrayOf(&COOKIE)),
    ("clear_cookies", Any),
]);
pub(crate) const SUBJECT: Shape = Struct(&[("id", Any), ("username", Any), ("me", Any)]);
pub(crate) const ROUTE: Shape = Struct(&[
    ("name", Any),
    ("method", Any),
    ("path", Any),
    ("trailing_slash", Any),
    ("command", Any),
    ("token", Any),
    ("body", Any),
    ("content_types", Any),
    ("subject", SUBJECT),
    ("fields", Any),
    ("required", Any),
    ("grants", Any),
    ("client_auth", Any),
    ("refresh", Any),
    ("no_app_key", Any),
    ("subject_check", Any),
    ("constants", Any),
    ("ok", RESPONSE),
    ("errors", Map(&RESPONSE)),
    ("notes", Any),
]);
pub(crate) const CSRF: Shape = Struct(&[
    ("style", Any),
    ("cookie", Any),
    ("header", Any),
    ("methods", Any),
    ("pattern", Any),
    ("enabled", Any),
]);
pub(crate) const APP_KEY: Shape = Struct(&[("header", Any)]);
pub(crate) const AUTH: Shape = Struct(&[
    ("scheme", Any),
    ("cookie", Any),
    ("token_pattern", Any),
    ("csrf", CSRF),
    ("app_key", APP_KEY),
]);
pub(crate) const DIALECT: Shape = Struct(&[
    ("name", Any),
    ("description", Any),
    ("base", Any),
    ("content_type", Any),
    ("case_insensitive_fields", Any),
    ("vars", Any),
    ("auth", AUTH),
    ("routes", ArrayOf(&ROUTE)),
    ("errors", Map(&RESPONSE)),
]);

/// A parsed TOML value that remembers where each key was written.
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Node>),
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a TOML value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Other)
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Text(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Node::Table(entries))
    }
}

/// One key the dialect format does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey {
    /// Byte offset of the key in the file.
    pub offset: usize,
    /// Where it sits, for the message (`routes.change_password.ok`).
    pub context: String,
    pub key: String,
    pub expected: Vec<&'static str>,
    /// The path of table keys and array indexes leading to it, for removing it.
    pub path: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

impl UnknownKey {
    pub fn message(&self) -> String {
        let place = if self.context.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in `{}`", self.context)
        };
        format!(
            "unknown key `{}` {place} (expected one of: {})",
            self.key,
            self.expected.join(", ")
        )
    }
}

/// Every unknown key of a dialect file, in file order; empty also when the text is not TOML
/// (the parse error is reported instead).
pub(crate) fn unknown_keys(text: &str) -> Vec<UnknownKey> {
    let Ok(root) = toml::from_str::<Node>(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    walk(&root, &DIALECT, "", &mut Vec::new(), &mut found);
    found.sort_by_key(|u| u.offset);
    found
}

fn walk(
    node: &Node,
    shape: &Shape,
    context: &str,
    path: &mut Vec<Step>,
    found: &mut Vec<UnknownKey>,
) {
    let join = |c: &str, k: &str| {
        if c.is_empty() {
            k.to_owned()
        } else {
            format!("{c}.{k}")
        }
    };
    match (node, shape) {
        (Node::Table(entries), Struct(keys)) => {
            for (key, value) in entries {
                path.push(Step::Key(key.get_ref().clone()));
                match keys.iter().find(|(k, _)| k == key.get_ref()) {
                    Some((_, inner)) => {
                        walk(value, inner, &join(context, key.get_ref()), path, found)
                    }
                    None => found.push(UnknownKey {
                        offset: key.span().start,
                        context: context.to_owned(),
                        key: key.get_ref().clone(),
                        expected: keys.iter().map(|(k, _)| *k).collect(),
                        path: path.clone(),
                    }),
                }
                path.pop();
            }
        }
        (Node::Table(entries), Map(inner)) => {
            for (key, value) in entries {
                path.push(Step::Key(key.get_ref().clone()));
                walk(value, inner, &join(context, key.get_ref()), path, found);
                path.pop();
            }
        }
        (Node::Array(items), ArrayOf(inner)) => {
            for (i, item) in items.iter().enumerate() {
                // A route is easier to find by its name than by its position.
                let label = match item {
                    Node::Table(entries) => entries
                        .iter()
                        .find(|(k, _)| k.get_ref() == "name")
                        .and_then(|(_, v)| match v {
                            Node::Text(t) => Some(t.clone()),
                            _ => None,
                        })
                        .unwrap_or_else(|| i.to_string()),
                    _ => i.to_string(),
                };
                path.push(Step::Index(i));
                walk(item, inner, &join(context, &label), path, found);
                path.pop();
            }
        }
        // A wrong type is the typed parse's to report.
        _ => {}
    }
}

/// `text` parsed as a table, with the given keys removed.
pub(crate) fn strip(text: &str, unknown: &[UnknownKey]) -> Option<toml::Table> {
    let mut root = toml::Value::Table(toml::from_str::<toml::Table>(text).ok()?);
    for u in unknown {
        let Some((Step::Key(last), parents)) = u.path.split_last() else {
            continue;
        };
        let mut at = &mut root;
        for step in parents {
            at = match (step, at) {
                (Step::Key(k), toml::Value::Table(t)) => t.get_mut(k)?,
                (Step::Index(i), toml::Value::Array(a)) => a.get_mut(*i)?,
                _ => return None,
            };
        }
        if let toml::Value::Table(t) = at {
            t.remove(last);
        }
    }
    match root {
        toml::Value::Table(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spec::{AppKeySpec, AuthSpec, CookieSpec, CsrfSpec, ResponseSpec, RouteSpec};
    use crate::spec::{DialectSpec, SubjectSpec};

    /// The field names serde lists when it refuses an unknown key of `T`.
    fn serde_fields<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
        let err = toml::from_str::<T>("zzz_not_a_key = 1").unwrap_err();
        let msg = err.message().to_owned();
        let expected = msg.split_once("expected").unwrap().1;
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    fn names(shape: &Shape) -> Vec<String> {
        match shape {
            Struct(keys) => keys.iter().map(|(k, _)| (*k).to_owned()).collect(),
            _ => panic!("not a struct shape"),
        }
    }

    #[test]
    fn key_lists_match_the_typed_spec() {
        let mut pairs = vec![
            (names(&DIALECT), serde_fields::<DialectSpec>()),
            (names(&AUTH), serde_fields::<AuthSpec>()),
            (names(&CSRF), serde_fields::<CsrfSpec>()),
            (names(&APP_KEY), serde_fields::<AppKeySpec>()),
            (names(&ROUTE), serde_fields::<RouteSpec>()),
            (names(&SUBJECT), serde_fields::<SubjectSpec>()),
            (names(&RESPONSE), serde_fields::<ResponseSpec>()),
            (names(&COOKIE), serde_fields::<CookieSpec>()),
        ];
        for (ours, serdes) in &mut pairs {
            ours.sort();
            serdes.sort();
            assert_eq!(ours, serdes, "keys.rs is out of step with spec.rs");
        }
    }

    #[test]
    fn finds_every_unknown_key_with_its_place() {
        let text = "name = \"x\"\nbogus = 1\n[[routes]]\nname = \"r\"\nmethd = \"GET\"\nok = { status = 200, stauts = 1 }\n[errors]\ninternal = { status = 500, boddy = \"\" }\n";
        let found = unknown_keys(text);
        let got: Vec<(usize, &str, &str)> = found
            .iter()
            .map(|u| {
                let line = text[..u.offset].matches('\n').count() + 1;
                (line, u.key.as_str(), u.context.as_str())
            })
            .collect();
        assert_eq!(
            got,
            [
                (2, "bogus", ""),
                (5, "methd", "routes.r"),
                (6, "stauts", "routes.r.ok"),
                (8, "boddy", "errors.internal"),
            ]
        );
        let table = strip(text, &found).unwrap();
        assert!(!table.contains_key("bogus"));
        let route = &table["routes"].as_array().unwrap()[0];
        assert!(route.get("methd").is_none() && route.get("name").is_some());
    }
}
