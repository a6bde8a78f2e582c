//! A dialect added as a folder is served without recompiling.

use serde_json::json;

use crate::common;

const SIXTH: &str = r#"
name = "sixth"
description = "A small dialect written only for this test"
base = "/sixth"
content_type = "application/xml"

[[routes]]
name = "login"
method = "POST"
path = "/login"
command = "login"
token = "none"
body = "form"
fields = { username = "body.user", password = "body.pass" }
required = ["username", "password"]
ok = { status = 200, body = "<token>{{ token.access }}</token>" }

[[routes]]
name = "change"
method = "POST"
path = "/users/{login}/secret"
command = "change_password"
body = "form"
subject = { username = "path.login" }
fields = { current = "body.was", new = "body.now" }
required = ["current", "new"]
ok = { status = 202, body = "<ok user={{ user.username }}/>" }

[errors]
malformed_request = { status = 400, body = "<bad/>" }
unsupported_media_type = { status = 415, body = "<bad/>" }
payload_too_large = { status = 413, body = "<big/>" }
request_timeout = { status = 408, body = "<late/>" }
invalid_request = { status = 422, body = "<missing>{{ missing | join(',') }}</missing>" }
invalid_credentials = { status = 403, body = "<denied/>" }
invalid_client = { status = 401, body = "<who/>" }
unauthenticated = { status = 401, body = "<who/>" }
forbidden = { status = 403, body = "<no/>" }
externally_managed = { status = 403, body = "<elsewhere/>" }
policy_violation = { status = 422, body = "<weak/>" }
unknown_app = { status = 401, body = "<who/>" }
csrf_rejected = { status = 403, body = "<no/>" }
not_found = { status = 404, body = "<none/>" }
rate_limited = { status = 429, body = "<slow/>" }
conflict = { status = 409, body = "<race/>" }
reset_token_invalid = { status = 400, body = "<bad/>" }
unavailable = { status = 503, body = "<later/>" }
overloaded = { status = 503, body = "<busy/>" }
internal = { status = 500, body = "<oops/>" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_dialect_from_a_configured_folder() {
    let gw = common::start_with(|s, dir| {
        let folder = dir.join("extra/sixth");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("dialect.toml"), SIXTH).unwrap();
        s.dialects.dirs = vec![dir.join("extra")];
    })
    .await;
    gw.user("ivan", "Ivory-Tower-77").await;
    // Sessions are bound to the dialect that issued them: log in through this one.
    let res = gw
        .http
        .post(gw.at("/sixth/login"))
        .form(&[("user", "ivan"), ("pass", "Ivory-Tower-77")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let token = body
        .trim_start_matches("<token>")
        .trim_end_matches("</token>")
        .to_owned();
    let url = gw.at("/sixth/users/ivan/secret");
    let res = gw
        .http
        .post(&url)
        .bearer_auth(&token)
        .form(&[("was", "Ivory-Tower-77")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.text().await.unwrap(), "<missing>now</missing>");
    let res = gw
        .http
        .post(&url)
        .bearer_auth(&token)
        .form(&[("was", "Ivory-Tower-77"), ("now", "Ebony-Tower-88")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["content-type"], "application/xml");
    assert_eq!(res.text().await.unwrap(), "<ok user=ivan/>");
    assert_eq!(gw.login("ivan", "Ebony-Tower-88").await.status(), 200);
    // The audit trail names the dialect that acted.
    let id = gw
        .audit("")
        .await
        .iter()
        .find(|r| r["kind"] == "password_changed")
        .unwrap()["user_id"]
        .clone();
    let rows = gw.audit(id.as_str().unwrap()).await;
    assert_eq!(
        rows.iter()
            .find(|r| r["kind"] == "password_changed")
            .unwrap()["dialect"],
        json!("sixth")
    );
}
