//! Where each key of a TOML file sits, as the parser reports it. Built from the text alone (no
//! schema), so a problem found anywhere in a dialect file is reported at the line of the key it
//! concerns, looked up by its path (`routes`, 2, `ok`), never by searching the text.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// One step of a path into a TOML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

impl From<&str> for Step {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

impl From<usize> for Step {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// `[Step::from("routes"), Step::from(2), Step::from("ok")]`, written `key_path!["routes", 2, "ok"]`.
macro_rules! key_path {
    ($($step:expr),* $(,)?) => { [$($crate::spans::Step::from($step)),*] };
}
pub(crate) use key_path;

/// The keys of a document with their byte offsets.
#[derive(Debug)]
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Node>),
    Text(String),
    Other,
}

/// The span index of one file: lines of keys by path, and readable names for paths.
#[derive(Debug)]
pub(crate) struct Spans<'a> {
    text: &'a str,
    root: Option<Node>,
}

impl<'a> Spans<'a> {
    /// The index of `text`; empty (every lookup `None`) when `text` is not TOML.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            root: toml::from_str::<Node>(text).ok(),
        }
    }

    /// The 1-based line of the key at `path`, or of its nearest ancestor that is in the file
    /// (an array item has no key of its own: its first key stands for it).
    pub fn line(&self, path: &[Step]) -> Option<usize> {
        let mut node = self.root.as_ref()?;
        let mut offset = None;
        for step in path {
            match (step, node) {
                (Step::Key(k), Node::Table(entries)) => {
                    let Some((key, value)) = entries.iter().find(|(key, _)| key.get_ref() == k)
                    else {
                        break;
                    };
                    offset = Some(key.span().start);
                    node = value;
                }
                (Step::Index(i), Node::Array(items)) => {
                    let Some(item) = items.get(*i) else {
                        break;
                    };
                    node = item;
                    if let Node::Table(entries) = node {
                        offset = entries.iter().map(|(k, _)| k.span().start).min().or(offset);
                    }
                }
                _ => break,
            }
        }
        offset.map(|o| self.line_at(o))
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// `path` for a message: keys joined by dots, an array item named by its `name` key
    /// (`routes.change_password.ok`) or else by its index.
    pub fn label(&self, path: &[Step]) -> String {
        let mut node = self.root.as_ref();
        let mut parts = Vec::new();
        for step in path {
            let (part, next) = match (step, node) {
                (Step::Key(k), Some(Node::Table(entries))) => (
                    k.clone(),
                    entries
                        .iter()
                        .find(|(key, _)| key.get_ref() == k)
                        .map(|(_, v)| v),
                ),
                (Step::Key(k), _) => (k.clone(), None),
                (Step::Index(i), Some(Node::Array(items))) => {
                    let item = items.get(*i);
                    (
                        item.and_then(Node::name).unwrap_or_else(|| i.to_string()),
                        item,
                    )
                }
                (Step::Index(i), _) => (i.to_string(), None),
            };
            parts.push(part);
            node = next;
        }
        parts.join(".")
    }
}

impl Node {
    /// The `name = "..."` of a table.
    fn name(&self) -> Option<String> {
        let Node::Table(entries) = self else {
            return None;
        };
        entries.iter().find_map(|(k, v)| match v {
            Node::Text(t) if k.get_ref() == "name" => Some(t.clone()),
            _ => None,
        })
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[[routes]]\nname = \"change\"\n# name = \"other\"\nok = { status = 200 }\n[[routes]]\nname = \"other\"\nok = { status = 204 }\n";

    #[test]
    fn lines_come_from_the_parser_not_from_a_text_search() {
        let spans = Spans::new(TEXT);
        assert_eq!(spans.line(&key_path!["name"]), Some(1));
        assert_eq!(spans.line(&key_path!["routes", 0, "ok"]), Some(5));
        // The comment on line 4 mentions `name = "other"`; the key is on line 7.
        assert_eq!(spans.line(&key_path!["routes", 1, "name"]), Some(7));
        assert_eq!(spans.line(&key_path!["routes", 1]), Some(7));
        assert_eq!(spans.line(&key_path!["routes", 1, "ok", "body"]), Some(8));
        assert_eq!(
            spans.label(&key_path!["routes", 1, "ok"]),
            "routes.other.ok"
        );
        assert_eq!(Spans::new("not toml =").line(&key_path!["name"]), None);
    }
}
