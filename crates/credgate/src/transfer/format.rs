//! The import/export file formats: CSV with a header row, and JSON Lines. Both carry the same
//! fields; in CSV, aliases and profile are `key=value` pairs separated by `;` (a `\` escapes
//! `;`, `=` and `\` inside a key or value).
//!
//! CSV cells a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or
//! a carriage return) are written with a `'` before them (OWASP, CSV injection), and read back
//! without it. So that this is unambiguous, a cell of `'`s followed by such a character gets
//! one more `'` too: import strips exactly one `'` from a cell of one or more `'`s followed by
//! such a character, and nothing from any other cell.

use std::collections::BTreeMap;
use std::path::Path;

use credgate_core::import::{ImportRow, ImportSecret};
use credgate_core::model::NewUser;
use credgate_core::Password;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
    /// Auth0's bulk user import file (a JSON array); import only, never from the extension.
    Auth0,
}

impl Format {
    /// `.csv` is CSV; `.jsonl`, `.ndjson` and `.json` are JSON Lines.
    pub fn for_path(path: &Path) -> Result<Self, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Self::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Self::Jsonl),
            _ => Err(format!(
                "cannot tell the format of {} from its extension: pass --format csv or --format jsonl",
                path.display()
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Auth0 => "auth0",
        }
    }
}

/// The columns (CSV) and keys (JSON Lines) of a row.
pub const FIELDS: [&str; 9] = [
    "username",
    "id",
    "password_hash",
    "password",
    "admin",
    "externally_managed",
    "aliases",
    "profile",
    "password_hash_format",
];

/// The columns an export writes: every field but `password`.
pub const EXPORT_FIELDS: [&str; 7] = [
    "username",
    "id",
    "password_hash",
    "admin",
    "externally_managed",
    "aliases",
    "profile",
];

/// Bounds of an imported row, each reported by line.
pub const MAX_NAME_BYTES: usize = 256;
pub const MAX_PROFILE_VALUE_BYTES: usize = 4 * 1024;
pub const MAX_PROFILE_KEYS: usize = 64;

/// Characters that make a spreadsheet read a cell as a formula.
fn formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Whether `cell` is `'`s (`quotes` or more) followed by a formula character.
fn quoted_formula(cell: &str, quotes: usize) -> bool {
    let rest = cell.trim_start_matches('\'');
    cell.len() - rest.len() >= quotes && rest.chars().next().is_some_and(formula_start)
}

/// The CSV cell for `value`, neutralised against formula injection.
pub fn guard_cell(value: String) -> String {
    if quoted_formula(&value, 0) {
        format!("'{value}")
    } else {
        value
    }
}

/// The value of a CSV cell written by [`guard_cell`] (or by hand).
pub fn unguard_cell(cell: &str) -> &str {
    if quoted_formula(cell, 1) {
        &cell[1..]
    } else {
        cell
    }
}

/// One row's fields before interpretation; every message names the field, never its value.
#[derive(Default)]
pub struct RawRow {
    pub username: Option<String>,
    pub id: Option<String>,
    pub password_hash: Option<String>,
    pub password: Option<String>,
    /// Names the format of a `password_hash` that does not describe itself.
    pub password_hash_format: Option<String>,
    pub admin: bool,
    pub externally_managed: bool,
    pub aliases: BTreeMap<String, String>,
    pub profile: BTreeMap<String, String>,
}

impl RawRow {
    /// The first size bound the row breaks, if any.
    fn bounds_problem(&self) -> Option<String> {
        let long = |v: &Option<String>| v.as_ref().is_some_and(|s| s.len() > MAX_NAME_BYTES);
        if long(&self.username) {
            return Some(format!("username is longer than {MAX_NAME_BYTES} bytes"));
        }
        if long(&self.id) {
            return Some(format!("id is longer than {MAX_NAME_BYTES} bytes"));
        }
        if self
            .aliases
            .iter()
            .any(|(d, id)| d.len() > MAX_NAME_BYTES || id.len() > MAX_NAME_BYTES)
        {
            return Some(format!("an alias is longer than {MAX_NAME_BYTES} bytes"));
        }
        if self.profile.len() > MAX_PROFILE_KEYS {
            return Some(format!("profile has more than {MAX_PROFILE_KEYS} keys"));
        }
        if self.profile.keys().any(|k| k.len() > MAX_NAME_BYTES) {
            return Some(format!(
                "a profile key is longer than {MAX_NAME_BYTES} bytes"
            ));
        }
        if let Some(key) = self
            .profile
            .iter()
            .find(|(_, v)| v.len() > MAX_PROFILE_VALUE_BYTES)
            .map(|(k, _)| k)
        {
            return Some(format!(
                "profile.{} is longer than {MAX_PROFILE_VALUE_BYTES} bytes",
                key.escape_debug()
            ));
        }
        None
    }

    pub fn into_import_row(self) -> Result<ImportRow, String> {
        if let Some(why) = self.bounds_problem() {
            return Err(why);
        }
        let username = self.username.ok_or("missing username")?;
        let secret = match (self.password_hash, self.password) {
            (Some(hash), None) => match self.password_hash_format {
                Some(hint) => ImportSecret::Hash(credgate_core::legacy::with_hint(&hash, &hint)?),
                // Spring Security's `{noop}` is a plain password: hashed here, like `password`.
                None => match hash.strip_prefix("{noop}") {
                    Some(pw) => ImportSecret::Password(Password::new(pw)),
                    None => ImportSecret::Hash(hash),
                },
            },
            (None, Some(_)) if self.password_hash_format.is_some() => {
                return Err("password_hash_format is set without a password_hash".into())
            }
            (None, Some(pw)) => ImportSecret::Password(Password::new(pw)),
            (Some(_), Some(_)) => return Err("both password_hash and password are set".into()),
            (None, None) => return Err("missing password_hash (or password)".into()),
        };
        Ok(ImportRow {
            username,
            id: self.id,
            secret,
            admin: self.admin,
            externally_managed: self.externally_managed,
            aliases: self.aliases,
            profile: self.profile,
        })
    }
}

/// Interprets one CSV record under `header` (already checked to name known columns only).
/// Empty cells are absent values.
pub fn csv_row(header: &[usize], record: &csv::ByteRecord) -> Result<RawRow, String> {
    let mut row = RawRow::default();
    for (&field, bytes) in header.iter().zip(record) {
        let name = FIELDS[field];
        let value = std::str::from_utf8(bytes).map_err(|_| format!("{name} is not valid UTF-8"))?;
        let value = unguard_cell(value);
        if value.is_empty() {
            continue;
        }
        let value = value.to_owned();
        match name {
            "username" => row.username = Some(value),
            "id" => row.id = Some(value),
            "password_hash" => row.password_hash = Some(value),
            "password" => row.password = Some(value),
            "password_hash_format" => row.password_hash_format = Some(value),
            "admin" => row.admin = csv_bool(name, &value)?,
            "externally_managed" => row.externally_managed = csv_bool(name, &value)?,
            "aliases" => row.aliases = parse_pairs(name, &value)?,
            _ => row.profile = parse_pairs(name, &value)?,
        }
    }
    Ok(row)
}

/// The column index in [`FIELDS`] of each header cell; duplicate or unknown names are errors.
pub fn csv_header(header: &csv::StringRecord) -> Result<Vec<usize>, String> {
    let mut columns = Vec::new();
    for name in header {
        // Spreadsheets often start a CSV file with a byte-order mark.
        let name = name.trim_start_matches('\u{feff}').trim();
        let index = FIELDS
            .iter()
            .position(|f| *f == name)
            .ok_or_else(|| format!("unknown column `{name}` (known: {})", FIELDS.join(", ")))?;
        if columns.contains(&index) {
            return Err(format!("column `{name}` appears twice"));
        }
        columns.push(index);
    }
    if !columns.contains(&0) {
        return Err("the header has no `username` column".into());
    }
    Ok(columns)
}

fn csv_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    }
}

/// `k=v;k2=v2`, with `\;`, `\=` and `\\` as literal characters.
fn parse_pairs(name: &str, value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pairs = BTreeMap::new();
    let (mut key, mut current, mut in_value) = (String::new(), String::new(), false);
    let mut chars = value.chars();
    let mut finish = |key: &mut String, current: &mut String, in_value: bool| {
        if !in_value {
            return Err(format!("{name} must be key=value pairs separated by `;`"));
        }
        let k = std::mem::take(key);
        if pairs.insert(k, std::mem::take(current)).is_some() {
            return Err(format!("{name} names the same key twice"));
        }
        Ok(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ (';' | '=' | '\\')) => current.push(escaped),
                _ => return Err(format!("{name}: `\\` must be followed by `;`, `=` or `\\`")),
            },
            '=' if !in_value => {
                key = std::mem::take(&mut current);
                in_value = true;
            }
            ';' => {
                finish(&mut key, &mut current, in_value)?;
                in_value = false;
            }
            c => current.push(c),
        }
    }
    finish(&mut key, &mut current, in_value)?;
    Ok(pairs)
}

/// The CSV cell for a map: the inverse of [`parse_pairs`].
pub fn format_pairs(pairs: &BTreeMap<String, String>) -> String {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace(';', "\\;")
            .replace('=', "\\=")
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join(";")
}

/// Interprets one JSON Lines line: an object with the [`FIELDS`] keys, nothing else.
pub fn json_row(line: &str) -> Result<RawRow, String> {
    // Syntax errors name a position, never the text.
    let line = line.trim_start_matches('\u{feff}');
    let value: Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "not valid JSON ({} at column {})",
            json_error_kind(&e),
            e.column()
        )
    })?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".into());
    };
    let mut row = RawRow::default();
    let mut custom = None;
    for (key, value) in object {
        match key.as_str() {
            "username" => row.username = json_string(&key, value)?,
            "id" => row.id = json_string(&key, value)?,
            "password_hash" => row.password_hash = json_string(&key, value)?,
            "password" => row.password = json_string(&key, value)?,
            "password_hash_format" => row.password_hash_format = json_string(&key, value)?,
            "admin" => row.admin = json_bool(&key, value)?,
            "externally_managed" => row.externally_managed = json_bool(&key, value)?,
            "aliases" => row.aliases = json_map(&key, value)?,
            "profile" => row.profile = json_map(&key, value)?,
            "custom_password_hash" => custom = Some(super::auth0::custom_hash(&value)?),
            other => {
                return Err(format!(
                    "unknown key `{}` (known: {})",
                    other.escape_debug(),
                    FIELDS.join(", ")
                ))
            }
        }
    }
    // Auth0's `custom_password_hash` object, in place of password_hash and its format.
    if let Some((hash, hash_format)) = custom {
        if row.password_hash.is_some() || row.password_hash_format.is_some() {
            return Err("custom_password_hash is set with password_hash".into());
        }
        row.password_hash = Some(hash);
        row.password_hash_format = hash_format;
    }
    Ok(row)
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        _ => "syntax error",
    }
}

fn json_string(key: &str, value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(format!("{key} must be a string")),
    }
}

fn json_bool(key: &str, value: Value) -> Result<bool, String> {
    match value {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(b),
        _ => Err(format!("{key} must be true or false")),
    }
}

fn json_map(key: &str, value: Value) -> Result<BTreeMap<String, String>, String> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(format!("{key} values must be strings")),
            })
            .collect(),
        _ => Err(format!("{key} must be an object of strings")),
    }
}

/// One exported user as a JSON Lines line (no trailing newline).
pub fn json_line(user: &NewUser) -> String {
    let u = &user.user;
    let mut object = Map::new();
    object.insert("username".into(), json!(u.username));
    object.insert("id".into(), json!(u.id));
    object.insert("password_hash".into(), json!(user.credential_hash));
    object.insert("admin".into(), json!(u.admin));
    object.insert("externally_managed".into(), json!(u.externally_managed));
    object.insert("aliases".into(), json!(u.aliases));
    object.insert("profile".into(), json!(u.profile));
    Value::Object(object).to_string()
}

/// One exported user as CSV cells, in [`EXPORT_FIELDS`] order.
pub fn csv_cells(user: &NewUser) -> [String; 7] {
    let u = &user.user;
    [
        u.username.clone(),
        u.id.clone(),
        user.credential_hash.clone(),
        u.admin.to_string(),
        u.externally_managed.to_string(),
        format_pairs(&u.aliases),
        format_pairs(&u.profile),
    ]
    .map(guard_cell)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_with_escapes() {
        let mut m = BTreeMap::new();
        m.insert("akana".to_owned(), "a;b=c\\d".to_owned());
        m.insert("crayon".to_owned(), "42".to_owned());
        let cell = format_pairs(&m);
        assert_eq!(parse_pairs("aliases", &cell).unwrap(), m);
        assert!(parse_pairs("aliases", "akana").is_err());
        assert!(parse_pairs("aliases", "a=1;a=2").is_err());
        assert!(parse_pairs("aliases", "a=1\\x").is_err());
        assert_eq!(parse_pairs("p", "k=").unwrap().get("k").unwrap(), "");
    }

    #[test]
    fn formula_cells_are_guarded_and_read_back_unambiguously() {
        for value in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=x",
            "''+x",
            "'plain",
            "plain",
            "",
            "'",
            "a=b",
        ] {
            let cell = guard_cell(value.to_owned());
            assert_eq!(unguard_cell(&cell), value, "{value:?}");
            let risky = value.trim_start_matches('\'').starts_with(formula_start);
            assert_eq!(
                cell.starts_with('\''),
                risky || value.starts_with('\''),
                "{value:?}"
            );
            assert!(!cell.starts_with(formula_start), "{value:?}");
        }
        // A hand-written `'` before anything else is kept.
        assert_eq!(unguard_cell("'bob"), "'bob");
    }

    #[test]
    fn rows_past_a_bound_are_refused_naming_the_bound() {
        let row = |f: &dyn Fn(&mut RawRow)| {
            let mut r = RawRow {
                username: Some("u".into()),
                password_hash: Some("$2b$04$x".into()),
                ..RawRow::default()
            };
            f(&mut r);
            r.into_import_row().err()
        };
        assert!(row(&|_| {}).is_none());
        assert!(row(&|r| r.username = Some("u".repeat(257)))
            .unwrap()
            .contains("username"));
        assert!(row(&|r| {
            r.aliases.insert("akana".into(), "a".repeat(257));
        })
        .unwrap()
        .contains("alias"));
        assert!(row(&|r| {
            r.profile.insert("email".into(), "e".repeat(4097));
        })
        .unwrap()
        .contains("profile.email"));
        assert!(row(&|r| {
            r.profile.insert("email".into(), "e".repeat(4096));
        })
        .is_none());
        assert!(row(&|r| {
            for i in 0..65 {
                r.profile.insert(format!("k{i}"), "v".into());
            }
        })
        .unwrap()
        .contains("keys"));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_name() {
        let header = csv::StringRecord::from(vec!["\u{feff}username", "password_hash"]);
        assert_eq!(csv_header(&header).unwrap(), vec![0, 2]);
        let row = json_row("\u{feff}{\"username\":\"u\"}").unwrap();
        assert_eq!(row.username.as_deref(), Some("u"));
    }

    #[test]
    fn json_errors_never_quote_values() {
        let err = json_row(r#"{"username":"u","password":12345678}"#)
            .err()
            .unwrap();
        assert!(!err.contains("12345678"), "{err}");
        let err = json_row(r#"{"username":"u","password":"Secret-1"#)
            .err()
            .unwrap();
        assert!(!err.contains("Secret"), "{err}");
        assert!(json_row(r#"{"username":"u","pasword":"x"}"#).is_err());
    }
}
