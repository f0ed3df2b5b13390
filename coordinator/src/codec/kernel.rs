//! The GF(2^8) matrix-times-pieces kernel behind encode and reconstruct.
//!
//! `outputs[r] = sum over i of coef[r][i] * inputs[i]` in the field of `reed_solomon_erasure`'s
//! `galois_8` (whose scalar `mul` defines every constant used here, so results are identical
//! to the library's by construction; tests check it on random inputs).
//!
//! On x86-64 CPUs with GFNI and AVX-512BW the product is computed 64 bytes at a time with
//! `vgf2p8affineqb`: multiplying by a constant is a linear map of GF(2)^8, i.e. an 8x8 bit
//! matrix, which that instruction applies to every byte. Each input vector is loaded once
//! and multiplied into up to [`GROUP`] outputs held in registers, so a stripe is read from
//! memory once per group of parity pieces (one pass for m <= 8). Elsewhere the library's own
//! slice routines are used.

use reed_solomon_erasure::galois_8;

/// Most output rows computed in one pass over the inputs.
pub const GROUP: usize = 8;

/// A coefficient matrix prepared for the kernel: `rows x cols` field elements, and for each
/// the 8x8 bit matrix (as the `u64` operand of `vgf2p8affineqb`).
#[derive(Debug, Clone)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    coef: Vec<u8>,
    affine: Vec<u64>,
}

impl Matrix {
    /// A matrix from its rows (all of equal length).
    pub fn new(rows: Vec<Vec<u8>>) -> Matrix {
        let cols = rows.first().map_or(0, |r| r.len());
        assert!(rows.iter().all(|r| r.len() == cols), "ragged matrix");
        let coef: Vec<u8> = rows.into_iter().flatten().collect();
        let affine = coef.iter().map(|&c| affine_of(c)).collect();
        Matrix {
            rows: coef.len().checked_div(cols).unwrap_or(0),
            cols,
            coef,
            affine,
        }
    }

    /// Number of output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The field element at `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> u8 {
        self.coef[r * self.cols + c]
    }

    /// Computes `outputs[r] = sum_i self[r][i] * inputs[i]`. Every output byte is written
    /// (outputs need not be initialised; `MaybeUninit` lets callers skip zeroing).
    ///
    /// Panics if the counts do not match the matrix or the slices differ in length.
    pub fn mul(&self, inputs: &[&[u8]], outputs: &mut [&mut [std::mem::MaybeUninit<u8>]]) {
        assert_eq!(inputs.len(), self.cols, "one input per column");
        assert_eq!(outputs.len(), self.rows, "one output per row");
        let len = inputs.first().map_or(0, |i| i.len());
        assert!(
            inputs.iter().all(|i| i.len() == len),
            "inputs differ in length"
        );
        assert!(
            outputs.iter().all(|o| o.len() == len),
            "outputs differ in length"
        );
        if len == 0 || self.rows == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if gfni_available() {
            for (g, chunk) in outputs.chunks_mut(GROUP).enumerate() {
                // SAFETY: the CPU supports the instructions (checked above); lengths checked.
                unsafe { x86::mul_group(self, g * GROUP, inputs, chunk, len) };
            }
            return;
        }
        self.mul_portable(inputs, outputs, len);
    }

    /// The same product with the library's slice routines (any CPU).
    fn mul_portable(
        &self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [std::mem::MaybeUninit<u8>]],
        len: usize,
    ) {
        if len == 0 {
            return; // the library's routines index the first byte
        }
        for (r, out) in outputs.iter_mut().enumerate() {
            // The library's routines need initialised memory.
            for b in out.iter_mut() {
                b.write(0);
            }
            // SAFETY: every byte was just initialised.
            let out: &mut [u8] =
                unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast(), len) };
            for (i, input) in inputs.iter().enumerate() {
                galois_8::mul_slice_xor(self.at(r, i), input, out);
            }
        }
    }
}

/// Whether the vector kernel runs on this CPU.
pub fn gfni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("gfni")
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The `vgf2p8affineqb` operand multiplying a byte by `c`: output bit `i` is the parity of
/// `x AND byte[7 - i]`, so byte `7 - i` lists the input bits `j` whose product `c * 2^j`
/// has bit `i` set.
fn affine_of(c: u8) -> u64 {
    let mut a = 0u64;
    for i in 0..8 {
        let mut row = 0u8;
        for j in 0..8 {
            if (galois_8::mul(c, 1 << j) >> i) & 1 == 1 {
                row |= 1 << j;
            }
        }
        a |= (row as u64) << (8 * (7 - i));
    }
    a
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{galois_8, Matrix, GROUP};
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Rows `row0 ..` (at most [`GROUP`]) of `m * inputs` into `outputs`.
    ///
    /// # Safety
    /// The CPU must support GFNI, AVX-512F and AVX-512BW; all slices must be `len` long.
    #[target_feature(enable = "gfni,avx512f,avx512bw")]
    pub unsafe fn mul_group(
        m: &Matrix,
        row0: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [MaybeUninit<u8>]],
        len: usize,
    ) {
        match outputs.len() {
            1 => group::<1>(m, row0, inputs, outputs, len),
            2 => group::<2>(m, row0, inputs, outputs, len),
            3 => group::<3>(m, row0, inputs, outputs, len),
            4 => group::<4>(m, row0, inputs, outputs, len),
            5 => group::<5>(m, row0, inputs, outputs, len),
            6 => group::<6>(m, row0, inputs, outputs, len),
            7 => group::<7>(m, row0, inputs, outputs, len),
            8 => group::<8>(m, row0, inputs, outputs, len),
            n => unreachable!("group of {n} > {GROUP}"),
        }
    }

    #[target_feature(enable = "gfni,avx512f,avx512bw")]
    unsafe fn group<const G: usize>(
        m: &Matrix,
        row0: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [MaybeUninit<u8>]],
        len: usize,
    ) {
        let k = inputs.len();
        // Bit matrices for this group, laid out input-major so the inner loop walks them.
        let mut mats: Vec<[__m512i; G]> = Vec::with_capacity(k);
        for i in 0..k {
            let mut row = [_mm512_setzero_si512(); G];
            for (g, slot) in row.iter_mut().enumerate() {
                *slot = _mm512_set1_epi64(m.affine[(row0 + g) * m.cols + i] as i64);
            }
            mats.push(row);
        }
        let out_ptrs: [*mut u8; G] = std::array::from_fn(|g| outputs[g].as_mut_ptr().cast());
        let vec_end = len - len % 64;
        let mut off = 0;
        while off < vec_end {
            let mut acc = [_mm512_setzero_si512(); G];
            for (input, mat) in inputs.iter().zip(&mats) {
                let d = _mm512_loadu_si512(input.as_ptr().add(off).cast());
                for g in 0..G {
                    acc[g] =
                        _mm512_xor_si512(acc[g], _mm512_gf2p8affine_epi64_epi8::<0>(d, mat[g]));
                }
            }
            for g in 0..G {
                _mm512_storeu_si512(out_ptrs[g].add(off).cast(), acc[g]);
            }
            off += 64;
        }
        if vec_end < len {
            for (g, out) in out_ptrs.iter().enumerate() {
                // Initialise the tail before making a byte slice of it.
                std::ptr::write_bytes(out.add(vec_end), 0, len - vec_end);
                let tail = std::slice::from_raw_parts_mut(out.add(vec_end), len - vec_end);
                for (i, input) in inputs.iter().enumerate() {
                    galois_8::mul_slice_xor(m.at(row0 + g, i), &input[vec_end..], tail);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::mem::MaybeUninit;

    fn run(m: &Matrix, inputs: &[Vec<u8>], portable: bool) -> Vec<Vec<u8>> {
        let len = inputs.first().map_or(0, |i| i.len());
        let mut outs: Vec<Vec<MaybeUninit<u8>>> = (0..m.rows())
            .map(|_| vec![MaybeUninit::new(0xAA); len])
            .collect();
        let ins: Vec<&[u8]> = inputs.iter().map(|v| &v[..]).collect();
        let mut refs: Vec<&mut [MaybeUninit<u8>]> = outs.iter_mut().map(|o| &mut o[..]).collect();
        if portable {
            m.mul_portable(&ins, &mut refs, len);
        } else {
            m.mul(&ins, &mut refs);
        }
        outs.into_iter()
            .map(|o| o.into_iter().map(|b| unsafe { b.assume_init() }).collect())
            .collect()
    }

    #[test]
    fn affine_operand_multiplies_like_the_field() {
        // The scalar meaning of the operand, bit by bit, against galois_8::mul.
        for c in 0..=255u8 {
            let a = affine_of(c);
            for x in 0..=255u8 {
                let mut y = 0u8;
                for i in 0..8 {
                    let row = (a >> (8 * (7 - i))) as u8;
                    y |= (((row & x).count_ones() & 1) as u8) << i;
                }
                assert_eq!(y, galois_8::mul(c, x), "c={c} x={x}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// On both paths (vector where the CPU has it, and the portable one), each output byte is the field sum of
        /// coefficient times input byte, for any shape (more than one group of rows included)
        /// and any length (vector body plus tail).
        #[test]
        fn matches_scalar_field_arithmetic(
            rows in 1usize..20, cols in 1usize..20, len in 0usize..700, seed: u64,
        ) {
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s as u8 };
            let coef: Vec<Vec<u8>> = (0..rows).map(|_| (0..cols).map(|_| next()).collect()).collect();
            let inputs: Vec<Vec<u8>> = (0..cols).map(|_| (0..len).map(|_| next()).collect()).collect();
            let m = Matrix::new(coef.clone());
            for portable in [false, true] {
                let got = run(&m, &inputs, portable);
                for r in 0..rows {
                    for b in 0..len {
                        let want = (0..cols)
                            .fold(0u8, |acc, i| acc ^ galois_8::mul(coef[r][i], inputs[i][b]));
                        prop_assert_eq!(got[r][b], want, "row {} byte {} portable {}", r, b, portable);
                    }
                }
            }
        }
    }
}
