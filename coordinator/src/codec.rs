//! The erasure codec: the only file that knows which Reed-Solomon library Tessera uses.
//!
//! A stripe of object bytes is split into `k` equal data pieces (the last stripe of an object
//! is zero-padded to a multiple of `k`), and `m` parity pieces are computed from them. Any
//! `k` of the `k + m` pieces give back the data pieces. Reconstruction does not check
//! integrity: pieces must be verified (the nodes' chunk checksums) before they get here.

use bytes::{Bytes, BytesMut};
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Name recorded in object metadata and shard headers for data written by this codec, so a
/// future switch of library or parameters can keep reading old objects.
pub const CODEC_NAME: &str = "rs-gf8-v1";

/// Errors of the codec.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// k or m outside what the codec supports.
    #[error("invalid erasure parameters {k}+{m}: need k >= 1 and k + m <= 256")]
    InvalidParams {
        /// Data shards.
        k: usize,
        /// Parity shards.
        m: usize,
    },
    /// Fewer than k pieces, or pieces of different sizes.
    #[error("cannot reconstruct: {0}")]
    TooFewShards(String),
}

/// A validated `k + m` Reed-Solomon codec over GF(2^8).
#[derive(Debug)]
pub struct ErasureCodec {
    k: usize,
    m: usize,
    /// `None` when `m == 0` (the library needs at least one parity shard).
    rs: Option<ReedSolomon>,
}

impl ErasureCodec {
    /// A codec with `k` data and `m` parity pieces per stripe.
    pub fn new(k: usize, m: usize) -> Result<Self, CodecError> {
        if k == 0 || k + m > 256 {
            return Err(CodecError::InvalidParams { k, m });
        }
        let rs = if m == 0 {
            None
        } else {
            Some(ReedSolomon::new(k, m).map_err(|_| CodecError::InvalidParams { k, m })?)
        };
        Ok(ErasureCodec { k, m, rs })
    }

    /// Data pieces per stripe.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Parity pieces per stripe.
    pub fn m(&self) -> usize {
        self.m
    }

    /// Piece length for a stripe holding `len` bytes of data.
    pub fn piece_len(&self, len: usize) -> usize {
        len.div_ceil(self.k)
    }

    /// Splits `stripe` (any length) into `k` data pieces and appends `m` parity pieces. The data
    /// pieces share `stripe`'s buffer; only parity is newly allocated.
    pub fn encode(&self, mut stripe: BytesMut) -> Vec<Bytes> {
        let piece = self.piece_len(stripe.len());
        stripe.resize(piece * self.k, 0);
        let data = stripe.freeze();
        let mut out: Vec<Bytes> = (0..self.k)
            .map(|i| data.slice(i * piece..(i + 1) * piece))
            .collect();
        if let Some(rs) = &self.rs {
            let mut parity = vec![vec![0u8; piece]; self.m];
            if piece > 0 {
                rs.encode_sep(&out, &mut parity)
                    .expect("shard counts and sizes are valid by construction");
            }
            out.extend(parity.into_iter().map(Bytes::from));
        }
        out
    }

    /// Returns the `k` data pieces given any `k` of the `k + m` pieces (`None` = missing).
    /// Present data pieces are passed through without copying.
    pub fn reconstruct_data(
        &self,
        mut pieces: Vec<Option<Bytes>>,
    ) -> Result<Vec<Bytes>, CodecError> {
        if pieces.len() != self.k + self.m {
            return Err(CodecError::TooFewShards(format!(
                "{} pieces given for {}+{}",
                pieces.len(),
                self.k,
                self.m
            )));
        }
        let present = pieces.iter().filter(|p| p.is_some()).count();
        if present < self.k {
            return Err(CodecError::TooFewShards(format!(
                "{present} of {} needed",
                self.k
            )));
        }
        let len = pieces.iter().flatten().next().map_or(0, |p| p.len());
        if pieces.iter().flatten().any(|p| p.len() != len) {
            return Err(CodecError::TooFewShards("pieces differ in length".into()));
        }
        if pieces[..self.k].iter().all(|p| p.is_some()) {
            pieces.truncate(self.k);
            return Ok(pieces.into_iter().flatten().collect());
        }
        let rs = self
            .rs
            .as_ref()
            .expect("a missing data piece implies m > 0");
        let mut work: Vec<Option<Vec<u8>>> = pieces
            .iter()
            .map(|p| p.as_ref().map(|b| b.to_vec()))
            .collect();
        if len > 0 {
            rs.reconstruct_data(&mut work)
                .map_err(|e| CodecError::TooFewShards(format!("{e:?}")))?;
        }
        Ok(work
            .into_iter()
            .zip(pieces)
            .take(self.k)
            .map(|(w, orig)| orig.unwrap_or_else(|| Bytes::from(w.unwrap_or_else(|| vec![0; len]))))
            .collect())
    }
}

impl ErasureCodec {
    /// Returns all `k + m` pieces (data and parity) given any `k` of them: what repair writes.
    pub fn reconstruct_all(&self, pieces: Vec<Option<Bytes>>) -> Result<Vec<Bytes>, CodecError> {
        if pieces.iter().all(|p| p.is_some()) {
            return Ok(pieces.into_iter().flatten().collect());
        }
        let data = self.reconstruct_data(pieces.clone())?;
        if self.m == 0 {
            return Ok(data);
        }
        let len = data.first().map_or(0, |d| d.len());
        let mut parity = vec![vec![0u8; len]; self.m];
        if len > 0 {
            let rs = self.rs.as_ref().expect("m > 0");
            rs.encode_sep(&data, &mut parity)
                .map_err(|e| CodecError::TooFewShards(format!("{e:?}")))?;
        }
        let mut out = data;
        for (i, p) in parity.into_iter().enumerate() {
            // Keep received parity as is; computed parity equals it for consistent pieces.
            out.push(pieces[self.k + i].clone().unwrap_or_else(|| Bytes::from(p)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(17) ^ seed)
            .collect()
    }

    #[test]
    fn rejects_invalid_params() {
        assert!(ErasureCodec::new(0, 2).is_err());
        assert!(ErasureCodec::new(200, 57).is_err());
        assert!(ErasureCodec::new(1, 0).is_ok());
        assert!(ErasureCodec::new(17, 3).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Any k of k+m pieces give back exactly the stripe bytes, for any length (0 and
        /// lengths not divisible by k included) and any erasure pattern.
        #[test]
        fn any_k_pieces_rebuild_the_stripe(
            k in 1usize..12, m in 0usize..6, len in 0usize..5000, seed: u8, mask_seed: u64,
        ) {
            let codec = ErasureCodec::new(k, m).unwrap();
            let bytes = data(len, seed);
            let pieces = codec.encode(BytesMut::from(&bytes[..]));
            prop_assert_eq!(pieces.len(), k + m);
            // Erase exactly m pieces chosen by mask_seed.
            let mut order: Vec<usize> = (0..k + m).collect();
            let mut s = mask_seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            let mut given: Vec<Option<Bytes>> = pieces.into_iter().map(Some).collect();
            for &i in &order[..m] {
                given[i] = None;
            }
            let all = codec.reconstruct_all(given.clone()).unwrap();
            let original = codec.encode(BytesMut::from(&bytes[..]));
            prop_assert_eq!(&all, &original, "reconstruct_all gives back every piece");
            let out = codec.reconstruct_data(given.clone()).unwrap();
            let joined: Vec<u8> = out.iter().flat_map(|p| p.iter().copied()).take(len).collect();
            prop_assert_eq!(joined, bytes);
            // One more erasure than m must be refused, never answered with wrong bytes.
            if m < k + m {
                let mut fewer = given;
                if let Some(i) = order[m..].first() {
                    fewer[*i] = None;
                    prop_assert!(codec.reconstruct_data(fewer).is_err());
                }
            }
        }
    }
}

#[cfg(test)]
mod format {
    use super::*;

    /// blake3 of the parity the codec computes for a fixed stripe, per k+m: parity is part of
    /// the on-disk format (`rs-gf8-v1`), so any change of library or matrix must keep these
    /// (or bump the codec name and keep the old codec for old objects).
    #[test]
    fn parity_matches_the_recorded_format() {
        let mut out = Vec::new();
        for (k, m) in [(4usize, 2usize), (6, 3), (10, 4), (17, 3), (1, 2)] {
            let codec = ErasureCodec::new(k, m).unwrap();
            let mut stripe = vec![0u8; k * 4096 + 5];
            let mut h = blake3::Hasher::new();
            h.update(b"rs-gf8-v1 format");
            h.finalize_xof().fill(&mut stripe);
            let pieces = codec.encode(BytesMut::from(&stripe[..]));
            let mut ph = blake3::Hasher::new();
            for p in &pieces[k..] {
                ph.update(p);
            }
            out.push(format!("{k}+{m}:{}", &ph.finalize().to_hex()[..16]));
        }
        assert_eq!(out.join(" "), GOLDEN);
    }

    const GOLDEN: &str = "4+2:6e7688d3b3c7b760 6+3:b9770bf6d2667bd2 10+4:c992c13c482cf106 17+3:18602522940117d6 1+2:3dea3c519e00f5c1";
}
