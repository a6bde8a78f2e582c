//! Dialects spoken to an upstream: the request credgate builds from each shipped dialect matches the
//! vendor's documented example, and the vendor's answers (as the same dialect renders them
//! inbound) read back as the canonical outcome or error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use credgate_core::{Error, IssuedToken, Outcome, Password, SecretToken, TokenKind, User};
use credgate_dialect::example::Example;
use credgate_dialect::upstream::{
    Reply, Session, UpstreamAuth, UpstreamCommand, UpstreamRequest, Values,
};
use credgate_dialect::{Dialect, DialectSet, DialectSource, HttpResponse, LoadOptions, Lookup};
use credgate_dialect::{RequestView, RouteMatch};

const BASE_URL: &str = "https://legacy.example.com";

fn set() -> DialectSet {
    DialectSet::load(&DialectSource::embedded(), &LoadOptions::default()).unwrap()
}

fn example(dialect: &str, name: &str) -> Example {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dialects")
        .join(dialect)
        .join("examples")
        .join(format!("{name}.toml"));
    Example::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Per dialect: the new password of its change-password-ok example and the subject id
/// credgate passes (the upstream's id of the user; none where the example uses `@me`).
fn cases() -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    vec![
        (
            "akana",
            "Margaret11",
            Some("eceffbe3-3386-495b-80d3-7526f0eb0edc.acmepaymentscorp"),
        ),
        ("crafter", "SuperSecretPassword321#", None),
        (
            "crayon",
            "Newpassword#2020",
            Some("e758d6be-6fe4-491c-9f1c-5b6b8d6f79b2"),
        ),
        ("etapp", "ekrf09238f9a9j88aj49f8jpa983hp89f", None),
        ("oauth-style", "Autumn-Orchard-57", None),
    ]
}

fn auth_for(ex: &Example) -> UpstreamAuth {
    UpstreamAuth {
        client_id: ex.setup.clients.first().map(|c| c.client_id.clone()),
        client_secret: ex
            .setup
            .clients
            .first()
            .map(|c| SecretToken::new(&c.client_secret)),
        app_key: ex.setup.apps.first().map(|a| SecretToken::new(&a.key)),
    }
}

/// The captured values the examples template in, and the session that carries them.
fn session(dialect: &str) -> Session {
    let cookie = match dialect {
        "akana" => ("AtmoAuthToken_acmepaymentscorp", "AUTH"),
        _ => ("JSESSIONID", "SESSION"),
    };
    Session {
        bearer: Some(SecretToken::new("TOKEN")),
        cookies: vec![(cookie.0.into(), SecretToken::new(cookie.1))],
        csrf: Some(SecretToken::new("CSRF")),
        user_ref: None,
    }
}

fn fill(template: &str) -> String {
    [
        ("{{ token }}", "TOKEN"),
        ("{{ auth }}", "AUTH"),
        ("{{ csrf }}", "CSRF"),
        ("{{ session }}", "SESSION"),
    ]
    .iter()
    .fold(template.to_owned(), |s, (k, v)| s.replace(k, v))
}

/// Method, path, every header the example sends (but Accept), and the body by content.
fn assert_same(dialect: &str, built: &UpstreamRequest, call: &credgate_dialect::example::HttpCall) {
    assert_eq!(built.method, call.method, "{dialect}");
    assert_eq!(built.url, format!("{BASE_URL}{}", call.path), "{dialect}");
    for (name, value) in &call.headers {
        let mut expected = fill(value);
        if name.eq_ignore_ascii_case("accept") {
            continue;
        }
        // Crafter's double-submit value is the caller's choice: ours must be used alike.
        if let Some(ours) = built.header("X-XSRF-TOKEN") {
            expected = expected.replace("caller-chosen-123", ours);
        }
        let got = built
            .header(name)
            .unwrap_or_else(|| panic!("{dialect}: header {name} missing in {built:?}"));
        match name.to_ascii_lowercase().as_str() {
            "content-type" => assert_eq!(
                got.split(';').next().unwrap().to_ascii_lowercase(),
                expected.split(';').next().unwrap().to_ascii_lowercase(),
                "{dialect}"
            ),
            "cookie" => {
                let pairs = |s: &str| {
                    let mut v: Vec<String> = s.split(';').map(|p| p.trim().to_owned()).collect();
                    v.sort();
                    v
                };
                assert_eq!(pairs(got), pairs(&expected), "{dialect}");
            }
            _ => assert_eq!(got, expected, "{dialect}: header {name}"),
        }
    }
    let body = String::from_utf8(built.body.clone()).unwrap();
    if call.body.trim().is_empty() {
        assert!(body.is_empty(), "{dialect}: {body}");
    } else if let Ok(expected) = serde_json::from_str::<serde_json::Value>(&call.body) {
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(got, expected, "{dialect}");
    } else {
        let pairs = |s: &str| {
            let mut v: Vec<(String, String)> = serde_urlencoded::from_str(s).unwrap();
            v.sort();
            v
        };
        assert_eq!(pairs(&body), pairs(&call.body), "{dialect}");
    }
}

#[test]
fn requests_match_the_vendor_examples() {
    let set = set();
    for (name, new, subject_ref) in cases() {
        let dialect = set.get(name).unwrap();
        let ex = example(name, "change-password-ok");
        let user = &ex.setup.users[0];
        let auth = auth_for(&ex);

        let login = Values {
            username: Some(user.username.clone()),
            password: Some(Password::new(&user.password)),
            ..Values::default()
        };
        let built = dialect
            .upstream_request(UpstreamCommand::Login, BASE_URL, &login, &auth, None)
            .unwrap();
        assert_same(name, &built, &ex.before[0].call);
        assert!(!format!("{built:?}").contains(&user.password), "{name}");

        let change = Values {
            username: Some(user.username.clone()),
            current: Some(Password::new(&user.password)),
            new: Some(Password::new(new)),
            subject_ref: subject_ref.map(str::to_owned),
            ..Values::default()
        };
        let built = dialect
            .upstream_request(
                UpstreamCommand::ChangePassword,
                BASE_URL,
                &change,
                &auth,
                Some(&session(name)),
            )
            .unwrap();
        assert_same(name, &built, &ex.request);
        assert!(!format!("{built:?}").contains(new), "{name}");
        // A change without a session is refused, not sent.
        assert!(dialect
            .upstream_request(
                UpstreamCommand::ChangePassword,
                BASE_URL,
                &change,
                &auth,
                None
            )
            .is_err());
    }
}

fn matched(set: &DialectSet, dialect: &Dialect, op: UpstreamCommand) -> RouteMatch {
    let route = dialect.upstream_route(op).unwrap();
    let path = format!("{}{}", dialect.spec.base, route.spec.path)
        .replace("{UserID}", "u1")
        .replace("{id}", "u1")
        .replace("{userID}", "@me")
        .replace("{version}", "1.0");
    match set.lookup(&route.spec.method, &path) {
        Lookup::Found(m) => m,
        _ => panic!("{path}"),
    }
}

fn user(dialect: &str) -> User {
    User {
        id: "canonical-id".into(),
        username: "jane@example.com".into(),
        admin: false,
        externally_managed: false,
        aliases: BTreeMap::from([(dialect.to_owned(), "legacy-id.acme".to_owned())]),
        profile: BTreeMap::new(),
        created_at: 1_700_000_000,
    }
}

#[test]
fn login_answers_give_the_session_back() {
    let set = set();
    for (name, _, _) in cases() {
        let dialect = set.get(name).unwrap();
        let m = matched(&set, dialect, UpstreamCommand::Login);
        let token = IssuedToken {
            access: SecretToken::new("issued-access-token-123"),
            kind: TokenKind::User,
            issued_at: 1_700_000_000,
            expires_at: 1_700_003_600,
            refresh: None,
            user: Some(user(name)),
            client_id: None,
        };
        let answer = dialect.render_outcome(&m, &RequestView::default(), &Outcome::Token(token));
        let Ok(Reply::Session(session)) = dialect.upstream_reply(UpstreamCommand::Login, &answer)
        else {
            panic!("{name}: no session");
        };
        let carried = session
            .bearer
            .iter()
            .chain(session.cookies.iter().map(|(_, v)| v))
            .any(|t| t.expose().contains("issued-access-token-123"));
        assert!(carried, "{name}: {session:?}");
        if name == "akana" {
            assert_eq!(session.user_ref.as_deref(), Some("legacy-id.acme"));
            assert!(session.csrf.is_some());
        }
        assert!(!format!("{session:?}").contains("issued-access-token"));
    }
}

fn samples() -> Vec<Error> {
    vec![
        Error::MalformedRequest("x".into()),
        Error::UnsupportedMediaType,
        Error::PayloadTooLarge,
        Error::RequestTimeout,
        Error::InvalidRequest { problems: vec![] },
        Error::InvalidCredentials,
        Error::InvalidClient,
        Error::Unauthenticated,
        Error::Forbidden,
        Error::ExternallyManaged,
        Error::PolicyViolation {
            rules: vec![credgate_core::PolicyRule::Common],
        },
        Error::UnknownApp,
        Error::CsrfRejected,
        Error::NotFound,
        Error::RateLimited { retry_after: 7 },
        Error::Conflict("x".into()),
        Error::ResetTokenInvalid,
        Error::Unavailable,
        Error::Internal,
    ]
}

#[test]
fn every_error_reads_back_as_itself_or_an_identical_answer() {
    let set = set();
    let view = RequestView::default();
    for (name, _, _) in cases() {
        let dialect = set.get(name).unwrap();
        for op in [UpstreamCommand::Login, UpstreamCommand::ChangePassword] {
            let m = matched(&set, dialect, op);
            for error in samples() {
                let sent = dialect.render_error(Some(&m), &view, &error);
                let read = match dialect.upstream_reply(op, &sent) {
                    Err(e) => e,
                    Ok(r) => panic!("{name} {op:?} {error:?}: read as success {r:?}"),
                };
                if sent.status >= 500 {
                    assert_eq!(read, Error::Unavailable, "{name}");
                    continue;
                }
                // Vendors answer several errors alike; then any of them is a correct reading.
                let again = dialect.render_error(Some(&m), &view, &read);
                assert_eq!(
                    (again.status, &again.body),
                    (sent.status, &sent.body),
                    "{name} {op:?}: {error:?} read as {read:?}"
                );
                if matches!(error, Error::InvalidCredentials) {
                    assert_eq!(read, Error::InvalidCredentials, "{name} {op:?}");
                }
                if matches!(error, Error::PolicyViolation { .. })
                    && op == UpstreamCommand::ChangePassword
                {
                    assert_eq!(read, error, "{name}: the rule is read back by name");
                }
                if let Error::RateLimited { .. } = error {
                    assert_eq!(read, Error::RateLimited { retry_after: 7 }, "{name}");
                }
            }
        }
    }
}

#[test]
fn change_answers_read_as_done_and_a_constant_body_must_match() {
    let set = set();
    for (name, _, _) in cases() {
        let dialect = set.get(name).unwrap();
        let m = matched(&set, dialect, UpstreamCommand::ChangePassword);
        let ok = dialect.render_outcome(
            &m,
            &RequestView::default(),
            &Outcome::PasswordChanged { user: user(name) },
        );
        assert!(
            matches!(
                dialect.upstream_reply(UpstreamCommand::ChangePassword, &ok),
                Ok(Reply::Done)
            ),
            "{name}"
        );
    }
    // Crayon's success is the JSON `true`; a 200 `false` is not one.
    let crayon = set.get("crayon").unwrap();
    let falsy = HttpResponse {
        status: 200,
        headers: vec![],
        body: b"false".to_vec(),
    };
    assert_eq!(
        crayon
            .upstream_reply(UpstreamCommand::ChangePassword, &falsy)
            .unwrap_err(),
        Error::Unavailable
    );
    // A gateway error page in front of the vendor is an outage, never a wrong password.
    let bad_gateway = HttpResponse {
        status: 502,
        headers: vec![],
        body: b"<html>Bad Gateway</html>".to_vec(),
    };
    assert_eq!(
        crayon
            .upstream_reply(UpstreamCommand::Login, &bad_gateway)
            .unwrap_err(),
        Error::Unavailable
    );
}

#[test]
fn reset_steps_put_the_token_and_new_password_where_each_route_reads_them() {
    let set = set();
    let values = Values {
        username: Some("rita@example.com".into()),
        new: Some(Password::new("Brand-New-Pass-1")),
        reset_token: Some(SecretToken::new("upstream-reset-token")),
        ..Values::default()
    };
    let auth = UpstreamAuth::default();
    // Crafter: no session, the token in the body (set-password) or the query (validate).
    let crafter = set.get("crafter").unwrap();
    let built = crafter
        .upstream_request(
            UpstreamCommand::ResetPassword,
            BASE_URL,
            &values,
            &auth,
            None,
        )
        .unwrap();
    assert!(
        built.url.ends_with("/user/set-password.json"),
        "{}",
        built.url
    );
    let body: serde_json::Value = serde_json::from_slice(&built.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"token": "upstream-reset-token", "new": "Brand-New-Pass-1"})
    );
    assert!(!format!("{built:?}").contains("upstream-reset-token"));
    let built = crafter
        .upstream_request(
            UpstreamCommand::ValidateReset,
            BASE_URL,
            &values,
            &auth,
            None,
        )
        .unwrap();
    assert!(built
        .url
        .ends_with("validate-token.json?token=upstream-reset-token"));
    // OAuth-style: the username too, and a client token is required first.
    let oauth = set.get("oauth-style").unwrap();
    assert!(oauth
        .upstream_request(
            UpstreamCommand::ResetPassword,
            BASE_URL,
            &values,
            &auth,
            None
        )
        .is_err());
    let client = Session {
        bearer: Some(SecretToken::new("client-token")),
        ..Session::default()
    };
    let built = oauth
        .upstream_request(
            UpstreamCommand::ResetPassword,
            BASE_URL,
            &values,
            &auth,
            Some(&client),
        )
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&built.body).unwrap();
    assert_eq!(body["Token"], "upstream-reset-token");
    assert_eq!(body["Username"], "rita@example.com");
    assert_eq!(built.header("authorization"), Some("Bearer client-token"));
    // A dialect without reset routes offers none.
    let crayon = set.get("crayon").unwrap();
    assert!(crayon
        .upstream_route(UpstreamCommand::ResetPassword)
        .is_none());
    // The vendor's answers read back: success, and a token it refuses.
    let ok = HttpResponse {
        status: 204,
        headers: vec![],
        body: vec![],
    };
    assert!(matches!(
        oauth.upstream_reply(UpstreamCommand::ResetPassword, &ok),
        Ok(Reply::Done)
    ));
    let refused = HttpResponse {
        status: 400,
        headers: vec![],
        body: br#"{"message": "Invalid parameter: token"}"#.to_vec(),
    };
    assert_eq!(
        crafter
            .upstream_reply(UpstreamCommand::ResetPassword, &refused)
            .err(),
        Some(Error::ResetTokenInvalid)
    );
}
