//! Versioning as S3 clients see it: Get/PutBucketVersioning, which version a request names
//! (and how a delete marker answers), deletes with and without a version id, and
//! ListObjectVersions.

use super::helpers::{
    bucket_name, encode_key, etag, is_url, max_keys, object_key, ok, timestamp, R,
};
use super::Tessera;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::versions::{parse_version_id, ENABLED, SUSPENDED};
use crate::meta::{DeleteCondition, Deleted, ObjectMeta};
use s3s::dto::*;
use s3s::{S3Request, S3Result};

pub(super) async fn get_bucket_versioning(
    t: &Tessera,
    req: S3Request<GetBucketVersioningInput>,
) -> R<GetBucketVersioningOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    // A bucket whose versioning was never set has no Status (what S3 answers for one).
    ok(GetBucketVersioningOutput {
        mfa_delete: b
            .versioning
            .is_some()
            .then(|| MFADeleteStatus::from_static(MFADeleteStatus::DISABLED)),
        status: b.versioning.map(BucketVersioningStatus::from),
    })
}

pub(super) async fn put_bucket_versioning(
    t: &Tessera,
    req: S3Request<PutBucketVersioningInput>,
) -> R<PutBucketVersioningOutput> {
    let i = req.input;
    let name = bucket_name(&i.bucket)?.to_string();
    t.existing_bucket(&name).await?;
    let c = i.versioning_configuration;
    if c.mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == "Enabled")
    {
        return Err(s3_err(ApiError::InvalidArgument(
            "MFA delete is not supported".into(),
        )));
    }
    let status = match c.status.as_ref().map(|s| s.as_str()) {
        Some(s @ (ENABLED | SUSPENDED)) => s.to_string(),
        Some(other) => {
            return Err(s3_err(ApiError::MalformedXml(format!(
                "versioning Status {other:?} is neither Enabled nor Suspended"
            ))))
        }
        None => {
            return Err(s3_err(ApiError::MalformedXml(
                "a versioning configuration needs a Status".into(),
            )))
        }
    };
    t.c.meta
        .set_versioning(name, status)
        .await
        .map_err(s3_err)?;
    ok(PutBucketVersioningOutput {})
}

/// The version id a read names for `o`: one written into a bucket with versioning set has
/// one (`null` too); an object from before versioning answers none, as S3.
pub(super) fn version_of(o: &ObjectMeta) -> Option<String> {
    o.seq.map(|_| o.version_id())
}

/// The version id a write answers with: none for a `null` version (a suspended bucket), as
/// S3.
pub(super) fn written_version(o: &ObjectMeta) -> Option<String> {
    (!o.is_null()).then(|| o.version_id())
}

/// A version id a request gives, checked: InvalidArgument unless it is one this store makes.
fn checked_id(id: &str) -> S3Result<&str> {
    if parse_version_id(id).is_none() {
        return Err(s3_err(ApiError::InvalidArgument(format!(
            "invalid version id specified: {id:?}"
        ))));
    }
    Ok(id)
}

/// How S3 answers a request that meets delete marker `m`: 404 NoSuchKey when it asked for
/// the key, 405 MethodNotAllowed when it named the marker's version; both say
/// `x-amz-delete-marker: true` and the marker's version id.
fn met_marker(m: &ObjectMeta, named: bool) -> s3s::S3Error {
    let mut e = if named {
        s3_err(ApiError::MethodNotAllowed(
            "the version named is a delete marker".into(),
        ))
    } else {
        s3_err(ApiError::NoSuchKey {
            bucket: m.bucket.clone(),
            key: m.key.clone(),
        })
    };
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&m.version_id()) {
        h.insert("x-amz-version-id", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(m.last_modified_ms),
    )) {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    e.set_headers(h);
    e
}

impl Tessera {
    /// The version of `bucket`/`key` a request names: `version_id`, or the current one.
    /// NoSuchKey / NoSuchVersion when there is none; a delete marker answers as S3 does
    /// (see [`met_marker`]).
    pub(super) async fn object_at(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<ObjectMeta> {
        let b = bucket_name(bucket)?.to_string();
        let k = object_key(key)?.to_string();
        let meta = &self.c.meta;
        let found = match version_id {
            None => match meta.lookup(b.clone(), k.clone()).await.map_err(s3_err)? {
                Some(o) => return Ok(o),
                None => meta
                    .newest_version(b.clone(), k.clone())
                    .await
                    .map_err(s3_err)?,
            },
            Some(id) => {
                let id = checked_id(id)?.to_string();
                let v = meta
                    .object_version(b.clone(), k.clone(), id.clone())
                    .await
                    .map_err(s3_err)?;
                if v.is_none() {
                    return Err(s3_err(ApiError::NoSuchVersion(format!(
                        "{b}/{k} has no version {id}"
                    ))));
                }
                v
            }
        };
        match found {
            Some(o) if !o.delete_marker => Ok(o),
            Some(marker) => Err(met_marker(&marker, version_id.is_some())),
            None => Err(s3_err(ApiError::NoSuchKey { bucket: b, key: k })),
        }
    }

    /// Deletes `bucket`/`key`: version `version_id` for good (unless object lock protects
    /// it; `bypass`: GOVERNANCE retention may be bypassed), or (without one) the current
    /// version if it meets `cond` (a delete marker in a versioned bucket).
    pub(super) async fn delete_key(
        &self,
        bucket: String,
        key: String,
        version_id: Option<String>,
        cond: DeleteCondition,
        bypass: bool,
    ) -> Result<Deleted, ApiError> {
        if self.c.meta.bucket(bucket.clone()).await?.is_none() {
            return Err(ApiError::NoSuchBucket(bucket));
        }
        let done = match version_id {
            Some(id) => {
                checked_id(&id).map_err(|e| {
                    ApiError::InvalidArgument(e.message().unwrap_or_default().into())
                })?;
                self.c
                    .meta
                    .delete_version(bucket, key, id, cond, bypass)
                    .await?
            }
            None if cond == DeleteCondition::default() => {
                self.c.meta.delete_object(bucket, key).await?
            }
            None => self.c.meta.delete_object_if(bucket, key, cond).await?,
        };
        if done.removed.is_some() {
            self.c.gc_kick.notify_one();
        }
        Ok(done)
    }
}

/// What a delete answers: the version deleted (named) or the marker written, and whether
/// that is a delete marker.
pub(super) fn deleted_answer(done: &Deleted, named: Option<&str>) -> (Option<String>, bool) {
    match (named, &done.marker) {
        (Some(id), _) => (
            Some(id.to_string()),
            done.removed.as_ref().is_some_and(|r| r.delete_marker),
        ),
        (None, Some(m)) => (Some(m.version_id()), true),
        (None, None) => (None, false),
    }
}

pub(super) async fn list_object_versions(
    t: &Tessera,
    req: S3Request<ListObjectVersionsInput>,
) -> R<ListObjectVersionsOutput> {
    let i = req.input;
    let url = is_url(&i.encoding_type)?;
    let max = max_keys(i.max_keys)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let b = t.existing_bucket(&i.bucket).await?;
    if let Some(id) = i.version_id_marker.as_deref().filter(|v| !v.is_empty()) {
        if i.key_marker.as_deref().unwrap_or_default().is_empty() {
            return Err(s3_err(ApiError::InvalidArgument(
                "a version-id-marker needs a key-marker".into(),
            )));
        }
        checked_id(id)?;
    }
    let l =
        t.c.meta
            .list_versions(
                b.name.clone(),
                prefix,
                i.key_marker.clone().filter(|m| !m.is_empty()),
                i.version_id_marker.clone().filter(|m| !m.is_empty()),
                i.delimiter.clone().filter(|d| !d.is_empty()),
                max,
            )
            .await
            .map_err(s3_err)?;
    let owners = t.owners(b.owner).await?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for (o, latest) in &l.versions {
        let key = Some(encode_key(o.key.clone(), url));
        if o.delete_marker {
            markers.push(DeleteMarkerEntry {
                key,
                is_latest: Some(*latest),
                last_modified: Some(timestamp(o.last_modified_ms)),
                owner: Some(owners.of(o)),
                version_id: Some(o.version_id()),
            });
        } else {
            versions.push(ObjectVersion {
                key,
                e_tag: Some(etag(o)),
                size: Some(o.size as i64),
                last_modified: Some(timestamp(o.last_modified_ms)),
                is_latest: Some(*latest),
                version_id: Some(o.version_id()),
                owner: Some(owners.of(o)),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                ..Default::default()
            });
        }
    }
    let (next_key, next_version) = match l.next {
        Some((k, v)) => (Some(encode_key(k, url)), v),
        None => (None, None),
    };
    let common_prefixes = (!l.prefixes.is_empty()).then(|| {
        l.prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(encode_key(p.clone(), url)),
            })
            .collect()
    });
    ok(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: i.prefix,
        key_marker: i.key_marker,
        version_id_marker: i.version_id_marker,
        max_keys: Some(max as i32),
        is_truncated: Some(l.truncated),
        next_key_marker: next_key,
        next_version_id_marker: next_version,
        versions: Some(versions),
        delete_markers: (!markers.is_empty()).then_some(markers),
        common_prefixes,
        delimiter: i.delimiter,
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}
