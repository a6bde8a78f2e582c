//! The requests the benchmark sends: a password change through each dialect and the native
//! API, and the cheap requests (health, a 401, a reset-token check, an authenticated lookup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use credgate_core::model::TokenKind;
use credgate_core::{IssuedToken, Outcome, Password, SecretToken};
use credgate_dialect::upstream::{Session, UpstreamAuth, UpstreamCommand, Values};
use credgate_dialect::{Dialect, DialectSet, DialectSource, LoadOptions};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::json;

use crate::load::Workload;
use crate::seed::{user_record, BenchUser, APP_KEY, PASSWORDS};

/// Where a password change is sent: the native API, or a dialect. Every shipped dialect with a
/// change-password route is benchmarked, its requests built from its own dialect file (the
/// same code that speaks to upstreams), so a new dialect folder needs no code here.
#[derive(Clone)]
pub enum Api {
    Native,
    Dialect(Arc<Dialect>),
}

impl PartialEq for Api {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Api {
    /// The native API first, then every dialect that changes passwords, by name.
    pub fn all() -> Vec<Api> {
        let set = DialectSet::load(&DialectSource::embedded(), &LoadOptions::default());
        let dialects = set.map(|s| s.dialects().to_vec()).unwrap_or_default();
        let changing = dialects
            .into_iter()
            .filter(|d| d.upstream_route(UpstreamCommand::ChangePassword).is_some());
        std::iter::once(Api::Native)
            .chain(changing.map(Api::Dialect))
            .collect()
    }

    pub fn name(&self) -> &str {
        match self {
            Api::Native => "native",
            Api::Dialect(d) => &d.name,
        }
    }

    /// The success status of a change in this API.
    pub fn change_status(&self) -> u16 {
        match self {
            Api::Native => 204,
            Api::Dialect(d) => d
                .upstream_route(UpstreamCommand::ChangePassword)
                .map_or(200, |r| r.ok.spec.status),
        }
    }

    /// What a client of this API holds for `user`: for a dialect, the session its login hands
    /// out for the user's seeded token, read back as the client reads it.
    pub(crate) fn session(&self, user: &BenchUser) -> Option<Session> {
        let Api::Dialect(d) = self else {
            return None;
        };
        let now = crate::seed::now();
        d.session_for(&Outcome::Token(IssuedToken {
            access: SecretToken::new(user.token(&d.name)),
            kind: TokenKind::User,
            issued_at: now,
            expires_at: now + 3600,
            refresh: None,
            user: Some(user_record(user.id.clone(), user.username.clone(), now)),
            client_id: None,
        }))
    }

    /// A change of `user`'s password from `from` to `to`, as this API's clients send it.
    fn change(
        &self,
        client: &Client,
        base: &str,
        user: &BenchUser,
        session: Option<&Session>,
        (from, to): (&str, &str),
    ) -> RequestBuilder {
        let Api::Dialect(d) = self else {
            return client
                .put(format!("{base}/v1/users/me/password"))
                .header("Authorization", format!("Bearer {}", user.token("native")))
                .json(&json!({"current_password": from, "new_password": to}));
        };
        let values = Values {
            username: Some(user.username.clone()),
            current: Some(Password::new(from)),
            new: Some(Password::new(to)),
            subject_ref: session
                .and_then(|s| s.user_ref.clone())
                .or_else(|| Some(user.id.clone())),
            ..Values::default()
        };
        let auth = UpstreamAuth {
            app_key: Some(SecretToken::new(APP_KEY)),
            ..UpstreamAuth::default()
        };
        match d.upstream_request(
            UpstreamCommand::ChangePassword,
            base,
            &values,
            &auth,
            session,
        ) {
            Ok(r) => {
                let method = Method::from_bytes(r.method.as_bytes()).unwrap_or(Method::PUT);
                let mut b = client.request(method, r.url).body(r.body);
                for (name, value) in r.headers {
                    b = b.header(name, value);
                }
                b
            }
            // Counted as a failed request, with the reason in the URL's place.
            Err(e) => client.get(format!("{base}/bench-cannot-build/{e}")),
        }
    }
}

/// Password changes through one API; connection `c` drives user `c` and alternates between
/// the two bench passwords (history is relaxed to 1 so the pair may alternate).
pub struct ChangeLoad {
    pub api: Api,
    pub base: String,
    pub users: Vec<BenchUser>,
    /// Each user's session in the API's own form (dialects only).
    sessions: Vec<Option<Session>>,
    /// Successful changes per user: even means the password is `PASSWORDS[0]`.
    changes: Vec<AtomicU64>,
}

impl ChangeLoad {
    pub fn new(api: Api, base: &str, users: Vec<BenchUser>) -> Arc<Self> {
        let changes = users.iter().map(|_| AtomicU64::new(0)).collect();
        let sessions = users.iter().map(|u| api.session(u)).collect();
        Arc::new(Self {
            api,
            base: base.to_owned(),
            users,
            sessions,
            changes,
        })
    }
}

impl Workload for ChangeLoad {
    fn request(&self, client: &Client, conn: usize) -> RequestBuilder {
        let n = self.changes[conn].load(Ordering::Relaxed) as usize;
        let passwords = (PASSWORDS[n % 2], PASSWORDS[(n + 1) % 2]);
        let session = self.sessions[conn].as_ref();
        self.api
            .change(client, &self.base, &self.users[conn], session, passwords)
    }

    fn expected_status(&self) -> u16 {
        self.api.change_status()
    }

    fn succeeded(&self, conn: usize) {
        self.changes[conn].fetch_add(1, Ordering::Relaxed);
    }
}

/// One fixed request, the same on every connection.
pub struct FixedLoad {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<serde_json::Value>,
    status: u16,
}

impl FixedLoad {
    pub fn healthz(base: &str) -> Arc<Self> {
        Self::get(format!("{base}/healthz"), vec![], 200)
    }

    /// Akana's session check without a session: answered 401 before any store access.
    pub fn unauthenticated(base: &str) -> Arc<Self> {
        Self::get(format!("{base}/api/login/status"), vec![], 401)
    }

    /// The native reset-token validation of a valid token (never consumes it).
    pub fn reset_validation(base: &str, username: &str, token: &str) -> Arc<Self> {
        Arc::new(Self {
            method: Method::POST,
            url: format!("{base}/v1/password-resets/validate"),
            headers: vec![],
            body: Some(json!({"username": username, "token": token})),
            status: 204,
        })
    }

    fn get(url: String, headers: Vec<(String, String)>, status: u16) -> Arc<Self> {
        Arc::new(Self {
            method: Method::GET,
            url,
            headers,
            body: None,
            status,
        })
    }
}

impl Workload for FixedLoad {
    fn request(&self, client: &Client, _conn: usize) -> RequestBuilder {
        let mut b = client.request(self.method.clone(), &self.url);
        for (name, value) in &self.headers {
            b = b.header(name, value);
        }
        if let Some(body) = &self.body {
            b = b.json(body);
        }
        b
    }

    fn expected_status(&self) -> u16 {
        self.status
    }
}

/// Native password logins of one user per connection (one bcrypt verify each).
pub struct LoginLoad {
    pub base: String,
    pub users: Vec<BenchUser>,
    pub password: String,
}

impl Workload for LoginLoad {
    fn request(&self, client: &Client, conn: usize) -> RequestBuilder {
        let user = &self.users[conn];
        client.post(format!("{}/v1/token", self.base)).form(&[
            ("grant_type", "password"),
            ("username", user.username.as_str()),
            ("password", self.password.as_str()),
        ])
    }

    fn expected_status(&self) -> u16 {
        200
    }
}
