//! What every command shares: the global flags (`--coordinator`, `--admin-token-file`,
//! `--json`, in any position) and waiting for Ctrl-C.

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
}

impl Global {
    /// The admin API of the coordinator (the group's leader) these flags name.
    pub async fn admin(&self) -> anyhow::Result<Admin> {
        Admin::connect(&self.coordinator, self.admin_token_file.as_deref()).await
    }
}

/// Waits for Ctrl-C (or SIGINT).
pub async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}
