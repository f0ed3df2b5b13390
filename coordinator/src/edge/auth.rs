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
        // The key as this coordinator applied it: the access check then makes sure it still
        // exists (linearizably, or at a PUT's commit through its stamp). Only a key not seen
        // here yet is read linearizably (it may have just been made through another member).
        let id = access_key.to_string();
        let key = match self.c.meta.key_applied(id.clone()).await.map_err(s3_err)? {
            Some(k) => Some(k),
            None => self.c.meta.key(id).await.map_err(s3_err)?,
        };
        match key {
            Some(k) => Ok(SecretKey::from(k.secret)),
            None => Err(unknown_key()),
        }
    }
}

/// The answer to a signature by an access key that does not exist.
pub fn unknown_key() -> s3s::S3Error {
    s3s::S3Error::with_message(
        S3ErrorCode::InvalidAccessKeyId,
        "the access key id you provided does not exist",
    )
}
