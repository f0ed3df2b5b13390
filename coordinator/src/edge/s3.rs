//! The S3 operations Tessera implements, as the `s3s` library's [`S3`] trait.
//!
//! `s3s` parses every request (path and virtual-hosted style, query sub-resources, headers,
//! XML bodies), verifies SigV4 signatures and payload hashes, and writes responses and S3
//! errors. Every operation this impl does not override answers `501 NotImplemented` and
//! changes nothing: an ACL, tagging, CORS or versioning request can never fall through to a
//! plain object write or delete.
//!
//! Implemented: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation,
//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject, ListObjects (v1),
//! ListObjectsV2, ListObjectVersions (unversioned: every object with VersionId `null`),
//! GetBucketVersioning (never enabled), and the
//! multipart operations (in [`super::multipart`]).

use super::checksum::{stored_checksums, BodyChecks};
use super::error::{s3_err, stream_error};
use crate::data::get::{stream_object, ByteRange};
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::error::ApiError;
use crate::meta::{now_ms, BucketMeta, Listing, ObjectMeta, Precondition};
use crate::names::{BucketName, EcSpec, ObjectKey};
use crate::state::Coordinator;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tessera_node::ShardRole;

/// Largest total size of `x-amz-meta-*` names and values (S3's limit).
pub const MAX_USER_META: usize = 2048;

/// Tessera behind the `s3s` trait.
pub struct Tessera {
    pub(super) c: Arc<Coordinator>,
}

impl Tessera {
    /// The S3 implementation over a running coordinator.
    pub fn new(c: Arc<Coordinator>) -> Self {
        Tessera { c }
    }
}

type R<T> = S3Result<S3Response<T>>;

fn ok<T>(t: T) -> R<T> {
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
fn secs(t: &Timestamp) -> i64 {
    let t: time::OffsetDateTime = t.clone().into();
    t.unix_timestamp()
}

fn etag(meta: &ObjectMeta) -> ETag {
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

/// Refuses request options Tessera would otherwise silently ignore (encryption, object
/// lock, ACLs other than private, storage classes other than STANDARD, tagging, appends).
pub(super) fn refuse_unsupported(
    acl: Option<&str>,
    sse: bool,
    lock: bool,
    storage_class: Option<&str>,
    tagging: bool,
) -> S3Result<()> {
    let what = if sse {
        Some("server-side encryption")
    } else if lock {
        Some("object lock")
    } else if acl.is_some_and(|a| a != "private") {
        Some("ACLs other than private")
    } else if storage_class.is_some_and(|s| s != "STANDARD") {
        Some("storage classes other than STANDARD")
    } else if tagging {
        Some("object tagging")
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
fn idle_timeout(
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
    let not_modified = || s3s::S3Error::new(s3s::S3ErrorCode::NotModified);
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

fn header_field(meta: &ObjectMeta, name: &str) -> Option<String> {
    meta.headers.get(name).cloned()
}

fn expires_of(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.headers
        .get("expires")
        .and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, v).ok())
}

fn user_metadata(meta: &ObjectMeta) -> Option<Metadata> {
    (!meta.user_meta.is_empty()).then(|| meta.user_meta.clone().into_iter().collect())
}

pub(super) fn encode_key(key: String, url: bool) -> String {
    if url {
        urlencoding::encode(&key).replace("%2F", "/")
    } else {
        key
    }
}

fn list_object(o: &ObjectMeta, url: bool, owner: bool) -> Object {
    Object {
        key: Some(encode_key(o.key.clone(), url)),
        e_tag: Some(etag(o)),
        size: Some(o.size as i64),
        last_modified: Some(timestamp(o.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: owner.then(tessera_owner),
        ..Default::default()
    }
}

pub(super) fn tessera_owner() -> Owner {
    Owner {
        display_name: Some("tessera".into()),
        id: Some("tessera".into()),
    }
}

fn prefixes(l: &Listing, url: bool) -> Option<Vec<CommonPrefix>> {
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
fn resume_after(l: &Listing) -> Option<String> {
    let next = l.next.as_ref()?;
    Some(if l.prefixes.last() == Some(next) {
        format!("{next}\u{10FFFF}")
    } else {
        next.clone()
    })
}

fn max_keys(v: Option<i32>) -> S3Result<usize> {
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

impl Tessera {
    async fn listing(
        &self,
        bucket: &str,
        prefix: String,
        after: Option<String>,
        delimiter: Option<String>,
        max: usize,
    ) -> S3Result<Listing> {
        let b = self.existing_bucket(bucket).await?.name;
        if max == 0 {
            return Ok(Listing::default());
        }
        self.c
            .meta
            .list(b, prefix, after, delimiter, max)
            .await
            .map_err(s3_err)
    }

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
        let s = stream_object(self.c.clone(), meta, range)
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
        let (bucket, key) = match source {
            CopySource::Bucket {
                bucket,
                key,
                version_id,
            } => {
                if version_id.as_deref().is_some_and(|v| v != "null") {
                    return Err(s3_err(ApiError::NotImplemented("object versions".into())));
                }
                (bucket.to_string(), key.to_string())
            }
            _ => {
                return Err(s3_err(ApiError::NotImplemented(
                    "copy from an access point".into(),
                )))
            }
        };
        // The caller needs read access to the source, as it would to GET it.
        super::auth::require(&self.c, caller, &bucket, super::auth::Need::Read).await?;
        let src = self.object(&bucket, &key).await?;
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
        Ok(stream_object(self.c.clone(), src, range)
            .await
            .map_err(s3_err)?
            .map(|r| r.map_err(|e| ApiError::ServiceUnavailable(format!("copy source: {e}"))))
            .boxed())
    }

    async fn delete_key(&self, bucket: String, key: String) -> Result<(), ApiError> {
        if self.c.meta.bucket(bucket.clone()).await?.is_none() {
            return Err(ApiError::NoSuchBucket(bucket));
        }
        let removed = self.c.meta.delete_object(bucket, key).await?;
        if removed.is_some() {
            self.c.gc_kick.notify_one();
        }
        Ok(())
    }
}

/// What a GET or HEAD returns of an object: which bytes and which checksums.
struct View {
    start: u64,
    len: u64,
    /// `Content-Range` (for a range or a part).
    range: Option<String>,
    /// Number of parts, when a part was asked for.
    parts_count: Option<i32>,
    checksums: Checksum,
}

/// The response fields GET and HEAD share, for output type `$ty`, plus `$extra` fields.
macro_rules! object_output {
    ($ty:ident, $meta:expr, $view:expr, $($extra:tt)*) => {
        $ty {
            content_length: Some($view.len as i64),
            content_range: $view.range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&$meta)),
            last_modified: Some(timestamp($meta.last_modified_ms)),
            content_type: $meta.content_type.clone().and_then(|t| t.parse().ok()),
            content_encoding: header_field(&$meta, "content-encoding"),
            content_disposition: header_field(&$meta, "content-disposition"),
            content_language: header_field(&$meta, "content-language"),
            cache_control: header_field(&$meta, "cache-control"),
            expires: expires_of(&$meta),
            metadata: user_metadata(&$meta),
            parts_count: $view.parts_count,
            checksum_crc32: $view.checksums.checksum_crc32,
            checksum_crc32c: $view.checksums.checksum_crc32c,
            checksum_sha1: $view.checksums.checksum_sha1,
            checksum_sha256: $view.checksums.checksum_sha256,
            checksum_crc64nvme: $view.checksums.checksum_crc64nvme,
            checksum_type: $view.checksums.checksum_type,
            $($extra)*
            ..Default::default()
        }
    };
}

impl Tessera {
    /// The committed object a GET or HEAD names, after its conditions, and the bytes it asks
    /// for: all, a `Range`, or part `partNumber`.
    #[allow(clippy::too_many_arguments)]
    async fn view(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        [if_match, if_none_match]: [Option<&ETagCondition>; 2],
        [if_modified_since, if_unmodified_since]: [Option<&Timestamp>; 2],
        range: Option<&Range>,
        part_number: Option<i32>,
        checksum_mode: bool,
    ) -> S3Result<(ObjectMeta, View)> {
        if version_id.is_some_and(|v| v != "null") {
            return Err(s3_err(ApiError::NotImplemented("object versions".into())));
        }
        let meta = self.object(bucket, key).await?;
        check_read_conditions(
            &meta,
            if_match,
            if_none_match,
            if_modified_since,
            if_unmodified_since,
        )?;
        let size = meta.size;
        let content_range = |a: u64, len: u64| Some(format!("bytes {a}-{}/{size}", a + len - 1));
        let whole_checksums = || {
            let mut c = stored_checksums(&meta.checksums);
            c.checksum_type = meta.checksum_type.clone().map(ChecksumType::from);
            c
        };
        let view = match (range, part_number) {
            (Some(_), Some(_)) => {
                return Err(s3_err(ApiError::InvalidArgument(
                    "Range and partNumber cannot be used together".into(),
                )))
            }
            (Some(r), None) => {
                let r = r
                    .check(size)
                    .map_err(|_| s3_err(ApiError::InvalidRange { size }))?;
                View {
                    start: r.start,
                    len: r.end - r.start,
                    range: content_range(r.start, r.end - r.start),
                    parts_count: None,
                    checksums: Checksum::default(),
                }
            }
            (None, Some(n)) if meta.is_multipart() => {
                let idx = meta
                    .parts
                    .iter()
                    .position(|p| p.number as i32 == n)
                    .ok_or_else(|| {
                        s3_err(ApiError::InvalidPart(format!("the object has no part {n}")))
                    })?;
                let start: u64 = meta.parts[..idx].iter().map(|p| p.size).sum();
                let part = &meta.parts[idx];
                View {
                    start,
                    len: part.size,
                    range: (part.size > 0)
                        .then(|| content_range(start, part.size))
                        .flatten(),
                    parts_count: Some(meta.parts.len() as i32),
                    checksums: if checksum_mode {
                        stored_checksums(&part.checksums)
                    } else {
                        Checksum::default()
                    },
                }
            }
            (None, Some(n)) if n != 1 => {
                return Err(s3_err(ApiError::InvalidPart(format!(
                    "part number {n} does not exist (the object has 1 part)"
                ))))
            }
            (None, part) => View {
                start: 0,
                len: size,
                range: None,
                parts_count: part.map(|_| 1),
                checksums: if checksum_mode {
                    whole_checksums()
                } else {
                    Checksum::default()
                },
            },
        };
        Ok((meta, view))
    }
}

pub(super) fn precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Precondition> {
    match (if_match, if_none_match) {
        (None, None) => Ok(Precondition::None),
        (None, Some(ETagCondition::Any)) => Ok(Precondition::Absent),
        (Some(ETagCondition::ETag(e)), None) => Ok(Precondition::ETag(e.value().to_string())),
        _ => Err(s3_err(ApiError::NotImplemented(
            "this combination of conditional write headers".into(),
        ))),
    }
}

#[async_trait::async_trait]
impl S3 for Tessera {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> R<ListBucketsOutput> {
        let caller = req.credentials.map(|c| c.access_key);
        let buckets = self.c.meta.buckets().await.map_err(s3_err)?;
        let buckets = buckets
            .into_iter()
            .filter(|b| caller.as_ref().is_none_or(|k| b.grant_of(k).read))
            .filter(|b| {
                req.input
                    .prefix
                    .as_ref()
                    .is_none_or(|p| b.name.starts_with(p.as_str()))
            })
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: None,
            })
            .collect();
        ok(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(tessera_owner()),
            ..Default::default()
        })
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> R<CreateBucketOutput> {
        let i = &req.input;
        refuse_unsupported(
            i.acl.as_ref().map(|a| a.as_str()),
            false,
            i.object_lock_enabled_for_bucket == Some(true),
            None,
            false,
        )?;
        let name = bucket_name(&i.bucket)?;
        let ec = header_ec(&req.headers)?.unwrap_or(self.c.config.default_ec);
        let registered = self.c.registry.registered();
        if ec.total() > registered {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "erasure code {ec} needs {} nodes but {registered} are registered",
                ec.total()
            ))));
        }
        let owner = req.credentials.map(|c| c.access_key);
        let b = BucketMeta {
            name: name.to_string(),
            created_ms: now_ms(),
            ec,
            owner: owner.clone(),
            grants: BTreeMap::new(),
            replicate_below: header_replicate_below(&req.headers)?,
        };
        let created = if self.c.meta.create_bucket(b).await.map_err(s3_err)? {
            None
        } else {
            self.c.meta.bucket(name.to_string()).await.map_err(s3_err)?
        };
        // Re-creating one's own bucket succeeds and changes nothing, as S3 does in
        // us-east-1; another owner's name is taken.
        if created.is_some_and(|existing| existing.owner != owner) {
            return Err(s3s::S3Error::with_message(
                s3s::S3ErrorCode::BucketAlreadyExists,
                format!("bucket {name} already exists and belongs to another key"),
            ));
        }
        ok(CreateBucketOutput {
            location: Some(format!("/{name}")),
        })
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> R<DeleteBucketOutput> {
        let n = bucket_name(&req.input.bucket)?.to_string();
        self.c.meta.delete_bucket(n).await.map_err(s3_err)?;
        ok(DeleteBucketOutput {})
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> R<HeadBucketOutput> {
        self.existing_bucket(&req.input.bucket).await?;
        ok(HeadBucketOutput {
            bucket_region: Some("us-east-1".into()),
            ..Default::default()
        })
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> R<GetBucketLocationOutput> {
        self.existing_bucket(&req.input.bucket).await?;
        // Empty LocationConstraint is us-east-1, the region clients default to.
        ok(GetBucketLocationOutput {
            location_constraint: None,
        })
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
        let ec = header_ec(&req.headers)?;
        let (headers, trailers) = (req.headers, req.trailing_headers);
        let i = req.input;
        refuse_unsupported(
            i.acl.as_ref().map(|a| a.as_str()),
            i.server_side_encryption.is_some()
                || i.sse_customer_algorithm.is_some()
                || i.ssekms_key_id.is_some(),
            i.object_lock_mode.is_some() || i.object_lock_legal_hold_status.is_some(),
            i.storage_class.as_ref().map(|s| s.as_str()),
            i.tagging.is_some(),
        )?;
        if i.write_offset_bytes.is_some() {
            return Err(s3_err(ApiError::NotImplemented("appends".into())));
        }
        let cond = precondition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
        let bucket = bucket_name(&i.bucket)?;
        let key = object_key(&i.key)?;
        let checks = BodyChecks::new(
            &headers,
            trailers,
            Checksum {
                checksum_crc32: i.checksum_crc32,
                checksum_crc32c: i.checksum_crc32c,
                checksum_sha1: i.checksum_sha1,
                checksum_sha256: i.checksum_sha256,
                checksum_crc64nvme: i.checksum_crc64nvme,
                ..Default::default()
            },
            i.checksum_algorithm.as_ref().map(|a| a.as_str()),
            i.content_md5,
        );
        let digest = checks.digest(None);
        let attrs = attrs(
            i.content_type.map(|t| t.to_string()),
            i.metadata,
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
        )?;
        // Fail a conditional write before moving any bytes when it cannot succeed; the
        // commit checks again, atomically.
        if cond != Precondition::None {
            let current = self
                .c
                .meta
                .object(bucket.to_string(), key.to_string())
                .await
                .map_err(s3_err)?;
            crate::meta::check_precondition(current.as_ref(), &cond).map_err(s3_err)?;
        }
        let content_length = i.content_length.map(|l| l.max(0) as u64);
        let put = PutRequest {
            bucket,
            key,
            ec,
            content_length,
            attrs,
            role: ShardRole::Object,
        };
        let body = body_stream(i.body, self.c.config.body_idle_timeout);
        let mut staged = write_object(self.c.clone(), put, body, digest)
            .await
            .map_err(s3_err)?;
        let (stored, computed) = checks
            .verify(&staged.part.etag, &mut staged.digest)
            .map_err(s3_err)?;
        staged.part.checksums = stored;
        let meta = staged.commit(cond).await.map_err(s3_err)?;
        let mut resp = S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&meta)),
            checksum_crc32: computed.checksum_crc32,
            checksum_crc32c: computed.checksum_crc32c,
            checksum_sha1: computed.checksum_sha1,
            checksum_sha256: computed.checksum_sha256,
            checksum_crc64nvme: computed.checksum_crc64nvme,
            ..Default::default()
        });
        tessera_headers(&meta, &mut resp.headers);
        Ok(resp)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
        let i = &req.input;
        if i.sse_customer_algorithm.is_some() {
            return Err(s3_err(ApiError::NotImplemented(
                "server-side encryption".into(),
            )));
        }
        let (meta, view) = self
            .view(
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                [i.if_match.as_ref(), i.if_none_match.as_ref()],
                [i.if_modified_since.as_ref(), i.if_unmodified_since.as_ref()],
                i.range.as_ref(),
                i.part_number,
                i.checksum_mode.is_some(),
            )
            .await?;
        let body = if view.len == 0 {
            StreamingBlob::from(s3s::Body::empty())
        } else {
            self.read(
                &meta,
                ByteRange {
                    start: view.start,
                    end: view.start + view.len - 1,
                },
            )
            .await?
        };
        let mut resp =
            S3Response::new(object_output!(GetObjectOutput, meta, view, body: Some(body),));
        tessera_headers(&meta, &mut resp.headers);
        Ok(resp)
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> R<HeadObjectOutput> {
        let i = &req.input;
        let (meta, view) = self
            .view(
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                [i.if_match.as_ref(), i.if_none_match.as_ref()],
                [i.if_modified_since.as_ref(), i.if_unmodified_since.as_ref()],
                i.range.as_ref(),
                i.part_number,
                i.checksum_mode.is_some(),
            )
            .await?;
        let mut resp = S3Response::new(object_output!(HeadObjectOutput, meta, view,));
        tessera_headers(&meta, &mut resp.headers);
        Ok(resp)
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> R<DeleteObjectOutput> {
        let i = req.input;
        if i.version_id.as_deref().is_some_and(|v| v != "null") {
            return Err(s3_err(ApiError::NotImplemented("object versions".into())));
        }
        if i.if_match.is_some()
            || i.if_match_size.is_some()
            || i.if_match_last_modified_time.is_some()
        {
            return Err(s3_err(ApiError::NotImplemented(
                "conditional deletes".into(),
            )));
        }
        let b = bucket_name(&i.bucket)?.to_string();
        let k = object_key(&i.key)?.to_string();
        self.delete_key(b, k).await.map_err(s3_err)?;
        ok(DeleteObjectOutput::default())
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> R<DeleteObjectsOutput> {
        let i = req.input;
        let b = bucket_name(&i.bucket)?.to_string();
        if i.delete.objects.len() > 1000 {
            return Err(s3_err(ApiError::InvalidArgument(
                "at most 1000 keys per DeleteObjects".into(),
            )));
        }
        let quiet = i.delete.quiet == Some(true);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            let r = if o.version_id.as_deref().is_some_and(|v| v != "null") {
                Err(ApiError::NotImplemented("object versions".into()))
            } else {
                match ObjectKey::parse(&o.key) {
                    Ok(k) => self.delete_key(b.clone(), k.to_string()).await,
                    Err(e) => Err(e),
                }
            };
            match r {
                Ok(()) if !quiet => deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..Default::default()
                }),
                Ok(()) => {}
                Err(e @ ApiError::NoSuchBucket(_)) => return Err(s3_err(e)),
                Err(e) => {
                    let se = s3_err(e);
                    errors.push(Error {
                        code: Some(se.code().as_str().to_string()),
                        key: Some(o.key),
                        message: se.message().map(String::from),
                        version_id: None,
                    });
                }
            }
        }
        ok(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        })
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> R<CopyObjectOutput> {
        let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
        let ec = header_ec(&req.headers)?;
        let i = req.input;
        refuse_unsupported(
            i.acl.as_ref().map(|a| a.as_str()),
            i.server_side_encryption.is_some()
                || i.sse_customer_algorithm.is_some()
                || i.copy_source_sse_customer_algorithm.is_some()
                || i.ssekms_key_id.is_some(),
            i.object_lock_mode.is_some() || i.object_lock_legal_hold_status.is_some(),
            i.storage_class.as_ref().map(|s| s.as_str()),
            i.tagging_directive
                .as_ref()
                .is_some_and(|d| d.as_str() == "REPLACE"),
        )?;
        let src = self
            .copy_source(
                caller.as_deref(),
                &i.copy_source,
                [
                    i.copy_source_if_match.as_ref(),
                    i.copy_source_if_none_match.as_ref(),
                ],
                [
                    i.copy_source_if_modified_since.as_ref(),
                    i.copy_source_if_unmodified_since.as_ref(),
                ],
            )
            .await?;
        let (src_bucket, src_key) = (src.bucket.clone(), src.key.clone());
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let dest_bucket = bucket_name(&i.bucket)?;
        let dest_key = object_key(&i.key)?;
        if !replace && src_bucket == i.bucket && src_key == i.key {
            return Err(s3_err(ApiError::InvalidArgument(
                "copying an object onto itself needs x-amz-metadata-directive: REPLACE".into(),
            )));
        }
        let attrs = if replace {
            attrs(
                i.content_type.map(|t| t.to_string()),
                i.metadata,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires,
            )?
        } else {
            ObjectAttrs {
                content_type: src.content_type.clone(),
                user_meta: src.user_meta.clone(),
                headers: src.headers.clone(),
            }
        };
        let body = self.source_stream(&src, 0, src.size).await?;
        let put = PutRequest {
            bucket: dest_bucket,
            key: dest_key,
            ec,
            content_length: Some(src.size),
            attrs,
            role: ShardRole::Object,
        };
        let mut staged = write_object(self.c.clone(), put, body, ())
            .await
            .map_err(s3_err)?;
        // The bytes are the source's, so are its verified whole-body checksums (a multipart
        // source's composite checksums describe its parts, not this single-part copy).
        if !src.is_multipart() {
            staged.part.checksums = src.checksums.clone();
        }
        let meta = staged.commit(Precondition::None).await.map_err(s3_err)?;
        ok(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&meta)),
                last_modified: Some(timestamp(meta.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> R<ListObjectsOutput> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let max = max_keys(i.max_keys)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = self
            .listing(
                &i.bucket,
                prefix,
                i.marker.clone().filter(|m| !m.is_empty()),
                i.delimiter.clone().filter(|d| !d.is_empty()),
                max,
            )
            .await?;
        // NextMarker is returned only with a delimiter (as S3 does); clients use the last
        // key otherwise.
        let next_marker = if l.truncated && i.delimiter.is_some() {
            l.next.clone().map(|m| encode_key(m, url))
        } else {
            None
        };
        ok(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: i.prefix,
            marker: i.marker,
            max_keys: Some(max as i32),
            is_truncated: Some(l.truncated),
            contents: Some(
                l.objects
                    .iter()
                    .map(|o| list_object(o, url, true))
                    .collect(),
            ),
            common_prefixes: prefixes(&l, url),
            delimiter: i.delimiter,
            next_marker,
            encoding_type: i.encoding_type,
            ..Default::default()
        })
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> R<ListObjectsV2Output> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let max = max_keys(i.max_keys)?;
        let token = match &i.continuation_token {
            Some(t) => Some(
                hex::decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_err(ApiError::InvalidArgument(
                            "the continuation token is not valid".into(),
                        ))
                    })?,
            ),
            None => None,
        };
        let after = token.or_else(|| i.start_after.clone().filter(|s| !s.is_empty()));
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = self
            .listing(
                &i.bucket,
                prefix,
                after,
                i.delimiter.clone().filter(|d| !d.is_empty()),
                max,
            )
            .await?;
        let owner = i.fetch_owner == Some(true);
        ok(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: i.prefix,
            max_keys: Some(max as i32),
            key_count: Some((l.objects.len() + l.prefixes.len()) as i32),
            continuation_token: i.continuation_token,
            is_truncated: Some(l.truncated),
            next_continuation_token: resume_after(&l).map(hex::encode),
            contents: Some(
                l.objects
                    .iter()
                    .map(|o| list_object(o, url, owner))
                    .collect(),
            ),
            common_prefixes: prefixes(&l, url),
            delimiter: i.delimiter,
            encoding_type: i.encoding_type,
            start_after: i.start_after,
            ..Default::default()
        })
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> R<GetBucketVersioningOutput> {
        self.existing_bucket(&req.input.bucket).await?;
        // Versioning has never been enabled: no Status (what S3 answers for such a bucket).
        ok(GetBucketVersioningOutput::default())
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> R<CreateMultipartUploadOutput> {
        self.mpu_create(req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> R<UploadPartOutput> {
        self.mpu_upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> R<UploadPartCopyOutput> {
        self.mpu_upload_part_copy(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> R<CompleteMultipartUploadOutput> {
        self.mpu_complete(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> R<AbortMultipartUploadOutput> {
        self.mpu_abort(req).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
        self.mpu_list_parts(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> R<ListMultipartUploadsOutput> {
        self.mpu_list_uploads(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> R<ListObjectVersionsOutput> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let max = max_keys(i.max_keys)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let l = self
            .listing(
                &i.bucket,
                prefix,
                i.key_marker.clone().filter(|m| !m.is_empty()),
                i.delimiter.clone().filter(|d| !d.is_empty()),
                max,
            )
            .await?;
        let versions = l
            .objects
            .iter()
            .map(|o| ObjectVersion {
                key: Some(encode_key(o.key.clone(), url)),
                e_tag: Some(etag(o)),
                size: Some(o.size as i64),
                last_modified: Some(timestamp(o.last_modified_ms)),
                is_latest: Some(true),
                version_id: Some("null".into()),
                owner: Some(tessera_owner()),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        ok(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            version_id_marker: i.version_id_marker,
            max_keys: Some(max as i32),
            is_truncated: Some(l.truncated),
            next_key_marker: l.truncated.then(|| l.next.clone()).flatten(),
            next_version_id_marker: l.truncated.then(|| "null".to_string()),
            versions: Some(versions),
            common_prefixes: prefixes(&l, url),
            delimiter: i.delimiter,
            encoding_type: i.encoding_type,
            ..Default::default()
        })
    }
}

/// Tessera's own response headers: the object's erasure code and version.
fn tessera_headers(meta: &ObjectMeta, h: &mut http::HeaderMap) {
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
