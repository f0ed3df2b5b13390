//! `tessera key`: access keys (create, import, list, delete).

use super::global::Global;
use serde_json::{json, Value};

/// Access key commands.
#[derive(clap::Subcommand)]
pub enum KeyCmd {
    /// Create a key (its secret is printed once).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// Import a key from another store, keeping its id and secret.
    Import {
        /// Access key id.
        #[arg(long)]
        access_key_id: String,
        /// Secret access key.
        #[arg(long)]
        secret_access_key: String,
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// List keys (without secrets).
    List,
    /// Delete a key and its grants.
    Delete {
        /// Access key id.
        id: String,
    },
}

/// Runs `cmd`; prints the coordinator's answer as JSON.
pub async fn run(cmd: KeyCmd, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    let v: Value = match cmd {
        KeyCmd::Create { name } => admin.post("/keys", &json!({ "name": name })).await?,
        KeyCmd::Import {
            access_key_id,
            secret_access_key,
            name,
        } => {
            let body = json!({
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
                "name": name,
            });
            admin.post("/keys/import", &body).await?
        }
        KeyCmd::List => admin.get("/keys").await?,
        KeyCmd::Delete { id } => admin.delete(&format!("/keys/{id}")).await?,
    };
    if !v.is_null() {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(0)
}
