//! The storage node's error type, shared by the store, the server and the client.

use thiserror::Error;

/// Everything that can go wrong storing or reading a shard.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No committed shard with that id.
    #[error("shard not found: {0}")]
    NotFound(String),
    /// Stored bytes do not match their checksum. Never returned as data.
    #[error("shard corrupt: {0}")]
    Corrupt(String),
    /// The request was malformed (bad header, bad range, bad id).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The write stream ended before it was complete (client went away).
    #[error("incomplete write: {0}")]
    Incomplete(String),
    /// The node has no room for the shard.
    #[error("no space left: {0}")]
    NoSpace(String),
    /// The node could not be reached or answered with an unexpected error.
    #[error("node unavailable: {0}")]
    Unavailable(String),
    /// Local I/O or database failure.
    #[error("storage error: {0}")]
    Io(String),
}

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        match e.kind() {
            rocksdb::ErrorKind::Corruption => StoreError::Corrupt(e.to_string()),
            _ if e.to_string().contains("No space left") => StoreError::NoSpace(e.to_string()),
            _ => StoreError::Io(e.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(28) {
            StoreError::NoSpace(e.to_string())
        } else {
            StoreError::Io(e.to_string())
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
