//! The node's Prometheus metrics (`GET /metrics`, behind the cluster secret like every node
//! route): requests by operation and status with their durations, shard bytes written and
//! read, capacity, scrub progress and the storage engine's stall and compaction figures.
//!
//! Each node has its own registry, so nodes sharing a process (`tessera dev`, tests) keep
//! their own counts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Mutex;

/// Labels of a request: operation and HTTP status (the coordinator's client requests use
/// them too).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// A node's `put_shard`, `put_batch`, `read_shard`, `raw_read`, `delete_shard`, ...; the
    /// coordinator's S3 operation (`PutObject`, ...; `Unknown` for a request refused before
    /// it was routed).
    pub op: String,
    /// HTTP status code (raw reads: 200 or 500).
    pub status: String,
}

/// Labels naming an operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// As in [`RequestLabels::op`].
    pub op: String,
}

/// A family of histograms made by a plain function.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request durations: 0.1 ms to ~13 s.
pub fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// One node's metrics.
pub struct NodeMetrics {
    registry: Mutex<Registry>,
    /// Requests served, by operation and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request durations by operation (until the answer's head is sent).
    pub request_seconds: HistogramFamily<OpLabels>,
    /// Shard bytes stored.
    pub written_bytes: Counter,
    /// Shard bytes sent to readers.
    pub read_bytes: Counter,
    used: Gauge,
    free: Gauge,
    capacity: Gauge,
    shards_scrubbed: Gauge,
    scrubbed_bytes: Gauge,
    scrub_passes: Gauge,
    corrupt_found: Gauge,
    scrub_pass_progress: Gauge,
    engine: Vec<(&'static str, Gauge)>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("tessera_node");
        let m = NodeMetrics {
            registry: Mutex::new(Registry::default()),
            requests: Default::default(),
            request_seconds: Family::new_with_constructor(duration_histogram),
            written_bytes: Default::default(),
            read_bytes: Default::default(),
            used: Default::default(),
            free: Default::default(),
            capacity: Default::default(),
            shards_scrubbed: Default::default(),
            scrubbed_bytes: Default::default(),
            scrub_passes: Default::default(),
            corrupt_found: Default::default(),
            scrub_pass_progress: Default::default(),
            engine: crate::store::ROCKSDB_GAUGES
                .iter()
                .map(|(n, _, _)| (*n, Gauge::default()))
                .collect(),
        };
        r.register("requests", "Shard API requests served", m.requests.clone());
        r.register_with_unit(
            "request_duration",
            "Time to answer a shard API request",
            Unit::Seconds,
            m.request_seconds.clone(),
        );
        r.register_with_unit(
            "shard_written",
            "Shard bytes stored",
            Unit::Bytes,
            m.written_bytes.clone(),
        );
        r.register_with_unit(
            "shard_read",
            "Shard bytes sent to readers",
            Unit::Bytes,
            m.read_bytes.clone(),
        );
        r.register_with_unit(
            "used",
            "Bytes of committed shards",
            Unit::Bytes,
            m.used.clone(),
        );
        r.register_with_unit(
            "free",
            "Bytes this node can still accept",
            Unit::Bytes,
            m.free.clone(),
        );
        r.register_with_unit(
            "capacity",
            "Configured capacity (0: the whole filesystem)",
            Unit::Bytes,
            m.capacity.clone(),
        );
        r.register(
            "scrub_shards_checked",
            "Shards verified by scrub since start",
            m.shards_scrubbed.clone(),
        );
        r.register_with_unit(
            "scrub_checked",
            "Bytes verified by scrub since start",
            Unit::Bytes,
            m.scrubbed_bytes.clone(),
        );
        r.register(
            "scrub_passes",
            "Complete scrub passes since start",
            m.scrub_passes.clone(),
        );
        r.register(
            "scrub_corrupt_shards",
            "Corrupt shards found by scrub since start",
            m.corrupt_found.clone(),
        );
        r.register(
            "scrub_current_pass_shards",
            "Shards verified so far in the current scrub pass",
            m.scrub_pass_progress.clone(),
        );
        for ((name, g), (_, _, help)) in m.engine.iter().zip(crate::store::ROCKSDB_GAUGES) {
            r.register(*name, help, g.clone());
        }
        *m.registry.lock().unwrap() = r;
        m
    }

    /// Counts one answered request.
    pub fn request(&self, op: &str, status: u16, seconds: f64) {
        record_request(&self.requests, &self.request_seconds, op, status, seconds);
    }

    /// The metrics in the Prometheus text format, gauges taken from the heartbeat `hb` and the
    /// store's `engine` gauges.
    pub fn render(&self, hb: &crate::types::Heartbeat, engine: Vec<(&'static str, u64)>) -> String {
        let g = |x: u64| x.min(i64::MAX as u64) as i64;
        self.used.set(g(hb.used));
        self.free.set(g(hb.free));
        self.capacity.set(g(hb.capacity));
        self.shards_scrubbed.set(g(hb.scrub.shards_checked));
        self.scrubbed_bytes.set(g(hb.scrub.bytes_checked));
        self.scrub_passes.set(g(hb.scrub.passes));
        self.corrupt_found.set(g(hb.scrub.corrupt_found));
        self.scrub_pass_progress
            .set(g(hb.scrub.current_pass_checked));
        for (name, v) in engine {
            if let Some((_, gauge)) = self.engine.iter().find(|(n, _)| *n == name) {
                gauge.set(g(v));
            }
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().unwrap())
            .expect("writing to a String");
        out
    }
}

/// Counts one answered request of `op` with `status` and observes its duration.
pub fn record_request(
    requests: &Family<RequestLabels, Counter>,
    durations: &HistogramFamily<OpLabels>,
    op: &str,
    status: u16,
    seconds: f64,
) {
    requests
        .get_or_create(&RequestLabels {
            op: op.to_string(),
            status: status.to_string(),
        })
        .inc();
    durations
        .get_or_create(&OpLabels { op: op.to_string() })
        .observe(seconds);
}

/// The `Content-Type` of [`NodeMetrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
