//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! Each part is written like a PUT (erasure-coded as it streams in, its own version naming its
//! shards) and committed into the upload's part list. Completion checks the list the client
//! sends against the stored parts (S3's rules and codes), writes a small replicated manifest
//! (the object's metadata, so a metadata rebuild can find multipart objects) and commits the
//! object in one metadata transaction; parts left out become garbage.

use super::acl::{object_write_acl, Owners};
use super::helpers::{
    attrs, body_stream, bucket_name, encode_key, header_ec, is_url, object_key, refuse_unsupported,
    timestamp, R,
};
use super::tagging::header_tags;
use super::Tessera;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::edge::access::acl::grant_headers;
use crate::edge::checksum::{combinable, stored_checksums, BodyChecks, ALGORITHMS};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{now_ms, Part, Upload};
use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use tessera_node::{ObjectVersion, ShardRole};

/// Most parts an upload may have (S3's limit).
pub const MAX_PARTS: i32 = 10_000;

fn upload_id(s: &str) -> S3Result<ObjectVersion> {
    s.parse()
        .map_err(|_| s3_err(ApiError::NoSuchUpload(s.to_string())))
}

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_err(ApiError::InvalidArgument(format!(
            "part number {n} is not between 1 and {MAX_PARTS}"
        ))))
    }
}

fn part_etag(p: &Part) -> ETag {
    ETag::Strong(p.etag.clone())
}

impl Tessera {
    pub(super) async fn upload(&self, bucket: &str, key: &str, id: &str) -> S3Result<Upload> {
        bucket_name(bucket)?;
        let k = object_key(key)?.to_string();
        let id = upload_id(id)?;
        let b = self.existing_bucket(bucket).await?.name;
        self.c.meta.upload(b, k, id).await.map_err(s3_err)
    }

    /// Writes `body` as part `number` of `upload` and commits it into the upload.
    async fn write_part(
        &self,
        upload: &Upload,
        number: u32,
        content_length: Option<u64>,
        body: futures::stream::BoxStream<'static, Result<Bytes, ApiError>>,
        verify: BodyChecks,
    ) -> S3Result<Part> {
        let put = PutRequest {
            bucket: bucket_name(&upload.bucket)?,
            key: object_key(&upload.key)?,
            ec: Some(upload.ec),
            content_length,
            attrs: ObjectAttrs {
                content_type: upload.content_type.clone(),
                user_meta: upload.user_meta.clone(),
                headers: upload.headers.clone(),
                acl: None,
                tags: Default::default(),
                retention: None,
                legal_hold: false,
            },
            role: ShardRole::Part {
                upload: upload.id,
                number,
            },
        };
        // The upload's algorithm is computed for every part, asked for or not.
        let digest = verify.digest(upload.checksum_algorithm.as_deref());
        let mut staged = write_object(self.c.data().clone(), put, body, digest)
            .await
            .map_err(s3_err)?;
        let (stored, _) = verify
            .verify(&staged.part.etag, &mut staged.digest)
            .map_err(s3_err)?;
        staged.part.checksums = stored;
        staged.commit_part(upload.id).await.map_err(s3_err)
    }
}

/// CreateMultipartUpload.
pub(super) async fn create(
    t: &Tessera,
    req: S3Request<CreateMultipartUploadInput>,
) -> R<CreateMultipartUploadOutput> {
    let owner = req.credentials.as_ref().map(|c| c.access_key.clone());
    let ec = header_ec(&req.headers)?;
    let ext = req.extensions;
    let i = req.input;
    refuse_unsupported(
        i.server_side_encryption.is_some()
            || i.sse_customer_algorithm.is_some()
            || i.ssekms_key_id.is_some(),
        i.storage_class.as_ref().map(|s| s.as_str()),
    )?;
    let bucket = bucket_name(&i.bucket)?.to_string();
    let key = object_key(&i.key)?.to_string();
    let algorithm = i
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_ascii_lowercase());
    if let Some(a) = &algorithm {
        if !ALGORITHMS.contains(&a.as_str()) {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "unknown checksum algorithm {a}"
            ))));
        }
    }
    let checksum_type = match (&algorithm, i.checksum_type.as_ref().map(|t| t.as_str())) {
        (_, None) => algorithm.as_ref().map(|a| {
            if a == "crc64nvme" {
                "FULL_OBJECT"
            } else {
                "COMPOSITE"
            }
        }),
        (Some(a), Some(ChecksumType::FULL_OBJECT)) if combinable(a) => Some("FULL_OBJECT"),
        (Some(a), Some(ChecksumType::COMPOSITE)) if a != "crc64nvme" => Some("COMPOSITE"),
        (_, Some(t)) => {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "checksum type {t} does not go with algorithm {}",
                algorithm.as_deref().unwrap_or("(none)")
            ))))
        }
    };
    let attrs = attrs(
        i.content_type.map(|t| t.to_string()),
        i.metadata,
        i.content_encoding,
        i.content_disposition,
        i.content_language,
        i.cache_control,
        i.expires,
    )?;
    let tags = header_tags(i.tagging.as_deref())?;
    let (retention, legal_hold) = t
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
    let acl =
        object_write_acl(t, &ext, &i.bucket, owner.as_deref(), i.acl.as_ref(), grants).await?;
    let c = t.c.clone();
    let upload = async {
        let b = c
            .meta
            .bucket(bucket.clone())
            .await?
            .ok_or_else(|| ApiError::NoSuchBucket(bucket.clone()))?;
        let ec = ec.unwrap_or(b.ec);
        crate::data::write::check_registered(&c, ec)?;
        let u = Upload {
            bucket,
            key,
            id: ObjectVersion::new(),
            initiated_ms: now_ms(),
            ec,
            content_type: attrs.content_type,
            user_meta: attrs.user_meta,
            headers: attrs.headers,
            checksum_algorithm: algorithm,
            checksum_type: checksum_type.map(String::from),
            owner,
            acl,
            tags,
            retention,
            legal_hold,
        };
        c.meta.create_upload(u.clone()).await?;
        Ok::<_, ApiError>(u)
    }
    .await
    .map_err(s3_err)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(upload.bucket),
        key: Some(upload.key),
        upload_id: Some(upload.id.to_string()),
        checksum_algorithm: upload
            .checksum_algorithm
            .map(|a| ChecksumAlgorithm::from(a.to_ascii_uppercase())),
        checksum_type: upload.checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
}

/// UploadPart.
pub(super) async fn upload_part(
    t: &Tessera,
    req: S3Request<UploadPartInput>,
) -> R<UploadPartOutput> {
    let (headers, trailers) = (req.headers, req.trailing_headers);
    let i = req.input;
    if i.sse_customer_algorithm.is_some() {
        return Err(s3_err(ApiError::NotImplemented(
            "server-side encryption".into(),
        )));
    }
    let number = part_number(i.part_number)?;
    let upload = t.upload(&i.bucket, &i.key, &i.upload_id).await?;
    let verify = BodyChecks::new(
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
    let body = body_stream(i.body, t.c.config.body_idle_timeout);
    let content_length = i.content_length.map(|l| l.max(0) as u64);
    let part = t
        .write_part(&upload, number, content_length, body, verify)
        .await?;
    let c = stored_checksums(&part.checksums);
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(part_etag(&part)),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_crc64nvme: c.checksum_crc64nvme,
        ..Default::default()
    }))
}

/// UploadPartCopy: a part's bytes from (a range of) another object.
pub(super) async fn upload_part_copy(
    t: &Tessera,
    req: S3Request<UploadPartCopyInput>,
) -> R<UploadPartCopyOutput> {
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let i = req.input;
    if i.sse_customer_algorithm.is_some() || i.copy_source_sse_customer_algorithm.is_some() {
        return Err(s3_err(ApiError::NotImplemented(
            "server-side encryption".into(),
        )));
    }
    let number = part_number(i.part_number)?;
    let upload = t.upload(&i.bucket, &i.key, &i.upload_id).await?;
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
    let (start, len) = match &i.copy_source_range {
        None => (0, src.size),
        Some(r) => copy_range(r, src.size).map_err(s3_err)?,
    };
    let body = t.source_stream(&src, start, len).await?;
    let part = t
        .write_part(&upload, number, Some(len), body, BodyChecks::default())
        .await?;
    let c = stored_checksums(&part.checksums);
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(part_etag(&part)),
            last_modified: Some(timestamp(part.written_ms)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            checksum_crc64nvme: c.checksum_crc64nvme,
        }),
        ..Default::default()
    }))
}

/// AbortMultipartUpload.
pub(super) async fn abort(
    t: &Tessera,
    req: S3Request<AbortMultipartUploadInput>,
) -> R<AbortMultipartUploadOutput> {
    let i = req.input;
    let u = t.upload(&i.bucket, &i.key, &i.upload_id).await?;
    t.c.meta
        .abort_upload(u.bucket, u.key, u.id)
        .await
        .map_err(s3_err)?;
    t.c.gc_kick.notify_one();
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

/// ListParts.
pub(super) async fn list_parts(t: &Tessera, req: S3Request<ListPartsInput>) -> R<ListPartsOutput> {
    let i = req.input;
    let upload = t.upload(&i.bucket, &i.key, &i.upload_id).await?;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let marker = i.part_number_marker.unwrap_or(0).max(0) as u32;
    let all = t.c.meta.upload_parts(upload.id).await.map_err(s3_err)?;
    let bucket_owner = t.existing_bucket(&i.bucket).await?.owner;
    let owners = t.owners(bucket_owner.clone()).await?;
    // The owner the object will have: its writer, or the bucket's owner.
    let owner = upload
        .acl
        .as_ref()
        .map_or(bucket_owner, |a| a.owner.clone());
    let after: Vec<&Part> = all.iter().filter(|p| p.number > marker).collect();
    let truncated = after.len() > max;
    let page = &after[..after.len().min(max)];
    let parts = page
        .iter()
        .map(|p| {
            let c = stored_checksums(&p.checksums);
            s3s::dto::Part {
                part_number: Some(p.number as i32),
                e_tag: Some(part_etag(p)),
                size: Some(p.size as i64),
                last_modified: Some(timestamp(p.written_ms)),
                checksum_crc32: c.checksum_crc32,
                checksum_crc32c: c.checksum_crc32c,
                checksum_sha1: c.checksum_sha1,
                checksum_sha256: c.checksum_sha256,
                checksum_crc64nvme: c.checksum_crc64nvme,
            }
        })
        .collect();
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(upload.bucket.clone()),
        key: Some(upload.key.clone()),
        upload_id: Some(upload.id.to_string()),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: truncated
            .then(|| page.last().map(|p| p.number as i32))
            .flatten(),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(parts),
        initiator: Some(initiator(&owners, &upload)),
        owner: Some(owners.key(owner.as_deref())),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        checksum_algorithm: upload
            .checksum_algorithm
            .clone()
            .map(|a| ChecksumAlgorithm::from(a.to_ascii_uppercase())),
        checksum_type: upload.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    }))
}

/// ListMultipartUploads.
pub(super) async fn list_uploads(
    t: &Tessera,
    req: S3Request<ListMultipartUploadsInput>,
) -> R<ListMultipartUploadsOutput> {
    let i = req.input;
    let url = is_url(&i.encoding_type)?;
    let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
    bucket_name(&i.bucket)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
    let id_marker = match (&key_marker, &i.upload_id_marker) {
        (Some(_), Some(id)) if !id.is_empty() => Some(upload_id(id)?),
        _ => None,
    };
    let bucket = t.existing_bucket(&i.bucket).await?.name;
    let page =
        t.c.meta
            .uploads(
                bucket,
                prefix,
                i.delimiter.clone(),
                key_marker.map(|k| (k, id_marker)),
                max,
            )
            .await
            .map_err(s3_err)?;
    let owners = t.owners(None).await?;
    let listed: Vec<MultipartUpload> = page
        .uploads
        .iter()
        .map(|u| MultipartUpload {
            key: Some(encode_key(u.key.clone(), url)),
            upload_id: Some(u.id.to_string()),
            initiated: Some(timestamp(u.initiated_ms)),
            initiator: Some(initiator(&owners, u)),
            owner: Some(owners.key(u.owner.as_deref())),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            checksum_algorithm: u
                .checksum_algorithm
                .clone()
                .map(|a| ChecksumAlgorithm::from(a.to_ascii_uppercase())),
            checksum_type: u.checksum_type.clone().map(ChecksumType::from),
        })
        .collect();
    let (next_key, next_id) = match &page.next {
        Some((k, id)) => (Some(encode_key(k.clone(), url)), id.map(|v| v.to_string())),
        None => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        delimiter: i.delimiter,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(page.truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(listed),
        common_prefixes: (!page.prefixes.is_empty()).then(|| {
            page.prefixes
                .into_iter()
                .map(|p| CommonPrefix {
                    prefix: Some(encode_key(p, url)),
                })
                .collect()
        }),
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

fn initiator(owners: &Owners, u: &Upload) -> Initiator {
    let o = owners.key(u.owner.as_deref());
    Initiator {
        display_name: o.display_name,
        id: o.id,
    }
}

/// `bytes=A-B` of a copy source of `size` bytes: (start, length). Parsed by `s3s`; S3 wants
/// both ends given and inside the source (no suffix, no open end, no clamping).
fn copy_range(r: &str, size: u64) -> Result<(u64, u64), ApiError> {
    let bad = || ApiError::InvalidArgument(format!("bad x-amz-copy-source-range {r:?}"));
    let (a, b) = match Range::parse(r).map_err(|_| bad())? {
        Range::Int {
            first,
            last: Some(last),
        } => (first, last),
        _ => return Err(bad()),
    };
    if a > b || b >= size {
        return Err(ApiError::InvalidRange { size });
    }
    Ok((a, b - a + 1))
}
