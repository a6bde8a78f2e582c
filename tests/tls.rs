//! TLS on the listeners: a real HTTPS client against the real binary with certificates made
//! here (rcgen), a renewal by SIGHUP while a kept-alive connection stays open across it, a
//! broken new certificate refused (the old one keeps serving), and client certificates for the
//! admin API and the metrics listener.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{self, ADMIN_TOKEN};

/// A test CA that signs server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A leaf for 127.0.0.1 and localhost: (certificate DER, chain PEM, key PEM).
    fn leaf(&self, serial: u64) -> (Vec<u8>, String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.serial_number = Some(serial.into());
        params
            .distinguished_name
            .push(DnType::CommonName, format!("credgate test {serial}"));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        // The chain: leaf first, then the CA.
        let chain = format!("{}{}", cert.pem(), self.cert.pem());
        (cert.der().to_vec(), chain, key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn https_client(ca: &Ca) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .build()
        .unwrap()
}

/// The certificate the server presented on a fresh connection.
async fn served_certificate(ca: &Ca, url: &str) -> Option<Vec<u8>> {
    let res = https_client(ca).get(url).send().await.ok()?;
    assert_eq!(res.status(), 200);
    res.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec))
}

/// The real binary serving HTTPS with the certificate files in its folder.
struct HttpsBinary {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for HttpsBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpsBinary {
    async fn start(ca: &Ca, chain: &str, key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), chain).unwrap();
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("gw.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_credgate"))
            .arg("serve")
            .current_dir(dir.path())
            .env("CREDGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("CREDGATE_DATABASE_URL", dir.path().join("gw.db"))
            .env("CREDGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("CREDGATE_BCRYPT_COST", "4")
            .env("CREDGATE_TLS__CERT", dir.path().join("cert.pem"))
            .env("CREDGATE_TLS__KEY", dir.path().join("key.pem"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gw = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if served_certificate(ca, &gw.url("/readyz")).await.is_some() {
                return gw;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the HTTPS gateway did not come up: {}", gw.log());
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gw.log")).unwrap_or_default()
    }

    fn replace(&self, chain: &str, key: &str) {
        std::fs::write(self.dir.path().join("cert.pem"), chain).unwrap();
        std::fs::write(self.dir.path().join("key.pem"), key).unwrap();
    }

    fn hangup(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) until the log holds `text` `times` times.
    async fn logged(&self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log().matches(text).count() < times {
            assert!(
                Instant::now() < deadline,
                "never logged `{text}`: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One TLS connection kept open: each call sends `GET /healthz` on it and reads the answer.
struct HeldConnection {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
}

impl HeldConnection {
    async fn open(ca: &Ca, port: u16) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        Self { stream }
    }

    /// The leaf certificate this connection was opened with.
    fn certificate(&self) -> Vec<u8> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    async fn healthz(&mut self) -> String {
        self.stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"status\":\"ok\"") {
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf))
                .await
                .expect("an answer on the held connection")
                .unwrap();
            assert!(n > 0, "the held connection was closed");
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }
}

#[tokio::test]
async fn https_renewal_by_sighup_keeps_open_connections_and_refuses_a_broken_certificate() {
    let ca = Ca::new("credgate test CA");
    let (first_der, first_chain, first_key) = ca.leaf(1);
    let gw = HttpsBinary::start(&ca, &first_chain, &first_key).await;

    // A real HTTPS client, with the test CA only, gets the first certificate.
    assert_eq!(
        served_certificate(&ca, &gw.url("/healthz")).await,
        Some(first_der.clone())
    );
    // Plain HTTP on the TLS listener gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", gw.port)).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

    let mut held = HeldConnection::open(&ca, gw.port).await;
    assert!(held.healthz().await.starts_with("HTTP/1.1 200"));
    assert_eq!(held.certificate(), first_der);

    // Renewal: new files, SIGHUP; new connections get the new certificate...
    let (second_der, second_chain, second_key) = ca.leaf(2);
    gw.replace(&second_chain, &second_key);
    gw.hangup();
    gw.logged("TLS certificate reloaded", 1).await;
    assert_eq!(
        served_certificate(&ca, &gw.url("/healthz")).await,
        Some(second_der.clone())
    );
    // ...and the connection opened before it still answers.
    assert!(held.healthz().await.starts_with("HTTP/1.1 200"));
    assert_eq!(held.certificate(), first_der);

    // A broken certificate (garbage) and a key of another certificate are refused with a
    // reason, and the second certificate keeps serving.
    gw.replace("not a certificate", &second_key);
    gw.hangup();
    gw.logged("TLS certificate reload refused", 1).await;
    let (_, third_chain, _) = ca.leaf(3);
    gw.replace(&third_chain, &second_key);
    gw.hangup();
    gw.logged("TLS certificate reload refused", 2).await;
    let log = gw.log();
    assert!(log.contains("no PEM certificate"), "{log}");
    assert!(log.contains("is not this certificate's"), "{log}");
    assert!(!log.contains("PRIVATE KEY"), "no key material in the logs");
    assert_eq!(
        served_certificate(&ca, &gw.url("/healthz")).await,
        Some(second_der)
    );
    assert!(held.healthz().await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn every_listener_serves_tls_1_2_and_1_3_and_a_dialect_listener_its_own_certificate() {
    let ca = Ca::new("credgate test CA");
    let (main_der, chain, key) = ca.leaf(1);
    let (akana_der, akana_chain, akana_key) = ca.leaf(2);
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (
        write(dir.path(), "c.pem", &chain),
        write(dir.path(), "k.pem", &key),
    );
    let (akana_cert, akana_key_path) = (
        write(dir.path(), "akana.pem", &akana_chain),
        write(dir.path(), "akana.key", &akana_key),
    );
    let (akana_addr, metrics_addr) = (common::free_addr(), common::free_addr());
    let gw = common::start_with(|s, _| {
        s.tls.cert = Some(cert_path.clone());
        s.tls.key = Some(key_path.clone());
        s.metrics.listen = Some(metrics_addr.clone());
        s.dialects.mount.insert(
            "akana".into(),
            credgate_server::listeners::MountSettings {
                listen: Some(akana_addr.clone()),
                tls_cert: Some(akana_cert.clone()),
                tls_key: Some(akana_key_path.clone()),
                ..Default::default()
            },
        );
    })
    .await;
    let url = gw.url.replace("http://", "https://");
    for version in [
        reqwest::tls::Version::TLS_1_2,
        reqwest::tls::Version::TLS_1_3,
    ] {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
            .min_tls_version(version)
            .max_tls_version(version)
            .build()
            .unwrap();
        let res = client.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{version:?}");
    }
    assert_eq!(
        served_certificate(&ca, &format!("{url}/healthz")).await,
        Some(main_der.clone())
    );
    // The metrics listener shares the main certificate; the Akana listener has its own.
    assert_eq!(
        served_certificate(&ca, &format!("https://{metrics_addr}/metrics")).await,
        Some(main_der)
    );
    let res = https_client(&ca)
        .get(format!("https://{akana_addr}/api/nothing-here"))
        .send()
        .await
        .unwrap();
    let der = res
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(<[u8]>::to_vec));
    assert_eq!(der, Some(akana_der));
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn client_certificates_guard_the_admin_api_and_the_metrics_listener() {
    let (server_ca, client_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let (_, chain, key) = server_ca.leaf(1);
    let (_, client_chain, client_key) = client_ca.leaf(7);
    let (_, stranger_chain, stranger_key) = Ca::new("someone else").leaf(8);
    let metrics_addr = common::free_addr();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key_path, ca_path) = (
        write(dir.path(), "c.pem", &chain),
        write(dir.path(), "k.pem", &key),
        write(dir.path(), "ca.pem", &client_ca.pem()),
    );
    let gw = common::start_with(|s, _| {
        s.tls.cert = Some(cert.clone());
        s.tls.key = Some(key_path.clone());
        s.tls.client_ca = Some(ca_path.clone());
        s.metrics.listen = Some(metrics_addr.clone());
    })
    .await;
    let url = gw.url.replace("http://", "https://");
    let client = |identity: Option<(&str, &str)>| {
        let mut b = reqwest::Client::builder().add_root_certificate(
            reqwest::Certificate::from_pem(server_ca.pem().as_bytes()).unwrap(),
        );
        if let Some((chain, key)) = identity {
            let pem = format!("{chain}{key}");
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let create = |c: reqwest::Client| {
        let url = url.clone();
        async move {
            c.post(format!("{url}/admin/users"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"username": "cert-user", "password": "Tr0ub4dor&3-long"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The admin API wants a certificate the client CA signed (the token alone is not enough).
    assert_eq!(create(client(None)).await, 403);
    assert!(client(Some((&stranger_chain, &stranger_key)))
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_err());
    assert_eq!(
        create(client(Some((&client_chain, &client_key)))).await,
        201
    );
    // Cheap public routes need none.
    let res = client(None)
        .get(format!("{url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The metrics listener refuses the handshake without one.
    let metrics = format!("https://{metrics_addr}/metrics");
    assert!(client(None).get(&metrics).send().await.is_err());
    let res = client(Some((&client_chain, &client_key)))
        .get(&metrics)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("credgate_"));
}

#[tokio::test]
async fn a_bad_certificate_fails_the_start_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&dir);
    settings.tls.cert = Some(write(dir.path(), "c.pem", "garbage"));
    settings.tls.key = Some(write(dir.path(), "k.pem", "garbage"));
    let e = credgate_server::build_state(&settings, Arc::new(credgate_core::SystemClock))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("c.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    // A CA bundle for the gateway's own clients must hold certificates.
    settings.tls.cert = None;
    settings.tls.key = None;
    settings.tls.ca_bundle = Some(write(dir.path(), "bundle.pem", "garbage"));
    let e = credgate_server::build_state(&settings, Arc::new(credgate_core::SystemClock))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("tls.ca_bundle"), "{e}");
    let ca = Ca::new("private PKI");
    settings.tls.ca_bundle = Some(write(dir.path(), "bundle.pem", &ca.pem()));
    assert!(
        credgate_server::build_state(&settings, Arc::new(credgate_core::SystemClock))
            .await
            .is_ok()
    );
}
