//! What every command shares: the global flags (`--coordinator`, `--admin-token-file`,
//! `--json`, `--ca-cert`, in any position) and waiting for Ctrl-C or SIGTERM.

use super::client::Admin;
use std::path::PathBuf;

/// The local dev cluster's admin URL, where operator commands go by default.
pub const LOCAL_ADMIN: &str = "http://127.0.0.1:7071";

/// Flags every command takes, in any position.
#[derive(clap::Args)]
pub struct Global {
    /// Coordinator admin URL; every coordinator of a replicated group, comma-separated.
    #[arg(long, global = true, env = "TESSERA_COORDINATOR", default_value = LOCAL_ADMIN)]
    pub coordinator: String,
    /// File holding the admin token (operator commands: else env TESSERA_ADMIN_TOKEN, else
    /// ./tessera-data/coordinator/admin.token; `tessera coordinator`: default
    /// DATA_DIR/admin.token, created on first start).
    #[arg(long, global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// CA certificate (PEM) to trust for `https://` URLs: coordinators' admin and client
    /// listeners (operator commands, `tessera bench`, nodes' heartbeats, a coordinator's
    /// peers); repeat for several. Without it, `https://` URLs cannot be verified.
    #[arg(long, global = true, env = "TESSERA_CA_CERT", value_delimiter = ',')]
    pub ca_cert: Vec<PathBuf>,
}

impl Global {
    /// The admin API of the coordinator (the group's leader) these flags name.
    pub async fn admin(&self) -> anyhow::Result<Admin> {
        Admin::connect(
            &self.coordinator,
            self.admin_token_file.as_deref(),
            &self.client_tls()?,
        )
        .await
    }

    /// What this process's clients trust on `https://` URLs (`--ca-cert`).
    pub fn client_tls(&self) -> anyhow::Result<tessera_node::tls::ClientTls> {
        Ok(tessera_node::tls::ClientTls::trusting(&self.ca_cert)?)
    }
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM (what `systemctl stop` and `kill` send): the one
/// way a serving command learns to stop gracefully.
pub async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops gracefully");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
    }
}
