//! The coordinator's client-facing error type and its single mapping to S3 error responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything a client request can fail with. Each variant is one S3 error code.
#[derive(Debug, thiserror::Error)]
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
    /// Deleting a bucket that still holds objects.
    #[error("the bucket is not empty: {0}")]
    BucketNotEmpty(String),
    /// Not enough nodes or shards to serve the request.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// Route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A bug or a local failure; details are logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Status and S3 error code, in one exhaustive match.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NoSuchBucket(_) => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            ApiError::NoSuchKey { .. } => (StatusCode::NOT_FOUND, "NoSuchKey"),
            ApiError::InvalidBucketName(_) => (StatusCode::BAD_REQUEST, "InvalidBucketName"),
            ApiError::KeyTooLong(_) => (StatusCode::BAD_REQUEST, "KeyTooLongError"),
            ApiError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            ApiError::InvalidRange { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange"),
            ApiError::IncompleteBody(_) => (StatusCode::BAD_REQUEST, "IncompleteBody"),
            ApiError::BucketNotEmpty(_) => (StatusCode::CONFLICT, "BucketNotEmpty"),
            ApiError::ServiceUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }

    /// The S3 XML error document for this error about `resource`.
    pub fn to_xml(&self, resource: &str) -> String {
        let (_, code) = self.status_and_code();
        let message = match self {
            ApiError::Internal(_) => {
                "We encountered an internal error. Please try again.".to_string()
            }
            e => e.to_string(),
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><Resource>{}</Resource></Error>",
            crate::xml::escape(&message),
            crate::xml::escape(resource)
        )
    }
}

/// An error together with the resource it concerns (what S3 puts in `<Resource>`).
#[derive(Debug)]
pub struct S3Error {
    /// The error.
    pub error: ApiError,
    /// Request path.
    pub resource: String,
    /// HEAD responses carry no body.
    pub head: bool,
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let (status, _) = self.error.status_and_code();
        if status.is_server_error() {
            tracing::warn!(resource = %self.resource, error = %self.error, "request failed");
        }
        let body = if self.head {
            String::new()
        } else {
            self.error.to_xml(&self.resource)
        };
        let mut resp = (status, [("content-type", "application/xml")], body).into_response();
        if let ApiError::InvalidRange { size } = self.error {
            resp.headers_mut()
                .insert("content-range", format!("bytes */{size}").parse().unwrap());
        }
        resp
    }
}

impl From<tessera_node::StoreError> for ApiError {
    fn from(e: tessera_node::StoreError) -> Self {
        ApiError::ServiceUnavailable(e.to_string())
    }
}

impl From<rocksdb::Error> for ApiError {
    fn from(e: rocksdb::Error) -> Self {
        ApiError::Internal(format!("metadata: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("metadata encoding: {e}"))
    }
}
