//! The typed spec of a dialect file, with every unknown key reported at once. serde's
//! `deny_unknown_fields` stops at the first unknown key; an operator linting a new dialect wants
//! them all. So the file is read as a TOML value and deserialized again after each unknown key
//! is taken out: serde names each key and the keys it expected, and the parser's spans give its
//! line. No part of the dialect schema is written here.

use serde_path_to_error::Segment;

use crate::spans::{Spans, Step};
use crate::spec::DialectSpec;

/// One problem of a file: where (a path into it, or a byte offset) and what.
pub(crate) enum Found {
    At(Vec<Step>, String),
    Offset(Option<usize>, String),
}

/// The spec of `text`, or `None` when it cannot be read; every problem found goes to `found`.
pub(crate) fn parse_spec(text: &str, spans: &Spans, found: &mut Vec<Found>) -> Option<DialectSpec> {
    let error = match toml::from_str::<DialectSpec>(text) {
        Ok(spec) => return Some(spec),
        Err(e) => e,
    };
    let Ok(mut value) = toml::from_str::<toml::Value>(text) else {
        found.push(Found::Offset(
            error.span().map(|s| s.start),
            error.message().to_owned(),
        ));
        return None;
    };
    loop {
        let err = match serde_path_to_error::deserialize::<_, DialectSpec>(value.clone()) {
            Ok(spec) => return Some(spec),
            Err(e) => e,
        };
        let mut path = steps(err.path());
        let message = err.inner().message().to_owned();
        let Some((key, expected)) = unknown_field(&message) else {
            found.push(Found::At(path, message));
            return None;
        };
        if path.last() == Some(&Step::Key(key.clone())) {
            path.pop();
        }
        let place = match spans.label(&path) {
            l if l.is_empty() => "at the top level".to_owned(),
            l => format!("in `{l}`"),
        };
        let removed = remove(&mut value, &path, &key);
        path.push(Step::Key(key.clone()));
        found.push(Found::At(
            path,
            format!("unknown key `{key}` {place} (expected one of: {expected})"),
        ));
        if !removed {
            return None;
        }
    }
}

/// serde's "unknown field `k`, expected one of `a`, `b`" as (`k`, "a, b").
fn unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    Some((key.to_owned(), expected.join(", ")))
}

fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Takes `key` out of the table at `path`; false when there is no such table.
fn remove(root: &mut toml::Value, path: &[Step], key: &str) -> bool {
    let mut at = root;
    for step in path {
        let next = match (step, at) {
            (Step::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Step::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    match at {
        toml::Value::Table(t) => t.remove(key).is_some(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_with_its_line_and_place() {
        let text = "name = \"x\"\nbogus = 1\n[[routes]]\nname = \"r\"\nmethd = \"GET\"\nmethod = \"GET\"\npath = \"/\"\ncommand = \"login\"\nok = { status = 200, stauts = 1 }\n[errors]\ninternal = { status = 500, boddy = \"\" }\n";
        let spans = Spans::new(text);
        let mut found = Vec::new();
        let spec = parse_spec(text, &spans, &mut found).unwrap();
        assert_eq!(spec.routes[0].method, "GET");
        let mut got: Vec<(usize, String)> = found
            .iter()
            .map(|f| match f {
                Found::At(path, m) => (spans.line(path).unwrap(), m.clone()),
                Found::Offset(..) => panic!("no offsets here"),
            })
            .collect();
        got.sort();
        let starts = [
            (
                2,
                "unknown key `bogus` at the top level (expected one of: name, ",
            ),
            (
                5,
                "unknown key `methd` in `routes.r` (expected one of: name, method, ",
            ),
            (
                9,
                "unknown key `stauts` in `routes.r.ok` (expected one of: status, ",
            ),
            (
                11,
                "unknown key `boddy` in `errors.internal` (expected one of: status, ",
            ),
        ];
        assert_eq!(got.len(), starts.len(), "{got:#?}");
        for ((line, message), (want_line, want)) in got.iter().zip(starts) {
            assert_eq!(*line, want_line, "{message}");
            assert!(message.starts_with(want), "{message}");
        }
    }

    #[test]
    fn a_wrong_type_is_reported_at_its_key() {
        let text =
            "name = \"x\"\nroutes = []\n[errors]\ninternal = { status = \"five hundred\" }\n";
        let spans = Spans::new(text);
        let mut found = Vec::new();
        assert!(parse_spec(text, &spans, &mut found).is_none());
        match &found[..] {
            [Found::At(path, m)] => {
                assert_eq!(spans.line(path), Some(4), "{m}");
                assert!(m.contains("invalid type"), "{m}");
            }
            _ => panic!("one problem expected"),
        }
    }
}
