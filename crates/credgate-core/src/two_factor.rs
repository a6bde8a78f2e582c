//! Two-factor login (Et-App's documented step, owned here so any dialect can expose it): a
//! right password of an enrolled user yields an interim token instead of a session; the login
//! repeated with that token and a code yields the session. The code is delivered through the
//! notifier (single use, short-lived) or computed by an authenticator app (RFC 6238, a step
//! accepted once). Every guess draws on the second-factor budgets.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use crate::command::{IssuedToken, Outcome};
use crate::error::{Error, FieldReason};
use crate::limits::Budgets;
use crate::model::{AuditKind, RequestMeta, ResetKind, User, UserKey};
use crate::notify::ResetNotice;
use crate::secret::SecretToken;
use crate::service::CredentialService;
use crate::session::{Issuer, SessionFor};
use crate::two_factor_model::{LoginChallenge, TwoFactor, TwoFactorMethod};
use crate::{token, totp};

/// How long a login challenge (its interim token and delivered code) lives.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Digits in a delivered login code.
const CODE_DIGITS: usize = 6;

/// What an admin enrolls a user in; a TOTP secret is generated here and shown once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorChoice {
    Off,
    Code,
    Totp,
}

/// The outcome of an enrollment: for TOTP, the secret and the `otpauth://` URI to show the user.
#[derive(Debug)]
pub struct Enrollment {
    pub method: Option<TwoFactorMethod>,
    pub totp_secret: Option<SecretToken>,
    pub otpauth_uri: Option<SecretToken>,
}

impl CredentialService {
    /// Sets a user's two-factor method (`Off` removes it); pending challenges end.
    pub async fn set_two_factor(
        &self,
        user_id: &str,
        choice: TwoFactorChoice,
        meta: &RequestMeta,
    ) -> Result<Enrollment, Error> {
        let user = (self.store.find_user(UserKey::Id(user_id)).await?).ok_or(Error::NotFound)?;
        let (setting, secret) = match choice {
            TwoFactorChoice::Off => (None, None),
            TwoFactorChoice::Code => (Some((TwoFactorMethod::Code, None)), None),
            TwoFactorChoice::Totp => {
                let mut bytes = [0u8; totp::SECRET_BYTES];
                rand::rngs::OsRng.fill(&mut bytes);
                let secret = SecretToken::new(totp::base32_encode(&bytes));
                (
                    Some((TwoFactorMethod::Totp, Some(secret.clone()))),
                    Some(secret),
                )
            }
        };
        let method = setting.as_ref().map(|(m, _)| *m);
        let detail = json!({"method": method.map_or("off", TwoFactorMethod::as_str)});
        let audit = self.event(AuditKind::TwoFactorSet, Some(&user.id), meta, detail);
        let stored = setting.map(|(method, totp_secret)| TwoFactor {
            method,
            totp_secret,
            last_step: None,
        });
        self.store
            .set_two_factor(&user.id, stored.as_ref(), &audit)
            .await?;
        let otpauth_uri = secret.as_ref().map(|s| {
            SecretToken::new(format!(
                "otpauth://totp/credgate:{name}?secret={secret}&issuer=credgate&algorithm=SHA1&digits={digits}&period={period}",
                name = uri_escape(&user.username),
                secret = s.expose(),
                digits = totp::DIGITS,
                period = totp::STEP_SECS,
            ))
        });
        Ok(Enrollment {
            method,
            totp_secret: secret,
            otpauth_uri,
        })
    }

    /// The first step for an enrolled user whose password was right: a challenge bound to the
    /// issuer (and client), its code delivered when the method is `Code`.
    pub(crate) async fn start_challenge(
        &self,
        user: &User,
        setting: &TwoFactor,
        client_id: Option<String>,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<Outcome, Error> {
        let now = self.clock.now();
        let interim = token::generate();
        let code = (setting.method == TwoFactorMethod::Code).then(|| {
            let n = rand::rngs::OsRng.gen_range(0..10u64.pow(CODE_DIGITS as u32));
            SecretToken::new(format!("{n:0CODE_DIGITS$}"))
        });
        let key = &self.config.digest_key;
        let challenge = LoginChallenge {
            digest: key.digest(interim.expose()),
            user_id: user.id.clone(),
            code_digest: code.as_ref().map(|c| key.digest(c.expose())),
            dialect: issuer.dialect.clone(),
            app_digest: issuer.app_digest.clone(),
            client_id,
            created_at: now,
            expires_at: now + CHALLENGE_TTL.as_secs() as i64,
        };
        let detail = json!({"method": setting.method.as_str()});
        let audit = self.event(
            AuditKind::SecondFactorRequested,
            Some(&user.id),
            meta,
            detail,
        );
        self.store.insert_challenge(&challenge, &[audit]).await?;
        if let Some(code) = code {
            self.deliver_login_code(user, code, challenge.expires_at, meta);
        }
        Ok(Outcome::SecondFactorRequired {
            interim,
            method: setting.method,
        })
    }

    /// The second step: a live challenge of this issuer and client, and a right code, once.
    pub(crate) async fn finish_challenge(
        &self,
        interim: &SecretToken,
        code: &SecretToken,
        client_id: Option<String>,
        issuer: &Issuer,
        meta: &RequestMeta,
    ) -> Result<IssuedToken, Error> {
        if code.is_empty() {
            return Err(Error::invalid("verification_code", FieldReason::Missing));
        }
        let now = self.clock.now();
        let digest = self.config.digest_key.digest(interim.expose());
        let challenge = (self.store.find_challenge(&digest).await?)
            .filter(|c| c.expires_at > now)
            .filter(|c| c.dialect == issuer.dialect && c.app_digest == issuer.app_digest)
            .filter(|c| c.client_id == client_id)
            .ok_or(Error::InvalidCredentials)?;
        let budgets = Budgets::second_factor(&self.config.limits, &challenge.user_id, meta);
        let held = self
            .reserve(budgets, Some(challenge.user_id.as_str()), meta)
            .await?;
        let verdict = self.check_second_factor(&challenge, code, now).await?;
        if let Err(reason) = verdict {
            let detail = json!({"reason": reason});
            let audit = self.event(
                AuditKind::SecondFactorFailed,
                Some(challenge.user_id.as_str()),
                meta,
                detail,
            );
            self.store.append_audit(&[audit]).await?;
            return Err(Error::InvalidCredentials);
        }
        // Single use, also under concurrent use of the same interim token.
        if !self.store.take_challenge(&digest).await? {
            return Err(Error::InvalidCredentials);
        }
        self.forgive(held).await?;
        let user = (self
            .store
            .find_user(UserKey::Id(&challenge.user_id))
            .await?)
            .ok_or(Error::InvalidCredentials)?;
        let audit = vec![self.event(
            AuditKind::LoginSucceeded,
            Some(&user.id),
            meta,
            json!({"second_factor": true}),
        )];
        let session = SessionFor {
            client_id,
            with_refresh: false,
        };
        self.issue(session.grantee(user), issuer, meta, audit).await
    }

    /// `Ok(Ok(()))` when `code` is right for the challenge; otherwise the audited reason.
    async fn check_second_factor(
        &self,
        challenge: &LoginChallenge,
        code: &SecretToken,
        now: i64,
    ) -> Result<Result<(), &'static str>, Error> {
        let setting =
            (self.store.two_factor(&challenge.user_id).await?).ok_or(Error::InvalidCredentials)?;
        match setting.method {
            TwoFactorMethod::Code => {
                let presented = self.config.digest_key.digest(code.expose().trim());
                let right = challenge
                    .code_digest
                    .as_ref()
                    .is_some_and(|d| token::constant_time_eq(d.as_bytes(), presented.as_bytes()));
                Ok(if right { Ok(()) } else { Err("wrong_code") })
            }
            TwoFactorMethod::Totp => {
                let secret = (setting.totp_secret.as_ref())
                    .and_then(|s| totp::base32_decode(s.expose()))
                    .ok_or(Error::Internal)?;
                let Some(step) = totp::matching_step(&secret, code.expose(), now) else {
                    return Ok(Err("wrong_code"));
                };
                // A code (or an older one) already accepted is a replay.
                if !self.store.claim_totp_step(&challenge.user_id, step).await? {
                    return Ok(Err("totp_replayed"));
                }
                Ok(Ok(()))
            }
        }
    }

    /// Hands a login code to the notifier, off the request path; a failure is audited.
    fn deliver_login_code(
        &self,
        user: &User,
        code: SecretToken,
        expires_at: i64,
        meta: &RequestMeta,
    ) {
        let notice = ResetNotice {
            user_id: user.id.clone(),
            username: user.username.clone(),
            kind: ResetKind::Code,
            secret: code,
            expires_at,
            profile: user.profile.clone(),
            login: true,
        };
        let (notifier, store) = (Arc::clone(&self.notifier), Arc::clone(&self.store));
        let mut failure = self.event(
            AuditKind::ResetDeliveryFailed,
            Some(&user.id),
            meta,
            json!({}),
        );
        tokio::spawn(async move {
            if let Err(why) = notifier.deliver(&notice).await {
                tracing::warn!(user_id = %notice.user_id, %why, "login code delivery failed");
                failure.detail = json!({"kind": "login_code", "reason": why});
                if let Err(e) = store.append_audit(&[failure]).await {
                    tracing::error!(error = %e, "could not audit a failed login code delivery");
                }
            }
        });
    }
}

/// Percent-escapes a label for an `otpauth://` URI.
fn uri_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
