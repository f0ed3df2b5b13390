//! TLS for Tessera's listeners and clients, with rustls (ring): certificates from PEM files,
//! reloaded when the files change, a clear refusal of plain HTTP on a TLS port, client trust
//! from CA files, and a small certificate authority for local clusters (`tessera dev --tls`).
//!
//! - [`server_config`]: a listener's TLS settings from a certificate and key file; the files
//!   are looked at again at most once a second when a client connects, and a changed pair is
//!   served from the next handshake on (rotation without a restart). A pair that does not
//!   load keeps the previous one serving and is logged.
//! - [`accept`]: one connection's handshake, or, when the client spoke plain HTTP, a `400`
//!   that says to use `https://` (not a hang).
//! - [`client_config`]: a client's settings trusting the CAs in the given PEM files;
//!   [`ClientTls`] applies them to an HTTP client.
//! - [`LocalCa`]: a CA kept in a directory, issuing server certificates for loopback.

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The crypto every TLS configuration here uses: *ring* (it builds with the Rust toolchain
/// alone; rustls marks it deprecated because it offers no post-quantum key exchange, which
/// the aws-lc backend would add at the cost of a C/CMake build).
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads the CA certificates of the PEM file `path`.
pub fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}

/// Loads the pair `files` into what a handshake presents.
fn load(files: &CertFiles) -> io::Result<Arc<CertifiedKey>> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        invalid(format!(
            "reading a private key from {}: {e}",
            files.key.display()
        ))
    })?;
    let ck = CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        invalid(format!(
            "{} and {} do not make a certificate and its key: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    Ok(Arc::new(ck))
}

fn modified(files: &CertFiles) -> FileTimes {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&files.cert), m(&files.key))
}

/// Modification times of a certificate file and its key file.
type FileTimes = (Option<SystemTime>, Option<SystemTime>);

/// The certificate a listener serves, loaded again when its files change.
#[derive(Debug)]
struct Reloading {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// When the files were last looked at, and their modification times then.
    seen: Mutex<(Instant, FileTimes)>,
}

impl Reloading {
    fn new(files: CertFiles) -> io::Result<Reloading> {
        let stamp = modified(&files);
        let current = load(&files)?;
        Ok(Reloading {
            files,
            current: RwLock::new(current),
            seen: Mutex::new((Instant::now(), stamp)),
        })
    }

    /// Loads the files again if they changed since last looked at (at most once a second).
    fn refresh(&self) {
        let mut seen = self.seen.lock().unwrap();
        if seen.0.elapsed() < Duration::from_secs(1) {
            return;
        }
        seen.0 = Instant::now();
        let stamp = modified(&self.files);
        if stamp == seen.1 {
            return;
        }
        match load(&self.files) {
            Ok(ck) => {
                *self.current.write().unwrap() = ck;
                seen.1 = stamp;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            // Half-written files (a rotation in progress) are tried again next time.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate files changed but do not load; serving the previous pair")
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.read().unwrap().clone())
    }
}

/// A listener's TLS settings: HTTP/1.1 over TLS 1.2 or 1.3 with the pair `files`, reloaded
/// when the files change. Fails if the files do not load now.
pub fn server_config(files: &CertFiles) -> io::Result<Arc<rustls::ServerConfig>> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Reloading::new(files.clone())?));
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// A client's TLS settings trusting the CA certificates in `ca_files` (and nothing else).
pub fn client_config(ca_files: &[PathBuf]) -> io::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for f in ca_files {
        for c in read_certs(f)? {
            roots
                .add(c)
                .map_err(|e| invalid(format!("a CA certificate in {}: {e}", f.display())))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// What a Tessera process's HTTP clients trust when they connect to `https://` URLs (other
/// coordinators' admin listeners, nodes' heartbeats and reports to coordinators): the CAs of
/// `--ca-cert` files. Without any, `https://` URLs cannot be verified and fail.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    config: Option<rustls::ClientConfig>,
}

impl ClientTls {
    /// Trusting the CA certificates in `ca_files` (none: plain HTTP only).
    pub fn trusting(ca_files: &[PathBuf]) -> io::Result<ClientTls> {
        Ok(ClientTls {
            config: match ca_files {
                [] => None,
                files => Some(client_config(files)?),
            },
        })
    }

    /// `b` with these settings.
    pub fn apply(&self, b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match &self.config {
            Some(c) => b.use_preconfigured_tls(c.clone()),
            None => b,
        }
    }
}

/// What a plain-HTTP client on a TLS port reads before the connection closes.
const SPEAK_TLS: &str = "This port speaks HTTPS (TLS): use an https:// URL.\n";

/// Accepts one TLS connection on `stream` within `deadline`. A client that starts with
/// anything but a TLS handshake record (plain HTTP) gets a `400` saying to use `https://`
/// and `Ok(None)`.
pub async fn accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    deadline: Duration,
) -> io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(deadline, stream.peek(&mut first))
        .await
        .map_err(|_| timed_out())??;
    // 0x16: a TLS handshake record.
    if n == 1 && first[0] != 0x16 {
        let mut stream = stream;
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{SPEAK_TLS}",
            SPEAK_TLS.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    let tls = tokio::time::timeout(deadline, acceptor.accept(stream))
        .await
        .map_err(|_| timed_out())??;
    Ok(Some(tls))
}

/// A certificate authority kept as `ca.pem` and `ca.key` in a directory, made on first use:
/// what `tessera dev --tls` signs its listeners' certificates with.
pub struct LocalCa {
    /// The CA certificate (what clients trust: `--ca-cert`, `AWS_CA_BUNDLE`).
    pub cert: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn tls_err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("making a certificate: {e}"))
}

/// Writes `text` to `path` readable by its owner only.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    f.sync_all()
}

impl LocalCa {
    /// The CA in `dir`, made there (`ca.pem`, `ca.key`) if it is not yet.
    pub fn load_or_create(dir: &Path, name: &str) -> io::Result<LocalCa> {
        std::fs::create_dir_all(dir)?;
        let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
        if !cert.exists() || !key.exists() {
            let kp = rcgen::KeyPair::generate().map_err(tls_err)?;
            let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
            p.distinguished_name
                .push(rcgen::DnType::CommonName, name.to_string());
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            p.not_before = rcgen::date_time_ymd(2024, 1, 1);
            p.not_after = rcgen::date_time_ymd(2100, 1, 1);
            let c = p.self_signed(&kp).map_err(tls_err)?;
            write_private(&key, &kp.serialize_pem())?;
            std::fs::write(&cert, c.pem())?;
        }
        let kp = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&key)?).map_err(tls_err)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(&cert)?, kp)
            .map_err(tls_err)?;
        Ok(LocalCa { cert, issuer })
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses) valid for `valid`,
    /// written as `{stem}.pem` and `{stem}.key` in `dir`.
    pub fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[String],
        valid: Duration,
    ) -> io::Result<CertFiles> {
        let kp = rcgen::KeyPair::generate().map_err(tls_err)?;
        let mut p = rcgen::CertificateParams::new(names.to_vec()).map_err(tls_err)?;
        p.distinguished_name.push(
            rcgen::DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::minutes(5);
        p.not_after = now + valid;
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let c = p.signed_by(&kp, &self.issuer).map_err(tls_err)?;
        let files = CertFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        write_private(&files.key, &kp.serialize_pem())?;
        std::fs::write(&files.cert, c.pem())?;
        Ok(files)
    }
}
