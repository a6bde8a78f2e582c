//! `credgate dialects list | show | check | openapi | reload`, run as the real binary.

use std::path::{Path, PathBuf};

use credgate_dialect::{DialectSet, DialectSource, LoadOptions};
use serde_json::{json, Value};

use crate::common::{self, ADMIN_TOKEN};

/// Runs `credgate dialects ARGS` in `dir` (no config.toml there): (exit code, stdout, stderr).
async fn dialects(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .arg("dialects")
        .args(args)
        .current_dir(dir)
        .env_remove("CREDGATE_CONFIG")
        .env_remove("CREDGATE_ADMIN_TOKEN")
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn shipped() -> DialectSet {
    DialectSet::load(&DialectSource::embedded(), &LoadOptions::default()).unwrap()
}

fn repo_dialects() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialects")
}

#[tokio::test]
async fn list_and_show_describe_the_loaded_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = dialects(dir.path(), &["list"]).await;
    assert_eq!(code, 0, "{err}");
    for d in shipped().dialects() {
        assert!(out.contains(&format!("{}  (dialects/", d.name)), "{out}");
        for r in &d.routes {
            let line = out
                .lines()
                .find(|l| {
                    l.contains(&format!(" {} ", r.path.template)) && l.contains(&r.spec.method)
                })
                .unwrap_or_else(|| panic!("{} {} missing:\n{out}", r.spec.method, r.path.template));
            assert!(line
                .trim_end()
                .ends_with(credgate_dialect::openapi::command_name(r.spec.command)));
        }
    }
    assert!(out.contains("auth: cookie AtmoAuthToken_acmepaymentscorp + CSRF session (header X-Csrf-Token_acmepaymentscorp)"), "{out}");
    assert!(out.contains("auth: bearer + app key header Et-App-Key"));

    let (code, out, _) = dialects(dir.path(), &["show", "akana"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("route change_password: PUT /api/users/{UserID}/password"),
        "{out}"
    );
    assert!(
        out.contains("current <- body.OldPassword (required)"),
        "{out}"
    );
    assert!(out.contains("subject <- path.UserID"), "{out}");
    assert!(
        out.contains("invalid_credentials: 401 (route override)"),
        "{out}"
    );
    let csrf = out
        .lines()
        .find(|l| l.trim_start().starts_with("csrf_rejected"))
        .unwrap();
    assert!(csrf.contains("401 text/plain"), "{csrf}");
    assert!(!out.contains("UNMAPPED"));

    let (code, _, err) = dialects(dir.path(), &["show", "nope"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("no dialect named `nope`") && err.contains("crayon"),
        "{err}"
    );
}

#[tokio::test]
async fn check_passes_on_the_shipped_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = dialects(dir.path(), &["check"]).await;
    assert_eq!(
        (code, out.starts_with("OK: 5 dialect file(s)")),
        (0, true),
        "{out}{err}"
    );
    // The repository's folders, as a deployment would add them (they replace the shipped ones).
    let repo = repo_dialects();
    let (code, out, err) = dialects(dir.path(), &["check", repo.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("OK: 5 dialect file(s)"), "{out}");
    let one = repo.join("crayon");
    let file = repo.join("akana/dialect.toml");
    let (code, out, _) = dialects(
        dir.path(),
        &["check", one.to_str().unwrap(), file.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        (code, out.starts_with("OK: 2 dialect file(s)")),
        (0, true),
        "{out}"
    );
}

const BROKEN: &str = r#"name = "mini"
base = "/auth"
colour = "blue"

[[routes]]
name = "change"
method = "POST"
path = "/password/change"
command = "change_password"
ok = { status = 204 }

[[routes]]
name = "other"
method = "POST"
path = "/mini/other"
command = "change_password"
ok = { status = 204, body = "{{ broken(" }

[errors]
"#;

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[tokio::test]
async fn check_reports_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("more");
    let errors: String = credgate_core::Error::KINDS
        .iter()
        .filter(|k| **k != "conflict")
        .map(|k| format!("{k} = {{ status = 400 }}\n"))
        .collect();
    let text = format!("{BROKEN}{errors}");
    std::fs::create_dir_all(folder.join("mini")).unwrap();
    let file = folder.join("mini/dialect.toml");
    std::fs::write(&file, &text).unwrap();
    // A second checked dialect whose route clashes with the first one's.
    let twin = text
        .replace("name = \"mini\"", "name = \"twin\"")
        .replace("colour = \"blue\"\n", "")
        .replace("{{ broken(", "");
    std::fs::create_dir_all(folder.join("twin")).unwrap();
    std::fs::write(folder.join("twin/dialect.toml"), &twin).unwrap();

    let (code, out, err) = dialects(dir.path(), &["check", "more"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("problem(s) found"), "{err}");
    let f = "more/mini/dialect.toml";
    for expected in [
        format!("{f}:{}: unknown key `colour` at the top level", line_of(&text, "colour")),
        format!("{f}:{}: the error table does not map canonical error `conflict`", line_of(&text, "[errors]")),
        format!("{f}:{}: template routes.1.ok.body.json: syntax error", line_of(&text, "name = \"other\"")),
        format!(
            "{f}:{}: route `change` (POST /auth/password/change) clashes with route `change_password` of dialects/oauth-style/dialect.toml (embedded)",
            line_of(&text, "name = \"change\"")
        ),
        format!(
            "more/twin/dialect.toml:{}: route `change` (POST /auth/password/change) clashes with route `change` of {f}",
            line_of(&twin, "name = \"change\"")
        ),
        format!(
            "more/twin/dialect.toml:{}: route `other` (POST /auth/mini/other) clashes with route `other` of {f}",
            line_of(&twin, "name = \"other\"")
        ),
    ] {
        assert!(out.lines().any(|l| l.starts_with(&expected)), "missing `{expected}` in:\n{out}");
    }

    // One file, named directly.
    let (code, out, _) = dialects(dir.path(), &["check", "more/mini/dialect.toml"]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("unknown key `colour`") && !out.contains("twin"),
        "{out}"
    );
    let (code, _, err) = dialects(dir.path(), &["check", "nowhere"]).await;
    assert_eq!(code, 1, "{err}");
}

#[tokio::test]
async fn openapi_prints_a_document_per_dialect_and_for_the_native_api() {
    let dir = tempfile::tempdir().unwrap();
    for d in shipped().dialects() {
        let (code, out, err) = dialects(dir.path(), &["openapi", &d.name]).await;
        assert_eq!(code, 0, "{err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            d.name
        );
        for r in &d.routes {
            let op = &doc["paths"][r.path.template.as_str()][r.spec.method.to_ascii_lowercase()];
            assert_eq!(
                op["operationId"],
                json!(r.spec.name),
                "{} {}",
                d.name,
                r.spec.name
            );
        }
    }
    let (code, out, _) = dialects(dir.path(), &["openapi", "native"]).await;
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["paths"]["/v1/token"]["post"].is_object());
    assert!(doc["paths"]["/admin/dialects/reload"]["post"].is_object());
    let (code, _, err) = dialects(dir.path(), &["openapi", "nope"]).await;
    assert_eq!(
        (code, err.contains("no dialect named `nope`")),
        (1, true),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_asks_a_running_gateway_and_fails_when_refused() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("crayon");
    std::fs::create_dir_all(folder.join("examples")).unwrap();
    let file = folder.join("dialect.toml");
    std::fs::copy(repo_dialects().join("crayon/dialect.toml"), &file).unwrap();
    let dirs = root.path().to_owned();
    let gw = common::start_with(move |s, _| s.dialects.dirs = vec![dirs]).await;
    let cwd = tempfile::tempdir().unwrap();
    let reload = |token: &'static str| {
        let url = gw.url.clone();
        let cwd = cwd.path().to_owned();
        async move { dialects(&cwd, &["reload", "--target", &url, "--admin-token", token]).await }
    };

    let (code, out, err) = reload(ADMIN_TOKEN).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("unchanged (no dialect changed)"), "{out}");

    // A file that no longer loads is refused with its line; the command fails.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("colour = 1\n{text}")).unwrap();
    let (code, out, err) = reload(ADMIN_TOKEN).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("rejected"), "{out}");
    assert!(
        out.contains(&format!("{}:1: unknown key `colour`", file.display())),
        "{out}"
    );
    assert!(err.contains("kept serving"), "{err}");

    let (code, _, err) = reload("wrong-token").await;
    assert_eq!(code, 1);
    assert!(err.contains("refused (401)"), "{err}");
}
