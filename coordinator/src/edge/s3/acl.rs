//! ACLs and object ownership: GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl,
//! Get/Put/DeleteBucketOwnershipControls, and the ACL a PUT, copy, upload or bucket creation
//! asks for ([`write_acl`]).

use super::helpers::{object_key, ok, R};
use super::Tessera;
use crate::edge::access::acl::{self, grant_headers, GrantHeaders};
use crate::edge::access::CheckedBucket;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{Acl, BucketMeta, BucketSetting, KeyRecord};
use s3s::dto::*;
use s3s::{S3Request, S3Result};
use std::collections::BTreeMap;

impl Tessera {
    /// Every access key by id (names for owners and grants; grants must name a key).
    pub(super) async fn key_map(&self) -> S3Result<BTreeMap<String, KeyRecord>> {
        let keys = self.c.meta.keys().await.map_err(s3_err)?;
        Ok(keys.into_iter().map(|k| (k.id.clone(), k)).collect())
    }

    /// Owners as listings show them, for objects of a bucket owned by `bucket_owner`.
    pub(super) async fn owners(&self, bucket_owner: Option<String>) -> S3Result<Owners> {
        Ok(Owners {
            keys: self.key_map().await?,
            bucket_owner,
        })
    }
}

/// Names the owners of listed objects and uploads (their key id and the key's name).
#[derive(Default)]
pub(super) struct Owners {
    keys: BTreeMap<String, KeyRecord>,
    bucket_owner: Option<String>,
}

impl Owners {
    /// The owner of `o`: its writer, or the bucket's owner.
    pub fn of(&self, o: &crate::meta::ObjectMeta) -> Owner {
        let id = o
            .acl
            .as_ref()
            .map_or(self.bucket_owner.as_deref(), |a| a.owner.as_deref());
        self.key(id)
    }

    /// The owner `id` (`None`: anonymous) as S3 shows it.
    pub fn key(&self, id: Option<&str>) -> Owner {
        acl::owner_dto(id, &self.keys)
    }
}

/// [`write_acl`] for an object write, with the bucket the access check read (read again
/// only when the check did not run, as with `--anonymous`).
pub(super) async fn object_write_acl(
    t: &Tessera,
    ext: &http::Extensions,
    bucket: &str,
    caller: Option<&str>,
    canned: Option<&ObjectCannedACL>,
    grants: GrantHeaders<'_>,
) -> S3Result<Option<Acl>> {
    let b = match ext.get::<CheckedBucket>() {
        Some(CheckedBucket(b)) if b.name == bucket => b.clone(),
        _ => t.existing_bucket(bucket).await?,
    };
    write_acl(t, &b, caller, canned.map(|c| c.as_str()), &grants).await
}

/// The ACL an object written by `caller` into `bucket` gets, from the request's canned ACL
/// and grant headers: `None` when that is the default (the bucket owner writing, no ACL
/// asked), so most objects carry no ACL record. Public ACLs are refused under
/// `BlockPublicAcls`; under `BucketOwnerEnforced` only `bucket-owner-full-control` is taken;
/// under `BucketOwnerPreferred` an upload with `bucket-owner-full-control` is the bucket
/// owner's.
pub(super) async fn write_acl(
    t: &Tessera,
    bucket: &BucketMeta,
    caller: Option<&str>,
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
) -> S3Result<Option<Acl>> {
    if bucket.acls_disabled() {
        if canned.is_some_and(|c| c != "bucket-owner-full-control") {
            return Err(acls_not_supported(&bucket.name));
        }
        return Ok(None);
    }
    if bucket.ownership.as_deref() == Some("BucketOwnerPreferred")
        && canned == Some("bucket-owner-full-control")
        && !grants.any()
    {
        return Ok(None);
    }
    let keys = if grants.any() {
        t.key_map().await?
    } else {
        BTreeMap::new()
    };
    let asked = acl::requested(canned, grants, caller, bucket.owner.as_deref(), &keys)?;
    if let Some(a) = &asked {
        refuse_public(bucket, a)?;
    }
    Ok(match asked {
        Some(a) => Some(a),
        None if caller != bucket.owner.as_deref() => Some(Acl::private(caller.map(String::from))),
        None => None,
    })
}

fn refuse_public(bucket: &BucketMeta, a: &Acl) -> S3Result<()> {
    if bucket.public_access().block_public_acls && a.is_public() {
        return Err(s3_err(ApiError::AccessDenied(format!(
            "the public access block of bucket {} refuses public ACLs",
            bucket.name
        ))));
    }
    Ok(())
}

fn acls_not_supported(bucket: &str) -> s3s::S3Error {
    s3_err(ApiError::AclNotSupported(bucket.into()))
}

async fn bucket_meta(t: &Tessera, bucket: &str) -> S3Result<BucketMeta> {
    t.existing_bucket(bucket).await
}

fn acl_of_request(
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
    body: Option<&AccessControlPolicy>,
    owner: Option<&str>,
    bucket_owner: Option<&str>,
    keys: &BTreeMap<String, KeyRecord>,
) -> S3Result<Acl> {
    match body {
        Some(p) if canned.is_none() => acl::from_policy(p, owner, keys),
        Some(_) => Err(s3_err(ApiError::InvalidRequest(
            "a canned ACL and an ACL document cannot be used together".into(),
        ))),
        None => acl::requested(canned, grants, owner, bucket_owner, keys)?.ok_or_else(|| {
            s3_err(ApiError::MalformedAcl(
                "the request carries no canned ACL, grant headers or ACL document".into(),
            ))
        }),
    }
}

pub(super) async fn get_bucket_acl(
    t: &Tessera,
    req: S3Request<GetBucketAclInput>,
) -> R<GetBucketAclOutput> {
    let b = bucket_meta(t, &req.input.bucket).await?;
    let keys = t.key_map().await?;
    let a = b.acl();
    ok(GetBucketAclOutput {
        grants: Some(acl::grants_dto(&a, &keys)),
        owner: Some(acl::owner_dto(b.owner.as_deref(), &keys)),
    })
}

pub(super) async fn put_bucket_acl(
    t: &Tessera,
    req: S3Request<PutBucketAclInput>,
) -> R<PutBucketAclOutput> {
    let i = &req.input;
    let b = bucket_meta(t, &i.bucket).await?;
    if b.acls_disabled() {
        return Err(acls_not_supported(&b.name));
    }
    let keys = t.key_map().await?;
    let grants = grant_headers!(i);
    let a = acl_of_request(
        i.acl.as_ref().map(|a| a.as_str()),
        &grants,
        i.access_control_policy.as_ref(),
        b.owner.as_deref(),
        b.owner.as_deref(),
        &keys,
    )?;
    refuse_public(&b, &a)?;
    t.c.meta
        .set_bucket_setting(b.name.clone(), BucketSetting::Acl(a))
        .await
        .map_err(s3_err)?;
    ok(PutBucketAclOutput {})
}

pub(super) async fn get_object_acl(
    t: &Tessera,
    req: S3Request<GetObjectAclInput>,
) -> R<GetObjectAclOutput> {
    let i = &req.input;
    let b = bucket_meta(t, &i.bucket).await?;
    let o = t.object(&i.bucket, &i.key).await?;
    let keys = t.key_map().await?;
    let a = o.acl.unwrap_or_else(|| Acl::private(b.owner.clone()));
    ok(GetObjectAclOutput {
        grants: Some(acl::grants_dto(&a, &keys)),
        owner: Some(acl::owner_dto(a.owner.as_deref(), &keys)),
        request_charged: None,
    })
}

pub(super) async fn put_object_acl(
    t: &Tessera,
    req: S3Request<PutObjectAclInput>,
) -> R<PutObjectAclOutput> {
    let i = &req.input;
    let b = bucket_meta(t, &i.bucket).await?;
    if b.acls_disabled() {
        return Err(acls_not_supported(&b.name));
    }
    let key = object_key(&i.key)?.to_string();
    let o = t.object(&i.bucket, &i.key).await?;
    let owner = o.acl.as_ref().map_or(b.owner.clone(), |a| a.owner.clone());
    let keys = t.key_map().await?;
    let grants = grant_headers!(i);
    let a = acl_of_request(
        i.acl.as_ref().map(|a| a.as_str()),
        &grants,
        i.access_control_policy.as_ref(),
        owner.as_deref(),
        b.owner.as_deref(),
        &keys,
    )?;
    refuse_public(&b, &a)?;
    t.c.meta
        .set_object_acl(b.name.clone(), key, a)
        .await
        .map_err(s3_err)?;
    ok(PutObjectAclOutput::default())
}

pub(super) async fn get_ownership(
    t: &Tessera,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> R<GetBucketOwnershipControlsOutput> {
    let b = bucket_meta(t, &req.input.bucket).await?;
    let Some(o) = b.ownership else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "OwnershipControlsNotFoundError",
            b.name,
        )));
    };
    ok(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(o),
            }],
        }),
    })
}

/// Checks an ownership setting (one of the three S3 names).
pub(super) fn ownership_of(controls: &OwnershipControls) -> S3Result<String> {
    match controls.rules.as_slice() {
        [rule] => match rule.object_ownership.as_str() {
            v @ ("BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter") => {
                Ok(v.to_string())
            }
            other => Err(s3_err(ApiError::MalformedXml(format!(
                "unknown object ownership {other:?}"
            )))),
        },
        _ => Err(s3_err(ApiError::MalformedXml(
            "ownership controls hold exactly one rule".into(),
        ))),
    }
}

pub(super) async fn put_ownership(
    t: &Tessera,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> R<PutBucketOwnershipControlsOutput> {
    let b = bucket_meta(t, &req.input.bucket).await?;
    let o = ownership_of(&req.input.ownership_controls)?;
    if o == "BucketOwnerEnforced" && b.acl() != Acl::private(b.owner.clone()) {
        return Err(s3_err(ApiError::InvalidBucketAclWithObjectOwnership(
            b.name,
        )));
    }
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Ownership(Some(o)))
        .await
        .map_err(s3_err)?;
    ok(PutBucketOwnershipControlsOutput {})
}

pub(super) async fn delete_ownership(
    t: &Tessera,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> R<DeleteBucketOwnershipControlsOutput> {
    let b = bucket_meta(t, &req.input.bucket).await?;
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Ownership(None))
        .await
        .map_err(s3_err)?;
    ok(DeleteBucketOwnershipControlsOutput {})
}
