//! Strict body parsing: a JSON object with no repeated keys, or a form with no repeated fields.

use std::fmt;

use credgate_core::Error;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A top-level JSON object. Repeated keys are refused: which one a vendor's binder would take
/// differs, and an attacker could exploit the difference.
pub fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::MalformedRequest("body is not UTF-8".into()))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let map = de.deserialize_any(ObjectVisitor).map_err(|e| {
        Error::MalformedRequest(format!(
            "body is not a JSON object: {}",
            e.classify_message()
        ))
    })?;
    de.end()
        .map_err(|_| Error::MalformedRequest("trailing characters after the JSON body".into()))?;
    Ok(map)
}

trait Classify {
    fn classify_message(&self) -> String;
}

impl Classify for serde_json::Error {
    /// Line and column only: the message must not echo body content (it may hold a password).
    fn classify_message(&self) -> String {
        format!(
            "invalid JSON at line {} column {}",
            self.line(),
            self.column()
        )
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(serde::de::Error::custom("duplicate key"));
            }
        }
        Ok(map)
    }
}

pub fn parse_form(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
        .map_err(|_| Error::MalformedRequest("body is not a valid form".into()))?;
    let mut map = Map::new();
    for (k, v) in pairs {
        if map.insert(k, Value::String(v)).is_some() {
            return Err(Error::MalformedRequest("a form field is repeated".into()));
        }
    }
    Ok(map)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strict_json() {
        assert!(parse_json_object(br#"{"a":"1","b":2}"#).is_ok());
        assert!(parse_json_object(br#"{"a":"1","a":"2"}"#).is_err());
        assert!(parse_json_object(br#"["a"]"#).is_err());
        assert!(parse_json_object(br#"{"a":"1"} x"#).is_err());
        assert!(parse_json_object(b"{\"a\":\"\xff\"}").is_err());
        let deep = "[".repeat(10_000);
        assert!(parse_json_object(format!("{{\"a\":{deep}}}").as_bytes()).is_err());
        let err = parse_json_object(br#"{"password":"hunter2""#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn strict_form() {
        assert_eq!(parse_form(b"a=1&b=x+y").unwrap()["b"], "x y");
        assert!(parse_form(b"a=1&a=2").is_err());
    }
}
