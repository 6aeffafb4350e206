//! Tracker query latency on a dense city, and the tracker's memory for it.
//!
//! 1,024 stations on a 32 × 32 grid, 300,000 tags each making 7 moves between neighbouring
//! stations over 24 hours: 2.1 million visits, all within the 24-hour index window. Two
//! densities: stations 340 m apart (a 10.9 km square: about 2,000 tags within 500 m of a point,
//! the dense city), and 200 m apart (6.2 km: three times as dense). Every tag's move of a
//! round falls within the same 50 minutes, so the hour queried holds 300,000 visits, 3.6 times an
//! average hour. Queries: tags placed within 500 m of the centre; tags through a 1 km² box in a one-hour
//! window; one tag's 24-hour track; its location; its convoy; fencing dens of 3,000 stolen tags.
//! Resident memory is read from /proc before and after loading the city.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use tagwatch_model::{
    CaseId, Detection, FrameKey, GeoBox, GeoPoint, SessionId, Station, StationId, TagId,
};
use tagwatch_tracker::{Area, Observation, Tracker, TrackerConfig};

const GRID: u32 = 32;
const TAGS: u32 = 300_000;
const MOVES: i64 = 7;
const DAY_MS: i64 = 86_400_000;
const START: i64 = 1_800_000_000_000;
const DEG_PER_M: f64 = 0.0018 / 200.0;

/// Station `i` of the grid, `spacing_m` apart.
fn position(i: u32, spacing_m: f64) -> GeoPoint {
    let step = spacing_m * DEG_PER_M;
    GeoPoint {
        lat: 23.0 + f64::from(i / GRID) * step,
        lon: 116.0 + f64::from(i % GRID) * step / 23f64.to_radians().cos(),
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The loaded city, its stations `spacing_m` apart.
fn city(spacing_m: f64) -> Tracker {
    let before = rss_mib();
    let mut tracker = Tracker::new(
        TrackerConfig {
            hot_window_ms: 3_600_000,
            ..TrackerConfig::default()
        },
        1,
        1,
    );
    let stations = GRID * GRID;
    for i in 0..stations {
        tracker.set_station(&Station {
            id: StationId(i + 1),
            name: String::new(),
            position: position(i, spacing_m),
        });
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let mut at: Vec<u32> = (0..TAGS).map(|_| rng.u32(0..stations)).collect();
    let mut seq = 0u32;
    let mut visits = 0u64;
    let mut per_station: Vec<Vec<(TagId, i64)>> = vec![Vec::new(); stations as usize];
    for round in 0..MOVES {
        for list in &mut per_station {
            list.clear();
        }
        for (tag, station) in at.iter_mut().enumerate() {
            // A step to a neighbouring intersection.
            let (x, y) = (*station % GRID, *station / GRID);
            let (x, y) = match rng.u8(0..4) {
                0 if x > 0 => (x - 1, y),
                1 if x + 1 < GRID => (x + 1, y),
                2 if y > 0 => (x, y - 1),
                _ if y + 1 < GRID => (x, y + 1),
                _ => (x, y.saturating_sub(1)),
            };
            *station = y * GRID + x;
            let t = START + round * DAY_MS / MOVES + (tag as i64 % 3_000) * 1_000;
            per_station[*station as usize].push((TagId(tag as u32 + 1), t));
            visits += 1;
        }
        for (i, list) in per_station.iter().enumerate() {
            let station = StationId(i as u32 + 1);
            // Heard on arrival and 20 s later: two detections per visit.
            for offset in [0, 20_000] {
                for chunk in list.chunks(100) {
                    let detections: Vec<Detection> = chunk
                        .iter()
                        .map(|&(tag, t)| Detection {
                            tag,
                            station,
                            seen_at_ms: t + offset,
                            rssi: -65,
                            reads: 1,
                            tag_flags: 0,
                        })
                        .collect();
                    seq += 1;
                    let obs = Observation {
                        frame: FrameKey {
                            station,
                            session: SessionId(1),
                            seq,
                        },
                        sent_at_ms: START,
                        reader_position: None,
                        detections: &detections,
                    };
                    tracker.apply(obs, START);
                }
            }
            let _ = tracker.take_changes();
        }
    }
    tracker.settle_index();
    // Stolen tags, so the den query has work.
    for tag in (1..=TAGS).step_by(100) {
        tracker.report_stolen(TagId(tag), CaseId(i64::from(tag)));
    }
    let after = rss_mib();
    eprintln!(
        "city with stations {spacing_m} m apart: {visits} visits of {TAGS} tags over 24 h; {} index entries; \
         resident memory {before:.0} MiB before, {after:.0} MiB after ({:.0} MiB)",
        tracker.index_entries(),
        after - before
    );
    tracker
}

fn queries(c: &mut Criterion) {
    for (name, spacing_m) in [("queries_340m", 340.0), ("queries_200m", 200.0)] {
        let tracker = city(spacing_m);
        bench_city(c, name, spacing_m, &tracker);
    }
}

fn bench_city(c: &mut Criterion, name: &str, spacing_m: f64, tracker: &Tracker) {
    let centre = position(GRID * GRID / 2 + GRID / 2, spacing_m);
    let now = START + DAY_MS;
    let near = tracker.tags_near(centre, 500.0, START, 100_000);
    let half_km = 0.0045;
    let square = Area::Box(GeoBox {
        south: centre.lat - half_km,
        west: centre.lon - half_km / 23f64.to_radians().cos(),
        north: centre.lat + half_km,
        east: centre.lon + half_km / 23f64.to_radians().cos(),
    });
    // The hour of the fourth round of moves.
    let hour_from = START + 3 * DAY_MS / MOVES;
    let hour_to = hour_from + 3_600_000;
    let through = tracker.tags_through(&square, hour_from, hour_to, 1_000_000);
    let tag = near.first().map_or(TagId(1), |n| n.0);
    eprintln!(
        "radius 500 m: {} tags; 1 km² × 1 h: {} tags; track of {tag}: {} visits",
        near.len(),
        through.len(),
        tracker.track(tag, START, now).len()
    );

    let mut group = c.benchmark_group(name);
    group.sample_size(30);
    group.measurement_time(std::time::Duration::from_secs(3));
    group.bench_function("tags_near_500m", |b| {
        b.iter(|| black_box(tracker.tags_near(centre, 500.0, START, 100_000)))
    });
    group.bench_function("tags_through_1km2_1h", |b| {
        b.iter(|| black_box(tracker.tags_through(&square, hour_from, hour_to, 1_000_000)))
    });
    group.bench_function("track_24h", |b| {
        b.iter(|| black_box(tracker.track(tag, START, now)))
    });
    group.bench_function("location", |b| b.iter(|| black_box(tracker.location(tag))));
    group.bench_function("travelling_with_24h", |b| {
        b.iter(|| black_box(tracker.travelling_with(tag, START, now, 60_000, 2, 100)))
    });
    group.bench_function("fencing_dens_3000_stolen", |b| {
        b.iter(|| black_box(tracker.dens(now, 3_600_000, 300.0, 3)))
    });
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
