//! Snapshot files: a magic line, then (u32 length, key, u32 length, value) records of the
//! `default` column family read from one RocksDB snapshot, then an end mark; written and read
//! as streams, never held in memory whole.

use super::columns::{cf, json, put_synced, PARTIAL, RAFT};
use super::MemberId;
use openraft::{BasicNode, LogId, SnapshotMeta, StoredMembership};
use rocksdb::{IteratorMode, WriteBatch, DB};
use serde::{Deserialize, Serialize};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"tessera-snapshot-1\n";
const END: u32 = u32::MAX;

/// The current snapshot: its meta and its file.
#[derive(Serialize, Deserialize)]
pub(super) struct CurrentSnapshot {
    pub(super) meta: SnapshotMeta<MemberId, BasicNode>,
    pub(super) path: PathBuf,
}

/// A snapshot being installed.
pub(super) type Installing = CurrentSnapshot;

pub(super) fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// A snapshot id as a file name (ids come from the leader: keep only safe characters).
pub(super) fn file_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(100)
        .collect();
    if safe.is_empty() {
        format!("snapshot-{}", unique())
    } else {
        safe
    }
}

pub(super) fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Writes the state as of now to a new snapshot file, records it as the current snapshot
/// (after a WAL sync, so everything it covers is durable) and deletes older snapshot files.
pub(super) fn write_snapshot(db: &DB, dir: &Path) -> std::io::Result<CurrentSnapshot> {
    let snap = db.snapshot();
    let read = |k: &[u8]| -> std::io::Result<Option<Vec<u8>>> {
        snap.get_cf(cf(db, RAFT), k).map_err(io_err)
    };
    let applied: Option<LogId<MemberId>> = match read(b"applied")? {
        Some(v) => serde_json::from_slice(&v).map_err(io_err)?,
        None => None,
    };
    let membership: StoredMembership<MemberId, BasicNode> = match read(b"membership")? {
        Some(v) => serde_json::from_slice(&v).map_err(io_err)?,
        None => Default::default(),
    };
    let id = match applied {
        Some(a) => format!("{}-{}-{}", a.leader_id.term, a.index, unique()),
        None => format!("0-0-{}", unique()),
    };
    let path = dir.join(format!("{id}.snap"));
    let tmp = dir.join(format!("{id}.tmp"));
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        out.write_all(MAGIC)?;
        for item in snap.iterator_cf(cf(db, "default"), IteratorMode::Start) {
            let (k, v) = item.map_err(io_err)?;
            for part in [&k[..], &v[..]] {
                out.write_all(&(part.len() as u32).to_le_bytes())?;
                out.write_all(part)?;
            }
        }
        out.write_all(&END.to_le_bytes())?;
        out.into_inner().map_err(io_err)?.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    drop(snap);
    let stored = CurrentSnapshot {
        meta: SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id: id,
        },
        path,
    };
    db.flush_wal(true).map_err(io_err)?;
    put_synced(db, b"snapshot", &stored).map_err(io_err)?;
    remove_other_snapshots(dir, &stored.path);
    Ok(stored)
}

pub(super) fn remove_other_snapshots(dir: &Path, keep: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p != keep
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("incoming-"))
            {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Replaces the state with the snapshot in `path` (a file checked end to end first) and
/// records it as current; `installing` (set by the caller) is cleared in the last batch.
pub(super) fn load_snapshot(
    db: &DB,
    path: &Path,
    meta: &SnapshotMeta<MemberId, BasicNode>,
) -> std::io::Result<()> {
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut magic = vec![0; MAGIC.len()];
    input.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(io_err("not a tessera snapshot file"));
    }
    let meta_cf = cf(db, "default");
    db.delete_range_cf(meta_cf, [0u8].as_slice(), [0xffu8; 8].as_slice())
        .map_err(io_err)?;
    let mut batch = WriteBatch::default();
    let read_part = |input: &mut BufReader<std::fs::File>| -> std::io::Result<Option<Vec<u8>>> {
        let mut len = [0; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        if len == END {
            return Ok(None);
        }
        let mut v = vec![0; len as usize];
        input.read_exact(&mut v)?;
        Ok(Some(v))
    };
    while let Some(k) = read_part(&mut input)? {
        let v =
            read_part(&mut input)?.ok_or_else(|| io_err("snapshot file ends inside a record"))?;
        batch.put_cf(meta_cf, k, v);
        if batch.size_in_bytes() > 4 << 20 {
            db.write(std::mem::take(&mut batch)).map_err(io_err)?;
        }
    }
    let raft = cf(db, RAFT);
    let stored = CurrentSnapshot {
        meta: meta.clone(),
        path: path.to_path_buf(),
    };
    batch.put_cf(raft, b"applied", json(&meta.last_log_id).map_err(io_err)?);
    batch.put_cf(
        raft,
        b"membership",
        json(&meta.last_membership).map_err(io_err)?,
    );
    batch.put_cf(raft, b"snapshot", json(&stored).map_err(io_err)?);
    batch.delete_cf(raft, b"installing");
    batch.delete_cf(raft, PARTIAL);
    db.write(batch).map_err(io_err)?;
    db.flush_wal(true).map_err(io_err)?;
    if let Some(dir) = path.parent() {
        remove_other_snapshots(dir, path);
    }
    Ok(())
}
