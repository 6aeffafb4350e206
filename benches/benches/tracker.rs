//! Tracker throughput: detections applied per second with 300,000 tags and 1,000 stations, as
//! frames of 50 records (a busy station's second), with 1 % of tags on the stolen list. Each tag
//! is heard about every 20 s at the station nearest to it, which changes every simulated minute
//! (3 records per visit: far more visit churn than a real city, where a passing vehicle's visit
//! holds 10 to 20 one-second records), or every 3 minutes (10 records per visit).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tagwatch_model::{CaseId, Detection, FrameKey, GeoPoint, SessionId, Station, StationId, TagId};
use tagwatch_tracker::{Observation, Tracker, TrackerConfig};

const TAGS: u32 = 300_000;
const STATIONS: u32 = 1_000;
const PER_FRAME: usize = 50;

/// Ten simulated minutes of frames, each tag moving on every `move_every_ms`.
fn frames(move_every_ms: i64) -> Vec<(FrameKey, Vec<Detection>)> {
    let mut rng = fastrand::Rng::with_seed(1);
    // Ten simulated minutes of traffic: every tag heard about 30 times, 300 tags per station.
    let frame_count = TAGS as usize * 30 / PER_FRAME;
    (0..frame_count)
        .map(|i| {
            let t = 1_700_000_000_000 + (i as i64 * 600_000) / frame_count as i64;
            let step = (t / move_every_ms) as u32;
            let first_tag = rng.u32(0..TAGS / 300) * 300;
            let station = StationId(1 + (first_tag / 300 + step) % STATIONS);
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
        .collect()
}

fn tracker(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracker");
    group.throughput(Throughput::Elements(PER_FRAME as u64));
    for (name, move_every_ms) in [
        ("apply_frame_of_50_moves_every_minute", 60_000),
        ("apply_frame_of_50_moves_every_3_minutes", 180_000),
    ] {
        bench_apply(&mut group, name, &frames(move_every_ms));
    }
    group.finish();
}

fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    frames: &[(FrameKey, Vec<Detection>)],
) {
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
    let mut shifted: Vec<Detection> = Vec::with_capacity(PER_FRAME);
    group.bench_function(name, |b| {
        b.iter(|| {
            let (key, detections) = &frames[next % frames.len()];
            // Each pass over the ten minutes of frames is the next ten minutes: time goes on,
            // so visits keep closing into the index and buckets keep being built, as they would.
            let offset = (next / frames.len()) as i64 * 600_000;
            next += 1;
            shifted.clear();
            shifted.extend(detections.iter().map(|d| Detection {
                seen_at_ms: d.seen_at_ms + offset,
                ..*d
            }));
            let obs = Observation {
                frame: *key,
                sent_at_ms: 0,
                reader_position: None,
                detections: &shifted,
            };
            let alerts = tracker.apply(obs, 0);
            // Flushing is part of the steady state: take changes every 100 frames.
            if next.is_multiple_of(100) {
                let _ = tracker.take_changes();
            }
            alerts
        })
    });
}

criterion_group!(benches, tracker);
criterion_main!(benches);
