//! Who may do what on the client API.
//!
//! Signatures (SigV4 headers, presigned URLs, aws-chunked bodies) are verified by `s3s` with
//! the secret [`KeyAuth`] looks up; an unknown key is `InvalidAccessKeyId`, a wrong
//! signature `SignatureDoesNotMatch`, a skewed clock `RequestTimeTooSkewed`. [`Access`] then
//! decides per operation: any key may list its buckets and create buckets (it owns what it
//! creates); inside a bucket reads need `read`, writes `write`, everything else `owner`
//! (see [`crate::meta::Grant`]). Unsigned requests are refused (AccessDenied) unless the
//! coordinator runs with `--anonymous`, where they get full access.

use super::error::s3_err;
use crate::error::ApiError;
use crate::state::Coordinator;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{S3ErrorCode, S3Result};
use std::sync::Arc;

/// Looks up secret keys in the metadata.
pub struct KeyAuth {
    c: Arc<Coordinator>,
}

impl KeyAuth {
    /// Key lookup for the coordinator `c`.
    pub fn new(c: Arc<Coordinator>) -> Self {
        KeyAuth { c }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let id = access_key.to_string();
        match self.c.meta.key(id).await.map_err(s3_err)? {
            Some(k) => Ok(SecretKey::from(k.secret)),
            None => Err(s3s::S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "the access key id you provided does not exist",
            )),
        }
    }
}

/// What an operation needs in the bucket it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read or list objects.
    Read,
    /// Write or delete objects.
    Write,
    /// Anything else about the bucket (deleting it, its configuration).
    Owner,
}

/// The permission an S3 operation needs in its bucket.
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
        | "ListMultipartUploads" => Need::Read,
        "PutObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload" => Need::Write,
        _ => Need::Owner,
    }
}

/// Fails unless `caller` (`None`: unsigned) may do what `need` says in `bucket`. A bucket
/// that does not exist passes, so the operation answers NoSuchBucket.
pub async fn require(
    c: &Arc<Coordinator>,
    caller: Option<&str>,
    bucket: &str,
    need: Need,
) -> S3Result<()> {
    let Some(key) = caller else {
        return anonymous(c);
    };
    let Some(meta) = c.meta.bucket(bucket.to_string()).await.map_err(s3_err)? else {
        return Ok(());
    };
    let g = meta.grant_of(key);
    let allowed = match need {
        Need::Read => g.read,
        Need::Write => g.write,
        Need::Owner => g.owner,
    };
    if allowed {
        Ok(())
    } else {
        Err(s3_err(ApiError::AccessDenied(format!(
            "key {key} may not {} in bucket {bucket}",
            match need {
                Need::Read => "read",
                Need::Write => "write",
                Need::Owner => "administer",
            }
        ))))
    }
}

fn anonymous(c: &Coordinator) -> S3Result<()> {
    if c.config.anonymous {
        Ok(())
    } else {
        Err(s3_err(ApiError::AccessDenied(
            "unsigned requests are not allowed; sign with an access key".into(),
        )))
    }
}

/// The per-operation access check.
pub struct Access {
    c: Arc<Coordinator>,
}

impl Access {
    /// Access control for the coordinator `c`.
    pub fn new(c: Arc<Coordinator>) -> Self {
        Access { c }
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let info = cx
            .extensions_mut()
            .get::<Arc<super::observe::RequestInfo>>()
            .cloned();
        if let Some(info) = info {
            info.set_op(cx.s3_op().name());
        }
        let caller = cx.credentials().map(|c| c.access_key.clone());
        match cx.s3_path() {
            // ListBuckets shows a key only its own buckets.
            S3Path::Root => match caller {
                Some(_) => Ok(()),
                None => anonymous(&self.c),
            },
            S3Path::Bucket { bucket } if cx.s3_op().name() == "CreateBucket" => {
                let _ = bucket;
                match caller {
                    Some(_) => Ok(()),
                    None => anonymous(&self.c),
                }
            }
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => {
                let need = need_of(cx.s3_op().name());
                require(&self.c, caller.as_deref(), bucket, need).await
            }
        }
    }
}
