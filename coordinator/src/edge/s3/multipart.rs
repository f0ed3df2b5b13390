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
    attrs, body_stream, bucket_name, encode_key, header_ec, is_url, object_key, ok, precondition,
    refuse_unsupported, timestamp, R,
};
use super::Tessera;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::edge::access::acl::GrantHeaders;
use crate::edge::checksum::{
    as_map, combinable, multipart_checksum, stored_checksums, BodyChecks, ALGORITHMS,
};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{now_ms, ObjectMeta, Part, Upload};
use crate::names::EcSpec;
use bytes::Bytes;
use md5::{Digest, Md5};
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
    async fn upload(&self, bucket: &str, key: &str, id: &str) -> S3Result<Upload> {
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
        i.object_lock_mode.is_some() || i.object_lock_legal_hold_status.is_some(),
        i.storage_class.as_ref().map(|s| s.as_str()),
        i.tagging.is_some(),
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
    let grants = GrantHeaders {
        full_control: i.grant_full_control.as_deref(),
        read: i.grant_read.as_deref(),
        read_acp: i.grant_read_acp.as_deref(),
        write: None,
        write_acp: i.grant_write_acp.as_deref(),
    };
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
    );
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

/// CompleteMultipartUpload.
pub(super) async fn complete(
    t: &Tessera,
    req: S3Request<CompleteMultipartUploadInput>,
) -> R<CompleteMultipartUploadOutput> {
    let i = req.input;
    let cond = precondition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    let upload = match t.upload(&i.bucket, &i.key, &i.upload_id).await {
        Ok(u) => u,
        Err(e) => return completed_again(t, &i, e).await,
    };
    // A whole-object checksum the client computed must equal the one assembled.
    let claimed = as_map(&Checksum {
        checksum_crc32: i.checksum_crc32.clone(),
        checksum_crc32c: i.checksum_crc32c.clone(),
        checksum_sha1: i.checksum_sha1.clone(),
        checksum_sha256: i.checksum_sha256.clone(),
        checksum_crc64nvme: i.checksum_crc64nvme.clone(),
        ..Default::default()
    });
    let listed = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let id = upload.id;
    let mut stored = t.c.meta.upload_parts(id).await.map_err(s3_err)?;
    // Earlier uploads of a part number count too: the one whose ETag is named is used.
    stored.extend(t.c.meta.superseded_parts(id).await.map_err(s3_err)?);
    let parts = choose_parts(&listed, &stored, t.c.config.min_part_size).map_err(s3_err)?;
    if let Some(size) = i.mpu_object_size {
        let total: u64 = parts.iter().map(|p| p.size).sum();
        if size < 0 || size as u64 != total {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "x-amz-mp-object-size is {size} but the parts hold {total} bytes"
            ))));
        }
    }
    let mut obj = assemble(&upload, parts).map_err(s3_err)?;
    for (alg, v) in &claimed {
        let ours = obj.checksums.get(alg);
        if ours.is_some_and(|o| o.split('-').next() != v.split('-').next()) {
            return Err(s3_err(ApiError::BadDigest(format!(
                "the {alg} checksum you specified ({v}) does not match the parts' ({})",
                ours.cloned().unwrap_or_default()
            ))));
        }
    }

    // The manifest: the object's metadata, replicated on m+1 nodes, so a metadata rebuild
    // finds the object. Its version is the object's version.
    let manifest =
        serde_json::to_vec(&obj).map_err(|e| s3_err(ApiError::Internal(e.to_string())))?;
    let put = PutRequest {
        bucket: bucket_name(&upload.bucket)?,
        key: object_key(&upload.key)?,
        ec: Some(EcSpec {
            k: 1,
            m: upload.ec.m,
        }),
        content_length: Some(manifest.len() as u64),
        attrs: ObjectAttrs::default(),
        role: ShardRole::Manifest { upload: upload.id },
    };
    let body = futures::stream::once(async move { Ok(Bytes::from(manifest)) });
    let staged = write_object(t.c.data().clone(), put, Box::pin(body), ())
        .await
        .map_err(s3_err)?;
    obj.version = staged.part.version;
    obj.manifest = Some(staged.part.clone());
    obj.last_modified_ms = now_ms();
    let commit = t.c.meta.complete_upload(obj.clone(), id, cond);
    staged.commit_with(commit).await.map_err(s3_err)?;
    let c = stored_checksums(&obj.checksums);
    let mut resp = S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(obj.bucket.clone()),
        key: Some(obj.key.clone()),
        e_tag: Some(ETag::Strong(obj.etag.clone())),
        location: Some(format!("/{}/{}", obj.bucket, obj.key)),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_type: obj.checksum_type.clone().map(ChecksumType::from),
        ..Default::default()
    });
    if let Ok(v) = http::HeaderValue::try_from(upload.ec.to_string()) {
        resp.headers.insert("x-tessera-ec", v);
    }
    Ok(resp)
}

/// A Complete for an upload that is gone: if it was completed (and is still remembered) with
/// the same parts, the same answer again (a client retrying because the first answer was
/// lost); otherwise `gone`, the NoSuchUpload it met.
async fn completed_again(
    t: &Tessera,
    i: &CompleteMultipartUploadInput,
    gone: s3s::S3Error,
) -> R<CompleteMultipartUploadOutput> {
    let Ok(id) = i.upload_id.parse::<ObjectVersion>() else {
        return Err(gone);
    };
    let Some(done) = t.c.meta.completed_upload(id).await.map_err(s3_err)? else {
        return Err(gone);
    };
    let listed: Vec<(u32, String)> = i
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.as_ref())
        .into_iter()
        .flatten()
        .map(|p| {
            let etag = p
                .e_tag
                .as_ref()
                .map_or("", |e| e.value().trim_matches('"'))
                .to_string();
            (p.part_number.unwrap_or(0).max(0) as u32, etag)
        })
        .collect();
    if done.bucket != i.bucket || done.key != i.key || listed != done.parts {
        return Err(gone);
    }
    ok(CompleteMultipartUploadOutput {
        bucket: Some(done.bucket.clone()),
        key: Some(done.key.clone()),
        e_tag: Some(ETag::Strong(done.etag)),
        location: Some(format!("/{}/{}", done.bucket, done.key)),
        ..Default::default()
    })
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

/// The stored parts a completion names, checked by S3's rules: at least one part, ascending
/// numbers (InvalidPartOrder), each uploaded with the ETag given (InvalidPart), any checksum
/// given equal to the part's, every part but the last at least `min_part` bytes
/// (EntityTooSmall).
fn choose_parts(
    listed: &[CompletedPart],
    stored: &[Part],
    min_part: u64,
) -> Result<Vec<Part>, ApiError> {
    if listed.is_empty() {
        return Err(ApiError::InvalidArgument(
            "the completion names no parts (MalformedXML)".into(),
        ));
    }
    if listed.len() > MAX_PARTS as usize {
        return Err(ApiError::InvalidArgument(format!(
            "an upload has at most {MAX_PARTS} parts"
        )));
    }
    let mut out: Vec<Part> = Vec::with_capacity(listed.len());
    for l in listed {
        let n = l.part_number.unwrap_or(0);
        if out.last().is_some_and(|p| p.number as i32 >= n) {
            return Err(ApiError::InvalidPartOrder);
        }
        let given = l
            .e_tag
            .as_ref()
            .map(|e| e.value().trim_matches('"').to_string());
        let p = stored
            .iter()
            .find(|p| p.number as i32 == n && given.as_deref() == Some(p.etag.as_str()))
            .or_else(|| stored.iter().find(|p| p.number as i32 == n))
            .ok_or_else(|| ApiError::InvalidPart(format!("part {n} was not uploaded")))?;
        if given.as_deref() != Some(p.etag.as_str()) {
            return Err(ApiError::InvalidPart(format!(
                "part {n} has ETag \"{}\", not {:?}",
                p.etag,
                given.unwrap_or_default()
            )));
        }
        let claimed = as_map(&Checksum {
            checksum_crc32: l.checksum_crc32.clone(),
            checksum_crc32c: l.checksum_crc32c.clone(),
            checksum_sha1: l.checksum_sha1.clone(),
            checksum_sha256: l.checksum_sha256.clone(),
            checksum_crc64nvme: l.checksum_crc64nvme.clone(),
            ..Default::default()
        });
        for (alg, v) in claimed {
            if p.checksums.get(&alg) != Some(&v) {
                return Err(ApiError::InvalidPart(format!(
                    "part {n}: the {alg} checksum given does not match the part's"
                )));
            }
        }
        out.push(p.clone());
    }
    if let Some(small) = out[..out.len() - 1].iter().find(|p| p.size < min_part) {
        return Err(ApiError::EntityTooSmall(format!(
            "part {} is {} bytes; every part but the last must be at least {min_part}",
            small.number, small.size
        )));
    }
    Ok(out)
}

/// The object a completed upload becomes (before its manifest is written): the ETag is
/// `md5(part MD5s)-N`, the checksum (if the upload has an algorithm) composite or full-object.
fn assemble(u: &Upload, parts: Vec<Part>) -> Result<ObjectMeta, ApiError> {
    let mut md5 = Md5::new();
    for p in &parts {
        let raw = hex::decode(&p.etag)
            .map_err(|_| ApiError::Internal(format!("part {} has a bad ETag", p.number)))?;
        md5.update(&raw);
    }
    let etag = format!("{}-{}", hex::encode(md5.finalize()), parts.len());
    let mut checksums = std::collections::BTreeMap::new();
    if let Some(alg) = &u.checksum_algorithm {
        let full = u.checksum_type.as_deref() == Some("FULL_OBJECT");
        let values: Vec<(Option<&String>, u64)> = parts
            .iter()
            .map(|p| (p.checksums.get(alg), p.size))
            .collect();
        if let Some(v) = multipart_checksum(alg, full, &values) {
            checksums.insert(alg.clone(), v);
        }
    }
    Ok(ObjectMeta {
        bucket: u.bucket.clone(),
        key: u.key.clone(),
        version: u.id,
        size: parts.iter().map(|p| p.size).sum(),
        etag,
        parts,
        manifest: None,
        upload: Some(u.id),
        content_type: u.content_type.clone(),
        user_meta: u.user_meta.clone(),
        headers: u.headers.clone(),
        checksum_type: (!checksums.is_empty())
            .then(|| u.checksum_type.clone())
            .flatten(),
        checksums,
        last_modified_ms: now_ms(),
        packed: None,
        fill: None,
        acl: u.acl.clone(),
    })
}
