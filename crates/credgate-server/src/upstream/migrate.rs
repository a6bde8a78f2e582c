//! The core's [`UpstreamDirectory`] over `migrate` upstreams, asked in configuration order.

use std::sync::Arc;

use async_trait::async_trait;
use credgate_core::{
    Error, Password, UpstreamAccount, UpstreamDirectory, UpstreamReset, UpstreamVerdict,
};
use credgate_dialect::upstream::{Reply, UpstreamCommand, Values};

use super::client::for_caller;
use super::UpstreamClient;

pub struct MigrateUpstreams {
    clients: Vec<Arc<UpstreamClient>>,
}

impl MigrateUpstreams {
    pub fn new(clients: Vec<Arc<UpstreamClient>>) -> Self {
        Self { clients }
    }
}

#[async_trait]
impl UpstreamDirectory for MigrateUpstreams {
    async fn verify(&self, username: &str, password: &Password) -> Result<UpstreamVerdict, Error> {
        for client in &self.clients {
            let values = Values {
                username: Some(username.to_owned()),
                password: Some(password.clone()),
                ..Values::default()
            };
            match client.call(UpstreamCommand::Login, &values, None).await {
                Ok(reply) => {
                    let external = match reply {
                        Reply::Session(s) => s.user_ref,
                        Reply::Done => None,
                    };
                    return Ok(UpstreamVerdict::Verified(UpstreamAccount {
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
        Ok(UpstreamVerdict::Refused)
    }

    async fn request_reset(&self, username: &str) -> Result<UpstreamReset, Error> {
        for client in &self.clients {
            // A reset that needs the user's own session cannot serve a forgotten password.
            if !super::reset::offers(client, UpstreamCommand::RequestReset) {
                continue;
            }
            let session = super::reset::session_for(client, UpstreamCommand::RequestReset)
                .await
                .map_err(|_| Error::Unavailable)?;
            let values = Values {
                username: Some(username.to_owned()),
                ..Values::default()
            };
            match client
                .call(UpstreamCommand::RequestReset, &values, session.as_ref())
                .await
            {
                Ok(_) => {
                    return Ok(UpstreamReset::Forwarded {
                        upstream: client.name.clone(),
                    })
                }
                Err(Error::NotFound) => continue,
                Err(_) => return Err(Error::Unavailable),
            }
        }
        Ok(UpstreamReset::Unsupported)
    }
}
