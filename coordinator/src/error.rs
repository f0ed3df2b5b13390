//! The coordinator's error type. Each variant is one kind of failure a client or operator can
//! act on; the edge (`crate::edge::error`) maps them to HTTP statuses and S3 codes in one
//! place, so nothing below the edge knows of status codes or XML.

/// Everything a coordinator operation can fail with.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The bucket does not exist.
    #[error("the specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    /// The key does not exist.
    #[error("the specified key does not exist: {bucket}/{key}")]
    NoSuchKey {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The bucket name breaks the naming rules.
    #[error("invalid bucket name {0}")]
    InvalidBucketName(String),
    /// The key is longer than 1024 bytes.
    #[error("key is {0} bytes; the limit is 1024")]
    KeyTooLong(usize),
    /// A malformed header, parameter or key.
    #[error("{0}")]
    InvalidArgument(String),
    /// The requested range is outside the object.
    #[error("the requested range is not satisfiable for an object of {size} bytes")]
    InvalidRange {
        /// Object size.
        size: u64,
    },
    /// The body was shorter than Content-Length, or the client went away.
    #[error("request body ended early: {0}")]
    IncompleteBody(String),
    /// The client sent nothing for longer than the idle body timeout.
    #[error("no request body bytes for {0:?}")]
    RequestTimeout(std::time::Duration),
    /// A checksum given with the body does not match the body.
    #[error("{0}")]
    BadDigest(String),
    /// The signed payload hash does not match the body.
    #[error("the provided x-amz-content-sha256 does not match what was computed")]
    ContentSha256Mismatch,
    /// A signature (of the request or of one aws-chunked chunk) does not match.
    #[error("the request signature does not match: {0}")]
    SignatureDoesNotMatch(String),
    /// Deleting a bucket that still holds objects.
    #[error("the bucket is not empty: {0}")]
    BucketNotEmpty(String),
    /// Creating something that exists (a bucket of another owner, a key id).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The multipart upload does not exist (never created, completed or aborted).
    #[error("the specified multipart upload does not exist: {0}")]
    NoSuchUpload(String),
    /// A part named in a completion is missing or has another ETag.
    #[error("{0}")]
    InvalidPart(String),
    /// The parts of a completion are not in ascending order.
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error("{0}")]
    EntityTooSmall(String),
    /// A conditional request's condition does not hold.
    #[error("at least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    /// The request is well formed but not one S3 accepts (e.g. copying an object onto itself
    /// without replacing its metadata).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The caller may not do this.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// An ACL document or grant that cannot be read.
    #[error("the ACL is not well formed: {0}")]
    MalformedAcl(String),
    /// A bucket policy that cannot be read or names what it may not.
    #[error("{0}")]
    MalformedPolicy(String),
    /// An XML document (CORS rules, ownership controls) that is not what the operation takes.
    #[error("the XML is not well formed or does not validate: {0}")]
    MalformedXml(String),
    /// An ACL sent to a bucket whose ACLs are disabled (`BucketOwnerEnforced`).
    #[error("bucket {0} has ACLs disabled (BucketOwnerEnforced)")]
    AclNotSupported(String),
    /// ACLs switched off (`BucketOwnerEnforced`) on a bucket whose ACL grants to others.
    #[error("bucket {0} has an ACL that grants to others; set it to private first")]
    InvalidBucketAclWithObjectOwnership(String),
    /// A Content-MD5 header that is not an MD5 (not base64, or not 16 bytes).
    #[error("{0}")]
    InvalidDigest(String),
    /// A body without a length where one is needed.
    #[error("{0}")]
    MissingContentLength(String),
    /// A default retention period that is not a positive number of days or years.
    #[error("{0}")]
    InvalidRetentionPeriod(String),
    /// The bucket is not in a state that allows this.
    #[error("{0}")]
    InvalidBucketState(String),
    /// Tags S3 would refuse (too many, too long, duplicated, malformed).
    #[error("{0}")]
    InvalidTag(String),
    /// A version id that names no version of the key.
    #[error("the specified version does not exist: {0}")]
    NoSuchVersion(String),
    /// The method does not apply to what the request names (a delete marker's version).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A signed request dated too far from the coordinator's clock.
    #[error("{0}")]
    RequestTimeTooSkewed(String),
    /// A CORS preflight no rule of the bucket allows.
    #[error("CORSResponse: this CORS request is not allowed")]
    CorsForbidden,
    /// A grant to an e-mail address (this store knows keys, not addresses).
    #[error("no access key has the e-mail address {0:?}; grant to a key id instead")]
    UnresolvableGrantByEmail(String),
    /// The bucket has no such configuration (policy, CORS rules, ownership controls, public
    /// access block): the S3 code to answer with, and the bucket.
    #[error("the bucket {1} has no {0}")]
    NoSuchConfiguration(&'static str, String),
    /// A request Tessera does not implement; nothing was changed.
    #[error("{0} is not implemented")]
    NotImplemented(String),
    /// No registered node has this id.
    #[error("no such node: {0}")]
    NoSuchNode(String),
    /// An operation the cluster's state does not allow now (removing a node that still
    /// holds shards, draining so many nodes that the code no longer fits); nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// Not enough nodes or shards to serve the request.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// A bug or a local failure; details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tessera_node::StoreError> for ApiError {
    fn from(e: tessera_node::StoreError) -> Self {
        ApiError::ServiceUnavailable(e.to_string())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("metadata encoding: {e}"))
    }
}
