//! PostObject: a browser form upload. `s3s` reads the form, checks the policy document's
//! signature, expiry and conditions, and holds the file (at most `--post-max-size`); the
//! upload is then stored exactly as a PUT with the same fields would be, and `s3s` answers
//! with `success_action_status` or `success_action_redirect`.

use super::helpers::R;
use super::objects::put_object;
use super::Tessera;
use crate::edge::error::s3_err;
use crate::error::ApiError;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

pub(super) async fn post_object(
    t: &Tessera,
    req: S3Request<PostObjectInput>,
) -> R<PostObjectOutput> {
    let i = req.input;
    // The form's `tagging` field (S3's name), read before `s3s` took the form.
    let form_field = req
        .extensions
        .get::<crate::edge::form_fields::FormTagging>()
        .map(|t| t.0.clone());
    let tagging = match i.tagging.as_deref().or(form_field.as_deref()) {
        Some(xml) if xml.trim_start().starts_with('<') => Some(form_tags(xml)?),
        other => other.map(String::from),
    };
    // `${filename}` in the key is the name of the uploaded file (s3s gives the field as sent).
    let put = PutObjectInput {
        acl: i.acl,
        body: i.body,
        bucket: i.bucket,
        cache_control: i.cache_control,
        checksum_algorithm: i.checksum_algorithm,
        checksum_crc32: i.checksum_crc32,
        checksum_crc32c: i.checksum_crc32c,
        checksum_crc64nvme: i.checksum_crc64nvme,
        checksum_sha1: i.checksum_sha1,
        checksum_sha256: i.checksum_sha256,
        content_disposition: i.content_disposition,
        content_encoding: i.content_encoding,
        content_language: i.content_language,
        content_length: i.content_length,
        content_md5: i.content_md5,
        content_type: i.content_type,
        expected_bucket_owner: i.expected_bucket_owner,
        expires: i.expires,
        grant_full_control: i.grant_full_control,
        grant_read: i.grant_read,
        grant_read_acp: i.grant_read_acp,
        grant_write_acp: i.grant_write_acp,
        if_match: i.if_match,
        if_none_match: i.if_none_match,
        key: i.key,
        metadata: i.metadata,
        object_lock_legal_hold_status: i.object_lock_legal_hold_status,
        object_lock_mode: i.object_lock_mode,
        object_lock_retain_until_date: i.object_lock_retain_until_date,
        server_side_encryption: i.server_side_encryption,
        sse_customer_algorithm: i.sse_customer_algorithm,
        ssekms_key_id: i.ssekms_key_id,
        storage_class: i.storage_class,
        tagging,
        write_offset_bytes: i.write_offset_bytes,
        ..Default::default()
    };
    let put_req = S3Request {
        input: put,
        method: req.method,
        uri: req.uri,
        headers: req.headers,
        extensions: req.extensions,
        credentials: req.credentials,
        region: req.region,
        service: req.service,
        trailing_headers: req.trailing_headers,
    };
    let done = put_object(t, put_req).await?;
    let o = done.output;
    // s3s writes the value as given into the redirect's `etag=` and the 201 document, where
    // S3 has the quoted ETag; the response header carries it too.
    let quoted = o.e_tag.map(|e| format!("\"{}\"", e.value()));
    let mut resp = S3Response::new(PostObjectOutput {
        e_tag: quoted.clone().map(ETag::Strong),
        checksum_crc32: o.checksum_crc32,
        checksum_crc32c: o.checksum_crc32c,
        checksum_crc64nvme: o.checksum_crc64nvme,
        checksum_sha1: o.checksum_sha1,
        checksum_sha256: o.checksum_sha256,
        ..Default::default()
    });
    resp.headers = done.headers;
    if let Some(v) = quoted.and_then(|q| http::HeaderValue::from_str(&q).ok()) {
        resp.headers.insert(http::header::ETAG, v);
    }
    Ok(resp)
}

/// The tags field of a form as a `Tagging` XML document (as S3 takes a form's tags) turned
/// into what the `x-amz-tagging` header of a PUT carries (`k=v&...`, URL-encoded). Either
/// field, `tagging` (S3's) or `x-amz-tagging`, is accepted in either form.
fn form_tags(xml: &str) -> S3Result<String> {
    use s3s::xml::{Deserialize, Deserializer};
    let mut d = Deserializer::new(xml.as_bytes());
    let t = Tagging::deserialize(&mut d).map_err(|e| {
        s3_err(ApiError::MalformedXml(format!(
            "the form's tagging is not a Tagging document: {e:?}"
        )))
    })?;
    let pairs: Vec<String> = t
        .tag_set
        .iter()
        .map(|tag| {
            let k = tag.key.as_deref().unwrap_or_default();
            let v = tag.value.as_deref().unwrap_or_default();
            format!("{}={}", urlencoding::encode(k), urlencoding::encode(v))
        })
        .collect();
    Ok(pairs.join("&"))
}
