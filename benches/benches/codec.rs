//! TWB/1 codec throughput: whole-datagram decode (header check, HMAC-SHA256 verify, parse) and
//! encode, for a typical busy-intersection frame; and what a cluster's gateway does on top of
//! decoding: cutting a frame into one TWB/1 part per partition (`bus_parts`).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tagwatch_gateway::wire::{self, Body, Frame, Record};
use tagwatch_model::{SessionId, StationId, StationKey, TagId};

fn frame(records: usize) -> Frame {
    Frame {
        station: StationId(1001),
        session: SessionId(7),
        seq: 1,
        time_ms: 1_700_000_000_000,
        position: None,
        body: Body::Detections(
            (0..records)
                .map(|i| Record {
                    tag: TagId(100_000 + i as u32),
                    age_ms: (i % 1000) as u16,
                    rssi: -60,
                    reads: 1,
                    tag_flags: 0,
                    antenna: 1,
                })
                .collect(),
        ),
    }
}

fn codec(c: &mut Criterion) {
    let key = StationKey([7; 32]);
    let mut group = c.benchmark_group("codec");
    for records in [1usize, 20, 100, 1000] {
        let frame = frame(records);
        let bytes = wire::encode(&frame, &key).expect("encodes");
        group.throughput(Throughput::Elements(records as u64));
        group.bench_with_input(
            BenchmarkId::new("decode_datagram", records),
            &bytes,
            |b, bytes| b.iter(|| wire::decode_datagram(black_box(bytes), &key, wire::MAX_BODY_LEN)),
        );
        group.bench_with_input(BenchmarkId::new("encode", records), &frame, |b, frame| {
            b.iter(|| wire::encode(black_box(frame), &key))
        });
    }
    group.finish();
}

/// A cluster gateway's extra work per frame: split by partition and encode each part.
fn bus_parts(c: &mut Criterion) {
    let groups = tagwatch_cluster::Groups::default();
    let mut group = c.benchmark_group("bus_parts");
    for records in [20usize, 700] {
        let frame = frame(records);
        group.throughput(Throughput::Elements(records as u64));
        for partitions in [16u16, 64] {
            group.bench_with_input(
                BenchmarkId::new(format!("{partitions}_partitions"), records),
                &frame,
                |b, frame| {
                    b.iter(|| {
                        tagwatch_cluster::publish::messages_of(
                            black_box(frame),
                            &groups,
                            partitions,
                        )
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, codec, bus_parts);
criterion_main!(benches);
