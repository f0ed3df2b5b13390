//! The erasure codec: the only module that knows which Reed-Solomon library Tessera uses
//! (`reed-solomon-erasure` defines the field and the matrix; [`kernel`] multiplies).
//!
//! A stripe of object bytes is split into `k` equal data pieces (the last stripe of an object
//! is zero-padded to a multiple of `k`), and `m` parity pieces are computed from them. Any
//! `k` of the `k + m` pieces give back the data pieces. Reconstruction does not check
//! integrity: pieces must be verified (the nodes' chunk checksums) before they get here.

use bytes::{Bytes, BytesMut};
use kernel::Matrix;
use reed_solomon_erasure::galois_8;
use std::mem::MaybeUninit;

pub mod kernel;

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
    /// Data written by a codec this build does not know (never decoded by a wrong one).
    #[error("unknown codec {0:?}; this build reads {CODEC_NAME:?}")]
    UnknownCodec(String),
    /// Fewer than k pieces, or pieces of different sizes.
    #[error("cannot reconstruct: {0}")]
    TooFewShards(String),
}

/// A validated `k + m` Reed-Solomon codec over GF(2^8).
///
/// The encoding matrix is `reed_solomon_erasure`'s (read off the library once, by encoding
/// unit vectors), so parity is exactly the library's; the multiplication itself runs in
/// [`kernel`], which uses GFNI vector instructions where the CPU has them.
#[derive(Debug)]
pub struct ErasureCodec {
    k: usize,
    m: usize,
    /// All `k + m` rows of the systematic encoding matrix (identity on top).
    rows: Vec<Vec<u8>>,
    /// The `m` parity rows, prepared for the kernel.
    parity: Matrix,
}

impl ErasureCodec {
    /// A codec with `k` data and `m` parity pieces per stripe.
    pub fn new(k: usize, m: usize) -> Result<Self, CodecError> {
        if k == 0 || k + m > 256 {
            return Err(CodecError::InvalidParams { k, m });
        }
        let mut rows: Vec<Vec<u8>> = (0..k)
            .map(|r| (0..k).map(|c| u8::from(r == c)).collect())
            .collect();
        if m > 0 {
            let rs = reed_solomon_erasure::galois_8::ReedSolomon::new(k, m)
                .map_err(|_| CodecError::InvalidParams { k, m })?;
            // Column c of the parity rows is the parity of the unit vector e_c.
            let columns: Vec<Vec<u8>> = (0..k)
                .map(|c| {
                    let data: Vec<[u8; 1]> = (0..k).map(|i| [u8::from(i == c)]).collect();
                    let mut parity = vec![[0u8; 1]; m];
                    rs.encode_sep(&data, &mut parity)
                        .expect("shard counts and sizes are valid by construction");
                    parity.iter().map(|p| p[0]).collect()
                })
                .collect();
            let parity_rows = (0..m).map(|r| columns.iter().map(|col| col[r]).collect());
            rows.extend(parity_rows);
        }
        let parity = Matrix::new(rows[k..].to_vec());
        Ok(ErasureCodec { k, m, rows, parity })
    }

    /// The codec for reading data recorded as written by codec `name` with `k + m`.
    pub fn for_recorded(name: &str, k: usize, m: usize) -> Result<Self, CodecError> {
        if name != CODEC_NAME {
            return Err(CodecError::UnknownCodec(name.to_string()));
        }
        Self::new(k, m)
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
        let parity = self.parity(&out);
        out.extend(parity);
        out
    }

    /// [`ErasureCodec::encode`] of a stripe that may be shared: a full stripe (a multiple of
    /// k bytes) is sliced without a copy, a short one copied and padded.
    pub fn encode_frozen(&self, stripe: Bytes) -> Vec<Bytes> {
        let piece = self.piece_len(stripe.len());
        if piece * self.k != stripe.len() {
            return self.encode(BytesMut::from(&stripe[..]));
        }
        let mut out: Vec<Bytes> = (0..self.k)
            .map(|i| stripe.slice(i * piece..(i + 1) * piece))
            .collect();
        let parity = self.parity(&out);
        out.extend(parity);
        out
    }

    /// The `m` parity pieces of `k` equally long data pieces (newly allocated, not zeroed).
    pub fn parity(&self, data: &[Bytes]) -> Vec<Bytes> {
        assert_eq!(data.len(), self.k, "one data piece per k");
        apply(&self.parity, data)
    }

    /// Like [`ErasureCodec::parity`], into caller-owned buffers (for callers that reuse them).
    /// Panics unless there are `k` data and `m` parity slices, all of one length.
    pub fn parity_into(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) {
        let mut outs: Vec<&mut [MaybeUninit<u8>]> = parity
            .iter_mut()
            // SAFETY: u8 and MaybeUninit<u8> have one layout; the kernel only writes.
            .map(|p| unsafe { &mut *(std::ptr::from_mut::<[u8]>(p) as *mut [MaybeUninit<u8>]) })
            .collect();
        self.parity.mul(data, &mut outs);
    }

    /// Returns the `k` data pieces given any `k` of the `k + m` pieces (`None` = missing).
    /// Present data pieces are passed through without copying.
    pub fn reconstruct_data(&self, pieces: Vec<Option<Bytes>>) -> Result<Vec<Bytes>, CodecError> {
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
        let missing: Vec<usize> = (0..self.k).filter(|&i| pieces[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(pieces.into_iter().take(self.k).flatten().collect());
        }
        // Any k present pieces determine the data: invert their rows of the encoding matrix.
        let chosen: Vec<usize> = (0..self.k + self.m)
            .filter(|&i| pieces[i].is_some())
            .take(self.k)
            .collect();
        let inverse = invert(chosen.iter().map(|&r| self.rows[r].clone()).collect())
            .expect("any k rows of a Reed-Solomon encoding matrix are independent");
        let decode = Matrix::new(missing.iter().map(|&d| inverse[d].clone()).collect());
        let inputs: Vec<Bytes> = chosen
            .iter()
            .map(|&i| pieces[i].clone().expect("chosen pieces are present"))
            .collect();
        let mut rebuilt = apply(&decode, &inputs).into_iter();
        Ok(pieces
            .into_iter()
            .take(self.k)
            .map(|p| p.unwrap_or_else(|| rebuilt.next().expect("one per missing piece")))
            .collect())
    }

    /// Returns all `k + m` pieces (data and parity) given any `k` of them: what repair writes.
    pub fn reconstruct_all(&self, pieces: Vec<Option<Bytes>>) -> Result<Vec<Bytes>, CodecError> {
        if pieces.iter().all(|p| p.is_some()) {
            return Ok(pieces.into_iter().flatten().collect());
        }
        let data = self.reconstruct_data(pieces.clone())?;
        let missing: Vec<usize> = (0..self.m)
            .filter(|&p| pieces[self.k + p].is_none())
            .collect();
        let rows = Matrix::new(
            missing
                .iter()
                .map(|&p| self.rows[self.k + p].clone())
                .collect(),
        );
        let mut rebuilt = apply(&rows, &data).into_iter();
        let mut out = data;
        // Keep received parity as is; computed parity equals it for consistent pieces.
        out.extend(
            pieces
                .into_iter()
                .skip(self.k)
                .map(|p| p.unwrap_or_else(|| rebuilt.next().expect("one per missing piece"))),
        );
        Ok(out)
    }
}

/// `matrix * inputs` into freshly allocated pieces (not zeroed first: the kernel writes
/// every byte).
fn apply(matrix: &Matrix, inputs: &[Bytes]) -> Vec<Bytes> {
    let len = inputs.first().map_or(0, |p| p.len());
    let mut bufs: Vec<Vec<u8>> = (0..matrix.rows())
        .map(|_| Vec::with_capacity(len))
        .collect();
    if matrix.rows() > 0 && len > 0 {
        let ins: Vec<&[u8]> = inputs.iter().map(|p| &p[..]).collect();
        let mut outs: Vec<&mut [MaybeUninit<u8>]> = bufs
            .iter_mut()
            .map(|b| &mut b.spare_capacity_mut()[..len])
            .collect();
        matrix.mul(&ins, &mut outs);
    }
    bufs.into_iter()
        .map(|mut b| {
            // SAFETY: `Matrix::mul` initialised all `len` bytes (or `len` is 0).
            unsafe { b.set_len(len) };
            Bytes::from(b)
        })
        .collect()
}

/// Inverse of a square matrix over GF(2^8) (Gauss-Jordan), `None` if singular.
fn invert(mut a: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let n = a.len();
    let mut inv: Vec<Vec<u8>> = (0..n)
        .map(|r| (0..n).map(|c| u8::from(r == c)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r][col] != 0)?;
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let scale = galois_8::div(1, a[col][col]);
        for c in 0..n {
            a[col][c] = galois_8::mul(a[col][c], scale);
            inv[col][c] = galois_8::mul(inv[col][c], scale);
        }
        for r in 0..n {
            let f = a[r][col];
            if r != col && f != 0 {
                for c in 0..n {
                    a[r][c] ^= galois_8::mul(f, a[col][c]);
                    inv[r][c] ^= galois_8::mul(f, inv[col][c]);
                }
            }
        }
    }
    Some(inv)
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
    fn refuses_data_of_an_unknown_codec() {
        assert!(ErasureCodec::for_recorded(CODEC_NAME, 4, 2).is_ok());
        assert_eq!(
            ErasureCodec::for_recorded("rs-gf16-v9", 4, 2).unwrap_err(),
            CodecError::UnknownCodec("rs-gf16-v9".into())
        );
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
        /// Parity is byte for byte what the library computes on its own.
        #[test]
        fn parity_equals_the_library(k in 1usize..20, m in 1usize..8, len in 0usize..3000, seed: u8) {
            let codec = ErasureCodec::new(k, m).unwrap();
            let bytes = data(len * k, seed);
            let pieces = codec.encode(BytesMut::from(&bytes[..]));
            let rs = reed_solomon_erasure::galois_8::ReedSolomon::new(k, m).unwrap();
            let mut parity = vec![vec![0u8; len]; m];
            if len > 0 {
                rs.encode_sep(&pieces[..k], &mut parity).unwrap();
            }
            for (ours, theirs) in pieces[k..].iter().zip(&parity) {
                prop_assert_eq!(&ours[..], &theirs[..]);
            }
        }

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
