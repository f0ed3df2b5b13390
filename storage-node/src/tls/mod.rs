//! TLS for Tessera's listeners and clients, with rustls (ring).
//!
//! - [`watch`]: certificates, keys, CAs and revocation lists read from PEM files and read
//!   again (at most once a second, when a connection needs them) after the files change, so
//!   rotation and revocation need no restart; files that do not load (half written) keep the
//!   last good contents in use.
//! - [`trust`]: whom a process trusts: [`ClientTls`] for its outgoing connections (CA files,
//!   optionally a client certificate for mutual TLS), [`Trust`] (a CA plus its revocation
//!   list) for the certificates clients present, and [`Role`], what a cluster certificate
//!   may do.
//! - [`accept`]: a listener's settings ([`server_config`]) and one connection's handshake
//!   ([`accept()`]), with a `400` for plain HTTP on a TLS port instead of a hang.
//! - [`ca`]: a certificate authority kept in a directory ([`LocalCa`]): `tessera dev --tls`'s
//!   and a cluster's (issuing, signing requests, revoking).

pub mod accept;
pub mod ca;
pub mod trust;
pub mod watch;

pub use accept::{accept, server_config, ClientAuth};
pub use ca::LocalCa;
pub use trust::{role_of, ClientTls, Role, Trust};

use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// What a process presents and trusts inside a cluster with mutual TLS: its own certificate
/// from the cluster CA, the CA, and the CA's revocation list if there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    /// This process's certificate and key (issued by the cluster CA).
    pub identity: CertFiles,
    /// The cluster CA's certificate.
    pub ca: PathBuf,
    /// The cluster CA's certificate revocation list (PEM), if any.
    pub crl: Option<PathBuf>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads the certificates of the PEM file `path`.
pub fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("reading certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}
