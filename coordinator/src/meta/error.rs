//! What a metadata operation can fail with. The coordinator's error type takes these in
//! (`From<MetaError> for ApiError`), and the edge maps that to HTTP in its one place.

/// A metadata operation's failure.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MetaError {
    /// The bucket does not exist.
    #[error("the specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    /// The key has no committed version.
    #[error("the specified key does not exist: {bucket}/{key}")]
    NoSuchKey {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// A version protected by object lock (retention or legal hold).
    #[error("{0}")]
    ObjectLocked(String),
    /// The bucket is not in a state that allows this (e.g. object lock without versioning).
    #[error("{0}")]
    InvalidBucketState(String),
    /// A version id that names no version of the key.
    #[error("the specified version does not exist: {0}")]
    NoSuchVersion(String),
    /// Deleting a bucket that still holds objects.
    #[error("the bucket is not empty: {0}")]
    BucketNotEmpty(String),
    /// Creating something that exists (an access key id).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("the specified multipart upload does not exist: {0}")]
    NoSuchUpload(String),
    /// A part of a completion changed or vanished while it was being completed.
    #[error("{0}")]
    InvalidPart(String),
    /// A conditional write's condition does not hold at the commit.
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    /// An argument the store cannot take.
    #[error("{0}")]
    InvalidArgument(String),
    /// A commit refused because what it builds on was taken away: its in-flight record
    /// expired, or it was decided by a coordinator that is no longer the leader.
    #[error("write fenced off: {0}")]
    Fenced(String),
    /// The metadata cannot be reached with the guarantees asked for (no leader, no quorum).
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// The store itself failed (I/O, encoding, a task that died).
    #[error("metadata: {0}")]
    Storage(String),
}

impl From<serde_json::Error> for MetaError {
    fn from(e: serde_json::Error) -> Self {
        MetaError::Storage(format!("encoding: {e}"))
    }
}

impl From<MetaError> for crate::error::ApiError {
    fn from(e: MetaError) -> Self {
        use crate::error::ApiError as A;
        match e {
            MetaError::NoSuchBucket(b) => A::NoSuchBucket(b),
            MetaError::NoSuchKey { bucket, key } => A::NoSuchKey { bucket, key },
            MetaError::NoSuchVersion(v) => A::NoSuchVersion(v),
            MetaError::ObjectLocked(m) => A::AccessDenied(m),
            MetaError::InvalidBucketState(m) => A::InvalidBucketState(m),
            MetaError::BucketNotEmpty(b) => A::BucketNotEmpty(b),
            MetaError::AlreadyExists(x) => A::AlreadyExists(x),
            MetaError::NoSuchUpload(u) => A::NoSuchUpload(u),
            MetaError::InvalidPart(m) => A::InvalidPart(m),
            MetaError::PreconditionFailed => A::PreconditionFailed,
            MetaError::InvalidArgument(m) => A::InvalidArgument(m),
            MetaError::Fenced(m) => A::ServiceUnavailable(m),
            MetaError::Unavailable(m) => A::ServiceUnavailable(m),
            MetaError::Storage(m) => A::Internal(format!("metadata: {m}")),
        }
    }
}
