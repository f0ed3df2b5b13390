//! Encode throughput measured the way `benches/isal/encode.c` measures ISA-L, so the two can
//! be compared in one run (`benches/isal/compare.sh`): single thread, 1 MiB data pieces
//! prepared once, parity computed over and over for 0.3 s, median of 7 such rates.
//!
//! Prints "k+m GB/s" (GB = 1e9 bytes of data in) for parity written into buffers allocated
//! once (as the C program does), and "k+m/alloc GB/s" for parity in buffers allocated per
//! call (what `ErasureCodec::encode` does in a PUT).
//!
//! Run: `cargo bench --bench codec_rate`

use bytes::Bytes;
use std::time::Instant;
use tessera_coordinator::ErasureCodec;

fn median_rate(bytes_per_call: usize, mut call: impl FnMut()) -> f64 {
    let mut rates = Vec::with_capacity(7);
    for _ in 0..7 {
        let t0 = Instant::now();
        let mut iters = 0u64;
        while t0.elapsed().as_secs_f64() < 0.3 {
            call();
            iters += 1;
        }
        rates.push(iters as f64 * bytes_per_call as f64 / t0.elapsed().as_secs_f64() / 1e9);
    }
    rates.sort_by(f64::total_cmp);
    rates[3]
}

fn main() {
    let len = 1usize << 20;
    for (k, m) in [(4usize, 2usize), (6, 3), (10, 4), (17, 3)] {
        let codec = ErasureCodec::new(k, m).expect("valid shape");
        let data: Vec<Bytes> = (0..k)
            .map(|i| {
                let mut v = vec![0u8; len];
                let mut h = blake3::Hasher::new();
                h.update(&[i as u8]);
                h.finalize_xof().fill(&mut v);
                Bytes::from(v)
            })
            .collect();
        let slices: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        let mut parity = vec![vec![0u8; len]; m];
        let into = median_rate(k * len, || {
            let mut outs: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut p[..]).collect();
            codec.parity_into(std::hint::black_box(&slices), &mut outs);
        });
        println!("{k}+{m} {into:.2}");
        let alloc = median_rate(k * len, || {
            std::hint::black_box(codec.parity(std::hint::black_box(&data)));
        });
        println!("{k}+{m}/alloc {alloc:.2}");
    }
}
