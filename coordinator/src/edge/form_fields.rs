//! The fields of a browser form upload that `s3s` 0.14 does not handle, read before it parses
//! the form. [`read`] reads the form's fields before the file (with `multer`, at most
//! [`FIELDS_LIMIT`] bytes) and gives the body back (the bytes read first, then the rest as it
//! streams), with:
//!
//! - the `tagging` field (S3 takes a form's tags there as a `Tagging` document; `s3s` hands
//!   PostObject only a field named `x-amz-tagging`, so it would be dropped without a word) in
//!   the request's extensions as [`FormTagging`], where a client cannot put it;
//! - `${filename}` in any field's value replaced by the name of the uploaded file, as S3
//!   does (`uploads/${filename}` stores `uploads/photo.jpg`), before `s3s` checks the form's
//!   policy conditions on the fields (a `starts-with` condition sees the name the object gets).
//!   `Content-Length` is corrected by the difference. The file's bytes are never touched.
//!
//! Otherwise the body is handed on byte for byte, and the policy's signature and conditions
//! are still checked by `s3s`.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::{Arc, Mutex};

/// The fields of a form read before giving up looking for `tagging` and `${filename}` (S3
/// puts the file last; `s3s` refuses larger field sections anyway).
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
/// the request with the same body (but for `${filename}` in the fields' values, replaced by
/// the file's name) and, if the form has a `tagging` field, its value as a [`FormTagging`]
/// extension.
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
    let mut form = multer::Multipart::with_constraints(tap, boundary.clone(), limits);
    let (mut read, mut fields, mut named) = (0u64, 0usize, false);
    let mut file_name = None;
    // A malformed form is left for `s3s` to refuse as it does.
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        // The file is the field named `file` (clients give other fields file names too).
        if name == "file" {
            file_name = field.file_name().map(str::to_string);
            break;
        }
        let Ok(value) = field.text().await else {
            break;
        };
        fields += 1;
        read += value.len() as u64;
        named |= value.contains(FILENAME);
        if name == "tagging" {
            parts.extensions.insert(FormTagging(value));
        }
        if read > FIELDS_LIMIT {
            break;
        }
    }
    drop(form);
    let mut first: Vec<Bytes> = std::mem::take(&mut *seen.lock().unwrap());
    if let (true, Some(file_name)) = (named, file_name) {
        let joined: Vec<u8> = first.concat();
        if let Some(rewritten) = with_file_name(&joined, &boundary, fields, &file_name) {
            if let Some(len) = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
            {
                let len = len + rewritten.len() as u64 - joined.len() as u64;
                parts
                    .headers
                    .insert(http::header::CONTENT_LENGTH, len.into());
            }
            first = vec![Bytes::from(rewritten)];
        }
    }
    let rest = source.lock().unwrap().take();
    let chunks = futures::stream::iter(first.into_iter().map(Ok))
        .chain(rest.unwrap_or_else(|| futures::stream::empty().boxed()));
    let body = http_body_util::StreamBody::new(chunks.map(|r| r.map(hyper::body::Frame::data)));
    http::Request::from_parts(parts, s3s::Body::http_body_unsync(body))
}

/// The variable a form field may hold for the uploaded file's name.
const FILENAME: &str = "${filename}";

/// `head`, the start of a form (boundary `boundary`) whose first `fields` parts are fields
/// and whose next part is the file, with [`FILENAME`] replaced by `file_name` in the fields'
/// values (not in part headers, not in the file). `None` if the parts are not all there.
fn with_file_name(head: &[u8], boundary: &str, fields: usize, file_name: &str) -> Option<Vec<u8>> {
    // A part starts at a delimiter: `--boundary` at the start or after a line break. A
    // part's content cannot hold one (that is what the boundary is chosen for).
    let delimiter = format!("--{boundary}");
    let mut starts = Vec::with_capacity(fields + 1);
    let mut at = 0;
    while starts.len() <= fields {
        let found = find(&head[at..], delimiter.as_bytes())? + at;
        if found == 0 || head[..found].ends_with(b"\r\n") {
            starts.push(found);
        }
        at = found + delimiter.len();
    }
    let mut out = Vec::with_capacity(head.len() + 64);
    out.extend_from_slice(&head[..starts[0]]);
    for w in starts.windows(2) {
        let part = &head[w[0]..w[1]];
        // Headers end at the first empty line; the value runs to the line break that
        // precedes the next delimiter.
        let body = find(part, b"\r\n\r\n")? + 4;
        out.extend_from_slice(&part[..body]);
        out.extend_from_slice(&replace(
            &part[body..],
            FILENAME.as_bytes(),
            file_name.as_bytes(),
        ));
    }
    out.extend_from_slice(&head[starts[fields]..]);
    Some(out)
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `hay` with every `from` replaced by `to`.
fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut at = 0;
    while let Some(i) = find(&hay[at..], from) {
        out.extend_from_slice(&hay[at..at + i]);
        out.extend_from_slice(to);
        at += i + from.len();
    }
    out.extend_from_slice(&hay[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::with_file_name;

    fn form(parts: &[(&str, &str)], file: &str) -> Vec<u8> {
        let mut b = String::new();
        for (name, value) in parts {
            b += &format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            );
        }
        b += "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n";
        b += file;
        b += "\r\n--XyZ--\r\n";
        b.into_bytes()
    }

    #[test]
    fn the_file_name_goes_into_the_fields_and_nowhere_else() {
        let head = form(
            &[
                ("key", "up/${filename}"),
                ("x-amz-meta-n", "${filename}!"),
                ("acl", "private"),
            ],
            "bytes with ${filename} inside",
        );
        let out = with_file_name(&head, "XyZ", 3, "a.txt").unwrap();
        let want = form(
            &[
                ("key", "up/a.txt"),
                ("x-amz-meta-n", "a.txt!"),
                ("acl", "private"),
            ],
            "bytes with ${filename} inside",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn a_head_without_all_its_parts_is_left_alone() {
        let head = form(&[("key", "${filename}")], "");
        // Cut before the file's delimiter; or said to have more fields than it has.
        assert!(with_file_name(&head[..20], "XyZ", 1, "a.txt").is_none());
        assert!(with_file_name(&head, "XyZ", 3, "a.txt").is_none());
    }
}
