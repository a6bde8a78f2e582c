//! Per-dialect listeners and prefixes: two vendors with the same paths in one process, and a
//! clash on one listener refused at start-up naming both dialect files.

use std::path::{Path, PathBuf};

use credgate_server::listeners::MountSettings;
use serde_json::{json, Value};

use crate::common::{self, Gateway};

const CRAYON: &str = include_str!("../dialects/crayon/dialect.toml");
const CLIENT_BASIC: &str = "Basic YTFiMmMzZDQtY3JheW9uLWNsaWVudDpDbDFlbnRTM2NyZXQ=";

/// A copy of the Crayon dialect under another name, whose tokens say which copy issued them.
fn crayon_copy(root: &Path, name: &str) -> PathBuf {
    let text = CRAYON
        .replacen("name = \"crayon\"", &format!("name = \"{name}\""), 1)
        .replacen(
            "\"tokenType\": \"Bearer\"",
            &format!("\"tokenType\": \"{name}\""),
            1,
        );
    assert!(text.contains(&format!("\"tokenType\": \"{name}\"")));
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dialect.toml"), text).unwrap();
    dir.join("dialect.toml")
}

fn mount(listen: Option<&str>, prefix: Option<&str>) -> MountSettings {
    MountSettings {
        listen: listen.map(str::to_owned),
        prefix: prefix.map(str::to_owned),
        ..MountSettings::default()
    }
}

async fn token_type(gw: &Gateway, base: &str) -> Value {
    let res = gw
        .http
        .post(format!("{base}/api/v1/connect/token"))
        .header("Authorization", CLIENT_BASIC)
        .form(&[
            ("grant_type", "password"),
            ("username", "mounted.user"),
            ("password", "Orchid-Mount-Pass-5"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{base}");
    res.json::<Value>().await.unwrap()["tokenType"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendors_with_the_same_paths_share_a_process_on_prefixes_and_listeners() {
    let root = tempfile::tempdir().unwrap();
    crayon_copy(root.path(), "crayonb");
    crayon_copy(root.path(), "crayonc");
    let own = common::free_addr();
    let (dirs, own_listen) = (root.path().to_owned(), own.clone());
    let gw = common::start_with(move |s, _| {
        s.dialects.dirs = vec![dirs];
        s.dialects
            .mount
            .insert("crayonb".into(), mount(None, Some("/b")));
        s.dialects
            .mount
            .insert("crayonc".into(), mount(Some(&own_listen), None));
    })
    .await;
    gw.user("mounted.user", "Orchid-Mount-Pass-5").await;
    let client = json!({"client_id": "a1b2c3d4-crayon-client", "client_secret": "Cl1entS3cret"});
    assert_eq!(gw.admin_post("/admin/clients", client).await.status(), 201);

    assert_eq!(token_type(&gw, &gw.url).await, "Bearer");
    assert_eq!(token_type(&gw, &gw.at("/b")).await, "crayonb");
    let own_url = format!("http://{own}");
    assert_eq!(token_type(&gw, &own_url).await, "crayonc");

    // The native and admin APIs stay on the main listener; other dialects are not mounted here.
    for path in [
        "/v1/token",
        "/admin/users",
        "/b/api/v1/connect/token",
        "/auth/token",
    ] {
        let res = gw
            .http
            .post(format!("{own_url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path} on the dialect listener");
    }
    // A mounted dialect is not reachable outside its mount.
    let res = gw
        .http
        .post(gw.at("/b/b/api/v1/connect/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clash_on_one_listener_is_a_start_error_naming_both_files() {
    let root = tempfile::tempdir().unwrap();
    let copy = crayon_copy(root.path(), "crayonb");
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&dir);
    settings.dialects.dirs = vec![root.path().to_owned()];
    let err = match credgate_server::build_state(
        &settings,
        std::sync::Arc::new(credgate_core::SystemClock),
    )
    .await
    {
        Ok(_) => panic!("a clash must stop the start"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("dialects/crayon/dialect.toml"), "{err}");
    assert!(err.contains(&copy.display().to_string()), "{err}");

    // Two dialects on the same own listener clash there too.
    let own = common::free_addr();
    for name in ["crayon", "crayonb"] {
        settings
            .dialects
            .mount
            .insert(name.into(), mount(Some(&own), None));
    }
    let err = credgate_server::app::load_dialects(&settings)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&own) && err.contains(&copy.display().to_string()),
        "{err}"
    );

    // The real binary refuses to start, and says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
        .arg("serve")
        .current_dir(dir.path())
        .env("CREDGATE_LISTEN", common::free_addr())
        .env("CREDGATE_DATABASE_URL", dir.path().join("bin.db"))
        .env(
            "CREDGATE_DIALECTS__DIRS",
            format!("[\"{}\"]", root.path().display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dialects/crayon/dialect.toml")
            && stderr.contains(&copy.display().to_string()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&dir);
    settings
        .dialects
        .mount
        .insert("nosuch".into(), mount(None, Some("/x")));
    let err = credgate_server::app::load_dialects(&settings)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dialects.mount.nosuch"), "{err}");
    let file = dir.path().join("mount.toml");
    std::fs::write(&file, "[dialects.mount.akana]\nprefix = \"akana\"\n").unwrap();
    let err = credgate_server::Settings::load(Some(&file))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dialects.mount.akana.prefix"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialect_listener_bounds_request_bodies_too() {
    let own = common::free_addr();
    let own_listen = own.clone();
    let _gw = common::start_with(move |s, _| {
        s.body_timeout_ms = 300;
        s.dialects
            .mount
            .insert("crayon".into(), mount(Some(&own_listen), None));
    })
    .await;
    let head = format!(
        "POST /api/v1/connect/token HTTP/1.1\r\nHost: {own}\r\nAuthorization: {CLIENT_BASIC}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n"
    );
    let (answer, after) =
        crate::security_hygiene::trickle(&own, &head, 60, std::time::Duration::from_millis(100))
            .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(after < std::time::Duration::from_secs(3), "{after:?}");
    // Crayon's own error model, as on the main listener.
    assert!(
        answer.contains("\"ErrorCode\": \"RequestTimeout\""),
        "{answer}"
    );
}
