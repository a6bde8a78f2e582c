//! Guessing limits: every secret a caller can guess (password, client secret, security answer,
//! reset token, one-time code) draws on budgets kept in the store, so every instance shares
//! them. An attempt takes its slot BEFORE the secret is checked (one atomic statement), so
//! concurrent guesses cannot outrun the count; a right guess gives its slot back. Reset requests
//! draw on budgets of their own (they are throttled, not refused).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::clock::Timestamp;
use crate::error::Error;
use crate::model::{AuditKind, RequestMeta};
use crate::service::CredentialService;
use crate::store::{AttemptAsk, SlotSettlement};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitConfig {
    /// Failures one user may have in a window, for passwords and for security answers
    /// (0: no per-user limit).
    pub user_failures: u32,
    /// Failed bcrypt checks (passwords, client secrets, security answers) one client address may
    /// have in a window (0: no per-address limit).
    pub address_failures: u32,
    pub window_secs: u64,
    /// Failed client-secret checks per client id in a window. Unknown client ids share ONE such
    /// budget, so they cannot queue bcrypt work without bound (0: no limit).
    pub client_failures: u32,
    /// Failed one-time-code guesses per client address, and failed reset-token guesses per user
    /// named, in a window (0: no limit). Reset-token guesses per address use `address_failures`.
    pub code_failures: u32,
    /// Reset requests per username (known or not) per `reset_window_secs`; past it the answer is
    /// the same but nothing is sent and the pending reset is kept (0: no throttle).
    pub reset_user_requests: u32,
    /// Reset requests per client address per `reset_window_secs` (0: no throttle).
    pub reset_address_requests: u32,
    pub reset_window_secs: u64,
    /// Proxies (CIDRs, e.g. "10.0.0.0/8") whose `Forwarded`/`X-Forwarded-For` headers name the
    /// client address. Empty: the headers are ignored and the peer address is the client's.
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            user_failures: 5,
            address_failures: 50,
            window_secs: 900,
            client_failures: 10,
            code_failures: 10,
            reset_user_requests: 1,
            reset_address_requests: 20,
            reset_window_secs: 120,
            trusted_proxies: Vec::new(),
        }
    }
}

impl LimitConfig {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

/// One budget an attempt draws on.
pub(crate) struct Budget {
    key: String,
    limit: u32,
    window: i64,
    /// For metrics and audit: `user`, `address`, `client`, `answer`, `code`, `reset_user`...
    scope: &'static str,
    /// A right guess clears this count (the user's own failures) instead of giving back one slot.
    forgive: bool,
}

/// The address a budget is keyed by: an IPv6 client by its /64 (one host usually holds the
/// whole prefix), an IPv4 client (or an IPv4-mapped IPv6 one) by its address.
pub fn address_key(addr: &str) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => addr.to_owned(),
    }
}

/// The budgets a kind of guess draws on.
pub(crate) struct Budgets(Vec<Budget>);

impl Budgets {
    fn of(
        config: &LimitConfig,
        meta: &RequestMeta,
        first: Option<Budget>,
        addr: (&str, u32, &'static str),
    ) -> Self {
        let address = meta.client_addr.as_deref().map(|a| Budget {
            key: format!("{}:{}", addr.0, address_key(a)),
            limit: addr.1,
            window: config.window_secs as i64,
            scope: addr.2,
            forgive: false,
        });
        Self(
            first
                .into_iter()
                .chain(address)
                .filter(|b| b.limit > 0)
                .collect(),
        )
    }

    fn named(
        config: &LimitConfig,
        key: String,
        limit: u32,
        scope: &'static str,
        forgive: bool,
    ) -> Budget {
        Budget {
            key,
            limit,
            window: config.window_secs as i64,
            scope,
            forgive,
        }
    }

    /// A check of a secret the user names themselves by (typed) username: per username under
    /// `prefix` (unknown names lock out exactly like known ones) and per address.
    fn per_user(
        config: &LimitConfig,
        prefix: &str,
        scope: &'static str,
        username: &str,
        meta: &RequestMeta,
    ) -> Self {
        let key = format!("{prefix}:{}", username.to_lowercase());
        let user = Self::named(config, key, config.user_failures, scope, true);
        Self::of(
            config,
            meta,
            Some(user),
            ("addr", config.address_failures, "address"),
        )
    }

    /// A password check: per typed username and per address.
    pub(crate) fn password(config: &LimitConfig, username: &str, meta: &RequestMeta) -> Self {
        Self::per_user(config, "user", "user", username, meta)
    }

    /// A client-secret check: per client id (every unknown id shares one budget) and per address.
    pub(crate) fn client(
        config: &LimitConfig,
        client_id: Option<&str>,
        meta: &RequestMeta,
    ) -> Self {
        let key = match client_id {
            Some(id) => format!("client:{id}"),
            None => "client-unknown".to_owned(),
        };
        let client = Self::named(config, key, config.client_failures, "client", true);
        Self::of(
            config,
            meta,
            Some(client),
            ("addr", config.address_failures, "address"),
        )
    }

    /// A security-answer check: per typed username and per address.
    pub(crate) fn answer(config: &LimitConfig, username: &str, meta: &RequestMeta) -> Self {
        Self::per_user(config, "answer", "answer", username, meta)
    }

    /// A one-time-code guess: a code names no user, so per address only (the small budget an
    /// 8-digit code needs).
    pub(crate) fn code(config: &LimitConfig, meta: &RequestMeta) -> Self {
        Self::of(
            config,
            meta,
            None,
            ("code-addr", config.code_failures, "code"),
        )
    }

    /// A second-factor guess (a delivered code or a TOTP): per user, whose challenge names it,
    /// and per address; a right one forgives the user's count.
    pub(crate) fn second_factor(config: &LimitConfig, user_id: &str, meta: &RequestMeta) -> Self {
        let user = Self::named(
            config,
            format!("second-factor:{user_id}"),
            config.code_failures,
            "second_factor",
            true,
        );
        Self::of(
            config,
            meta,
            Some(user),
            ("code-addr", config.code_failures, "code"),
        )
    }

    /// A reset-token guess: per user when the request names one, and per address (a reset
    /// token has 256 random bits: the address budget only bounds the work).
    pub(crate) fn reset_token(
        config: &LimitConfig,
        username: Option<&str>,
        meta: &RequestMeta,
    ) -> Self {
        let user = username.map(|u| {
            let key = format!("reset-user:{}", u.to_lowercase());
            Self::named(config, key, config.code_failures, "reset_token_user", true)
        });
        Self::of(
            config,
            meta,
            user,
            ("token-addr", config.address_failures, "reset_token_address"),
        )
    }

    /// A reset request: per typed username and per address, in the reset window.
    pub(crate) fn reset_request(config: &LimitConfig, username: &str, meta: &RequestMeta) -> Self {
        let window = config.reset_window_secs as i64;
        let user = Budget {
            key: format!("reset-request:{}", username.to_lowercase()),
            limit: config.reset_user_requests,
            window,
            scope: "reset_user",
            forgive: false,
        };
        let mut budgets = Self::of(
            config,
            meta,
            Some(user),
            ("reset-addr", config.reset_address_requests, "reset_address"),
        );
        for b in &mut budgets.0 {
            b.window = window;
        }
        budgets
    }
}

/// Slots an attempt holds: kept when the guess was wrong (they are its failure count), given
/// back by [`CredentialService::forgive`] when it was right.
#[must_use]
pub(crate) struct Held(Vec<(Budget, Timestamp)>);

impl Held {
    /// What becomes of the slots: every one given back (`forgive` false: no guess was
    /// checked), or, for a right guess, the user's own count forgotten and the others given
    /// back.
    pub(crate) fn settlements(&self, forgive: bool) -> Vec<SlotSettlement<'_>> {
        (self.0.iter())
            .map(|(budget, start)| {
                if forgive && budget.forgive {
                    SlotSettlement::Clear { key: &budget.key }
                } else {
                    SlotSettlement::Release {
                        key: &budget.key,
                        window_start: *start,
                        limit: budget.limit,
                    }
                }
            })
            .collect()
    }
}

/// The outcome of asking for slots.
pub(crate) enum Reserved {
    Held(Held),
    Refused { retry_after: u64 },
}

impl CredentialService {
    /// Takes one slot of every budget, or none (one store statement): when one refuses,
    /// nothing is kept and the refusal is audited and counted.
    pub(crate) async fn try_reserve(
        &self,
        budgets: Budgets,
        user_id: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Reserved, Error> {
        let now = self.clock.now();
        let asks: Vec<AttemptAsk<'_>> = (budgets.0.iter())
            .map(|b| AttemptAsk {
                key: &b.key,
                window: b.window,
                limit: b.limit,
            })
            .collect();
        let taken = self.store.reserve_attempts(&asks, now).await?;
        if taken.len() != budgets.0.len() {
            return Err(Error::Internal);
        }
        let refused = (budgets.0.iter().zip(&taken)).find(|(_, r)| !r.allowed);
        if let Some((budget, r)) = refused {
            let retry_after = (r.window_start + budget.window - now).max(1) as u64;
            let detail = json!({"counter": budget.scope, "retry_after": retry_after});
            self.store
                .append_audit(&[self.event(AuditKind::AttemptRefused, user_id, meta, detail)])
                .await?;
            if self.config.record_metrics {
                crate::telemetry::count_refusal(&meta.dialect, budget.scope);
            }
            return Ok(Reserved::Refused { retry_after });
        }
        let starts = taken.iter().map(|r| r.window_start);
        Ok(Reserved::Held(Held(
            budgets.0.into_iter().zip(starts).collect(),
        )))
    }

    /// [`Self::try_reserve`], a refusal being `RateLimited`.
    pub(crate) async fn reserve(
        &self,
        budgets: Budgets,
        user_id: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<Held, Error> {
        match self.try_reserve(budgets, user_id, meta).await? {
            Reserved::Held(held) => Ok(held),
            Reserved::Refused { retry_after } => Err(Error::RateLimited { retry_after }),
        }
    }

    /// No guess was checked after all (the legacy system could not answer): every slot back.
    pub(crate) async fn give_back(&self, held: Held) -> Result<(), Error> {
        Ok(self.store.settle_attempts(&held.settlements(false)).await?)
    }

    /// The guess was right: the user's (or client's) failures are forgiven, the address gets
    /// its slot back.
    pub(crate) async fn forgive(&self, held: Held) -> Result<(), Error> {
        Ok(self.store.settle_attempts(&held.settlements(true)).await?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            super::address_key("2001:db8:1:2:aaaa::1"),
            super::address_key("2001:db8:1:2:ffff::9")
        );
        assert_eq!(super::address_key("2001:db8:1:2::5"), "2001:db8:1:2::/64");
        assert_ne!(
            super::address_key("2001:db8:1:3::1"),
            super::address_key("2001:db8:1:2::1")
        );
        assert_eq!(super::address_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(super::address_key("192.0.2.7"), "192.0.2.7");
    }
}
