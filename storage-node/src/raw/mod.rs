//! Raw shard reads: the GET path's node reads without the node touching the bytes.
//!
//! A reader opens `GET /raw` with the cluster secret and `Upgrade: tessera-raw-read/1`; the
//! node answers `101 Switching Protocols`, and the connection then carries any number of
//! reads, one after the other:
//!
//! - request, 42 bytes: version (16), shard index (2, big-endian), offset (8), length (8),
//!   the client request it is made for ([`crate::trace`], 8; 0 for none);
//! - answer: status (1: 0 = ok, else an error kind), chunk size (4), first chunk (8), byte
//!   count `n` (8), then `n` bytes: for ok, the stored chunk records (`blake3(data) || data`,
//!   see [`crate::store::verify_records`]) that cover the range; for an error, its message.
//!
//! The node sends a file-backed shard's records with `sendfile`, so they go from the page
//! cache to the socket without a copy through user space, and does not verify them: the
//! reader verifies every chunk against its blake3 ([`RawPool::read`]) before using a byte, so
//! a flipped bit on disk or on the way is still found, reported as
//! [`StoreError::Corrupt`], and repaired. The node's scrub keeps verifying at rest.
//!
//! - [`serve`]: the node side; [`pool`]: the reader side ([`RawPool`]). This module holds the
//!   protocol both sides share.

pub mod pool;
pub mod serve;

pub use pool::RawPool;

use crate::error::StoreError;
use bytes::BufMut;
use std::time::Duration;

/// The `Upgrade` protocol name.
pub const PROTOCOL: &str = "tessera-raw-read/2";

pub(crate) const REQUEST_LEN: usize = 42;
pub(crate) const ANSWER_HEAD_LEN: usize = 21;

/// An idle raw connection is closed by the node after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

/// Longest time the node spends sending one answer.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn kind_code(e: &StoreError) -> u8 {
    match e {
        StoreError::NotFound(_) => 1,
        StoreError::InvalidArgument(_) => 2,
        StoreError::Corrupt(_) => 3,
        StoreError::Io(_) => 4,
        _ => 5,
    }
}

pub(crate) fn error_of(code: u8, msg: String) -> StoreError {
    match code {
        1 => StoreError::NotFound(msg),
        2 => StoreError::InvalidArgument(msg),
        3 => StoreError::Corrupt(msg),
        4 => StoreError::Io(msg),
        _ => StoreError::Unavailable(msg),
    }
}

pub(crate) fn answer_head(
    status: u8,
    chunk_size: u32,
    first: u64,
    n: u64,
) -> [u8; ANSWER_HEAD_LEN] {
    let mut h = [0u8; ANSWER_HEAD_LEN];
    let mut w = &mut h[..];
    w.put_u8(status);
    w.put_u32(chunk_size);
    w.put_u64(first);
    w.put_u64(n);
    h
}
