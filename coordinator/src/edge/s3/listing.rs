//! Listings: ListObjects (v1), ListObjectsV2, ListObjectVersions (unversioned: every object
//! with VersionId `null`).

use super::acl::Owners;
use super::helpers::{encode_key, is_url, list_object, max_keys, ok, prefixes, resume_after, R};
use super::Tessera;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::Listing;
use s3s::dto::*;
use s3s::{S3Request, S3Result};

impl Tessera {
    pub(super) async fn listing(
        &self,
        bucket: &str,
        prefix: String,
        after: Option<String>,
        delimiter: Option<String>,
        max: usize,
    ) -> S3Result<(Owners, Listing)> {
        let b = self.existing_bucket(bucket).await?;
        if max == 0 {
            return Ok((Owners::default(), Listing::default()));
        }
        let l = self
            .c
            .meta
            .list(b.name, prefix, after, delimiter, max)
            .await
            .map_err(s3_err)?;
        let owners = if l.objects.is_empty() {
            Owners::default()
        } else {
            self.owners(b.owner).await?
        };
        Ok((owners, l))
    }
}

/// `allow-unordered=true` (an extension some clients send) cannot go with a delimiter.
fn check_unordered(uri: &http::Uri, delimiter: Option<&str>) -> S3Result<()> {
    let unordered = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.eq_ignore_ascii_case("allow-unordered=true"))
    });
    if unordered && delimiter.is_some_and(|d| !d.is_empty()) {
        return Err(s3_err(ApiError::InvalidArgument(
            "allow-unordered cannot be used with a delimiter".into(),
        )));
    }
    Ok(())
}

pub(super) async fn list_objects(
    t: &Tessera,
    req: S3Request<ListObjectsInput>,
) -> R<ListObjectsOutput> {
    check_unordered(&req.uri, req.input.delimiter.as_deref())?;
    let i = req.input;
    let url = is_url(&i.encoding_type)?;
    let max = max_keys(i.max_keys)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    // An empty delimiter is no delimiter (and is not echoed), as on S3.
    let delimiter = i.delimiter.filter(|d| !d.is_empty());
    let (owners, l) = t
        .listing(
            &i.bucket,
            prefix,
            i.marker.clone().filter(|m| !m.is_empty()),
            delimiter.clone(),
            max,
        )
        .await?;
    // NextMarker is returned only with a delimiter (as S3 does); clients use the last
    // key otherwise.
    let next_marker = if l.truncated && delimiter.is_some() {
        l.next.clone().map(|m| encode_key(m, url))
    } else {
        None
    };
    ok(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: i.prefix,
        // Always present (empty when none was given), as S3 answers.
        marker: Some(i.marker.unwrap_or_default()),
        max_keys: Some(max as i32),
        is_truncated: Some(l.truncated),
        contents: Some(
            l.objects
                .iter()
                .map(|o| list_object(o, url, Some(owners.of(o))))
                .collect(),
        ),
        common_prefixes: prefixes(&l, url),
        delimiter,
        next_marker,
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}

pub(super) async fn list_objects_v2(
    t: &Tessera,
    req: S3Request<ListObjectsV2Input>,
) -> R<ListObjectsV2Output> {
    check_unordered(&req.uri, req.input.delimiter.as_deref())?;
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
    let delimiter = i.delimiter.filter(|d| !d.is_empty());
    let (owners, l) = t
        .listing(&i.bucket, prefix, after, delimiter.clone(), max)
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
                .map(|o| list_object(o, url, owner.then(|| owners.of(o))))
                .collect(),
        ),
        common_prefixes: prefixes(&l, url),
        delimiter,
        encoding_type: i.encoding_type,
        start_after: i.start_after,
        ..Default::default()
    })
}
