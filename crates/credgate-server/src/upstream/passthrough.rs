//! Passthrough: the requests of a client dialect bound to an upstream (`inbound = ["crayon"]`)
//! are answered by the upstream, through the core (limits, audit, metrics, sessions: see
//! `credgate_core::passthrough`). This is the core's [`UpstreamAuthority`] port, spoken with
//! the upstream's dialect as a client; credgate keeps no password and no upstream session.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use credgate_core::passthrough::{BindingMode, UpstreamBinding};
use credgate_core::upstream_reset::{ResetStep, UpstreamResetRequest};
use credgate_core::{Error, Password, UpstreamAuthority, UpstreamChange, UpstreamLogin};
use credgate_dialect::upstream::{Reply, Session, UpstreamCommand, Values};

use super::client::for_caller;
use super::UpstreamClient;

/// The upstreams answering for client dialects (`passthrough` and `shadow`), by client dialect.
pub struct Passthrough {
    by_inbound: BTreeMap<String, (Arc<UpstreamClient>, BindingMode)>,
}

impl Passthrough {
    pub fn new(bindings: Vec<(Vec<String>, Arc<UpstreamClient>, BindingMode)>) -> Self {
        let mut by_inbound = BTreeMap::new();
        for (inbound, client, mode) in bindings {
            for d in inbound {
                by_inbound.insert(d, (Arc::clone(&client), mode));
            }
        }
        Self { by_inbound }
    }

    fn client(&self, dialect: &str) -> Result<&UpstreamClient, Error> {
        self.by_inbound
            .get(dialect)
            .map(|(c, _)| c.as_ref())
            .ok_or(Error::Internal)
    }
}

/// Logs in at the upstream; the session it hands back.
pub(super) async fn open_session(
    upstream: &UpstreamClient,
    username: &str,
    password: &Password,
) -> Result<Session, Error> {
    let values = Values {
        username: Some(username.to_owned()),
        password: Some(password.clone()),
        ..Values::default()
    };
    match upstream.call(UpstreamCommand::Login, &values, None).await {
        Ok(Reply::Session(s)) => Ok(s),
        Ok(Reply::Done) => Ok(Session::default()),
        Err(e) => Err(for_caller(&upstream.name, e)),
    }
}

/// Changes a password at the upstream in a session opened with the current password for this
/// call only (nothing of it outlives the call).
pub(super) async fn change_at(
    upstream: &UpstreamClient,
    change: &UpstreamChange<'_>,
) -> Result<(), Error> {
    let session = open_session(upstream, change.username, change.current).await?;
    // An upstream that names the user by id only (Crayon's path) gets the client's id when its
    // login did not say which id the user has.
    let by_id_only = (upstream
        .dialect
        .upstream_route(UpstreamCommand::ChangePassword))
    .and_then(|r| r.subject.as_ref())
    .is_some_and(|s| s.by_id && s.me.is_none());
    let client_id = change.subject_id.filter(|_| by_id_only).map(str::to_owned);
    let values = Values {
        username: Some(change.username.to_owned()),
        current: Some(change.current.clone()),
        new: Some(change.new.clone()),
        subject_ref: session
            .user_ref
            .clone()
            .or_else(|| change.user_ref.map(str::to_owned))
            .or(client_id),
        ..Values::default()
    };
    upstream
        .call(UpstreamCommand::ChangePassword, &values, Some(&session))
        .await
        .map_err(|e| for_caller(&upstream.name, e))?;
    Ok(())
}

#[async_trait]
impl UpstreamAuthority for Passthrough {
    fn upstream_for(&self, dialect: &str) -> Option<UpstreamBinding> {
        self.by_inbound
            .get(dialect)
            .map(|(c, mode)| UpstreamBinding {
                upstream: c.name.clone(),
                mode: *mode,
            })
    }

    async fn login(
        &self,
        dialect: &str,
        username: &str,
        password: &Password,
    ) -> Result<UpstreamLogin, Error> {
        let client = self.client(dialect)?;
        let session = open_session(client, username, password).await?;
        Ok(UpstreamLogin {
            user_ref: session.user_ref.clone(),
            dialect: client.dialect.name.clone(),
        })
    }

    async fn change_password(
        &self,
        dialect: &str,
        change: &UpstreamChange<'_>,
    ) -> Result<(), Error> {
        change_at(self.client(dialect)?, change).await
    }

    fn offers_reset(&self, dialect: &str, step: ResetStep) -> bool {
        self.client(dialect)
            .is_ok_and(|c| super::reset::offers_step(c, step))
    }

    async fn reset(&self, dialect: &str, request: &UpstreamResetRequest<'_>) -> Result<(), Error> {
        super::reset::reset_at(self.client(dialect)?, request).await
    }
}
