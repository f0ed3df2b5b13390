//! Counters kept on commit: what the store holds per bucket, per node, per code, in
//! segments and in in-flight and garbage records, so that `/stats`, the console, `tessera
//! status`, metrics and node progress read O(buckets + nodes) records instead of walking
//! every object. [`super::derived`] keeps them in the batch of every change.
//!
//! Keys (kind `s`): `s\0b\0{bucket}` -> [`BucketCounts`], `s\0n\0{node}` -> [`NodeCounts`],
//! `s\0c\0{code}` -> runs stored in that code, `s\0s` -> [`SegmentCounts`], `s\0r` ->
//! [`RecordCounts`], `s\0v` -> the format of the derived records (present once they are
//! kept). Each value is a JSON array of the counts in field order; a counter whose counts
//! all fall to zero is removed.

use super::keys::key;
use super::kv::{Batch, Kv, Step};
use super::records::{ObjectMeta, ShardSet, SEGMENTS};
use super::MetaError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

type Result<T> = std::result::Result<T, MetaError>;

/// Counts per counter, as stored: a fixed width, unused places zero.
const WIDTH: usize = 7;
type Row = [i64; WIDTH];

/// What one bucket holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCounts {
    /// Keys with a current version.
    pub objects: u64,
    /// Their bytes as clients wrote them.
    pub logical_bytes: u64,
    /// Bytes stored on nodes for every version (data and parity; a packed version's share
    /// of its segment).
    pub stored_bytes: u64,
    /// What the same versions would take as full replicas surviving as many losses.
    pub replica_bytes: u64,
    /// Noncurrent versions (not delete markers).
    pub noncurrent_objects: u64,
    /// Their bytes as clients wrote them.
    pub noncurrent_bytes: u64,
    /// Delete markers.
    pub delete_markers: u64,
}

/// What the metadata places on one node (committed objects and segments).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    /// Versions and segments with at least one shard on the node.
    pub objects: u64,
    /// Shards on the node.
    pub shards: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Segments of packed objects, all together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCounts {
    /// Segments committed and not yet collected.
    pub segments: u64,
    /// Objects written into them.
    pub objects: u64,
    /// Object bytes written into them.
    pub bytes: u64,
    /// Objects still live in them.
    pub live_objects: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Bytes the segments take on nodes (data and parity).
    pub stored_bytes: u64,
}

/// In-flight writes and garbage waiting for collection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCounts {
    /// In-flight records.
    pub pending: u64,
    /// Shards they name.
    pub pending_shards: u64,
    /// Garbage records.
    pub garbage: u64,
    /// Shards they name.
    pub garbage_shards: u64,
}

/// Every counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub buckets: BTreeMap<String, BucketCounts>,
    pub nodes: BTreeMap<String, NodeCounts>,
    /// Stored runs (parts, manifests, segments) per code (`k+m`).
    pub codes: BTreeMap<String, u64>,
    pub segments: SegmentCounts,
    pub records: RecordCounts,
}

/// Converts between a counter's struct and its stored row (fields in order).
macro_rules! rows {
    ($($t:ident { $($f:ident),* })*) => {$(
        impl $t {
            fn from_row(r: &[u64]) -> Self {
                let mut it = r.iter().copied();
                $t { $($f: it.next().unwrap_or(0)),* }
            }

            /// Adds `other`'s counts to these.
            pub fn add(&mut self, other: &Self) {
                $( self.$f += other.$f; )*
            }

            #[allow(unused_assignments)]
            fn row(&self) -> Row {
                let (mut row, mut i) = ([0; WIDTH], 0);
                $( row[i] = self.$f as i64; i += 1; )*
                row
            }
        }
    )*};
}

rows! {
    BucketCounts { objects, logical_bytes, stored_bytes, replica_bytes, noncurrent_objects, noncurrent_bytes, delete_markers }
    NodeCounts { objects, shards, bytes }
    SegmentCounts { segments, objects, bytes, live_objects, live_bytes, stored_bytes }
    RecordCounts { pending, pending_shards, garbage, garbage_shards }
}

fn bucket_key(bucket: &str) -> Vec<u8> {
    key(b's', &["b", bucket])
}

fn node_key(node: &str) -> Vec<u8> {
    key(b's', &["n", node])
}

fn segments_key() -> Vec<u8> {
    key(b's', &["s"])
}

fn records_key() -> Vec<u8> {
    key(b's', &["r"])
}

fn code_key(code: &str) -> Vec<u8> {
    key(b's', &["c", code])
}

pub(super) fn format_key() -> Vec<u8> {
    key(b's', &["v"])
}

/// Changes to counters, by counter key.
#[derive(Default)]
pub(super) struct CounterChanges(HashMap<Vec<u8>, Row>);

impl CounterChanges {
    fn add(&mut self, k: Vec<u8>, r: Row, sign: i64) {
        let row = self.0.entry(k).or_insert([0; WIDTH]);
        for (a, b) in row.iter_mut().zip(r) {
            *a += sign * b;
        }
    }

    /// Adds (`sign` 1) or takes away (-1) what an in-flight (`p`) or garbage (`g`) record
    /// of shards `s` contributes.
    pub(super) fn shard_set(&mut self, kind: u8, s: &ShardSet, sign: i64) {
        let n = s.shards.len() as u64;
        let c = if kind == b'p' {
            RecordCounts {
                pending: 1,
                pending_shards: n,
                ..Default::default()
            }
        } else {
            RecordCounts {
                garbage: 1,
                garbage_shards: n,
                ..Default::default()
            }
        };
        self.add(records_key(), c.row(), sign);
    }

    /// Adds (`sign` 1) or takes away (-1) what version or segment `o` contributes
    /// (`noncurrent`: a noncurrent version or delete marker).
    pub(super) fn object(&mut self, o: &ObjectMeta, noncurrent: bool, sign: i64) {
        for ec in o.extents().map(|p| p.ec) {
            let mut r = [0; WIDTH];
            r[0] = 1;
            self.add(code_key(&ec.to_string()), r, sign);
        }
        let mut stored = 0;
        let mut on: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for p in o.extents() {
            let len = p.layout().shard_len();
            stored += len * p.shards.len() as u64;
            for n in p.shards.iter().filter_map(|s| s.node.as_ref()) {
                let e = on.entry(n.as_str()).or_default();
                e.0 += 1;
                e.1 += len;
            }
        }
        for (node, (shards, bytes)) in on {
            let c = NodeCounts {
                objects: 1,
                shards,
                bytes,
            };
            self.add(node_key(node), c.row(), sign);
        }
        if o.bucket == SEGMENTS {
            let f = o.fill.unwrap_or_default();
            let c = SegmentCounts {
                segments: 1,
                objects: f.objects,
                bytes: f.bytes,
                live_objects: f.live_objects,
                live_bytes: f.live_bytes,
                stored_bytes: stored,
            };
            self.add(segments_key(), c.row(), sign);
            return;
        }
        let mut c = BucketCounts::default();
        if o.delete_marker {
            c.delete_markers = 1;
        } else {
            if noncurrent {
                c.noncurrent_objects = 1;
                c.noncurrent_bytes = o.size;
            } else {
                c.objects = 1;
                c.logical_bytes = o.size;
            }
            // A packed object's share of its segment.
            if let Some(p) = &o.packed {
                stored += o.size * p.ec.total() as u64 / p.ec.k as u64;
            }
            c.stored_bytes = stored;
            c.replica_bytes = o.size * (o.ec().map_or(0, |ec| ec.m as u64) + 1);
        }
        self.add(bucket_key(&o.bucket), c.row(), sign);
    }
}

impl CounterChanges {
    /// Adds the changes to the stored counters in `batch`.
    pub(super) fn finish(self, kv: &dyn Kv, batch: &mut Batch) -> Result<()> {
        for (k, change) in self.0 {
            if change.iter().all(|&x| x == 0) {
                continue;
            }
            let mut row: Vec<u64> = match kv.get(&k)? {
                Some(v) => serde_json::from_slice(&v)?,
                None => Vec::new(),
            };
            row.resize(WIDTH, 0);
            for (a, d) in row.iter_mut().zip(change) {
                *a = (*a as i64).saturating_add(d).max(0) as u64;
            }
            store_row(batch, k, row)?;
        }
        Ok(())
    }

    /// The counts as rows by counter key (those not all zero), in key order.
    pub(super) fn rows(self) -> Vec<(Vec<u8>, Vec<u64>)> {
        let mut rows: Vec<_> = self
            .0
            .into_iter()
            .map(|(k, r)| (k, r.iter().map(|&x| x.max(0) as u64).collect::<Vec<_>>()))
            .filter(|(_, r)| r.iter().any(|&x| x != 0))
            .collect();
        rows.sort();
        rows
    }
}

/// Writes counter `k`'s `row` into `batch` (removes it when every count is zero).
pub(super) fn store_row(batch: &mut Batch, k: Vec<u8>, mut row: Vec<u64>) -> Result<()> {
    while row.last() == Some(&0) {
        row.pop();
    }
    if row.is_empty() {
        batch.delete(k);
    } else {
        batch.put(k, serde_json::to_vec(&row)?);
    }
    Ok(())
}

impl Counters {
    /// Sets the counter stored under `k` (a counter key) to `row`.
    fn set(&mut self, k: &[u8], row: &[u64]) {
        let rest = &k[2..];
        let name = |tag: &[u8]| {
            rest.strip_prefix(tag)
                .map(|n| String::from_utf8_lossy(n).into_owned())
        };
        if let Some(b) = name(b"b\0") {
            self.buckets.insert(b, BucketCounts::from_row(row));
        } else if let Some(n) = name(b"n\0") {
            self.nodes.insert(n, NodeCounts::from_row(row));
        } else if let Some(code) = name(b"c\0") {
            self.codes.insert(code, row.first().copied().unwrap_or(0));
        } else if rest == b"s" {
            self.segments = SegmentCounts::from_row(row);
        } else if rest == b"r" {
            self.records = RecordCounts::from_row(row);
        }
    }
}

/// Calls `f` with every record of `kind` (key and value).
pub(super) fn walk_kind(
    kv: &dyn Kv,
    kind: u8,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<()> {
    let prefix = key(kind, &[]);
    let mut err = None;
    kv.walk(&prefix, &mut |k, v| {
        if !k.starts_with(&prefix) {
            return Ok(Step::Stop);
        }
        if let Err(e) = f(k, v) {
            err = Some(e);
            return Ok(Step::Stop);
        }
        Ok(Step::Next)
    })?;
    err.map_or(Ok(()), Err)
}

/// The counters as kept.
pub fn read(kv: &dyn Kv) -> Result<Counters> {
    let mut c = Counters::default();
    let format = format_key();
    walk_kind(kv, b's', |k, v| {
        if k != format {
            c.set(k, &serde_json::from_slice::<Vec<u64>>(v)?);
        }
        Ok(())
    })?;
    Ok(c)
}

/// Counters set from `rows` (by counter key).
pub(super) fn from_rows(rows: Vec<(Vec<u8>, Vec<u64>)>) -> Counters {
    let mut c = Counters::default();
    for (k, row) in rows {
        c.set(&k, &row);
    }
    c
}
