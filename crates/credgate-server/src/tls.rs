//! TLS on the listeners (rustls, TLS 1.2 and 1.3 only): `[tls] cert`/`key` for the main and
//! metrics listeners and every dialect listener without its own `tls_cert`/`tls_key`. Each
//! certificate sits behind a resolver that swaps an `Arc`: SIGHUP re-reads the files and a new
//! handshake gets the new certificate, while the listeners and the connections already open
//! stay as they are. A new certificate that does not load (unreadable, no certificate, no key,
//! a key of another certificate) is refused with the reason logged, and the old one keeps
//! serving. With `[tls] client_ca`, the admin API and the metrics listener want a client
//! certificate signed by it.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::dev::Extensions;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::settings::Settings;

/// `[tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first); with `key`, every listener serves HTTPS.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert`.
    pub key: Option<PathBuf>,
    /// PEM CA bundle: the admin API and the metrics listener then require a client
    /// certificate it signed.
    pub client_ca: Option<PathBuf>,
    /// PEM CA bundle the gateway's own HTTPS clients (upstreams, reset webhook) trust, besides
    /// the built-in roots: for a private PKI.
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0}: no PEM certificate in the file")]
    NoCertificate(String),
    #[error("{0}: no PEM private key in the file")]
    NoKey(String),
    #[error("{cert}: the key in {key} is not this certificate's ({reason})")]
    Mismatch {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("{0}")]
    Config(String),
}

/// A certificate and key pair on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertSource {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Reads every PEM certificate of a file (a chain or a CA bundle).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

/// Loads a chain and its key, and checks that the key is the leaf's.
pub fn load(source: &CertSource) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(&source.cert)?;
    let key_pem = read(&source.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::NoKey(source.key.display().to_string()))?;
    let mismatch = |reason: String| TlsError::Mismatch {
        cert: source.cert.display().to_string(),
        key: source.key.display().to_string(),
        reason,
    };
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(certified)
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
pub struct SwapResolver {
    source: CertSource,
    current: ArcSwap<CertifiedKey>,
}

impl SwapResolver {
    pub fn new(source: CertSource) -> Result<Self, TlsError> {
        let current = ArcSwap::from_pointee(load(&source)?);
        Ok(Self { source, current })
    }

    /// Re-reads the files; on any error the certificate serving now stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.current.store(Arc::new(load(&self.source)?));
        Ok(())
    }
}

impl ResolvesServerCert for SwapResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Whether a listener asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// Asked, not required: the admin API checks it was given (the main listener).
    Optional,
    /// No handshake without one (the metrics listener).
    Required,
}

/// Marks a connection whose client presented a certificate the client CA signed.
#[derive(Debug, Clone, Copy)]
pub struct ClientCertificate;

/// The certificates of every TLS listener, by listen address.
#[derive(Debug, Default)]
pub struct Certificates {
    main: Option<Arc<SwapResolver>>,
    by_listener: HashMap<String, Arc<SwapResolver>>,
    client_ca: Option<Arc<RootCertStore>>,
}

impl Certificates {
    /// Loads every configured certificate; a bad one fails the start with its reason.
    pub fn from_settings(settings: &Settings) -> Result<Self, TlsError> {
        let tls = &settings.tls;
        let mut loaded: HashMap<CertSource, Arc<SwapResolver>> = HashMap::new();
        let mut resolver = |source: CertSource| -> Result<Arc<SwapResolver>, TlsError> {
            if let Some(r) = loaded.get(&source) {
                return Ok(Arc::clone(r));
            }
            let r = Arc::new(SwapResolver::new(source.clone())?);
            loaded.insert(source, Arc::clone(&r));
            Ok(r)
        };
        let main = match (&tls.cert, &tls.key) {
            (Some(cert), Some(key)) => Some(resolver(CertSource {
                cert: cert.clone(),
                key: key.clone(),
            })?),
            _ => None,
        };
        let mut by_listener = HashMap::new();
        for m in settings.dialects.mount.values() {
            let Some(listen) = m.listen.clone().filter(|l| *l != settings.listen) else {
                continue;
            };
            let own = match (&m.tls_cert, &m.tls_key) {
                (Some(cert), Some(key)) => Some(resolver(CertSource {
                    cert: cert.clone(),
                    key: key.clone(),
                })?),
                _ => main.clone(),
            };
            if let Some(r) = own {
                by_listener.insert(listen, r);
            }
        }
        let client_ca = match &tls.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certificates(path)? {
                    roots.add(cert).map_err(|e| TlsError::Read {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                }
                Some(Arc::new(roots))
            }
            None => None,
        };
        Ok(Self {
            main,
            by_listener,
            client_ca,
        })
    }

    /// The resolver of the main and metrics listeners.
    pub fn main(&self) -> Option<Arc<SwapResolver>> {
        self.main.clone()
    }

    /// The resolver of a dialect listener.
    pub fn dialect_listener(&self, listen: &str) -> Option<Arc<SwapResolver>> {
        self.by_listener.get(listen).cloned()
    }

    /// Whether the admin API wants a client certificate.
    pub fn wants_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The rustls configuration of a listener served by `resolver`.
    pub fn server_config(
        &self,
        resolver: Arc<SwapResolver>,
        auth: ClientAuth,
    ) -> Result<ServerConfig, TlsError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match (&self.client_ca, auth) {
            (Some(roots), ClientAuth::Optional | ClientAuth::Required) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider());
                let verifier = match auth {
                    ClientAuth::Optional => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Config(format!("tls.client_ca: {e}")))?,
                )
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Re-reads every certificate (SIGHUP); a refused one is logged and keeps serving.
    pub fn reload(&self) -> Vec<TlsError> {
        let mut seen: Vec<*const SwapResolver> = Vec::new();
        let mut errors = Vec::new();
        for r in self.main.iter().chain(self.by_listener.values()) {
            if seen.contains(&Arc::as_ptr(r)) {
                continue;
            }
            seen.push(Arc::as_ptr(r));
            match r.reload() {
                Ok(()) => {
                    tracing::info!(cert = %r.source.cert.display(), "TLS certificate reloaded")
                }
                Err(e) => {
                    tracing::warn!(reason = %e,
                        "TLS certificate reload refused; the old certificate keeps serving");
                    errors.push(e);
                }
            }
        }
        errors
    }
}

/// Checks the `[tls]` keys and the dialect listeners' overrides hang together.
pub fn validate(settings: &Settings) -> Result<(), String> {
    let tls = &settings.tls;
    if tls.cert.is_some() != tls.key.is_some() {
        return Err("tls.cert and tls.key go together".into());
    }
    if tls.client_ca.is_some() && tls.cert.is_none() {
        return Err(
            "tls.client_ca needs tls.cert and tls.key (client certificates need TLS)".into(),
        );
    }
    for (name, m) in &settings.dialects.mount {
        if m.tls_cert.is_some() != m.tls_key.is_some() {
            return Err(format!(
                "dialects.mount.{name}.tls_cert and tls_key go together"
            ));
        }
        if m.tls_cert.is_some() && m.listen.is_none() {
            return Err(format!(
                "dialects.mount.{name}.tls_cert needs its own listen address"
            ));
        }
    }
    Ok(())
}

/// Marks, when a TLS connection opens, whether its client presented a verified certificate
/// (`HttpServer::on_connect`); the admin API reads the mark.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_rt::net::TcpStream>;
    if let Some(tls) = conn.downcast_ref::<Tls>() {
        let (_, session) = tls.get_ref();
        if session.peer_certificates().is_some_and(|c| !c.is_empty()) {
            ext.insert(ClientCertificate);
        }
    }
}

/// The extra roots of the gateway's HTTPS clients (`[tls] ca_bundle`).
pub fn client_roots(settings: &TlsSettings) -> Result<Vec<reqwest::Certificate>, String> {
    let Some(path) = &settings.ca_bundle else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|e| format!("tls.ca_bundle {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("tls.ca_bundle {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.ca_bundle {}: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// A client builder trusting `roots` besides the built-in ones.
pub fn with_roots(
    mut builder: reqwest::ClientBuilder,
    roots: &[reqwest::Certificate],
) -> reqwest::ClientBuilder {
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
}
