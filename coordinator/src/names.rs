//! Names and parameters parsed and validated once, at the edge.

use crate::error::ApiError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated bucket name (S3 rules: 3 to 63 characters of lowercase letters, digits, `-`
/// and `.`, starting and ending with a letter or digit, no `..`, not an IP address).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketName(String);

impl BucketName {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| Err(ApiError::InvalidBucketName(format!("{s:?}: {why}")));
        if s.len() < 3 || s.len() > 63 {
            return bad("must be 3 to 63 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return bad("only lowercase letters, digits, '-' and '.' are allowed");
        }
        let first = s.as_bytes()[0];
        let last = s.as_bytes()[s.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return bad("must start and end with a letter or digit");
        }
        if s.contains("..") || s.contains(".-") || s.contains("-.") {
            return bad("must not contain '..', '.-' or '-.'");
        }
        if s.parse::<std::net::Ipv4Addr>().is_ok() {
            return bad("must not be an IP address");
        }
        Ok(BucketName(s.to_string()))
    }
    /// One of the reserved buckets (`.journal`), which no client can name.
    pub fn reserved(s: &str) -> Self {
        debug_assert!(s.starts_with('.'));
        BucketName(s.to_string())
    }
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Longest accepted key, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// A validated object key: 1 to 1024 bytes of UTF-8, no NUL, no `..` path segment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `s`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.len() > MAX_KEY_LEN {
            return Err(ApiError::KeyTooLong(s.len()));
        }
        if s.is_empty() {
            return Err(ApiError::InvalidArgument(
                "object key must not be empty".into(),
            ));
        }
        if s.contains('\0') {
            return Err(ApiError::InvalidArgument(
                "object key must not contain NUL".into(),
            ));
        }
        if s.split('/').any(|seg| seg == "..") {
            return Err(ApiError::InvalidArgument(
                "object key must not contain a '..' segment".into(),
            ));
        }
        Ok(ObjectKey(s.to_string()))
    }
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Erasure parameters `k+m`, as in `--ec 4+2` and the `x-tessera-ec` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcSpec {
    /// Data shards per stripe.
    pub k: u16,
    /// Parity shards per stripe.
    pub m: u16,
}

impl EcSpec {
    /// Total shards per stripe.
    pub fn total(&self) -> usize {
        (self.k + self.m) as usize
    }
}

impl std::str::FromStr for EcSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (k, m) = s
            .trim()
            .split_once('+')
            .ok_or_else(|| format!("erasure spec {s:?} must look like K+M, e.g. 4+2"))?;
        let k: u16 = k.trim().parse().map_err(|_| format!("bad K in {s:?}"))?;
        let m: u16 = m.trim().parse().map_err(|_| format!("bad M in {s:?}"))?;
        if k < 1 || k as usize + m as usize > 256 {
            return Err(format!(
                "erasure spec {s:?}: need K >= 1, M >= 0 and K+M <= 256"
            ));
        }
        Ok(EcSpec { k, m })
    }
}

impl fmt::Display for EcSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.k, self.m)
    }
}

/// Parses a human size such as `16MiB`, `64KiB`, `1GiB`, `10MB`, `128.0 KiB` or `4096`
/// (`bytesize`'s format: KB, MB, GB are powers of 1000, KiB, MiB, GiB of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.0)
        .map_err(|e| format!("bad size {s:?}: {e}"))
}

/// Parses a human duration such as `250ms`, `5s`, `2m`, `1h` or `7d` (`humantime`'s
/// format), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|e| format!("bad duration {s:?}: {e}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("bad duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.2", "a1b"] {
            assert!(BucketName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "a_b",
            "a..b",
            "-ab",
            "ab-",
            "192.168.1.1",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(BucketName::parse(bad), Err(ApiError::InvalidBucketName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys() {
        assert!(ObjectKey::parse("a/b/c.txt").is_ok());
        assert!(ObjectKey::parse("a..b").is_ok());
        assert!(matches!(
            ObjectKey::parse(&"k".repeat(1025)),
            Err(ApiError::KeyTooLong(1025))
        ));
        assert!(ObjectKey::parse(&"k".repeat(1024)).is_ok());
        assert!(matches!(
            ObjectKey::parse("a/../b"),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            ObjectKey::parse(".."),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            ObjectKey::parse("a\0b"),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn ec_and_sizes() {
        assert_eq!("4+2".parse::<EcSpec>().unwrap(), EcSpec { k: 4, m: 2 });
        assert_eq!("1+0".parse::<EcSpec>().unwrap(), EcSpec { k: 1, m: 0 });
        for bad in ["0+2", "4-2", "x+1", "200+57", "4+"] {
            assert!(bad.parse::<EcSpec>().is_err(), "{bad}");
        }
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12XB").is_err());
        assert_eq!(parse_size("128.0 KiB").unwrap(), 128 << 10);
        assert_eq!(parse_size("3MB").unwrap(), 3_000_000);
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
