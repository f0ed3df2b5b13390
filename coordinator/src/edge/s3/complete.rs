//! CompleteMultipartUpload: the parts a completion names are checked against the stored
//! ones (S3's rules and codes; a part uploaded twice is taken by the ETag named), a small
//! replicated manifest is written (the object's metadata, so a metadata rebuild can find
//! multipart objects) and the object committed in one metadata transaction; parts left out
//! become garbage. A retried completion of an upload already completed gets the same answer.

use super::helpers::{bucket_name, object_key, ok, precondition, R};
use super::multipart::MAX_PARTS;
use super::versions::written_version;
use super::Tessera;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::edge::checksum::{as_map, multipart_checksum, stored_checksums};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{now_ms, ObjectMeta, Part, Upload};
use crate::names::EcSpec;
use bytes::Bytes;
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Request, S3Response};
use std::collections::BTreeMap;
use tessera_node::{ObjectVersion, ShardRole};

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
    // `If-Match` on a key that does not exist: NoSuchKey, as for a PUT (the commit checks
    // the condition again, atomically).
    if i.if_match.is_some()
        && t.c
            .meta
            .object(upload.bucket.clone(), upload.key.clone())
            .await
            .map_err(s3_err)?
            .is_none()
    {
        return Err(s3_err(ApiError::NoSuchKey {
            bucket: upload.bucket.clone(),
            key: upload.key.clone(),
        }));
    }
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
    let obj = staged.commit_with(commit).await.map_err(s3_err)?;
    let mut resp = S3Response::new(answer(
        &obj.bucket,
        &obj.key,
        &obj.etag,
        &obj.checksums,
        &obj.checksum_type,
        written_version(&obj),
    ));
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
    ok(answer(
        &done.bucket,
        &done.key,
        &done.etag,
        &done.checksums,
        &done.checksum_type,
        done.version_id.clone(),
    ))
}

/// The answer to a completion, the first time and on a retry alike.
fn answer(
    bucket: &str,
    key: &str,
    etag: &str,
    checksums: &BTreeMap<String, String>,
    checksum_type: &Option<String>,
    version_id: Option<String>,
) -> CompleteMultipartUploadOutput {
    let c = stored_checksums(checksums);
    CompleteMultipartUploadOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        e_tag: Some(ETag::Strong(etag.to_string())),
        location: Some(format!("/{bucket}/{key}")),
        checksum_crc32: c.checksum_crc32,
        checksum_crc32c: c.checksum_crc32c,
        checksum_sha1: c.checksum_sha1,
        checksum_sha256: c.checksum_sha256,
        checksum_crc64nvme: c.checksum_crc64nvme,
        checksum_type: checksum_type.clone().map(ChecksumType::from),
        version_id,
        ..Default::default()
    }
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
        if out.last().is_some_and(|p| p.number as i32 > n) {
            return Err(ApiError::InvalidPartOrder);
        }
        // A number named twice in a row (both uploads of a part resent while the first was
        // still running): the later entry is the one used.
        if out.last().is_some_and(|p| p.number as i32 == n) {
            out.pop();
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
        seq: None,
        null_version: false,
        delete_marker: false,
        tags: u.tags.clone(),
        retention: u.retention.clone(),
        legal_hold: u.legal_hold,
    })
}
