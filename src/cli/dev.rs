//! `tessera dev`: a local cluster (one coordinator, or a replicated group, and N storage
//! nodes) in one process, with an access key and the lines to paste to use it.

use bytesize::ByteSize;
use humantime::Duration as Human;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera::local::{LocalCluster, LocalClusterConfig};
use tessera_coordinator::{CoordinatorConfig, EcSpec};
use tessera_node::tls::{CertFiles, ClientTls, ClusterTls, LocalCa, Role};

/// The coordinator defaults the flags show.
fn d() -> CoordinatorConfig {
    CoordinatorConfig::new(PathBuf::new())
}

/// `tessera dev` options.
#[derive(clap::Args)]
pub struct DevArgs {
    /// Number of storage nodes.
    #[arg(long, default_value_t = 6)]
    nodes: usize,
    /// Default erasure code K+M.
    #[arg(long, default_value_t = d().default_ec)]
    ec: EcSpec,
    /// Root data directory (persistent across restarts).
    #[arg(long, default_value = "./tessera-data")]
    data_dir: PathBuf,
    /// Client API address.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Admin API address.
    #[arg(long, default_value = "127.0.0.1:7071")]
    admin_listen: SocketAddr,
    /// Objects smaller than this are stored as m+1 replicas (0 = never).
    #[arg(long, default_value_t = ByteSize(d().replicate_below))]
    replicate_below: ByteSize,
    /// Objects smaller than this are packed into shared segments (0 = never).
    #[arg(long, default_value_t = ByteSize(d().pack_below))]
    pack_below: ByteSize,
    /// Unsigned requests get full access (local experiments only).
    #[arg(long)]
    anonymous: bool,
    /// How long a day lasts for lifecycle rules (for tests and benchmarks).
    #[arg(long, default_value_t = d().lifecycle_day.into())]
    lifecycle_day: Human,
    /// Coordinators: more than one form a replicated group (client ports 7070, 7072,
    /// 7074..., admin ports 7071, 7073, 7075... by default).
    #[arg(long, default_value_t = 1)]
    coordinators: usize,
    /// Serve the client and admin APIs over TLS with certificates from a CA of its own
    /// (DATA_DIR/tls/ca.pem, made on first use; the banner prints the line that makes awscli,
    /// boto3 and `tessera` commands trust it).
    #[arg(long)]
    tls: bool,
    /// Mutual TLS inside the cluster too: the coordinator and every node get certificates of
    /// the same CA, and nodes serve only the coordinator's (the listeners serve HTTPS).
    #[arg(long)]
    cluster_tls: bool,
}

/// Runs the cluster until Ctrl-C or SIGTERM.
pub async fn run(a: DevArgs) -> anyhow::Result<i32> {
    let (nodes, ec) = (a.nodes, a.ec);
    anyhow::ensure!(
        nodes >= ec.total(),
        "--ec {ec} needs at least {} nodes (--nodes {nodes})",
        ec.total()
    );
    let mut config = LocalClusterConfig::new(nodes, ec, &a.data_dir);
    config.listen = a.listen;
    config.admin_listen = a.admin_listen;
    config.coordinator.replicate_below = a.replicate_below.0;
    config.coordinator.pack_below = a.pack_below.0;
    config.coordinator.anonymous = a.anonymous;
    config.coordinator.lifecycle_day = a.lifecycle_day.into();
    anyhow::ensure!(
        !config.coordinator.lifecycle_day.is_zero(),
        "--lifecycle-day must be longer than zero"
    );
    config.coordinators = a.coordinators.max(1);
    let ca = if a.tls || a.cluster_tls {
        let dir = a.data_dir.join("tls");
        let ca = LocalCa::load_or_create(&dir, "Tessera dev CA")?;
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        for ip in [a.listen.ip(), a.admin_listen.ip()] {
            if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                names.push(ip.to_string());
            }
        }
        // Fresh certificates each start: a year is plenty for a local cluster.
        let year = Duration::from_secs(365 * 24 * 3600);
        if a.tls {
            config.coordinator.tls = Some(ca.issue(&dir, "server", &names, None, year)?);
        }
        config.coordinator.client_tls = ClientTls::trusting(std::slice::from_ref(&ca.cert))?;
        if a.cluster_tls {
            let identity = ca.issue(&dir, "coordinator", &names, Some(Role::Coordinator), year)?;
            let ct = ClusterTls {
                identity,
                ca: ca.cert.clone(),
                crl: None,
            };
            config.coordinator.client_tls = ClientTls::cluster(&ct, &[])?;
            config.coordinator.cluster_tls = Some(ct);
            config.coordinator.cluster_ca = Some(CertFiles {
                cert: ca.cert.clone(),
                key: dir.join("ca.key"),
            });
        }
        Some(ca.cert)
    } else {
        None
    };
    let cluster = LocalCluster::start(config).await?;
    let url = cluster.endpoint();
    let key = cluster.dev_key().await?;
    println!(
        "tessera dev: coordinator {url} (admin {}), {nodes} nodes, ec {ec}, data in {}",
        cluster.admin_endpoint(),
        a.data_dir.display()
    );
    if a.coordinators > 1 {
        let list = |v: &[SocketAddr]| {
            v.iter()
                .map(|a| cluster.url_of(*a))
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "  {} replicated coordinators: clients {}, admin {}",
            a.coordinators,
            list(&cluster.apis),
            list(&cluster.admins)
        );
    }
    let trust = match &ca {
        Some(ca) => {
            let ca = std::path::absolute(ca)?;
            format!(
                " AWS_CA_BUNDLE={0} CURL_CA_BUNDLE={0} TESSERA_CA_CERT={0} TESSERA_COORDINATOR={1}",
                ca.display(),
                cluster.admin_endpoint()
            )
        }
        None => String::new(),
    };
    println!(
        "\nPaste this to use awscli, boto3 or rclone:\n  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION=us-east-1{trust}\n",
        key.0, key.1
    );
    if let Some(ca) = &ca {
        println!(
            "TLS: certificates signed by {} (awscli: --ca-bundle, boto3: verify=, curl: --cacert)\n",
            ca.display()
        );
    }
    println!("{}", try_lines(&url));
    println!("Ctrl-C stops the cluster (SIGTERM too).");
    super::global::stop_signal().await;
    // Logged, not printed: stdout may be a pipe its reader has closed by now.
    tracing::info!("stopping the local cluster");
    cluster.shutdown().await;
    Ok(0)
}

/// The commands the banner suggests. curl signs with `--aws-sigv4` but (before 8.x) does not
/// add the payload hash header SigV4 needs, so the line spells it out.
pub fn try_lines(url: &str) -> String {
    format!(
        "try:\n  aws s3 mb s3://demo\n  aws s3 cp ./README.md s3://demo/readme.md\n  aws s3 ls s3://demo\n  curl --aws-sigv4 aws:amz:us-east-1:s3 --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' {url}/demo/readme.md"
    )
}
