//! Versioned keys' histories from the version journal (`meta/journal.rs`) read back from
//! the nodes, and the version lists a rebuild restores from them and the versions found.

use crate::meta::journal::JournalEntry;
use crate::meta::settings::SUSPENDED;
use crate::meta::{ObjectLock, ObjectMeta, Retention};
use std::collections::{BTreeMap, HashMap, HashSet};
use tessera_node::ObjectVersion;

/// What the journal says of one numbered version of a key.
#[derive(Clone, Copy, Debug)]
struct Journaled {
    version: ObjectVersion,
    null: bool,
    marker: bool,
}

/// One key's history: its numbered versions, the stored versions deleted for good, and
/// the lock and tags set on versions after they were written.
#[derive(Default, Debug)]
struct KeyHistory {
    versions: BTreeMap<u64, Journaled>,
    gone: HashSet<ObjectVersion>,
    attrs: HashMap<ObjectVersion, Attrs>,
}

/// A version's retention, legal hold and tags as last set.
#[derive(Clone, Debug)]
struct Attrs {
    retention: Option<Retention>,
    legal_hold: bool,
    tags: BTreeMap<String, String>,
}

/// A versioned bucket's state as the journal last said.
#[derive(Clone, Debug)]
pub struct BucketState {
    /// `Enabled` or `Suspended`.
    pub versioning: String,
    /// Its object lock, if enabled.
    pub lock: Option<ObjectLock>,
    /// Since when (ms) the bucket has been versioned: a version stored before then, which
    /// the journal cannot name, is the key's version from before versioning.
    pub since_ms: u64,
}

/// Every versioned bucket's state and key history the journal holds.
#[derive(Default, Debug)]
pub struct History {
    buckets: BTreeMap<String, BucketState>,
    keys: BTreeMap<(String, String), KeyHistory>,
    /// The largest number the journal names: numbers given in a rebuild come after it.
    pub top: u64,
}

impl History {
    /// The history `entries` (from every journal object, in any order, repeats allowed) tell.
    pub fn of(mut entries: Vec<(u64, JournalEntry)>) -> History {
        entries.sort_by_key(|(n, _)| *n);
        entries.dedup_by_key(|(n, _)| *n);
        let mut h = History::default();
        for (n, e) in entries {
            h.top = h.top.max(n);
            h.apply(e);
        }
        h
    }

    fn apply(&mut self, e: JournalEntry) {
        match e {
            JournalEntry::Version {
                b,
                k,
                seq,
                v,
                null,
                marker,
            } => {
                let kh = self.keys.entry((b, k)).or_default();
                // A key has one `null` version: a new one replaces the old.
                if null {
                    kh.versions.retain(|s, j| !j.null || *s == seq);
                }
                kh.versions.insert(
                    seq,
                    Journaled {
                        version: v,
                        null,
                        marker,
                    },
                );
            }
            JournalEntry::Attrs {
                b,
                k,
                v,
                retention,
                legal_hold,
                tags,
            } => {
                let kh = self.keys.entry((b, k)).or_default();
                let a = Attrs {
                    retention,
                    legal_hold,
                    tags,
                };
                kh.attrs.insert(v, a);
            }
            JournalEntry::Gone { b, k, v } => {
                let kh = self.keys.entry((b, k)).or_default();
                kh.versions.retain(|_, j| j.version != v);
                kh.gone.insert(v);
            }
            JournalEntry::Bucket {
                b,
                versioning,
                lock,
                at,
            } => match versioning {
                None => {
                    self.buckets.remove(&b);
                }
                Some(versioning) => {
                    let since_ms = self.buckets.get(&b).map_or(at, |s| s.since_ms);
                    self.buckets.insert(
                        b,
                        BucketState {
                            versioning,
                            lock,
                            since_ms,
                        },
                    );
                }
            },
        }
    }

    /// The state of `bucket` if the journal says it is versioned.
    pub fn bucket(&self, bucket: &str) -> Option<&BucketState> {
        self.buckets.get(bucket)
    }

    /// The keys the journal names in versioned buckets (a key whose only version is a
    /// delete marker has no bytes anywhere else).
    pub fn keys(&self) -> impl Iterator<Item = &(String, String)> {
        self.keys
            .keys()
            .filter(|(b, _)| self.buckets.contains_key(b))
    }

    /// The versions of `bucket`/`key` (a versioned bucket) to restore, newest first, from
    /// the versions found on the nodes (`found`: stored version -> object, without numbers):
    /// - the numbered versions and delete markers of the journal, in its order, each with
    ///   its number (so its version id) and `null` mark; a numbered version whose bytes were
    ///   not found is reported in `lost`;
    /// - above them, versions found that the journal does not name yet (committed in its
    ///   last interval before the loss), by stored version, numbered from `fresh` on
    ///   (suspended: the newest only, as the `null` version);
    /// - below them, the key's version from before versioning (the newest stored before the
    ///   bucket became versioned), unless the key has a `null` version already.
    ///
    /// Versions deleted for good, and other found versions, are left out (garbage).
    pub fn versions_of(
        &self,
        bucket: &str,
        key: &str,
        state: &BucketState,
        mut found: BTreeMap<ObjectVersion, ObjectMeta>,
        fresh: &mut u64,
        lost: &mut Vec<String>,
    ) -> Vec<ObjectMeta> {
        let empty = KeyHistory::default();
        let kh = self
            .keys
            .get(&(bucket.to_string(), key.to_string()))
            .unwrap_or(&empty);
        // Lock and tags as last set (the shards say what they were at the write).
        for (v, o) in found.iter_mut() {
            if let Some(a) = kh.attrs.get(v) {
                o.retention = a.retention.clone();
                o.legal_hold = a.legal_hold;
                o.tags = a.tags.clone();
            }
        }
        let mut journaled = Vec::new();
        for (&seq, j) in kh.versions.iter().rev() {
            if j.marker {
                journaled.push(ObjectMeta::delete_marker(
                    bucket,
                    key,
                    j.version,
                    seq,
                    j.null,
                    j.version.millis(),
                ));
                continue;
            }
            match found.remove(&j.version) {
                Some(mut o) => {
                    o.seq = Some(seq);
                    o.null_version = j.null;
                    journaled.push(o);
                }
                None => lost.push(format!(
                    "{bucket}/{key} (version {seq:016x}: its bytes were not found)"
                )),
            }
        }
        found.retain(|v, _| !kh.gone.contains(v));
        let (after, before): (Vec<ObjectMeta>, Vec<ObjectMeta>) = found
            .into_values()
            .partition(|o| o.version.millis() >= state.since_ms);
        let mut top: Vec<ObjectMeta> = Vec::new();
        let suspended = state.versioning == SUSPENDED;
        let after: Vec<ObjectMeta> = if suspended {
            after.into_iter().next_back().into_iter().collect()
        } else {
            after
        };
        for mut o in after {
            *fresh += 1;
            o.seq = Some(*fresh);
            o.null_version = suspended;
            top.push(o);
        }
        if suspended && !top.is_empty() {
            journaled.retain(|o| !o.null_version);
        }
        top.reverse();
        let has_null = top.iter().chain(&journaled).any(|o| o.is_null());
        let mut out = top;
        out.extend(journaled);
        if !has_null {
            if let Some(mut pre) = before.into_iter().next_back() {
                pre.seq = None;
                pre.null_version = false;
                out.push(pre);
            }
        }
        out
    }
}
