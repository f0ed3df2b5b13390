//! Who may do what on the client API: the per-request decision, from the bucket's owner and
//! the store's grants, its policy, and its and its objects' ACLs.
//!
//! Signatures are checked first by `s3s` (with the secrets [`super::auth::KeyAuth`] looks
//! up); then [`Access`] decides, in this order:
//! 1. An applying `Deny` in the bucket policy refuses, whoever asks (the owner too).
//! 2. The bucket's owner, and keys the store grants (`tessera bucket allow`), may do what
//!    their grant says ([`crate::meta::Grant`]).
//! 3. An applying `Allow` in the policy allows (unless the public access block's
//!    `RestrictPublicBuckets` is set and the policy is public).
//! 4. The ACLs (unless the bucket's ownership is `BucketOwnerEnforced`): the bucket's for
//!    bucket operations and writes, the object's for reads of an object and its ACL;
//!    grants to every user are left out under `IgnorePublicAcls`.
//! 5. Nothing else is allowed.
//!
//! Unsigned requests go through the same steps as the principal `*` / group `AllUsers`: a
//! bucket is reachable without a signature only where its policy or ACLs say so (or with
//! `--anonymous`, local experiments only, where they get full access). Any key may list its
//! buckets and create buckets; an unsigned ListBuckets lists nothing.
//!
//! - [`acl`]: canned ACLs, grant headers and ACL documents.
//! - [`policy`]: checking and evaluating bucket policies.
//! - [`cors`]: CORS preflights and response headers, from the bucket's rules.

pub mod acl;
pub mod cors;
pub mod policy;

use super::error::s3_err;
use crate::error::ApiError;
use crate::meta::{access_stamp, Acl, BucketMeta, Permission, Precondition};
use crate::state::Coordinator;
use policy::{Decision, Facts, PolicyCache};
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::S3Result;
use s3s_policy::model::Policy;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::listen::Peer;

/// What an operation needs from the store's grants ([`crate::meta::Grant`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read or list objects.
    Read,
    /// Write or delete objects.
    Write,
    /// Anything else about the bucket (deleting it, its configuration).
    Owner,
}

/// The grant an S3 operation needs in its bucket.
pub fn need_of(op: &str) -> Need {
    match op {
        "GetObject"
        | "GetObjectAttributes"
        | "HeadObject"
        | "ListObjects"
        | "ListObjectsV2"
        | "ListObjectVersions"
        | "HeadBucket"
        | "GetBucketLocation"
        | "GetBucketVersioning"
        | "ListParts"
        | "ListMultipartUploads"
        | "GetObjectTagging"
        | "GetObjectRetention"
        | "GetObjectLegalHold" => Need::Read,
        "PutObject"
        | "PostObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "PutObjectTagging"
        | "DeleteObjectTagging"
        | "PutObjectRetention"
        | "PutObjectLegalHold" => Need::Write,
        _ => Need::Owner,
    }
}

/// Where the ACLs decide an operation: on the bucket's ACL or the object's, and what
/// permission it needs (`None`: only the owner, the store's grants and the policy decide).
fn acl_need(op: &str) -> Option<(bool, Permission)> {
    const BUCKET: bool = false;
    const OBJECT: bool = true;
    Some(match op {
        "GetObject"
        | "HeadObject"
        | "GetObjectAttributes"
        | "GetObjectTagging"
        | "GetObjectRetention"
        | "GetObjectLegalHold" => (OBJECT, Permission::Read),
        "PutObjectTagging"
        | "DeleteObjectTagging"
        | "PutObjectRetention"
        | "PutObjectLegalHold" => (OBJECT, Permission::Write),
        "GetObjectAcl" => (OBJECT, Permission::ReadAcp),
        "PutObjectAcl" => (OBJECT, Permission::WriteAcp),
        "ListObjects"
        | "ListObjectsV2"
        | "ListObjectVersions"
        | "ListMultipartUploads"
        | "HeadBucket"
        | "GetBucketLocation" => (BUCKET, Permission::Read),
        "PutObject"
        | "PostObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts" => (BUCKET, Permission::Write),
        "GetBucketAcl" => (BUCKET, Permission::ReadAcp),
        "PutBucketAcl" => (BUCKET, Permission::WriteAcp),
        _ => return None,
    })
}

/// The policy action of an S3 operation.
fn action_of(op: &str) -> String {
    let a = match op {
        "HeadObject" => "GetObject",
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => "ListBucket",
        "ListObjectVersions" => "ListBucketVersions",
        "CopyObject"
        | "PostObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => "PutObject",
        "DeleteObjects" => "DeleteObject",
        "ListParts" => "ListMultipartUploadParts",
        "ListMultipartUploads" => "ListBucketMultipartUploads",
        "GetBucketPolicyStatus" => "GetBucketPolicyStatus",
        "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" => "PutBucketPublicAccessBlock",
        "DeletePublicAccessBlock" => "PutBucketPublicAccessBlock",
        "DeleteBucketCors" => "PutBucketCORS",
        "GetBucketCors" => "GetBucketCORS",
        "PutBucketCors" => "PutBucketCORS",
        "DeleteBucketPolicy" => "DeleteBucketPolicy",
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => "PutLifecycleConfiguration",
        "GetBucketLifecycleConfiguration" => "GetLifecycleConfiguration",
        other => other,
    };
    format!("s3:{a}")
}

/// One request as the access decision sees it.
pub struct Request<'a> {
    /// The signing key (`None`: unsigned).
    pub caller: Option<&'a str>,
    /// The S3 operation's name.
    pub op: &'a str,
    /// The bucket.
    pub bucket: &'a str,
    /// The object, for object operations.
    pub key: Option<&'a str>,
    /// Condition keys for the policy (lowercase names).
    pub keys: BTreeMap<String, Vec<String>>,
}

/// Decides `r` on the bucket `meta` whose policy (if any) is `policy` (see the module docs);
/// `Err` is AccessDenied.
pub async fn decide(
    c: &Arc<Coordinator>,
    meta: &BucketMeta,
    policy: Option<&Policy>,
    r: &Request<'_>,
) -> S3Result<()> {
    if r.caller.is_none() && c.config.anonymous {
        return Ok(());
    }
    let pab = meta.public_access();
    let decision = policy.map_or(Decision::Silent, |p| {
        let f = Facts {
            caller: r.caller.map(String::from),
            action: action_of(r.op),
            resource: match r.key {
                Some(k) => format!("arn:aws:s3:::{}/{k}", meta.name),
                None => format!("arn:aws:s3:::{}", meta.name),
            },
            keys: r.keys.clone(),
        };
        policy::evaluate(p, &f)
    });
    if decision == Decision::Deny {
        return Err(denied(r, "the bucket policy denies it"));
    }
    if let Some(k) = r.caller {
        let g = meta.grant_of(k);
        let granted = match need_of(r.op) {
            Need::Read => g.read,
            Need::Write => g.write,
            Need::Owner => g.owner,
        };
        if granted {
            return Ok(());
        }
    }
    if decision == Decision::Allow {
        let public = policy.is_some_and(policy::is_public);
        if !(pab.restrict_public_buckets && public) {
            return Ok(());
        }
    }
    if !meta.acls_disabled() {
        if let Some((on_object, wanted)) = acl_need(r.op) {
            let ignore = pab.ignore_public_acls;
            let bucket_acl = meta.acl();
            let allowed = match (on_object, r.key) {
                (true, Some(key)) => {
                    match c
                        .meta
                        .object(meta.name.clone(), key.to_string())
                        .await
                        .map_err(s3_err)?
                    {
                        Some(o) => o
                            .acl
                            .unwrap_or_else(|| Acl::private(meta.owner.clone()))
                            .allows(r.caller, wanted, ignore),
                        // A missing object: who may list the bucket learns it is missing.
                        None => bucket_acl.allows(r.caller, Permission::Read, ignore),
                    }
                }
                _ => bucket_acl.allows(r.caller, wanted, ignore),
            };
            if allowed {
                return Ok(());
            }
        }
    }
    Err(denied(r, "no grant, ACL or policy allows it"))
}

fn denied(r: &Request<'_>, why: &str) -> s3s::S3Error {
    let who = r
        .caller
        .map_or("an unsigned request".to_string(), |k| format!("key {k}"));
    s3_err(ApiError::AccessDenied(format!(
        "{who} may not {} in bucket {}: {why}",
        r.op, r.bucket
    )))
}

/// Condition keys of a request: the client address, transport, and the S3 keys its query
/// and headers carry.
fn condition_keys(cx: &mut S3AccessContext<'_>) -> BTreeMap<String, Vec<String>> {
    let mut keys = BTreeMap::new();
    // Every request carries its connection's peer (`server.rs`): the client address (a
    // policy's `aws:SourceIp`) and whether it came over TLS (`aws:SecureTransport`).
    let peer = cx.extensions_mut().get::<Peer>().copied();
    if let Some(p) = peer {
        keys.insert("aws:sourceip".into(), vec![p.addr.ip().to_string()]);
    }
    let tls = peer.is_some_and(|p| p.tls);
    keys.insert("aws:securetransport".into(), vec![tls.to_string()]);
    if let Some(q) = cx.uri().query() {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if matches!(k, "prefix" | "delimiter" | "max-keys") {
                let v = urlencoding::decode(&v.replace('+', " ")).map(|v| v.into_owned());
                keys.insert(format!("s3:{k}"), vec![v.unwrap_or_default()]);
            }
        }
    }
    for (name, value) in cx.headers() {
        let n = name.as_str();
        let as_key = match n {
            "referer" => Some("aws:referer".to_string()),
            "user-agent" => Some("aws:useragent".to_string()),
            _ if n.starts_with("x-amz-") => Some(format!("s3:{n}")),
            _ => None,
        };
        if let (Some(k), Ok(v)) = (as_key, value.to_str()) {
            keys.entry(k).or_insert_with(Vec::new).push(v.to_string());
        }
    }
    keys
}

/// The per-operation access check.
pub struct Access {
    c: Arc<Coordinator>,
    policies: PolicyCache,
}

impl Access {
    /// Access control for the coordinator `c`.
    pub fn new(c: Arc<Coordinator>) -> Self {
        Access {
            c,
            policies: PolicyCache::default(),
        }
    }

    /// Fails unless `caller` may read object `key` of `bucket` (a copy's source).
    pub async fn require_read(
        &self,
        caller: Option<&str>,
        bucket: &str,
        key: &str,
    ) -> S3Result<()> {
        let meta = self.bucket(bucket).await?;
        self.check_one(
            caller,
            "GetObject",
            meta.as_ref(),
            Some(key),
            BTreeMap::new(),
        )
        .await
    }

    async fn bucket(&self, name: &str) -> S3Result<Option<BucketMeta>> {
        self.c.meta.bucket(name.to_string()).await.map_err(s3_err)
    }

    /// The bucket a PUT is decided on: as this coordinator applied it when it has it (its
    /// commit checks the [`AccessStamp`]), else read linearizably (it may have just been
    /// created through another coordinator).
    async fn bucket_for_put(&self, name: &str) -> S3Result<Option<BucketMeta>> {
        match self.c.meta.bucket_applied(name.to_string()).await {
            Ok(Some(b)) => Ok(Some(b)),
            Ok(None) => self.bucket(name).await,
            Err(e) => Err(s3_err(e)),
        }
    }

    /// Fails unless access key `id` exists now (linearizably): signatures were checked with
    /// the key as this coordinator applied it, so in a group a request other than a stamped
    /// PUT checks that it was not deleted meanwhile.
    async fn key_exists(&self, id: &str) -> S3Result<()> {
        match self.c.meta.key(id.to_string()).await.map_err(s3_err)? {
            Some(_) => Ok(()),
            None => Err(super::auth::unknown_key()),
        }
    }

    /// The stamp of `bucket` and `caller`'s key as this coordinator `applied` it (else as
    /// it is now).
    async fn stamp(
        &self,
        bucket: &BucketMeta,
        caller: Option<&str>,
        applied: bool,
    ) -> S3Result<AccessStamp> {
        let key = match caller {
            Some(id) => {
                let read = match applied {
                    true => self.c.meta.key_applied(id.to_string()).await,
                    false => self.c.meta.key(id.to_string()).await,
                };
                Some(read.map_err(s3_err)?.ok_or_else(super::auth::unknown_key)?)
            }
            None => None,
        };
        Ok(AccessStamp {
            stamp: access_stamp(bucket, key.as_ref()),
            caller: caller.map(String::from),
        })
    }

    /// Decides one request on bucket `meta` (`None`: no such bucket, which passes so that
    /// the operation answers NoSuchBucket).
    async fn check_one(
        &self,
        caller: Option<&str>,
        op: &str,
        meta: Option<&BucketMeta>,
        key: Option<&str>,
        keys: BTreeMap<String, Vec<String>>,
    ) -> S3Result<()> {
        let Some(meta) = meta else {
            return Ok(());
        };
        let policy = match &meta.policy {
            Some(text) => Some(self.policies.parsed(&meta.name, text).map_err(|e| {
                s3_err(ApiError::Internal(format!(
                    "stored policy of {}: {e}",
                    meta.name
                )))
            })?),
            None => None,
        };
        let r = Request {
            caller,
            op,
            bucket: &meta.name,
            key,
            keys,
        };
        decide(&self.c, meta, policy.as_deref(), &r).await
    }

    /// Decides an operation on `bucket` (and object `key`), on the bucket (and a PUT's key)
    /// as this coordinator `applied` them or as they are now; an allowed PutObject gets its
    /// [`AccessStamp`], every allowed request its [`CheckedBucket`].
    async fn decide(
        &self,
        cx: &mut S3AccessContext<'_>,
        caller: Option<&str>,
        op: &str,
        bucket: &str,
        key: Option<String>,
        applied: bool,
    ) -> S3Result<()> {
        let meta = match applied {
            true => self.bucket_for_put(bucket).await?,
            false => self.bucket(bucket).await?,
        };
        // Condition keys are gathered only for a bucket with a policy to read them.
        let mut keys = match &meta {
            Some(m) if m.policy.is_some() => condition_keys(cx),
            _ => BTreeMap::new(),
        };
        // `s3:ExistingObjectTag/<key>`: the object's tags, read only for a policy
        // that names them.
        if let (Some(m), Some(k), Some(text)) =
            (&meta, &key, meta.as_ref().and_then(|m| m.policy.as_deref()))
        {
            let names_tags = self
                .policies
                .parsed_with_tags(&m.name, text)
                .is_ok_and(|(_, tags)| tags);
            if names_tags {
                let o = self.c.meta.object(bucket.to_string(), k.clone()).await;
                for (tk, tv) in o.map_err(s3_err)?.map(|o| o.tags).unwrap_or_default() {
                    let name = format!("s3:existingobjecttag/{}", tk.to_ascii_lowercase());
                    keys.insert(name, vec![tv]);
                }
            }
        }
        let expected = cx
            .headers()
            .get("x-amz-expected-bucket-owner")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        self.check_one(caller, op, meta.as_ref(), key.as_deref(), keys)
            .await?;
        if let (Some(m), Some(e)) = (&meta, &expected) {
            if m.owner.as_deref() != Some(e.as_str()) {
                return Err(s3_err(ApiError::AccessDenied(format!(
                    "bucket {bucket} is not owned by {e}"
                ))));
            }
        }
        if let Some(m) = meta {
            if op == "PutObject" {
                let stamp = self.stamp(&m, caller, applied).await?;
                cx.extensions_mut().insert(stamp);
            }
            cx.extensions_mut().insert(CheckedBucket(m));
        }
        Ok(())
    }
}

/// The bucket an allowed request was decided on, in the request's extensions, so that an
/// operation that needs the bucket's record (its owner, its ACL settings) does not read it
/// again.
#[derive(Clone, Debug)]
pub struct CheckedBucket(pub BucketMeta);

/// What an allowed PutObject was decided on (the bucket and the caller's key as this
/// coordinator applied them), in the request's extensions: its commit refuses the write if
/// either changed since ([`crate::meta::access_stamp`]). A PUT through any member of a
/// replicated group so needs no read-index round for its access check.
#[derive(Clone, Debug)]
pub struct AccessStamp {
    stamp: u64,
    caller: Option<String>,
}

impl AccessStamp {
    /// `cond` with the stamp.
    pub fn on(&self, cond: Precondition) -> Precondition {
        Precondition::Checked {
            stamp: self.stamp,
            caller: self.caller.clone(),
            cond: Box::new(cond),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_string();
        let op = op.as_str();
        if let Some(info) = cx
            .extensions_mut()
            .get::<Arc<super::observe::RequestInfo>>()
        {
            info.set_op(op);
        }
        let caller = cx.credentials().map(|c| c.access_key.clone());
        let caller = caller.as_deref();
        let put = op == "PutObject";
        // A single coordinator's applied key is the latest: only a group member checks again.
        if let (Some(id), false, true) = (caller, put, self.c.config.cluster.is_some()) {
            self.key_exists(id).await?;
        }
        let path = match cx.s3_path() {
            S3Path::Root => None,
            S3Path::Bucket { bucket } => Some((bucket.to_string(), None)),
            S3Path::Object { bucket, key } => Some((bucket.to_string(), Some(key.to_string()))),
        };
        match path {
            // ListBuckets shows a key its own buckets, an unsigned request none.
            None => Ok(()),
            Some((_, None)) if op == "CreateBucket" => match caller {
                Some(_) => Ok(()),
                None if self.c.config.anonymous => Ok(()),
                None => Err(s3_err(ApiError::AccessDenied(
                    "unsigned requests cannot create buckets; sign with an access key".into(),
                ))),
            },
            Some((bucket, key)) if put => {
                // Decided on this coordinator's applied state, the commit checking the stamp;
                // a refusal is decided again on the latest state (the applied one may lag a
                // change that allows the PUT).
                match self
                    .decide(cx, caller, op, &bucket, key.clone(), true)
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(_) => self.decide(cx, caller, op, &bucket, key, false).await,
                }
            }
            Some((bucket, key)) => self.decide(cx, caller, op, &bucket, key, false).await,
        }
    }
}
