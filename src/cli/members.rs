//! `tessera cluster`: the members of a replicated coordinator group.

use super::global::Global;
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::time::Duration;

/// Membership changes.
#[derive(clap::Subcommand)]
pub enum ClusterCmd {
    /// Adds a coordinator (started with --raft-id ID and empty data) to the group.
    AddCoordinator {
        /// Its Raft id.
        #[arg(long)]
        raft_id: u64,
        /// Its admin URL.
        #[arg(long)]
        admin_url: String,
    },
    /// Removes a coordinator from the group.
    RemoveCoordinator {
        /// Its Raft id.
        #[arg(long)]
        raft_id: u64,
    },
    /// Revokes a certificate of the cluster CA (mutual TLS): adds it to the revocation list
    /// --crl, signed with the CA's key (run where the key is, e.g. the first coordinator's
    /// host). Every process given that file as --cluster-crl refuses the certificate at its
    /// next handshake; copy the file to each host.
    Revoke {
        /// The certificate to revoke (PEM, e.g. a node's node.pem).
        cert: PathBuf,
        /// The cluster CA's certificate.
        #[arg(long)]
        cluster_ca_cert: PathBuf,
        /// The cluster CA's private key.
        #[arg(long)]
        cluster_ca_key: PathBuf,
        /// The revocation list to add it to (made if it does not exist).
        #[arg(long)]
        crl: PathBuf,
    },
}

/// Runs `cmd` on the leader (a follower's `421` names it).
pub async fn run(cmd: ClusterCmd, g: &Global) -> anyhow::Result<i32> {
    if let ClusterCmd::Revoke {
        cert,
        cluster_ca_cert,
        cluster_ca_key,
        crl,
    } = &cmd
    {
        let ca = tessera_node::tls::LocalCa::load(&tessera_node::tls::CertFiles {
            cert: cluster_ca_cert.clone(),
            key: cluster_ca_key.clone(),
        })?;
        let pem =
            std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        let serial = ca.revoke(crl, &pem)?;
        println!("revoked serial {serial}; {} lists it", crl.display());
        return Ok(0);
    }
    let mut admin = g.admin().await?;
    for _ in 0..3 {
        let req = match &cmd {
            ClusterCmd::AddCoordinator { raft_id, admin_url } => admin
                .request(reqwest::Method::POST, "/cluster/coordinators")
                .json(&serde_json::json!({ "raft_id": raft_id, "admin_url": admin_url })),
            ClusterCmd::RemoveCoordinator { raft_id } => admin.request(
                reqwest::Method::DELETE,
                &format!("/cluster/coordinators/{raft_id}"),
            ),
            ClusterCmd::Revoke { .. } => unreachable!("handled above"),
        };
        // Adding a member waits for it to catch up with the log.
        let (status, v) = admin.raw(req, Duration::from_secs(120)).await?;
        if status == reqwest::StatusCode::MISDIRECTED_REQUEST {
            let leader = v["leader_admin_url"]
                .as_str()
                .context("the coordinator is not the leader and knows none")?;
            admin = admin.at(leader);
            continue;
        }
        if status.is_success() {
            println!("ok");
            return Ok(0);
        }
        bail!("{}", v["error"].as_str().unwrap_or("request failed"));
    }
    bail!("the leader moved while the change was being asked for; try again")
}
