//! Upstreams: legacy vendor APIs credgate calls as a client, through the client side of their
//! dialect files. `migrate` upstreams vouch for users unknown here (lazy migration);
//! `passthrough` upstreams serve the requests of the client dialects bound to them; `shadow`
//! upstreams do too, while credgate keeps its copy in sync and compares.

mod client;
mod migrate;
mod passthrough;
mod per_thread;
mod reset;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use credgate_core::passthrough::BindingMode;
use credgate_core::{SecretToken, UpstreamAuthority, UpstreamDirectory};
use credgate_dialect::{Dialect, DialectSet, DialectSource, LoadOptions};
use serde::Deserialize;

pub use client::UpstreamClient;
pub use migrate::MigrateUpstreams;
pub use passthrough::Passthrough;

use crate::settings::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMode {
    /// Users unknown here are verified against the upstream and created locally.
    Migrate,
    /// Requests of the `inbound` dialects are translated to the upstream and answered from it.
    Passthrough,
    /// As passthrough, while credgate keeps its users in sync and compares its own answers.
    Shadow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub name: String,
    /// The dialect the upstream speaks (any loaded dialect, even one disabled for serving).
    pub dialect: String,
    /// Scheme, host and port; the dialect's base path is appended (`https://legacy.example.com`).
    pub base_url: String,
    pub mode: UpstreamMode,
    /// Whole-call timeout per attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts after a timeout, refused connection or 5xx, for idempotent calls only.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub auth: UpstreamAuthSettings,
    /// With `passthrough` and `shadow`: the client dialects whose requests go to this upstream.
    #[serde(default)]
    pub inbound: Vec<String>,
}

/// What credgate itself presents to the upstream. Debug output redacts the secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamAuthSettings {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretToken>,
    pub app_key: Option<SecretToken>,
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_retries() -> u32 {
    1
}

/// Checks what can be checked without the dialects; names the offending key.
pub fn validate(upstreams: &[UpstreamSettings]) -> Result<(), String> {
    let mut names = BTreeSet::new();
    let mut bound = BTreeSet::new();
    for (i, u) in upstreams.iter().enumerate() {
        let at = format!("upstreams[{i}]");
        if u.name.trim().is_empty() || !names.insert(u.name.as_str()) {
            return Err(format!("{at}.name must be present and unique"));
        }
        if !(u.base_url.starts_with("http://") || u.base_url.starts_with("https://")) {
            return Err(format!("{at}.base_url must start with http:// or https://"));
        }
        if u.timeout_ms == 0 {
            return Err(format!("{at}.timeout_ms must be positive"));
        }
        if u.retries > 5 {
            return Err(format!("{at}.retries must be at most 5"));
        }
        match u.mode {
            UpstreamMode::Passthrough | UpstreamMode::Shadow if u.inbound.is_empty() => {
                return Err(format!(
                    "{at}.inbound must name the client dialects of a passthrough or shadow upstream"
                ))
            }
            UpstreamMode::Migrate if !u.inbound.is_empty() => {
                return Err(format!(
                    "{at}.inbound is only for passthrough and shadow (migrate serves every dialect)"
                ))
            }
            _ => {}
        }
        for d in &u.inbound {
            if !bound.insert(d.as_str()) {
                return Err(format!(
                    "{at}.inbound: dialect `{d}` is bound to two upstreams"
                ));
            }
        }
    }
    Ok(())
}

/// Every dialect credgate can speak as a client, by name, including those not served here.
/// Each file is loaded on its own: routes of dialects not served together cannot clash.
pub fn spoken_dialects(settings: &Settings) -> Result<BTreeMap<String, Arc<Dialect>>, String> {
    let mut sources = DialectSource::embedded();
    for dir in &settings.dialects.dirs {
        sources.extend(DialectSource::from_dir(dir).map_err(|e| e.to_string())?);
    }
    let options = LoadOptions {
        vars: settings.dialects.vars.clone(),
        csrf: settings.dialects.csrf.clone(),
        ..LoadOptions::default()
    };
    let mut spoken: BTreeMap<String, Arc<Dialect>> = BTreeMap::new();
    for source in &sources {
        let set =
            DialectSet::load(std::slice::from_ref(source), &options).map_err(|e| e.to_string())?;
        for d in set.dialects() {
            spoken.insert(d.name.clone(), Arc::clone(d));
        }
    }
    Ok(spoken)
}

/// The configured upstreams, built once at start.
#[derive(Default)]
pub struct Upstreams {
    pub migrate: Option<Arc<MigrateUpstreams>>,
    pub passthrough: Option<Arc<Passthrough>>,
    /// Every upstream, in configuration order, for `/readyz`.
    pub all: Vec<Arc<UpstreamClient>>,
}

impl Upstreams {
    pub fn build(settings: &Settings) -> Result<Self, String> {
        if settings.upstreams.is_empty() {
            return Ok(Self::default());
        }
        let spoken = spoken_dialects(settings)?;
        let (mut migrate, mut passthrough, mut all) = (Vec::new(), Vec::new(), Vec::new());
        let roots = crate::tls::client_roots(&settings.tls)?;
        for (i, u) in settings.upstreams.iter().enumerate() {
            let dialect = spoken
                .get(&u.dialect)
                .ok_or_else(|| format!("upstreams[{i}].dialect: no dialect `{}`", u.dialect))?;
            for d in &u.inbound {
                if !spoken.contains_key(d) || settings.dialects.disabled.contains(d) {
                    return Err(format!(
                        "upstreams[{i}].inbound: `{d}` is not a served dialect"
                    ));
                }
            }
            let client = Arc::new(UpstreamClient::new(u, Arc::clone(dialect), &roots)?);
            all.push(Arc::clone(&client));
            match u.mode {
                UpstreamMode::Migrate => migrate.push(client),
                UpstreamMode::Passthrough => {
                    passthrough.push((u.inbound.clone(), client, BindingMode::Passthrough))
                }
                UpstreamMode::Shadow => {
                    passthrough.push((u.inbound.clone(), client, BindingMode::Shadow))
                }
            }
        }
        Ok(Self {
            migrate: (!migrate.is_empty()).then(|| Arc::new(MigrateUpstreams::new(migrate))),
            passthrough: (!passthrough.is_empty()).then(|| Arc::new(Passthrough::new(passthrough))),
            all,
        })
    }

    pub fn directory(&self) -> Option<Arc<dyn UpstreamDirectory>> {
        self.migrate
            .as_ref()
            .map(|l| Arc::clone(l) as Arc<dyn UpstreamDirectory>)
    }

    /// The core's port to the upstreams that answer for client dialects.
    pub fn authority(&self) -> Option<Arc<dyn UpstreamAuthority>> {
        self.passthrough
            .as_ref()
            .map(|p| Arc::clone(p) as Arc<dyn UpstreamAuthority>)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Settings, String> {
        use figment::providers::{Format, Toml};
        Settings::from_figment(figment::Figment::new().merge(Toml::string(toml)))
            .map_err(|e| e.to_string())
    }

    const MIGRATE: &str = r#"
        [[upstreams]]
        name = "legacy"
        dialect = "etapp"
        base_url = "https://etna.legacy.example"
        mode = "migrate"
        auth = { client_id = "cg", client_secret = "client-secret-value", app_key = "app-key-value" }
    "#;

    #[test]
    fn upstreams_parse_with_defaults_and_never_print_their_secrets() {
        let s = parse(MIGRATE).unwrap();
        let u = &s.upstreams[0];
        assert_eq!(
            (u.timeout_ms, u.retries, u.mode),
            (5_000, 1, UpstreamMode::Migrate)
        );
        let printed = format!("{s:?}");
        assert!(!printed.contains("client-secret-value"), "{printed}");
        assert!(!printed.contains("app-key-value"), "{printed}");
        let built = Upstreams::build(&s).unwrap();
        assert!(built.migrate.is_some() && built.passthrough.is_none());
    }

    #[test]
    fn bad_upstreams_are_refused_naming_the_key() {
        for (toml, key) in [
            (
                MIGRATE.replace("https://", "ftp://"),
                "upstreams[0].base_url",
            ),
            (
                MIGRATE.replace("mode = \"migrate\"", "mode = \"passthrough\""),
                "upstreams[0].inbound",
            ),
            (
                MIGRATE.replace(
                    "mode = \"migrate\"",
                    "mode = \"migrate\"\ninbound = [\"crayon\"]",
                ),
                "upstreams[0].inbound",
            ),
            (format!("{MIGRATE}{MIGRATE}"), "upstreams[1].name"),
            (
                MIGRATE.replace("auth =", "timeout_ms = 0\nauth ="),
                "upstreams[0].timeout_ms",
            ),
            (MIGRATE.replace("auth =", "colour = 1\nauth ="), "colour"),
        ] {
            let e = parse(&toml).unwrap_err();
            assert!(e.contains(key), "{key}: {e}");
        }
        // Dialect names are checked when the upstreams are built.
        let s = parse(&MIGRATE.replace("\"etapp\"", "\"nosuch\"")).unwrap();
        let e = Upstreams::build(&s).err().unwrap();
        assert!(e.contains("upstreams[0].dialect"), "{e}");
        let passthrough = MIGRATE.replace(
            "mode = \"migrate\"",
            "mode = \"passthrough\"\ninbound = [\"nosuch\"]",
        );
        let e = Upstreams::build(&parse(&passthrough).unwrap())
            .err()
            .unwrap();
        assert!(e.contains("upstreams[0].inbound"), "{e}");
    }
}
