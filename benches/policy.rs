//! What deciding a request against a bucket policy costs: the cached parse of the policy and
//! the evaluation of the five-statement policy `scripts/policy-bench.sh` sets, for a GET the
//! policy does not name (the common case: the owner reading its own bucket).
//!
//! Run: `cargo bench --bench policy`

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use tessera_coordinator::edge::access::policy::{evaluate, Facts, PolicyCache};

const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
 {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::policy/keep/*"},
 {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::policy/*",
  "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
 {"Effect": "Allow", "Principal": {"AWS": ["TKSOMEONEELSE0000001"]}, "Action": ["s3:Get*", "s3:List*"],
  "Resource": ["arn:aws:s3:::policy", "arn:aws:s3:::policy/*"]},
 {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::policy/public/*",
  "Condition": {"StringLike": {"aws:Referer": "https://*.example/*"}}},
 {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::policy",
  "Condition": {"StringEquals": {"s3:prefix": ["public/", "shared/"]}}}]}"#;

fn policy(c: &mut Criterion) {
    let cache = PolicyCache::default();
    let keys: BTreeMap<String, Vec<String>> = [
        ("aws:sourceip", "127.0.0.1"),
        ("aws:securetransport", "false"),
        ("aws:useragent", "tessera-bench"),
        ("s3:x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("s3:x-amz-date", "20261205T000000Z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
    .collect();
    c.bench_function("policy: cached parse + evaluate one GET", |b| {
        b.iter(|| {
            let p = cache.parsed("policy", POLICY).unwrap();
            let f = Facts {
                caller: Some("TKPOLICYBENCH0000001".into()),
                action: "s3:GetObject".into(),
                resource: "arn:aws:s3:::policy/bench/obj-000123".into(),
                keys: keys.clone(),
            };
            evaluate(&p, &f)
        })
    });
}

criterion_group!(benches, policy);
criterion_main!(benches);
