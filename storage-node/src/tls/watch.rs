//! Contents of files, read again when the files change: a listener's or a client's
//! certificate and key ([`Identity`]), a CA and its revocation list ([`super::Trust`]).

use super::{invalid, read_certs, CertFiles};
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are looked at, at most.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A value loaded from some files, loaded again when any of them changes (looked at, at most
/// once a second, when the value is asked for). A change that does not load (a file half
/// written) keeps the last good value and is tried again.
pub struct Watched<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Box<dyn Fn() -> io::Result<T> + Send + Sync>,
    current: RwLock<Arc<T>>,
    /// When the files were last looked at, and their modification times then.
    seen: Mutex<(Instant, Vec<Option<SystemTime>>)>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watched({}, {:?})", self.what, self.paths)
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl<T> Watched<T> {
    /// Loads `load` now (an error if it fails) and again whenever one of `paths` changes.
    pub fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: impl Fn() -> io::Result<T> + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let stamp = stamps(&paths);
        let current = load()?;
        Ok(Watched {
            what,
            paths,
            load: Box::new(load),
            current: RwLock::new(Arc::new(current)),
            seen: Mutex::new((Instant::now(), stamp)),
        })
    }

    /// The current value, loaded again first if the files changed.
    pub fn get(&self) -> Arc<T> {
        self.refresh();
        self.current.read().unwrap().clone()
    }

    fn refresh(&self) {
        let mut seen = self.seen.lock().unwrap();
        if seen.0.elapsed() < LOOK_EVERY {
            return;
        }
        seen.0 = Instant::now();
        let stamp = stamps(&self.paths);
        if stamp == seen.1 {
            return;
        }
        match (self.load)() {
            Ok(v) => {
                *self.current.write().unwrap() = Arc::new(v);
                seen.1 = stamp;
                tracing::info!(what = self.what, files = ?self.paths, "TLS files reloaded");
            }
            Err(e) => {
                tracing::warn!(what = self.what, error = %e, "TLS files changed but do not load; keeping the previous contents")
            }
        }
    }
}

/// Loads a certificate chain and its key.
fn load_pair(files: &CertFiles) -> io::Result<CertifiedKey> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        invalid(format!(
            "reading a private key from {}: {e}",
            files.key.display()
        ))
    })?;
    CertifiedKey::from_der(certs, key, &super::provider()).map_err(|e| {
        invalid(format!(
            "{} and {} do not make a certificate and its key: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })
}

/// The certificate a process presents (as a server, or as a client in mutual TLS), loaded
/// again when its files change.
#[derive(Debug)]
pub struct Identity(Watched<CertifiedKey>);

impl Identity {
    /// The pair `files`; fails if it does not load now.
    pub fn new(files: &CertFiles) -> io::Result<Arc<Identity>> {
        let f = files.clone();
        let paths = vec![files.cert.clone(), files.key.clone()];
        Ok(Arc::new(Identity(Watched::new(
            "certificate",
            paths,
            move || load_pair(&f),
        )?)))
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
