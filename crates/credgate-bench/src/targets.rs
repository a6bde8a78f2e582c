//! The requests the benchmark sends: a password change through each dialect and the native
//! API, and the cheap requests (health, a 401, a reset-token check, an authenticated lookup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use credgate_core::SecretToken;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::json;

use crate::load::Workload;
use crate::seed::{BenchUser, APP_KEY, PASSWORDS};

/// Akana's federation member id: the gateway's default `[dialects.vars.akana]`.
const FED: &str = "acmepaymentscorp";

/// Where a password change is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Native,
    Crayon,
    Akana,
    Etapp,
    Crafter,
    OauthStyle,
}

impl Api {
    pub const ALL: [Api; 6] = [
        Api::Native,
        Api::Crayon,
        Api::Akana,
        Api::Etapp,
        Api::Crafter,
        Api::OauthStyle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Api::Native => "native",
            Api::Crayon => "crayon",
            Api::Akana => "akana",
            Api::Etapp => "etapp",
            Api::Crafter => "crafter",
            Api::OauthStyle => "oauth-style",
        }
    }

    /// The success status of a change in this API.
    pub fn change_status(self) -> u16 {
        match self {
            Api::Native | Api::OauthStyle => 204,
            _ => 200,
        }
    }

    /// A change of `user`'s password from `from` to `to`, as this API's clients send it.
    pub fn change(
        self,
        client: &Client,
        base: &str,
        user: &BenchUser,
        from: &str,
        to: &str,
    ) -> RequestBuilder {
        let bearer = format!("Bearer {}", user.token(self.name()));
        match self {
            Api::Native => client
                .put(format!("{base}/v1/users/me/password"))
                .header("Authorization", bearer)
                .json(&json!({"current_password": from, "new_password": to})),
            Api::Crayon => client
                .put(format!("{base}/api/v1/users/{}/changepassword", user.id))
                .header("Authorization", bearer)
                .json(&json!({"Id": user.id, "OldPassword": from, "NewPassword": to})),
            Api::Akana => akana_session(
                client.put(format!("{base}/api/users/{}/password", user.id)),
                user,
            )
            .header(format!("X-Csrf-Token_{FED}"), akana_csrf(user))
            .json(&json!({"OldPassword": from, "NewPassword": to})),
            Api::Etapp => client
                .put(format!("{base}/api/v1.0/users/@me/password/change"))
                .header("Authorization", bearer)
                .header("Et-App-Key", APP_KEY)
                .json(&json!({"OldPassword": from, "Password": to, "PasswordConfirm": to})),
            Api::Crafter => client
                .post(format!(
                    "{base}/studio/api/1/services/api/1/user/change-password.json"
                ))
                .header(
                    "Cookie",
                    format!(
                        "JSESSIONID={}; XSRF-TOKEN=bench-xsrf",
                        user.token(self.name())
                    ),
                )
                .header("X-XSRF-TOKEN", "bench-xsrf")
                .json(&json!({"username": user.username, "current": from, "new": to})),
            Api::OauthStyle => client
                .post(format!("{base}/auth/password/change"))
                .header("Authorization", bearer)
                .json(&json!({"CurrentPassword": from, "NewPassword": to})),
        }
    }
}

/// Akana's session cookie, in the form its login sets (URL-encoded `TokenID=...`).
fn akana_session(builder: RequestBuilder, user: &BenchUser) -> RequestBuilder {
    builder.header(
        "Cookie",
        format!("AtmoAuthToken_{FED}=TokenID%3D{}", user.token("akana")),
    )
}

/// The session-bound CSRF value Akana's login hands out for this token.
fn akana_csrf(user: &BenchUser) -> String {
    let csrf = credgate_dialect::csrf_value(&SecretToken::new(user.token("akana")));
    format!("TokenID={csrf}")
}

/// Password changes through one API; connection `c` drives user `c` and alternates between
/// the two bench passwords (history is relaxed to 1 so the pair may alternate).
pub struct ChangeLoad {
    pub api: Api,
    pub base: String,
    pub users: Vec<BenchUser>,
    /// Successful changes per user: even means the password is `PASSWORDS[0]`.
    changes: Vec<AtomicU64>,
}

impl ChangeLoad {
    pub fn new(api: Api, base: &str, users: Vec<BenchUser>) -> Arc<Self> {
        let changes = users.iter().map(|_| AtomicU64::new(0)).collect();
        Arc::new(Self {
            api,
            base: base.to_owned(),
            users,
            changes,
        })
    }
}

impl Workload for ChangeLoad {
    fn request(&self, client: &Client, conn: usize) -> RequestBuilder {
        let n = self.changes[conn].load(Ordering::Relaxed) as usize;
        let (from, to) = (PASSWORDS[n % 2], PASSWORDS[(n + 1) % 2]);
        self.api
            .change(client, &self.base, &self.users[conn], from, to)
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

    /// Akana's session check with a valid session: token lookup and the user, no bcrypt.
    pub fn session_check(base: &str, user: &BenchUser) -> Arc<Self> {
        let cookie = format!("AtmoAuthToken_{FED}=TokenID%3D{}", user.token("akana"));
        Self::get(
            format!("{base}/api/login/status"),
            vec![("Cookie".into(), cookie)],
            200,
        )
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

    /// Any URL answered 200 (nginx's static page).
    pub fn static_page(url: String) -> Arc<Self> {
        Self::get(url, vec![], 200)
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
