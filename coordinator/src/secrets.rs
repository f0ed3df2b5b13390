//! The admin token (operators and the CLI, `Authorization: Bearer` on the admin API) and the
//! cluster secret (internal traffic: nodes registering and heartbeating, the coordinator's
//! shard requests). Both are random, kept in files of mode 0600, and compared in constant
//! time ([`tessera_node::auth`]).

use std::path::Path;

/// File name of the admin token in the coordinator's data dir.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// File name of the cluster secret in the coordinator's data dir.
pub const CLUSTER_SECRET_FILE: &str = "cluster.secret";

/// The two shared secrets of a cluster.
#[derive(Clone)]
pub struct Secrets {
    /// Bearer token for the admin API.
    pub admin_token: String,
    /// Secret every storage node and coordinator of the cluster presents to the others.
    pub cluster_secret: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

impl Secrets {
    /// Reads each secret from its file if given, else from `data_dir`, creating the ones
    /// missing there (first start).
    pub fn resolve(
        data_dir: &Path,
        admin_token_file: Option<&Path>,
        cluster_secret_file: Option<&Path>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let get = |given: Option<&Path>, name: &str| match given {
            Some(p) => read_secret(p),
            None => read_or_create(&data_dir.join(name)),
        };
        Ok(Secrets {
            admin_token: get(admin_token_file, ADMIN_TOKEN_FILE)?,
            cluster_secret: get(cluster_secret_file, CLUSTER_SECRET_FILE)?,
        })
    }

    /// [`Secrets::resolve`] with both secrets in `data_dir`.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        Self::resolve(data_dir, None, None)
    }
}

/// Reads a secret file (surrounding whitespace ignored); an empty one is an error.
pub fn read_secret(path: &Path) -> std::io::Result<String> {
    let s = std::fs::read_to_string(path)?.trim().to_string();
    if s.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(s)
}

fn read_or_create(path: &Path) -> std::io::Result<String> {
    match read_secret(path) {
        Ok(s) => return Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let secret = random_hex(32);
    // Temp file + fsync + rename: a crash never leaves a half-written secret behind.
    tessera_node::tls::ca::write_private(path, &secret)?;
    Ok(secret)
}

/// `n` random bytes from the OS generator, as hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}
