//! Sessions bound to their issuer, refresh-token families (RFC 9700) and revocation (RFC 7009).
//!
//! A token is accepted only by the dialect (or the native API) that issued it, with the
//! application key it was issued with. An access token and the refresh tokens rotated from it
//! form one session: logout ends it whole, and a replayed (spent) refresh token revokes it whole.

use serde_json::json;

use crate::command::{AppKey, ClientCredentials, Outcome};
use crate::error::Error;
use crate::model::{AuditKind, RequestMeta, TokenKind, TokenRecord, User};
use crate::secret::{Password, SecretToken};
use crate::service::CredentialService;
use crate::token;

/// Where a request comes from: the dialect (or `native`) and the application key it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issuer {
    pub(crate) dialect: String,
    pub(crate) app_digest: Option<String>,
}

impl Issuer {
    pub(crate) fn new(meta: &RequestMeta, app_key: Option<&AppKey>) -> Self {
        Self {
            dialect: meta.dialect.clone(),
            app_digest: app_key
                .and_then(|k| k.presented.as_ref())
                .map(|k| token::digest(k.expose())),
        }
    }

    /// Whether a token issued elsewhere may be used here: same dialect, same application key.
    pub(crate) fn admits(&self, token: &TokenRecord) -> bool {
        token.dialect == self.dialect && token.app_digest == self.app_digest
    }
}

/// The session a login asks for, beyond its user.
#[derive(Clone)]
pub(crate) struct SessionFor {
    pub(crate) client_id: Option<String>,
    pub(crate) with_refresh: bool,
}

impl SessionFor {
    pub(crate) fn grantee(self, user: User) -> Grantee {
        Grantee {
            kind: TokenKind::User,
            user: Some(user),
            client_id: self.client_id,
            with_refresh: self.with_refresh,
            session_id: None,
        }
    }
}

/// A password login: who, with what, and the session it asks for.
pub(crate) struct PasswordLogin<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a Password,
    pub(crate) session: SessionFor,
}

/// What a new token is issued for.
pub(crate) struct Grantee {
    pub(crate) kind: TokenKind,
    pub(crate) user: Option<User>,
    pub(crate) client_id: Option<String>,
    pub(crate) with_refresh: bool,
    /// The session it continues (a rotation or a renewal); `None` starts a new one.
    pub(crate) session_id: Option<String>,
}

impl CredentialService {
    /// A refresh grant: the presented refresh token is spent once and rotated within its
    /// session. A spent one presented again revokes the whole session (RFC 9700 section 4.14).
    pub(crate) async fn refresh(
        &self,
        refresh_token: &SecretToken,
        client_id: Option<String>,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<crate::command::IssuedToken, Error> {
        let digest = token::digest(refresh_token.expose());
        let now = self.clock.now();
        let record = self
            .store
            .find_token(&digest)
            .await?
            .filter(|r| r.kind == TokenKind::Refresh && r.expires_at > now)
            .ok_or(Error::InvalidCredentials)?;
        // Bound to the dialect, application key and client it was issued to.
        if !issuer.admits(&record) || record.client_id != client_id {
            return Err(Error::InvalidCredentials);
        }
        if record.spent_at.is_some() || !self.store.spend_refresh(&digest, now).await? {
            self.end_session(&record, "refresh_token_reused", meta)
                .await?;
            return Err(Error::InvalidCredentials);
        }
        let user_id = record.user_id.as_deref().ok_or(Error::InvalidCredentials)?;
        let user = self
            .store
            .find_user(crate::model::UserKey::Id(user_id))
            .await?
            .ok_or(Error::InvalidCredentials)?;
        let grantee = Grantee {
            kind: TokenKind::User,
            user: Some(user),
            client_id,
            with_refresh: true,
            session_id: Some(record.session_id.clone()),
        };
        let issued = self.issue(grantee, issuer, meta, vec![]).await?;
        // A replay racing this rotation revokes the session by deleting every token of it, the
        // spent one included. Had that delete run before the new tokens were written, they
        // would outlive their family: the spent token's absence tells, and ends them too.
        if self.store.find_token(&digest).await?.is_none() {
            self.end_session(&record, "refresh_token_reused", meta)
                .await?;
            return Err(Error::InvalidCredentials);
        }
        Ok(issued)
    }

    /// Revokes every token of `token`'s session (access and refresh tokens), with an audit
    /// record giving `reason`.
    pub(crate) async fn end_session(
        &self,
        token: &TokenRecord,
        reason: &str,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let detail = json!({"reason": reason, "kind": token.kind.as_str()});
        let audit = self.event(
            AuditKind::SessionsRevoked,
            token.user_id.as_deref(),
            meta,
            detail,
        );
        self.store
            .revoke_session(&token.session_id, &[audit])
            .await?;
        let session = token.session_id.clone();
        let _ = self
            .tokens
            .invalidate_entries_if(move |_, p| p.token.session_id == session);
        self.tokens.invalidate(&token.digest).await;
        Ok(())
    }

    /// RFC 7009 token revocation. Unknown tokens, tokens of another issuer and tokens of another
    /// client are answered the same way (success) and left alone; a refresh token ends its
    /// whole session, an access token only itself.
    pub(crate) async fn revoke_token(
        &self,
        client: Option<ClientCredentials>,
        client_required: bool,
        presented: &SecretToken,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let client_id = match client {
            Some(creds) => Some(self.authenticate_client(creds, meta).await?),
            None if client_required => return Err(Error::InvalidClient),
            None => None,
        };
        if presented.is_empty() {
            return Ok(Outcome::TokenRevoked);
        }
        let digest = token::digest(presented.expose());
        let Some(record) = self.store.find_token(&digest).await? else {
            return Ok(Outcome::TokenRevoked);
        };
        if !issuer.admits(&record) || record.client_id != client_id {
            return Ok(Outcome::TokenRevoked);
        }
        match record.kind {
            TokenKind::Refresh => self.end_session(&record, "revoked", meta).await?,
            TokenKind::User | TokenKind::Client => {
                self.revoke(&record, meta).await?;
            }
        }
        Ok(Outcome::TokenRevoked)
    }

    /// Removes the tokens and the upstream-backed sessions that have expired; how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64, Error> {
        let now = self.clock.now();
        let tokens = self.store.purge_expired_tokens(now).await?;
        let upstream = self.store.purge_expired_upstream_sessions(now).await?;
        Ok(tokens + upstream)
    }
}
