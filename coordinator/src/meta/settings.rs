//! What a bucket's owner configures beyond its objects: access control lists (bucket and
//! object), the bucket policy, CORS rules, the public access block, object ownership, object
//! lock and lifecycle rules.
//! Kept in the metadata (replicated through the log like every write; stored by
//! [`super::MetaStore::set_bucket_setting`] and [`super::MetaStore::set_object_acl`]);
//! evaluated by the edge, which is the only part that knows what a request asks for.

use serde::{Deserialize, Serialize};

/// Who a grant is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grantee {
    /// One access key (its id is the canonical user id clients see).
    Key(String),
    /// Everyone, signed or not (`http://acs.amazonaws.com/groups/global/AllUsers`).
    AllUsers,
    /// Every request signed by a key of this store
    /// (`http://acs.amazonaws.com/groups/global/AuthenticatedUsers`).
    AuthenticatedUsers,
}

/// What a grant allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// Bucket: list objects. Object: read it.
    Read,
    /// Bucket: write and delete objects. (Not used on objects.)
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Replace the ACL.
    WriteAcp,
    /// All of the above.
    FullControl,
}

impl Permission {
    /// Whether holding `self` gives `wanted`.
    pub fn covers(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

/// One entry of an access control list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// An access control list: the owner and the grants (the owner's own full control is a
/// grant like any other, as S3 shows it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The owning key (`None`: written anonymously).
    pub owner: Option<String>,
    /// The grants, in the order given.
    pub grants: Vec<AclGrant>,
}

impl Acl {
    /// The default ACL: the owner has full control.
    pub fn private(owner: Option<String>) -> Acl {
        let grants = owner
            .iter()
            .map(|o| AclGrant {
                grantee: Grantee::Key(o.clone()),
                permission: Permission::FullControl,
            })
            .collect();
        Acl { owner, grants }
    }

    /// Whether `caller` (`None`: unsigned) holds `wanted`; `ignore_public` leaves out the
    /// grants to every user and every signed user (the public access block's
    /// `IgnorePublicAcls`).
    pub fn allows(&self, caller: Option<&str>, wanted: Permission, ignore_public: bool) -> bool {
        self.grants.iter().any(|g| {
            let who = match &g.grantee {
                Grantee::Key(k) => caller == Some(k.as_str()),
                Grantee::AllUsers => !ignore_public,
                Grantee::AuthenticatedUsers => !ignore_public && caller.is_some(),
            };
            who && g.permission.covers(wanted)
        })
    }

    /// Whether the ACL grants anything to every user or every signed user.
    pub fn is_public(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
    }
}

/// One CORS rule of a bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// Rule id, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Origins (each may hold one `*`).
    pub allowed_origins: Vec<String>,
    /// Methods (GET, PUT, POST, DELETE, HEAD).
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (each may hold one `*`).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

/// The public access block of a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse ACLs that grant to every user or every signed user.
    pub block_public_acls: bool,
    /// Disregard such grants in existing ACLs.
    pub ignore_public_acls: bool,
    /// Refuse bucket policies that grant to everyone.
    pub block_public_policy: bool,
    /// Only the owner (and keys the store grants) reach a bucket with a public policy.
    pub restrict_public_buckets: bool,
}

/// A bucket's object lock: enabled (for good), with an optional default retention that every
/// new version gets unless its write names one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// Default retention mode (`GOVERNANCE` or `COMPLIANCE`) with `days` or `years`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<String>,
    /// Default retention in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_days: Option<u32>,
    /// Default retention in years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_years: Option<u32>,
}

/// How long a version is protected and how strictly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// `GOVERNANCE` (keys allowed to bypass may shorten or remove it) or `COMPLIANCE` (no
    /// one may, until it passes).
    pub mode: String,
    /// Until when, ms since the epoch.
    pub until_ms: u64,
}

/// Versioning states a bucket can be put in.
pub const ENABLED: &str = "Enabled";
/// See [`ENABLED`].
pub const SUSPENDED: &str = "Suspended";

/// Retention modes.
pub const GOVERNANCE: &str = "GOVERNANCE";
/// See [`GOVERNANCE`].
pub const COMPLIANCE: &str = "COMPLIANCE";

impl ObjectLock {
    /// The retention a version written at `now_ms` gets by default, if any.
    pub fn default_retention(&self, now_ms: u64) -> Option<Retention> {
        const DAY_MS: u64 = 24 * 3600 * 1000;
        let days = self
            .default_days
            .map(u64::from)
            .or(self.default_years.map(|y| u64::from(y) * 365))?;
        Some(Retention {
            mode: self.default_mode.clone()?,
            until_ms: now_ms.saturating_add(days * DAY_MS),
        })
    }
}

/// A rule's filter, kept in the shape it was given so that GetBucketLifecycleConfiguration
/// answers it back the same way. Everything given must hold (a conjunction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFilter {
    /// `Filter/Prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `Filter/Tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<(String, String)>,
    /// `Filter/ObjectSizeGreaterThan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    /// `Filter/ObjectSizeLessThan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
    /// `Filter/And`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Box<LifecycleFilter>>,
    /// `Filter/And/Tag` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
}

/// One lifecycle rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's id (given, or made up when it was set).
    pub id: String,
    /// `Status` is `Enabled` (a disabled rule is kept but does nothing).
    pub enabled: bool,
    /// The rule-level `Prefix` (the older form of a filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The `Filter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<LifecycleFilter>,
    /// `Expiration/Days`: current versions expire this many days after they were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    /// `Expiration/Date` (ms since the epoch, a midnight UTC): current versions expire then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_ms: Option<u64>,
    /// `Expiration/ExpiredObjectDeleteMarker`: a delete marker with no versions left behind
    /// it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_object_delete_marker: Option<bool>,
    /// `NoncurrentVersionExpiration/NoncurrentDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    /// `NoncurrentVersionExpiration/NewerNoncurrentVersions`: this many newer noncurrent
    /// versions are kept whatever their age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_upload_days: Option<u32>,
}

/// One change to a bucket's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BucketSetting {
    /// Replace the bucket's ACL.
    Acl(Acl),
    /// Set (`Some`: JSON text, already checked) or delete the bucket policy.
    Policy(Option<String>),
    /// Set or delete the CORS rules.
    Cors(Option<Vec<CorsRule>>),
    /// Set or delete the public access block.
    PublicAccessBlock(Option<PublicAccessBlock>),
    /// Set or delete object ownership (`BucketOwnerEnforced`, `BucketOwnerPreferred`,
    /// `ObjectWriter`).
    Ownership(Option<String>),
    /// Set or delete the bucket's tags.
    Tags(Option<std::collections::BTreeMap<String, String>>),
    /// Set or delete the lifecycle rules.
    Lifecycle(Option<Vec<LifecycleRule>>),
}
