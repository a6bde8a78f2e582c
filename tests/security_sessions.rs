//! Sessions bound to their issuer (dialect or native API, client, application key), refresh
//! tokens per RFC 9700 (rotation, reuse detection, revocation with their session) and RFC 7009
//! revocation, on the native API and the OAuth-style dialect.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{admin_create, TracedBinary, ADMIN_TOKEN};
use crate::security_common::*;

/// `token` as dialect `d`'s clients would carry it (Akana: inside its cookie, with the CSRF
/// value that token would have).
fn carried_as(d: Dialect, token: &str) -> Session {
    match d {
        AKANA => {
            let csrf = credgate_dialect::csrf_value(&credgate_core::SecretToken::new(token));
            Session {
                token: token.to_owned(),
                cookie: Some(format!("TokenID%3D{token}")),
                csrf: Some(format!("TokenID%3D{csrf}")),
            }
        }
        _ => Session {
            token: token.to_owned(),
            cookie: None,
            csrf: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_works_only_in_the_dialect_that_issued_it() {
    let gw = gateway().await;
    let pw = "Bound-Session-Pass-31";
    for from in all() {
        let who = user(&gw, &format!("bound.{}@example.com", from.name()), pw).await;
        let issued = login(&gw, from, &who.username, pw).await;
        for to in all().into_iter().filter(|&to| to != from) {
            let stolen = carried_as(to, &issued.token);
            let a =
                Answer::of(change(&gw, to, &stolen, &who, pw, "Moved-Elsewhere-77").await).await;
            assert_eq!(
                a.status,
                401,
                "a {} session used as a {} one: {a}",
                from.name(),
                to.name()
            );
            assert!(a.in_style(to), "{} answers in its style: {a}", to.name());
        }
        // A native API token is no dialect's session either, nor a dialect's a native one.
        let native = gw.token(&who.username, pw).await;
        let a = Answer::of(
            change(
                &gw,
                from,
                &carried_as(from, &native),
                &who,
                pw,
                "Nope-Native-78",
            )
            .await,
        )
        .await;
        assert_eq!(a.status, 401, "a native token in {}: {a}", from.name());
        let res = gw.change(&issued.token, "me", pw, "Nope-Dialect-79").await;
        assert_eq!(
            res.status(),
            401,
            "a {} token on the native API",
            from.name()
        );
        // The session is valid where it was issued: the password was never changed above.
        let a = Answer::of(change(&gw, from, &issued, &who, pw, "Changed-At-Home-80").await).await;
        assert_eq!(a.status, from.change_ok_status(), "{}: {a}", from.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etapp_token_in_an_akana_cookie_is_no_akana_session() {
    let gw = gateway().await;
    let who = user(&gw, "cookie.etapp@example.com", "Cookie-Etapp-Pass-1").await;
    let etapp = login(&gw, ETAPP, &who.username, "Cookie-Etapp-Pass-1").await;
    let status = |s: Session| {
        gw.http
            .get(gw.at("/api/login/status"))
            .header(
                "Cookie",
                format!("{AKANA_COOKIE}={}", s.cookie.as_deref().unwrap()),
            )
            .send()
    };
    let a = Answer::of(status(carried_as(AKANA, &etapp.token)).await.unwrap()).await;
    assert_eq!(a.status, 401, "{a}");
    let akana = login(&gw, AKANA, &who.username, "Cookie-Etapp-Pass-1").await;
    let a = Answer::of(status(akana).await.unwrap()).await;
    assert_eq!(a.status, 200, "the Akana session itself: {a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etapp_token_needs_the_app_key_it_was_issued_with() {
    let gw = gateway().await;
    let other_key = "sec-etna-second-app-key-98765";
    let res = gw
        .admin_post("/admin/apps", json!({"key": other_key}))
        .await;
    assert_eq!(res.status(), 201);
    let pw = "App-Bound-Pass-42";
    let who = user(&gw, "app.bound@example.com", pw).await;
    let s = login(&gw, ETAPP, &who.username, pw).await;
    let with_key = |key: &'static str| {
        gw.http
            .put(gw.at(&ETAPP.change_path(&who)))
            .bearer_auth(&s.token)
            .header("Et-App-Key", key)
            .json(&ETAPP.change_body(&who, json!(pw), json!("App-Bound-Next-43")))
            .send()
    };
    let a = Answer::of(with_key(other_key).await.unwrap()).await;
    assert_eq!(a.status, 401, "another registered app key: {a}");
    let a = Answer::of(with_key(APP_KEY).await.unwrap()).await;
    assert_eq!(a.status, 200, "the key it was issued with: {a}");
}

// ----- refresh tokens (OAuth-style and native) ------------------------------------------------

/// A password grant at the OAuth-style token endpoint as `client`: (access, refresh).
async fn oauth_login(
    gw: &impl Endpoint,
    client: (&str, &str),
    username: &str,
    pw: &str,
) -> (String, String) {
    let res = gw
        .client()
        .post(gw.at("/auth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A refresh grant as `client`: the new (access, refresh), or the status it failed with.
async fn oauth_refresh(
    gw: &impl Endpoint,
    client: (&str, &str),
    refresh: &str,
) -> Result<(String, String), u16> {
    let res = gw
        .client()
        .post(gw.at("/auth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
        .send()
        .await
        .unwrap();
    if res.status() != 200 {
        return Err(res.status().as_u16());
    }
    let body: Value = res.json().await.unwrap();
    Ok((
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    ))
}

/// Whether `access` is a live OAuth-style user session (a change with a wrong current
/// password is refused as such, not as unauthenticated).
async fn oauth_alive(gw: &impl Endpoint, access: &str) -> bool {
    let res = gw
        .client()
        .post(gw.at("/auth/password/change"))
        .bearer_auth(access)
        .json(&json!({"CurrentPassword": "Not-The-Password-0", "NewPassword": "Whatever-Next-99"}))
        .send()
        .await
        .unwrap();
    match res.status().as_u16() {
        401 => false,
        400 => true,
        other => panic!("unexpected status {other}"),
    }
}

const CLIENT: (&str, &str) = (CLIENT_ID, CLIENT_SECRET);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_refresh_token_revokes_its_whole_family() {
    let gw = gateway_with(|s| s.limits.user_failures = 0).await;
    let pw = "Refresh-Family-Pass-5";
    let who = user(&gw, "family@example.com", pw).await;
    let (access0, refresh0) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    let (access1, refresh1) = oauth_refresh(&gw, CLIENT, &refresh0).await.unwrap();
    let (access2, refresh2) = oauth_refresh(&gw, CLIENT, &refresh1).await.unwrap();
    assert!(oauth_alive(&gw, &access2).await);
    // An unrelated session of the same user.
    let (other_access, other_refresh) = oauth_login(&gw, CLIENT, &who.username, pw).await;

    // The first refresh token, spent long ago, comes back: an attacker holds a copy.
    assert_eq!(oauth_refresh(&gw, CLIENT, &refresh0).await, Err(400));
    assert_eq!(
        oauth_refresh(&gw, CLIENT, &refresh2).await,
        Err(400),
        "the newest refresh token of the family is revoked too"
    );
    for (i, access) in [access0, access1, access2].iter().enumerate() {
        assert!(
            !oauth_alive(&gw, access).await,
            "access token {i} of the family"
        );
    }
    assert!(
        oauth_alive(&gw, &other_access).await,
        "other sessions are untouched"
    );
    assert!(oauth_refresh(&gw, CLIENT, &other_refresh).await.is_ok());
    let audit = gw.audit(&who.id).await;
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "sessions_revoked"
                && e["detail"]["reason"] == "refresh_token_reused"),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_is_bound_to_its_client_and_dialect() {
    let gw = gateway().await;
    let res = gw
        .admin_post(
            "/admin/clients",
            json!({"client_id": "second-client", "client_secret": "Second-Client-Secret-1"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let pw = "Client-Bound-Pass-6";
    let who = user(&gw, "client.bound@example.com", pw).await;
    let (_, refresh) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    assert_eq!(
        oauth_refresh(&gw, ("second-client", "Second-Client-Secret-1"), &refresh).await,
        Err(400),
        "another client"
    );
    // Nor at the native token endpoint, with the same client.
    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Refused presentations spend nothing: the right client still refreshes.
    assert!(oauth_refresh(&gw, CLIENT, &refresh).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_password_change_end_refresh_tokens() {
    let gw = gateway().await;
    let pw = "Logout-Refresh-Pass-7";
    let who = user(&gw, "logout.refresh@example.com", pw).await;
    // Native: the changing session keeps its refresh token, the others lose theirs.
    let grant = |password: &'static str| {
        gw.http
            .post(gw.at("/v1/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", who.username.as_str()),
                ("password", password),
            ])
            .send()
    };
    let tokens = |body: Value| {
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let (acting, acting_refresh) = tokens(grant(pw).await.unwrap().json().await.unwrap());
    let (_, other_refresh) = tokens(grant(pw).await.unwrap().json().await.unwrap());
    let next = "Logout-Refresh-Next-8";
    assert_eq!(gw.change(&acting, "me", pw, next).await.status(), 204);
    let refresh = |token: String| {
        gw.http
            .post(gw.at("/v1/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ])
            .send()
    };
    assert_eq!(refresh(other_refresh).await.unwrap().status(), 400);
    let res = refresh(acting_refresh).await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the changing session's own refresh token survives"
    );
    let (renewed, renewed_refresh) = tokens(res.json().await.unwrap());
    assert_eq!(
        gw.change(&renewed, "me", next, "Logout-Refresh-Last-9")
            .await
            .status(),
        204
    );
    assert_eq!(refresh(renewed_refresh).await.unwrap().status(), 200);

    // A dialect logout (Akana) ends its session; the OAuth-style refresh token of another
    // session is ended by a password change made without it.
    let pw = "Logout-Refresh-Last-9";
    let (oauth_access, oauth_refresh_token) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    let s = login(&gw, AKANA, &who.username, pw).await;
    let res = authed(
        &gw,
        AKANA,
        Method::POST,
        "/api/login/logout",
        &s,
        Csrf::Proper,
    )
    .send()
    .await
    .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let a = Answer::of(change(&gw, AKANA, &s, &who, pw, "After-Logout-Pass-10").await).await;
    assert_eq!(a.status, 401, "the logged-out session: {a}");
    assert!(oauth_alive(&gw, &oauth_access).await);
    let (fresh, _) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .bearer_auth(&fresh)
        .json(&json!({"CurrentPassword": pw, "NewPassword": "After-Change-Pass-11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        oauth_refresh(&gw, CLIENT, &oauth_refresh_token).await,
        Err(400)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_per_rfc_7009_on_the_native_api_and_the_oauth_style_dialect() {
    let gw = gateway().await;
    let pw = "Revocation-Pass-12";
    let who = user(&gw, "revoke@example.com", pw).await;
    let revoke =
        |path: &'static str, token: String, client: Option<(&'static str, &'static str)>| {
            let mut req = gw.http.post(gw.at(path));
            if let Some((id, secret)) = client {
                req = req.basic_auth(id, Some(secret));
            }
            req.form(&[
                ("token", token.as_str()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
        };

    // OAuth-style: revoking the refresh token ends its access token too.
    let (access, refresh) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    let res = revoke("/auth/revoke", refresh.clone(), Some(CLIENT))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(oauth_refresh(&gw, CLIENT, &refresh).await, Err(400));
    assert!(!oauth_alive(&gw, &access).await);
    // Unknown tokens: 200 all the same. A wrong client secret: the dialect's invalid_client.
    let res = revoke("/auth/revoke", "never-issued".into(), Some(CLIENT))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = revoke(
        "/auth/revoke",
        "never-issued".into(),
        Some((CLIENT_ID, "wrong")),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);
    let res = revoke("/auth/revoke", "never-issued".into(), None)
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the dialect requires client authentication"
    );
    // Another issuer's token is left alone (and the answer tells nothing).
    let (access, _) = oauth_login(&gw, CLIENT, &who.username, pw).await;
    let res = revoke("/v1/revoke", access.clone(), None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        oauth_alive(&gw, &access).await,
        "a native revocation of a dialect token"
    );

    // Native: an access token revoked alone; a refresh token with its session.
    let res = gw.login(&who.username, pw).await;
    let body: Value = res.json().await.unwrap();
    let (access, refresh) = (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    );
    let res = revoke("/v1/revoke", access.clone(), None).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        gw.change(&access, "me", pw, "Never-Applied-13")
            .await
            .status(),
        401
    );
    let res = revoke("/v1/revoke", refresh.clone(), None).await.unwrap();
    assert_eq!(res.status(), 200);
    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = gw
        .http
        .post(gw.at("/v1/revoke"))
        .form(&[("token_type_hint", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no token");
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_binding_and_refresh_families_hold_across_two_instances_on_postgresql() {
    let Some(db) = crate::multi_instance::fresh_database() else {
        return;
    };
    let env = |dir: &str| {
        vec![
            ("CREDGATE_DATABASE_URL", db.clone()),
            ("CREDGATE_TOKEN_CACHE_SECS", "0".to_owned()),
            ("CREDGATE_RESET__OUTBOX", format!("{dir}/outbox.jsonl")),
        ]
    };
    let first = TracedBinary::start_with(ADMIN_TOKEN, &env("a")).await;
    let second = TracedBinary::start_with(ADMIN_TOKEN, &env("b")).await;
    let client = json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    admin_create(&first.url, ADMIN_TOKEN, "/admin/clients", client).await;
    let pw = "Postgres-Bound-Pass-1";
    let created = admin_create(
        &first.url,
        ADMIN_TOKEN,
        "/admin/users",
        json!({"username": "pg.bound@example.com", "password": pw}),
    )
    .await;
    let who = Who {
        id: created["id"].as_str().unwrap().to_owned(),
        username: "pg.bound@example.com".to_owned(),
    };
    let remote = |url: &str| Remote {
        url: url.to_owned(),
        http: reqwest::Client::new(),
    };
    let (a, b) = (remote(&first.url), remote(&second.url));

    // A Crafter session from one instance is no Crayon or OAuth-style session on the other.
    let crafter = login(&a, CRAFTER, &who.username, pw).await;
    for d in [CRAYON, OAUTH] {
        let stolen = carried_as(d, &crafter.token);
        let answer = Answer::of(change(&b, d, &stolen, &who, pw, "Moved-Pg-Pass-2").await).await;
        assert_eq!(answer.status, 401, "{}: {answer}", d.name());
    }

    // Rotation on one instance, the replay on the other: the family dies on both.
    let (_, refresh0) = oauth_login(&a, CLIENT, &who.username, pw).await;
    let (access1, refresh1) = oauth_refresh(&b, CLIENT, &refresh0).await.unwrap();
    assert!(oauth_alive(&a, &access1).await);
    assert_eq!(oauth_refresh(&a, CLIENT, &refresh0).await, Err(400));
    assert!(!oauth_alive(&a, &access1).await && !oauth_alive(&b, &access1).await);
    assert_eq!(oauth_refresh(&b, CLIENT, &refresh1).await, Err(400));
    // The Crafter session, another family, lives on.
    let answer =
        Answer::of(change(&b, CRAFTER, &crafter, &who, pw, "Changed-Pg-Pass-3").await).await;
    assert_eq!(answer.status, 200, "{answer}");
}
