//! Request -> canonical command. Reads only what the route declares, in the vendor's names.

use credgate_core::{
    Access, AppKey, ChangePassword, ClientCredentials, Command, Error, FieldProblem, FieldReason,
    Grant, Password, Request, RequestMeta, SecretToken, Subject, TokenKind, TokenRequest,
};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::body::{parse_form, parse_json_object};
use crate::dialect::{Dialect, RouteMatch};
use crate::http::HttpRequest;
use crate::spec::{
    AuthScheme, BodyFormat, ClientAuth, CommandName, CsrfStyle, Sources, TokenRequirement,
};

/// A translated request, and what of it templates may show (never a secret).
#[derive(Debug)]
pub struct Extracted {
    pub request: Request,
    pub view: RequestView,
}

/// The non-secret parts of a request, for rendering.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RequestView {
    pub path: std::collections::BTreeMap<String, String>,
    pub username: Option<String>,
    pub subject: Option<String>,
}

enum Field {
    Absent,
    Text(String),
    WrongType,
}

struct Input<'a> {
    req: &'a HttpRequest,
    params: &'a [(String, String)],
    body: Map<String, Value>,
    query: Vec<(String, String)>,
    basic: Option<(String, String)>,
    case_insensitive: bool,
}

impl Input<'_> {
    fn get(&self, source: &str) -> Field {
        let Some((place, name)) = source.split_once('.') else {
            return Field::Absent;
        };
        let text = |v: Option<&str>| v.map_or(Field::Absent, |s| Field::Text(s.to_owned()));
        match place {
            "body" => {
                let found = if self.case_insensitive {
                    self.body
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                } else {
                    self.body.get(name)
                };
                match found {
                    None | Some(Value::Null) => Field::Absent,
                    Some(Value::String(s)) => Field::Text(s.clone()),
                    Some(_) => Field::WrongType,
                }
            }
            "path" => text(
                self.params
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str()),
            ),
            "query" => text(
                self.query
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str()),
            ),
            "header" => text(self.req.header(name)),
            "cookie" => text(self.req.cookie(name)),
            "basic" => match (&self.basic, name) {
                (Some((u, _)), "username") => Field::Text(u.clone()),
                (Some((_, p)), "password") => Field::Text(p.clone()),
                _ => Field::Absent,
            },
            _ => Field::Absent,
        }
    }

    /// The first source that is present.
    fn first(&self, sources: &Sources) -> Field {
        for s in sources.list() {
            match self.get(s) {
                Field::Absent => continue,
                found => return found,
            }
        }
        Field::Absent
    }
}

/// The vendor's name for a source (`body.OldPassword` -> `OldPassword`).
pub(crate) fn vendor_name(sources: &Sources) -> String {
    let first = sources.list().first().copied().unwrap_or_default();
    first.split_once('.').map_or(first, |(_, n)| n).to_owned()
}

impl Dialect {
    /// Translates a matched request into a canonical one.
    pub fn extract(
        &self,
        m: &RouteMatch,
        req: &HttpRequest,
        meta: RequestMeta,
    ) -> Result<Extracted, Error> {
        let route = &m.route().spec;
        let mut view = RequestView {
            path: m.params.iter().cloned().collect(),
            ..RequestView::default()
        };

        // Authentication comes first, as the vendors' servers check it before binding the body:
        // a request without its session or app key is refused as such, whatever its body.
        let app_key = match (&self.spec.auth.app_key, route.no_app_key) {
            (Some(spec), false) => {
                let presented = req
                    .header(&spec.header)
                    .filter(|k| !k.is_empty())
                    .map(SecretToken::new);
                if presented.is_none() {
                    return Err(Error::UnknownApp);
                }
                Some(AppKey { presented })
            }
            _ => None,
        };
        let access = match route.token {
            TokenRequirement::None => Access::Public,
            TokenRequirement::User | TokenRequirement::Client => {
                let token = self
                    .presented_token(req)
                    .filter(|t| !t.is_empty())
                    .ok_or(Error::Unauthenticated)?;
                self.check_csrf(route.method.as_str(), req, &token)?;
                let kind = if route.token == TokenRequirement::Client {
                    TokenKind::Client
                } else {
                    TokenKind::User
                };
                Access::Token {
                    token: Some(token),
                    kind,
                }
            }
        };

        let body = match route.body {
            BodyFormat::None => Map::new(),
            format => {
                let accepted: Vec<String> = match (&route.content_types, format) {
                    (Some(list), _) => list.iter().map(|s| s.to_ascii_lowercase()).collect(),
                    (None, BodyFormat::Form) => vec!["application/x-www-form-urlencoded".into()],
                    (None, _) => vec!["application/json".into()],
                };
                let empty = req.body.iter().all(u8::is_ascii_whitespace);
                match req.media_type() {
                    Some(mt) if accepted.contains(&mt) => {}
                    None if empty => {}
                    _ => return Err(Error::UnsupportedMediaType),
                }
                match format {
                    _ if empty => Map::new(),
                    BodyFormat::Json => parse_json_object(&req.body)?,
                    _ => parse_form(&req.body)?,
                }
            }
        };
        if self.spec.case_insensitive_fields && has_case_insensitive_duplicates(&body) {
            // `OldPassword` and `oldpassword` together: which one a binder takes differs.
            return Err(Error::MalformedRequest(
                "a field is repeated in another case".into(),
            ));
        }
        let query =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&req.query).unwrap_or_default();
        let input = Input {
            req,
            params: &m.params,
            body,
            query,
            basic: basic_credentials(req),
            case_insensitive: self.spec.case_insensitive_fields,
        };

        // Every required field, reported together as the vendors' validators do.
        let mut problems = Vec::new();
        let mut text = |canonical: &str, sources: Option<&Sources>| -> Option<String> {
            let required = route.required.iter().any(|r| r == canonical);
            match sources.map_or(Field::Absent, |s| input.first(s)) {
                Field::Text(s) if !s.trim().is_empty() => Some(s),
                Field::WrongType => {
                    problems.push(FieldProblem::new(canonical, FieldReason::WrongType));
                    None
                }
                Field::Text(_) | Field::Absent => {
                    if required {
                        problems.push(FieldProblem::new(canonical, FieldReason::Missing));
                    }
                    None
                }
            }
        };

        let subject_spec = route.subject.clone().unwrap_or_default();
        let subject_sources = subject_spec.id.as_ref().or(subject_spec.username.as_ref());
        let subject_raw = text("subject", subject_sources);
        view.subject = subject_raw.clone();
        let subject = match (&subject_raw, &subject_spec) {
            (None, _) => Subject::Caller,
            (Some(v), s) if s.me.as_deref() == Some(v.as_str()) => Subject::Caller,
            (Some(v), s) if s.id.is_some() => Subject::Id(v.clone()),
            (Some(v), _) => Subject::Username(v.clone()),
        };
        let mut field = |name: &str| text(name, route.fields.get(name));

        let command = match route.command {
            CommandName::Login => {
                let (username, password) = (field("username"), field("password"));
                view.username = username.clone();
                Command::IssueToken(TokenRequest {
                    client: None,
                    client_required: false,
                    grant: Grant::Password {
                        username: username.unwrap_or_default(),
                        password: Password::new(password.unwrap_or_default()),
                    },
                    with_refresh: false,
                })
            }
            CommandName::Token => {
                let grant_type = field("grant_type");
                let canonical = match (&grant_type, route.grants.is_empty()) {
                    (None, true) => Some("password"),
                    (Some(g), false) => route.grants.get(g).map(String::as_str),
                    _ => None,
                };
                let client_id = field("client_id");
                let client_secret = field("client_secret");
                let client = match (route.client_auth, client_id) {
                    (ClientAuth::None, _) | (_, None) => None,
                    (_, Some(id)) => Some(ClientCredentials {
                        client_id: id,
                        secret: Password::new(client_secret.unwrap_or_default()),
                    }),
                };
                let grant = match canonical {
                    Some("password") => {
                        let (username, password) = (field("username"), field("password"));
                        if username.is_none() {
                            problems.push(FieldProblem::new("username", FieldReason::Missing));
                        }
                        if password.is_none() {
                            problems.push(FieldProblem::new("password", FieldReason::Missing));
                        }
                        view.username = username.clone();
                        Grant::Password {
                            username: username.unwrap_or_default(),
                            password: Password::new(password.unwrap_or_default()),
                        }
                    }
                    Some("client_credentials") => Grant::ClientCredentials,
                    Some(_) => match field("refresh_token") {
                        Some(t) => Grant::Refresh {
                            refresh_token: SecretToken::new(t),
                        },
                        None => {
                            problems.push(FieldProblem::new("refresh_token", FieldReason::Missing));
                            Grant::ClientCredentials
                        }
                    },
                    None => {
                        let reason = if grant_type.is_some() {
                            FieldReason::Unsupported
                        } else {
                            FieldReason::Missing
                        };
                        problems.push(FieldProblem::new("grant_type", reason));
                        Grant::ClientCredentials
                    }
                };
                Command::IssueToken(TokenRequest {
                    client,
                    client_required: route.client_auth == ClientAuth::Required,
                    grant,
                    with_refresh: route.refresh,
                })
            }
            CommandName::ChangePassword => {
                let (current, new, confirm) = (field("current"), field("new"), field("confirm"));
                if let (Some(check), Some(raw)) = (&route.subject_check, &subject_raw) {
                    if let Field::Text(given) = input.first(check) {
                        if &given != raw {
                            problems
                                .push(FieldProblem::new("subject_check", FieldReason::Mismatch));
                        }
                    }
                }
                Command::ChangePassword(ChangePassword {
                    subject,
                    current: Password::new(current.unwrap_or_default()),
                    new: Password::new(new.unwrap_or_default()),
                    confirm: confirm.map(Password::new).or_else(|| {
                        // A confirmation field the vendor declares but the client left empty.
                        route.fields.contains_key("confirm").then(Password::default)
                    }),
                })
            }
            CommandName::RequestReset => {
                let username = field("username");
                view.username = username.clone();
                Command::RequestReset {
                    username: username.unwrap_or_default(),
                }
            }
            CommandName::ValidateReset => {
                let (username, token) = (field("username"), field("token"));
                view.username = username.clone();
                Command::ValidateReset {
                    username,
                    token: SecretToken::new(token.unwrap_or_default()),
                }
            }
            CommandName::ResetPassword => {
                let (username, token, new, confirm) = (
                    field("username"),
                    field("token"),
                    field("new"),
                    field("confirm"),
                );
                view.username = username.clone();
                Command::ResetPassword {
                    username,
                    token: SecretToken::new(token.unwrap_or_default()),
                    new: Password::new(new.unwrap_or_default()),
                    confirm: confirm
                        .map(Password::new)
                        .or_else(|| route.fields.contains_key("confirm").then(Password::default)),
                }
            }
            CommandName::RequestResetCode => {
                let (username, answer) = (field("username"), field("answer"));
                view.username = username.clone();
                Command::RequestResetCode {
                    username: username.unwrap_or_default(),
                    answer: Password::new(answer.unwrap_or_default()),
                }
            }
            CommandName::ExchangeResetCode => Command::ExchangeResetCode {
                code: SecretToken::new(field("code").unwrap_or_default()),
            },
            CommandName::RevokeToken => {
                let client = match (route.client_auth, field("client_id")) {
                    (ClientAuth::None, _) | (_, None) => None,
                    (_, Some(id)) => Some(ClientCredentials {
                        client_id: id,
                        secret: Password::new(field("client_secret").unwrap_or_default()),
                    }),
                };
                Command::RevokeToken {
                    client,
                    client_required: route.client_auth == ClientAuth::Required,
                    token: SecretToken::new(field("token").unwrap_or_default()),
                }
            }
            CommandName::Logout => Command::Logout,
            CommandName::RenewSession => Command::RenewSession,
            CommandName::ShowUser => Command::ShowUser { subject },
        };
        if !problems.is_empty() {
            return Err(Error::InvalidRequest { problems });
        }

        Ok(Extracted {
            request: Request {
                meta,
                app_key,
                access,
                command,
            },
            view,
        })
    }

    /// The session token as the dialect's auth scheme carries it.
    pub fn presented_token(&self, req: &HttpRequest) -> Option<SecretToken> {
        match self.spec.auth.scheme {
            AuthScheme::Bearer => crate::authorization::bearer_token(req.header("authorization")?),
            AuthScheme::Cookie => {
                let raw = req.cookie(self.cookie_name.as_deref()?)?;
                let decoded = percent_decode_str(raw).decode_utf8().ok()?;
                let token = match &self.token_pattern {
                    Some(re) => re.captures(&decoded)?.get(1)?.as_str().to_owned(),
                    None => decoded.into_owned(),
                };
                Some(SecretToken::new(token))
            }
        }
    }

    fn check_csrf(
        &self,
        method: &str,
        req: &HttpRequest,
        token: &SecretToken,
    ) -> Result<(), Error> {
        let Some(csrf) = self.spec.auth.csrf.as_ref().filter(|c| c.enabled) else {
            return Ok(());
        };
        if !csrf.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return Ok(());
        }
        let header = self
            .csrf_header
            .as_deref()
            .and_then(|h| req.header(h))
            .unwrap_or_default();
        let ok = match csrf.style {
            CsrfStyle::DoubleSubmit => {
                let cookie = self
                    .csrf_cookie
                    .as_deref()
                    .and_then(|c| req.cookie(c))
                    .unwrap_or_default();
                !header.is_empty()
                    && credgate_core::token::constant_time_eq(header.as_bytes(), cookie.as_bytes())
            }
            CsrfStyle::Session => {
                let decoded = percent_decode_str(header).decode_utf8_lossy();
                let value = match &self.csrf_pattern {
                    Some(re) => re
                        .captures(&decoded)
                        .and_then(|c| c.get(1))
                        .map(|m| m.as_str().to_owned()),
                    None => Some(decoded.into_owned()),
                };
                value.is_some_and(|v| {
                    credgate_core::token::constant_time_eq(
                        v.as_bytes(),
                        csrf_value(token).as_bytes(),
                    )
                })
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::CsrfRejected)
        }
    }
}

/// The CSRF value bound to a session: a digest of its token, which only the token's holder
/// can compute and which reveals nothing of the token.
pub fn csrf_value(token: &SecretToken) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"credgate-csrf:")
        .chain_update(token.expose().as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

fn has_case_insensitive_duplicates(body: &Map<String, Value>) -> bool {
    let mut seen = std::collections::HashSet::new();
    body.keys().any(|k| !seen.insert(k.to_ascii_lowercase()))
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    crate::authorization::basic_credentials(req.header("authorization")?)
}
