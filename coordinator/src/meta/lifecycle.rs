//! S3 lifecycle rules as a bucket keeps them, and what they say about one version: whether a
//! rule's filter matches it and when it expires. The edge checks a configuration when it is
//! set (`edge/s3/lifecycle.rs`); the leader's `lifecycle` worker applies it
//! (`maintenance/lifecycle.rs`); reads and writes tell clients when an object will expire
//! (`x-amz-expiration`), from [`current_expiry`].
//!
//! Time is counted in lifecycle days of `day_ms` (a day, or less with `--lifecycle-day` for
//! tests). With real days an expiry falls on the next midnight UTC, as S3 rounds it; with a
//! shortened day it falls exactly `days` days after the version's time.

use super::records::ObjectMeta;
use super::settings::{LifecycleFilter, LifecycleRule};
use std::collections::BTreeMap;

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 3600 * 1000;

impl LifecycleFilter {
    pub fn matches(&self, key: &str, size: u64, tags: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, String)| tags.get(k) == Some(v);
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.tag.as_ref().is_none_or(has)
            && self.tags.iter().all(has)
            && self.size_greater_than.is_none_or(|s| size > s)
            && self.size_less_than.is_none_or(|s| size < s)
            && self.and.as_ref().is_none_or(|a| a.matches(key, size, tags))
    }

    /// Whether the filter looks at tags or sizes (which uploads and delete markers lack).
    pub fn needs_object(&self) -> bool {
        self.tag.is_some()
            || !self.tags.is_empty()
            || self.size_greater_than.is_some()
            || self.size_less_than.is_some()
            || self.and.as_ref().is_some_and(|a| a.needs_object())
    }
}

impl LifecycleRule {
    /// Whether the rule is enabled and its filter matches a version of `key` with `size` and
    /// `tags`.
    pub fn applies(&self, key: &str, size: u64, tags: &BTreeMap<String, String>) -> bool {
        self.enabled
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self
                .filter
                .as_ref()
                .is_none_or(|f| f.matches(key, size, tags))
    }

    /// Whether the rule is enabled and matches a version (a delete marker has no size or
    /// tags: a filter on them never matches it).
    pub fn applies_to(&self, o: &ObjectMeta) -> bool {
        if o.delete_marker && self.filter.as_ref().is_some_and(|f| f.needs_object()) {
            return false;
        }
        self.applies(&o.key, o.size, &o.tags)
    }
}

/// When something `days` lifecycle days after `since_ms` falls due.
pub fn due(since_ms: u64, days: u32, day_ms: u64) -> u64 {
    let t = since_ms.saturating_add(u64::from(days).saturating_mul(day_ms));
    if day_ms == DAY_MS {
        t.div_ceil(DAY_MS).saturating_mul(DAY_MS)
    } else {
        t
    }
}

/// When the current version `o` expires and by which rule (the earliest of the enabled
/// rules with `Expiration` Days or Date that match it).
pub fn current_expiry<'a>(
    rules: &'a [LifecycleRule],
    o: &ObjectMeta,
    day_ms: u64,
) -> Option<(u64, &'a str)> {
    if o.delete_marker {
        return None;
    }
    rules
        .iter()
        .filter(|r| r.applies_to(o))
        .filter_map(|r| {
            let at = match (r.expiration_days, r.expiration_date_ms) {
                (Some(d), _) => due(o.last_modified_ms, d, day_ms),
                (None, Some(date)) => date,
                (None, None) => return None,
            };
            Some((at, r.id.as_str()))
        })
        .min_by_key(|(at, _)| *at)
}

/// What the rules do to one key's versions at `now_ms`, given newest first (the first is the
/// current version or a delete marker).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyVerdict {
    /// The current version has expired (a delete marker replaces it in a versioned bucket;
    /// it is deleted in an unversioned one).
    pub expire_current: bool,
    /// Noncurrent versions (and delete markers) to delete, by index in the list.
    pub noncurrent: Vec<usize>,
    /// The newest entry is a delete marker nothing would be left behind once the noncurrent
    /// deletions are done, and a rule removes it.
    pub remove_marker: bool,
}

/// Judges one key's versions (newest first) against the rules (see [`KeyVerdict`]).
pub fn judge(
    rules: &[LifecycleRule],
    versions: &[ObjectMeta],
    now_ms: u64,
    day_ms: u64,
) -> KeyVerdict {
    let mut v = KeyVerdict::default();
    let Some(latest) = versions.first() else {
        return v;
    };
    if !latest.delete_marker {
        v.expire_current =
            current_expiry(rules, latest, day_ms).is_some_and(|(at, _)| at <= now_ms);
    }
    for (i, o) in versions.iter().enumerate().skip(1) {
        // Noncurrent since its successor was written; i - 1 noncurrent versions are newer.
        let since = versions[i - 1].last_modified_ms;
        let expired = rules.iter().filter(|r| r.applies_to(o)).any(|r| {
            r.noncurrent_days
                .is_some_and(|d| due(since, d, day_ms) <= now_ms)
                && r.newer_noncurrent_versions.is_none_or(|n| i > n as usize)
        });
        if expired {
            v.noncurrent.push(i);
        }
    }
    if latest.delete_marker && v.noncurrent.len() == versions.len() - 1 {
        v.remove_marker = rules.iter().filter(|r| r.applies_to(latest)).any(|r| {
            r.expired_object_delete_marker == Some(true)
                || r.expiration_days
                    .is_some_and(|d| due(latest.last_modified_ms, d, day_ms) <= now_ms)
        });
    }
    v
}

/// Whether an upload of `key` started at `initiated_ms` is to be aborted at `now_ms`.
pub fn abort_upload(
    rules: &[LifecycleRule],
    key: &str,
    initiated_ms: u64,
    now_ms: u64,
    day_ms: u64,
) -> bool {
    rules.iter().any(|r| {
        r.abort_upload_days
            .is_some_and(|d| due(initiated_ms, d, day_ms) <= now_ms)
            && r.applies(key, 0, &BTreeMap::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(key: &str, at: u64, marker: bool) -> ObjectMeta {
        let mut o = crate::meta::fixtures::object("b", key, 1);
        o.last_modified_ms = at;
        o.delete_marker = marker;
        o
    }

    #[test]
    fn real_days_round_up_to_midnight_and_short_days_do_not() {
        assert_eq!(due(DAY_MS + 5, 1, DAY_MS), 3 * DAY_MS);
        assert_eq!(due(2 * DAY_MS, 1, DAY_MS), 3 * DAY_MS);
        assert_eq!(due(1_000, 3, 2_000), 7_000);
    }

    #[test]
    fn filters_are_a_conjunction_of_everything_given() {
        let mut tags = BTreeMap::new();
        tags.insert("tom".to_string(), "sawyer".to_string());
        let f = LifecycleFilter {
            prefix: Some("days1/".into()),
            tag: Some(("tom".into(), "sawyer".into())),
            and: Some(Box::new(LifecycleFilter {
                tags: vec![("huck".into(), "finn".into())],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(!f.matches("days1/tom", 1, &tags));
        tags.insert("huck".to_string(), "finn".to_string());
        assert!(f.matches("days1/huck", 1, &tags));
        assert!(!f.matches("days2/huck", 1, &tags));
        let sized = LifecycleFilter {
            size_greater_than: Some(10),
            size_less_than: Some(20),
            ..Default::default()
        };
        assert!(sized.matches("k", 15, &tags) && !sized.matches("k", 20, &tags));
        assert!(!sized.matches("k", 10, &tags));
    }

    #[test]
    fn noncurrent_versions_expire_from_their_successors_time_keeping_the_newest() {
        let rule = LifecycleRule {
            id: "r".into(),
            enabled: true,
            noncurrent_days: Some(1),
            newer_noncurrent_versions: Some(1),
            ..Default::default()
        };
        // Newest first: current at 30, then noncurrent since 30, 20, 10.
        let vs = [
            version("k", 30, false),
            version("k", 20, false),
            version("k", 10, false),
            version("k", 0, false),
        ];
        let v = judge(std::slice::from_ref(&rule), &vs, 25, 10);
        // Index 2 became noncurrent at 20 (due 30: not yet); index 3 at 10 (due 20).
        assert_eq!(v.noncurrent, vec![3]);
        let v = judge(std::slice::from_ref(&rule), &vs, 40, 10);
        // Index 1 is the newest noncurrent, kept by NewerNoncurrentVersions.
        assert_eq!(v.noncurrent, vec![2, 3]);
        assert!(!v.expire_current && !v.remove_marker);
    }

    #[test]
    fn a_lone_delete_marker_goes_once_what_it_hides_has_gone() {
        let rule = LifecycleRule {
            id: "r".into(),
            enabled: true,
            noncurrent_days: Some(1),
            expired_object_delete_marker: Some(true),
            ..Default::default()
        };
        let vs = [version("k", 20, true), version("k", 10, false)];
        assert_eq!(
            judge(std::slice::from_ref(&rule), &vs, 25, 10),
            KeyVerdict::default()
        );
        let v = judge(std::slice::from_ref(&rule), &vs, 30, 10);
        assert_eq!(v.noncurrent, vec![1]);
        assert!(v.remove_marker);
        let disabled = LifecycleRule {
            enabled: false,
            ..rule
        };
        assert_eq!(judge(&[disabled], &vs, 30, 10), KeyVerdict::default());
    }

    #[test]
    fn the_current_version_expires_by_the_earliest_matching_rule() {
        let rules = [
            LifecycleRule {
                id: "late".into(),
                enabled: true,
                expiration_days: Some(5),
                ..Default::default()
            },
            LifecycleRule {
                id: "early".into(),
                enabled: true,
                prefix: Some("logs/".into()),
                expiration_days: Some(1),
                ..Default::default()
            },
        ];
        let o = version("logs/a", 0, false);
        assert_eq!(current_expiry(&rules, &o, 10), Some((10, "early")));
        let o = version("data/a", 0, false);
        assert_eq!(current_expiry(&rules, &o, 10), Some((50, "late")));
        assert!(abort_upload(
            &[LifecycleRule {
                id: "u".into(),
                enabled: true,
                abort_upload_days: Some(2),
                ..Default::default()
            }],
            "k",
            0,
            20,
            10
        ));
    }
}
