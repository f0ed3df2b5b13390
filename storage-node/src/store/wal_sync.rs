//! Group commit for a RocksDB write-ahead log.
//!
//! A synced RocksDB write costs one fsync, and a writer holding a lock across it (as the
//! read-modify-write commits of the shard index and the coordinator's metadata must) makes
//! every commit pay its own. With [`WalSync`], a writer applies its batch unsynced while it
//! holds its lock, releases the lock, and then waits in [`WalSync::sync`] until a WAL sync
//! that *started after its write* has finished. One writer at a time syncs; everyone who
//! wrote before that sync began is covered by it, so concurrent commits share fsyncs.
//!
//! Contract for callers: do not act on a write (acknowledge it, delete files it stopped
//! referencing) before `sync` returns `Ok`. The write is visible to readers of the same
//! database as soon as it is applied; it is durable only after `sync`.

use rocksdb::DB;
use std::sync::{Condvar, Mutex};

/// Shared by all writers of one database.
#[derive(Debug, Default)]
pub struct WalSync {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Commits applied so far.
    written: u64,
    /// Every write numbered up to this is on stable storage.
    synced: u64,
    /// A sync is running.
    syncing: bool,
    /// Syncs run, for tests and benchmarks.
    syncs: u64,
}

impl WalSync {
    /// Waits until the write the caller just applied to `db` is on stable storage, running
    /// the WAL sync itself if no other writer is.
    pub fn sync(&self, db: &DB) -> Result<(), rocksdb::Error> {
        self.sync_writes(db, 1)
    }

    /// [`WalSync::sync`] for a caller that applied `writes` commits (counted as such).
    pub fn sync_writes(&self, db: &DB, writes: u64) -> Result<(), rocksdb::Error> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.written += writes;
        let me = st.written;
        loop {
            if st.synced >= me {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                let target = st.written;
                drop(st);
                let result = db.flush_wal(true);
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.syncing = false;
                st.syncs += 1;
                if result.is_ok() {
                    st.synced = st.synced.max(target);
                }
                self.changed.notify_all();
                // On failure, this writer reports it; waiting ones retry with their own sync.
                result?;
                continue;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// (writes, syncs) so far.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.written, st.syncs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocksdb::{Options, WriteBatch, WriteOptions};
    use std::sync::Arc;

    fn unsynced() -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(false);
        w
    }

    /// Concurrent writers all return, every write is readable, and they shared syncs.
    #[test]
    fn concurrent_writers_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = Arc::new(DB::open(&opts, dir.path()).unwrap());
        let ws = Arc::new(WalSync::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (db, ws) = (db.clone(), ws.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut b = WriteBatch::default();
                        b.put(format!("{t}-{i}"), b"v");
                        db.write_opt(b, &unsynced()).unwrap();
                        ws.sync(&db).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (writes, syncs) = ws.counts();
        assert_eq!(writes, 1600);
        assert!(
            syncs >= 1 && syncs < writes,
            "{syncs} syncs for {writes} writes"
        );
        for t in 0..8 {
            for i in 0..200 {
                assert!(db.get(format!("{t}-{i}")).unwrap().is_some());
            }
        }
        // Reopening finds everything (the WAL was synced and is replayed).
        drop(db);
        let db = DB::open(&opts, dir.path()).unwrap();
        assert!(db.get("7-199").unwrap().is_some());
    }
}
