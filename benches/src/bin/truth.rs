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
//! Watch rules: four district fences (edges mid-block) watch every vehicle; a share of the
//! parked vehicles is armed after the warm-up; the stolen vehicles' passes by stations. Each is
//! scored against what the vehicles truly did: precision, recall, and the delay to the alert
//! (`rule_truth`).
//!
//! Scenarios: `--read-rate` (missed reads), `--range-m` (overlapping stations), `--skewed-clocks`
//! (a share of the stations with clocks minutes off, ahead or behind, sending heartbeats), and
//! `--tags` up to the reference city's 300,000. Time to recovery is `tagwatch-recovery`.

use clap::Parser;
use std::collections::HashMap;
use tagwatch_benches::city_feed::{self, TICK_MS};
use tagwatch_benches::mobile_readers::{MobileReaders, FIRST_READER, READER_RANGE_M};
use tagwatch_benches::rule_truth::{self, ArmedTruth, FenceTruth};
use tagwatch_model::{Alert, AlertKind, CaseId, GeoPoint, StationId, TagId};
use tagwatch_sim::city::{City, CityConfig, TruthInterval};
use tagwatch_tracker::{Command, Tracker};

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
    /// A station's range, metres (stations are 200 m apart; over 100 m they overlap).
    #[arg(long, default_value_t = 110.0)]
    range_m: f64,
    /// Share of the stations whose clock is 2 to 10 minutes off (ahead or behind).
    #[arg(long, default_value_t = 0.0)]
    skewed_clocks: f64,
    /// District fences watching every vehicle.
    #[arg(long, default_value_t = 4)]
    fences: u32,
    /// Share of the vehicles armed by their owners after the warm-up (those parked then).
    #[arg(long, default_value_t = 0.05)]
    armed: f64,
    /// Patrol cars with a mobile reader, roaming the city.
    #[arg(long, default_value_t = 0)]
    mobile_readers: u32,
}

/// Heartbeats every this often from every station (as `PROTOCOL.md` asks).
const HEARTBEAT_MS: i64 = 30_000;

/// One answer to "where is this vehicle now?".
struct Answer {
    tag: TagId,
    at_ms: i64,
    station: StationId,
    /// Where the answer placed it (a mobile reader's fix, or the station).
    position: GeoPoint,
    /// Where it truly was.
    truth: GeoPoint,
}

/// A tracker and the answers it gave.
struct Subject {
    name: &'static str,
    tracker: Tracker,
    answers: Vec<Answer>,
    /// Every alert it raised.
    alerts: Vec<Alert>,
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
        range_m: args.range_m,
        ..default
    };
    let parked_fraction = config.parked_fraction;
    let mut city = City::new(config.clone(), 1_800_000_000_000);
    let mut rng = fastrand::Rng::with_seed(args.seed ^ 0xc10c);
    let mut clock_offsets: HashMap<StationId, i64> = HashMap::new();
    for station in city.stations() {
        if rng.f64() < args.skewed_clocks {
            let minutes = rng.i64(2..=10) * if rng.bool() { 1 } else { -1 };
            clock_offsets.insert(station.id, minutes * 60_000 + rng.i64(0..60_000));
        }
    }
    let mut subjects: Vec<Subject> = [("MOVING flag", true), ("no flag", false)]
        .into_iter()
        .map(|(name, moving_flag)| Subject {
            name,
            tracker: city_feed::tracker_for(&city),
            answers: Vec::new(),
            alerts: Vec::new(),
            moving_flag,
        })
        .collect();
    let tags: Vec<TagId> = city.tags().collect();
    let mut fence_truth = FenceTruth::new(&config, &tags, args.fences);
    for subject in &mut subjects {
        for fence in fence_truth.fences() {
            subject
                .tracker
                .command(Command::Geofence(fence.clone()), city.now_ms());
        }
    }
    let mut readers = MobileReaders::new(&config, args.mobile_readers, args.seed);
    for subject in &mut subjects {
        for station in readers.stations() {
            subject.tracker.set_station(&station);
        }
    }
    let mut armed_truth = ArmedTruth::default();
    let mut stolen: HashMap<TagId, i64> = HashMap::new();
    eprintln!(
        "{} stations, {} vehicles, {} simulated minutes…",
        city.stations().len(),
        tags.len(),
        args.minutes
    );
    let mut reads = Vec::new();
    let mut seq = 0u32;
    // The bound no placement can beat without guessing: the station of each tag's latest read
    // (the strongest of that beacon), with no hysteresis at all.
    let mut latest_read: HashMap<TagId, (i64, i8, StationId)> = HashMap::new();
    let mut bound: Vec<Answer> = Vec::new();
    let ticks = args.minutes * 60_000 / TICK_MS;
    for tick in 1..=ticks {
        reads.clear();
        city.step(TICK_MS, &mut reads);
        let now = city.now_ms();
        for r in &reads {
            let read = (r.at_ms, r.rssi, city.stations()[r.station_index].id);
            let e = latest_read.entry(r.tag).or_insert(read);
            if (read.0, read.1) > (e.0, e.1) {
                *e = read;
            }
        }
        for frame in city_feed::frames(&city, &reads) {
            seq += 1;
            let offset = clock_offsets.get(&frame[0].0.station).copied().unwrap_or(0);
            for subject in &mut subjects {
                let (tracker, flag) = (&mut subject.tracker, subject.moving_flag);
                let alerts = city_feed::apply(tracker, seq, &frame, flag, offset, now);
                subject.alerts.extend(alerts);
            }
        }
        for (_, at, heard) in readers.step(&city, TICK_MS, now) {
            seq += 1;
            for subject in &mut subjects {
                let tracker = &mut subject.tracker;
                subject
                    .alerts
                    .extend(city_feed::apply_mobile(tracker, seq, at, &heard, now));
            }
        }
        if tick % (HEARTBEAT_MS / TICK_MS) == 0 {
            for station in city.stations() {
                seq += 1;
                let offset = clock_offsets.get(&station.id).copied().unwrap_or(0);
                for subject in &mut subjects {
                    let tracker = &mut subject.tracker;
                    let alerts = city_feed::heartbeat(tracker, seq, station.id, offset, now);
                    subject.alerts.extend(alerts);
                }
            }
        }
        fence_truth.observe(&city, &tags, now);
        armed_truth.observe(&city, now);
        if tick % 10 == 0 {
            for subject in &mut subjects {
                subject.tracker.take_changes();
            }
        }
        if tick == args.warm_up * 60_000 / TICK_MS {
            let count = (tags.len() as f64 * args.stolen) as usize;
            for subject in &mut subjects {
                for (case, &tag) in tags.iter().take(count).enumerate() {
                    subject.tracker.report_stolen(tag, CaseId(case as i64 + 1));
                }
            }
            stolen.extend(tags.iter().take(count).map(|&tag| (tag, now)));
            // Owners arm parked vehicles (not the stolen ones) where TagWatch last heard them.
            let count_armed = (tags.len() as f64 * args.armed) as usize;
            let armed = armed_truth.arm(&city, &tags[count..], count_armed, |tag| {
                subjects[0].tracker.last_seen(tag).map(|l| l.position)
            });
            for subject in &mut subjects {
                for &(tag, at) in &armed {
                    let at = subject.tracker.last_seen(tag).map_or(at, |l| l.position);
                    subject.tracker.arm(tag, at);
                }
            }
            eprintln!(
                "  {count} vehicles reported stolen, {} parked ones armed",
                armed.len()
            );
        }
        if tick % (60_000 / TICK_MS) == 0 {
            let truth = |tag| city.position_of(tag).map(|xy| config.geo_of(xy));
            bound.extend(latest_read.iter().filter_map(|(&tag, &(_, _, station))| {
                Some(Answer {
                    tag,
                    at_ms: now,
                    station,
                    position: truth(tag)?,
                    truth: truth(tag)?,
                })
            }));
            for subject in &mut subjects {
                for &tag in &tags {
                    if let (Some(location), Some(truth)) =
                        (subject.tracker.location(tag), truth(tag))
                    {
                        subject.answers.push(Answer {
                            tag,
                            at_ms: now,
                            station: location.station,
                            position: location.position,
                            truth,
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
        report(subject.name, &subject.answers, &intervals);
    }
    report("bound: latest read's station", &bound, &intervals);
    if args.mobile_readers > 0 {
        println!();
        println!(
            "answers placed by a mobile reader ({} cars, range {READER_RANGE_M} m): right when the vehicle is within range of the place given",
            args.mobile_readers
        );
        println!("| tracker | answers | accuracy | distance p50 | p90 |");
        println!("|---|---:|---:|---:|---:|");
        for subject in &subjects {
            report_mobile(subject);
        }
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
    println!();
    println!(
        "watch rules ({} fence crossings by {} watched vehicles; stolen passes after the report):",
        fence_truth.crossings.len(),
        tags.len()
    );
    println!("| tracker | rule | alerts | precision | events | recall | delay p50 | p90 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let gap = tagwatch_tracker::TrackerConfig::default().visit_gap_ms;
    for subject in &subjects {
        let (enter, leave) = fence_truth.score(&subject.alerts, city.now_ms());
        let name = |rule: &str| format!("{} | {rule}", subject.name);
        println!("{}", enter.row(&name("geofence enter")));
        println!("{}", leave.row(&name("geofence exit")));
        println!(
            "{}",
            armed_truth.score(&subject.alerts).row(&name("armed_moved"))
        );
        // Sightings by roadside stations (the truth knows their ranges; a mobile reader's
        // placements are scored above).
        let at_stations: Vec<Alert> = subject
            .alerts
            .iter()
            .filter(|a| a.station.0 < FIRST_READER)
            .cloned()
            .collect();
        let sightings = rule_truth::score_stolen(&intervals, &stolen, &at_stations, gap);
        println!("{}", sightings.row(&name("stolen_sighting")));
    }
    if !clock_offsets.is_empty() {
        println!();
        println!(
            "({} of {} stations with clocks 2-10 minutes off)",
            clock_offsets.len(),
            city.stations().len()
        );
    }
}

/// Scores each prediction against the station the vehicle's range truly reached next (the first
/// other station it came within range of after the sighting) and when it did.
fn report_intercepts(subject: &Subject, intervals: &HashMap<TagId, Vec<TruthInterval>>) {
    let (mut scored, mut top1, mut top3) = (0usize, 0usize, 0usize);
    let (mut relative, mut absolute): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let sightings = subject
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::StolenSighting && !a.detail.intercept.is_empty());
    for alert in sightings {
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
fn report(name: &str, answers: &[Answer], intervals: &HashMap<TagId, Vec<TruthInterval>>) {
    let none = Vec::new();
    let (mut asked, mut right) = (0usize, 0usize);
    let mut lags: Vec<i64> = Vec::new();
    for answer in answers.iter().filter(|a| a.station.0 < FIRST_READER) {
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
        name,
        asked,
        right as f64 / asked.max(1) as f64,
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

/// Scores the answers that placed a vehicle at a mobile reader's fix: right when the vehicle
/// is within the reader's range of that place (as an answer at a station is right when the
/// vehicle is within the station's range).
fn report_mobile(subject: &Subject) {
    let mut distances: Vec<f64> = subject
        .answers
        .iter()
        .filter(|a| a.station.0 >= FIRST_READER)
        .map(|a| tagwatch_tracker::spatial::distance_m(a.position, a.truth))
        .collect();
    distances.sort_by(f64::total_cmp);
    let right = distances.iter().filter(|&&d| d <= READER_RANGE_M).count();
    let at = |p: f64| {
        distances
            .get(((distances.len().max(1) - 1) as f64 * p) as usize)
            .map_or("-".into(), |d| format!("{d:.0} m"))
    };
    println!(
        "| {} | {} | {:.4} | {} | {} |",
        subject.name,
        distances.len(),
        right as f64 / distances.len().max(1) as f64,
        at(0.5),
        at(0.9)
    );
}
