//! The column families of a coordinator's Raft storage and the JSON values kept in `raft`
//! (see [`super::storage`] for what each holds).

// openraft's storage traits fix the error type (`StorageIOError`, a few hundred bytes); the
// helpers here return the same.
#![allow(clippy::result_large_err)]

use super::MemberId;
use openraft::StorageIOError;
use rocksdb::DB;
use serde::{de::DeserializeOwned, Serialize};

/// Log entries by index.
pub(super) const LOG: &str = "log";
/// Log bookkeeping, the state machine's position, snapshots.
pub(super) const RAFT: &str = "raft";
/// `(index, n)`: the first `n` writes of the entry at `index` are applied (a crash came
/// before its last one; they are skipped when the entry is applied again).
pub(super) const PARTIAL: &[u8] = b"partial";

pub(super) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("column family created at open")
}

/// A JSON value of the `raft` column family.
pub fn get<T: DeserializeOwned>(db: &DB, k: &[u8]) -> Result<Option<T>, StorageIOError<MemberId>> {
    match db
        .get_cf(cf(db, RAFT), k)
        .map_err(|e| StorageIOError::read(&e))?
    {
        Some(v) => Ok(Some(
            serde_json::from_slice(&v).map_err(|e| StorageIOError::read(&e))?,
        )),
        None => Ok(None),
    }
}

/// Sets a JSON value of the `raft` column family; durable when this returns.
pub fn put_synced<T: Serialize>(db: &DB, k: &[u8], v: &T) -> Result<(), StorageIOError<MemberId>> {
    let v = serde_json::to_vec(v).map_err(|e| StorageIOError::write(&e))?;
    db.put_cf(cf(db, RAFT), k, v)
        .map_err(|e| StorageIOError::write(&e))?;
    db.flush_wal(true).map_err(|e| StorageIOError::write(&e))
}

pub(super) fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(v)
}
