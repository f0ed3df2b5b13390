//! Object lock as S3 clients use it: Put/GetObjectLockConfiguration (default retention),
//! Put/GetObjectRetention, Put/GetObjectLegalHold, the `x-amz-object-lock-*` headers of
//! writes and reads, and who may bypass GOVERNANCE retention. The rules themselves (what may
//! be removed or shortened, when) are the metadata's (`meta/lock.rs`), so every path obeys
//! them.

use super::helpers::{bucket_name, object_key, ok, timestamp, R};
use super::Tessera;
use crate::edge::access::{policy, CheckedBucket};
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{now_ms, BucketMeta, ObjectLock, ObjectMeta, Retention};
use s3s::dto::*;
use s3s::{S3Request, S3Result};

const MODES: [&str; 2] = ["GOVERNANCE", "COMPLIANCE"];

fn ms_of(t: &Timestamp) -> S3Result<u64> {
    let t: time::OffsetDateTime = t.clone().into();
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| {
        s3_err(ApiError::InvalidArgument(
            "a retain-until date before 1970".into(),
        ))
    })
}

fn no_lock(bucket: &str) -> s3s::S3Error {
    s3_err(ApiError::InvalidRequest(format!(
        "bucket {bucket} is missing an object lock configuration"
    )))
}

/// A retention a request gives (mode and date), checked: a known mode, a date in the
/// future.
fn checked_retention(mode: Option<&str>, until: Option<&Timestamp>) -> S3Result<Retention> {
    let (Some(mode), Some(until)) = (mode, until) else {
        return Err(s3_err(ApiError::InvalidArgument(
            "object lock needs both a mode and a retain-until date".into(),
        )));
    };
    if !MODES.contains(&mode) {
        return Err(s3_err(ApiError::MalformedXml(format!(
            "unknown retention mode {mode:?}"
        ))));
    }
    let until_ms = ms_of(until)?;
    if until_ms <= now_ms() {
        return Err(s3_err(ApiError::InvalidArgument(
            "the retain-until date must be in the future".into(),
        )));
    }
    Ok(Retention {
        mode: mode.to_string(),
        until_ms,
    })
}

/// The lock a write asks for with its `x-amz-object-lock-*` headers: none without them;
/// with them, the bucket must have object lock and the body a Content-MD5 or checksum, as
/// S3 requires.
pub(super) fn requested_lock(
    bucket: Option<&BucketMeta>,
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
    has_digest: bool,
) -> S3Result<(Option<Retention>, bool)> {
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok((None, false));
    }
    let Some(b) = bucket else {
        return Err(s3_err(ApiError::InvalidRequest(
            "object lock headers on a bucket that does not exist".into(),
        )));
    };
    if b.object_lock.is_none() {
        return Err(no_lock(&b.name));
    }
    if !has_digest {
        return Err(s3_err(ApiError::InvalidRequest(
            "Content-MD5 or an x-amz-checksum-* header is required with object lock headers".into(),
        )));
    }
    let retention = match (mode, until) {
        (None, None) => None,
        (m, u) => Some(checked_retention(m.map(|m| m.as_str()), u)?),
    };
    let hold = match hold.map(|h| h.as_str()) {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(other) => {
            return Err(s3_err(ApiError::InvalidArgument(format!(
                "legal hold status {other:?} is neither ON nor OFF"
            ))))
        }
    };
    Ok((retention, hold))
}

/// The lock fields of a GET or HEAD answer.
pub(super) fn lock_fields(
    o: &ObjectMeta,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        o.retention
            .as_ref()
            .map(|r| ObjectLockMode::from(r.mode.clone())),
        o.retention.as_ref().map(|r| timestamp(r.until_ms)),
        o.legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    )
}

impl Tessera {
    /// The lock a write to `bucket` gets: what its `x-amz-object-lock-*` headers ask for (see
    /// [`requested_lock`]), else the bucket's default retention (from the bucket the access
    /// check read, in `ext`; the bucket is read again only when there are lock headers). It
    /// goes into the shards' headers, so a metadata rebuild finds it.
    pub(super) async fn write_lock(
        &self,
        ext: &http::Extensions,
        bucket: &str,
        mode: Option<&ObjectLockMode>,
        until: Option<&Timestamp>,
        hold: Option<&ObjectLockLegalHoldStatus>,
        has_digest: bool,
    ) -> S3Result<(Option<Retention>, bool)> {
        let default = |b: &BucketMeta| {
            b.object_lock
                .as_ref()
                .and_then(|l| l.default_retention(now_ms()))
        };
        if mode.is_none() && until.is_none() && hold.is_none() {
            let checked = ext.get::<CheckedBucket>().filter(|c| c.0.name == bucket);
            return Ok((checked.and_then(|c| default(&c.0)), false));
        }
        let b = self.existing_bucket(bucket).await?;
        let (retention, hold) = requested_lock(Some(&b), mode, until, hold, has_digest)?;
        Ok((retention.or_else(|| default(&b)), hold))
    }

    /// The bucket and key a retention or legal-hold request names, checked, in a bucket that
    /// must have object lock (InvalidRequest otherwise).
    async fn locked_names(&self, bucket: &str, key: &str) -> S3Result<(String, String)> {
        let k = object_key(key)?.to_string();
        let b = self.existing_bucket(bucket).await?;
        if b.object_lock.is_none() {
            return Err(no_lock(&b.name));
        }
        Ok((b.name, k))
    }

    /// The version a retention or legal-hold read names (see [`Tessera::locked_names`]).
    async fn locked_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<ObjectMeta> {
        let (b, k) = self.locked_names(bucket, key).await?;
        self.object_at(&b, &k, version_id).await
    }

    /// Whether `caller` may bypass GOVERNANCE retention of `key` in `bucket` (with
    /// `x-amz-bypass-governance-retention: true`): the bucket policy decides first (an
    /// applying Deny of `s3:BypassGovernanceRetention` refuses everyone, an Allow allows),
    /// then the bucket's owner and keys the store makes owners of it may.
    pub(super) async fn may_bypass(
        &self,
        caller: Option<&str>,
        bucket: &str,
        key: &str,
    ) -> S3Result<bool> {
        let b = self.existing_bucket(bucket).await?;
        let decision = match &b.policy {
            Some(text) => {
                let p = policy::parse(text, bucket)
                    .map_err(|e| s3_err(ApiError::Internal(format!("stored policy: {e}"))))?;
                let f = policy::Facts {
                    caller: caller.map(String::from),
                    action: "s3:BypassGovernanceRetention".into(),
                    resource: format!("arn:aws:s3:::{bucket}/{key}"),
                    keys: Default::default(),
                };
                policy::evaluate(&p, &f)
            }
            None => policy::Decision::Silent,
        };
        Ok(match (decision, caller) {
            (policy::Decision::Deny, _) => false,
            (policy::Decision::Allow, _) => true,
            (policy::Decision::Silent, Some(k)) => {
                b.owner.as_deref() == Some(k) || b.grant_of(k).owner
            }
            (policy::Decision::Silent, None) => false,
        })
    }
}

pub(super) async fn put_object_lock_configuration(
    t: &Tessera,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> R<PutObjectLockConfigurationOutput> {
    let i = req.input;
    let name = bucket_name(&i.bucket)?.to_string();
    let Some(c) = i.object_lock_configuration else {
        return Err(s3_err(ApiError::MalformedXml(
            "an object lock configuration is needed".into(),
        )));
    };
    if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some("Enabled") {
        return Err(s3_err(ApiError::MalformedXml(
            "ObjectLockEnabled must be Enabled".into(),
        )));
    }
    let mut lock = ObjectLock::default();
    if let Some(d) = c.rule.and_then(|r| r.default_retention) {
        let mode = d.mode.map(|m| m.as_str().to_string());
        if !mode.as_deref().is_some_and(|m| MODES.contains(&m)) {
            return Err(s3_err(ApiError::MalformedXml(format!(
                "a default retention needs Mode GOVERNANCE or COMPLIANCE, not {mode:?}"
            ))));
        }
        match (d.days, d.years) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(s3_err(ApiError::MalformedXml(
                    "a default retention has Days or Years, not both or neither".into(),
                )))
            }
            (Some(n), None) | (None, Some(n)) if n <= 0 => {
                return Err(s3_err(ApiError::InvalidRetentionPeriod(format!(
                    "a default retention period must be positive, not {n}"
                ))))
            }
            (days, years) => {
                lock.default_days = days.map(|d| d as u32);
                lock.default_years = years.map(|y| y as u32);
            }
        }
        lock.default_mode = mode;
    }
    t.c.meta.set_object_lock(name, lock).await.map_err(s3_err)?;
    ok(PutObjectLockConfigurationOutput::default())
}

pub(super) async fn get_object_lock_configuration(
    t: &Tessera,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> R<GetObjectLockConfigurationOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let Some(lock) = b.object_lock else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "ObjectLockConfigurationNotFoundError",
            b.name,
        )));
    };
    let rule = lock.default_mode.map(|mode| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            days: lock.default_days.map(|d| d as i32),
            mode: Some(ObjectLockRetentionMode::from(mode)),
            years: lock.default_years.map(|y| y as i32),
        }),
    });
    ok(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    })
}

pub(super) async fn put_object_retention(
    t: &Tessera,
    req: S3Request<PutObjectRetentionInput>,
) -> R<PutObjectRetentionOutput> {
    let caller = req.credentials.as_ref().map(|c| c.access_key.clone());
    let i = req.input;
    let (b, k) = t.locked_names(&i.bucket, &i.key).await?;
    let retention = match i.retention {
        None => None,
        Some(r) if r.mode.is_none() && r.retain_until_date.is_none() => None,
        Some(r) => Some(checked_retention(
            r.mode.as_ref().map(|m| m.as_str()),
            r.retain_until_date.as_ref(),
        )?),
    };
    let bypass = i.bypass_governance_retention == Some(true)
        && t.may_bypass(caller.as_deref(), &b, &k).await?;
    t.c.meta
        .set_retention(b, k, i.version_id, retention, bypass)
        .await
        .map_err(s3_err)?;
    ok(PutObjectRetentionOutput::default())
}

pub(super) async fn get_object_retention(
    t: &Tessera,
    req: S3Request<GetObjectRetentionInput>,
) -> R<GetObjectRetentionOutput> {
    let i = req.input;
    let o = t
        .locked_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    let Some(r) = o.retention else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchObjectLockConfiguration",
            format!("{}/{} version {}", o.bucket, o.key, o.version_id()),
        )));
    };
    ok(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(r.mode)),
            retain_until_date: Some(timestamp(r.until_ms)),
        }),
    })
}

pub(super) async fn put_object_legal_hold(
    t: &Tessera,
    req: S3Request<PutObjectLegalHoldInput>,
) -> R<PutObjectLegalHoldOutput> {
    let i = req.input;
    let (b, k) = t.locked_names(&i.bucket, &i.key).await?;
    let on = match i
        .legal_hold
        .as_ref()
        .and_then(|h| h.status.as_ref())
        .map(|s| s.as_str())
    {
        Some("ON") => true,
        Some("OFF") => false,
        other => {
            return Err(s3_err(ApiError::MalformedXml(format!(
                "a legal hold Status is ON or OFF, not {other:?}"
            ))))
        }
    };
    t.c.meta
        .set_legal_hold(b, k, i.version_id, on)
        .await
        .map_err(s3_err)?;
    ok(PutObjectLegalHoldOutput::default())
}

pub(super) async fn get_object_legal_hold(
    t: &Tessera,
    req: S3Request<GetObjectLegalHoldInput>,
) -> R<GetObjectLegalHoldOutput> {
    let i = req.input;
    let o = t
        .locked_version(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    let status = if o.legal_hold {
        ObjectLockLegalHoldStatus::ON
    } else {
        ObjectLockLegalHoldStatus::OFF
    };
    ok(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(status)),
        }),
    })
}
