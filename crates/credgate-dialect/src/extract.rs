//! Request -> canonical command. Reads only what the route declares, in the vendor's names.
//! The steps: auth evidence (app key, session, CSRF), the body, then one builder per command.

use std::collections::BTreeMap;

use credgate_core::{
    Access, AppKey, ChangePassword, ClientCredentials, Command, Error, FieldProblem, FieldReason,
    Grant, Password, Request, RequestMeta, SecretToken, Subject, TokenKind, TokenRequest,
};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::body::{parse_form, parse_json_object};
use crate::dialect::{Dialect, RouteMatch};
use crate::http::HttpRequest;
use crate::route::{CompiledRoute, GrantKind, Source};
use crate::spec::{AuthScheme, BodyFormat, ClientAuth, CommandKind, CsrfStyle, TokenRequirement};

/// A translated request, and what of it templates may show (never a secret).
#[derive(Debug)]
pub struct Extracted {
    pub request: Request,
    pub view: RequestView,
}

/// The non-secret parts of a request, for rendering.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RequestView {
    pub path: BTreeMap<String, String>,
    pub username: Option<String>,
    pub subject: Option<String>,
}

enum Field {
    Absent,
    Text(String),
    WrongType,
}

/// Everything a request carries that a field source can point at.
struct Input<'a> {
    req: &'a HttpRequest,
    params: &'a [(String, String)],
    body: Map<String, Value>,
    query: Vec<(String, String)>,
    basic: Option<(String, String)>,
    case_insensitive: bool,
}

impl Input<'_> {
    fn get(&self, source: &Source) -> Field {
        let text = |v: Option<&str>| v.map_or(Field::Absent, |s| Field::Text(s.to_owned()));
        let pair = |list: &[(String, String)], name: &str| {
            list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        };
        match source {
            Source::Body(name) => {
                let found = if self.case_insensitive {
                    (self.body.iter())
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
            Source::Path(name) => pair(self.params, name).map_or(Field::Absent, Field::Text),
            Source::Query(name) => pair(&self.query, name).map_or(Field::Absent, Field::Text),
            Source::Header(name) => text(self.req.header(name)),
            Source::Cookie(name) => text(self.req.cookie(name)),
            Source::BasicUsername => text(self.basic.as_ref().map(|(u, _)| u.as_str())),
            Source::BasicPassword => text(self.basic.as_ref().map(|(_, p)| p.as_str())),
        }
    }

    /// The first source that is present.
    fn first(&self, sources: &[Source]) -> Field {
        for s in sources {
            match self.get(s) {
                Field::Absent => continue,
                found => return found,
            }
        }
        Field::Absent
    }
}

/// The route's fields read from one request, with the problems found so far: every required
/// field is reported together, as the vendors' validators do.
struct Fields<'a> {
    route: &'a CompiledRoute,
    input: Input<'a>,
    problems: Vec<FieldProblem>,
    view: RequestView,
}

impl Fields<'_> {
    /// The text of `canonical` from `sources`; a wrong type or a missing required field is
    /// noted as a problem.
    fn text(&mut self, canonical: &str, sources: Option<&[Source]>) -> Option<String> {
        match sources.map_or(Field::Absent, |s| self.input.first(s)) {
            Field::Text(s) if !s.trim().is_empty() => Some(s),
            Field::WrongType => {
                self.problems
                    .push(FieldProblem::new(canonical, FieldReason::WrongType));
                None
            }
            Field::Text(_) | Field::Absent => {
                if self.route.requires(canonical) {
                    self.problems
                        .push(FieldProblem::new(canonical, FieldReason::Missing));
                }
                None
            }
        }
    }

    /// A canonical field of the route.
    fn field(&mut self, name: &str) -> Option<String> {
        let route = self.route;
        self.text(name, route.fields.get(name).map(Vec::as_slice))
    }

    /// A field this request must carry (a grant's own fields), required or not on the route.
    fn needed(&mut self, name: &str) -> Option<String> {
        let value = self.field(name);
        if value.is_none() {
            self.problems
                .push(FieldProblem::new(name, FieldReason::Missing));
        }
        value
    }

    /// A confirmation, when the client sent one: it must then equal the new password. Where
    /// the route requires it, its absence is already a problem (Et-App); elsewhere it is
    /// optional (Crafter's `confirmation`).
    fn confirm(&mut self) -> Option<Password> {
        self.field("confirm").map(Password::new)
    }

    fn username(&mut self) -> Option<String> {
        let username = self.field("username");
        self.view.username.clone_from(&username);
        username
    }

    fn password(&mut self, name: &str) -> Password {
        Password::new(self.field(name).unwrap_or_default())
    }

    fn secret(&mut self, name: &str) -> SecretToken {
        SecretToken::new(self.field(name).unwrap_or_default())
    }
}

impl Dialect {
    /// Translates a matched request into a canonical one.
    pub fn extract(
        &self,
        m: &RouteMatch,
        req: &HttpRequest,
        meta: RequestMeta,
    ) -> Result<Extracted, Error> {
        let route = m.route();
        // Authentication comes first, as the vendors' servers check it before binding the body:
        // a request without its session or app key is refused as such, whatever its body.
        let app_key = self.app_key(route, req)?;
        let access = self.access(route, req)?;
        let body = self.body(route, req)?;
        let mut fields = Fields {
            route,
            input: Input {
                req,
                params: &m.params,
                body,
                query: serde_urlencoded::from_str(&req.query).unwrap_or_default(),
                basic: crate::authorization::basic_credentials(
                    req.header("authorization").unwrap_or_default(),
                ),
                case_insensitive: self.spec.case_insensitive_fields,
            },
            problems: Vec::new(),
            view: RequestView {
                path: m.params.iter().cloned().collect(),
                ..RequestView::default()
            },
        };
        let command = command(&mut fields);
        if !fields.problems.is_empty() {
            return Err(Error::InvalidRequest {
                problems: fields.problems,
            });
        }
        Ok(Extracted {
            request: Request {
                meta,
                app_key,
                access,
                command,
            },
            view: fields.view,
        })
    }

    /// The application key the dialect asks for on this route, if it does.
    fn app_key(&self, route: &CompiledRoute, req: &HttpRequest) -> Result<Option<AppKey>, Error> {
        match (&self.spec.auth.app_key, route.spec.no_app_key) {
            (Some(spec), false) => {
                let presented = (req.header(&spec.header))
                    .filter(|k| !k.is_empty())
                    .map(SecretToken::new);
                if presented.is_none() {
                    return Err(Error::UnknownApp);
                }
                Ok(Some(AppKey { presented }))
            }
            _ => Ok(None),
        }
    }

    /// The session or client token the route needs, CSRF checked.
    fn access(&self, route: &CompiledRoute, req: &HttpRequest) -> Result<Access, Error> {
        let kind = match route.spec.token {
            TokenRequirement::None => return Ok(Access::Public),
            TokenRequirement::User => TokenKind::User,
            TokenRequirement::Client => TokenKind::Client,
        };
        let token = (self.presented_token(req))
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthenticated)?;
        if route.csrf {
            self.check_csrf(req, &token)?;
        }
        Ok(Access::Token {
            token: Some(token),
            kind,
        })
    }

    /// The body's fields, in one of the media types the route accepts.
    fn body(&self, route: &CompiledRoute, req: &HttpRequest) -> Result<Map<String, Value>, Error> {
        let format = route.spec.body;
        if format == BodyFormat::None {
            return Ok(Map::new());
        }
        let empty = req.body.iter().all(u8::is_ascii_whitespace);
        match req.media_type() {
            Some(mt) if route.accepts_type(&mt) => {}
            None if empty => {}
            _ => return Err(Error::UnsupportedMediaType),
        }
        let body = match format {
            _ if empty => Map::new(),
            BodyFormat::Json => parse_json_object(&req.body)?,
            _ => parse_form(&req.body)?,
        };
        if self.spec.case_insensitive_fields && has_case_insensitive_duplicates(&body) {
            // `OldPassword` and `oldpassword` together: which one a binder takes differs.
            return Err(Error::MalformedRequest(
                "a field is repeated in another case".into(),
            ));
        }
        Ok(body)
    }

    /// The session token as the dialect's auth scheme carries it.
    pub fn presented_token(&self, req: &HttpRequest) -> Option<SecretToken> {
        match self.spec.auth.scheme {
            AuthScheme::Bearer => crate::authorization::bearer_token(req.header("authorization")?),
            AuthScheme::Cookie => {
                let raw = req.cookie(self.cookie_name.as_deref()?)?;
                let decoded = crate::token_pattern::percent_decode(raw)?;
                let token = match &self.token_pattern {
                    Some(pattern) => pattern.capture(&decoded)?.to_owned(),
                    None => decoded.into_owned(),
                };
                Some(SecretToken::new(token))
            }
        }
    }

    /// The route's CSRF check (the caller knows that it applies).
    fn check_csrf(&self, req: &HttpRequest, token: &SecretToken) -> Result<(), Error> {
        let Some(csrf) = self.spec.auth.csrf.as_ref() else {
            return Ok(());
        };
        let header = (self.csrf_header.as_deref())
            .and_then(|h| req.header(h))
            .unwrap_or_default();
        let ok = match csrf.style {
            CsrfStyle::DoubleSubmit => {
                let cookie = (self.csrf_cookie.as_deref())
                    .and_then(|c| req.cookie(c))
                    .unwrap_or_default();
                !header.is_empty()
                    && credgate_core::token::constant_time_eq(header.as_bytes(), cookie.as_bytes())
            }
            CsrfStyle::Session => {
                let decoded = percent_decode_str(header).decode_utf8_lossy();
                let value = match &self.csrf_pattern {
                    Some(pattern) => pattern.capture(&decoded).map(str::to_owned),
                    None => Some(decoded.into_owned()),
                };
                value.is_some_and(|v| {
                    let expected = csrf_value(token);
                    credgate_core::token::constant_time_eq(v.as_bytes(), expected.as_bytes())
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

/// The canonical command of the route, from its fields.
fn command(f: &mut Fields) -> Command {
    let route = f.route;
    let subject = subject(f);
    match route.spec.command {
        CommandKind::Login => {
            let username = f.username();
            let password = f.password("password");
            Command::IssueToken(TokenRequest {
                client: None,
                client_required: false,
                grant: match second_factor(f) {
                    Some(grant) => grant,
                    None => Grant::Password {
                        username: username.unwrap_or_default(),
                        password,
                    },
                },
                with_refresh: false,
            })
        }
        CommandKind::Token => Command::IssueToken(token_request(f)),
        CommandKind::ChangePassword => Command::ChangePassword(change_password(f, subject)),
        CommandKind::RequestReset => Command::RequestReset {
            username: f.username().unwrap_or_default(),
        },
        CommandKind::ValidateReset => Command::ValidateReset {
            username: f.username(),
            token: f.secret("token"),
        },
        CommandKind::ResetPassword => Command::ResetPassword {
            username: f.username(),
            token: f.secret("token"),
            new: f.password("new"),
            confirm: f.confirm(),
        },
        CommandKind::RequestResetCode => Command::RequestResetCode {
            username: f.username().unwrap_or_default(),
            answer: f.password("answer"),
        },
        CommandKind::ExchangeResetCode => Command::ExchangeResetCode {
            code: f.secret("code"),
        },
        CommandKind::RevokeToken => Command::RevokeToken {
            client: client_credentials(f),
            client_required: route.spec.client_auth == ClientAuth::Required,
            token: f.secret("token"),
        },
        CommandKind::Logout => Command::Logout,
        CommandKind::RenewSession => Command::RenewSession,
        CommandKind::ShowUser => Command::ShowUser { subject },
    }
}

/// The second step of a two-factor login, when the request carries a `verification_code`: the
/// code and the interim token of the first step (`interim`, a `Bearer ` prefix allowed).
fn second_factor(f: &mut Fields) -> Option<Grant> {
    let code = f.field("verification_code")?;
    let interim = f.field("interim").unwrap_or_default();
    let interim = match interim.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
        _ => interim.trim().to_owned(),
    };
    Some(Grant::SecondFactor {
        interim: SecretToken::new(interim),
        code: SecretToken::new(code),
    })
}

/// Who the request is about: the caller unless the route names someone else.
fn subject(f: &mut Fields) -> Subject {
    let route = f.route;
    let Some(spec) = &route.subject else {
        f.text("subject", None);
        return Subject::Caller;
    };
    let raw = f.text("subject", Some(&spec.sources));
    f.view.subject.clone_from(&raw);
    match raw {
        None => Subject::Caller,
        Some(v) if spec.me.as_deref() == Some(v.as_str()) => Subject::Caller,
        Some(v) if spec.by_id => Subject::Id(v),
        Some(v) => Subject::Username(v),
    }
}

fn token_request(f: &mut Fields) -> TokenRequest {
    let route = f.route;
    let grant_type = f.field("grant_type");
    let canonical = match (&grant_type, route.grants.is_empty()) {
        (None, true) => Some(GrantKind::Password),
        (Some(g), false) => route.grants.get(g).copied(),
        _ => None,
    };
    let client = client_credentials(f);
    let grant = match canonical {
        Some(GrantKind::Password) => {
            let (username, password) = (f.needed("username"), f.needed("password"));
            f.view.username.clone_from(&username);
            Grant::Password {
                username: username.unwrap_or_default(),
                password: Password::new(password.unwrap_or_default()),
            }
        }
        Some(GrantKind::ClientCredentials) => Grant::ClientCredentials,
        Some(GrantKind::RefreshToken) => match f.needed("refresh_token") {
            Some(t) => Grant::Refresh {
                refresh_token: SecretToken::new(t),
            },
            None => Grant::ClientCredentials,
        },
        None => {
            let reason = if grant_type.is_some() {
                FieldReason::Unsupported
            } else {
                FieldReason::Missing
            };
            f.problems.push(FieldProblem::new("grant_type", reason));
            Grant::ClientCredentials
        }
    };
    TokenRequest {
        client,
        client_required: route.spec.client_auth == ClientAuth::Required,
        grant,
        with_refresh: route.spec.refresh,
    }
}

/// The client's id and secret, where the route takes client credentials.
fn client_credentials(f: &mut Fields) -> Option<ClientCredentials> {
    let client_id = f.field("client_id");
    let client_secret = f.field("client_secret");
    match (f.route.spec.client_auth, client_id) {
        (ClientAuth::None, _) | (_, None) => None,
        (_, Some(id)) => Some(ClientCredentials {
            client_id: id,
            secret: Password::new(client_secret.unwrap_or_default()),
        }),
    }
}

fn change_password(f: &mut Fields, subject: Subject) -> ChangePassword {
    let route = f.route;
    let (current, new) = (f.password("current"), f.password("new"));
    let confirm = f.confirm();
    let named = f.view.subject.clone();
    if let (Some(check), Some(raw)) = (&route.subject_check, named) {
        if let Field::Text(given) = f.input.first(check) {
            if given != raw {
                f.problems
                    .push(FieldProblem::new("subject_check", FieldReason::Mismatch));
            }
        }
    }
    ChangePassword {
        subject,
        current,
        new,
        confirm,
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
