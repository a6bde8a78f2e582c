//! Configuration: defaults <- `config.toml` <- `CREDGATE_*` environment variables (figment).
//! Unknown keys in the file are refused, so a typo is a start-up error naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use credgate_core::{CoreConfig, LimitConfig, PolicyConfig, SecretToken};
use credgate_store::StoreOptions;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    /// Bearer token of the admin API; none configured turns the admin API off.
    pub admin_token: Option<SecretToken>,
    pub bcrypt_cost: u32,
    /// bcrypt threads; 0 means one per CPU.
    pub hash_threads: usize,
    /// Added to the bcrypt threads' nice value (0-19; 0: same priority as request threads).
    pub hash_nice: i32,
    /// Longest a request's first bcrypt job may be expected to wait for a hashing thread (the
    /// measured time of one job times the jobs ahead); beyond it the request is answered at
    /// once with the dialect's 503 and `Retry-After`. 0: never refused.
    pub hash_max_wait_ms: u64,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Pending-connection queue of every listener (main, per-dialect, metrics).
    pub listen_backlog: u32,
    /// How long an idle kept-alive client connection stays open, in seconds (0: no keep-alive).
    pub keep_alive_secs: u64,
    /// How long a client may take to send a request's head (line and headers), in ms.
    pub client_request_timeout_ms: u64,
    /// How long SIGTERM/SIGINT waits for requests in flight, in seconds; 0: derived from the
    /// bcrypt cost (see [`Settings::shutdown_grace`]).
    pub shutdown_grace_secs: u64,
    pub token_ttl_secs: u64,
    pub client_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long a token lookup may be served from memory (revocations from other instances
    /// are seen within this bound).
    pub token_cache_secs: u64,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once its head is in (408 and the connection
    /// closed after it); the head has its own deadline.
    pub body_timeout_ms: u64,
    /// `text` or `json`.
    pub log_format: String,
    /// A tracing filter such as `info` or `credgate=debug,info`.
    pub log_level: String,
    pub policy: PolicyConfig,
    /// Guessing limits on password checks.
    pub limits: LimitConfig,
    pub store: StoreOptions,
    pub dialects: DialectSettings,
    pub reset: ResetSettings,
    pub cookies: CookieSettings,
    pub metrics: crate::metrics::MetricsSettings,
    /// HTTPS on the listeners, client certificates, extra roots of the outgoing clients.
    pub tls: crate::tls::TlsSettings,
    /// Legacy vendor APIs credgate calls as a client (`[[upstreams]]`).
    pub upstreams: Vec<crate::upstream::UpstreamSettings>,
    /// Shadow mode: how comparisons are kept and when a route is ready to cut over.
    pub shadow: crate::shadow::ShadowSettings,
    /// The key of reset-token and code digests, as hex (usually `CREDGATE_DIGEST_KEY`); wins
    /// over `digest_key_file`.
    pub digest_key: Option<SecretToken>,
    /// Where the digest key is kept; generated (mode 0600) on first start when missing.
    pub digest_key_file: PathBuf,
    /// Ceilings of imported legacy hashes and background wrapping of weak ones.
    pub legacy_hashes: crate::legacy_hashes::LegacyHashSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    Outbox,
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResetSettings {
    pub token_ttl_secs: u64,
    pub code_ttl_secs: u64,
    /// A new request invalidates the user's older outstanding resets.
    pub replace_outstanding: bool,
    pub notifier: NotifierKind,
    /// With `outbox`: the JSON-lines file notices are appended to.
    pub outbox: PathBuf,
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the `X-Credgate-Signature` header.
    pub webhook_secret: Option<SecretToken>,
    pub webhook_timeout_ms: u64,
    pub webhook_attempts: u32,
    /// First retry delay; doubles on each further retry.
    pub webhook_backoff_ms: u64,
}

impl Default for ResetSettings {
    fn default() -> Self {
        Self {
            token_ttl_secs: 30 * 60,
            code_ttl_secs: 10 * 60,
            replace_outstanding: true,
            notifier: NotifierKind::Outbox,
            outbox: PathBuf::from("./data/reset-outbox.jsonl"),
            webhook_url: None,
            webhook_secret: None,
            webhook_timeout_ms: 5_000,
            webhook_attempts: 3,
            webhook_backoff_ms: 500,
        }
    }
}

/// Attributes added to every cookie the dialects set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookieSettings {
    /// Mark every cookie `Secure`: for a TLS-terminating proxy in front of credgate.
    pub secure: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialectSettings {
    /// Folders holding more dialects (`<dir>/<name>/dialect.toml`); a folder dialect with the
    /// name of a shipped one replaces it.
    pub dirs: Vec<PathBuf>,
    pub disabled: Vec<String>,
    /// Per-dialect template variables, e.g. `[dialects.vars.akana] fed_member_id = "acme"`.
    pub vars: BTreeMap<String, BTreeMap<String, String>>,
    /// Per-dialect CSRF switch for cookie dialects (on by default).
    pub csrf: BTreeMap<String, bool>,
    /// Per-dialect listener and path prefix, e.g. `[dialects.mount.akana] prefix = "/akana"`.
    pub mount: BTreeMap<String, crate::listeners::MountSettings>,
    /// Per-dialect session lifetime in seconds, replacing the vendor's documented value from the
    /// dialect file (`[dialects.token_ttl_secs] etapp = 3600`).
    pub token_ttl_secs: BTreeMap<String, u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: "./data/credgate.db".into(),
            admin_token: None,
            bcrypt_cost: 12,
            hash_threads: 0,
            hash_nice: 10,
            hash_max_wait_ms: 2_000,
            workers: 0,
            listen_backlog: 2048,
            keep_alive_secs: 75,
            client_request_timeout_ms: 5_000,
            shutdown_grace_secs: 0,
            token_ttl_secs: 3600,
            client_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            token_cache_secs: 5,
            max_body_bytes: 64 * 1024,
            body_timeout_ms: 10_000,
            log_format: "text".into(),
            log_level: "info".into(),
            policy: PolicyConfig::default(),
            limits: LimitConfig::default(),
            store: StoreOptions::default(),
            dialects: DialectSettings::default(),
            reset: ResetSettings::default(),
            cookies: CookieSettings::default(),
            metrics: Default::default(),
            tls: Default::default(),
            upstreams: Vec::new(),
            shadow: Default::default(),
            digest_key: None,
            digest_key_file: PathBuf::from("./data/digest.key"),
            legacy_hashes: Default::default(),
        }
    }
}

/// Top-level keys the environment may set; other `CREDGATE_*` variables (test harness
/// settings, say) are not configuration.
const ENV_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "admin_token",
    "bcrypt_cost",
    "hash_threads",
    "hash_nice",
    "hash_max_wait_ms",
    "workers",
    "listen_backlog",
    "keep_alive_secs",
    "client_request_timeout_ms",
    "shutdown_grace_secs",
    "token_ttl_secs",
    "client_token_ttl_secs",
    "refresh_token_ttl_secs",
    "token_cache_secs",
    "max_body_bytes",
    "body_timeout_ms",
    "log_format",
    "log_level",
    "policy",
    "limits",
    "store",
    "dialects",
    "reset",
    "cookies",
    "metrics",
    "tls",
    "upstreams",
    "shadow",
    "digest_key",
    "digest_key_file",
    "legacy_hashes",
];

/// The bcrypt queue a request accepted just before SIGTERM may wait behind, in the derived
/// shutdown grace: the bcrypt pool's work of a burst of password changes.
pub const QUEUE_ALLOWANCE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Reads `path` (when given, it must exist; otherwise `./config.toml` when present) and
    /// the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(p) if !p.is_file() => {
                return Err(ConfigError(format!(
                    "config file {} not found",
                    p.display()
                )))
            }
            Some(p) => figment = figment.merge(Toml::file(p)),
            None if Path::new("config.toml").is_file() => {
                figment = figment.merge(Toml::file("config.toml"))
            }
            None => {}
        }
        let env = Env::prefixed("CREDGATE_").split("__").filter(|k| {
            let key = k.as_str().to_ascii_lowercase();
            ENV_KEYS
                .iter()
                .any(|known| key == *known || key.starts_with(&format!("{known}.")))
        });
        Self::from_figment(figment.merge(env))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.into()));
        if !(4..=31).contains(&self.bcrypt_cost) {
            return bad("bcrypt_cost must be between 4 and 31");
        }
        if !(0..=19).contains(&self.hash_nice) {
            return bad("hash_nice must be between 0 and 19");
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            return bad("log_format must be \"text\" or \"json\"");
        }
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes must be positive");
        }
        if self.body_timeout_ms == 0 {
            return bad("body_timeout_ms must be positive");
        }
        if self.listen_backlog == 0 || self.listen_backlog > i32::MAX as u32 {
            return bad("listen_backlog must be between 1 and 2147483647");
        }
        if self.client_request_timeout_ms == 0 {
            return bad("client_request_timeout_ms must be positive");
        }
        if self.token_ttl_secs == 0
            || self.client_token_ttl_secs == 0
            || self.refresh_token_ttl_secs == 0
        {
            return bad(
                "token_ttl_secs, client_token_ttl_secs and refresh_token_ttl_secs must be positive",
            );
        }
        if let Some((name, _)) = self.dialects.token_ttl_secs.iter().find(|(_, t)| **t == 0) {
            return Err(ConfigError(format!(
                "dialects.token_ttl_secs.{name} must be positive"
            )));
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return bad("admin_token must be at least 16 characters");
        }
        if self.limits.window_secs == 0 || self.limits.reset_window_secs == 0 {
            return bad("limits.window_secs and limits.reset_window_secs must be positive");
        }
        crate::client_addr::TrustedProxies::parse(&self.limits.trusted_proxies)
            .map_err(ConfigError)?;
        if self.reset.token_ttl_secs == 0 || self.reset.code_ttl_secs == 0 {
            return bad("reset.token_ttl_secs and reset.code_ttl_secs must be positive");
        }
        if self.reset.notifier == NotifierKind::Webhook
            && (self.reset.webhook_url.is_none() || self.reset.webhook_secret.is_none())
        {
            return bad("reset.webhook_url and reset.webhook_secret are required with notifier = \"webhook\"");
        }
        crate::listeners::validate_mounts(&self.dialects.mount).map_err(ConfigError)?;
        crate::tls::validate(self).map_err(ConfigError)?;
        crate::upstream::validate(&self.upstreams).map_err(ConfigError)?;
        self.policy.validate().map_err(ConfigError)
    }

    /// The longest one request keeps bcrypt busy at the configured cost: a password change
    /// verifies the current password, compares the new one with up to `policy.history` earlier
    /// hashes and hashes it. One hash at cost 12 takes about 0.25 s on a current server core;
    /// 0.5 s is assumed, and each cost step doubles it.
    pub fn longest_hash_job(&self) -> Duration {
        let hashes = 2 + self.policy.history as u64;
        let per_hash_ms = (500.0 * 2f64.powi(self.bcrypt_cost as i32 - 12)).ceil() as u64;
        Duration::from_millis(hashes.saturating_mul(per_hash_ms))
    }

    /// How long a shutdown waits for requests in flight: `shutdown_grace_secs`, or when 0,
    /// [`QUEUE_ALLOWANCE`] for the bcrypt queue ahead of a request plus its own
    /// [`Settings::longest_hash_job`].
    pub fn shutdown_grace(&self) -> Duration {
        match self.shutdown_grace_secs {
            0 => QUEUE_ALLOWANCE + self.longest_hash_job(),
            secs => Duration::from_secs(secs),
        }
    }

    pub fn core_config(&self) -> CoreConfig {
        CoreConfig {
            bcrypt_cost: self.bcrypt_cost,
            hash_threads: self.hash_threads,
            hash_nice: self.hash_nice,
            user_token_ttl: Duration::from_secs(self.token_ttl_secs),
            client_token_ttl: Duration::from_secs(self.client_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_secs),
            token_cache_ttl: Duration::from_secs(self.token_cache_secs),
            policy: self.policy.clone(),
            limits: self.limits.clone(),
            reset_token_ttl: Duration::from_secs(self.reset.token_ttl_secs),
            reset_code_ttl: Duration::from_secs(self.reset.code_ttl_secs),
            reset_replaces_outstanding: self.reset.replace_outstanding,
            record_metrics: self.metrics.enabled,
            hash_max_wait: Duration::from_millis(self.hash_max_wait_ms),
            ..CoreConfig::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type is figment's
    fn file_then_env_and_errors_name_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "config.toml",
                "bcrypt_cost = 10\n[policy]\nmin_length = 10\n",
            )?;
            jail.set_env("CREDGATE_BCRYPT_COST", "11");
            jail.set_env("CREDGATE_POLICY__HISTORY", "3");
            jail.set_env("CREDGATE_TEST_POSTGRES_URL", "postgres://ignored");
            jail.set_env("CREDGATE_LIMITS__USER_FAILURES", "7");
            jail.set_env("CREDGATE_RESET__WEBHOOK_ATTEMPTS", "9");
            jail.set_env("CREDGATE_STORE__MAX_CONNECTIONS", "3");
            let s = Settings::load(None).unwrap();
            assert_eq!(
                (s.bcrypt_cost, s.policy.min_length, s.policy.history),
                (11, 10, 3)
            );
            // Every table is reachable from the environment.
            assert_eq!(
                (
                    s.limits.user_failures,
                    s.reset.webhook_attempts,
                    s.store.max_connections
                ),
                (7, 9, 3)
            );

            jail.create_file("bad.toml", "bcrypt_cots = 10\n")?;
            let e = Settings::load(Some(Path::new("bad.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("bcrypt_cots"), "{e}");
            assert_eq!(s.core_config().hash_nice, 10, "default");
            jail.set_env("CREDGATE_HASH_NICE", "3");
            assert_eq!(Settings::load(None).unwrap().core_config().hash_nice, 3);
            jail.set_env("CREDGATE_HASH_NICE", "20");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("hash_nice"), "{e}");
            jail.set_env("CREDGATE_HASH_NICE", "0");
            jail.set_env(
                "CREDGATE_LIMITS__TRUSTED_PROXIES",
                "[\"10.0.0.0/8\", \"::1\"]",
            );
            jail.set_env("CREDGATE_DIGEST_KEY", "ab".repeat(32));
            let s = Settings::load(None).unwrap();
            assert_eq!(s.limits.trusted_proxies, ["10.0.0.0/8", "::1"]);
            assert!(s.digest_key.is_some());
            jail.set_env("CREDGATE_LIMITS__TRUSTED_PROXIES", "[\"10.0.0.0/33\"]");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("trusted_proxies"), "{e}");
            jail.set_env("CREDGATE_LIMITS__TRUSTED_PROXIES", "[]");
            jail.set_env("CREDGATE_BCRYPT_COST", "eleven");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.to_lowercase().contains("bcrypt_cost"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_shutdown_grace_covers_the_bcrypt_queue_and_one_change_at_the_cost() {
        let at_12 = Settings::default();
        // 7 hashes (current, 5 history, new) at 0.5 s, after 30 s of queue.
        assert_eq!(at_12.longest_hash_job(), Duration::from_millis(3_500));
        assert_eq!(at_12.shutdown_grace(), Duration::from_millis(33_500));
        let at_14 = Settings {
            bcrypt_cost: 14,
            ..Settings::default()
        };
        assert_eq!(at_14.shutdown_grace(), Duration::from_secs(44));
        let set = Settings {
            shutdown_grace_secs: 90,
            ..Settings::default()
        };
        assert_eq!(set.shutdown_grace(), Duration::from_secs(90));
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type is figment's
    fn timeouts_backlog_and_pool_settings_come_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.set_env("CREDGATE_LISTEN_BACKLOG", "4096");
            jail.set_env("CREDGATE_KEEP_ALIVE_SECS", "30");
            jail.set_env("CREDGATE_SHUTDOWN_GRACE_SECS", "120");
            jail.set_env("CREDGATE_STORE__STATEMENT_TIMEOUT_MS", "2500");
            jail.set_env("CREDGATE_STORE__WAL_AUTOCHECKPOINT_PAGES", "100");
            let s = Settings::load(None).unwrap();
            assert_eq!(
                (s.listen_backlog, s.keep_alive_secs, s.shutdown_grace_secs),
                (4096, 30, 120)
            );
            let opts = crate::app::store_options(&s);
            assert_eq!(
                (opts.statement_timeout_ms, opts.wal_autocheckpoint_pages),
                (2500, 100)
            );
            jail.set_env("CREDGATE_LISTEN_BACKLOG", "0");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("listen_backlog"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn debug_output_redacts_the_admin_token() {
        let s = Settings {
            admin_token: Some(SecretToken::new("super-secret-admin-token")),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
