//! A browser form upload's tags. S3 takes them in the form field `tagging` (a `Tagging`
//! document); `s3s` 0.14 hands PostObject only a field named `x-amz-tagging`, so a form's
//! `tagging` would be dropped without a word. [`read`] reads the form's fields before the
//! file (with `multer`, at most [`FIELDS_LIMIT`] bytes) and gives the body back whole and
//! unchanged (the bytes read first, then the rest as it streams), with the `tagging` field's
//! value in the request's extensions as [`FormTagging`], where a client cannot put it; the
//! form's policy conditions and signature are still checked by `s3s` on the same fields.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::{Arc, Mutex};

/// The fields of a form read before giving up looking for `tagging` (S3 puts the file
/// last; `s3s` refuses larger field sections anyway).
pub const FIELDS_LIMIT: u64 = 1 << 20;

/// The value of a form upload's `tagging` field.
#[derive(Clone, Debug)]
pub struct FormTagging(pub String);

type BodyChunks = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Whether `req` is a form upload (POST, `multipart/form-data`): the boundary if it is.
pub fn boundary(req: &http::Request<Incoming>) -> Option<String> {
    if req.method() != http::Method::POST {
        return None;
    }
    let ct = req
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    multer::parse_boundary(ct).ok()
}

/// Reads the fields of form upload `req` (boundary `boundary`) up to its file, and returns
/// the request with the same body and, if the form has a `tagging` field, its value as a
/// [`FormTagging`] extension.
pub async fn read(req: http::Request<Incoming>, boundary: String) -> http::Request<s3s::Body> {
    let (mut parts, body) = req.into_parts();
    let source: Arc<Mutex<Option<BodyChunks>>> = Arc::new(Mutex::new(Some(
        body.into_data_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed(),
    )));
    let seen: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    // What multer reads is kept, to be given again in front of the rest.
    let tap = {
        let (source, seen) = (source.clone(), seen.clone());
        futures::stream::poll_fn(move |cx| {
            let mut guard = source.lock().unwrap();
            let Some(s) = guard.as_mut() else {
                return std::task::Poll::Ready(None);
            };
            let next = s.poll_next_unpin(cx);
            if let std::task::Poll::Ready(Some(Ok(b))) = &next {
                seen.lock().unwrap().push(b.clone());
            }
            next
        })
    };
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(u64::MAX)
            .per_field(FIELDS_LIMIT),
    );
    let mut form = multer::Multipart::with_constraints(tap, boundary, limits);
    let mut read = 0u64;
    // A malformed form is left for `s3s` to refuse as it does.
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        // The file is the field named `file` (clients give other fields file names too).
        if name == "file" {
            break;
        }
        let Ok(value) = field.text().await else {
            break;
        };
        read += value.len() as u64;
        if name == "tagging" {
            parts.extensions.insert(FormTagging(value));
            break;
        }
        if read > FIELDS_LIMIT {
            break;
        }
    }
    drop(form);
    let first: Vec<Bytes> = std::mem::take(&mut *seen.lock().unwrap());
    let rest = source.lock().unwrap().take();
    let chunks = futures::stream::iter(first.into_iter().map(Ok))
        .chain(rest.unwrap_or_else(|| futures::stream::empty().boxed()));
    let body = http_body_util::StreamBody::new(chunks.map(|r| r.map(hyper::body::Frame::data)));
    http::Request::from_parts(parts, s3s::Body::http_body_unsync(body))
}
