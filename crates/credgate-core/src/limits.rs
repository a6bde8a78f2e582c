//! Guessing limits: failed password checks are counted per user and per client address in the
//! store (so every instance shares them); past a threshold the check is refused before bcrypt.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::error::Error;
use crate::model::{AuditKind, RequestMeta};
use crate::service::CredentialService;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// Failures one user may have in a window (0: no per-user limit).
    pub user_failures: u32,
    /// Failures one client address may have in a window (0: no per-address limit).
    pub address_failures: u32,
    pub window_secs: u64,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            user_failures: 5,
            address_failures: 50,
            window_secs: 900,
        }
    }
}

impl LimitConfig {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

/// The counters one password check touches.
pub(crate) struct Keys {
    user: String,
    address: Option<String>,
}

impl Keys {
    /// Keyed by the name typed, so unknown users lock out exactly like known ones.
    pub(crate) fn new(username: &str, meta: &RequestMeta) -> Self {
        Self {
            user: format!("user:{}", username.to_lowercase()),
            address: meta.client_addr.as_ref().map(|a| format!("addr:{a}")),
        }
    }
}

impl CredentialService {
    /// The counters in force for `keys`: (key, limit, which), leaving out disabled ones.
    fn counters<'k>(&self, keys: &'k Keys) -> impl Iterator<Item = (&'k str, u32, &'static str)> {
        let l = &self.config.limits;
        [
            (Some(keys.user.as_str()), l.user_failures, "user"),
            (keys.address.as_deref(), l.address_failures, "address"),
        ]
        .into_iter()
        .filter_map(|(key, limit, which)| key.filter(|_| limit > 0).map(|k| (k, limit, which)))
    }

    /// Refuses, without running bcrypt, when either counter is at its limit.
    pub(crate) async fn check_attempts(
        &self,
        keys: &Keys,
        user_id: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), Error> {
        let (now, window) = (self.clock.now(), self.config.limits.window_secs as i64);
        for (key, limit, which) in self.counters(keys) {
            let (count, start) = self.store.failures(key, now, window).await?;
            if count >= limit {
                let retry_after = (start + window - now).max(1) as u64;
                let detail = json!({"counter": which, "retry_after": retry_after});
                self.store
                    .append_audit(&[self.event(AuditKind::AttemptRefused, user_id, meta, detail)])
                    .await?;
                if self.config.record_metrics {
                    crate::telemetry::count_refusal(&meta.dialect, which);
                }
                return Err(Error::RateLimited { retry_after });
            }
        }
        Ok(())
    }

    pub(crate) async fn count_failure(&self, keys: &Keys) -> Result<(), Error> {
        let (now, window) = (self.clock.now(), self.config.limits.window_secs as i64);
        for (key, _, _) in self.counters(keys) {
            self.store.record_failure(key, now, window).await?;
        }
        Ok(())
    }

    /// A success forgives the user's failures (not the address's).
    pub(crate) async fn clear_user_failures(&self, keys: &Keys) -> Result<(), Error> {
        if self.config.limits.user_failures > 0 {
            self.store.clear_failures(&keys.user).await?;
        }
        Ok(())
    }
}
