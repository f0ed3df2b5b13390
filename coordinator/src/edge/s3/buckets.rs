//! Buckets: ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation,
//! GetBucketVersioning (never enabled).

use super::acl::ownership_of;
use super::helpers::{bucket_name, header_ec, header_replicate_below, ok, timestamp, R};
use super::Tessera;
use crate::edge::access::acl::{self, grant_headers};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{now_ms, BucketMeta};
use s3s::dto::*;
use s3s::S3Request;
use std::collections::BTreeMap;

pub(super) async fn list_buckets(
    t: &Tessera,
    req: S3Request<ListBucketsInput>,
) -> R<ListBucketsOutput> {
    let caller = req.credentials.map(|c| c.access_key);
    let i = req.input;
    let max = match i.max_buckets {
        None => usize::MAX,
        Some(n) if (1..=10_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "max-buckets must be between 1 and 10000, not {n}"
            ))))
        }
    };
    // Buckets come in name order; a page resumes after the name its token carries.
    let after = i.continuation_token.clone().filter(|t| !t.is_empty());
    // An unsigned request lists nothing (unless every request is trusted: --anonymous).
    let buckets = if caller.is_none() && !t.c.config.anonymous {
        Vec::new()
    } else {
        t.c.meta.buckets().await.map_err(s3_err)?
    };
    let mut page: Vec<Bucket> = buckets
        .into_iter()
        .filter(|b| caller.as_ref().is_none_or(|k| b.grant_of(k).read))
        .filter(|b| {
            i.prefix
                .as_ref()
                .is_none_or(|p| b.name.starts_with(p.as_str()))
        })
        .filter(|b| after.as_ref().is_none_or(|a| b.name > *a))
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(timestamp(b.created_ms)),
            bucket_region: None,
        })
        .take(max.saturating_add(1))
        .collect();
    let more = page.len() > max;
    page.truncate(max);
    let continuation_token = if more {
        page.last().and_then(|b| b.name.clone())
    } else {
        None
    };
    ok(ListBucketsOutput {
        buckets: Some(page),
        owner: Some(t.owners(None).await?.key(caller.as_deref())),
        prefix: i.prefix,
        continuation_token,
    })
}

pub(super) async fn create_bucket(
    t: &Tessera,
    req: S3Request<CreateBucketInput>,
) -> R<CreateBucketOutput> {
    let i = &req.input;
    let name = bucket_name(&i.bucket)?;
    let lock = i.object_lock_enabled_for_bucket == Some(true);
    let ec = header_ec(&req.headers)?.unwrap_or(t.c.config.default_ec);
    let registered = t.c.registry.registered();
    if ec.total() > registered {
        return Err(s3_err(ApiError::InvalidArgument(format!(
            "erasure code {ec} needs {} nodes but {registered} are registered",
            ec.total()
        ))));
    }
    let owner = req.credentials.map(|c| c.access_key);
    let grants = grant_headers!(i);
    let keys = if grants.any() {
        t.key_map().await?
    } else {
        BTreeMap::new()
    };
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl = acl::requested(canned, &grants, owner.as_deref(), owner.as_deref(), &keys)?;
    let ownership = match &i.object_ownership {
        Some(o) => Some(ownership_of(&OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: o.clone(),
            }],
        })?),
        None => None,
    };
    if ownership.as_deref() == Some("BucketOwnerEnforced")
        && canned.is_some_and(|c| c != "bucket-owner-full-control" && c != "private")
    {
        return Err(s3_err(ApiError::AclNotSupported(name.to_string())));
    }
    let b = BucketMeta {
        replicate_below: header_replicate_below(&req.headers)?,
        acl,
        ownership,
        location: i
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|l| l.as_str().to_string())
            .filter(|l| !l.is_empty() && l != "us-east-1"),
        // A bucket created with object lock has versioning enabled, for good.
        versioning: lock.then(|| crate::meta::versions::ENABLED.to_string()),
        object_lock: lock.then(crate::meta::ObjectLock::default),
        ..BucketMeta::new(&name.to_string(), now_ms(), ec, owner.clone())
    };
    let b_acl = b.acl.clone();
    let created = if t.c.meta.create_bucket(b).await.map_err(s3_err)? {
        None
    } else {
        t.c.meta.bucket(name.to_string()).await.map_err(s3_err)?
    };
    // Re-creating one's own bucket succeeds and changes nothing, as S3 does in
    // us-east-1; another owner's name is taken.
    // A re-creation that would change the bucket's ACL is refused like a foreign one.
    if created.is_some_and(|existing| {
        existing.owner != owner
            || existing.acl() != b_acl.unwrap_or_else(|| crate::meta::Acl::private(owner.clone()))
    }) {
        return Err(s3s::S3Error::with_message(
            s3s::S3ErrorCode::BucketAlreadyExists,
            format!("bucket {name} already exists and belongs to another key"),
        ));
    }
    ok(CreateBucketOutput {
        location: Some(format!("/{name}")),
    })
}

pub(super) async fn delete_bucket(
    t: &Tessera,
    req: S3Request<DeleteBucketInput>,
) -> R<DeleteBucketOutput> {
    let n = bucket_name(&req.input.bucket)?.to_string();
    t.c.meta.delete_bucket(n).await.map_err(s3_err)?;
    ok(DeleteBucketOutput {})
}

pub(super) async fn head_bucket(
    t: &Tessera,
    req: S3Request<HeadBucketInput>,
) -> R<HeadBucketOutput> {
    t.existing_bucket(&req.input.bucket).await?;
    ok(HeadBucketOutput {
        bucket_region: Some("us-east-1".into()),
        ..Default::default()
    })
}

pub(super) async fn get_bucket_location(
    t: &Tessera,
    req: S3Request<GetBucketLocationInput>,
) -> R<GetBucketLocationOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    // No LocationConstraint is us-east-1, the region clients default to; otherwise the one
    // the bucket was created with.
    ok(GetBucketLocationOutput {
        location_constraint: b.location.map(BucketLocationConstraint::from),
    })
}
