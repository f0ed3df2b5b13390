//! A bucket's access configuration: Get/Put/DeleteBucketPolicy, GetBucketPolicyStatus,
//! Get/Put/DeletePublicAccessBlock, Get/Put/DeleteBucketCors. Every document is checked
//! before anything is stored; a bad one changes nothing.

use super::helpers::{ok, R};
use super::Tessera;
use crate::edge::access::policy;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{BucketSetting, CorsRule, PublicAccessBlock};
use s3s::dto::*;
use s3s::S3Request;

/// Methods a CORS rule may allow.
const CORS_METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

pub(super) async fn get_policy(
    t: &Tessera,
    req: S3Request<GetBucketPolicyInput>,
) -> R<GetBucketPolicyOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    match b.policy {
        Some(p) => ok(GetBucketPolicyOutput { policy: Some(p) }),
        None => Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchBucketPolicy",
            b.name,
        ))),
    }
}

pub(super) async fn put_policy(
    t: &Tessera,
    req: S3Request<PutBucketPolicyInput>,
) -> R<PutBucketPolicyOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let text = req.input.policy;
    let parsed = policy::parse(&text, &b.name).map_err(|e| s3_err(ApiError::MalformedPolicy(e)))?;
    if b.public_access().block_public_policy && policy::is_public(&parsed) {
        return Err(s3_err(ApiError::AccessDenied(format!(
            "the public access block of bucket {} refuses public policies",
            b.name
        ))));
    }
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Policy(Some(text)))
        .await
        .map_err(s3_err)?;
    ok(PutBucketPolicyOutput {})
}

pub(super) async fn delete_policy(
    t: &Tessera,
    req: S3Request<DeleteBucketPolicyInput>,
) -> R<DeleteBucketPolicyOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Policy(None))
        .await
        .map_err(s3_err)?;
    ok(DeleteBucketPolicyOutput {})
}

pub(super) async fn get_policy_status(
    t: &Tessera,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> R<GetBucketPolicyStatusOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let by_policy = b
        .policy
        .as_deref()
        .and_then(|p| policy::parse(p, &b.name).ok())
        .is_some_and(|p| policy::is_public(&p));
    let pab = b.public_access();
    let by_acl = !b.acls_disabled() && !pab.ignore_public_acls && b.acl().is_public();
    ok(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(by_policy || by_acl),
        }),
    })
}

pub(super) async fn get_public_access_block(
    t: &Tessera,
    req: S3Request<GetPublicAccessBlockInput>,
) -> R<GetPublicAccessBlockOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let Some(p) = b.public_access_block else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchPublicAccessBlockConfiguration",
            b.name,
        )));
    };
    ok(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(p.block_public_acls),
            block_public_policy: Some(p.block_public_policy),
            ignore_public_acls: Some(p.ignore_public_acls),
            restrict_public_buckets: Some(p.restrict_public_buckets),
        }),
    })
}

pub(super) async fn put_public_access_block(
    t: &Tessera,
    req: S3Request<PutPublicAccessBlockInput>,
) -> R<PutPublicAccessBlockOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let c = &req.input.public_access_block_configuration;
    let p = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::PublicAccessBlock(Some(p)))
        .await
        .map_err(s3_err)?;
    ok(PutPublicAccessBlockOutput {})
}

pub(super) async fn delete_public_access_block(
    t: &Tessera,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> R<DeletePublicAccessBlockOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::PublicAccessBlock(None))
        .await
        .map_err(s3_err)?;
    ok(DeletePublicAccessBlockOutput {})
}

pub(super) async fn get_cors(
    t: &Tessera,
    req: S3Request<GetBucketCorsInput>,
) -> R<GetBucketCorsOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let Some(rules) = b.cors else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchCORSConfiguration",
            b.name,
        )));
    };
    let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
    ok(GetBucketCorsOutput {
        cors_rules: Some(
            rules
                .into_iter()
                .map(|r| CORSRule {
                    allowed_headers: non_empty(r.allowed_headers),
                    allowed_methods: r.allowed_methods,
                    allowed_origins: r.allowed_origins,
                    expose_headers: non_empty(r.expose_headers),
                    id: r.id,
                    max_age_seconds: r.max_age_seconds,
                })
                .collect(),
        ),
    })
}

pub(super) async fn put_cors(
    t: &Tessera,
    req: S3Request<PutBucketCorsInput>,
) -> R<PutBucketCorsOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let given = req.input.cors_configuration.cors_rules;
    if given.is_empty() || given.len() > 100 {
        return Err(s3_err(ApiError::MalformedXml(
            "a CORS configuration holds 1 to 100 rules".into(),
        )));
    }
    let mut rules = Vec::with_capacity(given.len());
    for r in given {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(s3_err(ApiError::MalformedXml(
                "every CORS rule needs an AllowedOrigin and an AllowedMethod".into(),
            )));
        }
        if let Some(m) = r
            .allowed_methods
            .iter()
            .find(|m| !CORS_METHODS.contains(&m.as_str()))
        {
            return Err(s3_err(ApiError::InvalidRequest(format!(
                "CORS rules cannot allow the method {m:?}"
            ))));
        }
        let stars = |s: &String| s.matches('*').count() > 1;
        if r.allowed_origins.iter().any(stars) || r.allowed_headers.iter().flatten().any(stars) {
            return Err(s3_err(ApiError::InvalidRequest(
                "a CORS origin or header holds at most one wildcard".into(),
            )));
        }
        rules.push(CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds,
        });
    }
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Cors(Some(rules)))
        .await
        .map_err(s3_err)?;
    ok(PutBucketCorsOutput {})
}

pub(super) async fn delete_cors(
    t: &Tessera,
    req: S3Request<DeleteBucketCorsInput>,
) -> R<DeleteBucketCorsOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    t.c.meta
        .set_bucket_setting(b.name, BucketSetting::Cors(None))
        .await
        .map_err(s3_err)?;
    ok(DeleteBucketCorsOutput {})
}
