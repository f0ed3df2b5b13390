//! A bucket's settings as one document an operator can keep elsewhere and put back
//! (`tessera bucket export/import`): the store's grants, the ACL, the policy, CORS rules, the
//! public access block, object ownership, versioning, object lock, lifecycle rules and the
//! bucket's tags. A metadata rebuild from the nodes cannot restore most of these (only the
//! metadata holds them), so this is how they survive its loss.
//! Also the operator's way out of a policy that locks everyone out: deleting it here needs
//! only the admin token.

use super::reply;
use crate::edge::access::policy;
use crate::error::ApiError;
use crate::meta::settings::{ENABLED, SUSPENDED};
use crate::meta::{
    Acl, BucketSetting, CorsRule, Grant, LifecycleRule, ObjectLock, PublicAccessBlock,
};
use crate::state::Coordinator;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a bucket's owner and operator set on it (not its objects).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BucketSettings {
    /// The owning key (shown on export; an import keeps the bucket's owner).
    #[serde(default)]
    owner: Option<String>,
    /// Keys the store grants, by access key id.
    #[serde(default)]
    grants: BTreeMap<String, Grant>,
    /// The bucket's ACL (`None`: the owner's full control).
    #[serde(default)]
    acl: Option<Acl>,
    /// The bucket policy, as its JSON text.
    #[serde(default)]
    policy: Option<String>,
    /// CORS rules.
    #[serde(default)]
    cors: Option<Vec<CorsRule>>,
    /// The public access block.
    #[serde(default)]
    public_access_block: Option<PublicAccessBlock>,
    /// Object ownership.
    #[serde(default)]
    ownership: Option<String>,
    /// Versioning (`Enabled`, `Suspended`; absent on import: left as it is, since a bucket
    /// never returns to unversioned).
    #[serde(default)]
    versioning: Option<String>,
    /// Object lock and its default retention (absent on import: left as it is, since object
    /// lock is never removed).
    #[serde(default)]
    object_lock: Option<ObjectLock>,
    /// Lifecycle rules.
    #[serde(default)]
    lifecycle: Option<Vec<LifecycleRule>>,
    /// The bucket's tags.
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

async fn settings_of(c: &Coordinator, bucket: &str) -> Result<BucketSettings, ApiError> {
    let b = c
        .meta
        .bucket(bucket.to_string())
        .await?
        .ok_or_else(|| ApiError::NoSuchBucket(bucket.to_string()))?;
    Ok(BucketSettings {
        owner: b.owner,
        grants: b.grants,
        acl: b.acl,
        policy: b.policy,
        cors: b.cors,
        public_access_block: b.public_access_block,
        ownership: b.ownership,
        versioning: b.versioning,
        object_lock: b.object_lock,
        lifecycle: b.lifecycle,
        tags: b.tags,
    })
}

/// Refuses a document whose versioning, object lock or lifecycle rules the bucket cannot
/// take (before anything is changed).
fn check_protection(now: &BucketSettings, s: &BucketSettings) -> Result<(), ApiError> {
    let versioning = s.versioning.as_deref().or(now.versioning.as_deref());
    if let Some(v) = &s.versioning {
        if !matches!(v.as_str(), ENABLED | SUSPENDED) {
            return Err(ApiError::InvalidArgument(format!(
                "unknown versioning {v:?}"
            )));
        }
    }
    let locked = s.object_lock.is_some() || now.object_lock.is_some();
    if locked && versioning != Some(ENABLED) {
        return Err(ApiError::InvalidBucketState(
            "object lock needs versioning Enabled".into(),
        ));
    }
    if let Some(rules) = &s.lifecycle {
        let mut ids = std::collections::HashSet::new();
        if rules.is_empty() || !rules.iter().all(|r| ids.insert(r.id.as_str())) {
            return Err(ApiError::InvalidArgument(
                "lifecycle rules must be at least one, with distinct ids".into(),
            ));
        }
    }
    Ok(())
}

/// `GET /buckets/{bucket}/settings`.
pub(super) async fn export(State(c): State<Arc<Coordinator>>, Path(b): Path<String>) -> Response {
    reply(settings_of(&c, &b).await)
}

/// `PUT /buckets/{bucket}/settings`: replaces every setting with the document's (absent ones
/// are cleared; grants to keys the document does not name are removed). The document is
/// checked whole first (its policy must be valid for this bucket, its grants must name
/// existing keys), so a bad one changes nothing.
pub(super) async fn import(
    State(c): State<Arc<Coordinator>>,
    Path(bucket): Path<String>,
    Json(s): Json<BucketSettings>,
) -> Response {
    let r = async {
        let now = settings_of(&c, &bucket).await?;
        if let Some(p) = &s.policy {
            policy::parse(p, &bucket).map_err(ApiError::MalformedPolicy)?;
        }
        check_protection(&now, &s)?;
        if let Some(o) = &s.ownership {
            if !matches!(
                o.as_str(),
                "BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter"
            ) {
                return Err(ApiError::InvalidArgument(format!(
                    "unknown ownership {o:?}"
                )));
            }
        }
        let acl_keys = s
            .acl
            .iter()
            .flat_map(|a| &a.grants)
            .filter_map(|g| match &g.grantee {
                crate::meta::Grantee::Key(k) => Some(k),
                _ => None,
            });
        for k in s.grants.keys().chain(acl_keys) {
            if c.meta.key(k.clone()).await?.is_none() {
                return Err(ApiError::InvalidArgument(format!("no access key {k}")));
            }
        }
        let m = &c.meta;
        let b = bucket.clone();
        let acl = s.acl.unwrap_or_else(|| Acl::private(now.owner.clone()));
        m.set_bucket_setting(b.clone(), BucketSetting::Acl(acl))
            .await?;
        m.set_bucket_setting(b.clone(), BucketSetting::Policy(s.policy))
            .await?;
        m.set_bucket_setting(b.clone(), BucketSetting::Cors(s.cors))
            .await?;
        let pab = BucketSetting::PublicAccessBlock(s.public_access_block);
        m.set_bucket_setting(b.clone(), pab).await?;
        m.set_bucket_setting(b.clone(), BucketSetting::Ownership(s.ownership))
            .await?;
        if let Some(v) = s.versioning.filter(|v| now.versioning.as_ref() != Some(v)) {
            m.set_versioning(b.clone(), v).await?;
        }
        if let Some(l) = s
            .object_lock
            .filter(|l| now.object_lock.as_ref() != Some(l))
        {
            m.set_object_lock(b.clone(), l).await?;
        }
        m.set_bucket_setting(b.clone(), BucketSetting::Lifecycle(s.lifecycle))
            .await?;
        m.set_bucket_setting(b.clone(), BucketSetting::Tags(s.tags))
            .await?;
        for k in now.grants.keys().filter(|k| !s.grants.contains_key(*k)) {
            m.set_grant(b.clone(), k.clone(), Grant::default()).await?;
        }
        for (k, g) in s.grants {
            m.set_grant(b.clone(), k, g).await?;
        }
        settings_of(&c, &bucket).await
    }
    .await;
    reply(r)
}

/// `DELETE /buckets/{bucket}/policy`: removes the bucket policy whatever it says.
pub(super) async fn delete_policy(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
) -> Response {
    let r = async {
        c.meta
            .set_bucket_setting(b.clone(), BucketSetting::Policy(None))
            .await?;
        settings_of(&c, &b).await
    }
    .await;
    reply(r)
}
