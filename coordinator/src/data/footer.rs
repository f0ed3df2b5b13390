//! A segment's footer: what it says of each object packed in it (names, place, the metadata a
//! PUT gave, tags and object lock), after the objects' bytes: the [`Listed`] entries (JSON),
//! their length (8 bytes LE) and [`MAGIC`]. It makes a segment self-describing, so a
//! metadata rebuild restores the objects from the nodes alone.

use crate::error::ApiError;
use crate::meta::{ObjectMeta, Packed};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tessera_node::ObjectVersion;

/// Last bytes of every segment's data.
pub const MAGIC: &[u8; 8] = b"TSSEG001";

/// What a segment's footer says of one object in it: with the object's bytes (which give its
/// MD5 and blake3 again), enough to restore its metadata.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listed {
    b: String,
    k: String,
    v: ObjectVersion,
    /// Offset in the segment's data.
    o: u64,
    /// Length.
    n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    u: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    h: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    c: BTreeMap<String, String>,
    /// Tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    g: BTreeMap<String, String>,
    /// Object lock retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<crate::meta::Retention>,
    /// Object lock legal hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    l: bool,
}

impl Listed {
    /// The entry of `obj` at `offset` of the segment's data.
    pub fn of(obj: &ObjectMeta, offset: u64) -> Self {
        Listed {
            b: obj.bucket.clone(),
            k: obj.key.clone(),
            v: obj.version,
            o: offset,
            n: obj.size,
            t: obj.content_type.clone(),
            u: obj.user_meta.clone(),
            h: obj.headers.clone(),
            c: obj.checksums.clone(),
            g: obj.tags.clone(),
            r: obj.retention.clone(),
            l: obj.legal_hold,
        }
    }

    /// Bucket, key and version of the object.
    pub fn names(&self) -> (&str, &str, ObjectVersion) {
        (&self.b, &self.k, self.v)
    }

    /// The object's metadata, from segment `seg` and its `data`; `None` if the entry points
    /// outside the data.
    pub fn restore(self, seg: &ObjectMeta, data: &[u8]) -> Option<ObjectMeta> {
        let bytes = data.get(self.o as usize..(self.o + self.n) as usize)?;
        Some(ObjectMeta {
            bucket: self.b,
            key: self.k,
            version: self.v,
            size: self.n,
            etag: hex::encode(Md5::digest(bytes)),
            parts: Vec::new(),
            manifest: None,
            upload: None,
            content_type: self.t,
            user_meta: self.u,
            headers: self.h,
            checksums: self.c,
            checksum_type: None,
            last_modified_ms: self.v.millis(),
            packed: Some(Packed {
                segment: seg.version,
                offset: self.o,
                blake3: blake3::hash(bytes).to_hex().to_string(),
                ec: seg.parts.first()?.ec,
            }),
            fill: None,
            acl: None,
            seq: None,
            null_version: false,
            delete_marker: false,
            tags: self.g,
            retention: self.r,
            legal_hold: self.l,
        })
    }
}

/// The objects a segment's data lists in its footer (what a metadata rebuild restores).
pub fn footer(data: &[u8]) -> Result<Vec<Listed>, ApiError> {
    let bad = || ApiError::Internal("segment footer is malformed".into());
    let n = data.len();
    if n < 16 || &data[n - 8..] != MAGIC {
        return Err(bad());
    }
    let len = u64::from_le_bytes(data[n - 16..n - 8].try_into().expect("8 bytes")) as usize;
    let start = (n - 16).checked_sub(len).ok_or_else(bad)?;
    serde_json::from_slice(&data[start..n - 16]).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_rejects_garbage() {
        let obj = crate::meta::conformance::object("bkt", "k", 3);
        let index = serde_json::to_vec(&vec![Listed::of(&obj, 0)]).unwrap();
        let mut data = b"abc".to_vec();
        data.extend_from_slice(&index);
        data.extend_from_slice(&(index.len() as u64).to_le_bytes());
        data.extend_from_slice(MAGIC);
        let got = footer(&data).unwrap();
        assert_eq!((got.len(), got[0].k.as_str(), got[0].n), (1, "k", 3));
        assert!(footer(b"short").is_err());
        let mut bad = data.clone();
        let n = bad.len();
        bad[n - 16..n - 8].copy_from_slice(&(u64::MAX).to_le_bytes());
        assert!(footer(&bad).is_err());
    }
}
