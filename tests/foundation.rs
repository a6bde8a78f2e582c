//! The native API, admin API and server limits over real HTTP.

use serde_json::{json, Value};

use crate::common::{self, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_password_revokes_other_sessions_and_swaps_credentials() {
    let gw = common::start().await;
    let id = gw.user("alice", "Old-Password-11").await;
    let acting = gw.token("alice", "Old-Password-11").await;
    let other = gw.token("alice", "Old-Password-11").await;

    let res = gw
        .change(&acting, &id, "Old-Password-11", "New-Password-22")
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["cache-control"], "no-store");

    assert_eq!(
        gw.login("alice", "Old-Password-11").await.status(),
        400,
        "old password refused"
    );
    assert_eq!(
        gw.login("alice", "New-Password-22").await.status(),
        200,
        "new password accepted"
    );
    // The other session is revoked; the one that acted survives.
    let res = gw
        .change(&other, &id, "New-Password-22", "Third-Password-33")
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = gw
        .change(&acting, "me", "New-Password-22", "Third-Password-33")
        .await;
    assert_eq!(res.status(), 204);

    let kinds: Vec<String> = gw
        .audit(&id)
        .await
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "user_created",
        "login_succeeded",
        "token_issued",
        "password_changed",
        "sessions_revoked",
        "login_failed",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "audit has {kind}: {kinds:?}"
        );
    }
    let row = &gw.audit(&id).await[0];
    assert_eq!(row["dialect"], "native");
    assert!(!row["request_id"].as_str().unwrap().is_empty());
    assert_eq!(row["client_addr"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_with_the_same_current_password_exactly_one_wins() {
    let gw = common::start().await;
    let id = gw.user("racer", "Start-Password-1").await;
    let token = gw.token("racer", "Start-Password-1").await;
    let attempts = (0..8).map(|i| {
        let (gw, token, id) = (&gw, token.clone(), id.clone());
        async move {
            gw.change(
                &token,
                &id,
                "Start-Password-1",
                &format!("Winner-Password-{i}"),
            )
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
    // Losers see a conflict, the changed password, or (past five of those) the guessing limit.
    assert!(
        statuses.iter().all(|s| [204, 400, 409, 429].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(gw.login("racer", "Start-Password-1").await.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_client_errors() {
    let gw = common::start().await;
    let id = gw.user("bob", "Good-Password-1").await;
    let token = gw.token("bob", "Good-Password-1").await;
    let url = gw.at(&format!("/v1/users/{id}/password"));

    let big = format!("{{\"current_password\":\"{}\"}}", "x".repeat(65 * 1024));
    let res = gw
        .http
        .put(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = gw
        .http
        .put(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"current_password\":")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        res.json::<Value>().await.unwrap()["type"],
        "urn:credgate:error:malformed_request"
    );

    let res = gw
        .http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({"current_password": 5, "new_password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let res = gw
        .http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({"current_password": "Good-Password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["errors"][0]["field"],
        "new_password"
    );

    let res = gw.change(&token, &id, "Good-Password-1", "password").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], "urn:credgate:error:policy_violation");
    assert_eq!(body["rules"][0]["rule"], "common");

    let res = gw
        .change(&token, &id, "Good-Password-1", &"y".repeat(73))
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["rules"][0]["rule"],
        "max_length"
    );

    assert_eq!(
        gw.http
            .get(gw.at("/no/such/route"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        gw.http
            .get(gw.at("/v1/token"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "actix answers unknown methods in a scope with 404"
    );
    let res = gw
        .http
        .get(gw.at("/auth/password/change"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");

    // The password is unchanged by all of the above.
    assert_eq!(gw.login("bob", "Good-Password-1").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_grants_and_rfc6749_errors() {
    let gw = common::start().await;
    gw.user("carol", "Blue-Sky-Pass-1").await;
    assert_eq!(
        gw.admin_post(
            "/admin/clients",
            json!({"client_id": "app1", "client_secret": "s3cret-client"})
        )
        .await
        .status(),
        201
    );

    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .basic_auth("app1", Some("s3cret-client"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_i64()),
        (Some("Bearer"), Some(3600))
    );

    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .basic_auth("app1", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_client"})
    );

    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .json(&json!({"grant_type": "password", "username": "carol", "password": "nope-nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "invalid_grant"})
    );
    let res = gw
        .http
        .post(gw.at("/v1/token"))
        .form(&[("grant_type", "magic")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "unsupported_grant_type"})
    );

    // Refresh tokens rotate and cannot be replayed.
    let res = gw.login("carol", "Blue-Sky-Pass-1").await;
    let refresh = res.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    assert_eq!(
        gw.http
            .post(gw.at("/v1/token"))
            .form(&grant)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        gw.http
            .post(gw.at("/v1/token"))
            .form(&grant)
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Expired sessions are refused (the clock is injected, nothing sleeps).
    let token = gw.token("carol", "Blue-Sky-Pass-1").await;
    gw.clock.advance(3601);
    assert_eq!(
        gw.change(&token, "me", "Blue-Sky-Pass-1", "Blue-Sky-Pass-2")
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_and_health() {
    let gw = common::start().await;
    assert_eq!(
        gw.http
            .get(gw.at("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        gw.http.get(gw.at("/readyz")).send().await.unwrap().status(),
        200
    );
    let res = gw
        .http
        .post(gw.at("/admin/users"))
        .json(&json!({"username": "x", "password": "Abcdefgh-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = gw
        .http
        .post(gw.at("/admin/users"))
        .bearer_auth("wrong-token-wrong-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let res = gw
        .admin_post("/admin/users", json!({"username": "dave", "password": "Green-Field-Pass-1", "id": "u-dave", "admin": true, "aliases": {"akana": "abc.acmepaymentscorp"}}))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"id": "u-dave"}));
    let res = gw
        .admin_post(
            "/admin/users",
            json!({"username": "dave", "password": "Green-Field-Pass-1"}),
        )
        .await;
    assert_eq!(res.status(), 409);
    let res = gw
        .admin_post("/admin/users", json!({"username": "erin"}))
        .await;
    assert_eq!(res.status(), 400);

    let res = gw
        .http
        .get(gw.at("/admin/users/u-dave"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(
        !text.contains("$2b$") && !text.contains("Green-Field-Pass-1"),
        "{text}"
    );
    let user: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (user["admin"].as_bool(), user["aliases"]["akana"].as_str()),
        (Some(true), Some("abc.acmepaymentscorp"))
    );
    let res = gw
        .http
        .get(gw.at("/admin/users/nobody"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    assert_eq!(
        gw.admin_post("/admin/apps", json!({"key": "et-app-key-1"}))
            .await
            .status(),
        201
    );
    let res = gw
        .http
        .get(gw.at("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    assert!(res.headers().get("server").is_none());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_is_off_without_a_token() {
    let gw = common::start_with(|s, _| s.admin_token = None).await;
    let res = gw
        .http
        .post(gw.at("/admin/users"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_checked_before_the_body() {
    let gw = common::start().await;
    // No session and a broken body: the vendor's 401/403, not a validation error.
    let res = gw
        .http
        .post(gw.at("/auth/password/change"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = gw
        .http
        .put(gw.at("/api/v1.0/users/@me/password/change"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "Application key is not defined or does not exist"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_is_locked_out_per_user_until_the_window_passes() {
    let gw = common::start().await;
    let id = gw.user("lock", "Right-Pass-Word-1").await;
    for _ in 0..5 {
        assert_eq!(gw.login("lock", "Wrong-Pass-Word-9").await.status(), 400);
    }
    let res = gw.login("lock", "Right-Pass-Word-1").await;
    assert_eq!(
        res.status(),
        429,
        "the right password is refused while locked out"
    );
    assert_eq!(res.headers()["retry-after"], "900");
    // Unknown users lock out the same way.
    for _ in 0..5 {
        gw.login("ghost-user", "Wrong-Pass-Word-9").await;
    }
    assert_eq!(
        gw.login("ghost-user", "Wrong-Pass-Word-9").await.status(),
        429
    );
    assert!(gw
        .audit(&id)
        .await
        .iter()
        .any(|r| r["kind"] == "attempt_refused"));

    gw.clock.advance(600);
    assert_eq!(
        gw.login("lock", "Right-Pass-Word-1").await.headers()["retry-after"],
        "300"
    );
    gw.clock.advance(300);
    assert_eq!(gw.login("lock", "Right-Pass-Word-1").await.status(), 200);
    // A success forgives earlier failures.
    for _ in 0..4 {
        gw.login("lock", "Wrong-Pass-Word-9").await;
    }
    assert_eq!(gw.login("lock", "Right-Pass-Word-1").await.status(), 200);
    for _ in 0..4 {
        gw.login("lock", "Wrong-Pass-Word-9").await;
    }
    assert_eq!(gw.login("lock", "Right-Pass-Word-1").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_from_one_address_is_limited_across_users() {
    let gw = common::start_with(|s, _| s.limits.address_failures = 8).await;
    gw.user("victim-a", "Right-Pass-Word-1").await;
    for i in 0..8 {
        gw.login(&format!("someone-{i}"), "Wrong-Pass-Word-9").await;
    }
    assert_eq!(
        gw.login("victim-a", "Right-Pass-Word-1").await.status(),
        429
    );
}
