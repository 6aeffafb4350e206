//! Tracker throughput: detections applied per second with 300,000 tags and 1,000 stations, with
//! 1 % of tags on the stolen list and every watch rule on.
//!
//! - `reference_city_stream`: the simulator's own reference city (1,024 stations 200 m apart
//!   with overlapping ranges, 300,000 tags beaconing every 2 s, half of them parked, reads missed
//!   as the radio model says), 30 simulated seconds of its detections as each station's
//!   one-second frames, replayed with time moving on. The realistic figure.
//! - `apply_frame_of_50_*`: synthetic churn. Frames of 50 records from random tags of a
//!   300-tag block, each tag heard on average every 20 s (so a third of its gaps exceed the 30 s
//!   visit gap and split the visit) at a station that changes every minute or every 3 minutes:
//!   a visit every 3 to 5 records, far more visit churn than any city. The worst case.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tagwatch_model::{CaseId, Detection, FrameKey, GeoPoint, SessionId, Station, StationId, TagId};
use tagwatch_sim::city::{City, CityConfig, Read};
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

/// Seconds of the reference city's traffic replayed in a loop.
const CITY_SECONDS: i64 = 30;

/// The reference city's detections over [`CITY_SECONDS`], as each station's one-second frames
/// in time order (after a minute of simulated warm-up, so traffic is flowing).
fn city_frames() -> (Vec<Station>, Vec<(FrameKey, Vec<Detection>)>) {
    let start = 1_700_000_000_000;
    let mut city = City::new(CityConfig::default(), start);
    city.record_truth(false);
    let stations: Vec<Station> = city
        .stations()
        .iter()
        .map(|s| Station {
            id: s.id,
            name: String::new(),
            position: s.position,
        })
        .collect();
    let mut reads: Vec<Read> = Vec::new();
    for _ in 0..600 {
        city.step(100, &mut reads);
        reads.clear();
    }
    let mut frames = Vec::new();
    let mut seq = 0u32;
    for _ in 0..CITY_SECONDS {
        for _ in 0..10 {
            city.step(100, &mut reads);
        }
        let mut per_station: Vec<Vec<Detection>> = vec![Vec::new(); stations.len()];
        for r in reads.drain(..) {
            per_station[r.station_index].push(Detection {
                tag: r.tag,
                station: stations[r.station_index].id,
                seen_at_ms: r.at_ms,
                rssi: r.rssi,
                reads: 1,
                tag_flags: 0,
            });
        }
        for (i, detections) in per_station.into_iter().enumerate() {
            if detections.is_empty() {
                continue;
            }
            seq += 1;
            let key = FrameKey {
                station: stations[i].id,
                session: SessionId(1),
                seq,
            };
            frames.push((key, detections));
        }
    }
    (stations, frames)
}

fn reference_city(c: &mut Criterion) {
    let (stations, frames) = city_frames();
    let detections: usize = frames.iter().map(|(_, d)| d.len()).sum();
    eprintln!(
        "reference city: {} frames, {detections} detections in {CITY_SECONDS} s ({:.0}/s of traffic), {:.1} per frame",
        frames.len(),
        detections as f64 / CITY_SECONDS as f64,
        detections as f64 / frames.len() as f64
    );
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    for s in &stations {
        tracker.set_station(s);
    }
    for tag in (100_001..400_001).step_by(100) {
        tracker.report_stolen(TagId(tag), CaseId(i64::from(tag)));
    }
    let mut group = c.benchmark_group("tracker");
    // One iteration = the whole 30 s of the city.
    group.throughput(Throughput::Elements(detections as u64));
    group.sample_size(10);
    let mut pass = 0i64;
    let mut shifted: Vec<Detection> = Vec::new();
    group.bench_function("reference_city_stream_30s", |b| {
        b.iter(|| {
            // Each pass is the next 30 s: time moves on, visits extend and close as they would.
            let offset = pass * CITY_SECONDS * 1_000;
            pass += 1;
            let mut alerts = 0;
            for (n, (key, detections)) in frames.iter().enumerate() {
                shifted.clear();
                shifted.extend(detections.iter().map(|d| Detection {
                    seen_at_ms: d.seen_at_ms + offset,
                    ..*d
                }));
                let obs = Observation {
                    frame: FrameKey {
                        seq: key.seq + (pass as u32) * frames.len() as u32,
                        ..*key
                    },
                    sent_at_ms: 0,
                    reader_position: None,
                    detections: &shifted,
                };
                alerts += tracker.apply(obs, 0).len();
                if n % 100 == 99 {
                    let _ = tracker.take_changes();
                }
            }
            alerts
        })
    });
    group.finish();
}

fn tracker(c: &mut Criterion) {
    reference_city(c);
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
