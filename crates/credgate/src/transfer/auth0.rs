//! Auth0's bulk user import file (a JSON array of users, "Bulk user import database schema and
//! examples") read directly by `import --format auth0`, and the `custom_password_hash` key of a
//! JSON Lines row. A user maps to credgate's as: `email` (or, without one, `username`) is the
//! username; `user_id` the id; `email`, `email_verified`, `username`, `app_metadata.KEY` and
//! `user_metadata.KEY` (strings as they are, other values as compact JSON) the profile;
//! `password_hash` (bcrypt) or `custom_password_hash` the credential.

use std::collections::BTreeMap;

use serde_json::Value;

use super::format::RawRow;

/// The `password_hash` and `password_hash_format` an Auth0 `custom_password_hash` becomes:
/// bcrypt, argon2 and ldap carry a string the legacy formats read; the others stay as the
/// object's JSON under the `auth0` format. Messages never quote the hash.
pub fn custom_hash(value: &Value) -> Result<(String, Option<String>), String> {
    let Value::Object(obj) = value else {
        return Err("custom_password_hash must be an object".into());
    };
    let alg = obj.get("algorithm").and_then(Value::as_str);
    match alg {
        Some("bcrypt" | "argon2" | "ldap") => obj
            .get("hash")
            .and_then(|h| h.get("value"))
            .and_then(Value::as_str)
            .map(|v| (v.to_owned(), None))
            .ok_or_else(|| "custom_password_hash.hash.value must be a string".into()),
        Some(_) => Ok((value.to_string(), Some("auth0".into()))),
        None => Err("custom_password_hash.algorithm must be a string".into()),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn metadata(
    profile: &mut BTreeMap<String, String>,
    prefix: &str,
    v: Option<&Value>,
) -> Result<(), String> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) => {
            for (k, v) in map {
                profile.insert(format!("{prefix}.{k}"), text(v));
            }
            Ok(())
        }
        Some(_) => Err(format!("{prefix} must be an object")),
    }
}

/// One element of the Auth0 array as an import row.
pub fn user_row(user: &Value) -> Result<RawRow, String> {
    let Value::Object(obj) = user else {
        return Err("an Auth0 user must be a JSON object".into());
    };
    let string = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k} must be a string")),
        }
    };
    let (email, username) = (string("email")?, string("username")?);
    let mut row = RawRow {
        username: email.clone().or_else(|| username.clone()),
        id: string("user_id")?,
        password_hash: string("password_hash")?,
        ..RawRow::default()
    };
    if let Some(custom) = obj.get("custom_password_hash") {
        if row.password_hash.is_some() {
            return Err("password_hash and custom_password_hash are both set".into());
        }
        let (hash, format) = custom_hash(custom)?;
        row.password_hash = Some(hash);
        row.password_hash_format = format;
    }
    if let Some(email) = email {
        row.profile.insert("email".into(), email);
    }
    if let Some(username) = username {
        row.profile.insert("username".into(), username);
    }
    if let Some(v) = obj.get("email_verified").and_then(Value::as_bool) {
        row.profile.insert("email_verified".into(), v.to_string());
    }
    metadata(&mut row.profile, "app_metadata", obj.get("app_metadata"))?;
    metadata(&mut row.profile, "user_metadata", obj.get("user_metadata"))?;
    Ok(row)
}

/// Reads the whole Auth0 array (Auth0 itself caps a file at 500 KB).
pub fn users(text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str(text.trim_start_matches('\u{feff}')) {
        Ok(Value::Array(users)) => Ok(users),
        Ok(_) => Err("an Auth0 import file is a JSON array of users".into()),
        Err(e) => Err(format!(
            "not valid JSON (at line {} column {})",
            e.line(),
            e.column()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_auth0_user_maps_to_username_id_profile_and_hash() {
        let user = serde_json::json!({
            "email": "a@example.com", "email_verified": true, "username": "ann",
            "user_id": "auth0|1",
            "custom_password_hash": {"algorithm": "md5", "hash": {"value": "00", "encoding": "hex"}},
            "app_metadata": {"plan": "gold", "roles": ["admin"]},
            "user_metadata": {"theme": "dark"}
        });
        let row = user_row(&user).unwrap();
        assert_eq!(row.username.as_deref(), Some("a@example.com"));
        assert_eq!(row.id.as_deref(), Some("auth0|1"));
        assert_eq!(row.password_hash_format.as_deref(), Some("auth0"));
        assert_eq!(row.profile["app_metadata.roles"], r#"["admin"]"#);
        assert_eq!(row.profile["user_metadata.theme"], "dark");
        assert_eq!(row.profile["username"], "ann");
        let both = serde_json::json!({"email": "b@x", "password_hash": "$2b$04$x",
            "custom_password_hash": {"algorithm": "md5", "hash": {"value": "00"}}});
        assert!(user_row(&both).is_err());
        let bcrypt = serde_json::json!({"algorithm": "bcrypt", "hash": {"value": "$2b$04$x"}});
        assert_eq!(custom_hash(&bcrypt).unwrap(), ("$2b$04$x".into(), None));
    }

    #[test]
    fn a_json_lines_row_takes_custom_password_hash_in_place_of_password_hash() {
        let line =
            r#"{"username":"u","custom_password_hash":{"algorithm":"sha1","hash":{"value":"00"}}}"#;
        let row = super::super::format::json_row(line).unwrap();
        assert_eq!(row.password_hash_format.as_deref(), Some("auth0"));
        assert!(row.password_hash.unwrap().contains("\"sha1\""));
        let both = r#"{"username":"u","password_hash":"$2b$04$x","custom_password_hash":{"algorithm":"sha1","hash":{"value":"00"}}}"#;
        assert!(super::super::format::json_row(both).is_err());
        let ldap = r#"{"username":"u","custom_password_hash":{"algorithm":"ldap","hash":{"value":"{SHA}x"}}}"#;
        let row = super::super::format::json_row(ldap).unwrap();
        assert_eq!(row.password_hash.as_deref(), Some("{SHA}x"));
        assert_eq!(row.password_hash_format, None);
    }
}
