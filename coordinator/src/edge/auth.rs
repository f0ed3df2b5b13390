//! Who a request is from: signatures (SigV4 headers, presigned URLs, aws-chunked bodies)
//! are verified by `s3s` with the secret [`KeyAuth`] looks up; an unknown key is
//! `InvalidAccessKeyId`, a wrong signature `SignatureDoesNotMatch`, a skewed clock
//! `RequestTimeTooSkewed`. What the key may do is [`super::access`]'s decision.

use super::error::s3_err;
use crate::state::Coordinator;
use s3s::auth::{S3Auth, SecretKey};
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
