//! Legacy password hashes through the real binary (`credgate import`, `rehash`, `export`,
//! `serve`) and a gateway on the same database: every fixture of tests/fixtures/hashes (made by
//! the formats' own implementations) imports, logs in through the Akana dialect with its
//! password and not with another, is bcrypt after one login (audited with its old format);
//! weak ones are wrapped by `credgate rehash` or in the background by `serve`, log in before
//! and after, and no weak digest is left; bad rows are reported by line, never quoting the hash.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_credgate");
const FIXTURES: &str = include_str!("fixtures/hashes/fixtures.jsonl");

struct Fixture {
    format: String,
    hint: Option<String>,
    password: String,
    hash: String,
}

impl Fixture {
    fn username(&self, i: usize) -> String {
        format!("user{i}-{}@example.com", self.format)
    }

    /// Weak formats are wrapped by `rehash` (see the legacy-hash crate's strength rules).
    fn weak(&self) -> bool {
        let strong = [
            "argon2",
            "scrypt",
            "pbkdf2",
            "sha256-crypt",
            "sha512-crypt",
            "bcrypt",
        ];
        !(strong.iter().any(|s| self.format.contains(s))
            || self.format == "aspnet-identity-v3"
            || self.hash.starts_with("{CRYPT}$6$"))
    }
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Fixture {
                format: v["format"].as_str().unwrap().into(),
                hint: v["hint"].as_str().map(str::to_owned),
                password: v["password"].as_str().unwrap().into(),
                hash: v["hash"].as_str().unwrap().into(),
            }
        })
        .collect()
}

/// Runs the binary on `db` (a SQLite path or a PostgreSQL URL) at bcrypt cost 4, in `dir`.
fn credgate(dir: &Path, db: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("CREDGATE_DATABASE_URL", db)
        .env("CREDGATE_BCRYPT_COST", "4")
        .env_remove("CREDGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every fixture as one JSON Lines import row.
fn import_file(dir: &Path, fixtures: &[Fixture]) -> String {
    let text: String = fixtures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut row =
                json!({"username": f.username(i), "id": format!("u-{i}"), "password_hash": f.hash});
            if let Some(hint) = &f.hint {
                row["password_hash_format"] = json!(hint);
            }
            format!("{row}\n")
        })
        .collect();
    std::fs::write(dir.join("legacy.jsonl"), text).unwrap();
    "legacy.jsonl".into()
}

/// username -> stored hash, read back with `credgate export`.
fn stored(dir: &Path, db: &str, name: &str) -> std::collections::BTreeMap<String, String> {
    let (code, _, err) = credgate(dir, db, &["export", name]);
    assert_eq!(code, 0, "{err}");
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["username"].as_str().unwrap().to_owned(),
                v["password_hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn gateway_on(db: String) -> crate::common::Gateway {
    crate::common::start_with(move |s, _| {
        s.database_url = db;
        s.bcrypt_cost = 4;
        // One wrong password per user, from one address: no budget should refuse them.
        s.limits.address_failures = 0;
    })
    .await
}

async fn akana_login(gw: &crate::common::Gateway, user: &str, password: &str) -> u16 {
    gw.http
        .post(gw.at("/api/login"))
        .json(&json!({"email": user, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The whole life of every fixture on one database: import, wrap, log in, upgrade.
async fn every_format_on(dir: &Path, db: &str) {
    let fixtures = fixtures();
    let file = import_file(dir, &fixtures);
    let (code, out, err) = credgate(dir, db, &["import", &file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{} created", fixtures.len())),
        "{out}"
    );
    let imported = stored(dir, db, "imported.jsonl");
    for (i, f) in fixtures.iter().enumerate() {
        let hash = &imported[&f.username(i)];
        match &f.hint {
            Some(hint) => assert_eq!(hash, &format!("$credgate-legacy${hint}${}", f.hash)),
            None => assert_eq!(hash, &f.hash, "{} stored as imported", f.format),
        }
    }

    // Half the weak users log in (and are upgraded) before wrapping, the rest after.
    let gw = gateway_on(db.to_owned()).await;
    let (early, late): (Vec<_>, Vec<_>) =
        fixtures.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    for (i, f) in &early {
        let user = f.username(*i);
        let wrong = akana_login(&gw, &user, &format!("{}-wrong", f.password)).await;
        assert_ne!(wrong, 200, "{}: a wrong password logs in", f.format);
        assert_eq!(
            akana_login(&gw, &user, &f.password).await,
            200,
            "{}",
            f.format
        );
    }
    let (code, out, err) = credgate(dir, db, &["rehash", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let weak_late = late.iter().filter(|(_, f)| f.weak()).count();
    assert!(
        out.contains(&format!("{weak_late} weak hashes would be wrapped")),
        "{out}"
    );
    let (code, out, err) = credgate(dir, db, &["rehash"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("wrapped {weak_late} weak hashes")),
        "{out}"
    );
    let (code, status, err) = credgate(dir, db, &["rehash", "--status"]);
    assert_eq!(code, 0, "{err}");
    assert!(!status.contains("\tweak\t"), "{status}");
    assert!(status.contains("ldap-ssha\twrapped\t"), "{status}");

    let wrapped = stored(dir, db, "wrapped.jsonl");
    for (i, f) in &late {
        let hash = &wrapped[&f.username(*i)];
        if f.weak() {
            assert!(hash.starts_with("$credgate-wrap$1$"), "{}", f.format);
            assert!(!hash.contains(&f.hash), "{}", f.format);
        } else {
            assert!(!hash.starts_with("$credgate-wrap$"), "{}", f.format);
        }
    }
    let everything: String = wrapped.values().cloned().collect();
    for f in fixtures.iter().filter(|f| f.weak()) {
        assert!(
            !everything.contains(&f.hash),
            "{}: weak digest left",
            f.format
        );
    }

    for (i, f) in &late {
        let user = f.username(*i);
        let wrong = akana_login(&gw, &user, &format!("{}-wrong", f.password)).await;
        assert_ne!(wrong, 200, "{}: a wrong password logs in", f.format);
        assert_eq!(
            akana_login(&gw, &user, &f.password).await,
            200,
            "{}",
            f.format
        );
    }
    let after = stored(dir, db, "after.jsonl");
    for (i, f) in fixtures.iter().enumerate() {
        let hash = &after[&f.username(i)];
        assert!(
            hash.starts_with("$2b$04$")
                || hash.starts_with("$2a$04$")
                || hash.starts_with("$2y$04$"),
            "{} is bcrypt after one login",
            f.format
        );
    }
    // The upgrade is audited with the old format's name, never the hash.
    let audit = gw.audit("u-1").await;
    let upgraded = audit.iter().find(|e| e["kind"] == "hash_upgraded").unwrap();
    assert_eq!(upgraded["detail"]["from"], fixtures[1].format.as_str());
    assert!(!upgraded.to_string().contains(&fixtures[1].hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_legacy_format_logs_in_is_wrapped_and_upgraded_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db").display().to_string();
    every_format_on(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_legacy_format_logs_in_is_wrapped_and_upgraded_on_postgresql() {
    let Some(db) = crate::multi_instance::fresh_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    every_format_on(dir.path(), &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_reproduces_legacy_and_wrapped_users() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("a.db").display().to_string(),
        dir.path().join("b.db").display().to_string(),
    );
    let fixtures = fixtures();
    let file = import_file(dir.path(), &fixtures);
    assert_eq!(credgate(dir.path(), &a, &["import", &file]).0, 0);
    // Wrap only some: a mix of legacy, hinted legacy and wrapped forms.
    let (code, _, err) = credgate(dir.path(), &a, &["rehash", "--batch", "7"]);
    assert_eq!(code, 0, "{err}");
    let first = stored(dir.path(), &a, "a.jsonl");
    let (code, out, err) = credgate(dir.path(), &b, &["import", "a.jsonl"]);
    assert_eq!(code, 0, "{out}{err}");
    let second = stored(dir.path(), &b, "b.jsonl");
    assert_eq!(first, second);
    let gw = gateway_on(b.clone()).await;
    for (i, f) in fixtures.iter().enumerate().filter(|(i, _)| i % 5 == 0) {
        assert_eq!(
            akana_login(&gw, &f.username(i), &f.password).await,
            200,
            "{}",
            f.format
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_legacy_rows_are_reported_by_line_without_the_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db").display().to_string();
    let good = fixtures()
        .into_iter()
        .find(|f| f.format == "ldap-ssha")
        .unwrap();
    let bad = [
        // An iteration count far beyond the ceiling: one verify would take minutes.
        ("$pbkdf2-sha256$2000000000$w1hLSWlt7b33XmvtPWfsfQ$GHs6eSyJBeIS4efIhwogxrV8yv0nLEE.yvX2eHcwK50", ""),
        ("$argon2id$v=19$m=4194304,t=2,p=1$BUDo/X8PwXgvRcg5J+ScUw$LIVbPuy38eM2KiEzF/Ieo4oCuhMwunjipr5OtuKkpLs", ""),
        ("{SSHA}not*base64*at*all", ""),
        ("$7$unknown$prefixsecretmaterial", ""),
        ("AQAAAAEAACcQAAAAEDcV6H6qpLou9", "aspnet-identity"),
        ("c2VjcmV0bWF0ZXJpYWxzZWNyZXQ=|c2FsdA==", "crafter"),
        ("c2VjcmV0bWF0ZXJpYWxzZWNyZXQ=", "vendor-x"),
    ];
    let mut csv = format!(
        "username,password_hash,password_hash_format\ngood,{},\n",
        good.hash
    );
    for (i, (hash, hint)) in bad.iter().enumerate() {
        csv.push_str(&format!("bad{i},{hash},{hint}\n"));
    }
    std::fs::write(dir.path().join("bad.csv"), csv).unwrap();
    let (code, out, err) = credgate(dir.path(), &db, &["import", "bad.csv"]);
    assert_ne!(code, 0);
    assert!(out.contains("1 created"), "{out}");
    for line in 3..3 + bad.len() {
        assert!(
            err.contains(&format!("bad.csv:{line}: ")),
            "line {line}: {err}"
        );
    }
    assert!(err.contains("ceiling"), "{err}");
    for (hash, _) in bad {
        for part in hash.split(['$', '|']).filter(|p| p.len() >= 12) {
            assert!(!err.contains(part), "the report quotes a hash: {err}");
        }
    }
}

/// `serve` wraps weak hashes in the background, at its configured rate, while serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_wraps_weak_hashes_in_the_background() {
    let admin = "legacy-admin-token-123456";
    let gw = crate::common::TracedBinary::start_with(
        admin,
        &[("CREDGATE_LEGACY_HASHES__WRAP_PER_SEC", "1000".to_owned())],
    )
    .await;
    let db = gw.dir.path().join("gw.db").display().to_string();
    let fixtures: Vec<_> = fixtures().into_iter().filter(Fixture::weak).collect();
    let file = import_file(gw.dir.path(), &fixtures);
    let (code, _, err) = credgate(gw.dir.path(), &db, &["import", &file]);
    assert_eq!(code, 0, "{err}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let census: Value = http
            .get(format!("{}/admin/hashes", gw.url))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = census["formats"].as_array().unwrap();
        let count = |state: &str| -> u64 {
            rows.iter()
                .filter(|r| r["state"] == state)
                .map(|r| r["users"].as_u64().unwrap())
                .sum()
        };
        if count("weak") == 0 {
            assert_eq!(count("wrapped"), fixtures.len() as u64, "{census}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still weak: {census}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let f = &fixtures[0];
    let res = http
        .post(format!("{}/v1/token", gw.url))
        .form(&[
            ("grant_type", "password"),
            ("username", &f.username(0)),
            ("password", &f.password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Auth0's bulk-import array (tests/fixtures/hashes/auth0-users.json, made by auth0.py; each
/// user's `password` is the test's, not an Auth0 field, and is removed before the import).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth0_bulk_import_array_maps_users_and_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.db").display().to_string();
    let users: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/hashes/auth0-users.json")).unwrap();
    let file: Vec<Value> = users
        .iter()
        .map(|u| {
            let mut u = u.clone();
            u.as_object_mut().unwrap().remove("password");
            u
        })
        .collect();
    std::fs::write(
        dir.path().join("auth0.json"),
        Value::Array(file).to_string(),
    )
    .unwrap();
    let (code, out, err) = credgate(
        dir.path(),
        &db,
        &["import", "--format", "auth0", "auth0.json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{} created", users.len())), "{out}");
    // Weak Auth0 digests are wrapped like every other weak format.
    let (code, out, err) = credgate(dir.path(), &db, &["rehash"]);
    assert_eq!(code, 0, "{out}{err}");
    let wrapped = stored(dir.path(), &db, "wrapped.jsonl");
    for u in &users {
        let hash = &wrapped[u["email"].as_str().unwrap()];
        let alg = u["custom_password_hash"]["algorithm"]
            .as_str()
            .unwrap_or("");
        if matches!(alg, "md4" | "md5" | "sha1" | "sha256" | "sha512" | "hmac") {
            assert!(hash.starts_with("$credgate-wrap$1$auth0-"), "{alg}");
            let digest = u["custom_password_hash"]["hash"]["value"].as_str().unwrap();
            assert!(!hash.contains(digest), "{alg}: digest left");
        }
    }
    // Profile and id mapping, from the export.
    let export = std::fs::read_to_string(dir.path().join("wrapped.jsonl")).unwrap();
    let first: Value = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["username"] == users[0]["email"])
        .unwrap();
    assert_eq!(first["id"], users[0]["user_id"]);
    assert_eq!(first["profile"]["app_metadata.plan"], "gold");
    assert_eq!(first["profile"]["app_metadata.roles"], r#"["admin"]"#);
    assert_eq!(first["profile"]["user_metadata.theme"], "dark");
    assert_eq!(first["profile"]["username"], users[0]["username"]);

    let gw = gateway_on(db.clone()).await;
    for u in &users {
        let (email, pw) = (
            u["email"].as_str().unwrap(),
            u["password"].as_str().unwrap(),
        );
        let alg = &u["custom_password_hash"]["algorithm"];
        assert_ne!(
            akana_login(&gw, email, &format!("{pw}-wrong")).await,
            200,
            "{alg}"
        );
        assert_eq!(akana_login(&gw, email, pw).await, 200, "{alg}");
    }
    let after = stored(dir.path(), &db, "after.jsonl");
    for u in &users {
        let hash = &after[u["email"].as_str().unwrap()];
        assert!(
            hash.starts_with("$2"),
            "bcrypt after one login: {}",
            u["email"]
        );
    }
}
