//! Gated hot reload: an edited dialect folder is swapped in only when the dialect's examples
//! still pass against a scratch gateway; otherwise the old set keeps serving. Through the admin
//! endpoint in process, and through SIGHUP to the real binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, Gateway, TracedBinary, ADMIN_TOKEN};

const CRAYON: &str = include_str!("../dialects/crayon/dialect.toml");
const CLIENT_BASIC: &str = "Basic YTFiMmMzZDQtY3JheW9uLWNsaWVudDpDbDFlbnRTM2NyZXQ=";
const TOKEN_OK: &str = "[routes.ok]\nstatus = 200\nbody = \"\"\"{% set camel";
const TOKEN_TAIL: &str = "\"RefreshToken\": null{% endif %} }\"\"\"";

/// A dialect folder overriding the shipped Crayon, with its examples.
fn crayon_folder(root: &Path) -> PathBuf {
    let dir = root.join("crayon");
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    std::fs::write(dir.join("dialect.toml"), CRAYON).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dialects/crayon/examples");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("examples").join(path.file_name().unwrap())).unwrap();
    }
    dir.join("dialect.toml")
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// Still passes every example: a header no example names.
fn add_revision_header(file: &Path) {
    edit(
        file,
        TOKEN_OK,
        "[routes.ok]\nstatus = 200\nheaders = { X-Crayon-Revision = \"2\" }\nbody = \"\"\"{% set camel",
    );
}

/// Breaks `token-ok`: a field the vendor's answer does not have.
fn add_scope_field(file: &Path) {
    edit(
        file,
        TOKEN_TAIL,
        "\"RefreshToken\": null, \"scope\": \"CustomerApi\"{% endif %} }\"\"\"",
    );
}

async fn setup(base: &str, admin: &str) {
    common::admin_create(
        base,
        admin,
        "/admin/users",
        json!({"username": "reload.user", "password": "Orchid-Reload-Pass-4"}),
    )
    .await;
    common::admin_create(
        base,
        admin,
        "/admin/clients",
        json!({"client_id": "a1b2c3d4-crayon-client", "client_secret": "Cl1entS3cret"}),
    )
    .await;
}

/// A Crayon login: (the revision header, the body).
async fn login(http: &reqwest::Client, base: &str) -> (Option<String>, Value) {
    let res = http
        .post(format!("{base}/api/v1/connect/token"))
        .header("Authorization", CLIENT_BASIC)
        .form(&[
            ("grant_type", "password"),
            ("username", "reload.user"),
            ("password", "Orchid-Reload-Pass-4"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let revision = res
        .headers()
        .get("x-crayon-revision")
        .map(|v| v.to_str().unwrap().to_owned());
    (revision, res.json().await.unwrap())
}

async fn reload(gw: &Gateway) -> (u16, Value) {
    let res = gw
        .http
        .post(gw.at("/admin/dialects/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_swap_only_dialects_whose_examples_pass() {
    let root = tempfile::tempdir().unwrap();
    let file = crayon_folder(root.path());
    let dirs = root.path().to_owned();
    let gw = common::start_with(move |s, _| s.dialects.dirs = vec![dirs]).await;
    setup(&gw.url, ADMIN_TOKEN).await;

    let anonymous = gw
        .http
        .post(gw.at("/admin/dialects/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, body) = reload(&gw).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("unchanged")),
        "{body}"
    );

    // An edit that keeps every example passing is swapped in.
    assert_eq!(login(&gw.http, &gw.url).await.0, None);
    add_revision_header(&file);
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "reloaded");
    assert_eq!(body["changed"], json!(["crayon"]));
    assert_eq!(login(&gw.http, &gw.url).await.0.as_deref(), Some("2"));

    // An edit that breaks an example is refused; the previous set keeps serving.
    add_scope_field(&file);
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["status"], "rejected");
    assert_eq!(body["changed"], json!(["crayon"]));
    let failures = body["failures"].as_array().unwrap();
    let token_ok = failures
        .iter()
        .find(|f| f["example"] == "token-ok")
        .unwrap_or_else(|| panic!("token-ok must fail: {body}"));
    assert_eq!(token_ok["dialect"], "crayon");
    assert!(
        token_ok["mismatches"].to_string().contains("/scope"),
        "{body}"
    );
    let (revision, token) = login(&gw.http, &gw.url).await;
    assert_eq!(revision.as_deref(), Some("2"));
    assert!(token.get("scope").is_none(), "{token}");

    // A file that does not load is refused with its file and line.
    std::fs::write(&file, format!("unknown_key = 1\n{CRAYON}")).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{}:1:", file.display())) && error.contains("unknown_key"),
        "{error}"
    );
    assert_eq!(login(&gw.http, &gw.url).await.0.as_deref(), Some("2"));
}

/// Polls `check` until it holds, for a real process that acts on its own time.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hangup(gw: &TracedBinary) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_real_binary_through_the_same_gate() {
    let root = tempfile::tempdir().unwrap();
    let file = crayon_folder(root.path());
    let admin = "reload-admin-token-0123456789";
    let dirs = format!("[\"{}\"]", root.path().display());
    let gw = TracedBinary::start_with(admin, &[("CREDGATE_DIALECTS__DIRS", dirs)]).await;
    let http = reqwest::Client::new();
    setup(&gw.url, admin).await;
    assert_eq!(login(&http, &gw.url).await.0, None);

    add_revision_header(&file);
    hangup(&gw);
    eventually("the passing edit to be served", || async {
        login(&http, &gw.url).await.0.as_deref() == Some("2")
    })
    .await;

    add_scope_field(&file);
    hangup(&gw);
    let log = gw.dir.path().join("trace.log");
    eventually("the failing edit to be rejected", || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("dialect reload rejected") && text.contains("token-ok")
    })
    .await;
    let (revision, token) = login(&http, &gw.url).await;
    assert_eq!(revision.as_deref(), Some("2"));
    assert!(token.get("scope").is_none(), "{token}");
}
