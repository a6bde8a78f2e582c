//! The OpenAPI documents as served, and schemathesis (from PyPI) against the native and admin
//! APIs of the real binary: no 5xx, and every answer matches the document.

use serde_json::{json, Value};

use crate::common::{self, TracedBinary};

#[tokio::test]
async fn documents_are_served_for_every_dialect_and_the_native_api() {
    let gw = common::start().await;
    let set = credgate_server::app::load_dialects(&credgate_server::Settings::default()).unwrap();
    for d in set.dialects() {
        let res = gw
            .http
            .get(gw.at(&format!("/openapi/{}.json", d.name)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", d.name);
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
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
    let native: Value = gw
        .http
        .get(gw.at("/openapi/native.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/token",
        "/v1/users/{id}/password",
        "/v1/password-resets",
        "/admin/users",
        "/admin/audit",
        "/openapi/{name}.json",
    ] {
        assert!(native["paths"][path].is_object(), "{path}");
    }
    let res = gw
        .http
        .get(gw.at("/openapi/nope.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:credgate:error:not_found");
}

#[tokio::test]
async fn unparsable_admin_query_strings_are_400_problems() {
    let gw = common::start().await;
    let res = gw
        .http
        .get(gw.at("/admin/users?limit=lots"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:credgate:error:malformed_request");
}

#[tokio::test]
async fn a_password_change_without_a_token_is_401_whatever_its_body() {
    let gw = common::start().await;
    let res = gw
        .http
        .put(gw.at("/v1/users/me/password"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// schemathesis, when installed; in CI it must be (`.ci/run` installs it).
fn schemathesis() -> Option<std::path::PathBuf> {
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("schemathesis".into());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "schemathesis is not installed; .ci/run installs it with pip"
    );
    eprintln!("skipped: schemathesis is not installed (pip install schemathesis==4.32.5)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_the_native_and_admin_apis() {
    let Some(cli) = schemathesis() else { return };
    let admin = "schemathesis-admin-token-0123456789";
    let gw = TracedBinary::start(admin).await;
    // A user and a client, so that token grants and user lookups can succeed.
    common::admin_create(
        &gw.url,
        admin,
        "/admin/users",
        json!({"username": "schema.user", "password": "Orchid-Schema-Pass-4"}),
    )
    .await;
    common::admin_create(
        &gw.url,
        admin,
        "/admin/clients",
        json!({"client_id": "schema-client", "client_secret": "Cl1entS3cret"}),
    )
    .await;
    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,missing_required_header";
    let auth = format!("Authorization: Bearer {admin}");
    run_schemathesis(
        &cli,
        &gw,
        "native",
        checks,
        &["--header", &auth, "--max-examples", "20"],
    )
    .await;
}

/// Runs schemathesis against `/openapi/{doc}.json` of `gw`, failing the test with its report.
async fn run_schemathesis(
    cli: &std::path::Path,
    gw: &TracedBinary,
    doc: &str,
    checks: &str,
    extra: &[&str],
) {
    let out = tokio::process::Command::new(cli)
        .arg("run")
        .arg(format!("{}/openapi/{doc}.json", gw.url))
        .args(["--url", &gw.url, "--checks", checks])
        // Bounded and reproducible: a fixed seed, few examples per operation, one worker.
        .args([
            "--seed",
            "1",
            "--no-shrink",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ])
        .args(extra)
        .current_dir(gw.dir.path())
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found failures in {doc}:\n{report}"
    );
    assert!(report.contains("passed"), "{report}");
}

/// The generated dialect documents load as OpenAPI 3.1 and describe what the gateway answers:
/// no 5xx, and every status, content type and body is the documented one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_the_dialect_documents() {
    let Some(cli) = schemathesis() else { return };
    let gw = TracedBinary::start("schemathesis-admin-token-0123456789").await;
    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
    for d in ["akana", "crafter", "crayon", "etapp", "oauth-style"] {
        run_schemathesis(&cli, &gw, d, checks, &["--max-examples", "10"]).await;
    }
}
