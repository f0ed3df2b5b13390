//! The coordinator's configuration: one struct, every field documented, its defaults in
//! [`CoordinatorConfig::new`] (the command line shows them from there).

use crate::names::EcSpec;
use crate::secrets::Secrets;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the coordinator is configured with.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Directory of the metadata database.
    pub data_dir: PathBuf,
    /// What the metadata's storage engine may hold in memory (block cache, memtables).
    pub engine: crate::meta::rocks::EngineLimits,
    /// Erasure parameters for buckets created without `x-tessera-ec`.
    pub default_ec: EcSpec,
    /// Shards per stripe that must be durable before a PUT is acknowledged (clamped to
    /// `k..=k+m` per object); `None` means `k + 1`.
    pub write_quorum: Option<u16>,
    /// A node with no heartbeat for this long is down.
    pub heartbeat_timeout: Duration,
    /// Garbage (shards of deleted, replaced or failed versions) is deleted from nodes once it
    /// is this old, so reads that started before a delete or overwrite can finish.
    /// Version journal objects older than this are merged into larger ones.
    pub journal_merge_after: Duration,
    pub gc_grace: Duration,
    /// How often the garbage collector looks for work.
    pub gc_interval: Duration,
    /// How often every node's shards are checked against the metadata for orphans.
    pub orphan_scan_interval: Duration,
    /// Bytes of each shard per stripe (stripe size = k x piece).
    pub piece_size: u64,
    /// A node that accepts no shard bytes for this long is dropped from a PUT.
    pub shard_write_timeout: Duration,
    /// Longest wait for one shard read before trying another shard.
    pub shard_read_timeout: Duration,
    /// If a stripe's reads are not all back after this long, one more shard is asked for.
    pub read_hedge_after: Duration,
    /// Stripes fetched ahead of the one being sent to a GET client.
    pub read_ahead: usize,
    /// GET and repair read shards through raw reads (the node sends the stored chunks with
    /// `sendfile`, the coordinator verifies them) instead of the HTTP read the node verifies.
    pub raw_reads: bool,
    /// A shard on a node down for this long is lost and gets rebuilt elsewhere.
    pub repair_grace: Duration,
    /// A node that stopped gracefully (its last heartbeat said so) is down but counts as
    /// failed for the repair grace only after this long (a planned restart or upgrade).
    pub stopped_grace: Duration,
    /// Nodes with less free space than this take new shards only when too few others have
    /// more (and count as full in `/cluster`, `/health/ready` and `tessera status`).
    pub min_free: u64,
    /// A node whose used fraction (`used / (used + free)` as it reports them) passes this has
    /// shards moved off it until it is five points below (1 = never).
    pub high_watermark: f64,
    /// Whether the coordinator repairs in the background (read-repair queue, periodic scans).
    pub background_repair: bool,
    /// Time between the starts of background scans of all objects.
    pub repair_interval: Duration,
    /// Objects a second the background full scan looks at, at most (0 = no limit); an object
    /// whose shards it asks the nodes about counts once per shard.
    pub repair_scan_rate: u64,
    /// The budget in bytes per second that repair, rebalance and recode share (0 =
    /// unlimited); changeable at run time through the admin API.
    pub maintenance_rate: u64,
    /// Rebalance in the background whenever used fractions spread wider than the default
    /// band (off by default: `tessera rebalance` runs it on demand).
    pub auto_rebalance: bool,
    /// Objects smaller than this (by Content-Length) that do not name their own `k+m` are
    /// stored as `1+m` (m+1 full replicas: the same number of losses survived) instead of
    /// packed or erasure coded; 0 (the default) turns this off. A bucket may set its own.
    pub replicate_below: u64,
    /// Objects smaller than this (by Content-Length) that do not name their own `k+m` are
    /// packed into shared segments ([`crate::data::pack`]); 0 turns packing off.
    pub pack_below: u64,
    /// Longest time an open segment waits for more small objects before it is written.
    pub pack_flush: Duration,
    /// Segments whose live fraction of bytes falls below this are compacted.
    pub compact_below: f64,
    /// How often the leader looks for segments to compact (0: only `tessera compact`).
    pub compact_interval: Duration,
    /// How far this coordinator's clock reads ahead of the system clock (for tests: a
    /// coordinator whose clock was set forward; see [`crate::meta::Clock`]).
    pub clock_ahead: Duration,
    /// How long a day lasts for lifecycle rules (a day; shorter only for tests, like the
    /// reference gateway's debug interval).
    pub lifecycle_day: Duration,
    /// Rebuild metadata from the nodes' shard headers at startup (once the nodes have had a
    /// heartbeat timeout to register).
    pub rebuild_metadata: bool,
    /// Unsigned client requests get full access (local experiments only).
    pub anonymous: bool,
    /// Base domain for virtual-hosted-style requests (`bucket.DOMAIN`); path style always
    /// works.
    pub domain: Option<String>,
    /// Admin token and cluster secret; `None` reads or creates them in `data_dir`.
    pub secrets: Option<Secrets>,
    /// A client connection that has not sent a complete request head within this long is
    /// closed.
    pub header_read_timeout: Duration,
    /// A request body that delivers no bytes for this long fails (RequestTimeout) and the
    /// PUT releases its node connections.
    pub body_idle_timeout: Duration,
    /// Client connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Multipart uploads neither completed nor aborted this long after they were created
    /// are aborted and their parts collected.
    pub multipart_expiry: Duration,
    /// Largest file a browser form upload (POST object) or an unsigned upload without a
    /// length may carry: such a body is gathered in memory before it is stored, so this
    /// bounds what one such request can take.
    pub post_max_size: u64,
    /// Smallest size of a multipart part other than the last (S3: 5 MiB).
    pub min_part_size: u64,
    /// Replicated metadata: this coordinator is a member of a Raft group (`None`: a single
    /// coordinator with its own RocksDB).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// TLS on the client and admin listeners: the certificate and key they serve (reloaded
    /// when the files change); `None`: plain HTTP.
    pub tls: Option<tessera_node::tls::CertFiles>,
    /// What this coordinator trusts when it connects to `https://` URLs (the other
    /// members of a replicated group; inside a cluster with mutual TLS, the nodes too, and it
    /// presents its cluster certificate).
    pub client_tls: tessera_node::tls::ClientTls,
    /// Mutual TLS inside the cluster (`--cluster-tls`): this coordinator's certificate from
    /// the cluster CA, the CA, its revocation list. Nodes' traffic must then come with a
    /// node certificate and Raft traffic with a coordinator certificate.
    pub cluster_tls: Option<tessera_node::tls::ClusterTls>,
    /// The cluster CA's certificate and key, to issue nodes their certificates
    /// (`POST /cluster/certificates`) and this coordinator its own again before it expires.
    pub cluster_ca: Option<tessera_node::tls::CertFiles>,
    /// The names (DNS names, addresses) this coordinator's cluster certificate is issued for.
    pub cluster_names: Vec<String>,
}

impl CoordinatorConfig {
    /// Defaults for a coordinator keeping metadata in `data_dir`.
    pub fn new(data_dir: PathBuf) -> Self {
        CoordinatorConfig {
            data_dir,
            engine: Default::default(),
            default_ec: EcSpec { k: 4, m: 2 },
            write_quorum: None,
            heartbeat_timeout: Duration::from_secs(5),
            gc_grace: Duration::from_secs(15),
            journal_merge_after: Duration::from_secs(60),
            gc_interval: Duration::from_secs(2),
            orphan_scan_interval: Duration::from_secs(600),
            piece_size: 256 << 10,
            shard_write_timeout: Duration::from_secs(30),
            shard_read_timeout: Duration::from_secs(10),
            read_hedge_after: Duration::from_millis(500),
            read_ahead: 4,
            raw_reads: true,
            repair_grace: Duration::from_secs(60),
            stopped_grace: Duration::from_secs(600),
            min_free: 1 << 30,
            high_watermark: 0.90,
            background_repair: true,
            repair_interval: Duration::from_secs(300),
            repair_scan_rate: 1000,
            maintenance_rate: 64 << 20,
            auto_rebalance: false,
            rebuild_metadata: false,
            replicate_below: 0,
            pack_below: 128 << 10,
            pack_flush: Duration::from_millis(5),
            compact_below: 0.5,
            compact_interval: Duration::from_secs(600),
            lifecycle_day: Duration::from_secs(24 * 3600),
            clock_ahead: Duration::ZERO,
            anonymous: false,
            domain: None,
            secrets: None,
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
            multipart_expiry: Duration::from_secs(7 * 24 * 3600),
            post_max_size: 64 << 20,
            min_part_size: 5 << 20,
            cluster: None,
            tls: None,
            client_tls: Default::default(),
            cluster_tls: None,
            cluster_ca: None,
            cluster_names: Vec::new(),
        }
    }

    /// The URL scheme of the client and admin listeners: `https` with `tls` or inside a
    /// cluster with mutual TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() || self.cluster_tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Write quorum for `ec`.
    pub fn quorum(&self, ec: EcSpec) -> usize {
        let w = self.write_quorum.unwrap_or(ec.k + 1);
        w.clamp(ec.k, ec.k + ec.m) as usize
    }
}
