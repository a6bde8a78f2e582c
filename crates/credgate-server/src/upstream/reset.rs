//! Reset steps at an upstream (`passthrough` and `shadow`; `migrate` forwards reset requests
//! too): the dialect's reset routes spoken as a client. A route that needs a client token gets
//! one from the upstream's client-credentials grant (the `auth` settings); a route that needs
//! the user's own session cannot serve a forgotten password and is not offered.

use credgate_core::upstream_reset::{ResetStep, UpstreamResetRequest};
use credgate_core::Error;
use credgate_dialect::spec::TokenRequirement;
use credgate_dialect::upstream::{Reply, Session, UpstreamCommand, Values};

use super::client::for_caller;
use super::UpstreamClient;

/// The upstream operation of a reset step.
fn operation(step: ResetStep) -> UpstreamCommand {
    match step {
        ResetStep::Request => UpstreamCommand::RequestReset,
        ResetStep::Validate => UpstreamCommand::ValidateReset,
        ResetStep::Complete => UpstreamCommand::ResetPassword,
    }
}

/// Whether the upstream's dialect has a route for `op` callable without a user's session.
pub(super) fn offers(upstream: &UpstreamClient, op: UpstreamCommand) -> bool {
    upstream
        .dialect
        .upstream_route(op)
        .is_some_and(|r| r.spec.token != TokenRequirement::User)
}

/// Whether the upstream runs reset step `step`.
pub(super) fn offers_step(upstream: &UpstreamClient, step: ResetStep) -> bool {
    offers(upstream, operation(step))
}

/// What a route `offers` accepts needs presented: nothing, or a client token.
pub(super) async fn session_for(
    upstream: &UpstreamClient,
    op: UpstreamCommand,
) -> Result<Option<Session>, Error> {
    let needs = upstream.dialect.upstream_route(op).map(|r| r.spec.token);
    match needs {
        Some(TokenRequirement::Client) => {
            match upstream
                .call(UpstreamCommand::ClientToken, &Values::default(), None)
                .await
            {
                Ok(Reply::Session(s)) => Ok(Some(s)),
                Ok(Reply::Done) => Err(Error::Unavailable),
                Err(e) => Err(for_caller(&upstream.name, e)),
            }
        }
        _ => Ok(None),
    }
}

/// Runs one reset step at the upstream.
pub(super) async fn reset_at(
    upstream: &UpstreamClient,
    request: &UpstreamResetRequest<'_>,
) -> Result<(), Error> {
    let op = operation(request.step);
    if !offers(upstream, op) {
        return Err(Error::Internal);
    }
    let session = session_for(upstream, op).await?;
    let values = Values {
        username: request.username.map(str::to_owned),
        new: request.new.cloned(),
        reset_token: request.token.cloned(),
        ..Values::default()
    };
    upstream
        .call(op, &values, session.as_ref())
        .await
        .map(|_| ())
        .map_err(|e| for_caller(&upstream.name, e))
}
