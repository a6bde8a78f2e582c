//! Operator conveniences of the real binary: `credgate export -` / `import -` through standard
//! output and input, and `credgate --version` with the git revision.

use serde_json::json;

use crate::binary::{credgate, BIN};

#[test]
fn import_from_stdin_and_export_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        json!({"username": "stdin.pia", "password": "Plain-Pass-Pia-1"}),
        json!({"username": "stdin.quin", "password": "Plain-Pass-Quin-2"}),
    ]
    .iter()
    .map(|r| format!("{r}\n"))
    .collect::<String>();
    let out = credgate(dir.path(), &["import", "-", "--format", "jsonl"], &rows);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = credgate(dir.path(), &["export", "-", "--format", "jsonl"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Standard output holds the users and nothing else; the summary goes to stderr.
    let users: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stdin.pia", "stdin.quin"]);
    assert!(users
        .iter()
        .all(|u| u["password_hash"].as_str().unwrap().starts_with("$2b$04$")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exported 2 users"));
    assert!(!dir.path().join("-").exists(), "no file named -");

    // The export round-trips through stdin into a second database: all unchanged there.
    let csv = credgate(dir.path(), &["export", "-", "--format", "csv"], "");
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert!(csv.starts_with("username,id,password_hash"), "{csv}");
    let other = tempfile::tempdir().unwrap();
    let out = credgate(other.path(), &["import", "-", "--format", "csv"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = credgate(other.path(), &["export", "-", "--format", "csv"], "");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), csv);

    // Standard input needs a format: there is no extension to tell it.
    let out = credgate(dir.path(), &["import", "-"], &rows);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}

#[test]
fn version_names_the_git_revision() {
    let out = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let prefix = format!("credgate {} (git ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&prefix), "{text}");
    let revision = text[prefix.len()..].trim_end().trim_end_matches(')');
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.git");
    if std::env::var_os("CREDGATE_GIT_REVISION").is_none() && checkout.exists() {
        assert_eq!(revision.len(), 12, "{text}");
        assert!(revision.chars().all(|c| c.is_ascii_hexdigit()), "{text}");
    } else {
        assert!(!revision.is_empty(), "{text}");
    }
}
