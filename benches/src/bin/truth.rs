//! # `tagwatch-truth`: what the tracker tells an officer, measured against the simulator's truth.
//!
//! Runs the simulated city (its vehicles driving and parking, beacons missed at the edge of each
//! station's range) into the tracker, as the gateway would feed it (one frame per station per
//! tick), and every simulated minute asks where each vehicle is. At the end it compares each
//! answer with the ground truth: was the vehicle within range of the station it was placed at,
//! at that moment? Two trackers are fed the same reads side by side: one told by each tag whether
//! it is moving (the wire's `MOVING` flag), one not (as a tag without an accelerometer).
//!
//! `cargo run --release -p tagwatch-benches --bin tagwatch-truth -- --tags 3000 --minutes 20`
//!
//! Intercepts: after a warm-up (the tracker learns the moves), a share of the vehicles is
//! reported stolen; every `stolen_sighting` predicts the next stations, scored against the
//! station the vehicle truly reached next (top-1, top-3) and when (ETA error).
//!
//! Geofences, the other rules and time to recovery are still to come (issue 16).

use clap::Parser;
use std::collections::HashMap;
use tagwatch_model::{
    tag_flags, Alert, AlertKind, CaseId, Detection, FrameKey, SessionId, Station, StationId, TagId,
};
use tagwatch_sim::city::{City, CityConfig, TruthInterval};
use tagwatch_tracker::{Observation, Tracker, TrackerConfig};

#[derive(Debug, Parser)]
#[command(about = "Location accuracy of the tracker against the simulator's ground truth")]
struct Args {
    /// Tagged vehicles in the city.
    #[arg(long, default_value_t = 3_000)]
    tags: u32,
    /// Simulated minutes.
    #[arg(long, default_value_t = 20)]
    minutes: i64,
    /// Read probability at a station's centre (falls to half at the edge of its range); 0.93
    /// misses about 30 % of beacons.
    #[arg(long, default_value_t = 0.93)]
    read_rate: f64,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Minutes the tracker learns moves before thefts are reported.
    #[arg(long, default_value_t = 10)]
    warm_up: i64,
    /// Share of the vehicles reported stolen after the warm-up.
    #[arg(long, default_value_t = 0.05)]
    stolen: f64,
    /// Share of the blocks along which a vehicle stops for 30 s to 10 min (the city's default
    /// when not given).
    #[arg(long)]
    parked_fraction: Option<f64>,
}

const TICK_MS: i64 = 100;

/// One answer to "where is this vehicle now?".
struct Answer {
    tag: TagId,
    at_ms: i64,
    station: StationId,
}

/// A tracker and the answers it gave.
struct Subject {
    name: &'static str,
    tracker: Tracker,
    answers: Vec<Answer>,
    /// Its stolen-sighting alerts that predict where the vehicle goes next.
    sightings: Vec<Alert>,
    /// Whether its detections carry the MOVING flag.
    moving_flag: bool,
}

fn main() {
    let args = Args::parse();
    let default = CityConfig::default();
    let config = CityConfig {
        seed: args.seed,
        tags: args.tags,
        read_rate_center: args.read_rate,
        parked_fraction: args.parked_fraction.unwrap_or(default.parked_fraction),
        ..default
    };
    let parked_fraction = config.parked_fraction;
    let mut city = City::new(config, 1_800_000_000_000);
    let mut subjects: Vec<Subject> = [("MOVING flag", true), ("no flag", false)]
        .into_iter()
        .map(|(name, moving_flag)| {
            let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
            for s in city.stations() {
                tracker.set_station(&Station {
                    id: s.id,
                    name: String::new(),
                    position: s.position,
                });
            }
            Subject {
                name,
                tracker,
                answers: Vec::new(),
                sightings: Vec::new(),
                moving_flag,
            }
        })
        .collect();
    let tags: Vec<TagId> = city.tags().collect();
    eprintln!(
        "{} stations, {} vehicles, {} simulated minutes…",
        city.stations().len(),
        tags.len(),
        args.minutes
    );
    let mut reads = Vec::new();
    let mut seq = 0u32;
    let ticks = args.minutes * 60_000 / TICK_MS;
    for tick in 1..=ticks {
        reads.clear();
        city.step(TICK_MS, &mut reads);
        let mut by_station: HashMap<usize, Vec<(Detection, bool)>> = HashMap::new();
        for r in &reads {
            let detection = Detection {
                tag: r.tag,
                station: city.stations()[r.station_index].id,
                seen_at_ms: r.at_ms,
                rssi: r.rssi,
                reads: 1,
                tag_flags: 0,
            };
            by_station
                .entry(r.station_index)
                .or_default()
                .push((detection, r.moving));
        }
        let mut frames: Vec<_> = by_station.into_values().collect();
        frames.sort_by_key(|f| f[0].0.station);
        let now = city.now_ms();
        for frame in &frames {
            seq += 1;
            let key = FrameKey {
                station: frame[0].0.station,
                session: SessionId(1),
                seq,
            };
            for subject in &mut subjects {
                let detections: Vec<Detection> = frame
                    .iter()
                    .map(|&(d, moving)| Detection {
                        tag_flags: if moving && subject.moving_flag {
                            tag_flags::MOVING
                        } else {
                            0
                        },
                        ..d
                    })
                    .collect();
                let obs = Observation {
                    frame: key,
                    sent_at_ms: now,
                    reader_position: None,
                    detections: &detections,
                };
                let alerts = subject.tracker.apply(obs, now);
                subject.sightings.extend(alerts.into_iter().filter(|a| {
                    a.kind == AlertKind::StolenSighting && !a.detail.intercept.is_empty()
                }));
            }
        }
        if tick % 10 == 0 {
            for subject in &mut subjects {
                subject.tracker.take_changes();
            }
        }
        if tick == args.warm_up * 60_000 / TICK_MS {
            let stolen = (tags.len() as f64 * args.stolen) as usize;
            for subject in &mut subjects {
                for (case, &tag) in tags.iter().take(stolen).enumerate() {
                    subject.tracker.report_stolen(tag, CaseId(case as i64 + 1));
                }
            }
            eprintln!("  {stolen} vehicles reported stolen");
        }
        if tick % (60_000 / TICK_MS) == 0 {
            for subject in &mut subjects {
                for &tag in &tags {
                    if let Some(location) = subject.tracker.location(tag) {
                        subject.answers.push(Answer {
                            tag,
                            at_ms: now,
                            station: location.station,
                        });
                    }
                }
            }
            eprintln!("  minute {} of {}", tick * TICK_MS / 60_000, args.minutes);
        }
    }
    let truth = city.finish_truth();
    let mut intervals: HashMap<TagId, Vec<TruthInterval>> = HashMap::new();
    for interval in truth {
        intervals.entry(interval.tag).or_default().push(interval);
    }
    println!(
        "location accuracy, {} vehicles, {} minutes, read rate at the centre {}, stops on {} of the blocks:",
        tags.len(),
        args.minutes,
        args.read_rate,
        parked_fraction
    );
    println!("| tracker | answers in range | accuracy | lag p50 | lag p90 | lag max |");
    println!("|---|---:|---:|---:|---:|---:|");
    for subject in &subjects {
        report(subject, &intervals);
    }
    println!();
    println!(
        "intercept prediction (stolen sightings after a {}-minute warm-up):",
        args.warm_up
    );
    println!("| tracker | sightings scored | top-1 | top-3 | ETA error p50 | p90 | abs. p50 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for subject in &subjects {
        report_intercepts(subject, &intervals);
    }
}

/// Scores each prediction against the station the vehicle's range truly reached next (the first
/// other station it came within range of after the sighting) and when it did.
fn report_intercepts(subject: &Subject, intervals: &HashMap<TagId, Vec<TruthInterval>>) {
    let (mut scored, mut top1, mut top3) = (0usize, 0usize, 0usize);
    let (mut relative, mut absolute): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for alert in &subject.sightings {
        let Some(tag) = alert.tag else { continue };
        let next = intervals.get(&tag).and_then(|list| {
            list.iter()
                .filter(|i| i.station != alert.station && i.enter_ms > alert.seen_at_ms)
                .min_by_key(|i| i.enter_ms)
        });
        let Some(next) = next else { continue };
        scored += 1;
        let predicted = &alert.detail.intercept;
        if predicted[0].station == next.station {
            top1 += 1;
        }
        if let Some(hit) = predicted.iter().take(3).find(|p| p.station == next.station) {
            top3 += 1;
            let true_s = (next.enter_ms - alert.seen_at_ms) as f64 / 1000.0;
            absolute.push((hit.eta_s - true_s).abs());
            relative.push((hit.eta_s - true_s).abs() / true_s.max(1.0));
        }
    }
    let pct = |values: &mut Vec<f64>, p: f64| -> f64 {
        values.sort_by(f64::total_cmp);
        values
            .get(((values.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "| {} | {} | {:.3} | {:.3} | {:.0} % | {:.0} % | {:.1} s |",
        subject.name,
        scored,
        top1 as f64 / scored.max(1) as f64,
        top3 as f64 / scored.max(1) as f64,
        pct(&mut relative, 0.5) * 100.0,
        pct(&mut relative, 0.9) * 100.0,
        pct(&mut absolute, 0.5)
    );
}

/// Scores a subject's answers given while the vehicle was within range of some station: right
/// when it is within range of the one given; otherwise, how long ago it left that one's range.
fn report(subject: &Subject, intervals: &HashMap<TagId, Vec<TruthInterval>>) {
    let none = Vec::new();
    let (mut asked, mut right) = (0usize, 0usize);
    let mut lags: Vec<i64> = Vec::new();
    for answer in &subject.answers {
        let tag_truth = intervals.get(&answer.tag).unwrap_or(&none);
        // One tick of tolerance: a beacon is heard at the tick's end.
        let within =
            |i: &&TruthInterval| i.enter_ms - TICK_MS <= answer.at_ms && answer.at_ms <= i.exit_ms;
        if !tag_truth.iter().any(|i| within(&i)) {
            continue; // between stations: no station is right
        }
        asked += 1;
        if tag_truth
            .iter()
            .any(|i| i.station == answer.station && within(&i))
        {
            right += 1;
            lags.push(0);
            continue;
        }
        let left = tag_truth
            .iter()
            .filter(|i| i.station == answer.station && i.exit_ms <= answer.at_ms)
            .map(|i| i.exit_ms)
            .max();
        lags.push(left.map_or(i64::MAX, |exit| answer.at_ms - exit));
    }
    lags.sort_unstable();
    let at = |p: f64| -> String {
        match lags.get(((lags.len().max(1) - 1) as f64 * p) as usize) {
            Some(&i64::MAX) => "never there".into(),
            Some(&ms) => format!("{:.1} s", ms as f64 / 1000.0),
            None => "-".into(),
        }
    };
    println!(
        "| {} | {} | {:.4} | {} | {} | {} |",
        subject.name,
        asked,
        right as f64 / asked.max(1) as f64,
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
