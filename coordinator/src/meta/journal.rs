//! The version journal: what a rebuild from the nodes alone needs to give a versioned
//! bucket back its history, which the shards cannot say because it is decided at commit,
//! after they were written.
//!
//! A shard says which stored version it belongs to, never its place in its key's history:
//! the commit number (`seq`, which is also the S3 version id), whether it is the `null`
//! version, delete markers (which have no bytes at all), versions deleted for good, and the
//! bucket's versioning state. Every operation that decides one of those adds an [`JournalEntry`] to
//! the journal in its own batch (`v\0{n}`, in the order of the replicated log), and the
//! leader's `journal` worker writes the waiting entries to the nodes as an erasure-coded
//! object of the reserved bucket [`JOURNAL`] and then drops them here
//! ([`MetaStore::journal_page`], [`MetaStore::drop_journal`]). A rebuild reads every journal
//! object back and restores each key's versions in commit order with their ids
//! ([`MetaStore::restore_key`]).
//!
//! What a rebuild cannot know is what was journaled here and not yet written out when the
//! metadata was lost (at most one worker interval, see `maintenance/journal.rs`).

use super::clock::now_ms;
use super::keys::{key, seq_key, version_key};
use super::kv::{Batch, Step};
use super::records::{BucketMeta, ObjectMeta};
use super::settings::{ObjectLock, Retention, ENABLED};
use super::store::{MetaStore, Release, Result};
use crate::names::EcSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tessera_node::ObjectVersion;

/// The reserved bucket the journal is written to on the nodes, one object per batch of
/// entries named by its first and last entry number. Like [`super::SEGMENTS`], no client
/// can name it and no bucket record exists for it.
pub const JOURNAL: &str = ".journal";

/// Whether `bucket` is one of the reserved buckets (no record, no client access).
pub fn is_reserved(bucket: &str) -> bool {
    bucket.starts_with('.')
}

/// One decision about a versioned bucket's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "e")]
pub enum JournalEntry {
    /// Stored version `v` of `b`/`k` is the `seq`th commit (or a rewrite of it: recode
    /// stores the same version anew), the key's `null` version if `null`; a delete marker
    /// (no bytes) if `marker`.
    #[serde(rename = "v")]
    Version {
        b: String,
        k: String,
        seq: u64,
        v: ObjectVersion,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        null: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        marker: bool,
    },
    /// Stored version `v` of `b`/`k` (or delete marker) was deleted for good.
    #[serde(rename = "x")]
    Gone {
        b: String,
        k: String,
        v: ObjectVersion,
    },
    /// Stored version `v` of `b`/`k` has this retention, legal hold and tags from now on
    /// (set after its shards were written).
    #[serde(rename = "a")]
    Attrs {
        b: String,
        k: String,
        v: ObjectVersion,
        #[serde(default)]
        retention: Option<Retention>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        legal_hold: bool,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    /// Bucket `b`'s versioning state and object lock from `at` (ms) on; both `None`: not
    /// versioned (or deleted).
    #[serde(rename = "b")]
    Bucket {
        b: String,
        #[serde(default)]
        versioning: Option<String>,
        #[serde(default)]
        lock: Option<ObjectLock>,
        at: u64,
    },
}

impl JournalEntry {
    /// The entry recording `o` (a version or delete marker with its number).
    pub fn of(o: &ObjectMeta) -> Option<JournalEntry> {
        Some(JournalEntry::Version {
            b: o.bucket.clone(),
            k: o.key.clone(),
            seq: o.seq?,
            v: o.version,
            null: o.null_version,
            marker: o.delete_marker,
        })
    }

    /// The entry recording the lock and tags of version `o`.
    pub fn attrs_of(o: &ObjectMeta) -> JournalEntry {
        JournalEntry::Attrs {
            b: o.bucket.clone(),
            k: o.key.clone(),
            v: o.version,
            retention: o.retention.clone(),
            legal_hold: o.legal_hold,
            tags: o.tags.clone(),
        }
    }

    /// The entry recording bucket `b`'s versioning state (`None`: deleted).
    pub fn bucket(name: &str, b: Option<&BucketMeta>) -> JournalEntry {
        JournalEntry::Bucket {
            b: name.to_string(),
            versioning: b.and_then(|b| b.versioning.clone()),
            lock: b.and_then(|b| b.object_lock.clone()),
            at: now_ms(),
        }
    }
}

/// The key of journal entry `n`.
fn entry_key(n: u64) -> Vec<u8> {
    key(b'v', &[&format!("{n:016x}")])
}

/// A key's versions as a rebuild found them, to restore in one go.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RestoredKey {
    /// The key's bucket, created with `ec` if missing.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The bucket's versioning state and object lock as the journal last said.
    pub versioning: Option<String>,
    /// See `versioning`.
    pub lock: Option<ObjectLock>,
    /// The versions and delete markers, newest first, with their numbers.
    pub versions: Vec<ObjectMeta>,
    /// Code of the bucket if it is created.
    pub ec: EcSpec,
}

impl MetaStore {
    /// Adds entry `n` to the journal in `batch`.
    pub(super) fn journal(batch: &mut Batch, n: u64, e: &JournalEntry) -> Result<()> {
        batch.put(entry_key(n), serde_json::to_vec(e)?);
        Ok(())
    }

    /// Adds `e` to the journal in `batch` under a number of its own.
    pub(super) fn journal_new(&self, batch: &mut Batch, e: &JournalEntry) -> Result<()> {
        let n = self.get::<u64>(&seq_key())?.unwrap_or(0) + 1;
        batch.put(seq_key(), serde_json::to_vec(&n)?);
        Self::journal(batch, n, e)
    }

    /// The oldest journal entries not yet written to the nodes, at most `limit`.
    pub fn journal_page(&self, limit: usize) -> Result<Vec<(u64, JournalEntry)>> {
        let mut out = Vec::new();
        self.walk_journal(|n, v| {
            if out.len() >= limit {
                return Ok(false);
            }
            out.push((n, serde_json::from_slice(v)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Drops the journal entries up to and including `upto` (they are on the nodes);
    /// returns how many.
    pub fn drop_journal(&self, upto: u64) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        let mut dropped = 0;
        self.walk_journal(|n, _| {
            if n > upto {
                return Ok(false);
            }
            batch.delete(entry_key(n));
            dropped += 1;
            Ok(true)
        })?;
        self.write_locked(batch, guard)?;
        self.journal_floor
            .fetch_max(upto.saturating_add(1), Ordering::SeqCst);
        Ok(dropped)
    }

    /// Calls `f` with each waiting entry's number and bytes, oldest first, while it says so.
    /// The walk starts at the journal's floor: below it everything was dropped (a drop leaves
    /// deleted entries the engine still steps over until it compacts them away, thousands a
    /// second under versioned writes).
    fn walk_journal(&self, mut f: impl FnMut(u64, &[u8]) -> Result<bool>) -> Result<()> {
        let prefix = key(b'v', &[]);
        let from = entry_key(self.journal_floor.load(Ordering::SeqCst));
        self.kv.walk(&from, &mut |k, v| {
            if !k.starts_with(&prefix) {
                return Ok(Step::Stop);
            }
            let n = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|s| u64::from_str_radix(s, 16).ok())
                .unwrap_or(0);
            Ok(if f(n, v)? { Step::Next } else { Step::Stop })
        })
    }

    /// Raises the commit counter to at least `n` (a rebuild: numbers given from now on come
    /// after every number the journal on the nodes holds, so new entries and journal objects
    /// never share a number or a name with old ones).
    pub fn raise_seq(&self, n: u64) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        if self.get::<u64>(&seq_key())?.unwrap_or(0) >= n {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.put(seq_key(), serde_json::to_vec(&n)?);
        self.write_locked(batch, guard)
    }

    /// The bucket of an object a rebuild restores, in `batch`: created with `ec` if missing,
    /// given the versioning state and object lock the journal names (`state`) where it has
    /// none, and made versioned and locked if it holds a `locked` version (only a bucket with
    /// object lock holds locked versions, so no overwrite or delete can remove them).
    pub(super) fn restored_bucket(
        &self,
        batch: &mut Batch,
        name: &str,
        ec: EcSpec,
        state: (Option<String>, Option<ObjectLock>),
        locked: bool,
    ) -> Result<()> {
        let found = self.bucket(name)?;
        let mut changed = found.is_none();
        let mut b = found.unwrap_or_else(|| BucketMeta::new(name, now_ms(), ec, None));
        let (versioning, lock) = state;
        if versioning.is_some() && b.versioning.is_none() {
            b.versioning = versioning;
            changed = true;
        }
        if lock.is_some() && b.object_lock.is_none() {
            b.object_lock = lock;
            changed = true;
        }
        if locked && (b.versioning.as_deref() != Some(ENABLED) || b.object_lock.is_none()) {
            b.versioning = Some(ENABLED.into());
            b.object_lock.get_or_insert_with(ObjectLock::default);
            changed = true;
        }
        if changed {
            batch.put(key(b'b', &[name]), serde_json::to_vec(&b)?);
        }
        Ok(())
    }

    /// Restores a key's versions found by a metadata rebuild, creating its bucket (and
    /// setting its versioning state and object lock) as needed, unless the key already has
    /// a version. Returns whether it was written.
    pub fn restore_key(&self, r: &RestoredKey) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        let current = key(b'o', &[&r.bucket, &r.key]);
        let mut taken = false;
        let mut versions_of_key = current.clone();
        versions_of_key.push(0);
        self.kv.walk(&current, &mut |k, _| {
            taken = k == current.as_slice() || k.starts_with(&versions_of_key);
            Ok(Step::Stop)
        })?;
        if taken || r.versions.is_empty() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        let locked = r
            .versions
            .iter()
            .any(|v| v.retention.is_some() || v.legal_hold);
        let state = (r.versioning.clone(), r.lock.clone());
        self.restored_bucket(&mut batch, &r.bucket, r.ec, state, locked)?;
        let mut release = Release::new(self);
        let mut top = self.get::<u64>(&seq_key())?.unwrap_or(0);
        for (i, v) in r.versions.iter().enumerate() {
            if let Some(p) = &v.packed {
                release.live(p.segment, v.size)?;
            }
            top = top.max(v.seq.unwrap_or(0));
            let slot = if i == 0 && !v.delete_marker {
                current.clone()
            } else {
                version_key(&r.bucket, &r.key, v.seq)
            };
            batch.put(slot, serde_json::to_vec(v)?);
        }
        batch.put(seq_key(), serde_json::to_vec(&top)?);
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(true)
    }
}
