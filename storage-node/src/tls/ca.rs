//! A certificate authority kept in files: `tessera dev --tls`'s, and a cluster's (which
//! issues coordinators and nodes their certificates and revokes them).

use super::{CertFiles, Role};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A certificate authority: its certificate and the key it signs with.
pub struct LocalCa {
    /// The CA certificate (what clients trust: `--ca-cert`, `AWS_CA_BUNDLE`).
    pub cert: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn tls_err(e: rcgen::Error) -> io::Error {
    io::Error::other(format!("making a certificate: {e}"))
}

/// Writes `text` to `path` readable by its owner only (keys here, the coordinator's
/// secrets); see [`write_public`].
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    write_atomically(path, text, 0o600)
}

/// Writes `text` to `path` readable by all (certificates, revocation lists) through a
/// temporary file synced and renamed into place, the directory synced after: a reader (a
/// process watching the file) or a crash never sees half a file.
pub fn write_public(path: &Path, text: &str) -> io::Result<()> {
    write_atomically(path, text, 0o644)
}

fn write_atomically(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_os_string());
    let mut tmp_name = name;
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

/// A fresh positive 128-bit serial number.
fn serial() -> rcgen::SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] &= 0x7f;
    b[0] |= 0x01;
    rcgen::SerialNumber::from_slice(&b)
}

/// What a certificate issued here says: `names` (DNS names or IP addresses) as its subject
/// alternative names, `role` as its subject's organizational unit, valid from five minutes
/// ago (clocks differ) for `valid`, for TLS servers and clients.
fn leaf(
    names: &[String],
    role: Option<Role>,
    valid: Duration,
) -> io::Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(names.to_vec()).map_err(tls_err)?;
    let cn = names
        .first()
        .cloned()
        .or(role.map(|r| r.unit().to_string()))
        .unwrap_or_default();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    if let Some(r) = role {
        p.distinguished_name
            .push(rcgen::DnType::OrganizationalUnitName, r.unit());
    }
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::minutes(5);
    p.not_after = now + valid;
    p.serial_number = Some(serial());
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(p)
}

/// A fresh key and a certificate request for `names` (what `tessera node join` sends the
/// cluster CA; the key never leaves the node): `(key PEM, request PEM)`.
pub fn request(names: &[String]) -> io::Result<(String, String)> {
    let kp = rcgen::KeyPair::generate().map_err(tls_err)?;
    let csr = rcgen::CertificateParams::new(names.to_vec())
        .map_err(tls_err)?
        .serialize_request(&kp)
        .map_err(tls_err)?;
    Ok((kp.serialize_pem(), csr.pem().map_err(tls_err)?))
}

impl LocalCa {
    /// The CA in `dir` (`ca.pem`, `ca.key`), made there if it is not yet.
    pub fn load_or_create(dir: &Path, name: &str) -> io::Result<LocalCa> {
        std::fs::create_dir_all(dir)?;
        Self::at_or_create(&dir.join("ca.pem"), &dir.join("ca.key"), name)
    }

    /// The CA whose certificate is `cert` and key `key`, made there if neither exists.
    pub fn at_or_create(cert: &Path, key: &Path, name: &str) -> io::Result<LocalCa> {
        if !cert.exists() && !key.exists() {
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
            p.serial_number = Some(serial());
            let c = p.self_signed(&kp).map_err(tls_err)?;
            write_private(key, &kp.serialize_pem())?;
            write_public(cert, &c.pem())?;
        }
        Self::load(&CertFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })
    }

    /// The CA of the files `ca`.
    pub fn load(ca: &CertFiles) -> io::Result<LocalCa> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", p.display())))
        };
        let kp = rcgen::KeyPair::from_pem(&read(&ca.key)?).map_err(tls_err)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&read(&ca.cert)?, kp).map_err(tls_err)?;
        Ok(LocalCa {
            cert: ca.cert.clone(),
            issuer,
        })
    }

    /// Issues a certificate (and a fresh key) for `names` with `role`, valid for `valid`,
    /// written as `{stem}.pem` and `{stem}.key` in `dir`.
    pub fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[String],
        role: Option<Role>,
        valid: Duration,
    ) -> io::Result<CertFiles> {
        let kp = rcgen::KeyPair::generate().map_err(tls_err)?;
        let c = leaf(names, role, valid)?
            .signed_by(&kp, &self.issuer)
            .map_err(tls_err)?;
        std::fs::create_dir_all(dir)?;
        let files = CertFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
        };
        write_private(&files.key, &kp.serialize_pem())?;
        write_public(&files.cert, &c.pem())?;
        Ok(files)
    }

    /// Signs the certificate request `csr_pem` (PEM): the certificate carries the request's
    /// public key and nothing else of it; names, role and validity are the CA's to say.
    pub fn sign_request(
        &self,
        csr_pem: &str,
        names: &[String],
        role: Role,
        valid: Duration,
    ) -> io::Result<String> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a certificate request: {e}"),
            )
        })?;
        csr.params = leaf(names, Some(role), valid)?;
        Ok(csr.signed_by(&self.issuer).map_err(tls_err)?.pem())
    }

    /// Adds the certificate `cert_pem`'s serial number to the revocation list `crl` (made if
    /// it does not exist), signed by this CA. Returns the serial number (hex).
    pub fn revoke(&self, crl: &Path, cert_pem: &str) -> io::Result<String> {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(format!("not a certificate: {e}")))?;
        let serial = cert.raw_serial().to_vec();
        let (mut listed, number) = read_crl(crl)?;
        if !listed.contains(&serial) {
            listed.push(serial.clone());
        }
        let now = time::OffsetDateTime::now_utc();
        let params = rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + time::Duration::days(3650),
            crl_number: rcgen::SerialNumber::from(number + 1),
            issuing_distribution_point: None,
            revoked_certs: listed
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: rcgen::SerialNumber::from_slice(s),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let list = params.signed_by(&self.issuer).map_err(tls_err)?;
        write_public(crl, &list.pem().map_err(tls_err)?)?;
        Ok(hex::encode(serial))
    }
}

/// How long the certificate (the first in the PEM file `path`) stays valid from now (zero if
/// it has expired).
pub fn valid_for(path: &Path) -> io::Result<Duration> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let der = super::read_certs(path)?.remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| bad(format!("{} is not a certificate: {e}", path.display())))?;
    let left =
        cert.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(Duration::from_secs(left.max(0) as u64))
}

/// The serial numbers a revocation list names and its number (none and 0 if it does not
/// exist).
fn read_crl(path: &Path) -> io::Result<(Vec<Vec<u8>>, u64)> {
    use rustls_pki_types::pem::PemObject;
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let der = rustls_pki_types::CertificateRevocationListDer::from_pem_file(path)
        .map_err(|e| bad(format!("reading {}: {e}", path.display())))?;
    let (_, crl) = x509_parser::parse_x509_crl(&der)
        .map_err(|e| bad(format!("{} is not a revocation list: {e}", path.display())))?;
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    let number = crl
        .crl_number()
        .and_then(|n| u64::try_from(n.clone()).ok())
        .unwrap_or(0);
    Ok((serials, number))
}
