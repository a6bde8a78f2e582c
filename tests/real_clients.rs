//! The vendors' real clients, replayed byte for byte against the real binary: each test sends
//! what that client sends (method, path case, headers, content type, body layout, order of
//! calls) and asserts on what that client reads (member names, cookies, success status).
//! Facts: ../shared/seeds/VENDOR-NOTES.md, "What real clients send".

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};

use crate::common::{admin_create, TracedBinary};

const ADMIN: &str = "real-clients-admin-token-0123456789";
const CLIENT_ID: &str = "a1b2c3d4-crayon-client";
const CLIENT_SECRET: &str = "Cl1entS3cret";
const OLD: &str = "Oldpassword#2019";

async fn gateway_with(env: &[(&str, String)]) -> TracedBinary {
    let gw = TracedBinary::start_with(ADMIN, env).await;
    admin_create(
        &gw.url,
        ADMIN,
        "/admin/clients",
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )
    .await;
    gw
}

async fn user(gw: &TracedBinary, username: &str, extra: Value) -> String {
    let mut body = json!({"username": username, "password": OLD});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    admin_create(&gw.url, ADMIN, "/admin/users", body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The token request every Crayon client sends (SDK, generated client, CloudIQ): Basic client
/// auth, a form with the password grant and scope CustomerApi.
async fn crayon_token(http: &reqwest::Client, url: &str, username: &str, pw: &str) -> Value {
    let res = http
        .post(format!("{url}/api/v1/connect/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .header("sdk-version", "1.5.4")
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", pw),
            ("scope", "CustomerApi"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The C# SDK: token (reads either casing), then `PUT /api/v1/users/{id}/changepassword/`
/// with an indented PascalCase body; success only when the body deserializes to `true`; a
/// failure body is read as `{ErrorCode, Message, Parameters, ObjectErrors}`.
#[tokio::test]
async fn crayon_csharp_sdk() {
    let gw = gateway_with(&[]).await;
    let id = user(&gw, "sdk.user@example.com", json!({})).await;
    let http = reqwest::Client::new();
    let token = crayon_token(&http, &gw.url, "sdk.user@example.com", OLD).await;
    // The SDK's reader ignores case: both names carry the same token.
    assert_eq!(token["AccessToken"], token["accessToken"]);
    let access = token["AccessToken"].as_str().unwrap().to_owned();

    let indented = |old: &str, new: &str| {
        format!(
            "{{\r\n  \"UserId\": \"{id}\",\r\n  \"OldPassword\": \"{old}\",\r\n  \"NewPassword\": \"{new}\"\r\n}}"
        )
    };
    let change = |body: String| {
        http.put(format!("{}/api/v1/users/{id}/changepassword/", gw.url))
            .header("Authorization", format!("Bearer {access}"))
            .header("Content-Type", "application/json; charset=utf-8")
            .header("sdk-version", "1.5.4")
            .body(body)
            .send()
    };
    // A wrong old password: the SDK parses the Error model.
    let res = change(indented("Wrong#2019x", "Newpassword#2020"))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let error: Value = res.json().await.unwrap();
    for member in ["ErrorCode", "Message", "Parameters", "ObjectErrors"] {
        assert!(error.get(member).is_some(), "{member} in {error}");
    }
    let res = change(indented(OLD, "Newpassword#2020")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!(true));
    let again = crayon_token(&http, &gw.url, "sdk.user@example.com", "Newpassword#2020").await;
    assert!(again["AccessToken"].is_string());
}

/// The C# SDK's other code path: `application/json` and `Expect: 100-continue`, the body sent
/// only after the server's `100 Continue`.
#[tokio::test]
async fn crayon_csharp_sdk_expect_100_continue() {
    let gw = gateway_with(&[]).await;
    let id = user(&gw, "expect.user@example.com", json!({})).await;
    let http = reqwest::Client::new();
    let token = crayon_token(&http, &gw.url, "expect.user@example.com", OLD).await;
    let access = token["AccessToken"].as_str().unwrap().to_owned();
    let body = format!(
        "{{\r\n  \"UserId\": \"{id}\",\r\n  \"OldPassword\": \"{OLD}\",\r\n  \"NewPassword\": \"Newpassword#2020\"\r\n}}"
    );
    let host = gw.url.trim_start_matches("http://").to_owned();
    let head = format!(
        "PUT /api/v1/users/{id}/changepassword/ HTTP/1.1\r\nHost: {host}\r\n\
         Authorization: Bearer {access}\r\nsdk-version: 1.5.4\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&host).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut rest = String::new();
        stream.read_to_string(&mut rest).unwrap();
        (String::from_utf8_lossy(&interim).into_owned(), rest)
    })
    .await
    .unwrap();
    assert_eq!(answer.0, "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(answer.1.starts_with("HTTP/1.1 200 OK\r\n"), "{}", answer.1);
    assert!(answer.1.ends_with("\r\n\r\ntrue"), "{}", answer.1);
}

/// The JavaScript client generated from Crayon's OpenAPI: `PUT {base}/Users/{id}/changepassword`
/// (capital U) with `application/json-patch+json` and a camelCase body; reads `accessToken`.
#[tokio::test]
async fn crayon_generated_js_client() {
    let gw = gateway_with(&[]).await;
    let id = user(&gw, "js.user@example.com", json!({})).await;
    let http = reqwest::Client::new();
    let token = crayon_token(&http, &gw.url, "js.user@example.com", OLD).await;
    let access = token["accessToken"].as_str().unwrap().to_owned();
    assert!(token["expiresIn"].is_number());
    // The other types of Crayon's OpenAPI are accepted too; anything else is not.
    for (mt, status) in [
        ("text/json", 400),
        ("application/vnd.crayon+json", 400),
        ("text/plain", 415),
    ] {
        let res = http
            .put(format!("{}/API/V1/USERS/{id}/CHANGEPASSWORD/", gw.url))
            .header("Authorization", format!("Bearer {access}"))
            .header("Content-Type", mt)
            .body(format!(
                r#"{{"userId":"{id}","oldPassword":"x","newPassword":"y"}}"#
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{mt}");
    }
    let res = http
        .put(format!("{}/api/v1/Users/{id}/changepassword", gw.url))
        .header("Authorization", format!("Bearer {access}"))
        .header("Accept", "text/plain, application/json, text/json")
        .header("Content-Type", "application/json-patch+json")
        .body(format!(
            r#"{{"userId":"{id}","oldPassword":"{OLD}","newPassword":"Newpassword#2020"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "true");
}

/// The CloudIQ SDK (PyPI): the same token request; reads `AccessToken` and `ExpiresIn` and
/// fails on camelCase; then calls with the token as Bearer.
#[tokio::test]
async fn crayon_cloudiq_sdk() {
    let gw = gateway_with(&[]).await;
    let id = user(&gw, "cloudiq.user@example.com", json!({})).await;
    let http = reqwest::Client::new();
    let token = crayon_token(&http, &gw.url, "cloudiq.user@example.com", OLD).await;
    let access = token["AccessToken"].as_str().unwrap().to_owned();
    assert!(token["ExpiresIn"].as_i64().unwrap() > 0);
    let res = http
        .put(format!("{}/api/v1/users/{id}/changepassword", gw.url))
        .header("Authorization", format!("Bearer {access}"))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"UserId": "{id}", "OldPassword": "{OLD}", "NewPassword": "Newpassword#2020"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The token answer's casing is a dialect setting (`vars.token_casing`) the operator can pick.
#[tokio::test]
async fn crayon_token_casing_is_a_setting() {
    for (casing, present, absent) in [
        ("pascal", "AccessToken", "accessToken"),
        ("camel", "accessToken", "AccessToken"),
    ] {
        let env = [(
            "CREDGATE_DIALECTS__VARS__CRAYON__TOKEN_CASING",
            casing.to_owned(),
        )];
        let gw = gateway_with(&env).await;
        user(&gw, "casing.user@example.com", json!({})).await;
        let http = reqwest::Client::new();
        let token = crayon_token(&http, &gw.url, "casing.user@example.com", OLD).await;
        assert!(token[present].is_string(), "{casing}: {token}");
        assert!(token.get(absent).is_none(), "{casing}: {token}");
    }
}

/// A cookie jar that keeps what a browser keeps, and the raw `Set-Cookie` lines.
#[derive(Default)]
struct Jar {
    cookies: Vec<(String, String)>,
}

impl Jar {
    fn take(&mut self, res: &reqwest::Response) -> Vec<String> {
        let lines: Vec<String> = (res.headers().get_all("set-cookie").iter())
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &lines {
            let (name, value) = line.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !line.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        lines
    }

    fn get(&self, name: &str) -> Option<&str> {
        (self.cookies.iter().find(|(n, _)| n == name)).map(|(_, v)| v.as_str())
    }

    fn header(&self) -> String {
        (self.cookies.iter().map(|(n, v)| format!("{n}={v}")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A JSON login as a browser's script sends it, answered 200; the jar holds its cookies.
async fn logged_in(http: &reqwest::Client, url: &str, body: Value) -> Jar {
    let res = http
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut jar = Jar::default();
    jar.take(&res);
    jar
}

const STUDIO: &str = "/studio/api/1/services/api/1";

/// Crafter Studio's AngularJS UI: validate-session on every page, login, change password,
/// logout with POST; `$http` sends `X-XSRF-TOKEN` only when the `XSRF-TOKEN` cookie exists.
#[tokio::test]
async fn crafter_studio_ui() {
    let gw = gateway_with(&[]).await;
    user(
        &gw,
        "author",
        json!({"profile": {"email": "author@example.com"}}),
    )
    .await;
    let http = reqwest::Client::new();
    let mut jar = Jar::default();
    // The UI's request: the JSON type, and the XSRF header copied from the cookie if any.
    let send = |method: reqwest::Method, path: &str, body: Option<Value>, jar: &Jar| {
        let mut req = http
            .request(method, format!("{}{STUDIO}{path}", gw.url))
            .header("Accept", "application/json, text/plain, */*");
        if let Some(xsrf) = jar.get("XSRF-TOKEN") {
            req = req.header("X-XSRF-TOKEN", xsrf);
        }
        if !jar.cookies.is_empty() {
            req = req.header("Cookie", jar.header());
        }
        if let Some(body) = body {
            req = req
                .header("Content-Type", "application/json;charset=utf-8")
                .body(body.to_string());
        }
        req.send()
    };
    // First page: no session yet, and the answer gives the XSRF cookie.
    let res = send(
        reqwest::Method::GET,
        "/security/validate-session.json",
        None,
        &jar,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);
    let set = jar.take(&res);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "Unauthorized"})
    );
    let xsrf = set.iter().find(|l| l.starts_with("XSRF-TOKEN=")).unwrap();
    assert!(xsrf.contains("Path=/studio"), "{xsrf}");
    assert!(!xsrf.to_ascii_lowercase().contains("httponly"), "{xsrf}");
    let first = jar.get("XSRF-TOKEN").unwrap().to_owned();

    let login = json!({"username": "author", "password": OLD});
    let res = send(
        reqwest::Method::POST,
        "/security/login.json",
        Some(login),
        &jar,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    jar.take(&res);
    assert!(jar.get("JSESSIONID").is_some());
    // Login hands out a fresh XSRF value, as Spring does.
    assert_ne!(jar.get("XSRF-TOKEN").unwrap(), first);
    let res = send(
        reqwest::Method::GET,
        "/security/validate-session.json",
        None,
        &jar,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    // A client that has the cookie is not given another one.
    assert!(jar.take(&res).is_empty());
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "OK"}));

    let change = json!({"email": "author@example.com", "action": "change", "current": OLD,
                        "new": "Newpassword#2020", "confirmation": "Newpassword#2020",
                        "username": "author"});
    let res = send(
        reqwest::Method::POST,
        "/user/change-password.json",
        Some(change),
        &jar,
    )
    .await
    .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    let res = send(reqwest::Method::POST, "/security/logout.json", None, &jar)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stale = jar.header();
    jar.take(&res);
    assert!(jar.get("JSESSIONID").is_none());
    let res = http
        .get(format!("{}{STUDIO}/security/validate-session.json", gw.url))
        .header("Cookie", stale)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// The XSRF cookie the gateway issues never replaces the double-submit check: the cookie alone
/// (a cross-site form carries it) is refused; `confirmation` must equal `new`.
#[tokio::test]
async fn crafter_xsrf_cookie_never_replaces_the_header() {
    let gw = gateway_with(&[]).await;
    user(&gw, "author", json!({})).await;
    let http = reqwest::Client::new();
    let login = format!("{}{STUDIO}/security/login.json", gw.url);
    let jar = logged_in(
        &http,
        &login,
        json!({"username": "author", "password": OLD}),
    )
    .await;
    let xsrf = jar.get("XSRF-TOKEN").unwrap().to_owned();
    let post = |header: Option<&str>, body: Value| {
        let mut req = http
            .post(format!("{}{STUDIO}/user/change-password.json", gw.url))
            .header("Cookie", jar.header())
            .header("Content-Type", "application/json;charset=utf-8")
            .body(body.to_string());
        if let Some(h) = header {
            req = req.header("X-XSRF-TOKEN", h);
        }
        req.send()
    };
    let body = json!({"username": "author", "current": OLD, "new": "Newpassword#2020"});
    for header in [None, Some(""), Some("not-the-cookie")] {
        let res = post(header, body.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "{header:?}");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"message": "Forbidden"})
        );
    }
    let mismatch = json!({"username": "author", "current": OLD, "new": "Newpassword#2020",
                          "confirmation": "Newpassword#2021"});
    let res = post(Some(&xsrf), mismatch).await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "Invalid parameter(s): [confirmation]"})
    );
    // Logging out with POST is a write: the header is needed there too.
    let res = http
        .post(format!("{}{STUDIO}/security/logout.json", gw.url))
        .header("Cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = post(Some(&xsrf), body).await.unwrap();
    assert_eq!(res.status(), 200);
}

/// Akana: `POST /api/login/logout` needs no CSRF header (a login-related exception) and clears
/// both cookies; other writes still need it.
#[tokio::test]
async fn akana_logout_without_csrf_header() {
    let gw = gateway_with(&[]).await;
    let id = user(&gw, "jane@example.com", json!({})).await;
    let http = reqwest::Client::new();
    let login = format!("{}/api/login", gw.url);
    let mut jar = logged_in(
        &http,
        &login,
        json!({"email": "jane@example.com", "password": OLD}),
    )
    .await;
    let session = jar.header();
    let res = http
        .put(format!("{}/api/users/{id}/password", gw.url))
        .header("Cookie", &session)
        .header("Content-Type", "application/json")
        .body(json!({"OldPassword": OLD, "NewPassword": "Newpassword#2020"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a write without the CSRF header");
    let res = http
        .post(format!(
            "{}/api/login/logout?fedmemberId=acmepaymentscorp",
            gw.url
        ))
        .header("Cookie", &session)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cleared: Vec<String> = jar.take(&res);
    for name in [
        "AtmoAuthToken_acmepaymentscorp",
        "Csrf-Token_acmepaymentscorp",
    ] {
        assert!(
            cleared
                .iter()
                .any(|l| l.starts_with(&format!("{name}=;")) && l.contains("Max-Age=0")),
            "{name}: {cleared:?}"
        );
    }
    let res = http
        .get(format!("{}/api/login/status", gw.url))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the session ended");
}

/// Unknown paths and wrong methods under a dialect's base path answer in that vendor's error
/// style (a wrong method with `Allow`); paths outside every dialect get the native problem.
#[tokio::test]
async fn unmatched_paths_and_methods_in_the_vendors_style() {
    let gw = gateway_with(&[]).await;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{}{path}", gw.url)).send()
    };
    let get = reqwest::Method::GET;
    let cases: [(reqwest::Method, &str, u16, Option<&str>, &str); 7] = [
        (
            get.clone(),
            "/studio/api/1/services/api/1/nope.json",
            404,
            None,
            r#"{"message":"Not Found"}"#,
        ),
        (
            get.clone(),
            "/studio/api/1/services/api/1/user/change-password.json",
            405,
            Some("POST"),
            r#"{"message":"Method Not Allowed"}"#,
        ),
        (
            get.clone(),
            "/api/v1/Users/x/ChangePassword",
            405,
            Some("PUT"),
            r#"{"ErrorCode":"MethodNotAllowed","Message":"The requested resource does not support http method 'GET'.","Parameters":{},"ObjectErrors":[]}"#,
        ),
        (
            get.clone(),
            "/api/v1/nope",
            404,
            None,
            r#"{"ErrorCode":"NotFound","Message":"No HTTP resource was found that matches the request URI.","Parameters":{},"ObjectErrors":[]}"#,
        ),
        (
            get.clone(),
            "/api/login/logout",
            405,
            Some("POST"),
            "Method Not Allowed",
        ),
        (
            get.clone(),
            "/api/Token",
            405,
            Some("POST"),
            r#"{"Message":"The requested resource does not support http method 'GET'."}"#,
        ),
        (
            get.clone(),
            "/auth/nope",
            404,
            None,
            r#"{"Message":"Not Found","Errors":[{"Key":"path","Code":"NotFound"}]}"#,
        ),
    ];
    for (method, path, status, allow, body) in cases {
        let res = call(method, path).await.unwrap();
        assert_eq!(res.status(), status, "{path}");
        let allowed = res
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), allow, "{path}");
        let text = res.text().await.unwrap();
        match serde_json::from_str::<Value>(body) {
            Ok(expected) => assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                expected,
                "{path}"
            ),
            Err(_) => assert_eq!(text, body, "{path}"),
        }
    }
    // Outside every base path, and where two dialects share one (/api: Akana and Et-App).
    for path in ["/nowhere", "/api/nowhere"] {
        let res = call(reqwest::Method::GET, path).await.unwrap();
        assert_eq!(res.status(), 404);
        assert_eq!(res.json::<Value>().await.unwrap()["title"], "Not Found");
    }
}
