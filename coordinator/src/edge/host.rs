//! Which bucket a request addresses: path style (`/bucket/key`), or virtual-hosted
//! (`bucket.DOMAIN`) when the coordinator has a `--domain`.

use http::{HeaderMap, Uri};

/// The bucket named by the `Host` header under `domain`, if it names one.
pub fn virtual_host_bucket(headers: &HeaderMap, domain: Option<&str>) -> Option<String> {
    let host = headers
        .get(http::header::HOST)?
        .to_str()
        .ok()?
        .split(':')
        .next()?;
    let b = host.strip_suffix(domain?)?.strip_suffix('.')?;
    (!b.is_empty()).then(|| b.to_string())
}

/// The bucket a request names (path style, or virtual-hosted under `domain`).
pub fn bucket_of(uri: &Uri, headers: &HeaderMap, domain: Option<&str>) -> Option<String> {
    if let Some(b) = virtual_host_bucket(headers, domain) {
        return Some(b);
    }
    let b = uri.path().trim_start_matches('/').split('/').next()?;
    (!b.is_empty()).then(|| b.to_string())
}
