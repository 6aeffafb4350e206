//! GT06 decode throughput: what the device listener does per message, beside what the gateway
//! does for a station's one-record frame (the same job: one vehicle placed once).
//!
//! - `gt06/decode_fix`: cut, CRC-check and decode one fix (0x12).
//! - `gt06/fix_to_station_frame`: the listener's whole work per fix: the above, plus the TWB/1
//!   frame made from it, signed with the tracker station's key, and verified again by the gateway.
//! - `gt06/decode_corpus`: Traccar's 187 test frames, every kind the decoder reads (and the
//!   refused ones), per frame.
//! - `twb1/decode_datagram_1`: a station's one-record frame, verified and decoded.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use tagwatch_devices::gt06::{decode, device, frame, Frame};
use tagwatch_devices::{Fix, Imei};
use tagwatch_gateway::wire::{self, Body, Position, Record};
use tagwatch_model::{SessionId, StationId, StationKey, TagId};

const CORPUS: &str = include_str!("../../devices/tests/data/gt06-frames.tsv");

fn fix() -> Fix {
    Fix {
        at_ms: 1_796_592_605_000,
        lat: 23.1291,
        lon: 113.2644,
        speed_kmh: 42,
        course_deg: 135,
        valid: true,
        satellites: Some(9),
        ignition: Some(true),
    }
}

/// The listener's frame for one fix, signed and checked as the gateway will.
fn to_station_frame(bytes: &[u8], key: &StationKey) -> Option<usize> {
    let parsed = Frame::parse(bytes).ok()?;
    let tagwatch_devices::Message::Report(report) = decode(&parsed).ok()? else {
        return None;
    };
    let fix = report.fix?;
    let position = tagwatch_model::GeoPoint::new(fix.lat, fix.lon).ok()?;
    let (lat_e7, lon_e7) = position.to_e7();
    let frame = wire::Frame {
        station: StationId(3_000_000_001),
        session: SessionId(1_796_592_605),
        seq: 7,
        time_ms: fix.at_ms as u64,
        position: Some(Position { lat_e7, lon_e7 }),
        body: Body::Detections(vec![Record {
            tag: TagId(41),
            age_ms: 0,
            rssi: -30,
            reads: 1,
            tag_flags: 0,
            antenna: 0,
        }]),
    };
    let signed = wire::encode(&frame, key).ok()?;
    let header = wire::check(&signed, wire::MAX_BODY_LEN).ok()?;
    wire::verify(&signed, key).ok()?;
    Some(header.frame_len())
}

fn gt06(c: &mut Criterion) {
    let key = StationKey([9; 32]);
    let bytes = device::fix(&fix(), 7);
    let mut group = c.benchmark_group("gt06");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_fix", |b| {
        b.iter(|| {
            let total = frame::check(black_box(&bytes), frame::MAX_FRAME_LEN).ok()?;
            decode(&Frame::parse(&bytes[..total]).ok()?).ok()
        })
    });
    group.bench_function("fix_to_station_frame", |b| {
        b.iter(|| to_station_frame(black_box(&bytes), &key))
    });
    let corpus: Vec<Vec<u8>> = CORPUS
        .lines()
        .filter_map(|l| hex::decode(l.split('\t').next()?).ok())
        .collect();
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("decode_corpus", |b| {
        b.iter(|| {
            let mut read = 0usize;
            for bytes in &corpus {
                let Ok(total) = frame::check(bytes, frame::MAX_FRAME_LEN) else {
                    continue;
                };
                if let Ok(parsed) = Frame::parse(&bytes[..total]) {
                    read += usize::from(decode(&parsed).is_ok());
                }
            }
            read
        })
    });
    group.finish();
    let login = device::login(Imei::parse("868120300212345").expect("imei"), 1);
    assert!(Frame::parse(&login).is_ok());

    let mut twb = c.benchmark_group("twb1");
    let station_frame = wire::Frame {
        station: StationId(1001),
        session: SessionId(7),
        seq: 1,
        time_ms: 1_796_592_605_000,
        position: None,
        body: Body::Detections(vec![Record {
            tag: TagId(41),
            age_ms: 0,
            rssi: -60,
            reads: 1,
            tag_flags: 0,
            antenna: 1,
        }]),
    };
    let datagram = wire::encode(&station_frame, &key).expect("encodes");
    twb.throughput(Throughput::Elements(1));
    twb.bench_function("decode_datagram_1", |b| {
        b.iter(|| wire::decode_datagram(black_box(&datagram), &key, wire::MAX_BODY_LEN))
    });
    twb.finish();
}

criterion_group!(benches, gt06);
criterion_main!(benches);
