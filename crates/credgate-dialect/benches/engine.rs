//! Micro-benchmarks of the dialect engine on the shipped dialects' change-password routes:
//! route lookup, request extraction (auth evidence, body, fields -> canonical command) and
//! response rendering (the success template, and a policy-violation error).
//! Run: `cargo bench -p credgate-dialect --bench engine`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use credgate_core::{
    Error, IssuedToken, Outcome, PolicyRule, RequestMeta, SecretToken, TokenKind, User,
};
use credgate_dialect::{
    csrf_value, DialectSet, DialectSource, HttpRequest, LoadOptions, Lookup, RouteMatch,
};
use criterion::{criterion_group, criterion_main, Criterion};

const TOKEN: &str = "q9Yb3m2Wl6f1tX0pZr8sKc4vN7uJd5hE2gA1oB3iC6k";
const USER_ID: &str = "0f8b2d1e-6c3a-4e59-9b7d-2a4c6e8f0a1b";

/// (dialect, method, path, extra headers, JSON body) of each shipped change-password call.
fn change_requests() -> Vec<(&'static str, HttpRequest)> {
    let bearer = ("authorization".to_owned(), format!("Bearer {TOKEN}"));
    let json = ("content-type".to_owned(), "application/json".to_owned());
    let akana_csrf = format!(
        "TokenID={}",
        csrf_value(&SecretToken::new(TOKEN.to_owned()))
    );
    let req = |method: &str, path: String, mut headers: Vec<(String, String)>, body: String| {
        headers.push(json.clone());
        HttpRequest {
            method: method.into(),
            path,
            query: String::new(),
            headers,
            body: body.into_bytes(),
        }
    };
    vec![
        (
            "crayon",
            req(
                "PUT",
                format!("/api/v1/users/{USER_ID}/changepassword"),
                vec![bearer.clone()],
                format!(r#"{{"Id":"{USER_ID}","OldPassword":"Old-Pass-1234","NewPassword":"New-Pass-5678"}}"#),
            ),
        ),
        (
            "akana",
            req(
                "PUT",
                format!("/api/users/{USER_ID}/password"),
                vec![
                    (
                        "cookie".into(),
                        format!("AtmoAuthToken_acmepaymentscorp=TokenID%3D{TOKEN}"),
                    ),
                    ("x-csrf-token_acmepaymentscorp".into(), akana_csrf),
                ],
                r#"{ "OldPassword":"Old-Pass-1234", "NewPassword":"New-Pass-5678" }"#.into(),
            ),
        ),
        (
            "etapp",
            req(
                "PUT",
                "/api/v1.0/users/@me/password/change".into(),
                vec![bearer.clone(), ("et-app-key".into(), "app-key-123".into())],
                r#"{"OldPassword":"Old-Pass-1234","Password":"New-Pass-5678","PasswordConfirm":"New-Pass-5678"}"#.into(),
            ),
        ),
        (
            "crafter",
            req(
                "POST",
                "/studio/api/1/services/api/1/user/change-password.json".into(),
                vec![
                    ("cookie".into(), format!("JSESSIONID={TOKEN}; XSRF-TOKEN=abc123")),
                    ("x-xsrf-token".into(), "abc123".into()),
                ],
                r#"{"username":"jane.doe","current":"Old-Pass-1234","new":"New-Pass-5678"}"#.into(),
            ),
        ),
        (
            "oauth-style",
            req(
                "POST",
                "/auth/password/change".into(),
                vec![bearer],
                r#"{"CurrentPassword":"Old-Pass-1234","NewPassword":"New-Pass-5678"}"#.into(),
            ),
        ),
    ]
}

fn user() -> User {
    User {
        id: USER_ID.into(),
        username: "jane.doe".into(),
        admin: false,
        externally_managed: false,
        aliases: BTreeMap::new(),
        profile: BTreeMap::from([("email".into(), "jane@example.com".into())]),
        created_at: 1_700_000_000,
    }
}

fn matched(set: &DialectSet, req: &HttpRequest) -> RouteMatch {
    match set.lookup(&req.method, &req.path) {
        Lookup::Found(m) => m,
        _ => panic!("no route for {} {}", req.method, req.path),
    }
}

fn engine(c: &mut Criterion) {
    let set = DialectSet::load(&DialectSource::embedded(), &LoadOptions::default())
        .expect("the shipped dialects load");
    let outcome = Outcome::PasswordChanged { user: user() };
    let policy = Error::PolicyViolation {
        rules: vec![PolicyRule::MinLength { min: 8 }],
    };
    for (name, req) in change_requests() {
        let m = matched(&set, &req);
        let extracted = m
            .dialect
            .extract(&m, &req, RequestMeta::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut group = c.benchmark_group(format!("change_password/{name}"));
        group.bench_function("lookup", |b| {
            b.iter(|| {
                matches!(
                    set.lookup(black_box(&req.method), black_box(&req.path)),
                    Lookup::Found(_)
                )
            })
        });
        group.bench_function("extract", |b| {
            b.iter(|| {
                m.dialect
                    .extract(&m, black_box(&req), RequestMeta::default())
            })
        });
        group.bench_function("render_ok", |b| {
            b.iter(|| {
                m.dialect
                    .render_outcome(&m, black_box(&extracted.view), &outcome)
            })
        });
        group.bench_function("render_policy_error", |b| {
            b.iter(|| {
                m.dialect
                    .render_error(Some(&m), black_box(&extracted.view), &policy)
            })
        });
        group.finish();
    }
}

/// Akana's login (the route the shadow latency bench times): extraction, and rendering the
/// session (body, auth and CSRF cookies).
fn akana_login(c: &mut Criterion) {
    let set = DialectSet::load(&DialectSource::embedded(), &LoadOptions::default())
        .expect("the shipped dialects load");
    let req = HttpRequest {
        method: "POST".into(),
        path: "/api/login".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"email":"jane.doe","password":"Old-Pass-1234"}"#.to_vec(),
    };
    let m = matched(&set, &req);
    let extracted = (m.dialect)
        .extract(&m, &req, RequestMeta::default())
        .expect("the login extracts");
    let outcome = Outcome::Token(IssuedToken {
        access: SecretToken::new(TOKEN.to_owned()),
        kind: TokenKind::User,
        issued_at: 1_700_000_000,
        expires_at: 1_700_001_800,
        refresh: None,
        user: Some(user()),
        client_id: None,
    });
    let mut group = c.benchmark_group("login/akana");
    group.bench_function("extract", |b| {
        b.iter(|| (m.dialect).extract(&m, black_box(&req), RequestMeta::default()))
    });
    group.bench_function("render_ok", |b| {
        b.iter(|| (m.dialect).render_outcome(&m, black_box(&extracted.view), &outcome))
    });
    group.finish();
}

criterion_group!(benches, engine, akana_login);
criterion_main!(benches);
