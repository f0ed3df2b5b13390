//! SigV4 signing of the requests `tessera bench` sends, with the AWS SDK's signer
//! (`aws-sigv4`): the header signing awscli and boto3 do, so a benchmark against a cluster
//! that requires signatures pays what real clients make it pay.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// Hex SHA-256 of the empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Signs requests with one access key.
#[derive(Clone)]
pub struct Signer {
    credentials: Credentials,
    region: String,
}

impl Signer {
    /// A signer for `key_id`/`secret` in `region`.
    pub fn new(key_id: &str, secret: &str, region: &str) -> Self {
        Signer {
            credentials: Credentials::from_keys(key_id, secret, None),
            region: region.to_string(),
        }
    }

    /// The headers that sign `method url` whose body has SHA-256 `payload` (lowercase hex;
    /// `None`: `UNSIGNED-PAYLOAD`), `headers` being the other headers to sign.
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Option<&str>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let identity = self.credentials.clone().into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let body = match payload {
            Some(h) => SignableBody::Precomputed(h.to_string()),
            None => SignableBody::UnsignedPayload,
        };
        let request = SignableRequest::new(method, url, headers.iter().copied(), body)?;
        let (instructions, _) = sign(request, &params)?.into_parts();
        Ok(instructions
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect())
    }
}
