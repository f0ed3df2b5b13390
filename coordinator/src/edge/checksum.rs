//! Checksums as S3 clients send and check them: `Content-MD5`, the `x-amz-checksum-*`
//! headers and aws-chunked trailers, and the checksums of multipart objects (composite or
//! full-object). The CRCs and hashes are `s3s`'s hardware-accelerated implementations.

use crate::data::put::BodyDigest;
use crate::error::ApiError;
use s3s::checksum::ChecksumHasher;
use s3s::dto::Checksum;
use std::collections::BTreeMap;

/// The checksums a PUT asked for, fed every body byte on the hashing thread.
pub struct Checksums {
    hasher: ChecksumHasher,
    /// The values, once the body has ended.
    computed: Option<Checksum>,
}

impl Checksums {
    /// The values computed over the whole body.
    fn computed(&mut self) -> Checksum {
        match &self.computed {
            Some(c) => c.clone(),
            None => {
                let c = std::mem::take(&mut self.hasher).finalize();
                self.computed = Some(c.clone());
                c
            }
        }
    }
}

impl BodyDigest for Checksums {
    fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    fn finish(&mut self) -> BTreeMap<String, String> {
        as_map(&self.computed())
    }
}

/// The algorithms named by a request: explicit checksum headers, the SDK's algorithm header
/// and `x-amz-trailer`.
fn wanted_checksums(given: &Checksum, algorithm: Option<&str>, trailer: Option<&str>) -> Checksums {
    use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
    let mut names: Vec<String> = Vec::new();
    if let Some(a) = algorithm {
        names.push(a.to_ascii_lowercase());
    }
    if let Some(t) = trailer {
        for n in t.split(',') {
            if let Some(a) = n
                .trim()
                .to_ascii_lowercase()
                .strip_prefix("x-amz-checksum-")
            {
                names.push(a.to_string());
            }
        }
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    Checksums {
        hasher: ChecksumHasher {
            crc32: (given.checksum_crc32.is_some() || has("crc32")).then(Crc32::new),
            crc32c: (given.checksum_crc32c.is_some() || has("crc32c")).then(Crc32c::new),
            sha1: (given.checksum_sha1.is_some() || has("sha1")).then(Sha1::new),
            sha256: (given.checksum_sha256.is_some() || has("sha256")).then(Sha256::new),
            crc64nvme: (given.checksum_crc64nvme.is_some() || has("crc64nvme"))
                .then(Crc64Nvme::new),
        },
        computed: None,
    }
}

/// Checksums sent as trailers of an aws-chunked body (read once the body is consumed).
fn trailer_checksums(req_trailers: Option<&s3s::TrailingHeaders>) -> Checksum {
    let mut out = Checksum::default();
    let Some(t) = req_trailers else {
        return out;
    };
    t.read(|h| {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
        out.checksum_crc32 = get("x-amz-checksum-crc32");
        out.checksum_crc32c = get("x-amz-checksum-crc32c");
        out.checksum_sha1 = get("x-amz-checksum-sha1");
        out.checksum_sha256 = get("x-amz-checksum-sha256");
        out.checksum_crc64nvme = get("x-amz-checksum-crc64nvme");
    });
    out
}

/// Compares what the client claimed with what was computed; returns what to store.
fn verify_checksums(
    claimed: &Checksum,
    computed: &Checksum,
) -> Result<BTreeMap<String, String>, ApiError> {
    let pairs = [
        ("crc32", &claimed.checksum_crc32, &computed.checksum_crc32),
        (
            "crc32c",
            &claimed.checksum_crc32c,
            &computed.checksum_crc32c,
        ),
        ("sha1", &claimed.checksum_sha1, &computed.checksum_sha1),
        (
            "sha256",
            &claimed.checksum_sha256,
            &computed.checksum_sha256,
        ),
        (
            "crc64nvme",
            &claimed.checksum_crc64nvme,
            &computed.checksum_crc64nvme,
        ),
    ];
    let mut out = BTreeMap::new();
    for (name, claim, got) in pairs {
        if let (Some(c), Some(g)) = (claim, got) {
            if c != g {
                return Err(ApiError::BadDigest(format!(
                    "the {name} checksum you specified ({c}) did not match what was received ({g})"
                )));
            }
        }
        if let Some(g) = got {
            out.insert(name.to_string(), g.clone());
        }
    }
    Ok(out)
}

fn merge(a: Checksum, b: Checksum) -> Checksum {
    Checksum {
        checksum_crc32: a.checksum_crc32.or(b.checksum_crc32),
        checksum_crc32c: a.checksum_crc32c.or(b.checksum_crc32c),
        checksum_sha1: a.checksum_sha1.or(b.checksum_sha1),
        checksum_sha256: a.checksum_sha256.or(b.checksum_sha256),
        checksum_crc64nvme: a.checksum_crc64nvme.or(b.checksum_crc64nvme),
        ..Default::default()
    }
}

/// Checks `Content-MD5` (base64 of the MD5) against the ETag (hex of the MD5).
fn verify_content_md5(claimed: Option<&str>, etag_hex: &str) -> Result<(), ApiError> {
    let Some(c) = claimed else {
        return Ok(());
    };
    let ok = base64_md5(c).is_some_and(|raw| hex::encode(raw) == etag_hex);
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadDigest(
            "the Content-MD5 you specified did not match what was received".into(),
        ))
    }
}

fn base64_md5(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    (raw.len() == 16).then_some(raw)
}

/// What a body must be checked against: the checksums and `Content-MD5` given as headers, the
/// algorithm the SDK named, and the trailers an aws-chunked body will end with.
#[derive(Default)]
pub struct BodyChecks {
    /// Checksums given as headers.
    pub given: Checksum,
    /// `x-amz-sdk-checksum-algorithm` (or the request's checksum algorithm field).
    pub algorithm: Option<String>,
    /// `x-amz-trailer`: the checksums the body's trailers will carry.
    pub trailer: Option<String>,
    /// The trailers, readable once the body is consumed.
    pub trailers: Option<s3s::TrailingHeaders>,
    /// `Content-MD5`.
    pub content_md5: Option<String>,
}

impl BodyChecks {
    /// The checks a request names (`x-amz-trailer` read from `headers`).
    pub fn new(
        headers: &http::HeaderMap,
        trailers: Option<s3s::TrailingHeaders>,
        given: Checksum,
        algorithm: Option<&str>,
        content_md5: Option<String>,
    ) -> Result<Self, ApiError> {
        // A Content-MD5 that is not the base64 of 16 bytes (an empty one too, which s3s
        // reads as none) is refused before any byte moves.
        let content_md5 = content_md5.or_else(|| {
            headers
                .get("content-md5")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        });
        if let Some(m) = content_md5.as_deref() {
            if base64_md5(m).is_none() {
                return Err(ApiError::InvalidDigest(format!(
                    "Content-MD5 {m:?} is not the base64 of an MD5"
                )));
            }
        }
        Ok(BodyChecks {
            given,
            algorithm: algorithm.map(|a| a.to_ascii_lowercase()),
            trailer: headers
                .get("x-amz-trailer")
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            trailers,
            content_md5,
        })
    }

    /// The digest to feed the body to: every algorithm named, plus `also` (an upload's).
    pub fn digest(&self, also: Option<&str>) -> Checksums {
        wanted_checksums(
            &self.given,
            also.or(self.algorithm.as_deref()),
            self.trailer.as_deref(),
        )
    }

    /// After the body: `Content-MD5` against the body's MD5 (`etag_hex`) and every claimed
    /// checksum against what `digest` computed (BadDigest). Returns what to store and the
    /// computed values.
    pub fn verify(
        self,
        etag_hex: &str,
        digest: &mut Checksums,
    ) -> Result<(BTreeMap<String, String>, Checksum), ApiError> {
        verify_content_md5(self.content_md5.as_deref(), etag_hex)?;
        let computed = digest.computed();
        let claimed = merge(self.given, trailer_checksums(self.trailers.as_ref()));
        let stored = verify_checksums(&claimed, &computed)?;
        Ok((stored, computed))
    }
}

/// Stored checksums as the response fields (returned with `x-amz-checksum-mode: ENABLED`).
pub fn stored_checksums(stored: &BTreeMap<String, String>) -> Checksum {
    let get = |n: &str| stored.get(n).cloned();
    Checksum {
        checksum_crc32: get("crc32"),
        checksum_crc32c: get("crc32c"),
        checksum_sha1: get("sha1"),
        checksum_sha256: get("sha256"),
        checksum_crc64nvme: get("crc64nvme"),
        ..Default::default()
    }
}

/// Checksum values by algorithm name, as stored.
pub fn as_map(c: &Checksum) -> BTreeMap<String, String> {
    [
        ("crc32", &c.checksum_crc32),
        ("crc32c", &c.checksum_crc32c),
        ("sha1", &c.checksum_sha1),
        ("sha256", &c.checksum_sha256),
        ("crc64nvme", &c.checksum_crc64nvme),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.clone().map(|v| (n.to_string(), v)))
    .collect()
}

/// Algorithms S3 defines, by the lowercase name Tessera stores them under.
pub const ALGORITHMS: [&str; 5] = ["crc32", "crc32c", "sha1", "sha256", "crc64nvme"];

/// Whether `algorithm` can be combined into a full-object checksum from its parts' values.
pub fn combinable(algorithm: &str) -> bool {
    matches!(algorithm, "crc32" | "crc32c" | "crc64nvme")
}

/// The checksum of a multipart object from its parts' checksums `(value, part length)`:
/// `COMPOSITE` is the algorithm over the concatenated part checksums, suffixed `-N`;
/// `FULL_OBJECT` (CRCs only) is the CRC of the whole body, combined from the parts' CRCs.
/// `None` if a part lacks the value.
pub fn multipart_checksum(
    algorithm: &str,
    full_object: bool,
    parts: &[(Option<&String>, u64)],
) -> Option<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw: Vec<(Vec<u8>, u64)> = parts
        .iter()
        .map(|(v, len)| Some((b64.decode((*v)?).ok()?, *len)))
        .collect::<Option<_>>()?;
    if full_object {
        let alg = match algorithm {
            "crc32" => crc_fast::CrcAlgorithm::Crc32IsoHdlc,
            "crc32c" => crc_fast::CrcAlgorithm::Crc32Iscsi,
            "crc64nvme" => crc_fast::CrcAlgorithm::Crc64Nvme,
            _ => return None,
        };
        let width = if algorithm == "crc64nvme" { 8 } else { 4 };
        let value = |b: &[u8]| -> Option<u64> {
            (b.len() == width).then(|| b.iter().fold(0u64, |a, x| (a << 8) | *x as u64))
        };
        let mut acc: Option<u64> = None;
        for (b, len) in &raw {
            let v = value(b)?;
            acc = Some(match acc {
                None => v,
                Some(a) => crc_fast::checksum_combine(alg, a, v, *len),
            });
        }
        let acc = acc?;
        return Some(b64.encode(&acc.to_be_bytes()[8 - width..]));
    }
    let mut h = hasher_for(algorithm)?;
    for (b, _) in &raw {
        h.update(b);
    }
    let all = as_map(&h.finalize());
    Some(format!("{}-{}", all.get(algorithm)?, parts.len()))
}

fn hasher_for(algorithm: &str) -> Option<ChecksumHasher> {
    use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
    let mut h = ChecksumHasher::default();
    match algorithm {
        "crc32" => h.crc32 = Some(Crc32::new()),
        "crc32c" => h.crc32c = Some(Crc32c::new()),
        "sha1" => h.sha1 = Some(Sha1::new()),
        "sha256" => h.sha256 = Some(Sha256::new()),
        "crc64nvme" => h.crc64nvme = Some(Crc64Nvme::new()),
        _ => return None,
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full-object CRC combined from parts equals the CRC of the whole body.
    #[test]
    fn combined_crcs_equal_the_whole_body_crc() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let cuts = [0, 1234, 5000, 9999, 10_000];
        for alg in ["crc32", "crc32c", "crc64nvme"] {
            let sum = |b: &[u8]| {
                let mut h = hasher_for(alg).unwrap();
                h.update(b);
                as_map(&h.finalize()).remove(alg).unwrap()
            };
            let values: Vec<(String, u64)> = cuts
                .windows(2)
                .map(|w| (sum(&body[w[0]..w[1]]), (w[1] - w[0]) as u64))
                .collect();
            let parts: Vec<(Option<&String>, u64)> =
                values.iter().map(|(v, l)| (Some(v), *l)).collect();
            assert_eq!(
                multipart_checksum(alg, true, &parts).unwrap(),
                sum(&body),
                "{alg}"
            );
            let composite = multipart_checksum(alg, false, &parts).unwrap();
            assert!(composite.ends_with("-4"), "{composite}");
        }
        assert_eq!(multipart_checksum("crc32", false, &[(None, 3)]), None);
    }
}
