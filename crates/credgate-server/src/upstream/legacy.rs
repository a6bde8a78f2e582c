//! The core's [`LegacyDirectory`] over `migrate` upstreams, asked in configuration order.

use std::sync::Arc;

use async_trait::async_trait;
use credgate_core::{Error, LegacyAccount, LegacyDirectory, LegacyReset, LegacyVerdict, Password};
use credgate_dialect::outbound::{Operation, Reply, Values};
use credgate_dialect::spec::TokenRequirement;

use super::client::for_caller;
use super::UpstreamClient;

pub struct LegacyUpstreams {
    clients: Vec<Arc<UpstreamClient>>,
}

impl LegacyUpstreams {
    pub fn new(clients: Vec<Arc<UpstreamClient>>) -> Self {
        Self { clients }
    }
}

#[async_trait]
impl LegacyDirectory for LegacyUpstreams {
    async fn verify(&self, username: &str, password: &Password) -> Result<LegacyVerdict, Error> {
        for client in &self.clients {
            let values = Values {
                username: Some(username.to_owned()),
                password: Some(password.clone()),
                ..Values::default()
            };
            match client.call(Operation::Login, &values, None).await {
                Ok(reply) => {
                    let external = match reply {
                        Reply::Session(s) => s.user_ref,
                        Reply::Done => None,
                    };
                    return Ok(LegacyVerdict::Verified(LegacyAccount {
                        upstream: client.name.clone(),
                        alias: external.map(|id| (client.dialect.name.clone(), id)),
                    }));
                }
                // This upstream does not know the pair: the next one may.
                Err(Error::InvalidCredentials | Error::NotFound) => continue,
                // Locked out there, or down: never a "wrong password" here.
                Err(e) => {
                    let e = for_caller(&client.name, e);
                    tracing::warn!(upstream = %client.name, kind = e.kind(), "legacy verification failed");
                    return Err(Error::Unavailable);
                }
            }
        }
        Ok(LegacyVerdict::Refused)
    }

    async fn request_reset(&self, username: &str) -> Result<LegacyReset, Error> {
        for client in &self.clients {
            let Some(route) = client.dialect.outbound_route(Operation::RequestReset) else {
                continue;
            };
            let session = match route.spec.token {
                TokenRequirement::None => None,
                TokenRequirement::Client => {
                    match client
                        .call(Operation::ClientToken, &Values::default(), None)
                        .await
                    {
                        Ok(Reply::Session(s)) => Some(s),
                        _ => return Err(Error::Unavailable),
                    }
                }
                // A reset that needs the user's own session cannot serve a forgotten password.
                TokenRequirement::User => continue,
            };
            let values = Values {
                username: Some(username.to_owned()),
                ..Values::default()
            };
            match client
                .call(Operation::RequestReset, &values, session.as_ref())
                .await
            {
                Ok(_) => {
                    return Ok(LegacyReset::Forwarded {
                        upstream: client.name.clone(),
                    })
                }
                Err(Error::NotFound) => continue,
                Err(_) => return Err(Error::Unavailable),
            }
        }
        Ok(LegacyReset::Unsupported)
    }
}
