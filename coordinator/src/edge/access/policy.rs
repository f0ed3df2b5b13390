//! Bucket policies: checking a document when it is set, and evaluating it for a request.
//!
//! The JSON model is `s3s-policy`'s; the evaluation is Tessera's own. A statement applies
//! when its principal, action, resource and every condition match; an applying `Deny` wins
//! over any `Allow`. Principals are `*` (everyone, signed or not), `{"AWS": "*"}`, or access
//! key ids, alone or as ARNs ending in the key id (`arn:aws:iam::KEY:root`,
//! `arn:aws:iam:::user/KEY`). Actions and resources match with `*` and `?` wildcards,
//! actions case-insensitively. Conditions: the String*, Numeric*, Bool, IpAddress,
//! NotIpAddress and Null operators, each also with `IfExists`, on the keys the edge gathers
//! ([`Facts`]).

use s3s_policy::model::{
    ActionRule, ConditionRule, Effect, Policy, Principal, PrincipalRule, ResourceRule, Statement,
    WildcardOneOrMore,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// What a policy says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An applying statement allows it (and none denies it).
    Allow,
    /// An applying statement denies it.
    Deny,
    /// No statement applies.
    Silent,
}

/// The request as a policy sees it.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The signing key (`None`: unsigned).
    pub caller: Option<String>,
    /// `s3:GetObject` and the like.
    pub action: String,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: String,
    /// Condition keys (lowercase) and their values.
    pub keys: BTreeMap<String, Vec<String>>,
}

/// Parses and checks a policy set on `bucket`: MalformedPolicy texts say what is wrong.
pub fn parse(text: &str, bucket: &str) -> Result<Policy, String> {
    let p: Policy = serde_json::from_str(text).map_err(|e| format!("policy is not valid: {e}"))?;
    for s in p.statement.as_slice() {
        if s.effect == Effect::Allow && matches!(s.principal, Some(PrincipalRule::NotPrincipal(_)))
        {
            return Err("NotPrincipal cannot be used with Allow".into());
        }
        let (ResourceRule::Resource(r) | ResourceRule::NotResource(r)) = &s.resource;
        {
            for res in r.as_slice().unwrap_or(&[]) {
                let Some(rest) = res.strip_prefix("arn:aws:s3:::") else {
                    return Err(format!("policy has an invalid resource: {res}"));
                };
                let named = rest.split('/').next().unwrap_or("");
                if !glob(named, bucket, false) {
                    return Err(format!("policy has an invalid resource: {res}"));
                }
            }
        }
        let (ActionRule::Action(a) | ActionRule::NotAction(a)) = &s.action;
        {
            for act in a.as_slice().unwrap_or(&[]) {
                if !(act == "*" || act.to_ascii_lowercase().starts_with("s3:")) {
                    return Err(format!("policy has an invalid action: {act}"));
                }
            }
        }
        if let Some(cond) = &s.condition {
            for op in cond.0.keys() {
                if operator(op).is_none() {
                    return Err(format!("policy has an unknown condition operator: {op}"));
                }
            }
        }
    }
    Ok(p)
}

/// Parsed policies by bucket, so a request to a bucket with a policy does not parse it again
/// (an entry is replaced when the bucket's policy text changes).
#[derive(Default)]
pub struct PolicyCache {
    by_bucket: std::sync::Mutex<std::collections::HashMap<String, Cached>>,
}

/// A parsed policy, the text it was parsed from, and whether its conditions name objects'
/// existing tags (`s3:ExistingObjectTag/...`, which cost an object read to evaluate).
struct Cached {
    text: String,
    policy: Arc<Policy>,
    object_tags: bool,
}

impl PolicyCache {
    /// The parsed form of `text`, the policy of `bucket`.
    pub fn parsed(&self, bucket: &str, text: &str) -> Result<Arc<Policy>, String> {
        self.parsed_with_tags(bucket, text).map(|(p, _)| p)
    }

    /// [`PolicyCache::parsed`], and whether the policy names objects' existing tags.
    pub fn parsed_with_tags(
        &self,
        bucket: &str,
        text: &str,
    ) -> Result<(Arc<Policy>, bool), String> {
        if let Some(c) = self.by_bucket.lock().unwrap().get(bucket) {
            if c.text == text {
                return Ok((c.policy.clone(), c.object_tags));
            }
        }
        let p = Arc::new(parse(text, bucket)?);
        let object_tags = text.to_ascii_lowercase().contains("s3:existingobjecttag/");
        let mut map = self.by_bucket.lock().unwrap();
        if map.len() > 10_000 {
            map.clear();
        }
        let c = Cached {
            text: text.to_string(),
            policy: p.clone(),
            object_tags,
        };
        map.insert(bucket.to_string(), c);
        Ok((p, object_tags))
    }
}

/// Evaluates `policy` for the request `f`.
pub fn evaluate(policy: &Policy, f: &Facts) -> Decision {
    let mut allowed = false;
    for s in policy.statement.as_slice() {
        if !applies(s, f) {
            continue;
        }
        match s.effect {
            Effect::Deny => return Decision::Deny,
            Effect::Allow => allowed = true,
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::Silent
    }
}

/// Whether the policy allows everyone (a statement that allows `*` without conditions that
/// narrow who: source addresses).
pub fn is_public(policy: &Policy) -> bool {
    policy.statement.as_slice().iter().any(|s| {
        s.effect == Effect::Allow
            && matches!(&s.principal, Some(PrincipalRule::Principal(p)) if principal_is_everyone(p))
            && !s.condition.as_ref().is_some_and(|c| {
                c.0.values()
                    .any(|kv| kv.0.keys().any(|k| k.eq_ignore_ascii_case("aws:SourceIp")))
            })
    })
}

fn principal_is_everyone(p: &Principal) -> bool {
    match p {
        Principal::Wildcard => true,
        Principal::Map(m) => m
            .get("AWS")
            .is_some_and(|v| v.as_slice().iter().any(|s| s == "*")),
    }
}

fn applies(s: &Statement, f: &Facts) -> bool {
    let principal = match &s.principal {
        None => false,
        Some(PrincipalRule::Principal(p)) => principal_matches(p, f.caller.as_deref()),
        Some(PrincipalRule::NotPrincipal(p)) => !principal_matches(p, f.caller.as_deref()),
    };
    let action = match &s.action {
        ActionRule::Action(a) => any_match(a, &f.action, true),
        ActionRule::NotAction(a) => !any_match(a, &f.action, true),
    };
    let resource = match &s.resource {
        ResourceRule::Resource(r) => any_match(r, &f.resource, false),
        ResourceRule::NotResource(r) => !any_match(r, &f.resource, false),
    };
    principal && action && resource && s.condition.as_ref().is_none_or(|c| conditions(c, f))
}

fn principal_matches(p: &Principal, caller: Option<&str>) -> bool {
    match p {
        Principal::Wildcard => true,
        Principal::Map(m) => m.get("AWS").is_some_and(|ids| {
            ids.as_slice().iter().any(|id| {
                id == "*"
                    || caller.is_some_and(|k| {
                        id == k
                            || id.strip_suffix(k).is_some_and(|rest| rest.ends_with('/'))
                            || id
                                .strip_prefix("arn:aws:iam::")
                                .and_then(|r| r.strip_suffix(":root"))
                                == Some(k)
                    })
            })
        }),
    }
}

fn any_match(set: &WildcardOneOrMore<String>, value: &str, fold: bool) -> bool {
    match set.as_slice() {
        None => true,
        Some(patterns) => patterns.iter().any(|p| glob(p, value, fold)),
    }
}

/// A condition operator: its test and whether it holds when the key is absent.
#[derive(Clone, Copy)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    Numeric(fn(f64, f64) -> bool),
    Bool,
    IpAddress,
    NotIpAddress,
    Null,
}

fn operator(name: &str) -> Option<(Op, bool)> {
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let op = match base {
        "StringEquals" => Op::StringEquals,
        "StringNotEquals" => Op::StringNotEquals,
        "StringEqualsIgnoreCase" => Op::StringEqualsIgnoreCase,
        "StringNotEqualsIgnoreCase" => Op::StringNotEqualsIgnoreCase,
        "StringLike" => Op::StringLike,
        "StringNotLike" => Op::StringNotLike,
        "NumericEquals" => Op::Numeric(|a, b| a == b),
        "NumericNotEquals" => Op::Numeric(|a, b| a != b),
        "NumericLessThan" => Op::Numeric(|a, b| a < b),
        "NumericLessThanEquals" => Op::Numeric(|a, b| a <= b),
        "NumericGreaterThan" => Op::Numeric(|a, b| a > b),
        "NumericGreaterThanEquals" => Op::Numeric(|a, b| a >= b),
        "Bool" => Op::Bool,
        "IpAddress" => Op::IpAddress,
        "NotIpAddress" => Op::NotIpAddress,
        "Null" if !if_exists => Op::Null,
        _ => return None,
    };
    Some((op, if_exists))
}

fn conditions(c: &ConditionRule, f: &Facts) -> bool {
    c.0.iter().all(|(name, kv)| {
        let Some((op, if_exists)) = operator(name) else {
            return false;
        };
        kv.0.iter().all(|(k, wanted)| {
            let wanted = wanted.as_slice();
            let have = f.keys.get(&k.to_ascii_lowercase());
            if let Op::Null = op {
                let null = wanted.iter().any(|w| w.eq_ignore_ascii_case("true"));
                return have.is_none() == null;
            }
            let Some(have) = have else {
                // A negated operator holds for an absent key; `IfExists` makes any hold.
                return if_exists
                    || matches!(
                        op,
                        Op::StringNotEquals
                            | Op::StringNotEqualsIgnoreCase
                            | Op::StringNotLike
                            | Op::NotIpAddress
                    );
            };
            have.iter().any(|h| test(op, h, wanted))
        })
    })
}

fn test(op: Op, have: &str, wanted: &[String]) -> bool {
    match op {
        Op::StringEquals => wanted.iter().any(|w| w == have),
        Op::StringNotEquals => wanted.iter().all(|w| w != have),
        Op::StringEqualsIgnoreCase => wanted.iter().any(|w| w.eq_ignore_ascii_case(have)),
        Op::StringNotEqualsIgnoreCase => wanted.iter().all(|w| !w.eq_ignore_ascii_case(have)),
        Op::StringLike => wanted.iter().any(|w| like(w, have)),
        Op::StringNotLike => wanted.iter().all(|w| !like(w, have)),
        Op::Numeric(cmp) => have.parse::<f64>().is_ok_and(|h| {
            wanted
                .iter()
                .any(|w| w.parse::<f64>().is_ok_and(|w| cmp(h, w)))
        }),
        Op::Bool => wanted.iter().any(|w| w.eq_ignore_ascii_case(have)),
        Op::IpAddress => wanted.iter().any(|w| in_cidr(have, w)),
        Op::NotIpAddress => wanted.iter().all(|w| !in_cidr(have, w)),
        Op::Null => false,
    }
}

fn like(pattern: &str, value: &str) -> bool {
    glob(pattern, value, false)
}

/// Whether `value` matches `pattern`, where `*` is any run of characters and `?` any one
/// (`fold`: ASCII case-insensitively). Allocates nothing: it runs on every request to a
/// bucket with a policy.
pub fn glob(pattern: &str, value: &str, fold: bool) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let same = |a: u8, b: u8| a == b || (fold && a.eq_ignore_ascii_case(&b));
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and the value position it currently stands for up to.
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && (p[i] == b'?' || (p[i] != b'*' && same(p[i], v[j]))) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Whether address `ip` is in `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address).
fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let (Ok(ip), Ok(net)) = (ip.parse::<IpAddr>(), net.parse::<IpAddr>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(caller: Option<&str>, action: &str, resource: &str) -> Facts {
        Facts {
            caller: caller.map(String::from),
            action: action.into(),
            resource: resource.into(),
            keys: BTreeMap::from([("aws:sourceip".into(), vec!["127.0.0.1".into()])]),
        }
    }

    #[test]
    fn deny_wins_and_conditions_narrow() {
        let p = parse(
            r#"{"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"},
              {"Effect":"Deny","Principal":{"AWS":["KEY2"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret*"},
              {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::KEY3:root"},"Action":"s3:ListBucket",
               "Resource":"arn:aws:s3:::b","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}
            ]}"#,
            "b",
        )
        .unwrap();
        let obj = "arn:aws:s3:::b/secret.txt";
        assert_eq!(
            evaluate(&p, &facts(None, "s3:GetObject", obj)),
            Decision::Allow
        );
        assert_eq!(
            evaluate(&p, &facts(Some("KEY2"), "s3:GetObject", obj)),
            Decision::Deny
        );
        assert_eq!(
            evaluate(&p, &facts(None, "s3:PutObject", obj)),
            Decision::Silent
        );
        let list = facts(Some("KEY3"), "s3:ListBucket", "arn:aws:s3:::b");
        assert_eq!(evaluate(&p, &list), Decision::Allow);
        let mut far = list.clone();
        far.keys
            .insert("aws:sourceip".into(), vec!["10.1.2.3".into()]);
        assert_eq!(evaluate(&p, &far), Decision::Silent);
        assert!(is_public(&p));
    }

    #[test]
    fn malformed_and_foreign_policies_are_refused() {
        assert!(parse("{", "b").is_err());
        assert!(parse(r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b"}]}"#, "b").is_err());
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::other/*"}]}"#, "b").is_err());
        assert!(parse(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b","Condition":{"Sometimes":{"a":"b"}}}]}"#, "b").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y", false));
        assert!(glob("s3:Get*", "s3:getobject", true));
        assert!(!glob("s3:Get*", "s3:getobject", false));
        assert!(glob("a?c*e", "abcdxxe", false));
        assert!(!glob("a?c*e", "abdde", false));
        assert!(glob("*", "", false) && glob("", "", false) && !glob("", "x", false));
        assert!(glob("*.put", "foo.put", false) && !glob("*.put", "foo.putx", false));
    }

    #[test]
    fn cidrs() {
        assert!(in_cidr("192.168.1.7", "192.168.0.0/16"));
        assert!(!in_cidr("192.169.1.7", "192.168.0.0/16"));
        assert!(in_cidr("::1", "::1/128"));
        assert!(!in_cidr("::1", "10.0.0.0/8"));
    }
}
