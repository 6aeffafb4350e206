//! Tracker throughput: detections applied per second with 300,000 tags and 1,000 stations, as
//! frames of 50 records (a busy station's second), with 1 % of tags on the stolen list. Each tag
//! is heard at the station nearest to it, which changes every simulated minute (it drives on).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tagwatch_model::{CaseId, Detection, FrameKey, GeoPoint, SessionId, Station, StationId, TagId};
use tagwatch_tracker::{Observation, Tracker, TrackerConfig};

const TAGS: u32 = 300_000;
const STATIONS: u32 = 1_000;
const PER_FRAME: usize = 50;

fn tracker(c: &mut Criterion) {
    let mut rng = fastrand::Rng::with_seed(1);
    // Ten simulated minutes of traffic: every tag heard about 30 times, 300 tags per station.
    let frame_count = TAGS as usize * 30 / PER_FRAME;
    let frames: Vec<(FrameKey, Vec<Detection>)> = (0..frame_count)
        .map(|i| {
            let t = 1_700_000_000_000 + (i as i64 * 600_000) / frame_count as i64;
            let minute = (t / 60_000) as u32;
            let first_tag = rng.u32(0..TAGS / 300) * 300;
            let station = StationId(1 + (first_tag / 300 + minute) % STATIONS);
            let detections = (0..PER_FRAME)
                .map(|_| Detection {
                    tag: TagId(1 + first_tag + rng.u32(0..300)),
                    station,
                    seen_at_ms: t - rng.i64(0..1000),
                    rssi: -60,
                    reads: 1,
                    tag_flags: 0,
                })
                .collect();
            let key = FrameKey {
                station,
                session: SessionId(1),
                seq: i as u32 + 1,
            };
            (key, detections)
        })
        .collect();
    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(PER_FRAME as u64));
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    for s in 1..=STATIONS {
        tracker.set_station(&Station {
            id: StationId(s),
            name: String::new(),
            position: GeoPoint {
                lat: 23.0 + f64::from(s) / 10_000.0,
                lon: 116.0,
            },
        });
    }
    for tag in (1..=TAGS).step_by(100) {
        tracker.report_stolen(TagId(tag), CaseId(i64::from(tag)));
    }
    let mut next = 0usize;
    group.bench_function("apply_frame_of_50", |b| {
        b.iter(|| {
            let (key, detections) = &frames[next % frames.len()];
            next += 1;
            let obs = Observation {
                frame: *key,
                sent_at_ms: 0,
                reader_position: None,
                detections,
            };
            let alerts = tracker.apply(obs, 0);
            // Flushing is part of the steady state: take changes every 100 frames.
            if next.is_multiple_of(100) {
                let _ = tracker.take_changes();
            }
            alerts
        })
    });
    group.finish();
}

criterion_group!(benches, tracker);
criterion_main!(benches);
