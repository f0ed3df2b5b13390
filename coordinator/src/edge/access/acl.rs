//! Access control lists as S3 clients send and read them: canned ACLs (`x-amz-acl`), grant
//! headers (`x-amz-grant-read: id="KEY", uri="http://acs.amazonaws.com/groups/global/AllUsers"`)
//! and `AccessControlPolicy` documents, turned into the metadata's [`Acl`] and back.

use crate::edge::error::s3_err;
use crate::error::ApiError;
use crate::meta::{Acl, AclGrant, Grantee, KeyRecord, Permission};
use s3s::dto;
use s3s::{S3Error, S3Result};
use std::collections::BTreeMap;

/// The group every user belongs to.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The group of every signed request.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The grant headers of a request, by permission.
#[derive(Default)]
pub struct GrantHeaders<'a> {
    /// `x-amz-grant-full-control`.
    pub full_control: Option<&'a str>,
    /// `x-amz-grant-read`.
    pub read: Option<&'a str>,
    /// `x-amz-grant-read-acp`.
    pub read_acp: Option<&'a str>,
    /// `x-amz-grant-write`.
    pub write: Option<&'a str>,
    /// `x-amz-grant-write-acp`.
    pub write_acp: Option<&'a str>,
}

/// The grant headers of an `s3s` input: `grant_headers!(input)` for one with all five
/// (bucket ACLs, PutObjectAcl), `grant_headers!(input, headers: h)` for object writes, whose
/// `s3s` inputs have no `x-amz-grant-write` (S3 keeps a WRITE grant on an object though it
/// means nothing there), read from the request's headers `h`.
macro_rules! grant_headers {
    ($i:expr) => {
        $crate::edge::access::acl::GrantHeaders {
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $i.grant_write.as_deref(),
            write_acp: $i.grant_write_acp.as_deref(),
        }
    };
    ($i:expr, headers: $h:expr) => {
        $crate::edge::access::acl::GrantHeaders {
            full_control: $i.grant_full_control.as_deref(),
            read: $i.grant_read.as_deref(),
            read_acp: $i.grant_read_acp.as_deref(),
            write: $h.get("x-amz-grant-write").and_then(|v| v.to_str().ok()),
            write_acp: $i.grant_write_acp.as_deref(),
        }
    };
}
pub(crate) use grant_headers;

impl GrantHeaders<'_> {
    /// Whether any grant header is present.
    pub fn any(&self) -> bool {
        self.full_control.is_some()
            || self.read.is_some()
            || self.read_acp.is_some()
            || self.write.is_some()
            || self.write_acp.is_some()
    }
}

/// The ACL a create or write asks for (`None`: the default, the owner's full control).
/// `owner` is who will own the bucket or object; `bucket_owner` the owner of the bucket
/// (for the `bucket-owner-*` canned ACLs). A canned ACL and grant headers together are an
/// InvalidRequest; an unknown canned ACL an InvalidArgument; a grant to a key that does not
/// exist an InvalidArgument.
pub fn requested(
    canned: Option<&str>,
    grants: &GrantHeaders<'_>,
    owner: Option<&str>,
    bucket_owner: Option<&str>,
    keys: &BTreeMap<String, KeyRecord>,
) -> S3Result<Option<Acl>> {
    if canned.is_some() && grants.any() {
        return Err(s3_err(ApiError::InvalidRequest(
            "a canned ACL and grant headers cannot be used together".into(),
        )));
    }
    if let Some(c) = canned {
        return canned_acl(c, owner, bucket_owner).map(Some);
    }
    if !grants.any() {
        return Ok(None);
    }
    let mut acl = Acl {
        owner: owner.map(String::from),
        grants: Vec::new(),
    };
    for (value, permission) in [
        (grants.read, Permission::Read),
        (grants.write, Permission::Write),
        (grants.read_acp, Permission::ReadAcp),
        (grants.write_acp, Permission::WriteAcp),
        (grants.full_control, Permission::FullControl),
    ] {
        let Some(value) = value else { continue };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, who) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .ok_or_else(|| invalid(format!("bad grant {item:?}")))?;
            let grantee = match kind.to_ascii_lowercase().as_str() {
                "id" => user(who, keys)?,
                "uri" => group(who)?,
                "emailaddress" => return Err(unresolvable_email(who)),
                _ => return Err(invalid(format!("bad grantee type in {item:?}"))),
            };
            acl.grants.push(AclGrant {
                grantee,
                permission,
            });
        }
    }
    Ok(Some(acl))
}

/// A canned ACL for an owner (the grants to others first, the owner's full control last,
/// in the order S3 lists them).
pub fn canned_acl(name: &str, owner: Option<&str>, bucket_owner: Option<&str>) -> S3Result<Acl> {
    let mut acl = Acl {
        owner: owner.map(String::from),
        grants: Vec::new(),
    };
    let mut add = |grantee: Grantee, permission: Permission| {
        acl.grants.push(AclGrant {
            grantee,
            permission,
        })
    };
    match name {
        "private" => {}
        "public-read" => add(Grantee::AllUsers, Permission::Read),
        "public-read-write" => {
            add(Grantee::AllUsers, Permission::Read);
            add(Grantee::AllUsers, Permission::Write);
        }
        "authenticated-read" => add(Grantee::AuthenticatedUsers, Permission::Read),
        "bucket-owner-read" | "bucket-owner-full-control" => {
            if let Some(b) = bucket_owner.filter(|b| Some(*b) != owner) {
                let p = if name == "bucket-owner-read" {
                    Permission::Read
                } else {
                    Permission::FullControl
                };
                add(Grantee::Key(b.to_string()), p);
            }
        }
        other => return Err(invalid(format!("unknown canned ACL {other:?}"))),
    }
    acl.grants
        .extend(Acl::private(owner.map(String::from)).grants);
    Ok(acl)
}

/// An `AccessControlPolicy` document as an ACL owned by `owner` (grants to keys must name
/// existing keys; groups must be AllUsers or AuthenticatedUsers).
pub fn from_policy(
    p: &dto::AccessControlPolicy,
    owner: Option<&str>,
    keys: &BTreeMap<String, KeyRecord>,
) -> S3Result<Acl> {
    let mut acl = Acl {
        owner: owner.map(String::from),
        grants: Vec::new(),
    };
    for g in p.grants.iter().flatten() {
        let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
            return Err(malformed("every grant needs a grantee and a permission"));
        };
        let permission = match permission.as_str() {
            "FULL_CONTROL" => Permission::FullControl,
            "READ" => Permission::Read,
            "READ_ACP" => Permission::ReadAcp,
            "WRITE" => Permission::Write,
            "WRITE_ACP" => Permission::WriteAcp,
            other => return Err(malformed(&format!("unknown permission {other:?}"))),
        };
        let grantee = match grantee.type_.as_str() {
            "CanonicalUser" => user(grantee.id.as_deref().unwrap_or(""), keys)?,
            "Group" => group(grantee.uri.as_deref().unwrap_or(""))?,
            "AmazonCustomerByEmail" => {
                return Err(unresolvable_email(
                    grantee.email_address.as_deref().unwrap_or(""),
                ))
            }
            other => return Err(malformed(&format!("unknown grantee type {other:?}"))),
        };
        acl.grants.push(AclGrant {
            grantee,
            permission,
        });
    }
    Ok(acl)
}

/// The owner as S3 shows it: the key id and its name.
pub fn owner_dto(owner: Option<&str>, keys: &BTreeMap<String, KeyRecord>) -> dto::Owner {
    let id = owner.unwrap_or("anonymous").to_string();
    dto::Owner {
        display_name: Some(keys.get(&id).map_or(id.clone(), |k| k.name.clone())),
        id: Some(id),
    }
}

/// The grants as S3 shows them (grants to groups first, then to keys, each in the order
/// given).
pub fn grants_dto(acl: &Acl, keys: &BTreeMap<String, KeyRecord>) -> Vec<dto::Grant> {
    let (groups, users): (Vec<&AclGrant>, Vec<&AclGrant>) = acl
        .grants
        .iter()
        .partition(|g| !matches!(g.grantee, Grantee::Key(_)));
    groups
        .into_iter()
        .chain(users)
        .map(|g| {
            let grantee = match &g.grantee {
                Grantee::Key(k) => dto::Grantee {
                    display_name: Some(keys.get(k).map_or(k.clone(), |r| r.name.clone())),
                    email_address: None,
                    id: Some(k.clone()),
                    type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
                    uri: None,
                },
                Grantee::AllUsers | Grantee::AuthenticatedUsers => dto::Grantee {
                    display_name: None,
                    email_address: None,
                    id: None,
                    type_: dto::Type::from_static(dto::Type::GROUP),
                    uri: Some(
                        if g.grantee == Grantee::AllUsers {
                            ALL_USERS
                        } else {
                            AUTHENTICATED_USERS
                        }
                        .into(),
                    ),
                },
            };
            let permission = match g.permission {
                Permission::FullControl => dto::Permission::FULL_CONTROL,
                Permission::Read => dto::Permission::READ,
                Permission::ReadAcp => dto::Permission::READ_ACP,
                Permission::Write => dto::Permission::WRITE,
                Permission::WriteAcp => dto::Permission::WRITE_ACP,
            };
            dto::Grant {
                grantee: Some(grantee),
                permission: Some(dto::Permission::from_static(permission)),
            }
        })
        .collect()
}

fn user(id: &str, keys: &BTreeMap<String, KeyRecord>) -> S3Result<Grantee> {
    if keys.contains_key(id) {
        Ok(Grantee::Key(id.to_string()))
    } else {
        Err(invalid(format!("no access key {id:?} to grant to")))
    }
}

fn group(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        other => Err(invalid(format!("unsupported grantee group {other:?}"))),
    }
}

fn invalid(msg: String) -> S3Error {
    s3_err(ApiError::InvalidArgument(msg))
}

fn malformed(msg: &str) -> S3Error {
    s3_err(ApiError::MalformedAcl(msg.into()))
}

fn unresolvable_email(who: &str) -> S3Error {
    s3_err(ApiError::UnresolvableGrantByEmail(who.into()))
}
