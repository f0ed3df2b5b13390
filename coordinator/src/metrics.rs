//! The coordinator's Prometheus metrics (`GET /metrics` on the admin port, behind the admin
//! token).
//!
//! Counters are recorded where things happen (the edge, the data paths, repair); gauges that
//! describe state (nodes, queues, backlogs, the metadata engine, the Raft group) are read
//! when the metrics are scraped (the caller reads them into [`StateGauges`] for
//! [`Metrics::render`]). Each coordinator has its own registry, so
//! coordinators and nodes sharing a process (`tessera dev`, tests) keep separate counts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tessera_node::metrics::{duration_histogram, HistogramFamily, OpLabels, RequestLabels};

pub use tessera_node::metrics::CONTENT_TYPE;

/// Labels of stripe work.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StripeLabels {
    /// `encoded` (PUT), `read` (GET, healthy: no decoding), `reconstructed` (GET or repair
    /// decoded missing pieces).
    pub kind: String,
}

/// Labels of a shard error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardErrorLabels {
    /// Node id.
    pub node: String,
    /// `read` or `write`.
    pub op: String,
}

/// Labels of a lifecycle action.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `expired` (a current version), `noncurrent`, `delete_marker`, `upload` (aborted),
    /// `locked_kept` (a due version object lock protects).
    pub action: String,
}

/// Labels naming a bucket.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    /// Bucket name.
    pub bucket: String,
}

/// Labels naming a node.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// Node id.
    pub node: String,
    /// The node's zone.
    pub zone: String,
}

/// One coordinator's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Client requests answered, by operation and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Client request durations, until the last byte of the answer was handed to the socket.
    pub request_seconds: HistogramFamily<OpLabels>,
    /// Object bytes received from clients (PUT and UploadPart bodies).
    pub received_bytes: Counter,
    /// Bytes sent to clients (response bodies).
    pub sent_bytes: Counter,
    /// Stripes encoded, read and reconstructed.
    pub stripes: Family<StripeLabels, Counter>,
    /// GET reads that had to reconstruct (a data shard missing, slow or corrupt).
    pub degraded_reads: Counter,
    /// Writes acknowledged with fewer than k+m shards (nodes down or full, a shard write
    /// failed): each left an object (or segment) degraded until repaired. Count them with
    /// [`Metrics::write_short`].
    pub writes_short: Counter,
    /// When the last such write was acknowledged.
    last_short: Mutex<Option<std::time::Instant>>,
    /// Shard reads and writes that failed, by node.
    pub shard_errors: Family<ShardErrorLabels, Counter>,
    /// Shards rebuilt by repair.
    pub repaired_shards: Counter,
    /// Shard bytes written by repair.
    pub repaired_bytes: Counter,
    /// Shards deleted by garbage collection.
    pub collected_shards: Counter,
    /// Shards moved off nodes above the high watermark.
    pub watermark_moves: Counter,
    /// What the lifecycle worker did, by action.
    pub lifecycle_actions: Family<ActionLabels, Counter>,
    gauges: Gauges,
    /// All client requests and those answered with a 5xx, for the console's history.
    totals: (AtomicU64, AtomicU64),
    /// Recent rates, oldest first (see [`Metrics::sample`]).
    history: Mutex<std::collections::VecDeque<Sample>>,
    started_ms: u64,
}

/// Client traffic between two samples, per second.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Sample {
    /// End of the interval, ms since the epoch.
    pub at_ms: u64,
    /// Requests per second.
    pub requests: f64,
    /// Requests answered with a 5xx per second.
    pub errors: f64,
    /// Bytes received per second.
    pub bytes_in: f64,
    /// Bytes sent per second.
    pub bytes_out: f64,
    #[serde(skip)]
    raw: [u64; 4],
}

/// Samples kept: 10 minutes at one per 5 seconds.
const HISTORY: usize = 120;

/// Gauges set from the state when scraped.
#[derive(Default)]
struct Gauges {
    node_up: Family<NodeLabels, Gauge>,
    node_used: Family<NodeLabels, Gauge>,
    node_free: Family<NodeLabels, Gauge>,
    node_capacity: Family<NodeLabels, Gauge>,
    scrub_checked: Family<NodeLabels, Gauge>,
    scrub_corrupt: Family<NodeLabels, Gauge>,
    scrub_passes: Family<NodeLabels, Gauge>,
    bucket_objects: Family<BucketLabels, Gauge>,
    bucket_logical: Family<BucketLabels, Gauge>,
    bucket_stored: Family<BucketLabels, Gauge>,
    bucket_noncurrent: Family<BucketLabels, Gauge>,
    repair_queue: Gauge,
    repair_suspects: Gauge,
    degraded: Gauge,
    unrecoverable: Gauge,
    garbage: Gauge,
    in_flight: Gauge,
    engine: Vec<(&'static str, Gauge)>,
    raft_leader: Gauge,
    raft_term: Gauge,
    raft_applied: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            requests: Default::default(),
            request_seconds: Family::new_with_constructor(duration_histogram),
            received_bytes: Default::default(),
            sent_bytes: Default::default(),
            stripes: Default::default(),
            degraded_reads: Default::default(),
            writes_short: Default::default(),
            last_short: Default::default(),
            shard_errors: Default::default(),
            repaired_shards: Default::default(),
            repaired_bytes: Default::default(),
            collected_shards: Default::default(),
            watermark_moves: Default::default(),
            lifecycle_actions: Default::default(),
            gauges: Gauges {
                engine: tessera_node::store::ROCKSDB_GAUGES
                    .iter()
                    .map(|(n, _, _)| (*n, Gauge::default()))
                    .collect(),
                ..Default::default()
            },
            totals: Default::default(),
            history: Default::default(),
            started_ms: crate::meta::now_ms(),
        };
        let mut r = Registry::with_prefix("tessera");
        r.register(
            "requests",
            "Client requests answered, by S3 operation and HTTP status",
            m.requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Client request durations, to the last byte of the answer",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        r.register_with_unit(
            "received",
            "Object bytes received from clients",
            Unit::Bytes,
            m.received_bytes.clone(),
        );
        r.register_with_unit(
            "sent",
            "Bytes sent to clients",
            Unit::Bytes,
            m.sent_bytes.clone(),
        );
        r.register(
            "stripes",
            "Stripes encoded (PUT), read without decoding (GET) and reconstructed",
            m.stripes.clone(),
        );
        r.register(
            "degraded_reads",
            "GET reads that had to reconstruct missing data pieces",
            m.degraded_reads.clone(),
        );
        r.register(
            "writes_short",
            "Writes acknowledged with fewer than k+m shards (nodes down or full, a shard write failed), each leaving its object degraded until repaired",
            m.writes_short.clone(),
        );
        r.register(
            "shard_errors",
            "Shard reads and writes that failed, by node",
            m.shard_errors.clone(),
        );
        r.register(
            "repaired_shards",
            "Shards rebuilt by repair",
            m.repaired_shards.clone(),
        );
        r.register_with_unit(
            "repaired",
            "Shard bytes written by repair",
            Unit::Bytes,
            m.repaired_bytes.clone(),
        );
        r.register(
            "watermark_moved_shards",
            "Shards moved off nodes above the high watermark",
            m.watermark_moves.clone(),
        );
        r.register(
            "gc_deleted_shards",
            "Shards deleted by garbage collection",
            m.collected_shards.clone(),
        );
        r.register(
            "lifecycle_actions",
            "What lifecycle rules did: versions expired or deleted, uploads aborted, locked versions kept",
            m.lifecycle_actions.clone(),
        );
        let g = &m.gauges;
        r.register(
            "bucket_objects",
            "Keys with a current version, per bucket (counters kept on commit)",
            g.bucket_objects.clone(),
        );
        r.register_with_unit(
            "bucket_logical",
            "Bytes of current versions as clients wrote them, per bucket",
            Unit::Bytes,
            g.bucket_logical.clone(),
        );
        r.register_with_unit(
            "bucket_stored",
            "Bytes every version of the bucket takes on nodes (data and parity)",
            Unit::Bytes,
            g.bucket_stored.clone(),
        );
        r.register_with_unit(
            "bucket_noncurrent",
            "Bytes of noncurrent versions as clients wrote them, per bucket",
            Unit::Bytes,
            g.bucket_noncurrent.clone(),
        );
        r.register("node_up", "1 if the node is up", g.node_up.clone());
        r.register_with_unit(
            "node_used",
            "Bytes of shards on the node",
            Unit::Bytes,
            g.node_used.clone(),
        );
        r.register_with_unit(
            "node_free",
            "Bytes the node can still accept",
            Unit::Bytes,
            g.node_free.clone(),
        );
        r.register_with_unit(
            "node_capacity",
            "The node's configured capacity (0: its whole filesystem)",
            Unit::Bytes,
            g.node_capacity.clone(),
        );
        r.register(
            "scrub_shards_checked",
            "Shards the node's scrub has verified since it started",
            g.scrub_checked.clone(),
        );
        r.register(
            "scrub_corrupt_shards",
            "Corrupt shards the node's scrub has found since it started",
            g.scrub_corrupt.clone(),
        );
        r.register(
            "scrub_passes",
            "Complete scrub passes of the node since it started",
            g.scrub_passes.clone(),
        );
        r.register(
            "repair_queue_objects",
            "Objects queued for repair (read-repair, scrub reports)",
            g.repair_queue.clone(),
        );
        r.register(
            "repair_suspect_shards",
            "Shards found corrupt and not yet rebuilt",
            g.repair_suspects.clone(),
        );
        r.register(
            "objects_degraded",
            "Objects with a lost shard, as of the last repair scan",
            g.degraded.clone(),
        );
        r.register(
            "objects_unrecoverable",
            "Objects with fewer than k healthy shards, as of the last repair scan",
            g.unrecoverable.clone(),
        );
        r.register(
            "gc_backlog_records",
            "Garbage records (shards waiting to be deleted)",
            g.garbage.clone(),
        );
        r.register(
            "writes_in_flight",
            "Writes recorded in flight (PUTs and repairs not yet committed)",
            g.in_flight.clone(),
        );
        let meta = r.sub_registry_with_prefix("metadata");
        for ((name, gauge), (_, _, help)) in
            g.engine.iter().zip(tessera_node::store::ROCKSDB_GAUGES)
        {
            meta.register(*name, help, gauge.clone());
        }
        r.register(
            "raft_is_leader",
            "1 if this coordinator leads its Raft group",
            g.raft_leader.clone(),
        );
        r.register("raft_term", "Current Raft term", g.raft_term.clone());
        r.register(
            "raft_applied_index",
            "Last log index applied to this coordinator's metadata",
            g.raft_applied.clone(),
        );
        *m.registry.lock().unwrap() = r;
        m
    }

    /// Counts one answered client request.
    pub fn request(&self, op: &str, status: u16, seconds: f64) {
        self.totals.0.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.totals.1.fetch_add(1, Ordering::Relaxed);
        }
        tessera_node::metrics::record_request(
            &self.requests,
            &self.request_seconds,
            op,
            status,
            seconds,
        );
    }

    /// Records the traffic since the previous call as rates (the `history` worker calls it
    /// every few seconds).
    pub fn sample(&self) {
        let raw = [
            self.totals.0.load(Ordering::Relaxed),
            self.totals.1.load(Ordering::Relaxed),
            self.received_bytes.get(),
            self.sent_bytes.get(),
        ];
        let at_ms = crate::meta::now_ms();
        let mut h = self.history.lock().unwrap();
        let (prev_at, prev) = h
            .back()
            .map_or((self.started_ms, [0; 4]), |s| (s.at_ms, s.raw));
        let secs = (at_ms.saturating_sub(prev_at) as f64 / 1000.0).max(0.001);
        let rate = |i: usize| raw[i].saturating_sub(prev[i]) as f64 / secs;
        h.push_back(Sample {
            at_ms,
            requests: rate(0),
            errors: rate(1),
            bytes_in: rate(2),
            bytes_out: rate(3),
            raw,
        });
        while h.len() > HISTORY {
            h.pop_front();
        }
    }

    /// The recent samples, oldest first.
    /// Counts a write acknowledged with fewer than k+m shards.
    pub fn write_short(&self) {
        self.writes_short.inc();
        *self.last_short.lock().unwrap() = Some(std::time::Instant::now());
    }

    /// How long ago the last write was acknowledged with fewer than k+m shards, if any was.
    pub fn last_short_write(&self) -> Option<std::time::Duration> {
        self.last_short.lock().unwrap().map(|t| t.elapsed())
    }

    pub fn history(&self) -> Vec<Sample> {
        self.history.lock().unwrap().iter().copied().collect()
    }

    /// Counts `n` stripes of `kind` (see [`StripeLabels`]).
    pub fn stripes(&self, kind: &str, n: u64) {
        self.stripes
            .get_or_create(&StripeLabels {
                kind: kind.to_string(),
            })
            .inc_by(n);
    }

    /// Counts one lifecycle `action` (see [`ActionLabels`]).
    pub fn lifecycle(&self, action: &str) {
        self.lifecycle_actions
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .inc();
    }

    /// Counts a failed shard `op` (`read`, `write`) on `node`.
    pub fn shard_error(&self, node: &str, op: &str) {
        self.shard_errors
            .get_or_create(&ShardErrorLabels {
                node: node.to_string(),
                op: op.to_string(),
            })
            .inc();
    }
}

fn gauge(x: u64) -> i64 {
    x.min(i64::MAX as u64) as i64
}

/// The state the gauges describe, read by the caller when the metrics are scraped.
#[derive(Debug, Default)]
pub struct StateGauges {
    /// Per node: labels, up, used, free, capacity, scrub shards checked, corrupt found and
    /// passes.
    pub nodes: Vec<(NodeLabels, bool, [u64; 6])>,
    /// Repair queue length, suspect shards, degraded and unrecoverable objects.
    pub repair: [u64; 4],
    /// Writes in flight and garbage records, if the metadata answered.
    pub pending_and_garbage: Option<(u64, u64)>,
    /// Per bucket: objects, logical, stored and noncurrent bytes (from the counters).
    pub buckets: Vec<(String, [u64; 4])>,
    /// The metadata engine's own gauges.
    pub engine: Vec<(String, u64)>,
    /// Raft leader, term and applied index, in a replicated group.
    pub raft: Option<(bool, u64, u64)>,
}

impl Metrics {
    /// The metrics in the Prometheus text format, with the gauges set from `state`.
    pub fn render(&self, state: StateGauges) -> String {
        let g = &self.gauges;
        for f in [
            &g.node_up,
            &g.node_used,
            &g.node_free,
            &g.node_capacity,
            &g.scrub_checked,
            &g.scrub_corrupt,
            &g.scrub_passes,
        ] {
            // Nodes removed since the last scrape disappear.
            f.clear();
        }
        for (l, up, [used, free, capacity, checked, corrupt, passes]) in &state.nodes {
            g.node_up.get_or_create(l).set(*up as i64);
            g.node_used.get_or_create(l).set(gauge(*used));
            g.node_free.get_or_create(l).set(gauge(*free));
            g.node_capacity.get_or_create(l).set(gauge(*capacity));
            g.scrub_checked.get_or_create(l).set(gauge(*checked));
            g.scrub_corrupt.get_or_create(l).set(gauge(*corrupt));
            g.scrub_passes.get_or_create(l).set(gauge(*passes));
        }
        let buckets = [
            &g.bucket_objects,
            &g.bucket_logical,
            &g.bucket_stored,
            &g.bucket_noncurrent,
        ];
        for f in buckets {
            f.clear();
        }
        for (name, figures) in &state.buckets {
            let l = BucketLabels {
                bucket: name.clone(),
            };
            for (f, v) in buckets.iter().zip(figures) {
                f.get_or_create(&l).set(gauge(*v));
            }
        }
        let [queue, suspects, degraded, unrecoverable] = state.repair;
        g.repair_queue.set(gauge(queue));
        g.repair_suspects.set(gauge(suspects));
        g.degraded.set(gauge(degraded));
        g.unrecoverable.set(gauge(unrecoverable));
        if let Some((pending, garbage)) = state.pending_and_garbage {
            g.in_flight.set(gauge(pending));
            g.garbage.set(gauge(garbage));
        }
        for (name, v) in state.engine {
            if let Some((_, gauge_)) = g.engine.iter().find(|(n, _)| *n == name) {
                gauge_.set(gauge(v));
            }
        }
        if let Some((leader, term, applied)) = state.raft {
            g.raft_leader.set(leader as i64);
            g.raft_term.set(gauge(term));
            g.raft_applied.set(gauge(applied));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().unwrap())
            .expect("writing to a String");
        out
    }
}
