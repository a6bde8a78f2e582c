//! What two real clients send, exactly, and what they read: a generic OAuth library
//! (requests-oauthlib, Authlib) against the OAuth-style dialect, and ETNA's own Python sample
//! (`EtnaAPIRequest`) against Et-App, its two-factor step included.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::Gateway;
use crate::security_common::*;

/// The registered client, sent as `Authorization: Basic base64(client_id:client_secret)`.
const CLIENT: (&str, &str) = (CLIENT_ID, CLIENT_SECRET);

/// `application/x-www-form-urlencoded`, each byte outside the unreserved set percent-encoded.
fn form_encode(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let pairs: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    pairs.join("&")
}

/// One token call as Authlib sends it: Basic client auth, a form body whose content type carries
/// `;charset=UTF-8`, `Accept: application/json`.
async fn oauth_token(gw: &Gateway, client: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
    let res = gw
        .http
        .post(gw.at("/auth/token"))
        .basic_auth(client.0, Some(client.1))
        .header(ACCEPT, "application/json")
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(form_encode(form))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// The library's view of a token answer: (access_token, refresh_token).
fn tokens(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn oauth_change(gw: &Gateway, access: &str, current: &str, new: &str) -> u16 {
    gw.http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(access)
        .json(&json!({"CurrentPassword": current, "NewPassword": new}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The token-endpoint failure both libraries must recognise: RFC 6749's `error` (and
/// `error_description`) next to the vendor's own `Message` and `Errors`.
fn assert_oauth_failure(body: &Value, error: &str) {
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(
        body["Message"].is_string(),
        "the vendor body is kept: {body}"
    );
    assert!(body["Errors"].is_array(), "the vendor body is kept: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_library_refreshes_after_changing_the_password() {
    let gw = gateway().await;
    let pw = "Library-Flow-Pass-31";
    let who = user(&gw, "oauth.library@example.com", pw).await;
    let login = [
        ("grant_type", "password"),
        ("username", who.username.as_str()),
        ("password", pw),
    ];
    let (status, body) = oauth_token(&gw, CLIENT, &login).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let (acting, acting_refresh) = tokens(&body);
    // Another device of the same user.
    let (_, other) = oauth_token(&gw, CLIENT, &login).await;
    let (other_access, other_refresh) = tokens(&other);

    let next = "Library-Flow-Next-32";
    assert_eq!(oauth_change(&gw, &acting, pw, next).await, 204);

    // The library refreshes later with the refresh token it holds: it keeps working.
    let refresh = |token: &str| {
        [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token.to_owned()),
        ]
    };
    let form = refresh(&acting_refresh);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = oauth_token(&gw, CLIENT, &form).await;
    assert_eq!(
        status, 200,
        "the changing session's refresh survives: {body}"
    );
    let (renewed, _) = tokens(&body);
    assert_eq!(
        oauth_change(&gw, &renewed, next, "Library-Flow-Last-33").await,
        204,
        "the refreshed token is a working session"
    );

    // The user's other sessions are gone, their refresh tokens with them.
    assert_eq!(
        oauth_change(&gw, &other_access, next, "Nope-Other-34").await,
        401
    );
    let form = refresh(&other_refresh);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = oauth_token(&gw, CLIENT, &form).await;
    assert_eq!(status, 400, "{body}");
    assert_oauth_failure(&body, "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_failures_carry_the_rfc_6749_error() {
    let gw = gateway().await;
    let pw = "Failure-Body-Pass-41";
    let who = user(&gw, "oauth.failures@example.com", pw).await;
    let name = who.username.as_str();

    let wrong = [
        ("grant_type", "password"),
        ("username", name),
        ("password", "Not-The-Password-1"),
    ];
    let (status, body) = oauth_token(&gw, CLIENT, &wrong).await;
    assert_eq!(status, 400);
    assert_oauth_failure(&body, "invalid_grant");

    let right = [
        ("grant_type", "password"),
        ("username", name),
        ("password", pw),
    ];
    let (status, body) = oauth_token(&gw, ("wrong", "secret"), &right).await;
    assert_eq!(status, 401);
    assert_oauth_failure(&body, "invalid_client");

    let odd = [("grant_type", "urn:example:odd"), ("username", name)];
    let (status, body) = oauth_token(&gw, CLIENT, &odd).await;
    assert_eq!(status, 400);
    assert_oauth_failure(&body, "unsupported_grant_type");

    let (status, body) = oauth_token(&gw, CLIENT, &[("username", name)]).await;
    assert_eq!(status, 400);
    assert_oauth_failure(&body, "invalid_request");

    let (status, body) = oauth_token(
        &gw,
        CLIENT,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "never-issued"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_oauth_failure(&body, "invalid_grant");

    // Other routes keep the vendor's body alone.
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .bearer_auth("not-a-token")
        .json(&json!({"CurrentPassword": pw, "NewPassword": "Whatever-Else-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("error").is_none(), "{body}");
    assert!(body["Message"].is_string(), "{body}");
}

// ----- token lifetimes per dialect ------------------------------------------------------------

/// Each dialect's session lives as long as its vendor documents, to the second: a change made a
/// second before the end works, the same session a second after it is refused in the vendor's
/// style. Crayon and Crafter document none and get `token_ttl_secs` (1 h).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dialect_session_lives_as_its_vendor_documents() {
    let gw = gateway().await;
    for (d, ttl) in [
        (ETAPP, 86_400),
        (AKANA, 1_800),
        (OAUTH, 86_400),
        (CRAYON, 3_600),
        (CRAFTER, 3_600),
    ] {
        let pw = "Lifetime-Pass-One-51";
        let who = user(&gw, &format!("lifetime.{}@example.com", d.name()), pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        gw.clock.advance(ttl - 1);
        let next = "Lifetime-Pass-Two-52";
        let a = Answer::of(change(&gw, d, &s, &who, pw, next).await).await;
        assert_eq!(
            a.status,
            d.change_ok_status(),
            "{} at ttl - 1: {a}",
            d.name()
        );
        gw.clock.advance(2);
        let a = Answer::of(change(&gw, d, &s, &who, next, "Lifetime-Pass-Three-53").await).await;
        assert_eq!(a.status, 401, "{} at ttl + 1: {a}", d.name());
        assert!(a.in_style(d), "{}: {a}", d.name());
    }
}

/// What the clients are told matches: OAuth-style `expires_in` for both grants, the Akana
/// cookie's `Max-Age`, the native API's `expires_in` (the global setting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_lifetimes_match() {
    let gw = gateway().await;
    let pw = "Announced-Pass-61";
    let who = user(&gw, "announced@example.com", pw).await;
    let login_form = [
        ("grant_type", "password"),
        ("username", who.username.as_str()),
        ("password", pw),
    ];
    let (_, body) = oauth_token(&gw, CLIENT, &login_form).await;
    assert_eq!(body["expires_in"], 86_400, "{body}");
    let (_, body) = oauth_token(&gw, CLIENT, &[("grant_type", "client_credentials")]).await;
    assert_eq!(body["expires_in"], 86_400, "{body}");

    let res = login_raw(&gw, AKANA, &who.username, pw).await;
    let cookies: Vec<String> = (res.headers().get_all("set-cookie").iter())
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .filter(|c| c.starts_with("AtmoAuthToken_") || c.starts_with("Csrf-Token_"))
            .all(|c| c.contains("Max-Age=1800")),
        "{cookies:?}"
    );

    let res = gw.login(&who.username, pw).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["expires_in"], 3_600,
        "the native API keeps token_ttl_secs: {body}"
    );
}

/// `login/renewToken` starts a fresh 30 minutes; the session it replaced ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn akana_renew_token_starts_a_fresh_half_hour() {
    let gw = gateway().await;
    let pw = "Renewal-Pass-71";
    let who = user(&gw, "renewal@example.com", pw).await;
    let s = login(&gw, AKANA, &who.username, pw).await;
    gw.clock.advance(1_700);
    let res = authed(
        &gw,
        AKANA,
        Method::POST,
        "/api/login/renewToken",
        &s,
        Csrf::Proper,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let set: Vec<(String, String)> = (res.headers().get_all("set-cookie").iter())
        .filter_map(|v| {
            let pair = v.to_str().ok()?.split(';').next()?.to_owned();
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    let cookie = |prefix: &str| {
        set.iter()
            .find(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| v.clone())
    };
    let renewed = Session {
        token: String::new(),
        cookie: cookie("AtmoAuthToken_"),
        csrf: cookie("Csrf-Token_"),
    };
    assert!(
        renewed.cookie.is_some() && renewed.csrf.is_some(),
        "{set:?}"
    );
    gw.clock.advance(1_700);
    let a = Answer::of(change(&gw, AKANA, &s, &who, pw, "Renewal-Nope-72").await).await;
    assert_eq!(a.status, 401, "the replaced session: {a}");
    let a = Answer::of(change(&gw, AKANA, &renewed, &who, pw, "Renewal-Pass-73").await).await;
    assert_eq!(
        a.status,
        AKANA.change_ok_status(),
        "29 minutes into the renewal: {a}"
    );
}

/// `[dialects.token_ttl_secs]` replaces one dialect's documented lifetime, and only its.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_overrides_one_dialect_lifetime() {
    let gw = gateway_with(|s| {
        s.dialects.token_ttl_secs.insert("etapp".into(), 600);
    })
    .await;
    let pw = "Override-Pass-81";
    let who = user(&gw, "override@example.com", pw).await;
    let etapp = login(&gw, ETAPP, &who.username, pw).await;
    let oauth = login(&gw, OAUTH, &who.username, pw).await;
    gw.clock.advance(601);
    let a = Answer::of(change(&gw, ETAPP, &etapp, &who, pw, "Override-Nope-82").await).await;
    assert_eq!(a.status, 401, "{a}");
    let a = Answer::of(change(&gw, OAUTH, &oauth, &who, pw, "Override-Pass-83").await).await;
    assert_eq!(a.status, 204, "OAuth-style keeps its 24 h: {a}");
}

// ----- Et-App two-factor login, as ETNA's Python sample (`EtnaAPIRequest`) runs it ---------------

/// The login codes delivered to `username` through the notifier (the reset outbox), newest
/// last, waiting for the background delivery (bounded polling, no fixed sleep).
async fn login_codes(gw: &Gateway, username: &str, count: usize) -> Vec<String> {
    let path = gw.path("reset-outbox.jsonl");
    for _ in 0..400 {
        let found: Vec<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["username"] == username && v["event"] == "login_code_requested")
            .filter_map(|v| v["code"].as_str().map(str::to_owned))
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no login code for {username} in the outbox");
}

/// `POST {base}/token` exactly as the sample sends it: `Accept: application/json`, the app key,
/// the credentials in headers, no body and no Content-Type; its second step repeats the headers
/// and adds `VerificationCode` and `Authorization` (the interim token).
async fn etna_token(
    gw: &Gateway,
    username: &str,
    password: &str,
    second: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut req = gw
        .http
        .post(gw.at("/api/token"))
        .header(ACCEPT, "application/json")
        .header("Et-App-Key", APP_KEY)
        .header("Username", username)
        .header("Password", password);
    if let Some((interim, code)) = second {
        req = req
            .header("VerificationCode", code)
            .header("Authorization", interim);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// The sample's next call: the password change with `Bearer {Token}`.
async fn etna_change(gw: &Gateway, token: &str, current: &str, new: &str) -> u16 {
    gw.http
        .put(gw.at("/api/v1.0/users/@me/password/change"))
        .header("Et-App-Key", APP_KEY)
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"OldPassword": current, "Password": new, "PasswordConfirm": new}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn two_factor(gw: &Gateway, who: &Who, method: &str) -> Value {
    let res = gw
        .http
        .put(gw.at(&format!("/admin/users/{}/two-factor", who.id)))
        .bearer_auth(crate::common::ADMIN_TOKEN)
        .json(&json!({ "method": method }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The 202 step as the sample reads it: `State` Expecting and the interim `Token`.
fn expecting(status: u16, body: &Value) -> String {
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["Step"], "VerificationCode", "{body}");
    assert_eq!(body["Reason"], "Expecting confirmation code", "{body}");
    assert_eq!(body["State"], "Expecting", "{body}");
    body["Token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etna_sample_logs_in_without_and_with_a_delivered_code() {
    let gw = gateway().await;
    let pw = "Etna-Sample-Pass-91";
    let who = user(&gw, "etna.sample@example.com", pw).await;
    // Two-factor off: one call, 200 Succeeded.
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["State"], "Succeeded");

    assert_eq!(two_factor(&gw, &who, "code").await["method"], "code");
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    assert_eq!(
        etna_change(&gw, &interim, pw, "Etna-Nope-92").await,
        401,
        "the interim token is no session"
    );
    let code = login_codes(&gw, &who.username, 1).await.remove(0);
    assert_eq!(code.len(), 6);
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["State"], "Succeeded");
    let token = body["Token"].as_str().unwrap().to_owned();
    assert_eq!(
        etna_change(&gw, &token, pw, "Etna-Sample-Next-93").await,
        200
    );

    // `Bearer ` before the interim token works too.
    let pw = "Etna-Sample-Next-93";
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let code = login_codes(&gw, &who.username, 2).await.remove(1);
    let bearer = format!("Bearer {interim}");
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&bearer, &code))).await;
    assert_eq!(status, 200, "{body}");

    // A wrong password never reaches the second step.
    let (status, body) = etna_token(&gw, &who.username, "Wrong-Pass-94", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["Step"], "BaseAuthentication");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_codes_are_single_use_short_lived_and_bound() {
    let gw = gateway().await;
    let pw = "Code-Rules-Pass-101";
    let who = user(&gw, "code.rules@example.com", pw).await;
    two_factor(&gw, &who, "code").await;

    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let code = login_codes(&gw, &who.username, 1).await.remove(0);
    let (status, _) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 200);
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 401, "single use: {body}");

    // Short-lived: five minutes.
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let code = login_codes(&gw, &who.username, 2).await.remove(1);
    gw.clock.advance(301);
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 401, "expired: {body}");

    // A newer login replaces the older challenge; its code does not serve another's token.
    let (_, body) = etna_token(&gw, &who.username, pw, None).await;
    let older = body["Token"].as_str().unwrap().to_owned();
    let (_, body) = etna_token(&gw, &who.username, pw, None).await;
    let newer = body["Token"].as_str().unwrap().to_owned();
    let code = login_codes(&gw, &who.username, 4).await.remove(3);
    let (status, _) = etna_token(&gw, &who.username, pw, Some((&older, &code))).await;
    assert_eq!(status, 401, "the replaced challenge");
    let (status, _) = etna_token(&gw, &who.username, pw, Some((&newer, &code))).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_guesses_are_limited() {
    let gw = gateway().await;
    let pw = "Guess-Limit-Pass-111";
    let who = user(&gw, "guess.limit@example.com", pw).await;
    two_factor(&gw, &who, "code").await;
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let code = login_codes(&gw, &who.username, 1).await.remove(0);
    // A wrong guess that cannot be the code.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let limit = credgate_core::LimitConfig::default().code_failures;
    for i in 0..limit {
        let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, wrong))).await;
        assert_eq!(status, 401, "guess {i}: {body}");
    }
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(
        status, 429,
        "past the budget even the right code waits: {body}"
    );
    let audit = gw.audit(&who.id).await;
    assert!(
        audit.iter().any(|r| r["kind"] == "second_factor_failed"),
        "failures are audited"
    );
}

/// An authenticator app's code, computed here from the enrolled secret with the gateway's
/// clock (RFC 6238); a code accepted once is refused again within its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_login_and_replay_refused() {
    use credgate_core::{totp, Clock};
    let gw = gateway().await;
    let pw = "Totp-Login-Pass-121";
    let who = user(&gw, "totp.login@example.com", pw).await;
    let enrolled = two_factor(&gw, &who, "totp").await;
    assert_eq!(enrolled["method"], "totp");
    let secret = totp::base32_decode(enrolled["totp_secret"].as_str().unwrap()).unwrap();
    assert!(enrolled["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let now = || gw.clock.now();

    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let code = totp::code_at_step(&secret, totp::step_at(now()));
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        login_codes_now(&gw, &who.username).is_empty(),
        "nothing is delivered to a TOTP user"
    );

    // The same code again, within its window, on a fresh challenge: a replay.
    let (status, body) = etna_token(&gw, &who.username, pw, None).await;
    let interim = expecting(status, &body);
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &code))).await;
    assert_eq!(status, 401, "replay: {body}");
    assert!(gw
        .audit(&who.id)
        .await
        .iter()
        .any(|r| r["kind"] == "second_factor_failed" && r["detail"]["reason"] == "totp_replayed"));

    // A code from two steps ago is out of the window; the next step's code works.
    gw.clock.advance(totp::STEP_SECS);
    let stale = totp::code_at_step(&secret, totp::step_at(now()) - 2);
    let (status, _) = etna_token(&gw, &who.username, pw, Some((&interim, &stale))).await;
    assert_eq!(status, 401, "outside the drift window");
    let fresh = totp::code_at_step(&secret, totp::step_at(now()));
    let (status, body) = etna_token(&gw, &who.username, pw, Some((&interim, &fresh))).await;
    assert_eq!(status, 200, "{body}");

    // Off again: one call.
    two_factor(&gw, &who, "off").await;
    let (status, _) = etna_token(&gw, &who.username, pw, None).await;
    assert_eq!(status, 200);
}

/// What is in the outbox for `username` right now (login codes only).
fn login_codes_now(gw: &Gateway, username: &str) -> Vec<Value> {
    std::fs::read_to_string(gw.path("reset-outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["username"] == username && v["event"] == "login_code_requested")
        .collect()
}

/// A dialect without a second step never bypasses a user's second factor; the native API
/// neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dialect_bypasses_the_second_factor() {
    let gw = gateway().await;
    let pw = "No-Bypass-Pass-131";
    let who = user(&gw, "no.bypass@example.com", pw).await;
    two_factor(&gw, &who, "totp").await;
    for d in [AKANA, CRAYON, CRAFTER, OAUTH] {
        let a = Answer::of(login_raw(&gw, d, &who.username, pw).await).await;
        assert_eq!(a.status, d.login_failed_status(), "{}: {a}", d.name());
    }
    let res = gw.login(&who.username, pw).await;
    assert_eq!(res.status(), 400);
}
