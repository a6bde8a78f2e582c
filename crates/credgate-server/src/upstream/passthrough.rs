//! Passthrough: the requests of a client dialect bound to an upstream (`inbound = ["crayon"]`)
//! are translated into the upstream's dialect and its answers back; credgate keeps no password.
//! A login opens a session on the upstream and hands the client a token of this gateway that
//! stands for it (in memory, for the token lifetime); client credentials and app keys of the
//! client dialect stay this gateway's own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use credgate_core::{
    token, Access, ChangePassword, Command, CredentialService, Error, FieldReason, Grant,
    IssuedToken, Outcome, Password, Request, Subject, TokenKind, TokenRequest, User,
};
use credgate_dialect::upstream::{Reply, Session, UpstreamCommand, Values};

use super::client::for_caller;
use super::UpstreamClient;

/// A session on the upstream, as a client token of this gateway stands for it.
struct Held {
    session: Session,
    username: String,
    client_id: Option<String>,
    /// The client dialect that logged in: the session is accepted there only.
    inbound: String,
}

impl Held {
    /// The user as the client dialect renders it: known by the upstream's id.
    fn user(&self, now: i64) -> User {
        User {
            id: self
                .session
                .user_ref
                .clone()
                .unwrap_or_else(|| self.username.clone()),
            username: self.username.clone(),
            admin: false,
            externally_managed: false,
            aliases: BTreeMap::new(),
            profile: BTreeMap::new(),
            created_at: now,
        }
    }

    /// Whether a request's subject is this session's user. Without the upstream's id for it
    /// (its login answer names none), an id cannot be checked here: the upstream, which
    /// authorizes the call, decides.
    fn is(&self, subject: &Subject) -> bool {
        match (subject, &self.session.user_ref) {
            (Subject::Caller, _) | (Subject::Id(_), None) => true,
            (Subject::Id(id), Some(own)) => own == id || id == &self.username,
            (Subject::Username(name), _) => name.eq_ignore_ascii_case(&self.username),
        }
    }
}

pub struct Passthrough {
    by_inbound: BTreeMap<String, Arc<UpstreamClient>>,
    sessions: moka::future::Cache<String, Arc<Held>>,
    ttl: Duration,
}

impl Passthrough {
    pub fn new(bindings: Vec<(Vec<String>, Arc<UpstreamClient>)>, ttl: Duration) -> Self {
        let mut by_inbound = BTreeMap::new();
        for (inbound, client) in bindings {
            for d in inbound {
                by_inbound.insert(d, Arc::clone(&client));
            }
        }
        Self {
            by_inbound,
            sessions: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ttl)
                .build(),
            ttl,
        }
    }

    pub fn serves(&self, dialect: &str) -> bool {
        self.by_inbound.contains_key(dialect)
    }

    /// Runs a request of the client dialect `inbound` against its upstream. Commands that are
    /// not about a user's password (client-credentials grants, say) stay local.
    pub async fn execute(
        &self,
        core: &CredentialService,
        inbound: &str,
        request: Request,
    ) -> Result<Outcome, Error> {
        let upstream = self.by_inbound.get(inbound).ok_or(Error::Internal)?;
        let Request {
            meta,
            app_key,
            access,
            command,
        } = request;
        if let Some(key) = app_key {
            core.check_app_key(key).await?;
        }
        match command {
            Command::IssueToken(TokenRequest {
                client,
                client_required,
                grant: Grant::Password { username, password },
                ..
            }) => {
                let client_id = match client {
                    Some(c) => Some(core.authenticate_client(c, &meta).await?),
                    None if client_required => return Err(Error::InvalidClient),
                    None => None,
                };
                // Guesses through the upstream draw on the same budgets as local ones.
                let attempt = core.reserve_password(&username, &meta).await?;
                let held = login(upstream, username, password, client_id, inbound).await;
                let outcome = held.as_ref().map(|_| ()).map_err(Clone::clone);
                core.settle_password(attempt, &outcome).await?;
                let held = held?;
                tracing::info!(upstream = %upstream.name, dialect = %inbound, "passthrough login");
                Ok(self.issue(Arc::new(held), core.now()).await)
            }
            Command::ChangePassword(change) => {
                let held = self.held(&access, inbound).await?;
                change_password(upstream, &held, change).await?;
                tracing::info!(upstream = %upstream.name, dialect = %inbound, "passthrough password change");
                Ok(Outcome::PasswordChanged {
                    user: held.user(core.now()),
                })
            }
            Command::ShowUser { subject } => {
                let held = self.held(&access, inbound).await?;
                if !held.is(&subject) {
                    return Err(Error::Forbidden);
                }
                Ok(Outcome::User {
                    user: held.user(core.now()),
                })
            }
            Command::Logout => {
                self.held(&access, inbound).await?;
                let digest = self.digest(&access).ok_or(Error::Unauthenticated)?;
                self.sessions
                    .remove(&digest)
                    .await
                    .ok_or(Error::Unauthenticated)?;
                Ok(Outcome::LoggedOut)
            }
            Command::RenewSession => {
                self.held(&access, inbound).await?;
                let digest = self.digest(&access).ok_or(Error::Unauthenticated)?;
                let held = self
                    .sessions
                    .remove(&digest)
                    .await
                    .ok_or(Error::Unauthenticated)?;
                Ok(self.issue(held, core.now()).await)
            }
            other => {
                core.execute(Request {
                    meta,
                    app_key: None,
                    access,
                    command: other,
                })
                .await
            }
        }
    }

    fn digest(&self, access: &Access) -> Option<String> {
        match access {
            Access::Token {
                token: Some(t),
                kind: TokenKind::User,
            } if !t.is_empty() => Some(token::digest(t.expose())),
            _ => None,
        }
    }

    /// A fresh access token for a held upstream session (login and renewal alike).
    async fn issue(&self, held: Arc<Held>, now: i64) -> Outcome {
        let access = token::generate();
        let (user, client_id) = (held.user(now), held.client_id.clone());
        self.sessions
            .insert(token::digest(access.expose()), held)
            .await;
        Outcome::Token(IssuedToken {
            access,
            kind: TokenKind::User,
            issued_at: now,
            expires_at: now + self.ttl.as_secs() as i64,
            refresh: None,
            user: Some(user),
            client_id,
        })
    }

    /// The held session `access` names, if it was opened through the client dialect `inbound`.
    async fn held(&self, access: &Access, inbound: &str) -> Result<Arc<Held>, Error> {
        let digest = self.digest(access).ok_or(Error::Unauthenticated)?;
        self.sessions
            .get(&digest)
            .await
            .filter(|held| held.inbound == inbound)
            .ok_or(Error::Unauthenticated)
    }
}

/// Logs in at the upstream; the session it hands back is held for the client.
async fn login(
    upstream: &UpstreamClient,
    username: String,
    password: Password,
    client_id: Option<String>,
    inbound: &str,
) -> Result<Held, Error> {
    let values = Values {
        username: Some(username.clone()),
        password: Some(password),
        ..Values::default()
    };
    let session = match upstream.call(UpstreamCommand::Login, &values, None).await {
        Ok(Reply::Session(s)) => s,
        Ok(Reply::Done) => Session::default(),
        Err(e) => return Err(for_caller(&upstream.name, e)),
    };
    Ok(Held {
        session,
        username,
        client_id,
        inbound: inbound.to_owned(),
    })
}

/// Changes the held user's password at the upstream.
async fn change_password(
    upstream: &UpstreamClient,
    held: &Held,
    change: ChangePassword,
) -> Result<(), Error> {
    if !held.is(&change.subject) {
        return Err(Error::Forbidden);
    }
    if change.current.is_empty() {
        return Err(Error::invalid("current", FieldReason::Invalid));
    }
    if change.confirm.as_ref().is_some_and(|c| c != &change.new) {
        return Err(Error::invalid("confirm", FieldReason::Mismatch));
    }
    // An upstream that names the user by id only (Crayon's path) gets the client's id when its
    // login did not say which id the user has.
    let by_id_only = (upstream
        .dialect
        .upstream_route(UpstreamCommand::ChangePassword))
    .and_then(|r| r.subject.as_ref())
    .is_some_and(|s| s.by_id && s.me.is_none());
    let client_id = match &change.subject {
        Subject::Id(id) if by_id_only => Some(id.clone()),
        _ => None,
    };
    let values = Values {
        username: Some(held.username.clone()),
        current: Some(change.current),
        new: Some(change.new),
        subject_ref: held.session.user_ref.clone().or(client_id),
        ..Values::default()
    };
    upstream
        .call(
            UpstreamCommand::ChangePassword,
            &values,
            Some(&held.session),
        )
        .await
        .map_err(|e| for_caller(&upstream.name, e))?;
    Ok(())
}
