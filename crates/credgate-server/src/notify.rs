//! Reset delivery: an outbox file (JSON lines, the default) or an HMAC-signed webhook.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use credgate_core::{Notifier, ResetNotice, SecretToken};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::settings::{NotifierKind, ResetSettings};

/// Appends each notice as one JSON line to a file, for a local mailer or an operator to read.
pub struct Outbox {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Mutex<()>,
}

impl Outbox {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl Notifier for Outbox {
    async fn deliver(&self, notice: &ResetNotice) -> Result<(), String> {
        let mut line = serde_json::to_vec(&notice.to_json()).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            credgate_store::files::create_private_dir(dir)
                .map_err(|e| format!("outbox folder: {e}"))?;
        }
        // The outbox holds live reset tokens and codes: 0600, whatever the umask.
        let mut file = tokio::fs::OpenOptions::from(credgate_store::files::private_options())
            .open(&self.path)
            .await
            .map_err(|e| format!("outbox {}: {e}", self.path.display()))?;
        file.write_all(&line).await.map_err(|e| e.to_string())?;
        file.sync_data().await.map_err(|e| e.to_string())
    }
}

/// POSTs each notice to a URL, signed: `X-Credgate-Signature: sha256=<hex HMAC-SHA256 of the body>`.
pub struct Webhook {
    url: String,
    secret: SecretToken,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
}

pub const SIGNATURE_HEADER: &str = "X-Credgate-Signature";

/// The signature header's value for `body`.
pub fn sign(secret: &SecretToken, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable_hmac());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// HMAC accepts keys of any length; this cannot happen.
fn unreachable_hmac() -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    <Hmac<Sha256> as Mac>::new_from_slice(b"k").expect("HMAC takes any key length")
}

#[async_trait]
impl Notifier for Webhook {
    async fn deliver(&self, notice: &ResetNotice) -> Result<(), String> {
        let body = serde_json::to_vec(&notice.to_json()).map_err(|e| e.to_string())?;
        let signature = sign(&self.secret, &body);
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
            }
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(res) if res.status().is_success() => return Ok(()),
                // A 4xx will not get better by retrying.
                Ok(res) if res.status().is_client_error() => {
                    return Err(format!("webhook answered {}", res.status()))
                }
                Ok(res) => last = format!("webhook answered {}", res.status()),
                // reqwest's error names the URL, never the body.
                Err(e) => last = format!("webhook unreachable: {}", e.without_url()),
            }
        }
        Err(format!("{last} (after {} attempts)", self.attempts))
    }
}

pub fn from_settings(settings: &ResetSettings) -> Result<std::sync::Arc<dyn Notifier>, String> {
    from_settings_with_roots(settings, &[])
}

/// As [`from_settings`], the webhook client trusting `roots` (`[tls] ca_bundle`) too.
pub fn from_settings_with_roots(
    settings: &ResetSettings,
    roots: &[reqwest::Certificate],
) -> Result<std::sync::Arc<dyn Notifier>, String> {
    Ok(match settings.notifier {
        NotifierKind::Outbox => {
            // An outbox left readable by others (an older version, a loose umask) is reported
            // and tightened at start: it holds live reset tokens.
            credgate_store::files::tighten(&settings.outbox)
                .map_err(|e| format!("outbox {}: {e}", settings.outbox.display()))?;
            std::sync::Arc::new(Outbox::new(settings.outbox.clone()))
        }
        NotifierKind::Webhook => {
            let url = settings
                .webhook_url
                .clone()
                .ok_or("reset.webhook_url is required with notifier = \"webhook\"")?;
            let secret = settings
                .webhook_secret
                .clone()
                .ok_or("reset.webhook_secret is required with notifier = \"webhook\"")?;
            let client = crate::tls::with_roots(reqwest::Client::builder(), roots)
                .timeout(Duration::from_millis(settings.webhook_timeout_ms))
                .build()
                .map_err(|e| e.to_string())?;
            std::sync::Arc::new(Webhook {
                url,
                secret,
                client,
                attempts: settings.webhook_attempts.max(1),
                backoff: Duration::from_millis(settings.webhook_backoff_ms),
            })
        }
    })
}
