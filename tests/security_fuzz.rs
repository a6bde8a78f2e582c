//! Property-based attack: arbitrary methods, paths, headers and bodies thrown at one running
//! gateway with a seeded user. Nothing may answer 5xx, and without the right current password
//! the user's password never changes.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value};

use crate::security_common::*;

const USERNAME: &str = "fuzz.user@example.com";
/// Never produced by the strategies: no case knows the current password.
const PASSWORD: &str = "Fuzz-Seeded-Secret-93";
const CASES: u32 = 200;

/// Live values substituted into a case just before it is sent.
struct Live {
    token: String,
    akana_cookie: String,
    csrf: String,
    uid: String,
    basic: String,
}

impl Live {
    fn fill(&self, s: &str) -> String {
        s.replace("{TOKEN}", &self.token)
            .replace("{AKANA_COOKIE}", &self.akana_cookie)
            .replace("{CSRF}", &self.csrf)
            .replace("{UID}", &self.uid)
            .replace("{USER}", USERNAME)
            .replace("{APPKEY}", APP_KEY)
            .replace("{BASIC}", &self.basic)
    }
}

#[derive(Debug, Clone)]
struct Case {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Every route with its own method.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/login"),
    ("GET", "/api/login/status"),
    ("POST", "/api/login/renewToken"),
    ("POST", "/api/login/logout"),
    ("GET", "/api/login/endsession"),
    ("PUT", "/api/users/{}/password"),
    ("POST", "/studio/api/1/services/api/1/security/login.json"),
    ("GET", "/studio/api/1/services/api/1/security/logout.json"),
    (
        "POST",
        "/studio/api/1/services/api/1/user/change-password.json",
    ),
    ("GET", "/studio/api/1/services/api/1/user/get.json"),
    (
        "GET",
        "/studio/api/1/services/api/1/user/forgot-password.json",
    ),
    (
        "GET",
        "/studio/api/1/services/api/1/user/validate-token.json",
    ),
    (
        "POST",
        "/studio/api/1/services/api/1/user/set-password.json",
    ),
    ("POST", "/studio/api/1/services/api/1/{}/{}.json"),
    ("POST", "/api/v1/connect/token"),
    ("POST", "/api/v1/connect/token/"),
    ("PUT", "/api/v1/users/{}/changepassword"),
    ("PUT", "/api/v1/users/{}/changepassword/"),
    ("POST", "/api/token"),
    ("PUT", "/api/{}/users/{}/password/change"),
    ("POST", "/api/{}/users/password/reset"),
    ("POST", "/api/{}/users/password/reset/code"),
    ("PUT", "/api/{}/users/passwords/reset/"),
    ("POST", "/auth/token"),
    ("POST", "/auth/password/change"),
    ("POST", "/auth/password/reset"),
    ("POST", "/auth/password/reset/token/validate"),
    ("POST", "/auth/password/reset/token/process"),
    ("POST", "/auth/password/reset/validate"),
    ("POST", "/auth/password/reset/process"),
    ("POST", "/v1/token"),
    ("PUT", "/v1/users/{}/password"),
    ("POST", "/v1/password-resets"),
    ("POST", "/v1/password-resets/validate"),
    ("POST", "/v1/password-resets/complete"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

const FIELDS: &[&str] = &[
    "email",
    "password",
    "Password",
    "username",
    "Username",
    "User",
    "OldPassword",
    "oldPassword",
    "oldpassword",
    "NewPassword",
    "newpassword",
    "PasswordConfirm",
    "PasswordConfirmation",
    "CurrentPassword",
    "currentPassword",
    "current",
    "new",
    "Id",
    "userId",
    "id",
    "Token",
    "token",
    "Code",
    "SecretQuestionAnswer",
    "grant_type",
    "client_id",
    "client_secret",
    "refresh_token",
    "scope",
    "current_password",
    "new_password",
];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "{UID}",
            "@me",
            "..",
            ".",
            "%2e%2e",
            "%2E%2E%2F",
            "%00",
            "%2F",
            "%0d%0a",
            "v1.0",
            "v1",
            "v0.0",
            "v99999999999999999999",
            "{USER}",
            "-1",
            "0",
        ])
        .prop_map(String::from),
        "[A-Za-z0-9._~-]{1,12}",
        "[!$&'()*+,;=:@A-Za-z0-9-]{1,10}",
        "%[0-9A-F]{2}[a-z]{0,4}",
        "x{200,400}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?username={USER}".to_owned()),
        Just("?fedmemberId=acmepaymentscorp".to_owned()),
        "\\?[a-z]{1,8}=[A-Za-z0-9%._-]{0,12}(&[a-zA-Z_]{1,8}=[A-Za-z0-9%._-]{0,12}){0,3}",
    ]
}

fn odd_method() -> impl Strategy<Value = &'static str> {
    select(vec![
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND", "MKCOL",
        "FOO", "get", "M-SEARCH",
    ])
}

/// A method and a path: mostly a route with its own method.
fn target() -> impl Strategy<Value = (&'static str, String)> {
    let route = select(ROUTES);
    let method = |own: &'static str| prop_oneof![4 => Just(own), 1 => odd_method()];
    prop_oneof![
        3 => (route.clone(), prop::collection::vec(segment(), 3), query()).prop_flat_map(
            move |((own, r), segs, q)| {
                let mut out = r.to_owned();
                for s in segs {
                    out = out.replacen("{}", &s, 1);
                }
                (method(own), Just(out + &q))
            }
        ),
        // The user's own id in the slots: the requests a real client sends.
        5 => (route, query()).prop_flat_map(move |((own, r), q)| {
            let out = r
                .replace("/api/{}/users", "/api/v1.0/users")
                .replace("{}", "{UID}")
                + &q;
            (method(own), Just(out))
        }),
        1 => (odd_method(), prop::collection::vec(segment(), 0..5), query())
            .prop_map(|(m, segs, q)| (m, format!("/{}{q}", segs.join("/")))),
    ]
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap()
}

fn header() -> impl Strategy<Value = (String, String)> {
    let named = |name: &'static str, values: Vec<&'static str>| {
        (
            Just(name.to_owned()),
            prop_oneof![select(values).prop_map(String::from), printable(40)],
        )
    };
    prop_oneof![
        named(
            "Authorization",
            vec![
                "Bearer {TOKEN}",
                "Basic {BASIC}",
                "Bearer ",
                "Basic Og==",
                "Basic ::::",
                "bearer {TOKEN}"
            ]
        ),
        named(
            "Cookie",
            vec![
                "AtmoAuthToken_acmepaymentscorp={AKANA_COOKIE}",
                "AtmoAuthToken_acmepaymentscorp={AKANA_COOKIE}; Csrf-Token_acmepaymentscorp={CSRF}",
                "JSESSIONID={TOKEN}; XSRF-TOKEN=abc",
                "JSESSIONID={TOKEN}",
                "JSESSIONID=; XSRF-TOKEN=",
                "a=b; a=c; ;;=;",
            ]
        ),
        named(
            "Content-Type",
            vec![
                "application/json",
                "application/json; charset=UTF-8",
                "application/x-www-form-urlencoded",
                "text/plain",
                "multipart/form-data; boundary=zz",
                "application/vnd.soa.v81+json",
                "application/json; charset=utf-16",
                "application/JSON",
                "",
                "*/*",
                "application/json;;;=",
            ]
        ),
        named("X-Csrf-Token_acmepaymentscorp", vec!["{CSRF}", ""]),
        named("X-XSRF-TOKEN", vec!["abc", ""]),
        named("Et-App-Key", vec!["{APPKEY}", ""]),
        named("Username", vec!["{USER}", ""]),
        named("Password", vec!["", "\u{0}"]),
        named("Accept", vec!["*/*", "text/plain", "application/json"]),
        (
            "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("hop-by-hop and framing headers", |n| {
                ![
                    "host",
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "te",
                    "upgrade",
                    "expect",
                    "keep-alive",
                    "trailer",
                    "proxy-connection",
                ]
                .contains(&n.to_ascii_lowercase().as_str())
            }),
            printable(40)
        ),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        printable(24).prop_map(Value::String),
        "\\PC{0,12}".prop_map(Value::String),
        select(vec![
            "{UID}", "{USER}", "{TOKEN}", "@me", "", " ", "password"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(FIELDS), inner), 0..4).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        2 => prop::collection::vec(any::<u8>(), 0..256),
        4 => prop::collection::vec((select(FIELDS), json_value()), 0..8).prop_map(|kv| {
            // Serialised by hand so repeated keys stay repeated.
            let parts: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
                .collect();
            format!("{{{}}}", parts.join(",")).into_bytes()
        }),
        2 => prop::collection::vec((select(FIELDS), printable(20)), 0..6).prop_map(|kv| {
            kv.iter()
                .map(|(k, v)| format!("{k}={}", v.replace('&', "%26")))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (target(), prop::collection::vec(header(), 0..8), body()).prop_map(
        |((method, path), headers, body)| Case {
            method: method.to_owned(),
            path,
            headers,
            body,
        },
    )
}

#[test]
fn arbitrary_requests_never_5xx_and_never_change_the_password() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (gw, uid) = rt.block_on(async {
        let gw = gateway().await;
        let who = user(&gw, USERNAME, PASSWORD).await;
        (gw, who.id)
    });
    let basic = gw
        .http
        .get(gw.at("/"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .build()
        .unwrap()
        .headers()["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Basic ")
        .to_owned();

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&case(), |case| {
        rt.block_on(async {
            // A fresh window and fresh sessions: limits and logouts of earlier cases are over.
            gw.clock.advance(901);
            let akana = login(&gw, AKANA, USERNAME, PASSWORD).await;
            let live = Live {
                token: akana.token.clone(),
                akana_cookie: akana.cookie.clone().unwrap(),
                csrf: akana.csrf.clone().unwrap(),
                uid: uid.clone(),
                basic: basic.clone(),
            };
            let Ok(method) = reqwest::Method::from_bytes(case.method.as_bytes()) else {
                return Ok(());
            };
            let mut req = gw.http.request(method, gw.at(&live.fill(&case.path)));
            for (name, value) in &case.headers {
                req = req.header(name.as_str(), live.fill(value));
            }
            let req = match req.body(case.body.clone()).build() {
                Ok(req) => req,
                Err(_) => return Ok(()), // not sendable by a conforming client
            };
            let res = gw
                .http
                .execute(req)
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            let status = res.status().as_u16();
            *statuses.lock().unwrap().entry(status).or_default() += 1;
            prop_assert!(
                status < 500,
                "answered {status}: {}",
                res.text().await.unwrap_or_default()
            );
            drop(res);
            gw.clock.advance(901);
            let still = gw.login(USERNAME, PASSWORD).await.status();
            prop_assert_eq!(still, 200, "the seeded password no longer logs in");
            Ok(())
        })
    });
    let changes = rt.block_on(async {
        gw.audit(&uid)
            .await
            .iter()
            .filter(|r| r["kind"] == "password_changed")
            .count()
    });
    rt.block_on(async move { drop(gw) });
    println!("fuzz answers by status: {:?}", statuses.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(changes, 0, "the audit records no password change");
}
