//! The rebuild's scratch space: what the nodes listed (every shard header), the small objects
//! of versioned buckets found in segments, and the keys the version journal names, kept on
//! disk in a throwaway RocksDB in key order, so that a rebuild of any number of objects holds
//! one key's versions in memory at a time.
//!
//! Records are keyed `bucket \0 key \0` (neither may contain NUL) and then a tag: `s` with the
//! version (16 bytes, big-endian, so versions sort as they compare), the node and the shard
//! index for a shard; `p` with the version for a packed object; `h` for a key the journal
//! names. A [`Group`] gathers one key's records; [`Scratch::groups`] reads them a page at a
//! time, off the async runtime.

use super::Shards;
use crate::error::ApiError;
use crate::meta::ObjectMeta;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion, ShardInfo};

/// Where a walk over the groups resumes: the first record key to read.
type SeekKey = Vec<u8>;

/// One key's records.
#[derive(Default)]
pub struct Group {
    pub bucket: String,
    pub key: String,
    /// Shards found on the nodes, by version.
    pub shards: BTreeMap<ObjectVersion, Shards>,
    /// Small objects of a versioned bucket restored from segments, by version.
    pub packed: BTreeMap<ObjectVersion, ObjectMeta>,
    /// The version journal names this key.
    pub journaled: bool,
}

/// The scratch database (see the module docs); removed from disk when dropped.
pub struct Scratch {
    /// `None` only while being dropped.
    db: Option<Arc<rocksdb::DB>>,
    path: PathBuf,
}

fn err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("rebuild scratch space: {e}"))
}

fn prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(bucket.len() + key.len() + 2);
    p.extend_from_slice(bucket.as_bytes());
    p.push(0);
    p.extend_from_slice(key.as_bytes());
    p.push(0);
    p
}

/// Runs `f` on the database off the async runtime.
async fn blocking<T: Send + 'static>(
    db: &Arc<rocksdb::DB>,
    f: impl FnOnce(&rocksdb::DB) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(err)?
}

impl Scratch {
    /// A new, empty scratch database at `path` (whatever an earlier rebuild left there is
    /// removed first).
    pub async fn open(path: &Path) -> Result<Scratch, ApiError> {
        let path = path.to_path_buf();
        let p = path.clone();
        let db = tokio::task::spawn_blocking(move || {
            if p.exists() {
                std::fs::remove_dir_all(&p).map_err(err)?;
            }
            let mut o = rocksdb::Options::default();
            o.create_if_missing(true);
            o.set_write_buffer_size(8 << 20);
            o.set_max_write_buffer_number(2);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            // Read once, in order: a small cache is enough (the default is 32 MiB).
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&rocksdb::Cache::new_lru_cache(8 << 20));
            o.set_block_based_table_factory(&table);
            rocksdb::DB::open(&o, &p).map_err(err)
        })
        .await
        .map_err(err)??;
        Ok(Scratch {
            db: Some(Arc::new(db)),
            path,
        })
    }

    fn db(&self) -> &Arc<rocksdb::DB> {
        self.db.as_ref().expect("open until dropped")
    }

    /// Adds the shards `page` that `node` listed.
    pub async fn add_shards(&self, node: &NodeId, page: Vec<ShardInfo>) -> Result<(), ApiError> {
        let node = node.clone();
        blocking(self.db(), move |db| {
            let mut b = rocksdb::WriteBatch::default();
            for info in page {
                let h = &info.header;
                let mut k = prefix(&h.bucket, &h.key);
                k.push(b's');
                k.extend_from_slice(&h.version.0.to_be_bytes());
                k.extend_from_slice(node.as_str().as_bytes());
                k.push(0);
                k.extend_from_slice(&h.shard_index.to_be_bytes());
                b.put(k, serde_json::to_vec(&(&node, &info)).map_err(err)?);
            }
            write(db, b)
        })
        .await
    }

    /// Adds small objects of versioned buckets restored from a segment.
    pub async fn add_packed(&self, objects: Vec<ObjectMeta>) -> Result<(), ApiError> {
        blocking(self.db(), move |db| {
            let mut b = rocksdb::WriteBatch::default();
            for o in objects {
                let mut k = prefix(&o.bucket, &o.key);
                k.push(b'p');
                k.extend_from_slice(&o.version.0.to_be_bytes());
                b.put(k, serde_json::to_vec(&o).map_err(err)?);
            }
            write(db, b)
        })
        .await
    }

    /// Marks keys the version journal names.
    pub async fn add_journaled(&self, keys: Vec<(String, String)>) -> Result<(), ApiError> {
        blocking(self.db(), move |db| {
            let mut b = rocksdb::WriteBatch::default();
            for (bucket, key) in keys {
                let mut k = prefix(&bucket, &key);
                k.push(b'h');
                b.put(k, []);
            }
            write(db, b)
        })
        .await
    }

    /// A walk over bucket `bucket`'s groups (or every group), in key order.
    pub fn walk(&self, bucket: Option<&str>) -> Walk<'_> {
        Walk {
            scratch: self,
            cursor: Some(bucket.map_or_else(Vec::new, |b| {
                let mut c = b.as_bytes().to_vec();
                c.push(0);
                c
            })),
            bucket: bucket.map(str::to_string),
            page: Vec::new().into_iter(),
        }
    }

    /// Up to `limit` whole groups from `from` (only bucket `bucket`'s, if given), and where
    /// the next page starts (`None`: no more).
    async fn groups(
        &self,
        from: SeekKey,
        bucket: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Group>, Option<SeekKey>), ApiError> {
        blocking(self.db(), move |db| {
            let mut out: Vec<Group> = Vec::new();
            let it = db.iterator(rocksdb::IteratorMode::From(
                &from,
                rocksdb::Direction::Forward,
            ));
            for item in it {
                let (k, v) = item.map_err(err)?;
                let (b, rest) = split(&k)?;
                if bucket.as_deref().is_some_and(|want| want != b) {
                    return Ok((out, None));
                }
                let (key, tail) = split(rest)?;
                let same = out.last().is_some_and(|g| g.bucket == b && g.key == key);
                if !same {
                    if out.len() == limit {
                        return Ok((out, Some(k.to_vec())));
                    }
                    out.push(Group {
                        bucket: b.to_string(),
                        key: key.to_string(),
                        ..Default::default()
                    });
                }
                let g = out.last_mut().expect("a group was pushed");
                match tail.first() {
                    Some(b's') => {
                        let (node, info): (NodeId, ShardInfo) =
                            serde_json::from_slice(&v).map_err(err)?;
                        g.shards
                            .entry(info.header.version)
                            .or_default()
                            .push((node, info));
                    }
                    Some(b'p') => {
                        let o: ObjectMeta = serde_json::from_slice(&v).map_err(err)?;
                        g.packed.insert(o.version, o);
                    }
                    Some(b'h') => g.journaled = true,
                    _ => return Err(err("a record of unknown kind")),
                }
            }
            Ok((out, None))
        })
        .await
    }
}

/// Groups read at a time.
const GROUPS_PER_PAGE: usize = 256;

/// A walk over the groups, a page at a time (see [`Scratch::walk`]).
pub struct Walk<'a> {
    scratch: &'a Scratch,
    bucket: Option<String>,
    /// Where the next page starts; `None` once the last was read.
    cursor: Option<SeekKey>,
    page: std::vec::IntoIter<Group>,
}

impl Walk<'_> {
    /// The next group, if any.
    pub async fn next(&mut self) -> Result<Option<Group>, ApiError> {
        loop {
            if let Some(g) = self.page.next() {
                return Ok(Some(g));
            }
            let Some(from) = self.cursor.take() else {
                return Ok(None);
            };
            let (groups, next) = self
                .scratch
                .groups(from, self.bucket.clone(), GROUPS_PER_PAGE)
                .await?;
            self.page = groups.into_iter();
            self.cursor = next;
        }
    }
}

/// The text before the first NUL of `k`, and what follows it.
fn split(k: &[u8]) -> Result<(&str, &[u8]), ApiError> {
    let i = k
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| err("a record key without its separator"))?;
    let s = std::str::from_utf8(&k[..i]).map_err(err)?;
    Ok((s, &k[i + 1..]))
}

fn write(db: &rocksdb::DB, b: rocksdb::WriteBatch) -> Result<(), ApiError> {
    // Scratch data: a crash starts the rebuild over, so no log is kept.
    let mut w = rocksdb::WriteOptions::default();
    w.disable_wal(true);
    db.write_opt(b, &w).map_err(err)
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // The database closes before its files go, unless a blocking task still holds it
        // (then the next rebuild removes the directory).
        if let Some(db) = self.db.take().and_then(Arc::into_inner) {
            drop(db);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
