//! What the S3 operations share: name and header parsing, conditions, output fields, and
//! the lookups of buckets and objects every family makes.

use super::Tessera;
use crate::data::get::{stream_object, ByteRange};
use crate::data::put::ObjectAttrs;
use crate::edge::error::{s3_err, stream_error};
use crate::error::ApiError;
use crate::meta::{BucketMeta, Listing, ObjectMeta, Precondition};
use crate::names::{BucketName, EcSpec, ObjectKey};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::*;
use s3s::{S3Response, S3Result};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Largest total size of `x-amz-meta-*` names and values (S3's limit).
pub const MAX_USER_META: usize = 2048;

pub(super) type R<T> = S3Result<S3Response<T>>;

pub(super) fn ok<T>(t: T) -> R<T> {
    Ok(S3Response::new(t))
}

pub(super) fn bucket_name(s: &str) -> S3Result<BucketName> {
    BucketName::parse(s).map_err(s3_err)
}

pub(super) fn object_key(s: &str) -> S3Result<ObjectKey> {
    ObjectKey::parse(s).map_err(s3_err)
}

pub(super) fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Whole seconds since the epoch (HTTP dates have second precision).
pub(super) fn secs(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    t.unix_timestamp()
}

pub(super) fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

pub(super) fn header_ec(headers: &http::HeaderMap) -> S3Result<Option<EcSpec>> {
    match headers.get("x-tessera-ec") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<EcSpec>().ok())
            .map(Some)
            .ok_or_else(|| {
                s3_err(ApiError::InvalidArgument(format!(
                    "bad x-tessera-ec {v:?}; expected K+M"
                )))
            }),
    }
}

/// `x-tessera-replicate-below: BYTES` at bucket creation: objects of the bucket below that
/// size are stored as `1+m` replicas instead of packed into segments (0: never).
pub(super) fn header_replicate_below(headers: &http::HeaderMap) -> S3Result<Option<u64>> {
    match headers.get("x-tessera-replicate-below") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                s3_err(ApiError::InvalidArgument(format!(
                    "bad x-tessera-replicate-below {v:?}; expected a size in bytes"
                )))
            }),
    }
}

/// Refuses request options Tessera would otherwise silently ignore (encryption, storage
/// classes other than STANDARD).
pub(super) fn refuse_unsupported(sse: bool, storage_class: Option<&str>) -> S3Result<()> {
    let what = if sse {
        Some("server-side encryption")
    } else if storage_class.is_some_and(|s| s != "STANDARD") {
        Some("storage classes other than STANDARD")
    } else {
        None
    };
    match what {
        Some(w) => Err(s3_err(ApiError::NotImplemented(w.into()))),
        None => Ok(()),
    }
}

/// User metadata and the stored standard headers of a PUT or copy.
#[allow(clippy::too_many_arguments)]
pub(super) fn attrs(
    content_type: Option<String>,
    metadata: Option<Metadata>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
) -> S3Result<ObjectAttrs> {
    let user_meta: BTreeMap<String, String> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let meta_len: usize = user_meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if meta_len > MAX_USER_META {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::MetadataTooLarge,
            format!("user metadata is {meta_len} bytes; the limit is {MAX_USER_META}"),
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        return Err(e);
    }
    // `aws-chunked` names how this request's body was sent, not the object's encoding: it is
    // not stored (`gzip, aws-chunked` is stored as `gzip`; nothing if it was all there was).
    let content_encoding = content_encoding.and_then(|e| {
        let kept: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    let mut headers = BTreeMap::new();
    for (name, v) in [
        ("content-encoding", content_encoding),
        ("content-disposition", content_disposition),
        ("content-language", content_language),
        ("cache-control", cache_control),
    ] {
        if let Some(v) = v {
            headers.insert(name.to_string(), v);
        }
    }
    if let Some(t) = expires {
        let mut buf = Vec::new();
        t.format(TimestampFormat::HttpDate, &mut buf)
            .map_err(|e| s3_err(ApiError::InvalidArgument(format!("bad Expires: {e}"))))?;
        headers.insert("expires".into(), String::from_utf8_lossy(&buf).into_owned());
    }
    Ok(ObjectAttrs {
        content_type,
        user_meta,
        headers,
        acl: None,
        tags: BTreeMap::new(),
        retention: None,
        legal_hold: false,
    })
}

/// The request body as the data path takes it: the byte stream, each error named (payload
/// hash mismatch, a client that stopped sending, a cut-off body).
pub(super) fn body_stream(
    body: Option<StreamingBlob>,
    idle: Duration,
) -> futures::stream::BoxStream<'static, Result<Bytes, ApiError>> {
    match body {
        Some(b) => idle_timeout(b, idle).boxed(),
        None => futures::stream::empty().boxed(),
    }
}

/// Fails a body that delivers nothing for `idle`.
pub(super) fn idle_timeout(
    blob: StreamingBlob,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, ApiError>> + Send {
    futures::stream::unfold(Some(blob), move |state| async move {
        let mut blob = state?;
        match tokio::time::timeout(idle, blob.next()).await {
            Err(_) => Some((Err(ApiError::RequestTimeout(idle)), None)),
            Ok(None) => None,
            Ok(Some(Ok(b))) => Some((Ok(b), Some(blob))),
            Ok(Some(Err(e))) => Some((Err(stream_error(&*e)), None)),
        }
    })
}

/// Condition headers of a GET or HEAD, evaluated against the committed version.
pub(super) fn check_read_conditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let tag = etag(meta);
    let modified = (meta.last_modified_ms / 1000) as i64;
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == tag.value(),
    };
    let failed = || s3_err(ApiError::PreconditionFailed);
    match if_match {
        Some(c) if !matches(c) => return Err(failed()),
        Some(_) => {}
        None => {
            if if_unmodified_since.is_some_and(|t| modified > secs(t)) {
                return Err(failed());
            }
        }
    }
    // A 304 still names the version it stands for (ETag, Last-Modified), as S3's does.
    let not_modified = || {
        let mut e = s3s::S3Error::new(s3s::S3ErrorCode::NotModified);
        let mut h = http::HeaderMap::new();
        let at = UNIX_EPOCH + Duration::from_millis(meta.last_modified_ms);
        let fields = [
            (http::header::ETAG, format!("\"{}\"", meta.etag)),
            (http::header::LAST_MODIFIED, httpdate::fmt_http_date(at)),
        ];
        for (name, value) in fields {
            if let Ok(v) = http::HeaderValue::try_from(value) {
                h.insert(name, v);
            }
        }
        e.set_headers(h);
        e
    };
    match if_none_match {
        Some(c) if matches(c) => return Err(not_modified()),
        Some(_) => {}
        None => {
            if if_modified_since.is_some_and(|t| modified <= secs(t)) {
                return Err(not_modified());
            }
        }
    }
    Ok(())
}

pub(super) fn header_field(meta: &ObjectMeta, name: &str) -> Option<String> {
    meta.headers.get(name).cloned()
}

pub(super) fn expires_of(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.headers
        .get("expires")
        .and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, v).ok())
}

pub(super) fn user_metadata(meta: &ObjectMeta) -> Option<Metadata> {
    (!meta.user_meta.is_empty()).then(|| meta.user_meta.clone().into_iter().collect())
}

pub(super) fn encode_key(key: String, url: bool) -> String {
    if url {
        urlencoding::encode(&key).replace("%2F", "/")
    } else {
        key
    }
}

pub(super) fn list_object(o: &ObjectMeta, url: bool, owner: Option<Owner>) -> Object {
    Object {
        key: Some(encode_key(o.key.clone(), url)),
        e_tag: Some(etag(o)),
        size: Some(o.size as i64),
        last_modified: Some(timestamp(o.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner,
        ..Default::default()
    }
}

pub(super) fn prefixes(l: &Listing, url: bool) -> Option<Vec<CommonPrefix>> {
    (!l.prefixes.is_empty()).then(|| {
        l.prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(encode_key(p.clone(), url)),
            })
            .collect()
    })
}

/// Where the next page of a listing starts: past every key under a rolled-up prefix.
pub(super) fn resume_after(l: &Listing) -> Option<String> {
    let next = l.next.as_ref()?;
    Some(if l.prefixes.last() == Some(next) {
        format!("{next}\u{10FFFF}")
    } else {
        next.clone()
    })
}

pub(super) fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_err(ApiError::InvalidArgument(format!(
            "max-keys {n} is negative"
        )))),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

pub(super) fn is_url(e: &Option<EncodingType>) -> S3Result<bool> {
    match e {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(e) => Err(s3_err(ApiError::InvalidArgument(format!(
            "encoding-type {} is not supported",
            e.as_str()
        )))),
    }
}

pub(super) fn precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Precondition> {
    let m = if_match.map(|c| match c {
        ETagCondition::Any => Precondition::Exists,
        ETagCondition::ETag(e) => Precondition::ETag(e.value().to_string()),
    });
    let n = if_none_match.map(|c| match c {
        ETagCondition::Any => Precondition::Absent,
        ETagCondition::ETag(e) => Precondition::NotETag(e.value().to_string()),
    });
    Ok(match (m, n) {
        (None, None) => Precondition::None,
        (Some(c), None) | (None, Some(c)) => c,
        (Some(a), Some(b)) => Precondition::Both(Box::new(a), Box::new(b)),
    })
}

/// Tessera's own response headers: the object's erasure code and version.
pub(super) fn tessera_headers(meta: &ObjectMeta, h: &mut http::HeaderMap) {
    if let Some(v) = meta
        .ec()
        .and_then(|ec| http::HeaderValue::try_from(ec.to_string()).ok())
    {
        h.insert("x-tessera-ec", v);
    }
    if let Ok(v) = http::HeaderValue::try_from(meta.version.to_string()) {
        h.insert("x-tessera-version", v);
    }
    if let Some(p) = &meta.packed {
        if let Ok(v) = http::HeaderValue::try_from(p.segment.to_string()) {
            h.insert("x-tessera-segment", v);
        }
    }
}

impl Tessera {
    /// Bucket `name`, or NoSuchBucket (or InvalidBucketName).
    pub(super) async fn existing_bucket(&self, name: &str) -> S3Result<BucketMeta> {
        let n = bucket_name(name)?.to_string();
        self.c
            .meta
            .bucket(n.clone())
            .await
            .map_err(s3_err)?
            .ok_or_else(|| s3_err(ApiError::NoSuchBucket(n)))
    }

    pub(super) async fn object(&self, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        let b = bucket_name(bucket)?.to_string();
        let k = object_key(key)?.to_string();
        self.c
            .meta
            .lookup(b.clone(), k.clone())
            .await
            .map_err(s3_err)?
            .ok_or_else(|| s3_err(ApiError::NoSuchKey { bucket: b, key: k }))
    }

    /// Streams the stored bytes of `meta` in `range` (inclusive), first stripe fetched.
    pub(super) async fn read(
        &self,
        meta: &ObjectMeta,
        range: ByteRange,
    ) -> S3Result<StreamingBlob> {
        let s = stream_object(self.c.data().clone(), meta, range)
            .await
            .map_err(s3_err)?;
        Ok(StreamingBlob::wrap(sync_wrapper::SyncStream::new(s)))
    }

    /// The source object of a copy: the caller must be able to read it, and it must meet the
    /// copy-source conditions (412 when not).
    pub(super) async fn copy_source(
        &self,
        caller: Option<&str>,
        source: &CopySource,
        [if_match, if_none_match]: [Option<&ETagCondition>; 2],
        [if_modified_since, if_unmodified_since]: [Option<&Timestamp>; 2],
    ) -> S3Result<ObjectMeta> {
        let (bucket, key, version_id) = match source {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => (
                bucket.to_string(),
                key.to_string(),
                version_id.as_deref().map(String::from),
            ),
            _ => {
                return Err(s3_err(ApiError::NotImplemented(
                    "copy from an access point".into(),
                )))
            }
        };
        // The caller needs read access to the source, as it would to GET it.
        crate::edge::access::Access::new(self.c.clone())
            .require_read(caller, &bucket, &key)
            .await?;
        let src = self.object_at(&bucket, &key, version_id.as_deref()).await?;
        check_read_conditions(
            &src,
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
        )
        .map_err(|e| {
            if *e.code() == s3s::S3ErrorCode::NotModified {
                s3_err(ApiError::PreconditionFailed)
            } else {
                e
            }
        })?;
        Ok(src)
    }

    /// Bytes `[start, start + len)` of `src` as the body of a copy.
    pub(super) async fn source_stream(
        &self,
        src: &ObjectMeta,
        start: u64,
        len: u64,
    ) -> S3Result<futures::stream::BoxStream<'static, Result<Bytes, ApiError>>> {
        if len == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let range = ByteRange {
            start,
            end: start + len - 1,
        };
        Ok(stream_object(self.c.data().clone(), src, range)
            .await
            .map_err(s3_err)?
            .map(|r| r.map_err(|e| ApiError::ServiceUnavailable(format!("copy source: {e}"))))
            .boxed())
    }
}
