//! Single-chunk uploads (`UNSIGNED-PAYLOAD` or the body's SHA-256) sent with
//! `Transfer-Encoding: chunked` and no `Content-Length` (what HTTP clients streaming from a
//! pipe send). `s3s` needs a length to accept such a body, so [`Lengthless`] gathers it (at most
//! `--post-max-size`, else 411 MissingContentLength, nothing stored) and hands it on with
//! the length it turned out to have. A form upload's fields are read first
//! ([`crate::edge::form_fields`]: its tags, `${filename}`). Every other request passes through untouched and streams.

use crate::error::ApiError;
use crate::state::Coordinator;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use s3s::service::S3Service;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The S3 service, with lengthless unsigned uploads given a length (see the module docs).
#[derive(Clone)]
pub struct Lengthless {
    inner: S3Service,
    c: Arc<Coordinator>,
}

impl Lengthless {
    /// Wraps `inner` for coordinator `c`.
    pub fn new(inner: S3Service, c: Arc<Coordinator>) -> Self {
        Lengthless { inner, c }
    }
}

/// Whether `req` is a single-chunk upload (unsigned, or signed with the whole body's
/// SHA-256) sent chunked without a length. `aws-chunked` uploads (`STREAMING-*`) carry their
/// length in `x-amz-decoded-content-length` and pass through.
fn lengthless(req: &http::Request<Incoming>) -> bool {
    let h = req.headers();
    let chunked = h
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let single = h
        .get("x-amz-content-sha256")
        .is_some_and(|v| !v.as_bytes().starts_with(b"STREAMING-"));
    req.method() == http::Method::PUT
        && chunked
        && single
        && !h.contains_key(http::header::CONTENT_LENGTH)
}

fn refusal(limit: u64) -> http::Response<s3s::Body> {
    let (status, xml) =
        crate::edge::error::error_document(ApiError::MissingContentLength(format!(
            "an unsigned upload without Content-Length may hold at most {limit} bytes; \
             send Content-Length or sign the payload"
        )));
    let mut resp = http::Response::new(s3s::Body::from(xml));
    *resp.status_mut() = status;
    resp
}

impl hyper::service::Service<http::Request<Incoming>> for Lengthless {
    type Response = http::Response<s3s::Body>;
    type Error = s3s::HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        if let Some(boundary) = crate::edge::form_fields::boundary(&req) {
            return Box::pin(async move {
                let req = crate::edge::form_fields::read(req, boundary).await;
                inner.call(req).await
            });
        }
        if !lengthless(&req) {
            return Box::pin(async move { inner.call(req.map(s3s::Body::from)).await });
        }
        let limit = self.c.config.post_max_size;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let limited = http_body_util::Limited::new(body, limit as usize);
            let bytes: Bytes = match limited.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => return Ok(refusal(limit)),
                // The client stopped sending: nothing was stored, and no one is listening.
                Err(_) => {
                    let mut resp = http::Response::new(s3s::Body::empty());
                    *resp.status_mut() = http::StatusCode::BAD_REQUEST;
                    return Ok(resp);
                }
            };
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, bytes.len().into());
            inner
                .call(http::Request::from_parts(parts, s3s::Body::from(bytes)))
                .await
        })
    }
}
