//! Lifecycle rules as S3 clients set them: Put/Get/DeleteBucketLifecycleConfiguration
//! (checked against S3's rules before anything is stored) and `x-amz-expiration` on reads
//! and writes of objects a rule will expire. The leader's `lifecycle` worker applies them
//! (`maintenance/lifecycle.rs`).

use super::helpers::{bucket_name, ok, timestamp, R};
use super::tagging::{checked_tags, MAX_OBJECT_TAGS};
use super::Tessera;
use crate::edge::access::CheckedBucket;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::lifecycle::current_expiry;
use crate::meta::{BucketSetting, LifecycleFilter, LifecycleRule, ObjectMeta};
use s3s::dto::*;
use s3s::{S3Request, S3Result};
use std::collections::HashSet;

/// Most rules a configuration may hold.
const MAX_RULES: usize = 1000;
/// Longest rule id.
const MAX_ID: usize = 255;

fn invalid(msg: impl Into<String>) -> s3s::S3Error {
    s3_err(ApiError::InvalidArgument(msg.into()))
}

fn malformed(msg: impl Into<String>) -> s3s::S3Error {
    s3_err(ApiError::MalformedXml(msg.into()))
}

/// A count of days a rule gives: at least one.
fn days(d: Option<i32>, what: &str) -> S3Result<u32> {
    match d {
        Some(d) if d > 0 => Ok(d as u32),
        Some(d) => Err(invalid(format!(
            "{what} must be a positive number of days, not {d}"
        ))),
        None => Err(malformed(format!("{what} is missing"))),
    }
}

fn size(s: Option<i64>, what: &str) -> S3Result<Option<u64>> {
    s.map(|s| u64::try_from(s).map_err(|_| invalid(format!("{what} must not be negative"))))
        .transpose()
}

fn tag_pair(t: Tag) -> S3Result<(String, String)> {
    let pair = (t.key.unwrap_or_default(), t.value.unwrap_or_default());
    checked_tags([pair.clone()], 1).map_err(s3_err)?;
    Ok(pair)
}

fn filter_of(f: LifecycleRuleFilter) -> S3Result<LifecycleFilter> {
    let and = match f.and {
        Some(a) => {
            let tags: Vec<(String, String)> = a
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(tag_pair)
                .collect::<S3Result<_>>()?;
            checked_tags(tags.clone(), MAX_OBJECT_TAGS).map_err(s3_err)?;
            Some(Box::new(LifecycleFilter {
                prefix: a.prefix,
                size_greater_than: size(a.object_size_greater_than, "ObjectSizeGreaterThan")?,
                size_less_than: size(a.object_size_less_than, "ObjectSizeLessThan")?,
                tags,
                ..Default::default()
            }))
        }
        None => None,
    };
    let out = LifecycleFilter {
        prefix: f.prefix,
        tag: f.tag.map(tag_pair).transpose()?,
        size_greater_than: size(f.object_size_greater_than, "ObjectSizeGreaterThan")?,
        size_less_than: size(f.object_size_less_than, "ObjectSizeLessThan")?,
        and,
        tags: Vec::new(),
    };
    for f in [Some(&out), out.and.as_deref()].into_iter().flatten() {
        if let (Some(gt), Some(lt)) = (f.size_greater_than, f.size_less_than) {
            if gt >= lt {
                return Err(invalid(
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
                ));
            }
        }
    }
    Ok(out)
}

/// One rule as given, checked (see [`checked_rules`]).
fn checked_rule(r: s3s::dto::LifecycleRule, n: usize) -> S3Result<LifecycleRule> {
    let enabled = match r.status.as_str() {
        "Enabled" => true,
        "Disabled" => false,
        other => {
            return Err(malformed(format!(
                "Status must be Enabled or Disabled, not {other:?}"
            )))
        }
    };
    let id = match r.id {
        Some(id) if id.chars().count() > MAX_ID => {
            return Err(invalid(format!(
                "a rule id has at most {MAX_ID} characters"
            )))
        }
        Some(id) => id,
        None => format!(
            "rule-{n}-{}",
            &blake3::hash(format!("{:?}", r.filter).as_bytes()).to_hex()[..12]
        ),
    };
    if r.transitions.is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .is_some_and(|t| !t.is_empty())
    {
        return Err(s3_err(ApiError::NotImplemented(
            "lifecycle transitions between storage classes (Tessera has one storage class)".into(),
        )));
    }
    if r.prefix.is_some() && r.filter.is_some() {
        return Err(malformed("a rule has either Prefix or Filter, not both"));
    }
    let filter = r.filter.map(filter_of).transpose()?;
    let needs_object = filter.as_ref().is_some_and(|f| f.needs_object());
    let mut rule = LifecycleRule {
        id,
        enabled,
        prefix: r.prefix,
        filter,
        ..Default::default()
    };
    if let Some(e) = r.expiration {
        match (e.days, e.date, e.expired_object_delete_marker) {
            (Some(d), None, None) => rule.expiration_days = Some(days(Some(d), "Expiration Days")?),
            (None, Some(date), None) => {
                let t: time::OffsetDateTime = date.into();
                let ms = t.unix_timestamp_nanos() / 1_000_000;
                if ms < 0 || ms % (crate::meta::lifecycle::DAY_MS as i128) != 0 {
                    return Err(invalid("an expiration Date must be a midnight UTC"));
                }
                rule.expiration_date_ms = Some(ms as u64);
            }
            (None, None, Some(m)) => {
                if needs_object {
                    return Err(invalid(
                        "ExpiredObjectDeleteMarker cannot be used with a tag or size filter",
                    ));
                }
                rule.expired_object_delete_marker = Some(m);
            }
            _ => {
                return Err(malformed(
                    "Expiration takes exactly one of Days, Date and ExpiredObjectDeleteMarker",
                ))
            }
        }
    }
    if let Some(n) = r.noncurrent_version_expiration {
        rule.noncurrent_days = Some(days(n.noncurrent_days, "NoncurrentDays")?);
        if let Some(k) = n.newer_noncurrent_versions {
            if !(1..=100).contains(&k) {
                return Err(invalid("NewerNoncurrentVersions must be between 1 and 100"));
            }
            rule.newer_noncurrent_versions = Some(k as u32);
        }
    }
    if let Some(a) = r.abort_incomplete_multipart_upload {
        if needs_object {
            return Err(invalid(
                "AbortIncompleteMultipartUpload cannot be used with a tag or size filter",
            ));
        }
        rule.abort_upload_days = Some(days(a.days_after_initiation, "DaysAfterInitiation")?);
    }
    if rule.expiration_days.is_none()
        && rule.expiration_date_ms.is_none()
        && rule.expired_object_delete_marker.is_none()
        && rule.noncurrent_days.is_none()
        && rule.abort_upload_days.is_none()
    {
        return Err(s3_err(ApiError::InvalidRequest(
            "a lifecycle rule needs at least one action".into(),
        )));
    }
    Ok(rule)
}

/// A configuration's rules, checked as S3 checks them: 1 to 1000 rules with distinct ids of
/// at most 255 characters, `Status` Enabled or Disabled, `Prefix` or `Filter` (not both),
/// positive day counts, dates at midnight UTC, at least one action per rule; transitions
/// are refused (NotImplemented) and nothing is stored.
pub fn checked_rules(rules: Vec<s3s::dto::LifecycleRule>) -> S3Result<Vec<LifecycleRule>> {
    if rules.is_empty() {
        return Err(malformed(
            "a lifecycle configuration needs at least one rule",
        ));
    }
    if rules.len() > MAX_RULES {
        return Err(invalid(format!("at most {MAX_RULES} lifecycle rules")));
    }
    let out: Vec<LifecycleRule> = rules
        .into_iter()
        .enumerate()
        .map(|(n, r)| checked_rule(r, n))
        .collect::<S3Result<_>>()?;
    let mut ids = HashSet::new();
    if let Some(dup) = out.iter().find(|r| !ids.insert(r.id.as_str())) {
        return Err(invalid(format!("the rule id {:?} is used twice", dup.id)));
    }
    Ok(out)
}

fn tag_of((key, value): &(String, String)) -> Tag {
    Tag {
        key: Some(key.clone()),
        value: Some(value.clone()),
    }
}

/// A stored rule as S3 answers it.
fn rule_out(r: &LifecycleRule) -> s3s::dto::LifecycleRule {
    let filter = r.filter.as_ref().map(|f| LifecycleRuleFilter {
        prefix: f.prefix.clone(),
        tag: f.tag.as_ref().map(tag_of),
        object_size_greater_than: f.size_greater_than.map(|s| s as i64),
        object_size_less_than: f.size_less_than.map(|s| s as i64),
        and: f.and.as_ref().map(|a| LifecycleRuleAndOperator {
            prefix: a.prefix.clone(),
            tags: (!a.tags.is_empty()).then(|| a.tags.iter().map(tag_of).collect()),
            object_size_greater_than: a.size_greater_than.map(|s| s as i64),
            object_size_less_than: a.size_less_than.map(|s| s as i64),
        }),
    });
    let expiration = (r.expiration_days.is_some()
        || r.expiration_date_ms.is_some()
        || r.expired_object_delete_marker.is_some())
    .then(|| LifecycleExpiration {
        days: r.expiration_days.map(|d| d as i32),
        date: r.expiration_date_ms.map(timestamp),
        expired_object_delete_marker: r.expired_object_delete_marker,
    });
    s3s::dto::LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from(if r.enabled { "Enabled" } else { "Disabled" }.to_string()),
        prefix: r.prefix.clone(),
        filter,
        expiration,
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            noncurrent_days: Some(d as i32),
            newer_noncurrent_versions: r.newer_noncurrent_versions.map(|n| n as i32),
        }),
        abort_incomplete_multipart_upload: r.abort_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(d as i32),
            }
        }),
        noncurrent_version_transitions: None,
        transitions: None,
    }
}

pub(super) async fn put_bucket_lifecycle_configuration(
    t: &Tessera,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> R<PutBucketLifecycleConfigurationOutput> {
    let i = req.input;
    let name = bucket_name(&i.bucket)?.to_string();
    let Some(cfg) = i.lifecycle_configuration else {
        return Err(malformed("the request has no lifecycle configuration"));
    };
    let rules = checked_rules(cfg.rules)?;
    t.c.meta
        .set_bucket_setting(name, BucketSetting::Lifecycle(Some(rules)))
        .await
        .map_err(s3_err)?;
    ok(PutBucketLifecycleConfigurationOutput::default())
}

pub(super) async fn get_bucket_lifecycle_configuration(
    t: &Tessera,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> R<GetBucketLifecycleConfigurationOutput> {
    let b = t.existing_bucket(&req.input.bucket).await?;
    let Some(rules) = b.lifecycle.filter(|r| !r.is_empty()) else {
        return Err(s3_err(ApiError::NoSuchConfiguration(
            "NoSuchLifecycleConfiguration",
            b.name,
        )));
    };
    ok(GetBucketLifecycleConfigurationOutput {
        rules: Some(rules.iter().map(rule_out).collect()),
        ..Default::default()
    })
}

pub(super) async fn delete_bucket_lifecycle(
    t: &Tessera,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> R<DeleteBucketLifecycleOutput> {
    let name = bucket_name(&req.input.bucket)?.to_string();
    t.c.meta
        .set_bucket_setting(name, BucketSetting::Lifecycle(None))
        .await
        .map_err(s3_err)?;
    ok(DeleteBucketLifecycleOutput {})
}

/// `x-amz-expiration` for the current version `o`, if a rule of its bucket (as the access
/// check read it) will expire it: `expiry-date="<HTTP date>", rule-id="<id>"`.
pub(super) fn expiration(t: &Tessera, ext: &http::Extensions, o: &ObjectMeta) -> Option<String> {
    let CheckedBucket(b) = ext.get::<CheckedBucket>()?;
    let rules = b.lifecycle.as_deref().filter(|_| b.name == o.bucket)?;
    let day = t.c.config.lifecycle_day.as_millis() as u64;
    let (at, id) = current_expiry(rules, o, day)?;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at);
    Some(format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        httpdate::fmt_http_date(when),
        id.replace('"', "%22")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, status: &str) -> s3s::dto::LifecycleRule {
        s3s::dto::LifecycleRule {
            id: Some(id.into()),
            status: ExpirationStatus::from(status.to_string()),
            prefix: Some("logs/".into()),
            expiration: Some(LifecycleExpiration {
                days: Some(3),
                ..Default::default()
            }),
            abort_incomplete_multipart_upload: None,
            filter: None,
            noncurrent_version_expiration: None,
            noncurrent_version_transitions: None,
            transitions: None,
        }
    }

    fn code(r: S3Result<Vec<LifecycleRule>>) -> String {
        r.unwrap_err().code().as_str().to_string()
    }

    #[test]
    fn rules_are_checked_as_s3_checks_them() {
        let ok = checked_rules(vec![rule("a", "Enabled"), rule("b", "Disabled")]).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok[0].enabled && !ok[1].enabled);
        assert_eq!(ok[0].expiration_days, Some(3));
        assert_eq!(code(checked_rules(vec![])), "MalformedXML");
        assert_eq!(
            code(checked_rules(vec![rule("a", "enabled")])),
            "MalformedXML"
        );
        assert_eq!(
            code(checked_rules(vec![
                rule("a", "Enabled"),
                rule("a", "Enabled")
            ])),
            "InvalidArgument"
        );
        assert_eq!(
            code(checked_rules(vec![rule(&"x".repeat(256), "Enabled")])),
            "InvalidArgument"
        );
        let mut zero = rule("z", "Enabled");
        zero.expiration.as_mut().unwrap().days = Some(0);
        assert_eq!(code(checked_rules(vec![zero])), "InvalidArgument");
        let mut none = rule("n", "Enabled");
        none.expiration = None;
        assert_eq!(code(checked_rules(vec![none])), "InvalidRequest");
        let mut moved = rule("t", "Enabled");
        moved.transitions = Some(vec![Transition::default()]);
        assert_eq!(code(checked_rules(vec![moved])), "NotImplemented");
        let mut both = rule("p", "Enabled");
        both.filter = Some(LifecycleRuleFilter::default());
        assert_eq!(code(checked_rules(vec![both])), "MalformedXML");
        let mut tagged_marker = rule("m", "Enabled");
        tagged_marker.prefix = None;
        tagged_marker.filter = Some(LifecycleRuleFilter {
            tag: Some(Tag {
                key: Some("k".into()),
                value: Some("v".into()),
            }),
            ..Default::default()
        });
        tagged_marker.expiration = Some(LifecycleExpiration {
            expired_object_delete_marker: Some(true),
            ..Default::default()
        });
        assert_eq!(code(checked_rules(vec![tagged_marker])), "InvalidArgument");
    }

    #[test]
    fn a_stored_rule_reads_back_as_it_was_given() {
        let given = rule("a", "Enabled");
        let stored = checked_rules(vec![given.clone()]).unwrap();
        let back = rule_out(&stored[0]);
        assert_eq!(back.id, given.id);
        assert_eq!(back.prefix, given.prefix);
        assert_eq!(back.expiration.unwrap().days, Some(3));
        assert!(back.filter.is_none());
    }
}
