//! `credgate import` and `credgate export` through the real binary on real SQLite files:
//! legacy hashes of every bcrypt prefix log in afterwards, plain passwords are hashed with a
//! warning, bad rows are reported by line and skipped whole, re-imports and dry runs write
//! nothing, and export -> import reproduces the users.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use credgate_core::hasher::HashPool;
use credgate_core::model::AuditQuery;
use credgate_core::store::AuditLog;
use credgate_core::Password;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_credgate");

/// Runs the binary against `db` at bcrypt cost `cost`, in `dir`.
fn credgate_at(dir: &Path, db: &Path, cost: u32, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("CREDGATE_DATABASE_URL", db)
        .env("CREDGATE_BCRYPT_COST", cost.to_string())
        .env_remove("CREDGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs against `<db>.db`; returns (exit code, stdout, stderr).
    fn run(&self, db: &str, args: &[&str]) -> (i32, String, String) {
        let out = credgate_at(self.dir.path(), &self.path(&format!("{db}.db")), 4, args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn usernames(&self, db: &str) -> Vec<String> {
        let (code, out, err) = self.run(db, &["user", "list", "--limit", "1000"]);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| l.split('\t').nth(1).unwrap().to_owned())
            .collect()
    }

    /// Every user of `db` as JSON Lines, in username order.
    fn exported(&self, db: &str, name: &str) -> Vec<Value> {
        let (code, _, err) = self.run(db, &["export", name]);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(self.path(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn bcrypt4(password: &str) -> String {
    HashPool::new(1, 4)
        .unwrap()
        .hash(&Password::new(password))
        .await
        .unwrap()
}

/// A gateway in this process on the given database file and bcrypt cost.
async fn gateway_on(db: PathBuf, cost: u32) -> crate::common::Gateway {
    crate::common::start_with(move |s, _| {
        s.database_url = db.display().to_string();
        s.bcrypt_cost = cost;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_with_every_bcrypt_prefix_log_in_and_are_upgraded() {
    let cli = Cli::new();
    let b = bcrypt4("Legacy-Pass-2b").await;
    let a = format!("$2a${}", &bcrypt4("Legacy-Pass-2a").await[4..]);
    let y = format!("$2y${}", &bcrypt4("Legacy-Pass-2y").await[4..]);
    let file = format!(
        "username,id,password_hash,aliases\n\
         bea@example.com,u-bea,{b},\n\
         ada@example.com,u-ada,{a},akana=ada1.acmepaymentscorp\n\
         yan@example.com,u-yan,{y},\n"
    );
    cli.write("legacy.csv", &file);
    let (code, out, err) = cli.run("gw", &["import", "legacy.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 created"), "{out}");
    let stored: Vec<String> = cli
        .exported("gw", "before.jsonl")
        .iter()
        .map(|u| u["password_hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stored,
        vec![a.clone(), b.clone(), y.clone()],
        "stored as is"
    );

    // The gateway runs at cost 5: every imported cost-4 hash is re-made on its next login.
    let gw = gateway_on(cli.path("gw.db"), 5).await;
    for (user, password) in [
        ("bea@example.com", "Legacy-Pass-2b"),
        ("yan@example.com", "Legacy-Pass-2y"),
    ] {
        assert_eq!(gw.login(user, password).await.status(), 200, "{user}");
        assert_eq!(gw.login(user, "Wrong-Pass-1").await.status(), 400, "{user}");
    }
    let akana = gw
        .http
        .post(gw.at("/api/login"))
        .json(&json!({"email": "ada@example.com", "password": "Legacy-Pass-2a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(akana.status(), 200, "the $2a$ user logs in through Akana");
    let after = cli.exported("gw", "after.jsonl");
    for user in &after {
        let hash = user["password_hash"].as_str().unwrap();
        assert!(
            hash.starts_with("$2b$05$"),
            "upgraded: {}",
            user["username"]
        );
    }
    assert_eq!(
        gw.login("ada@example.com", "Legacy-Pass-2a").await.status(),
        200
    );
    assert!(gw
        .audit("u-yan")
        .await
        .iter()
        .any(|e| e["kind"] == "hash_upgraded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_passwords_are_hashed_with_a_warning_and_reimport_is_a_noop() {
    let cli = Cli::new();
    let lines = [
        json!({"username": "pia", "password": "Plain-Pass-Pia-1", "profile": {"email": "pia@example.com"}}),
        json!({"username": "quin", "password": "Plain-Pass-Quin-2", "admin": true}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    cli.write("plain.jsonl", &text);
    let (code, out, err) = cli.run("gw", &["import", "plain.jsonl"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 created"), "{out}");
    assert!(
        err.contains("warning") && err.contains("2 plain-text passwords"),
        "{err}"
    );
    assert!(
        !format!("{out}{err}").contains("Plain-Pass"),
        "no password echoed"
    );
    let (code, out, err) = cli.run("gw", &["import", "plain.jsonl"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");
    let exported = cli.exported("gw", "out.jsonl");
    assert!(exported.iter().all(|u| u.get("password").is_none()));
    assert_eq!(exported[1]["admin"], true);
    let db = std::fs::read(cli.path("gw.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("Plain-Pass"));

    let gw = gateway_on(cli.path("gw.db"), 4).await;
    assert_eq!(gw.login("pia", "Plain-Pass-Pia-1").await.status(), 200);
    assert_eq!(gw.login("quin", "Plain-Pass-Quin-2").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_csv_rows_are_reported_by_line_and_the_good_rows_land() {
    let cli = Cli::new();
    let h = bcrypt4("Good-Pass-1").await;
    let file = format!(
        "username,id,password_hash,aliases\n\
         good1,,{h},akana=g1\n\
         badhash,,$2b$04$tooshort,\n\
         ,u-nameless,{h},\n\
         good1,,{h},\n\
         badalias,,{h},akana\n\
         padded,,{h},akana= x\n\
         good2,,{h},crayon=7\n\
         x2,,$2x${},\n",
        &h[4..]
    );
    cli.write("users.csv", &file);
    let (code, out, err) = cli.run("gw", &["import", "users.csv"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("8 rows") && out.contains("2 created") && out.contains("6 bad"),
        "{out}"
    );
    for (line, why) in [
        (3, "not a bcrypt hash"),
        (4, "missing username"),
        (5, "duplicate username (first on line 2)"),
        (6, "aliases must be key=value"),
        (7, "invalid alias"),
        (
            9,
            "not a bcrypt hash: it must start with $2a$, $2b$ or $2y$",
        ),
    ] {
        let expected = format!("users.csv:{line}: {why}");
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert!(!err.contains(&h[7..]), "no hash echoed");
    assert_eq!(cli.usernames("gw"), vec!["good1", "good2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_lines_are_reported_by_line_and_the_good_lines_land() {
    let cli = Cli::new();
    let h = bcrypt4("Good-Pass-1").await;
    let text = [
        json!({"username": "j1", "password_hash": h, "aliases": {"akana": "j1.fed"}}).to_string(),
        r#"{"username": "j2", "password_hash": "#.to_owned(),
        json!({"password_hash": h}).to_string(),
        String::new(),
        json!({"username": "j3", "password_hash": h, "aliases": {"akana": "j1.fed"}}).to_string(),
        json!({"username": "j4", "password_hash": h, "admin": "yes"}).to_string(),
        json!({"username": "j5", "password_hash": h, "pasword": "x"}).to_string(),
        json!({"username": "j6", "password_hash": h, "password": "Both-Set-1"}).to_string(),
        json!({"username": "j7", "password_hash": h, "id": "u-7"}).to_string(),
    ]
    .join("\n");
    cli.write("users.jsonl", &text);
    let (code, out, err) = cli.run("gw", &["import", "users.jsonl"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("2 created") && out.contains("6 bad"), "{out}");
    for (line, why) in [
        (2, "not valid JSON"),
        (3, "missing username"),
        (5, "duplicate alias akana=j1.fed (first on line 1)"),
        (6, "admin must be true or false"),
        (7, "unknown key `pasword`"),
        (8, "both password_hash and password"),
    ] {
        let expected = format!("users.jsonl:{line}: {why}");
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert_eq!(cli.usernames("gw"), vec!["j1", "j7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_write_nothing_and_conflicts_need_update() {
    let cli = Cli::new();
    let h = bcrypt4("Good-Pass-1").await;
    let file = format!(
        "username,id,password_hash,admin,aliases\nkai,u-kai,{h},false,akana=k1\nlou,,{h},false,\n"
    );
    cli.write("users.csv", &file);
    let (code, out, _) = cli.run("gw", &["import", "users.csv", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2 created") && out.contains("dry run"),
        "{out}"
    );
    assert!(cli.usernames("gw").is_empty(), "a dry run writes nothing");

    assert_eq!(cli.run("gw", &["import", "users.csv"]).0, 0);
    let before = cli.exported("gw", "before.jsonl");
    let (code, out, _) = cli.run("gw", &["import", "users.csv"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0 created, 0 updated, 2 unchanged, 0 conflicts"),
        "{out}"
    );

    let changed = file.replace(",false,akana=k1", ",true,akana=k1");
    cli.write("changed.csv", &changed);
    let (code, out, err) = cli.run("gw", &["import", "changed.csv", "--dry-run", "--update"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 updated, 1 unchanged"), "{out}");
    let (code, _, err) = cli.run("gw", &["import", "changed.csv"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("changed.csv:2: conflict: the user exists with a different admin flag"),
        "{err}"
    );
    assert_eq!(cli.exported("gw", "same.jsonl"), before, "left untouched");
    let (code, out, _) = cli.run("gw", &["import", "changed.csv", "--update"]);
    assert_eq!(code, 0);
    assert!(out.contains("1 updated"), "{out}");
    assert_eq!(cli.exported("gw", "updated.jsonl")[0]["admin"], true);

    // One summary audit event per import that wrote (dry runs do not), not one per row.
    let store = credgate_store::SqliteStore::open(
        cli.path("gw.db").to_str().unwrap(),
        &credgate_store::StoreOptions::default(),
    )
    .await
    .unwrap();
    let audit = store
        .audit_log(&AuditQuery {
            user_id: None,
            limit: 100,
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = audit.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["users_imported"; 4], "{kinds:?}");
    assert_eq!(audit[0].detail["updated"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_reproduces_the_users_in_both_formats() {
    let cli = Cli::new();
    let h = bcrypt4("Round-Trip-Pass-1").await;
    let file = format!(
        "username,id,password_hash,admin,externally_managed,aliases,profile\n\
         rae,u-rae,{h},true,false,akana=r1.fed;crayon=42,email=rae@example.com;note=a\\;b\\=c\n\
         sol,,{h},false,true,,\n"
    );
    cli.write("users.csv", &file);
    assert_eq!(cli.run("old", &["import", "users.csv"]).0, 0);
    let original = cli.exported("old", "original.jsonl");
    assert_eq!(original[0]["profile"]["note"], "a;b=c");
    for format in ["csv", "jsonl"] {
        let name = format!("export.{format}");
        let (code, out, err) = cli.run("old", &["export", &name]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("exported 2 users"), "{out}");
        let text = std::fs::read_to_string(cli.path(&name)).unwrap();
        assert!(!text.contains("Round-Trip-Pass"));
        let fresh = format!("fresh-{format}");
        let (code, out, err) = cli.run(&fresh, &["import", &name]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("2 created"), "{out}");
        let copy = cli.exported(&fresh, &format!("copy-{format}.jsonl"));
        assert_eq!(copy, original, "{format} round trip");
    }
    let (code, _, err) = cli.run("old", &["export", "export.csv"]);
    assert_eq!(code, 1, "an existing file is never overwritten");
    assert!(err.contains("export.csv"), "{err}");
    let gw = gateway_on(cli.path("fresh-csv.db"), 4).await;
    assert_eq!(gw.login("rae", "Round-Trip-Pass-1").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_cells_are_neutralised_in_csv_exports_and_read_back() {
    let cli = Cli::new();
    let h = bcrypt4("Formula-Pass-1").await;
    let users = [
        json!({"username": "=HYPERLINK(\"http://evil.example\",\"x\")", "password_hash": h}),
        json!({"username": "+cmd|' /C calc'!A0", "password_hash": h, "profile": {"@sum": "1"}}),
        json!({"username": "-2+3", "password_hash": h, "aliases": {"crayon": "=1"}}),
        json!({"username": "'=already-quoted", "password_hash": h}),
        json!({"username": "'plain", "password_hash": h, "profile": {"note": "=not at the start"}}),
    ];
    let lines: Vec<String> = users.iter().map(Value::to_string).collect();
    cli.write("users.jsonl", &lines.join("\n"));
    let (code, _, err) = cli.run("old", &["import", "users.jsonl"]);
    assert_eq!(code, 0, "{err}");
    let original = cli.exported("old", "original.jsonl");
    assert_eq!(original.len(), 5);

    let (code, _, err) = cli.run("old", &["export", "users.csv"]);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_path(cli.path("users.csv")).unwrap();
    let mut cells = Vec::new();
    for record in reader.records() {
        cells.extend(
            record
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
    }
    for cell in &cells {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a spreadsheet would run {cell:?}"
        );
    }
    for expected in [
        "'=HYPERLINK(\"http://evil.example\",\"x\")",
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "''=already-quoted",
        "'plain",
        "'@sum=1",
        "crayon=\\=1",
        "note=\\=not at the start",
    ] {
        assert!(
            cells.iter().any(|c| c == expected),
            "no cell {expected:?} in {cells:?}"
        );
    }
    let (code, _, err) = cli.run("fresh", &["import", "users.csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        cli.exported("fresh", "copy.jsonl"),
        original,
        "CSV round trip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_rows_and_values_are_refused_by_line() {
    let cli = Cli::new();
    let h = bcrypt4("Bounded-Pass-1").await;
    let huge = "x".repeat(200 * 1024);
    let file = format!(
        "username,password_hash,profile\n\
         first,{h},email=first@example.com\n\
         huge,{h},email={huge}\n\
         \"quoted\nhuge\",{h},\"email={huge}\n{huge}\"\n\
         long.value,{h},email={}\n\
         many.keys,{h},{}\n\
         {},{h},\n\
         last,{h},email=last@example.com\n",
        "v".repeat(4097),
        (0..65)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(";"),
        "n".repeat(257),
    );
    cli.write("users.csv", &file);
    let (code, out, err) = cli.run("gw", &["import", "users.csv"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("7 rows") && out.contains("2 created") && out.contains("5 bad"),
        "{out}"
    );
    for (line, why) in [
        (3, "the row is longer than 65536 bytes"),
        (4, "the row is longer than 65536 bytes"),
        (7, "profile.email is longer than 4096 bytes"),
        (8, "profile has more than 64 keys"),
        (9, "username is longer than 256 bytes"),
    ] {
        let expected = format!("users.csv:{line}: {why}");
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert!(!err.contains("xxxxxxxx"), "no value echoed");
    assert_eq!(cli.usernames("gw"), vec!["first", "last"]);

    let lines = [
        json!({"username": "j.first", "password_hash": h}).to_string(),
        json!({"username": "j.huge", "password_hash": h, "profile": {"email": huge}}).to_string(),
        json!({"username": "j.last", "password_hash": h}).to_string(),
    ];
    cli.write("users.jsonl", &lines.join("\n"));
    let (code, _, err) = cli.run("gw", &["import", "users.jsonl"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("users.jsonl:2: the row is longer than 65536 bytes"),
        "{err}"
    );
    assert_eq!(
        cli.usernames("gw"),
        vec!["first", "j.first", "j.last", "last"]
    );
}
