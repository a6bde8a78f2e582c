//! Token lifetimes per dialect: each vendor documents how long its sessions live (Et-App 24 h,
//! Akana 30 minutes), so a token issued through a dialect lives that long. A dialect that
//! declares none, and the native API, get the core's `user_token_ttl` / `client_token_ttl`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use crate::model::TokenKind;
use crate::service::{CoreConfig, CredentialService};

/// How long the tokens one dialect issues live; `None` falls back to the core's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// User sessions (logins, password and refresh grants, renewals).
    pub user: Option<Duration>,
    /// Client-credentials tokens.
    pub client: Option<Duration>,
}

/// The lifetimes of the dialects served now, by dialect name; replaced whole on a reload.
#[derive(Debug, Default)]
pub(crate) struct Lifetimes(RwLock<HashMap<String, TokenLifetimes>>);

impl Lifetimes {
    /// The lifetime of a `kind` token issued by `dialect`.
    pub(crate) fn of(&self, config: &CoreConfig, dialect: &str, kind: TokenKind) -> Duration {
        let declared = match self.0.read() {
            Ok(map) => map.get(dialect).copied().unwrap_or_default(),
            Err(_) => TokenLifetimes::default(),
        };
        match kind {
            TokenKind::Client => declared.client.unwrap_or(config.client_token_ttl),
            _ => declared.user.unwrap_or(config.user_token_ttl),
        }
    }
}

impl CredentialService {
    /// Sets the lifetimes of every dialect served from now on (at start-up and on each reload);
    /// a dialect not named falls back to the core's settings. Tokens already issued keep theirs.
    pub fn set_token_lifetimes(&self, by_dialect: HashMap<String, TokenLifetimes>) {
        if let Ok(mut map) = self.lifetimes.0.write() {
            *map = by_dialect;
        }
    }

    /// The lifetime a `kind` token issued by `dialect` gets now.
    pub fn token_lifetime(&self, dialect: &str, kind: TokenKind) -> Duration {
        self.lifetimes.of(&self.config, dialect, kind)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn declared_lifetimes_win_and_the_settings_fill_in() {
        let config = CoreConfig {
            user_token_ttl: Duration::from_secs(3600),
            client_token_ttl: Duration::from_secs(600),
            ..CoreConfig::default()
        };
        let lifetimes = Lifetimes::default();
        lifetimes.0.write().unwrap().insert(
            "etapp".into(),
            TokenLifetimes {
                user: Some(Duration::from_secs(86_400)),
                client: None,
            },
        );
        let of = |d: &str, k| lifetimes.of(&config, d, k).as_secs();
        assert_eq!(of("etapp", TokenKind::User), 86_400);
        assert_eq!(
            of("etapp", TokenKind::Client),
            600,
            "none declared: the setting"
        );
        assert_eq!(of("native", TokenKind::User), 3600);
        assert_eq!(of("native", TokenKind::Client), 600);
    }
}
