//! GetObjectAttributes (the attributes of an object or one of its versions, without the
//! body) and GetObjectTorrent (not served).

use super::helpers::{etag, ok, timestamp, R};
use super::versions::version_of;
use super::Tessera;
use crate::edge::checksum::stored_checksums;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use s3s::dto::*;
use s3s::S3Request;

/// GetObjectAttributes: the attributes asked for in `x-amz-object-attributes` (ETag,
/// Checksum, ObjectParts with paging, StorageClass, ObjectSize) without the body.
pub(super) async fn get_object_attributes(
    t: &Tessera,
    req: S3Request<GetObjectAttributesInput>,
) -> R<GetObjectAttributesOutput> {
    let i = req.input;
    let meta = t
        .object_at(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    // Clients send the list as one comma-separated header value.
    let wants = |a: &str| {
        i.object_attributes
            .iter()
            .flat_map(|x| x.as_str().split(','))
            .any(|x| x.trim() == a)
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(timestamp(meta.last_modified_ms)),
        version_id: version_of(&meta),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        out.e_tag = Some(etag(&meta));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(meta.size as i64);
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if wants(ObjectAttributes::CHECKSUM) && !meta.checksums.is_empty() {
        let mut c = stored_checksums(&meta.checksums);
        c.checksum_type = meta.checksum_type.clone().map(ChecksumType::from);
        out.checksum = Some(c);
    }
    if wants(ObjectAttributes::OBJECT_PARTS) && meta.is_multipart() {
        let max = match i.max_parts {
            None => 1000,
            Some(n) if n >= 0 => (n as usize).min(1000),
            Some(n) => {
                return Err(s3_err(ApiError::InvalidArgument(format!(
                    "max-parts must not be negative, not {n}"
                ))))
            }
        };
        let marker = i.part_number_marker.unwrap_or(0).max(0) as u32;
        let after: Vec<_> = meta.parts.iter().filter(|p| p.number > marker).collect();
        let page: Vec<_> = after.iter().take(max).collect();
        let truncated = after.len() > page.len();
        out.object_parts = Some(GetObjectAttributesParts {
            total_parts_count: Some(meta.parts.len() as i32),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: page.last().map(|p| p.number as i32),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(
                page.iter()
                    .map(|p| {
                        let c = stored_checksums(&p.checksums);
                        ObjectPart {
                            part_number: Some(p.number as i32),
                            size: Some(p.size as i64),
                            checksum_crc32: c.checksum_crc32,
                            checksum_crc32c: c.checksum_crc32c,
                            checksum_sha1: c.checksum_sha1,
                            checksum_sha256: c.checksum_sha256,
                            checksum_crc64nvme: c.checksum_crc64nvme,
                        }
                    })
                    .collect(),
            ),
        });
    }
    ok(out)
}

/// Torrents are not served: an existing object answers NoSuchKey for its torrent, as S3
/// does where torrents are unavailable.
pub(super) async fn get_object_torrent(
    t: &Tessera,
    req: S3Request<GetObjectTorrentInput>,
) -> R<GetObjectTorrentOutput> {
    let i = req.input;
    t.object(&i.bucket, &i.key).await?;
    Err(s3_err(ApiError::NoSuchKey {
        bucket: i.bucket,
        key: format!("{}?torrent (torrents are not served)", i.key),
    }))
}
