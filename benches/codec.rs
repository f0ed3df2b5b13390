//! Codec benchmarks: encode and reconstruct (m data pieces lost) per stripe, the coordinator's
//! per-stripe step (hash + split + encode), and blake3 over a shard piece. Seeded data; throughput is bytes of object data per second.
//!
//! Run: `cargo bench --bench codec`

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tessera_coordinator::ErasureCodec;

fn stripe(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(b"tessera-bench");
    h.finalize_xof().fill(&mut v);
    v
}

fn codec(c: &mut Criterion) {
    for (k, m) in [(4usize, 2usize), (6, 3), (10, 4), (17, 3)] {
        let codec = ErasureCodec::new(k, m).unwrap();
        let mut g = c.benchmark_group(format!("rs-{k}+{m}"));
        g.sample_size(20);
        for piece in [64usize << 10, 1 << 20] {
            let data = stripe(piece * k);
            g.throughput(Throughput::Bytes(data.len() as u64));
            // The stripe buffer is prepared outside the timing: in a PUT it is the buffer the
            // body was read into, so the copy is not part of the codec step.
            g.bench_with_input(BenchmarkId::new("encode", piece >> 10), &data, |b, d| {
                b.iter_batched(
                    || BytesMut::from(&d[..]),
                    |s| codec.encode(s),
                    BatchSize::LargeInput,
                )
            });
            let pieces = codec.encode(BytesMut::from(&data[..]));
            g.bench_with_input(
                BenchmarkId::new("reconstruct", piece >> 10),
                &pieces,
                |b, p| {
                    b.iter(|| {
                        let mut given: Vec<_> = p.iter().cloned().map(Some).collect();
                        for slot in given.iter_mut().take(m) {
                            *slot = None;
                        }
                        codec.reconstruct_data(given).unwrap()
                    })
                },
            );
        }
        g.finish();
    }
    // The coordinator's whole per-stripe step in a PUT: hash the stripe into the object's
    // ETag, split it into k pieces and compute parity (default 256 KiB pieces).
    let mut g = c.benchmark_group("stripe-step");
    g.sample_size(20);
    for (k, m) in [(4usize, 2usize), (10, 4)] {
        let codec = ErasureCodec::new(k, m).unwrap();
        let data = stripe((256 << 10) * k);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("hash+encode", format!("{k}+{m}")),
            &data,
            |b, d| {
                b.iter_batched(
                    || (BytesMut::from(&d[..]), blake3::Hasher::new()),
                    |(s, mut h)| {
                        h.update(&s);
                        (h, codec.encode(s))
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("blake3");
    for piece in [64usize << 10, 1 << 20] {
        let data = stripe(piece);
        g.throughput(Throughput::Bytes(piece as u64));
        g.bench_with_input(BenchmarkId::new("hash", piece >> 10), &data, |b, d| {
            b.iter(|| blake3::hash(d))
        });
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
