//! Tags: Put/Get/DeleteObjectTagging (per version), Put/Get/DeleteBucketTagging, the
//! `x-amz-tagging` header of writes and the `x-amz-tagging-count` of reads, under S3's
//! limits (InvalidTag): at most 10 tags on an object (50 on a bucket), keys of 1-128 and
//! values of at most 256 characters, no key twice.

use super::helpers::{bucket_name, object_key, ok, R};
use super::versions::version_of;
use super::Tessera;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::BucketSetting;
use s3s::dto::*;
use s3s::{S3Request, S3Result};
use std::collections::BTreeMap;

/// Most tags an object may carry.
pub const MAX_OBJECT_TAGS: usize = 10;
/// Most tags a bucket may carry.
pub const MAX_BUCKET_TAGS: usize = 50;

/// Checks tags against S3's limits; the map they make.
pub fn checked_tags(
    pairs: impl IntoIterator<Item = (String, String)>,
    max: usize,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        let (kn, vn) = (k.chars().count(), v.chars().count());
        if kn == 0 || kn > 128 {
            return Err(ApiError::InvalidTag(format!(
                "a tag key has 1 to 128 characters, not {kn}"
            )));
        }
        if vn > 256 {
            return Err(ApiError::InvalidTag(format!(
                "a tag value has at most 256 characters, not {vn}"
            )));
        }
        if out.insert(k.clone(), v).is_some() {
            return Err(ApiError::InvalidTag(format!(
                "the tag key {k:?} is given twice"
            )));
        }
    }
    if out.len() > max {
        return Err(ApiError::InvalidTag(format!(
            "at most {max} tags, not {}",
            out.len()
        )));
    }
    Ok(out)
}

/// The tags of an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded), checked.
pub fn header_tags(header: Option<&str>) -> S3Result<BTreeMap<String, String>> {
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let decode = |s: &str| {
        urlencoding::decode(&s.replace('+', " "))
            .map(|d| d.into_owned())
            .map_err(|_| {
                s3_err(ApiError::InvalidTag(format!(
                    "{s:?} is not URL-encoded UTF-8"
                )))
            })
    };
    let mut pairs = Vec::new();
    for p in h.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        pairs.push((decode(k)?, decode(v)?));
    }
    checked_tags(pairs, MAX_OBJECT_TAGS).map_err(s3_err)
}

/// `x-amz-tagging-count` on a GET or HEAD of a tagged object.
pub(super) fn tag_count(o: &crate::meta::ObjectMeta, h: &mut http::HeaderMap) {
    if !o.tags.is_empty() {
        h.insert("x-amz-tagging-count", o.tags.len().into());
    }
}

fn tag_set(tags: &BTreeMap<String, String>) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

fn from_tagging(t: Tagging, max: usize) -> S3Result<BTreeMap<String, String>> {
    checked_tags(
        t.tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default())),
        max,
    )
    .map_err(s3_err)
}

pub(super) async fn put_object_tagging(
    t: &Tessera,
    req: S3Request<PutObjectTaggingInput>,
) -> R<PutObjectTaggingOutput> {
    let i = req.input;
    let (b, k) = (
        bucket_name(&i.bucket)?.to_string(),
        object_key(&i.key)?.to_string(),
    );
    let tags = from_tagging(i.tagging, MAX_OBJECT_TAGS)?;
    let o =
        t.c.meta
            .set_object_tags(b, k, i.version_id, tags)
            .await
            .map_err(s3_err)?;
    ok(PutObjectTaggingOutput {
        version_id: version_of(&o),
    })
}

pub(super) async fn get_object_tagging(
    t: &Tessera,
    req: S3Request<GetObjectTaggingInput>,
) -> R<GetObjectTaggingOutput> {
    let i = req.input;
    let o = t
        .object_at(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    ok(GetObjectTaggingOutput {
        tag_set: tag_set(&o.tags),
        version_id: version_of(&o),
    })
}

pub(super) async fn delete_object_tagging(
    t: &Tessera,
    req: S3Request<DeleteObjectTaggingInput>,
) -> R<DeleteObjectTaggingOutput> {
    let i = req.input;
    let (b, k) = (
        bucket_name(&i.bucket)?.to_string(),
        object_key(&i.key)?.to_string(),
    );
    let o =
        t.c.meta
            .set_object_tags(b, k, i.version_id, BTreeMap::new())
            .await
            .map_err(s3_err)?;
    ok(DeleteObjectTaggingOutput {
        version_id: version_of(&o),
    })
}

pub(super) async fn put_bucket_tagging(
    t: &Tessera,
    req: S3Request<PutBucketTaggingInput>,
) -> R<PutBucketTaggingOutput> {
    let i = req.input;
    let name = bucket_name(&i.bucket)?.to_string();
    let tags = from_tagging(i.tagging, MAX_BUCKET_TAGS)?;
    t.c.meta
        .set_bucket_setting(name, BucketSetting::Tags(Some(tags)))
        .await
        .map_err(s3_err)?;
    ok(PutBucketTaggingOutput {})
}

pub(super) async fn get_bucket_tagging(
    t: &Tessera,
    req: S3Request<GetBucketTaggingInput>,
) -> R<GetBucketTaggingOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let Some(tags) = b.tags else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchTagSet",
            b.name,
        )));
    };
    ok(GetBucketTaggingOutput {
        tag_set: tag_set(&tags),
    })
}

pub(super) async fn delete_bucket_tagging(
    t: &Tessera,
    req: S3Request<DeleteBucketTaggingInput>,
) -> R<DeleteBucketTaggingOutput> {
    let name = bucket_name(&req.input.bucket)?.to_string();
    t.c.meta
        .set_bucket_setting(name, BucketSetting::Tags(None))
        .await
        .map_err(s3_err)?;
    ok(DeleteBucketTaggingOutput {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_header_parsing() {
        let ten: Vec<_> = (0..10)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(
            checked_tags(ten.clone(), MAX_OBJECT_TAGS).unwrap().len(),
            10
        );
        let mut eleven = ten;
        eleven.push(("k10".into(), "v".into()));
        assert!(matches!(
            checked_tags(eleven, MAX_OBJECT_TAGS),
            Err(ApiError::InvalidTag(_))
        ));
        for bad in [
            vec![("".to_string(), "v".to_string())],
            vec![("k".repeat(129), "v".into())],
            vec![("k".into(), "v".repeat(257))],
            vec![("k".into(), "a".into()), ("k".into(), "b".into())],
        ] {
            assert!(checked_tags(bad, MAX_OBJECT_TAGS).is_err());
        }
        let h = header_tags(Some("a=1&b%20c=x+y&empty=")).unwrap();
        assert_eq!(h["a"], "1");
        assert_eq!(h["b c"], "x y");
        assert_eq!(h["empty"], "");
        assert!(header_tags(Some("")).unwrap().is_empty());
    }
}
