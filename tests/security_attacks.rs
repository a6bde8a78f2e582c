//! Attacks on every dialect: guessing, stolen sessions, cross-user changes, CSRF, hostile input,
//! Unicode, and response hygiene. Each attack runs through the vendor's own requests.

use credgate_dialect::spec::BodyFormat;
use serde_json::{json, Value};

use crate::common::Gateway;
use crate::security_common::*;

const WINDOW: i64 = 900;
const USER_FAILURES: usize = 5;

/// Asserts the dialect's rate-limited answer and returns its Retry-After seconds.
fn assert_rate_limited(d: Dialect, a: &Answer, what: &str) -> u64 {
    assert_eq!(a.status, 429, "{}: {what}: {a}", d.name());
    let retry: u64 = a
        .header("retry-after")
        .unwrap_or_else(|| panic!("{}: {what}: no Retry-After: {a}", d.name()))
        .parse()
        .unwrap_or_else(|_| panic!("{}: {what}: Retry-After not seconds: {a}", d.name()));
    assert!(
        (1..=WINDOW as u64).contains(&retry),
        "{}: {what}: Retry-After {retry}",
        d.name()
    );
    assert!(
        d.rate_limited_body(&a.body, retry),
        "{}: {what}: not the dialect's rate_limited body: {a}",
        d.name()
    );
    retry
}

// ----- 1. brute force ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_guessing_locks_the_user_even_for_the_right_password_until_the_window_ends() {
    for d in all() {
        let gw = gateway().await;
        let (name, pw) = ("bf.user@example.com", "Bruteforce-Right-17");
        user(&gw, name, pw).await;
        for i in 0..USER_FAILURES {
            let a = Answer::of(login_raw(&gw, d, name, &format!("Wrong-Guess-{i}x")).await).await;
            assert_eq!(
                a.status,
                d.login_failed_status(),
                "{}: guess {i}: {a}",
                d.name()
            );
        }
        let a = Answer::of(login_raw(&gw, d, name, pw).await).await;
        assert_rate_limited(d, &a, "right password after 5 failures");

        gw.clock.advance(WINDOW);
        assert!(logs_in(&gw, d, name, pw).await, "{}: window over", d.name());

        // A success resets the user's counter: 4 failures, success, 4 failures, success.
        for round in 0..2 {
            for i in 0..USER_FAILURES - 1 {
                let a =
                    Answer::of(login_raw(&gw, d, name, &format!("Wrong-{round}-{i}z")).await).await;
                assert_eq!(a.status, d.login_failed_status(), "{}: {a}", d.name());
            }
            assert!(
                logs_in(&gw, d, name, pw).await,
                "{}: round {round}: a success must reset the counter",
                d.name()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_guessing_locks_current_password_checks() {
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Change-Guess-Right-23", "Change-Guess-Next-45");
        let who = user(&gw, "cg.user@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        for i in 0..USER_FAILURES {
            let a =
                Answer::of(change(&gw, d, &s, &who, &format!("Not-Current-{i}q"), new).await).await;
            assert_eq!(a.status, 400, "{}: wrong current {i}: {a}", d.name());
            assert!(a.in_style(d), "{}: {a}", d.name());
        }
        let a = Answer::of(change(&gw, d, &s, &who, pw, new).await).await;
        assert_rate_limited(
            d,
            &a,
            "change with the right current password after 5 failures",
        );
        // The same counter guards the login.
        let a = Answer::of(login_raw(&gw, d, &who.username, pw).await).await;
        assert_rate_limited(d, &a, "login after 5 failed changes");
        assert_eq!(password_changes(&gw, &who).await, 0, "{}", d.name());

        gw.clock.advance(WINDOW);
        assert!(
            logs_in(&gw, d, &who.username, pw).await,
            "{}: unchanged",
            d.name()
        );
        let a = Answer::of(change(&gw, d, &s, &who, pw, new).await).await;
        assert_eq!(
            a.status,
            d.change_ok_status(),
            "{}: after the window: {a}",
            d.name()
        );
        assert!(logs_in(&gw, d, &who.username, new).await, "{}", d.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_lock_out_exactly_like_known_ones() {
    for d in all() {
        let gw = gateway().await;
        let pw = "Known-User-Pass-31";
        user(&gw, "known.user@example.com", pw).await;
        let mut known = Vec::new();
        let mut ghost = Vec::new();
        for i in 0..=USER_FAILURES {
            let guess = format!("Wrong-Guess-{i}y");
            // The known user's 6th attempt carries the right password.
            let kp = if i == USER_FAILURES { pw } else { &guess };
            known.push(Answer::of(login_raw(&gw, d, "known.user@example.com", kp).await).await);
            ghost.push(Answer::of(login_raw(&gw, d, "ghost.user@example.com", &guess).await).await);
        }
        for (i, (k, g)) in known.iter().zip(&ghost).enumerate() {
            assert_eq!(
                (k.status, &k.body),
                (g.status, &g.body),
                "{}: attempt {i}: known and unknown users answer alike",
                d.name()
            );
        }
        assert_rate_limited(d, &ghost[USER_FAILURES], "unknown user, 6th attempt");
        assert_eq!(
            ghost[USER_FAILURES].header("retry-after").is_some(),
            known[USER_FAILURES].header("retry-after").is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_spraying_many_users_is_limited_too() {
    for d in all() {
        let gw = gateway_with(|s| {
            s.limits.address_failures = 8;
            s.limits.user_failures = 3;
        })
        .await;
        let pw = "Spray-Target-Pass-41";
        user(&gw, "spray.target@example.com", pw).await;
        // Configured per-user limit: 3.
        for i in 0..3 {
            let a = Answer::of(
                login_raw(&gw, d, "spray.target@example.com", &format!("Wrong-{i}s")).await,
            )
            .await;
            assert_eq!(a.status, d.login_failed_status(), "{}: {a}", d.name());
        }
        let a = Answer::of(login_raw(&gw, d, "spray.target@example.com", pw).await).await;
        assert_rate_limited(d, &a, "configured user limit of 3");
        gw.clock.advance(WINDOW);
        // Password spraying: two guesses each at many users stays under the user limit, but
        // the address runs out after 8.
        let mut refused = None;
        for i in 0..8 {
            let a = Answer::of(
                login_raw(
                    &gw,
                    d,
                    &format!("spray{}@example.com", i / 2),
                    "Summer-2024!",
                )
                .await,
            )
            .await;
            assert_eq!(
                a.status,
                d.login_failed_status(),
                "{}: spray {i}: {a}",
                d.name()
            );
        }
        for i in 0..2 {
            let a = Answer::of(login_raw(&gw, d, "spray.target@example.com", pw).await).await;
            if a.status == 429 {
                refused = Some(a);
                break;
            }
            assert!(i == 0, "{}: {a}", d.name());
        }
        let a = refused.unwrap_or_else(|| panic!("{}: the address limit never applied", d.name()));
        assert_rate_limited(d, &a, "address limit");
        gw.clock.advance(WINDOW);
        assert!(
            logs_in(&gw, d, "spray.target@example.com", pw).await,
            "{}",
            d.name()
        );
    }
}

// ----- 2. stolen session ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_dies_when_the_victim_changes_the_password() {
    for d in all() {
        let gw = gateway().await;
        let (old, new, third) = (
            "Victim-Old-Pass-51",
            "Victim-New-Pass-52",
            "Victim-Third-Pass-53",
        );
        let who = user(&gw, "victim@example.com", old).await;
        let stolen = login(&gw, d, &who.username, old).await;
        // The attacker uses the stolen session first (it works, and is now cached).
        let a = Answer::of(change(&gw, d, &stolen, &who, "Attacker-Guess-1", new).await).await;
        assert_eq!(
            a.status,
            400,
            "{}: the stolen session works at first: {a}",
            d.name()
        );

        let mine = login(&gw, d, &who.username, old).await;
        let a = Answer::of(change(&gw, d, &mine, &who, old, new).await).await;
        assert_eq!(
            a.status,
            d.change_ok_status(),
            "{}: victim's change: {a}",
            d.name()
        );

        for current in [old, new] {
            let a = Answer::of(change(&gw, d, &stolen, &who, current, "Attacker-Owns-It-9").await)
                .await;
            assert_eq!(
                a.status,
                401,
                "{}: stolen session after the change: {a}",
                d.name()
            );
            assert!(a.in_style(d), "{}: {a}", d.name());
        }
        assert!(!logs_in(&gw, d, &who.username, "Attacker-Owns-It-9").await);
        // The session the victim acted with survives.
        let a = Answer::of(change(&gw, d, &mine, &who, new, third).await).await;
        assert_eq!(
            a.status,
            d.change_ok_status(),
            "{}: acting session: {a}",
            d.name()
        );
        assert!(logs_in(&gw, d, &who.username, third).await, "{}", d.name());
    }
}

// ----- 3. cross-user ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_change_another_users_password_but_an_admin_can() {
    for d in all() {
        let gw = gateway().await;
        let (a_pw, b_pw, c_pw) = (
            "Alice-Pass-Word-61",
            "Bob-Pass-Word-62",
            "Carol-Admin-Pass-63",
        );
        let alice = user(&gw, "alice@example.com", a_pw).await;
        let bob = user(&gw, "bob@example.com", b_pw).await;
        let carol = admin_user(&gw, "carol@example.com", c_pw).await;
        let s = login(&gw, d, &alice.username, a_pw).await;

        if d.has_subject() {
            // Alice even knows Bob's password: the subject check must still refuse her.
            let a = Answer::of(change(&gw, d, &s, &bob, b_pw, "Alice-Owns-Bob-1").await).await;
            assert_eq!(
                a.status,
                d.forbidden_status(),
                "{}: cross-user: {a}",
                d.name()
            );
            assert!(a.in_style(d), "{}: {a}", d.name());
            let a =
                Answer::of(change(&gw, d, &s, &bob, "Random-Guess-77", "Alice-Owns-Bob-1").await)
                    .await;
            assert_eq!(
                a.status,
                d.forbidden_status(),
                "{}: cross-user: {a}",
                d.name()
            );
            // A user id that does not exist answers the same (no enumeration).
            let nobody = Who {
                id: "00000000-0000-4000-8000-000000000000".into(),
                username: "nobody@example.com".into(),
            };
            let n = Answer::of(change(&gw, d, &s, &nobody, b_pw, "Alice-Owns-Bob-1").await).await;
            assert_eq!((n.status, &n.body), (a.status, &a.body), "{}", d.name());
        } else {
            // OAuth-style has no subject: naming Bob anywhere still acts on Alice only.
            let body = json!({"CurrentPassword": b_pw, "NewPassword": "Alice-Owns-Bob-1",
                              "Username": bob.username, "UserId": bob.id, "Id": bob.id});
            let a = Answer::of(change_json(&gw, d, &s, &bob, &body).await).await;
            assert_eq!(
                a.status,
                400,
                "{}: Bob's password is not Alice's: {a}",
                d.name()
            );
        }
        if d == CRAYON {
            // The body's Id must agree with the path: Alice's path with Bob's Id, and reverse.
            for (path_who, body_id) in [(&alice, &bob.id), (&bob, &alice.id)] {
                let body =
                    json!({"Id": body_id, "OldPassword": b_pw, "NewPassword": "Alice-Owns-Bob-1"});
                let a = Answer::of(change_json(&gw, d, &s, path_who, &body).await).await;
                assert!(
                    a.status == 400 || a.status == 403,
                    "crayon: Id/path disagreement: {a}"
                );
            }
            let body =
                json!({"userId": bob.id, "OldPassword": a_pw, "NewPassword": "Alice-Owns-Bob-1"});
            let a = Answer::of(change_json(&gw, d, &s, &alice, &body).await).await;
            assert_eq!(a.status, 400, "crayon: userId disagreement: {a}");
        }
        assert!(
            logs_in(&gw, d, &bob.username, b_pw).await,
            "{}: Bob unchanged",
            d.name()
        );
        assert!(
            logs_in(&gw, d, &alice.username, a_pw).await,
            "{}: Alice unchanged",
            d.name()
        );
        assert_eq!(password_changes(&gw, &bob).await, 0, "{}", d.name());
        assert_eq!(password_changes(&gw, &alice).await, 0, "{}", d.name());

        // An admin (Akana's "Site Admin") may change Bob's password; the core still demands
        // Bob's current password.
        let admin = login(&gw, d, &carol.username, c_pw).await;
        if d.has_subject() {
            let a = Answer::of(
                change(&gw, d, &admin, &bob, "Not-Bobs-Pass-5", "Set-By-Admin-71").await,
            )
            .await;
            assert_eq!(
                a.status,
                400,
                "{}: admin with a wrong current: {a}",
                d.name()
            );
            let a = Answer::of(change(&gw, d, &admin, &bob, b_pw, "Set-By-Admin-71").await).await;
            assert_eq!(
                a.status,
                d.change_ok_status(),
                "{}: admin change: {a}",
                d.name()
            );
            assert!(
                logs_in(&gw, d, &bob.username, "Set-By-Admin-71").await,
                "{}",
                d.name()
            );
            assert!(!logs_in(&gw, d, &bob.username, b_pw).await, "{}", d.name());
            assert_eq!(password_changes(&gw, &bob).await, 1, "{}", d.name());
            // The admin's own password is untouched.
            assert!(logs_in(&gw, d, &carol.username, c_pw).await, "{}", d.name());
        } else {
            let a = Answer::of(change(&gw, d, &admin, &bob, b_pw, "Set-By-Admin-71").await).await;
            assert_eq!(
                a.status, 400,
                "oauth-style: the admin acts on itself only: {a}"
            );
            assert!(logs_in(&gw, d, &bob.username, b_pw).await);
        }
    }
}

// ----- 4. CSRF ------------------------------------------------------------------------------

async fn csrf_attempt(
    gw: &Gateway,
    d: Dialect,
    s: &Session,
    who: &Who,
    csrf: Csrf,
    cur: &str,
) -> Answer {
    let body = d.change_body(who, json!(cur), json!("Csrf-Forced-Pass-81"));
    Answer::of(
        authed(gw, d, d.change_method(), &d.change_path(who), s, csrf)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_dialects_refuse_changes_without_csrf_proof() {
    for d in [AKANA, CRAFTER] {
        let gw = gateway().await;
        let pw = "Csrf-Victim-Pass-80";
        let who = user(&gw, "csrf.victim@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        for csrf in [Csrf::Missing, Csrf::Wrong] {
            let a = csrf_attempt(&gw, d, &s, &who, csrf, pw).await;
            assert_eq!(a.status, d.csrf_status(), "{}: {csrf:?}: {a}", d.name());
            assert!(a.in_style(d), "{}: {a}", d.name());
        }
        // Crafter's double submit: header without the cookie, cookie without the header,
        // header and cookie agreeing on an empty value.
        if d == CRAFTER {
            let path = d.change_path(&who);
            let body = d.change_body(&who, json!(pw), json!("Csrf-Forced-Pass-81"));
            let attempts = [
                (format!("JSESSIONID={}", s.token), Some("x1")),
                (format!("JSESSIONID={}; XSRF-TOKEN=x1", s.token), None),
                (format!("JSESSIONID={}; XSRF-TOKEN=", s.token), Some("")),
                (format!("JSESSIONID={}; XSRF-TOKEN=x1", s.token), Some("X1")),
            ];
            for (cookie, header) in attempts {
                let mut req = gw
                    .http
                    .post(gw.at(&path))
                    .header("Cookie", &cookie)
                    .json(&body);
                if let Some(h) = header {
                    req = req.header("X-XSRF-TOKEN", h);
                }
                let a = Answer::of(req.send().await.unwrap()).await;
                assert_eq!(a.status, 403, "crafter: {cookie} / {header:?}: {a}");
            }
        }
        if d == AKANA {
            // Another session's (the attacker's own) CSRF token with the victim's cookie.
            let attacker = user(&gw, "csrf.attacker@example.com", "Attacker-Pass-82").await;
            let mine = login(&gw, d, &attacker.username, "Attacker-Pass-82").await;
            let forged = Session {
                csrf: mine.csrf.clone(),
                ..s.clone()
            };
            let a = csrf_attempt(&gw, d, &forged, &who, Csrf::Proper, pw).await;
            assert_eq!(a.status, 401, "akana: a foreign CSRF token: {a}");
        }
        assert!(
            logs_in(&gw, d, &who.username, pw).await,
            "{}: unchanged",
            d.name()
        );
        assert_eq!(password_changes(&gw, &who).await, 0, "{}", d.name());

        // With CSRF turned off by configuration the same request goes through.
        let gw = gateway_with(|s| {
            s.dialects.csrf.insert(d.name().into(), false);
        })
        .await;
        let who = user(&gw, "csrf.victim@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        let a = csrf_attempt(&gw, d, &s, &who, Csrf::Missing, pw).await;
        assert_eq!(
            a.status,
            d.change_ok_status(),
            "{}: CSRF off: {a}",
            d.name()
        );
        assert!(logs_in(&gw, d, &who.username, "Csrf-Forced-Pass-81").await);
    }
}

// ----- 5. hostile input ---------------------------------------------------------------------

/// Replaces the current or new password in a change body (Et-App: the confirmation too).
fn with_field(d: Dialect, who: &Who, current: Value, new: Value) -> Vec<u8> {
    serde_json::to_vec(&d.change_body(who, current, new)).unwrap()
}

/// What, content type, body, and the status expected (any 4xx when `None`).
type HostileCase = (&'static str, Option<String>, Vec<u8>, Option<u16>);

fn replace_bytes(hay: Vec<u8>, needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = hay
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("placeholder");
    [&hay[..at], with, &hay[at + needle.len()..]].concat()
}

/// `{..the vendor's body.., "<field>": <raw JSON text>}` as raw bytes.
fn raw_body(d: Dialect, who: &Who, current_raw: &str, new_raw: &str) -> Vec<u8> {
    let mut text = serde_json::to_string(&d.change_body(who, json!("@C@"), json!("@N@"))).unwrap();
    text = text
        .replace("\"@C@\"", current_raw)
        .replace("\"@N@\"", new_raw);
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_change_bodies_are_refused_in_dialect_style_without_state_change() {
    let mut all_failures = Vec::new();
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Hostile-Old-Pass-90", "Hostile-New-Pass-91");
        let who = user(&gw, "hostile@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let cf = d.current_field();
        let nf = d.new_field();
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let mut cases: Vec<HostileCase> = vec![
            (
                "text/plain content type",
                Some("text/plain".into()),
                with_field(d, &who, json!(pw), json!(new)),
                Some(415),
            ),
            (
                "form content type",
                Some("application/x-www-form-urlencoded".into()),
                format!("{cf}={pw}&{nf}={new}").into_bytes(),
                Some(415),
            ),
            (
                "no content type",
                None,
                with_field(d, &who, json!(pw), json!(new)),
                Some(415),
            ),
            (
                "bogus content type",
                Some("application/jsonx".into()),
                with_field(d, &who, json!(pw), json!(new)),
                Some(415),
            ),
            (
                "multipart content type",
                Some("multipart/form-data; boundary=x".into()),
                with_field(d, &who, json!(pw), json!(new)),
                Some(415),
            ),
            (
                "duplicate current key",
                Some("application/json".into()),
                raw_body(
                    d,
                    &who,
                    &format!("{},{}:{}", q("Wrong-Cur-1"), q(cf), q(pw)),
                    &q(new),
                ),
                Some(400),
            ),
            (
                "duplicate current key, right one first",
                Some("application/json".into()),
                raw_body(
                    d,
                    &who,
                    &format!("{},{}:{}", q(pw), q(cf), q("Wrong-Cur-1")),
                    &q(new),
                ),
                Some(400),
            ),
            (
                "duplicate new key",
                Some("application/json".into()),
                raw_body(
                    d,
                    &who,
                    &q(pw),
                    &format!("{},{}:{}", q(new), q(nf), q("Other-New-Pass-9")),
                ),
                Some(400),
            ),
            (
                "deeply nested current",
                Some("application/json".into()),
                raw_body(d, &who, &deep, &q(new)),
                Some(400),
            ),
            (
                "deeply nested body",
                Some("application/json".into()),
                "[".repeat(10_000).into_bytes(),
                Some(400),
            ),
            (
                "deeply nested objects",
                Some("application/json".into()),
                "{\"a\":".repeat(5_000).into_bytes(),
                Some(400),
            ),
            (
                "non-UTF-8 password",
                Some("application/json".into()),
                replace_bytes(
                    raw_body(d, &who, &q(pw), "\"New-@@-Pass-12\""),
                    b"@@",
                    &[0xFF, 0xFE],
                ),
                Some(400),
            ),
            (
                "overlong UTF-8 in password",
                Some("application/json".into()),
                replace_bytes(
                    raw_body(d, &who, &q(pw), "\"New-@@-Pass-12\""),
                    b"@@",
                    &[0xC0, 0xAF],
                ),
                Some(400),
            ),
            (
                "non-UTF-8 body",
                Some("application/json".into()),
                vec![0xFF, 0xFE, b'{', b'}', 0xC0, 0x80],
                Some(400),
            ),
            (
                "NUL after the right current password",
                Some("application/json".into()),
                with_field(d, &who, json!(format!("{pw}\u{0}anything")), json!(new)),
                Some(400),
            ),
            (
                "NUL inside the new password",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!("Hostile-New\u{0}Pass-91")),
                None,
            ),
            (
                "new password over 72 bytes",
                Some("application/json".into()),
                with_field(
                    d,
                    &who,
                    json!(pw),
                    json!(format!("Long-{}", "x7#".repeat(30))),
                ),
                Some(400),
            ),
            (
                "72 ASCII + multibyte over 72 bytes",
                Some("application/json".into()),
                with_field(
                    d,
                    &who,
                    json!(pw),
                    json!(format!(
                        "{}\u{00E9}\u{00E9}\u{00E9}\u{00E9}",
                        "Ab3-".repeat(17)
                    )),
                ),
                Some(400),
            ),
            (
                "empty current",
                Some("application/json".into()),
                with_field(d, &who, json!(""), json!(new)),
                Some(400),
            ),
            (
                "empty new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!("")),
                Some(400),
            ),
            (
                "whitespace current",
                Some("application/json".into()),
                with_field(d, &who, json!("   \t "), json!(new)),
                Some(400),
            ),
            (
                "whitespace new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!("          ")),
                Some(400),
            ),
            (
                "null current",
                Some("application/json".into()),
                with_field(d, &who, Value::Null, json!(new)),
                Some(400),
            ),
            (
                "null new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), Value::Null),
                Some(400),
            ),
            (
                "number current",
                Some("application/json".into()),
                with_field(d, &who, json!(12345678), json!(new)),
                Some(400),
            ),
            (
                "number new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!(123456789012_i64)),
                Some(400),
            ),
            (
                "bool new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!(true)),
                Some(400),
            ),
            (
                "array new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!([new])),
                Some(400),
            ),
            (
                "object new",
                Some("application/json".into()),
                with_field(d, &who, json!(pw), json!({"value": new})),
                Some(400),
            ),
            (
                "top-level array",
                Some("application/json".into()),
                b"[]".to_vec(),
                Some(400),
            ),
            (
                "top-level string",
                Some("application/json".into()),
                q(pw).into_bytes(),
                Some(400),
            ),
            (
                "truncated JSON",
                Some("application/json".into()),
                format!("{{{}:{}", q(cf), q(pw)).into_bytes(),
                Some(400),
            ),
            (
                "trailing garbage",
                Some("application/json".into()),
                [with_field(d, &who, json!(pw), json!(new)), b"{}".to_vec()].concat(),
                Some(400),
            ),
            (
                "empty body",
                Some("application/json".into()),
                Vec::new(),
                Some(400),
            ),
            (
                "empty object",
                Some("application/json".into()),
                b"{}".to_vec(),
                Some(400),
            ),
        ];
        if d == ETAPP {
            cases.push(("confirmation differs", Some("application/json".into()),
                serde_json::to_vec(&json!({"OldPassword": pw, "Password": new, "PasswordConfirm": "Other-New-Pass-9"})).unwrap(), Some(400)));
        }
        if d == CRAFTER {
            cases.push((
                "username as a number",
                Some("application/json".into()),
                serde_json::to_vec(&json!({"username": 7, "current": pw, "new": new})).unwrap(),
                Some(400),
            ));
            cases.push((
                "username with traversal",
                Some("application/json".into()),
                serde_json::to_vec(
                    &json!({"username": "../hostile@example.com", "current": pw, "new": new}),
                )
                .unwrap(),
                Some(403),
            ));
        }
        if matches!(d, CRAYON | ETAPP | OAUTH) {
            // Case-insensitive binders: the same field in two spellings is a repeated key,
            // whichever comes first.
            let lower = cf.to_lowercase();
            cases.push((
                "same key in two cases, wrong canonical",
                Some("application/json".into()),
                raw_body(
                    d,
                    &who,
                    &format!("{},{}:{}", q("Wrong-Cur-1"), q(&lower), q(pw)),
                    &q(new),
                ),
                Some(400),
            ));
            cases.push((
                "same key in two cases, right canonical",
                Some("application/json".into()),
                raw_body(
                    d,
                    &who,
                    &format!("{},{}:{}", q(pw), q(&lower), q("Wrong-Cur-1")),
                    &q(new),
                ),
                Some(400),
            ));
        }
        let mut failures = Vec::new();
        for (what, ct, body, want) in cases {
            let a = Answer::of(change_raw(&gw, d, &s, &who, ct.as_deref(), body).await).await;
            let ok_status = match want {
                Some(w) => a.status == w,
                None => (400..500).contains(&a.status),
            };
            if !ok_status || !a.in_style(d) {
                failures.push(format!("{what}: {a}"));
            }
            // A 401 here would mean the session was lost; keep going on the same session.
            if !logs_in(&gw, d, &who.username, pw).await {
                failures.push(format!("{what}: the old password no longer logs in"));
                break;
            }
        }
        if password_changes(&gw, &who).await != 0 {
            failures.push("the audit records a password change".into());
        }
        all_failures.extend(failures.into_iter().map(|f| format!("{}: {f}", d.name())));
    }
    assert!(
        all_failures.is_empty(),
        "hostile bodies:\n  {}",
        all_failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_extra_fields_are_ignored() {
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Extra-Old-Pass-92", "Extra-New-Pass-93");
        let who = user(&gw, "extra@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        let mut body = d.change_body(&who, json!(pw), json!(new));
        let obj = body.as_object_mut().unwrap();
        obj.insert("Extra".into(), json!("x"));
        obj.insert(
            "nested".into(),
            json!({"a": [1, 2, {"b": null}], "admin": true}),
        );
        obj.insert("Email".into(), json!("someone.else@example.com"));
        let a = Answer::of(change_json(&gw, d, &s, &who, &body).await).await;
        assert_eq!(a.status, d.change_ok_status(), "{}: {a}", d.name());
        assert!(logs_in(&gw, d, &who.username, new).await, "{}", d.name());
        assert!(!logs_in(&gw, d, &who.username, pw).await, "{}", d.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_and_change_nothing() {
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Oversize-Old-Pass-94", "Oversize-New-Pass-95");
        let who = user(&gw, "oversize@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        let mut body = d.change_body(&who, json!(pw), json!(new));
        body.as_object_mut()
            .unwrap()
            .insert("Padding".into(), json!("p".repeat(70 * 1024)));
        let a = Answer::of(change_json(&gw, d, &s, &who, &body).await).await;
        assert_eq!(a.status, 413, "{}: {a}", d.name());
        assert!(logs_in(&gw, d, &who.username, pw).await, "{}", d.name());
        assert_eq!(password_changes(&gw, &who).await, 0, "{}", d.name());
        // The login refuses an oversized body the same way.
        let big = "q".repeat(70 * 1024);
        let a = Answer::of(login_raw(&gw, d, &who.username, &big).await).await;
        assert!(
            a.status == 413 || (d == ETAPP && (400..500).contains(&a.status)),
            "{}: oversized login: {a}",
            d.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_answered_in_dialect_style() {
    let mut failures = Vec::new();
    for d in all() {
        let gw = gateway().await;
        let pw = "Oversize-Old-Pass-94";
        let who = user(&gw, "oversize@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        let mut body = d.change_body(&who, json!(pw), json!("Oversize-New-Pass-95"));
        body.as_object_mut()
            .unwrap()
            .insert("Padding".into(), json!("p".repeat(70 * 1024)));
        let a = Answer::of(change_json(&gw, d, &s, &who, &body).await).await;
        if a.status != 413 || !a.in_style(d) || a.header("cache-control") != Some("no-store") {
            failures.push(format!(
                "{}: {a} cache-control={:?}",
                d.name(),
                a.header("cache-control")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "413 answers:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_are_4xx() {
    let mut failures = Vec::new();
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Header-Old-Pass-96", "Header-New-Pass-97");
        let who = user(&gw, "headers@example.com", pw).await;
        // A header within common limits is served normally.
        let res = login_request(&gw, d, &who.username, pw)
            .header("X-Padding", "h".repeat(4 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}: a 4 KiB header", d.name());
        let s = login(&gw, d, &who.username, pw).await;
        let mut current = pw;
        for size in [64 * 1024, 256 * 1024] {
            let pad = "h".repeat(size);
            // The right current password: only the header size may stop this change.
            let res = authed(
                &gw,
                d,
                d.change_method(),
                &d.change_path(&who),
                &s,
                Csrf::Proper,
            )
            .header("X-Padding", &pad)
            .json(&d.change_body(&who, json!(current), json!(new)))
            .send()
            .await;
            match res.map(|r| r.status().as_u16()) {
                Ok(status) if (400..500).contains(&status) => {}
                // A connection closed without an answer is no 5xx, and changed nothing.
                Err(_) if size > 64 * 1024 => {}
                other => {
                    failures.push(format!(
                        "{}: {size}-byte header on change: {other:?}",
                        d.name()
                    ));
                    if other.is_ok_and(|s| s < 300) {
                        current = new;
                    }
                }
            }
            let res = login_request(&gw, d, &who.username, current)
                .header("Cookie", format!("c={pad}"))
                .send()
                .await;
            match res.map(|r| r.status().as_u16()) {
                Ok(status) if (400..500).contains(&status) => {}
                Err(_) if size > 64 * 1024 => {}
                other => failures.push(format!(
                    "{}: {size}-byte cookie at login: {other:?}",
                    d.name()
                )),
            }
        }
        if password_changes(&gw, &who).await != 0 {
            failures.push(format!("{}: the password changed", d.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "oversized headers:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_login_requests_are_4xx() {
    for d in all() {
        let gw = gateway().await;
        let pw = "Login-Hostile-Pass-98";
        let who = user(&gw, "login.hostile@example.com", pw).await;
        let url = gw.at(d.login_path());
        let (user_field, pw_field) = (d.login_field("username"), d.login_field("password"));
        let json_user = |v: Value| -> Vec<u8> {
            serde_json::to_vec(&json!({user_field: v, pw_field: pw})).unwrap()
        };
        let format = d.login_body();
        let (ct, bodies): (&str, Vec<Vec<u8>>) = match format {
            BodyFormat::Json => (
                "application/json",
                vec![
                    json_user(Value::Null),
                    json_user(json!(42)),
                    json_user(json!([who.username])),
                    json_user(json!("")),
                    json_user(json!(" ")),
                    json_user(json!("a\r\nX-Injected: yes")),
                    format!(
                        "{{\"{pw_field}\":\"{pw}\",\"{pw_field}\":\"x\",\"{user_field}\":\"{}\"}}",
                        who.username
                    )
                    .into_bytes(),
                    "[".repeat(10_000).into_bytes(),
                    vec![b'{', 0xFF, b'}'],
                    format!("{{\"{pw_field}\":\"x\"").into_bytes(),
                ],
            ),
            BodyFormat::Form => (
                "application/x-www-form-urlencoded",
                vec![
                    format!(
                        "grant_type=password&{user_field}={}&{pw_field}=x&{pw_field}=y",
                        who.username
                    )
                    .into_bytes(),
                    format!("grant_type=password&{user_field}=&{pw_field}=").into_bytes(),
                    format!("grant_type=implicit&{user_field}=a&{pw_field}=b").into_bytes(),
                    format!("grant_type=password&{user_field}=%FF%FE&{pw_field}=%00").into_bytes(),
                    vec![0xFF, 0xFE, b'=', 0x00],
                    "a=".repeat(5_000).into_bytes(),
                ],
            ),
            // Credentials outside the body (Et-App's headers): bodies that say nothing.
            BodyFormat::None => ("application/json", vec![b"{}".to_vec(), vec![0xFF; 64]]),
        };
        for body in bodies {
            // The dialect's own login request with empty credentials, its body replaced.
            let mut req = login_request(&gw, d, "", "").body(body.clone());
            if format == BodyFormat::None {
                req = req.header("Content-Type", ct);
            }
            let a = Answer::of(req.send().await.unwrap()).await;
            assert!(
                (400..500).contains(&a.status),
                "{}: {:?}: {a}",
                d.name(),
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
            assert!(a.header("x-injected").is_none());
            // Each failed attempt may count; a fresh window keeps the user unlocked.
            gw.clock.advance(WINDOW);
        }
        // Wrong content types at login.
        let a = Answer::of(
            gw.http
                .post(&url)
                .header("Content-Type", "text/plain")
                .body(format!("username={}&password={pw}", who.username))
                .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
                .header("Et-App-Key", APP_KEY)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            (400..500).contains(&a.status),
            "{}: text/plain login: {a}",
            d.name()
        );
        gw.clock.advance(WINDOW);
        assert!(logs_in(&gw, d, &who.username, pw).await, "{}", d.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_with_crlf_or_dot_segments_are_never_reflected_raw_into_headers() {
    let gw = gateway().await;
    let pw = "Header-Reflect-Pass-99";
    let mut tried = Vec::new();
    let mut failures = Vec::new();
    let names = [
        "../../admin/..%2F",
        "dots/../../etc/passwd",
        "crlf\r\nX-Injected: yes",
        "lf\nSet-Cookie: a=b",
    ];
    for name in names {
        let res = gw
            .admin_post("/admin/users", json!({"username": name, "password": pw}))
            .await;
        let status = res.status().as_u16();
        assert!(status < 500, "creating {name:?}: {status}");
        if status != 201 {
            continue; // refusing such a username is a fine answer too
        }
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let who = Who {
            id,
            username: name.to_owned(),
        };
        tried.push(name);
        let mut current = pw.to_owned();
        for d in all() {
            if d == ETAPP && name.contains(['\r', '\n']) {
                continue; // a conforming client cannot send CR/LF in the Username header
            }
            let res = login_raw(&gw, d, name, &current).await;
            failures.extend(header_problems(d, name, &res));
            assert_eq!(res.status(), 200, "{}: login of {name:?}", d.name());
            let s = session_of(d, res).await;
            let new = format!("New-{}-Pass-99", d.name());
            let res = change(&gw, d, &s, &who, &current, &new).await;
            failures.extend(header_problems(d, name, &res));
            let status = res.status().as_u16();
            assert_eq!(status, d.change_ok_status(), "{}: {name:?}", d.name());
            current = new;
        }
    }
    // Unknown users with such names: nothing reflected either.
    for name in names {
        for d in [AKANA, CRAFTER, CRAYON, OAUTH] {
            let res = login_raw(&gw, d, &format!("{name}-ghost"), pw).await;
            failures.extend(header_problems(d, name, &res));
            assert!(res.status().as_u16() < 500);
        }
    }
    assert!(
        tried.len() >= 2,
        "at least the dot-segment usernames are accepted"
    );
    assert!(
        failures.is_empty(),
        "reflected usernames (accepted: {tried:?}):\n  {}",
        failures.join("\n  ")
    );
}

/// Raw CR/LF in any header, a raw `../` in a Location, an injected header.
fn header_problems(d: Dialect, name: &str, res: &reqwest::Response) -> Vec<String> {
    let mut problems = Vec::new();
    for (h, v) in res.headers() {
        let raw = v.as_bytes();
        if raw.contains(&b'\r') || raw.contains(&b'\n') {
            problems.push(format!("{}: {name:?}: header {h} carries CR/LF", d.name()));
        }
        let text = String::from_utf8_lossy(raw);
        if name.contains("../") && h == "location" && text.contains("../") {
            problems.push(format!(
                "{}: {name:?}: ../ reflected raw in Location: {text}",
                d.name()
            ));
        }
    }
    if res.headers().get("x-injected").is_some() {
        problems.push(format!("{}: {name:?}: injected header", d.name()));
    }
    problems
}

// ----- 6. Unicode ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_compared_after_nfkc_normalization() {
    for d in all() {
        let gw = gateway().await;
        let pw = "Unicode-Start-Pass-1";
        let who = user(&gw, "unicode.user@example.com", pw).await;
        let s = login(&gw, d, &who.username, pw).await;
        // The ligature ﬁ (U+FB01) is NFKC "fi".
        let a = Answer::of(change(&gw, d, &s, &who, pw, "\u{FB01}nance-Pass-1").await).await;
        assert_eq!(a.status, d.change_ok_status(), "{}: {a}", d.name());
        assert!(
            logs_in(&gw, d, &who.username, "finance-Pass-1").await,
            "{}: NFKC login",
            d.name()
        );
        if d != ETAPP {
            // Et-App carries the password in a header, which must be ASCII.
            assert!(
                logs_in(&gw, d, &who.username, "\u{FB01}nance-Pass-1").await,
                "{}",
                d.name()
            );
        }
        assert!(
            !logs_in(&gw, d, &who.username, "flnance-Pass-1").await,
            "{}",
            d.name()
        );
    }
    // A user created with the ligature logs in with the plain letters.
    let gw = gateway().await;
    user(&gw, "ligature@example.com", "\u{FB01}nance-Pass-1").await;
    for d in all() {
        assert!(
            logs_in(&gw, d, "ligature@example.com", "finance-Pass-1").await,
            "{}",
            d.name()
        );
    }
}

// ----- 7. response hygiene ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_credential_answer_is_no_store_and_has_no_server_header() {
    let mut failures = Vec::new();
    for d in all() {
        let gw = gateway().await;
        let (pw, new) = ("Hygiene-Old-Pass-11", "Hygiene-New-Pass-12");
        let who = user(&gw, "hygiene@example.com", pw).await;
        let mut answers = Vec::new();
        let ok = login_raw(&gw, d, &who.username, pw).await;
        answers.push(("login ok", Answer::of_headers(&ok)));
        let s = session_of(d, ok).await;
        answers.push((
            "login wrong",
            Answer::of(login_raw(&gw, d, &who.username, "Wrong-Pass-x1").await).await,
        ));
        answers.push((
            "change wrong current",
            Answer::of(change(&gw, d, &s, &who, "Wrong-Pass-x2", new).await).await,
        ));
        answers.push((
            "change policy",
            Answer::of(change(&gw, d, &s, &who, pw, "password").await).await,
        ));
        answers.push((
            "change malformed",
            Answer::of(change_raw(&gw, d, &s, &who, Some("application/json"), b"{".to_vec()).await)
                .await,
        ));
        answers.push((
            "change media type",
            Answer::of(change_raw(&gw, d, &s, &who, Some("text/plain"), b"{}".to_vec()).await)
                .await,
        ));
        let nobody = Session {
            token: "not-a-session".into(),
            cookie: Some("TokenID%3Dnope".into()),
            csrf: Some("nope".into()),
        };
        answers.push((
            "change unauthenticated",
            Answer::of(change(&gw, d, &nobody, &who, pw, new).await).await,
        ));
        answers.push((
            "change ok",
            Answer::of(change(&gw, d, &s, &who, pw, new).await).await,
        ));
        gw.clock.advance(WINDOW);
        for i in 0..USER_FAILURES {
            login_raw(&gw, d, &who.username, &format!("Wrong-Pass-y{i}")).await;
        }
        answers.push((
            "rate limited",
            Answer::of(login_raw(&gw, d, &who.username, new).await).await,
        ));
        let mut big = d.change_body(&who, json!(new), json!(pw));
        big.as_object_mut()
            .unwrap()
            .insert("Padding".into(), json!("p".repeat(70 * 1024)));
        answers.push((
            "too large",
            Answer::of(change_json(&gw, d, &s, &who, &big).await).await,
        ));
        for (what, a) in answers {
            if a.header("cache-control") != Some("no-store") {
                failures.push(format!(
                    "{}: {what}: Cache-Control {:?} ({})",
                    d.name(),
                    a.header("cache-control"),
                    a.status
                ));
            }
            if a.header("server").is_some() {
                failures.push(format!(
                    "{}: {what}: Server {:?}",
                    d.name(),
                    a.header("server")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "hygiene:\n  {}", failures.join("\n  "));
}

impl Answer {
    /// The status and headers of an answer whose body the caller still needs.
    fn of_headers(res: &reqwest::Response) -> Self {
        Self {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: String::new(),
        }
    }
}
