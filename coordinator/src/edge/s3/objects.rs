//! Objects: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.

use super::acl::object_write_acl;
use super::helpers::{
    attrs, body_stream, bucket_name, check_read_conditions, etag, expires_of, header_ec,
    header_field, object_key, ok, precondition, refuse_unsupported, secs, tessera_headers,
    timestamp, user_metadata, R,
};
use super::lifecycle::expiration;
use super::lock::lock_fields;
use super::tagging::{header_tags, tag_count};
use super::versions::{deleted_answer, version_of, written_version};
use super::Tessera;
use crate::data::get::ByteRange;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::edge::access::acl::grant_headers;
use crate::edge::access::AccessStamp;
use crate::edge::checksum::{stored_checksums, BodyChecks};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{DeleteCondition, ObjectMeta, Precondition};
use crate::names::ObjectKey;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use std::collections::BTreeMap;
use tessera_node::ShardRole;

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
            // Stored without a type, an object is served as S3 serves it: binary/octet-stream.
            content_type: $meta
                .content_type
                .as_deref()
                .unwrap_or("binary/octet-stream")
                .parse()
                .ok(),
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
            version_id: version_of(&$meta),
            object_lock_mode: lock_fields(&$meta).0,
            object_lock_retain_until_date: lock_fields(&$meta).1,
            object_lock_legal_hold_status: lock_fields(&$meta).2,
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
        let meta = self.object_at(bucket, key, version_id).await?;
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
                    // The part's own checksums, with the object's checksum type.
                    checksums: if checksum_mode {
                        Checksum {
                            checksum_type: meta.checksum_type.clone().map(ChecksumType::from),
                            ..stored_checksums(&part.checksums)
                        }
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

pub(super) async fn put_object(t: &Tessera, req: S3Request<PutObjectInput>) -> R<PutObjectOutput> {
    let ec = header_ec(&req.headers)?;
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let (headers, trailers, ext) = (req.headers, req.trailing_headers, req.extensions);
    let i = req.input;
    // Object lock headers need the body's digest (Content-MD5 or a checksum), as in S3.
    let has_digest = i.content_md5.is_some()
        || headers.contains_key("x-amz-trailer")
        || headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-checksum-"));
    refuse_unsupported(
        i.server_side_encryption.is_some()
            || i.sse_customer_algorithm.is_some()
            || i.ssekms_key_id.is_some(),
        i.storage_class.as_ref().map(|s| s.as_str()),
    )?;
    if i.write_offset_bytes.is_some() {
        return Err(s3_err(ApiError::NotImplemented("appends".into())));
    }
    let cond = precondition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    let if_match = i.if_match.is_some();
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
    )
    .map_err(s3_err)?;
    let digest = checks.digest(None);
    let mut attrs = attrs(
        i.content_type.map(|t| t.to_string()),
        i.metadata,
        i.content_encoding,
        i.content_disposition,
        i.content_language,
        i.cache_control,
        i.expires,
    )?;
    attrs.tags = header_tags(i.tagging.as_deref())?;
    (attrs.retention, attrs.legal_hold) = t
        .write_lock(
            &ext,
            &i.bucket,
            i.object_lock_mode.as_ref(),
            i.object_lock_retain_until_date.as_ref(),
            i.object_lock_legal_hold_status.as_ref(),
            has_digest,
        )
        .await?;
    let grants = grant_headers!(i, headers: headers);
    attrs.acl = object_write_acl(
        t,
        &ext,
        &i.bucket,
        caller.as_deref(),
        i.acl.as_ref(),
        grants,
    )
    .await?;
    // Fail a conditional write before moving any bytes when it cannot succeed; the
    // commit checks again, atomically.
    if cond != Precondition::None {
        let current =
            t.c.meta
                .object(bucket.to_string(), key.to_string())
                .await
                .map_err(s3_err)?;
        // `If-Match` on a key that does not exist: NoSuchKey, as S3 answers.
        if current.is_none() && if_match {
            return Err(s3_err(ApiError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            }));
        }
        crate::meta::check_precondition(current.as_ref(), &cond).map_err(s3_err)?;
    }
    // Checked again at the commit: the bucket and key the access check decided on.
    let cond = match ext.get::<AccessStamp>() {
        Some(stamp) => stamp.on(cond),
        None => cond,
    };
    let content_length = i.content_length.map(|l| l.max(0) as u64);
    let put = PutRequest {
        bucket,
        key,
        ec,
        content_length,
        attrs,
        role: ShardRole::Object,
    };
    let body = body_stream(i.body, t.c.config.body_idle_timeout);
    let mut staged = write_object(t.c.data().clone(), put, body, digest)
        .await
        .map_err(s3_err)?;
    let (stored, computed) = checks
        .verify(&staged.part.etag, &mut staged.digest)
        .map_err(s3_err)?;
    staged.part.checksums = stored;
    let meta = staged.commit(cond).await.map_err(s3_err)?;
    let mut resp = S3Response::new(PutObjectOutput {
        e_tag: Some(etag(&meta)),
        version_id: written_version(&meta),
        expiration: expiration(t, &ext, &meta),
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

pub(super) async fn get_object(t: &Tessera, req: S3Request<GetObjectInput>) -> R<GetObjectOutput> {
    let i = &req.input;
    if i.sse_customer_algorithm.is_some() {
        return Err(s3_err(ApiError::NotImplemented(
            "server-side encryption".into(),
        )));
    }
    let (meta, view) = t
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
        t.read(
            &meta,
            ByteRange {
                start: view.start,
                end: view.start + view.len - 1,
            },
        )
        .await?
    };
    let mut resp = S3Response::new(object_output!(GetObjectOutput, meta, view, body: Some(body),));
    if i.version_id.is_none() {
        resp.output.expiration = expiration(t, &req.extensions, &meta);
    }
    tessera_headers(&meta, &mut resp.headers);
    tag_count(&meta, &mut resp.headers);
    Ok(resp)
}

pub(super) async fn head_object(
    t: &Tessera,
    req: S3Request<HeadObjectInput>,
) -> R<HeadObjectOutput> {
    let i = &req.input;
    let (meta, view) = t
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
    if i.version_id.is_none() {
        resp.output.expiration = expiration(t, &req.extensions, &meta);
    }
    tessera_headers(&meta, &mut resp.headers);
    tag_count(&meta, &mut resp.headers);
    Ok(resp)
}

pub(super) async fn delete_object(
    t: &Tessera,
    req: S3Request<DeleteObjectInput>,
) -> R<DeleteObjectOutput> {
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let i = req.input;
    let cond = DeleteCondition {
        etag: i.if_match.map(|c| match c {
            ETagCondition::Any => "*".to_string(),
            ETagCondition::ETag(e) => e.value().to_string(),
        }),
        last_modified_secs: i.if_match_last_modified_time.as_ref().map(secs),
        size: i.if_match_size.map(|s| s.max(0) as u64),
    };
    let b = bucket_name(&i.bucket)?.to_string();
    let k = object_key(&i.key)?.to_string();
    let bypass = i.bypass_governance_retention == Some(true)
        && t.may_bypass(caller.as_deref(), &b, &k).await?;
    let done = t
        .delete_key(b, k, i.version_id.clone(), cond, bypass)
        .await
        .map_err(s3_err)?;
    let (version_id, marker) = deleted_answer(&done, i.version_id.as_deref());
    ok(DeleteObjectOutput {
        version_id,
        delete_marker: marker.then_some(true),
        ..Default::default()
    })
}

pub(super) async fn delete_objects(
    t: &Tessera,
    req: S3Request<DeleteObjectsInput>,
) -> R<DeleteObjectsOutput> {
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let i = req.input;
    let b = bucket_name(&i.bucket)?.to_string();
    if i.delete.objects.len() > 1000 {
        return Err(s3_err(ApiError::InvalidArgument(
            "at most 1000 keys per DeleteObjects".into(),
        )));
    }
    let quiet = i.delete.quiet == Some(true);
    let wants_bypass = i.bypass_governance_retention == Some(true);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in i.delete.objects {
        let r = match ObjectKey::parse(&o.key) {
            Ok(k) => {
                let cond = DeleteCondition {
                    etag: o.e_tag.as_ref().map(|e| e.value().to_string()),
                    last_modified_secs: o.last_modified_time.as_ref().map(secs),
                    size: o.size.map(|s| s.max(0) as u64),
                };
                let bypass =
                    wants_bypass && t.may_bypass(caller.as_deref(), &b, k.as_str()).await?;
                t.delete_key(b.clone(), k.to_string(), o.version_id.clone(), cond, bypass)
                    .await
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(done) if !quiet => {
                let (version_id, marker) = deleted_answer(&done, o.version_id.as_deref());
                deleted.push(DeletedObject {
                    key: Some(o.key),
                    delete_marker: marker.then_some(true),
                    delete_marker_version_id: if marker { version_id.clone() } else { None },
                    version_id: o.version_id.clone(),
                })
            }
            Ok(_) => {}
            Err(e @ ApiError::NoSuchBucket(_)) => return Err(s3_err(e)),
            Err(e) => {
                let se = s3_err(e);
                errors.push(Error {
                    code: Some(se.code().as_str().to_string()),
                    key: Some(o.key),
                    message: se.message().map(String::from),
                    version_id: o.version_id,
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

pub(super) async fn copy_object(
    t: &Tessera,
    req: S3Request<CopyObjectInput>,
) -> R<CopyObjectOutput> {
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let ec = header_ec(&req.headers)?;
    let ext = req.extensions;
    let i = req.input;
    refuse_unsupported(
        i.server_side_encryption.is_some()
            || i.sse_customer_algorithm.is_some()
            || i.copy_source_sse_customer_algorithm.is_some()
            || i.ssekms_key_id.is_some(),
        i.storage_class.as_ref().map(|s| s.as_str()),
    )?;
    let src = t
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
    // A copy of a key onto itself must change something, unless it names an older
    // version (restoring it).
    let names_version = matches!(
        &i.copy_source,
        CopySource::Bucket {
            version_id: Some(_),
            ..
        }
    );
    if !replace && !names_version && src_bucket == i.bucket && src_key == i.key {
        return Err(s3_err(ApiError::InvalidRequest(
            "copying an object onto itself needs x-amz-metadata-directive: REPLACE".into(),
        )));
    }
    let mut attrs = if replace {
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
            acl: None,
            tags: BTreeMap::new(),
            retention: None,
            legal_hold: false,
        }
    };
    // Tags are the source's unless the copy replaces them.
    attrs.tags = if i
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE)
    {
        header_tags(i.tagging.as_deref())?
    } else {
        src.tags.clone()
    };
    (attrs.retention, attrs.legal_hold) = t
        .write_lock(
            &ext,
            &i.bucket,
            i.object_lock_mode.as_ref(),
            i.object_lock_retain_until_date.as_ref(),
            i.object_lock_legal_hold_status.as_ref(),
            true,
        )
        .await?;
    let grants = grant_headers!(i, headers: req.headers);
    attrs.acl = object_write_acl(
        t,
        &ext,
        &i.bucket,
        caller.as_deref(),
        i.acl.as_ref(),
        grants,
    )
    .await?;
    let body = t.source_stream(&src, 0, src.size).await?;
    let put = PutRequest {
        bucket: dest_bucket,
        key: dest_key,
        ec,
        content_length: Some(src.size),
        attrs,
        role: ShardRole::Object,
    };
    let mut staged = write_object(t.c.data().clone(), put, body, ())
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
        copy_source_version_id: version_of(&src),
        version_id: written_version(&meta),
        ..Default::default()
    })
}
