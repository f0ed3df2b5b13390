//! The one place coordinator errors become HTTP: S3 error codes for the client API (written
//! by `s3s` as S3 XML) and the same statuses for the admin API's JSON errors.

use crate::error::ApiError;
use http::StatusCode;
use s3s::{S3Error, S3ErrorCode};

/// The S3 error code and HTTP status of an error, in one exhaustive match.
pub fn code_and_status(e: &ApiError) -> (S3ErrorCode, StatusCode) {
    use S3ErrorCode as C;
    match e {
        ApiError::NoSuchBucket(_) => (C::NoSuchBucket, StatusCode::NOT_FOUND),
        ApiError::NoSuchKey { .. } => (C::NoSuchKey, StatusCode::NOT_FOUND),
        ApiError::InvalidBucketName(_) => (C::InvalidBucketName, StatusCode::BAD_REQUEST),
        ApiError::KeyTooLong(_) => (C::KeyTooLongError, StatusCode::BAD_REQUEST),
        ApiError::InvalidArgument(_) => (C::InvalidArgument, StatusCode::BAD_REQUEST),
        ApiError::InvalidRange { .. } => (C::InvalidRange, StatusCode::RANGE_NOT_SATISFIABLE),
        ApiError::IncompleteBody(_) => (C::IncompleteBody, StatusCode::BAD_REQUEST),
        ApiError::RequestTimeout(_) => (C::RequestTimeout, StatusCode::BAD_REQUEST),
        ApiError::BadDigest(_) => (C::BadDigest, StatusCode::BAD_REQUEST),
        ApiError::ContentSha256Mismatch => (
            C::Custom("XAmzContentSHA256Mismatch".into()),
            StatusCode::BAD_REQUEST,
        ),
        ApiError::SignatureDoesNotMatch(_) => (C::SignatureDoesNotMatch, StatusCode::FORBIDDEN),
        ApiError::BucketNotEmpty(_) => (C::BucketNotEmpty, StatusCode::CONFLICT),
        ApiError::AlreadyExists(_) => (C::Custom("AlreadyExists".into()), StatusCode::CONFLICT),
        ApiError::NoSuchUpload(_) => (C::NoSuchUpload, StatusCode::NOT_FOUND),
        ApiError::InvalidPart(_) => (C::InvalidPart, StatusCode::BAD_REQUEST),
        ApiError::InvalidPartOrder => (C::InvalidPartOrder, StatusCode::BAD_REQUEST),
        ApiError::EntityTooSmall(_) => (C::EntityTooSmall, StatusCode::BAD_REQUEST),
        ApiError::PreconditionFailed => (C::PreconditionFailed, StatusCode::PRECONDITION_FAILED),
        ApiError::InvalidRequest(_) => (C::InvalidRequest, StatusCode::BAD_REQUEST),
        ApiError::AccessDenied(_) => (C::AccessDenied, StatusCode::FORBIDDEN),
        ApiError::AclNotSupported(_) => (C::AccessControlListNotSupported, StatusCode::BAD_REQUEST),
        ApiError::InvalidBucketAclWithObjectOwnership(_) => (
            C::Custom("InvalidBucketAclWithObjectOwnership".into()),
            StatusCode::BAD_REQUEST,
        ),
        ApiError::InvalidDigest(_) => (C::InvalidDigest, StatusCode::BAD_REQUEST),
        ApiError::MissingContentLength(_) => (C::MissingContentLength, StatusCode::LENGTH_REQUIRED),
        ApiError::InvalidRetentionPeriod(_) => (
            C::Custom("InvalidRetentionPeriod".into()),
            StatusCode::BAD_REQUEST,
        ),
        ApiError::InvalidBucketState(_) => (C::InvalidBucketState, StatusCode::CONFLICT),
        ApiError::InvalidTag(_) => (C::InvalidTag, StatusCode::BAD_REQUEST),
        ApiError::NoSuchVersion(_) => (C::NoSuchVersion, StatusCode::NOT_FOUND),
        ApiError::MethodNotAllowed(_) => (C::MethodNotAllowed, StatusCode::METHOD_NOT_ALLOWED),
        ApiError::RequestTimeTooSkewed(_) => (C::RequestTimeTooSkewed, StatusCode::FORBIDDEN),
        ApiError::CorsForbidden => (C::Custom("AccessForbidden".into()), StatusCode::FORBIDDEN),
        ApiError::MalformedAcl(_) => (C::MalformedACLError, StatusCode::BAD_REQUEST),
        ApiError::MalformedPolicy(_) => (C::MalformedPolicy, StatusCode::BAD_REQUEST),
        ApiError::MalformedXml(_) => (C::MalformedXML, StatusCode::BAD_REQUEST),
        ApiError::UnresolvableGrantByEmail(_) => {
            (C::UnresolvableGrantByEmailAddress, StatusCode::BAD_REQUEST)
        }
        ApiError::NoSuchConfiguration(code, _) => (
            C::from_bytes(code.as_bytes()).unwrap_or(C::Custom((*code).into())),
            StatusCode::NOT_FOUND,
        ),
        ApiError::NotImplemented(_) => (C::NotImplemented, StatusCode::NOT_IMPLEMENTED),
        ApiError::NoSuchNode(_) => (C::Custom("NoSuchNode".into()), StatusCode::NOT_FOUND),
        ApiError::Conflict(_) => (C::Custom("Conflict".into()), StatusCode::CONFLICT),
        ApiError::ServiceUnavailable(_) => (C::ServiceUnavailable, StatusCode::SERVICE_UNAVAILABLE),
        ApiError::Internal(_) => (C::InternalError, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The S3 error for `e` (an [`ApiError`], or what converts into one, such as a
/// [`crate::meta::MetaError`]). Internal errors are logged here and sent without their details.
pub fn s3_err(e: impl Into<ApiError>) -> S3Error {
    let e: ApiError = e.into();
    let (code, status) = code_and_status(&e);
    let message = match &e {
        ApiError::Internal(_) => {
            tracing::warn!(error = %e, "request failed");
            "We encountered an internal error. Please try again.".to_string()
        }
        ApiError::ServiceUnavailable(_) => {
            tracing::warn!(error = %e, "request failed");
            e.to_string()
        }
        _ => e.to_string(),
    };
    let mut out = S3Error::with_message(code, message);
    out.set_status_code(status);
    if let Some(id) = tessera_node::trace::current() {
        out.set_request_id(id.to_string());
    }
    out
}

/// The S3 error document (status and XML body) for `e`, for the layers around `s3s` that
/// answer a request themselves (CORS preflights, lengthless uploads, the dialect fixes).
pub fn error_document(e: impl Into<ApiError>) -> (StatusCode, String) {
    let e = s3_err(e);
    let status = e.status_code().unwrap_or(StatusCode::BAD_REQUEST);
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        escape(e.code().as_str()),
        escape(e.message().unwrap_or_default())
    );
    (status, xml)
}

/// Names an error from a request body stream: `s3s` verifies signed payloads as the body is
/// read and reports a mismatch as a stream error (its error types are private, so they are
/// recognised by their text).
pub fn stream_error(e: &(dyn std::error::Error + 'static)) -> ApiError {
    let text = e.to_string();
    if text.contains("Sha256Mismatch") {
        ApiError::ContentSha256Mismatch
    } else if text.contains("SignatureMismatch") {
        ApiError::SignatureDoesNotMatch("a chunk signature".into())
    } else {
        ApiError::IncompleteBody(text)
    }
}
