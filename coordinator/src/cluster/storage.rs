//! A coordinator's Raft storage: one RocksDB holding the log, the vote and the state
//! machine (the metadata itself), so that one write-ahead log orders them all.
//!
//! Column families:
//! - `default`: the metadata ([`MetaStore`] keys, see [`crate::meta`]).
//! - `log`: entries by index (8 bytes big-endian) -> JSON [`openraft::Entry`].
//! - `raft`: `vote`, `committed`, `purged` (log bookkeeping); `applied` and `membership`
//!   (the state machine's position, written in the same atomic batch as each command's
//!   writes); `snapshot` (the current snapshot's meta and file); `installing` (a snapshot
//!   being installed, redone at startup if a crash interrupted it).
//!
//! Durability: appended entries are acknowledged to Raft ([`LogFlushed`]) only after a WAL
//! sync that covers them; one flusher task runs the syncs, so entries appended while a sync
//! runs share the next one. Applying a command does not sync: the log holds it, and a crash
//! loses at most a suffix of applied commands together with their `applied` stamp, which
//! Raft then applies again. Snapshots sync the WAL before they are recorded, so the log can
//! be purged behind them.
//!
//! Snapshots are files (`snapshots/` in the data dir): a magic line, then (u32 length, key,
//! u32 length, value) records of the `default` column family read from one RocksDB snapshot,
//! then an end mark. They are written and read as streams, never held in memory whole.

// openraft's storage traits fix the error type (`StorageError`, a few hundred bytes); the
// helpers here return the same.
#![allow(clippy::result_large_err)]

use super::columns::{cf, get, json, put_synced, LOG, PARTIAL, RAFT};
use super::snapshot::{
    file_name, load_snapshot, unique, write_snapshot, CurrentSnapshot, Installing,
};
use super::{Applied, MemberId, TypeConfig};
use crate::meta::rocks::{EngineLimits, RocksKv};
use crate::meta::{MetaError, MetaStore};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftLogReader, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, DB};
use std::fmt::Debug;

use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, RwLock};

type SResult<T> = Result<T, StorageError<MemberId>>;

/// What [`open`] returns.
pub struct Opened {
    /// The Raft log.
    pub log: LogStore,
    /// The state machine.
    pub machine: StateMachine,
    /// The metadata the state machine maintains, for reads.
    pub store: Arc<MetaStore>,
    /// Held shared by reads and exclusively while a snapshot replaces the state.
    pub gate: Arc<RwLock<()>>,
    /// The database (for the `peers` record and the like).
    pub db: Arc<DB>,
}

/// Opens (or creates) the Raft storage in `dir`, finishing a snapshot installation a crash
/// interrupted. Must run inside a Tokio runtime (it starts the log flusher).
pub fn open(dir: &Path, limits: &EngineLimits) -> Result<Opened, MetaError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    // The state machine, the log and the Raft records share one block cache and one bound
    // on memtables.
    let cache = limits.cache();
    opts.set_db_write_buffer_size(2 * limits.memtable_bytes as usize);
    let cfs = ["default", LOG, RAFT].into_iter().map(|n| {
        let mut o = Options::default();
        limits.apply(&mut o, &cache);
        ColumnFamilyDescriptor::new(n, o)
    });
    let db = Arc::new(DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?);
    let snapshots = dir.join("snapshots");
    std::fs::create_dir_all(&snapshots).map_err(|e| MetaError::Storage(e.to_string()))?;
    let kv = Arc::new(RocksKv::on_log(db.clone()));
    if let Some(i) =
        get::<Installing>(&db, b"installing").map_err(|e| MetaError::Storage(e.to_string()))?
    {
        tracing::warn!(snapshot = %i.meta.snapshot_id, "finishing a snapshot installation a crash interrupted");
        load_snapshot(&db, &i.path, &i.meta).map_err(|e| MetaError::Storage(e.to_string()))?;
    }
    let store = Arc::new(MetaStore::on(Box::new(kv.clone()))?);
    let gate = Arc::new(RwLock::new(()));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(flusher(db.clone(), rx));
    Ok(Opened {
        log: LogStore {
            db: db.clone(),
            flush: tx,
        },
        machine: StateMachine {
            db: db.clone(),
            kv,
            store: store.clone(),
            gate: gate.clone(),
            snapshots,
            receiving: None,
        },
        store,
        gate,
        db,
    })
}

fn index_key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> SResult<T> + Send + 'static,
) -> SResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, AnyError::error(e))
    })?
}

/// Records that the first `n` writes of the entry at `index` are applied (`None`: no entry
/// is partly applied). The state machine stamps this itself; tests use it to stand for a
/// crash in the middle of an entry.
pub fn stamp_partial(db: &DB, partial: Option<(u64, usize)>) -> Result<(), MetaError> {
    db.put_cf(
        cf(db, RAFT),
        PARTIAL,
        json(&partial).map_err(|e| MetaError::Storage(e.to_string()))?,
    )
    .map_err(|e| MetaError::Storage(e.to_string()))
}

/// Acknowledges appended entries once a WAL sync covers them; entries that arrive while a
/// sync runs share the next one.
async fn flusher(db: Arc<DB>, mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let d = db.clone();
        let result = match tokio::task::spawn_blocking(move || d.flush_wal(true)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        for w in waiting {
            w.log_io_completed(result.clone().map_err(std::io::Error::other));
        }
    }
}

/// The Raft log (see the module docs).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flush: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> SResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => *x + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => Bound::Included(*x),
            Bound::Excluded(x) => Bound::Excluded(*x),
            Bound::Unbounded => Bound::Unbounded,
        };
        let range = (Bound::Included(start), end);
        let db = self.db.clone();
        blocking(move || {
            let mut out = Vec::new();
            let iter = db.iterator_cf(
                cf(&db, LOG),
                IteratorMode::From(&index_key(start), Direction::Forward),
            );
            for item in iter {
                let (k, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
                let i = u64::from_be_bytes(k[..8].try_into().expect("8-byte keys"));
                if !range.contains(&i) {
                    break;
                }
                out.push(serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(&e))?);
            }
            Ok(out)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> SResult<LogState<TypeConfig>> {
        let db = self.db.clone();
        blocking(move || {
            let last = match db.iterator_cf(cf(&db, LOG), IteratorMode::End).next() {
                Some(item) => {
                    let (_, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
                    let e: Entry<TypeConfig> =
                        serde_json::from_slice(&v).map_err(|e| StorageIOError::read_logs(&e))?;
                    Some(e.log_id)
                }
                None => None,
            };
            let purged: Option<LogId<MemberId>> = get(&db, b"purged")?;
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last.or(purged),
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<MemberId>) -> SResult<()> {
        let (db, vote) = (self.db.clone(), *vote);
        blocking(move || {
            Ok(put_synced(&db, b"vote", &vote)
                .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?)
        })
        .await
    }

    async fn read_vote(&mut self) -> SResult<Option<Vote<MemberId>>> {
        let db = self.db.clone();
        blocking(move || Ok(get(&db, b"vote")?)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<MemberId>>) -> SResult<()> {
        let db = self.db.clone();
        blocking(move || {
            let v = serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(&e))?;
            db.put_cf(cf(&db, RAFT), b"committed", v)
                .map_err(|e| StorageIOError::write(&e))?;
            Ok(())
        })
        .await
    }

    async fn read_committed(&mut self) -> SResult<Option<LogId<MemberId>>> {
        let db = self.db.clone();
        blocking(move || Ok(get::<Option<LogId<MemberId>>>(&db, b"committed")?.flatten())).await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> SResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        for e in entries {
            let v = serde_json::to_vec(&e).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.put_cf(cf(&self.db, LOG), index_key(e.log_id.index), v);
        }
        let db = self.db.clone();
        blocking(move || {
            db.write(batch)
                .map_err(|e| StorageIOError::write_logs(&e).into())
        })
        .await?;
        // Acknowledged by the flusher once a WAL sync covers it.
        let _ = self.flush.send(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<MemberId>) -> SResult<()> {
        let db = self.db.clone();
        blocking(move || {
            db.delete_range_cf(cf(&db, LOG), index_key(log_id.index), index_key(u64::MAX))
                .map_err(|e| StorageIOError::write_logs(&e).into())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<MemberId>) -> SResult<()> {
        let db = self.db.clone();
        blocking(move || {
            put_synced(&db, b"purged", &log_id)?;
            db.delete_range_cf(cf(&db, LOG), index_key(0), index_key(log_id.index + 1))
                .map_err(|e| StorageIOError::write_logs(&e).into())
        })
        .await
    }
}

/// The state machine: the metadata, applied from the log.
pub struct StateMachine {
    db: Arc<DB>,
    kv: Arc<RocksKv>,
    store: Arc<MetaStore>,
    gate: Arc<RwLock<()>>,
    snapshots: PathBuf,
    receiving: Option<PathBuf>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> SResult<(
        Option<LogId<MemberId>>,
        StoredMembership<MemberId, BasicNode>,
    )> {
        let db = self.db.clone();
        blocking(move || {
            let applied = get::<Option<LogId<MemberId>>>(&db, b"applied")?.flatten();
            let membership = get(&db, b"membership")?.unwrap_or_default();
            Ok((applied, membership))
        })
        .await
    }

    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let (kv, store, db) = (self.kv.clone(), self.store.clone(), self.db.clone());
        blocking(move || {
            let fail = |id: LogId<MemberId>, e: &dyn std::fmt::Display| {
                StorageIOError::apply(id, AnyError::error(e.to_string()))
            };
            // Writes of the first entry already applied before a crash (see `PARTIAL`).
            let mut partial = get::<Option<(u64, usize)>>(&db, PARTIAL)?.flatten();
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                let id = e.log_id;
                let done = partial
                    .take()
                    .filter(|(i, _)| *i == id.index)
                    .map_or(0, |p| p.1);
                let writes = match e.payload {
                    EntryPayload::Normal(p) => p.writes,
                    other => {
                        kv.stamp(RAFT, b"applied", json(&Some(id)).map_err(|e| fail(id, &e))?);
                        if let EntryPayload::Membership(m) = other {
                            let m = StoredMembership::new(Some(id), m);
                            kv.stamp(RAFT, b"membership", json(&m).map_err(|e| fail(id, &e))?);
                        }
                        kv.flush_stamp().map_err(|e| fail(id, &e))?;
                        out.push(Applied(Vec::new()));
                        continue;
                    }
                };
                let n = writes.len();
                let mut replies = Vec::with_capacity(n);
                for (i, w) in writes.into_iter().enumerate() {
                    if i < done {
                        replies.push(Err(MetaError::Unavailable(
                            "applied before this coordinator restarted".into(),
                        )));
                        continue;
                    }
                    // The position is stamped into the write's own batch: the last write
                    // of an entry marks the entry applied, the others how far it got.
                    if i + 1 == n {
                        kv.stamp(RAFT, b"applied", json(&Some(id)).map_err(|e| fail(id, &e))?);
                        kv.stamp(
                            RAFT,
                            PARTIAL,
                            json(&None::<(u64, usize)>).map_err(|e| fail(id, &e))?,
                        );
                    } else {
                        kv.stamp(
                            RAFT,
                            PARTIAL,
                            json(&Some((id.index, i + 1))).map_err(|e| fail(id, &e))?,
                        );
                    }
                    let reply = match w.fence {
                        Some(t) if t != id.leader_id.term => Err(MetaError::Fenced(format!(
                            "{} was decided in term {t} and reached the log in term {}",
                            w.cmd.name(),
                            id.leader_id.term
                        ))),
                        _ => match w.ctx.enter(|| w.cmd.apply(&store)) {
                            Err(MetaError::Storage(m)) => return Err(fail(id, &m).into()),
                            r => r,
                        },
                    };
                    kv.flush_stamp().map_err(|e| fail(id, &e))?;
                    replies.push(reply);
                }
                if n == 0 {
                    kv.stamp(RAFT, b"applied", json(&Some(id)).map_err(|e| fail(id, &e))?);
                    kv.flush_stamp().map_err(|e| fail(id, &e))?;
                }
                out.push(Applied(replies));
            }
            Ok(out)
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            dir: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<tokio::fs::File>> {
        let path = self.snapshots.join(format!("incoming-{}.snap", unique()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.receiving = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<MemberId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> SResult<()> {
        let sig = Some(meta.signature());
        snapshot
            .sync_all()
            .await
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        drop(snapshot);
        let received = self.receiving.take().ok_or_else(|| {
            StorageIOError::write_snapshot(
                sig.clone(),
                AnyError::error("no snapshot was being received"),
            )
        })?;
        let path = self
            .snapshots
            .join(format!("{}.snap", file_name(&meta.snapshot_id)));
        tokio::fs::rename(&received, &path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        // Reads wait while the state is replaced.
        let _exclusive = self.gate.write().await;
        let (db, meta) = (self.db.clone(), meta.clone());
        let id = meta.snapshot_id.clone();
        blocking(move || {
            put_synced(
                &db,
                b"installing",
                &Installing {
                    meta: meta.clone(),
                    path: path.clone(),
                },
            )?;
            load_snapshot(&db, &path, &meta)
                .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e).into())
        })
        .await?;
        tracing::info!(snapshot = %id, "installed a snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        let db = self.db.clone();
        let Some(s) = blocking(move || Ok(get::<CurrentSnapshot>(&db, b"snapshot")?)).await? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&s.path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(s.meta.signature()), &e))?;
        Ok(Some(Snapshot {
            meta: s.meta,
            snapshot: Box::new(file),
        }))
    }
}

/// Builds snapshots from a RocksDB snapshot while the state machine goes on applying.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        let (db, dir) = (self.db.clone(), self.dir.clone());
        let stored = blocking(move || {
            write_snapshot(&db, &dir).map_err(|e| StorageIOError::write_snapshot(None, &e).into())
        })
        .await?;
        let file = tokio::fs::File::open(&stored.path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(stored.meta.signature()), &e))?;
        tracing::info!(snapshot = %stored.meta.snapshot_id, "snapshot built");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(file),
        })
    }
}
