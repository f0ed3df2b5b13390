//! The coordinator's edge: what clients and operators talk to.
//!
//! - [`s3`]: the S3 operations, served through the `s3s` protocol library ([`service`]), one
//!   file per family (buckets, objects, listing, multipart) and their shared helpers.
//! - [`checksum`]: Content-MD5, `x-amz-checksum-*` and multipart checksums.
//! - [`auth`]: access keys and signature lookup; [`access`]: who may do what (grants, bucket
//!   policies, ACLs, public access block) and CORS.
//! - [`admin`]: the admin API (nodes, repair, keys, grants) behind the admin token and the
//!   cluster secret.
//! - [`console`]: the web console page and the figures only it needs.
//! - [`dialect`]: where clients' S3 and `s3s`'s differ, adjusted around `s3s`.
//! - [`host`]: which bucket a request addresses (path style or virtual-hosted).
//! - [`lengthless`]: unsigned uploads sent chunked without a length, given one; form uploads'
//!   fields read for what `s3s` does not do with them ([`form_fields`]: the `tagging` field,
//!   `${filename}`).
//! - [`observe`]: request ids (`x-amz-request-id`) and request metrics around the S3 service.
//! - [`error`]: the one mapping of coordinator errors to S3 codes and HTTP statuses.
//!
//! Nothing below this module knows of HTTP, XML, S3 names, ETag quoting or checksums headers.

pub mod access;
pub mod admin;
pub mod auth;
pub mod checksum;
pub mod console;
pub mod dialect;
pub mod error;
pub mod form_fields;
pub mod host;
pub mod lengthless;
pub mod observe;
pub mod s3;

use crate::state::Coordinator;
use std::sync::Arc;

/// The S3 service: `s3s` with Tessera's operations, key lookup, access checks and (with a
/// configured domain) virtual-hosted-style addressing.
pub fn service(c: Arc<Coordinator>) -> Result<s3s::service::S3Service, crate::error::ApiError> {
    let mut b = s3s::service::S3ServiceBuilder::new(s3::Tessera::new(c.clone()));
    b.set_auth(auth::KeyAuth::new(c.clone()));
    b.set_access(access::Access::new(c.clone()));
    let mut config = s3s::config::S3Config::default();
    config.post_object_max_file_size = c.config.post_max_size;
    b.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(
        config,
    ))));
    if let Some(d) = &c.config.domain {
        let host = s3s::host::SingleDomain::new(d)
            .map_err(|e| crate::error::ApiError::InvalidArgument(format!("--domain {d}: {e}")))?;
        b.set_host(host);
    }
    Ok(b.build())
}
