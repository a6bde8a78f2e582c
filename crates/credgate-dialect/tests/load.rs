//! Loading the shipped dialects and refusing broken ones with file and line.

use credgate_dialect::{DialectSet, DialectSource, LoadOptions, Lookup};

fn load(extra: &[(&str, &str)]) -> Result<DialectSet, String> {
    let mut sources = DialectSource::embedded();
    sources.extend(extra.iter().map(|(o, t)| DialectSource {
        origin: (*o).into(),
        text: (*t).into(),
    }));
    DialectSet::load(&sources, &LoadOptions::default()).map_err(|e| e.to_string())
}

#[test]
fn the_five_seed_dialects_load_and_route() {
    let set = load(&[]).unwrap();
    let names: Vec<_> = set.dialects().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["akana", "crafter", "crayon", "etapp", "oauth-style"]
    );
    for (method, path, dialect) in [
        (
            "PUT",
            "/api/users/eceffbe3-3386-495b-80d3-7526f0eb0edc.acmepaymentscorp/password",
            "akana",
        ),
        (
            "POST",
            "/studio/api/1/services/api/1/user/change-password.json",
            "crafter",
        ),
        ("PUT", "/api/v1/users/e758d6be/changepassword/", "crayon"),
        ("PUT", "/api/v1.0/users/@me/password/change", "etapp"),
        ("POST", "/auth/password/change", "oauth-style"),
    ] {
        match set.lookup(method, path) {
            Lookup::Found(m) => assert_eq!(m.dialect.name, dialect, "{path}"),
            _ => panic!("{method} {path} not routed"),
        }
    }
    assert!(matches!(
        set.lookup("GET", "/auth/password/change"),
        Lookup::MethodNotAllowed(_)
    ));
    assert!(matches!(set.lookup("GET", "/nowhere"), Lookup::NotFound));
}

const MINIMAL: &str = r#"
name = "mini"
base = "/mini"
[[routes]]
name = "change"
method = "POST"
path = "/change"
command = "change_password"
ok = { status = 204 }
"#;

fn all_errors() -> String {
    credgate_core::Error::KINDS
        .iter()
        .map(|k| format!("{k} = {{ status = 400 }}\n"))
        .collect()
}

#[test]
fn an_unmapped_error_names_file_and_variant() {
    let text = format!(
        "{MINIMAL}[errors]\n{}",
        all_errors().replace("conflict = { status = 400 }\n", "")
    );
    let err = load(&[("extra/mini/dialect.toml", &text)]).unwrap_err();
    assert!(err.starts_with("extra/mini/dialect.toml:"), "{err}");
    assert!(err.contains("`conflict`"), "{err}");
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let text = format!("{MINIMAL}bogus = 1\n[errors]\n{}", all_errors());
    let err = load(&[("extra/mini/dialect.toml", &text)]).unwrap_err();
    assert!(err.contains("extra/mini/dialect.toml:10"), "{err}");
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn a_route_clash_names_both_files() {
    let text = format!(
        "{}[errors]\n{}",
        MINIMAL
            .replace("/mini\"", "/auth\"")
            .replace("/change\"", "/password/change\""),
        all_errors()
    );
    let err = load(&[("extra/mini/dialect.toml", &text)]).unwrap_err();
    assert!(
        err.contains("extra/mini/dialect.toml")
            && err.contains("dialects/oauth-style/dialect.toml"),
        "{err}"
    );
}

#[test]
fn template_errors_are_load_errors() {
    let text = format!("{MINIMAL}[errors]\n{}", all_errors()).replace(
        "internal = { status = 400 }",
        "internal = { status = 500, body = \"{{ oops(\" }",
    );
    let err = load(&[("extra/mini/dialect.toml", &text)]).unwrap_err();
    assert!(err.contains("template errors.internal"), "{err}");
}

#[test]
fn load_all_reports_every_problem_of_a_file() {
    let text = format!(
        "{}bogus = 1\n[errors]\n{}",
        MINIMAL
            .replace("method = \"POST\"", "method = \"POST\"\nmethd = \"x\"")
            .replace(
                "command = \"change_password\"",
                "command = \"change_password\"\nfields = { new = \"nowhere.x\" }"
            ),
        all_errors()
            .replace("conflict = { status = 400 }\n", "")
            .replace("not_found = { status = 400 }\n", "")
            .replace(
                "internal = { status = 400 }",
                "internal = { status = 500, body = \"{{ oops(\" }"
            )
    );
    let mut sources = DialectSource::embedded();
    sources.push(DialectSource {
        origin: "extra/mini/dialect.toml".into(),
        text,
    });
    let all: Vec<String> = DialectSet::load_all(&sources, &LoadOptions::default())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    let has = |needle: &str| all.iter().any(|e| e.contains(needle));
    assert!(
        has("extra/mini/dialect.toml:7: unknown key `methd` in `routes.change`"),
        "{all:#?}"
    );
    assert!(
        has("extra/mini/dialect.toml:12: unknown key `bogus` in `routes.change`"),
        "{all:#?}"
    );
    assert!(has("`conflict`") && has("`not_found`"), "{all:#?}");
    assert!(has("template errors.internal"), "{all:#?}");
    assert!(has("`nowhere.x` is not a field source"), "{all:#?}");
    assert!(
        all.iter()
            .all(|e| e.starts_with("extra/mini/dialect.toml:")),
        "{all:#?}"
    );
    let lines: Vec<usize> = all
        .iter()
        .map(|e| e.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(lines.is_sorted(), "in file order: {all:#?}");
}
