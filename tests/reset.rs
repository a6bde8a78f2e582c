//! Password resets end to end: real outbox file, a real webhook receiver on loopback, the
//! injected clock for expiry, and every dialect that documents a reset flow.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use credgate_core::SecretToken;
use serde_json::{json, Value};

use crate::common::{self, Gateway, ADMIN_TOKEN};

/// The delivered notices for `username` in the gateway's outbox, waiting for the background
/// delivery to land (bounded, polling; no fixed sleep).
async fn delivered(gw: &Gateway, username: &str, count: usize) -> Vec<Value> {
    let path = gw.path("outbox.jsonl");
    for _ in 0..400 {
        let found: Vec<Value> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["username"] == username)
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no delivery for {username} in the outbox");
}

/// The test kit's gateways deliver resets to `outbox.jsonl` in their own folder.
async fn outbox_gateway() -> Gateway {
    common::start().await
}

async fn post(gw: &Gateway, path: &str, body: Value) -> reqwest::Response {
    gw.http.post(gw.at(path)).json(&body).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_deliver_validate_reset_through_the_native_api() {
    let gw = outbox_gateway().await;
    let id = gw.user("rita", "Original-Pass-1").await;
    let session = gw.token("rita", "Original-Pass-1").await;

    assert_eq!(
        post(&gw, "/v1/password-resets", json!({"username": "rita"}))
            .await
            .status(),
        202
    );
    let notice = delivered(&gw, "rita", 1).await.remove(0);
    assert_eq!(
        (notice["event"].as_str(), notice["user_id"].as_str()),
        (Some("password_reset_requested"), Some(id.as_str()))
    );
    let token = notice["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256 random bits, URL-safe");
    assert_eq!(
        notice["expires_at"].as_i64().unwrap() - 1_700_000_000,
        30 * 60
    );

    // Validation never consumes; a wrong user or a wrong token is the same 400.
    for _ in 0..2 {
        assert_eq!(
            post(
                &gw,
                "/v1/password-resets/validate",
                json!({"username": "rita", "token": token})
            )
            .await
            .status(),
            204
        );
    }
    assert_eq!(
        post(
            &gw,
            "/v1/password-resets/validate",
            json!({"username": "someone", "token": token})
        )
        .await
        .status(),
        400
    );
    let res = post(
        &gw,
        "/v1/password-resets/validate",
        json!({"username": "rita", "token": "nope"}),
    )
    .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["type"],
        "urn:credgate:error:reset_token_invalid"
    );

    // The policy applies, and a refused reset does not spend the token.
    let res = post(
        &gw,
        "/v1/password-resets/complete",
        json!({"username": "rita", "token": token, "new_password": "password"}),
    )
    .await;
    assert_eq!(res.status(), 400);
    let res = post(
        &gw,
        "/v1/password-resets/complete",
        json!({"username": "rita", "token": token, "new_password": "Original-Pass-1"}),
    )
    .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["rules"][0]["rule"],
        "history"
    );
    let res = post(
        &gw,
        "/v1/password-resets/complete",
        json!({"username": "rita", "token": token, "new_password": "Fresh-Start-22"}),
    )
    .await;
    assert_eq!(res.status(), 204);

    assert_eq!(gw.login("rita", "Fresh-Start-22").await.status(), 200);
    assert_eq!(gw.login("rita", "Original-Pass-1").await.status(), 400);
    assert_eq!(
        gw.change(&session, "me", "Fresh-Start-22", "Other-Pass-33")
            .await
            .status(),
        401,
        "old sessions revoked"
    );
    let again = post(
        &gw,
        "/v1/password-resets/complete",
        json!({"username": "rita", "token": token, "new_password": "Another-Pass-44"}),
    )
    .await;
    assert_eq!(again.status(), 400, "a token is used once");

    let kinds: Vec<String> = gw
        .audit(&id)
        .await
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.contains(&"password_reset".to_owned())
            && kinds.contains(&"password_reset_requested".to_owned()),
        "{kinds:?}"
    );
    // Only the digest is stored.
    let mut stored = Vec::new();
    for f in std::fs::read_dir(gw.path("")).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("credgate.db")
        {
            stored.extend(std::fs::read(p).unwrap());
        }
    }
    assert!(
        !String::from_utf8_lossy(&stored).contains(&token),
        "plain reset token in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_get_the_same_answer_and_the_audit_says_which() {
    let gw = outbox_gateway().await;
    gw.user("sam", "Known-User-Pass-1").await;
    let known = post(&gw, "/v1/password-resets", json!({"username": "sam"})).await;
    let unknown = post(&gw, "/v1/password-resets", json!({"username": "ghost"})).await;
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (202, 202)
    );
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let all = gw.audit("").await;
    assert!(all.iter().any(|r| r["kind"] == "password_reset_requested"
        && r["detail"]["outcome"] == "unknown_user"
        && r["detail"]["username"] == "ghost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_replaced_and_change_invalidated_tokens_are_refused() {
    let gw = outbox_gateway().await;
    gw.user("tess", "First-Pass-Word-1").await;
    post(&gw, "/v1/password-resets", json!({"username": "tess"})).await;
    let first = delivered(&gw, "tess", 1).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Past the reset throttle's window (`[limits] reset_window_secs`).
    gw.clock.advance(121);
    post(&gw, "/v1/password-resets", json!({"username": "tess"})).await;
    let second = delivered(&gw, "tess", 2).await[1]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let validate = |t: String| {
        post(
            &gw,
            "/v1/password-resets/validate",
            json!({"username": "tess", "token": t}),
        )
    };
    assert_eq!(
        validate(first).await.status(),
        400,
        "a newer request replaces the older token"
    );
    assert_eq!(validate(second.clone()).await.status(), 204);
    gw.clock.advance(30 * 60);
    assert_eq!(
        validate(second).await.status(),
        400,
        "expired after 30 minutes"
    );

    post(&gw, "/v1/password-resets", json!({"username": "tess"})).await;
    let third = delivered(&gw, "tess", 3).await[2]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = gw.token("tess", "First-Pass-Word-1").await;
    assert_eq!(
        gw.change(&session, "me", "First-Pass-Word-1", "Second-Pass-Word-2")
            .await
            .status(),
        204
    );
    assert_eq!(
        validate(third).await.status(),
        400,
        "a password change ends outstanding resets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_used_once_under_concurrent_use() {
    let gw = outbox_gateway().await;
    gw.user("uma", "Racing-Start-1").await;
    post(&gw, "/v1/password-resets", json!({"username": "uma"})).await;
    let token = delivered(&gw, "uma", 1).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts = (0..8).map(|i| {
        let (gw, token) = (&gw, token.clone());
        async move {
            post(gw, "/v1/password-resets/complete", json!({"username": "uma", "token": token, "new_password": format!("Racing-Finish-{i}")}))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [204, 400, 409].contains(s)),
        "{statuses:?}"
    );
}

/// What the receiver saw: (signature header, body) per call.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on loopback that records what it is sent.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let data = web::Data::new(Arc::clone(&seen));
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/hook",
            web::post().to(
                |req: HttpRequest, body: web::Bytes, seen: web::Data<Seen>| async move {
                    let sig = req
                        .headers()
                        .get("x-credgate-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().unwrap().push((sig, body.to_vec()));
                    HttpResponse::NoContent().finish()
                },
            ),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deliveries_are_signed_through_the_oauth_style_dialect() {
    let (url, seen) = receiver().await;
    let gw = common::start_with(|s, _| {
        s.reset.notifier = credgate_server::settings::NotifierKind::Webhook;
        s.reset.webhook_url = Some(url.clone());
        s.reset.webhook_secret = Some(SecretToken::new("webhook-signing-secret"));
    })
    .await;
    gw.user("vera", "Vintage-Pass-1").await;
    gw.admin_post(
        "/admin/clients",
        json!({"client_id": "portal", "client_secret": "portal-secret-1"}),
    )
    .await;
    let res = gw
        .http
        .post(gw.at("/auth/token"))
        .basic_auth("portal", Some("portal-secret-1"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let client_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = gw
        .http
        .post(gw.at("/auth/token"))
        .basic_auth("portal", Some("portal-secret-1"))
        .form(&[
            ("grant_type", "password"),
            ("username", "vera"),
            ("password", "Vintage-Pass-1"),
        ])
        .send()
        .await
        .unwrap();
    let user_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A user token is refused on the reset endpoints; a client token is required.
    let reset = |token: String| {
        gw.http
            .post(gw.at("/auth/password/reset"))
            .bearer_auth(token)
            .json(&json!({"Username": "vera"}))
            .send()
    };
    assert_eq!(reset(user_token.clone()).await.unwrap().status(), 403);
    let res = reset(client_token.clone()).await.unwrap();
    assert_eq!(res.status(), 204);

    let mut delivery = None;
    for _ in 0..400 {
        if let Some(d) = seen.lock().unwrap().first().cloned() {
            delivery = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (signature, body) = delivery.expect("the webhook was called");
    let expected =
        credgate_server::notify::sign(&SecretToken::new("webhook-signing-secret"), &body);
    assert_eq!(signature, expected);
    let event: Value = serde_json::from_slice(&body).unwrap();
    let token = event["token"].as_str().unwrap();

    let call = |path: &str, body: Value| {
        gw.http
            .post(gw.at(path))
            .bearer_auth(&client_token)
            .json(&body)
            .send()
    };
    assert_eq!(
        call(
            "/auth/password/reset/token/validate",
            json!({"Username": "vera", "Token": token})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    assert_eq!(
        call(
            "/auth/password/reset/token/validate",
            json!({"Username": "vera", "Token": "forged"})
        )
        .await
        .unwrap()
        .status(),
        400
    );
    let res = call(
        "/auth/password/reset/token/process",
        json!({"Username": "vera", "Token": token, "NewPassword": "Modern-Pass-2"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(gw.login("vera", "Modern-Pass-2").await.status(), 200);
    let res = call(
        "/auth/password/reset/token/process",
        json!({"Username": "vera", "Token": token, "NewPassword": "Modern-Pass-3"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"Message": "Validation Failed", "Errors": [{"Key": "Token", "Code": "InvalidToken"}]})
    );
    // The user's token was revoked by the reset; the change endpoint wants a user token anyway.
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(&client_token)
        .json(&json!({"CurrentPassword": "a", "NewPassword": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_does_not_change_the_answer_and_is_audited() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = common::start_with(|s, _| {
        s.reset.notifier = credgate_server::settings::NotifierKind::Webhook;
        s.reset.webhook_url = Some(format!("http://{dead}/hook"));
        s.reset.webhook_secret = Some(SecretToken::new("webhook-signing-secret"));
        s.reset.webhook_attempts = 2;
        s.reset.webhook_backoff_ms = 1;
    })
    .await;
    let id = gw.user("wade", "Wading-Pass-1").await;
    assert_eq!(
        post(&gw, "/v1/password-resets", json!({"username": "wade"}))
            .await
            .status(),
        202
    );
    for _ in 0..400 {
        if gw
            .audit(&id)
            .await
            .iter()
            .any(|r| r["kind"] == "reset_delivery_failed")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the failed delivery was not audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etapp_three_step_reset_with_security_answer_and_code() {
    let gw = outbox_gateway().await;
    let id = gw.user("xena", "Xylophone-Pass-1").await;
    gw.admin_post("/admin/apps", json!({"key": "et-app-key"}))
        .await;
    let res = gw
        .http
        .put(gw.at(&format!("/admin/users/{id}/security-answer")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"question": "First pet?", "answer": "Rex the Dog"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let et = |method: reqwest::Method, path: &str, body: Value| {
        gw.http
            .request(method, gw.at(path))
            .header("Et-App-Key", "et-app-key")
            .json(&body)
            .send()
    };
    let res = et(
        reqwest::Method::POST,
        "/api/v1.0/users/password/reset",
        json!({"User": "xena", "SecretQuestionAnswer": "a cat"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"Errors": ["Answer is incorrect, try again."], "IsSucceed": false})
    );
    let res = et(
        reqwest::Method::POST,
        "/api/v1.0/users/password/reset",
        json!({"User": "nobody", "SecretQuestionAnswer": "rex the dog"}),
    )
    .await
    .unwrap();
    assert_eq!(
        res.status(),
        400,
        "an unknown user looks like a wrong answer"
    );
    let res = et(
        reqwest::Method::POST,
        "/api/v1.0/users/password/reset",
        json!({"User": "xena", "SecretQuestionAnswer": "  rex THE dog "}),
    )
    .await
    .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"Errors": [], "IsSucceed": true})
    );
    let code = delivered(&gw, "xena", 1).await[0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 8);

    let res = et(
        reqwest::Method::POST,
        "/api/v1.0/users/password/reset/code",
        json!({"Code": code}),
    )
    .await
    .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["Errors"].clone(), body["IsSucceed"].clone()),
        (json!([]), json!(true))
    );
    let token = body["Model"].as_str().unwrap().to_owned();
    let res = et(
        reqwest::Method::POST,
        "/api/v1.0/users/password/reset/code",
        json!({"Code": code}),
    )
    .await
    .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"Model": null, "Errors": ["Code is invalid or expired."], "IsSucceed": false})
    );

    let res = et(reqwest::Method::PUT, "/api/v1.0/users/passwords/reset/", json!({"Token": token, "Password": "Yodel-Pass-22", "PasswordConfirmation": "Yodel-Pass-23"})).await.unwrap();
    assert_eq!(res.status(), 400);
    let res = et(reqwest::Method::PUT, "/api/v1.0/users/passwords/reset/", json!({"Token": token, "Password": "Yodel-Pass-22", "PasswordConfirmation": "Yodel-Pass-22"})).await.unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"Errors": [], "IsSucceed": true})
    );
    assert_eq!(gw.login("xena", "Yodel-Pass-22").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafter_forgot_validate_set() {
    let gw = outbox_gateway().await;
    gw.user("yuri", "Yellow-Pass-11").await;
    let base = "/studio/api/1/services/api/1/user";
    let res = gw
        .http
        .get(gw.at(&format!("{base}/forgot-password.json?username=yuri")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "OK"}));
    let token = delivered(&gw, "yuri", 1).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = gw
        .http
        .get(gw.at(&format!("{base}/validate-token.json?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = gw
        .http
        .get(gw.at(&format!("{base}/validate-token.json?token=bogus")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.json::<Value>().await.unwrap()),
        (400, json!({"message": "Invalid parameter: token"}))
    );
    let res = gw
        .http
        .post(gw.at(&format!("{base}/set-password.json")))
        .json(&json!({"token": token, "new": "Zephyr-Pass-22"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"message": "OK"}));
    assert_eq!(gw.login("yuri", "Zephyr-Pass-22").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_code_guesses_are_limited_per_address() {
    let gw = outbox_gateway().await;
    gw.admin_post("/admin/apps", json!({"key": "et-app-key"}))
        .await;
    let guess = |code: String| {
        gw.http
            .post(gw.at("/api/v1.0/users/password/reset/code"))
            .header("Et-App-Key", "et-app-key")
            .json(&json!({"Code": code}))
            .send()
    };
    for i in 0..10 {
        assert_eq!(guess(format!("{i:08}")).await.unwrap().status(), 400);
    }
    let res = guess("12345678".into()).await.unwrap();
    assert_eq!(res.status(), 429);
    // The budget's window (`[limits] window_secs`), shared by every instance through the store.
    assert_eq!(res.headers()["retry-after"], "900");
}
