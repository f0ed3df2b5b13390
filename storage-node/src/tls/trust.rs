//! Whom a process trusts: CA certificates and their revocation list ([`Trust`]), the
//! settings of its outgoing connections ([`ClientTls`]), and the role a cluster certificate
//! names ([`Role`]).

use super::watch::{Identity, Watched};
use super::{invalid, read_certs, CertFiles, ClusterTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a certificate of the cluster CA may do, named by its subject's organizational unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A coordinator: may use every node's shard API and join the Raft group.
    Coordinator,
    /// A storage node: may send heartbeats and reports to coordinators, nothing else.
    Node,
}

impl Role {
    /// The organizational unit naming this role in a certificate's subject.
    pub fn unit(self) -> &'static str {
        match self {
            Role::Coordinator => "tessera-coordinator",
            Role::Node => "tessera-node",
        }
    }
}

/// The role the certificate `der` names, if it names one.
pub fn role_of(der: &[u8]) -> Option<Role> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let unit = cert
        .subject()
        .iter_organizational_unit()
        .find_map(|u| u.as_str().ok())?;
    [Role::Coordinator, Role::Node]
        .into_iter()
        .find(|r| r.unit() == unit)
}

/// The verifiers built from the files.
struct Verifiers {
    client: Arc<dyn ClientCertVerifier>,
    server: Arc<WebPkiServerVerifier>,
}

fn build(cas: &[PathBuf], crl: Option<&Path>) -> io::Result<Verifiers> {
    let mut roots = rustls::RootCertStore::empty();
    for f in cas {
        for c in read_certs(f)? {
            roots
                .add(c)
                .map_err(|e| invalid(format!("a CA certificate in {}: {e}", f.display())))?;
        }
    }
    let roots = Arc::new(roots);
    // A list not written yet (nothing revoked so far) revokes nothing.
    let crls = match crl {
        Some(p) if p.exists() => CertificateRevocationListDer::pem_file_iter(p)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                invalid(format!(
                    "reading a revocation list from {}: {e}",
                    p.display()
                ))
            })?,
        _ => Vec::new(),
    };
    let provider = super::provider();
    let client = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls.clone())
        .build()
        .map_err(|e| invalid(format!("client certificate verifier: {e}")))?;
    let server = WebPkiServerVerifier::builder_with_provider(roots, provider)
        .with_crls(crls)
        .build()
        .map_err(|e| invalid(format!("server certificate verifier: {e}")))?;
    Ok(Verifiers { client, server })
}

/// CA certificates and, optionally, a revocation list: what a certificate must chain to and
/// must not be listed in. The files are read again when they change, so a revocation takes
/// effect at the next handshake.
pub struct Trust(Watched<Verifiers>);

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Trust {
    /// Trusting the CAs of the PEM files `cas`, refusing what the CRL file `crl` lists (once
    /// it exists).
    pub fn new(cas: &[PathBuf], crl: Option<&Path>) -> io::Result<Arc<Trust>> {
        let (c, r) = (cas.to_vec(), crl.map(Path::to_path_buf));
        let mut paths = c.clone();
        paths.extend(r.clone());
        Ok(Arc::new(Trust(Watched::new("trust", paths, move || {
            build(&c, r.as_deref())
        })?)))
    }

    /// A verifier of client certificates for a listener: `mandatory` refuses clients without
    /// one, else they may connect without (and their requests carry no role).
    pub fn clients(self: &Arc<Self>, mandatory: bool) -> Arc<dyn ClientCertVerifier> {
        Arc::new(ClientVerifier {
            trust: self.clone(),
            mandatory,
        })
    }
}

impl ServerCertVerifier for Trust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .get()
            .server
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .server
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .server
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().server.supported_verify_schemes()
    }
}

/// [`Trust`] checking the certificates clients present.
#[derive(Debug)]
struct ClientVerifier {
    trust: Arc<Trust>,
    mandatory: bool,
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.trust
            .0
            .get()
            .client
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .0
            .get()
            .client
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .0
            .get()
            .client
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.0.get().client.supported_verify_schemes()
    }
}

/// What a Tessera process's outgoing connections trust on `https://` URLs, and the
/// certificate they present when asked (mutual TLS inside a cluster). Without CA files,
/// `https://` URLs cannot be verified and fail; there is no fallback to the system's roots.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    config: Option<Arc<rustls::ClientConfig>>,
    /// Whether a client certificate is presented (mutual TLS inside a cluster).
    mutual: bool,
}

impl ClientTls {
    /// Trusting the CA certificates in `ca_files` (none: plain HTTP only), presenting nothing.
    pub fn trusting(ca_files: &[PathBuf]) -> io::Result<ClientTls> {
        match ca_files {
            [] => Ok(ClientTls::default()),
            files => Self::build(files, None, None),
        }
    }

    /// Inside a cluster with mutual TLS: trusting the cluster CA (minus what its revocation
    /// list names) and `extra` CA files (a listener certificate from another CA), presenting
    /// this process's cluster certificate.
    pub fn cluster(c: &ClusterTls, extra: &[PathBuf]) -> io::Result<ClientTls> {
        let mut cas = vec![c.ca.clone()];
        cas.extend(extra.iter().cloned());
        Self::build(&cas, c.crl.as_deref(), Some(&c.identity))
    }

    fn build(
        cas: &[PathBuf],
        crl: Option<&Path>,
        identity: Option<&CertFiles>,
    ) -> io::Result<ClientTls> {
        let b = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Trust::new(cas, crl)?);
        let config = match identity {
            Some(files) => {
                let mut c = b.with_client_cert_resolver(Identity::new(files)?);
                // No resumption: every connection verifies both certificates afresh.
                c.resumption = rustls::client::Resumption::disabled();
                c
            }
            None => b.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Some(Arc::new(config)),
            mutual: identity.is_some(),
        })
    }

    /// Whether these settings present a client certificate (mutual TLS inside a cluster).
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// The settings, if any (none: plain HTTP only).
    pub fn config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.config.clone()
    }

    /// `b` with these settings.
    pub fn apply(&self, b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        match &self.config {
            Some(c) => b.use_preconfigured_tls((**c).clone()),
            None => b,
        }
    }
}
