//! # `tagwatch-recovery`: time from a theft report to recovery, with and without prediction.
//!
//! The mission's own figure. The simulated city drives into the tracker (as `tagwatch-truth`
//! does); after a warm-up (the tracker learns the moves) vehicles are stolen one after another:
//! the thief drives without stopping to a den at least half the city away and hides it there
//! for an hour. The owner reports the theft `--report-delay` minutes later, with the report's
//! look-back (its sightings of the last ten minutes). Two patrol
//! fleets, identical at the start (same units, same places), answer the same alerts through a
//! dispatcher that uses only what TagWatch offers: the `stolen_sighting` alerts, TagWatch's
//! ranking of the nearest available units from the sighting, and the predicted next stations.
//! One fleet intercepts (drives to a predicted station it can reach first, else to the last
//! sighting); the other chases the last sighting. A vehicle is recovered when a unit is at a station (within 15 m of it)
//! while the vehicle is truly within that station's range; a case not recovered within
//! `--follow` minutes is counted as not recovered and its unit freed.
//!
//! `cargo run --release -p tagwatch-benches --bin tagwatch-recovery -- --plot target/recovery.svg`

use clap::Parser;
use plotters::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use tagwatch_benches::city_feed::{self, TICK_MS};
use tagwatch_model::{AlertKind, CaseId, PatrolUnit, TagId};
use tagwatch_sim::city::{City, CityConfig};
use tagwatch_sim::patrol::{
    Dispatcher, Patrol, PatrolConfig, Policy, Predicted, Sighting, AT_STATION_M,
};
use tagwatch_tracker::Command;

#[derive(Debug, Parser)]
#[command(about = "Time from theft report to recovery, with and without intercept prediction")]
struct Args {
    /// Tagged vehicles in the city.
    #[arg(long, default_value_t = 3_000)]
    tags: u32,
    /// Thefts reported, one after another after the warm-up.
    #[arg(long, default_value_t = 60)]
    thefts: u32,
    /// Minutes between two thefts.
    #[arg(long, default_value_t = 1)]
    every: i64,
    /// Minutes from a theft to its report.
    #[arg(long, default_value_t = 2)]
    report_delay: i64,
    /// Patrol units in each fleet.
    #[arg(long, default_value_t = 20)]
    units: u32,
    /// Units' speed on a call, m/s.
    #[arg(long, default_value_t = 12.0)]
    unit_speed: f64,
    /// Minutes a case is followed before it counts as not recovered.
    #[arg(long, default_value_t = 30)]
    follow: i64,
    /// Minutes the tracker learns moves before the first report.
    #[arg(long, default_value_t = 10)]
    warm_up: i64,
    /// Share of the blocks along which a vehicle stops for 30 s to 10 min.
    #[arg(long, default_value_t = 0.1)]
    parked_fraction: f64,
    #[arg(long, default_value_t = 0.93)]
    read_rate: f64,
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Where to draw the distribution (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// A theft case as one fleet works it.
#[derive(Debug, Clone, Copy)]
struct Case {
    reported_ms: i64,
    /// Minutes from report to recovery; `None` while open or when given up.
    recovered_after_min: Option<f64>,
    closed: bool,
}

/// One fleet and its dispatcher, and the cases as they went for it.
struct Fleet {
    name: &'static str,
    patrol: Patrol,
    dispatcher: Dispatcher,
    cases: HashMap<TagId, Case>,
}

/// The look-back of a theft report without a time: the last ten minutes.
const LOOK_BACK_MS: i64 = 600_000;

fn main() {
    let args = Args::parse();
    let config = CityConfig {
        seed: args.seed,
        tags: args.tags,
        read_rate_center: args.read_rate,
        parked_fraction: args.parked_fraction,
        ..CityConfig::default()
    };
    let patrol = Patrol::new(
        &config,
        PatrolConfig {
            units: args.units,
            speed_mps: args.unit_speed,
            seed: args.seed,
        },
    );
    let mut fleets: Vec<Fleet> = [
        ("intercept (predicted stations)", Policy::Intercept),
        ("chase the last sighting", Policy::ChaseLastSighting),
    ]
    .into_iter()
    .map(|(name, policy)| Fleet {
        name,
        patrol: patrol.clone(),
        dispatcher: Dispatcher::new(policy),
        cases: HashMap::new(),
    })
    .collect();
    let mut city = City::new(config.clone(), 1_800_000_000_000);
    let mut tracker = city_feed::tracker_for(&city);
    let mut rng = fastrand::Rng::with_seed(args.seed ^ 0x7e57);
    let tags: Vec<TagId> = city.tags().collect();
    let minutes =
        args.warm_up + i64::from(args.thefts) * args.every + args.report_delay + args.follow;
    eprintln!(
        "{} stations, {} vehicles, {} units per fleet, {} thefts, {minutes} simulated minutes…",
        city.stations().len(),
        tags.len(),
        args.units,
        args.thefts
    );
    let mut reads = Vec::new();
    let mut seq = 0u32;
    let start = city.now_ms();
    // Which vehicles are stolen, and when: distinct, at random, one every `every` minutes.
    let mut thefts: Vec<(i64, TagId)> = Vec::new();
    while thefts.len() < args.thefts as usize && thefts.len() < tags.len() {
        let tag = tags[rng.usize(..tags.len())];
        if thefts.iter().all(|&(_, t)| t != tag) {
            let at = start + (args.warm_up + thefts.len() as i64 * args.every) * 60_000;
            thefts.push((at, tag));
        }
    }
    let (mut stolen, mut reported) = (0usize, 0usize);
    for tick in 1..=minutes * 60_000 / TICK_MS {
        reads.clear();
        city.step(TICK_MS, &mut reads);
        let now = city.now_ms();
        let mut alerts = Vec::new();
        for frame in city_feed::frames(&city, &reads) {
            seq += 1;
            alerts.extend(city_feed::apply(&mut tracker, seq, &frame, true, 0, now));
        }
        if tick % 10 == 0 {
            tracker.take_changes();
            tracker.maintain();
        }
        while let Some(&(at, tag)) = thefts.get(stolen).filter(|(at, _)| now >= *at) {
            debug_assert!(at <= now);
            city.steal(tag);
            stolen += 1;
        }
        while let Some(&(at, tag)) = thefts
            .get(reported)
            .filter(|(at, _)| now >= at + args.report_delay * 60_000)
        {
            debug_assert!(at <= now);
            reported += 1;
            for fleet in &mut fleets {
                fleet.cases.insert(
                    tag,
                    Case {
                        reported_ms: now,
                        recovered_after_min: None,
                        closed: false,
                    },
                );
            }
            let report = Command::Stolen {
                tag,
                case: CaseId(reported as i64),
                since_ms: Some(now - LOOK_BACK_MS),
                stored: None,
            };
            alerts.extend(tracker.command(report, now));
        }
        for alert in alerts
            .iter()
            .filter(|a| a.kind == AlertKind::StolenSighting)
        {
            let Some(tag) = alert.tag else { continue };
            let sighting = Sighting {
                tag,
                position: alert.position,
                speed_mps: alert.detail.speed_mps,
                predicted: alert
                    .detail
                    .intercept
                    .iter()
                    .map(|i| Predicted {
                        position: tagwatch_model::GeoPoint {
                            lat: i.lat,
                            lon: i.lon,
                        },
                        probability: i.probability,
                        eta_s: i.eta_s,
                        eta_high_s: i.eta_high_s,
                    })
                    .collect(),
            };
            for fleet in &mut fleets {
                if fleet.cases.get(&tag).is_none_or(|c| c.closed) {
                    continue;
                }
                let nearest = nearest_available(&fleet.patrol, alert.position, now);
                fleet
                    .dispatcher
                    .on_sighting(&mut fleet.patrol, &sighting, &nearest, now);
            }
        }
        for fleet in &mut fleets {
            fleet.dispatcher.tick(&mut fleet.patrol, now);
            fleet.patrol.step(TICK_MS);
            close_cases(fleet, &city, now, args.follow);
        }
        if tick % (600_000 / TICK_MS) == 0 {
            eprintln!("  minute {} of {minutes}", tick * TICK_MS / 60_000);
        }
    }
    println!(
        "time to recovery: {} thefts (reported {} min later), {} vehicles, {} units at {} m/s, followed {} min:",
        args.thefts, args.report_delay, args.tags, args.units, args.unit_speed, args.follow
    );
    println!("| dispatcher | recovered | ≤ 5 min | ≤ 10 min | ≤ 25 min | p50 | p90 |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for fleet in &fleets {
        report(fleet);
    }
    let d = &fleets[0].dispatcher;
    println!(
        "(intercept: {} waits ahead of a vehicle, {} of them timed out with the vehicle not come)",
        d.ambushes_set, d.ambushes_missed
    );
    if let Some(path) = &args.plot {
        match plot(path, &fleets, args.follow) {
            Ok(()) => eprintln!("plot: {}", path.display()),
            Err(e) => eprintln!("plot failed: {e}"),
        }
    }
}

/// TagWatch's ranking of the available units from `at`, as the alert's file gives it, from the
/// positions the units reported.
fn nearest_available(patrol: &Patrol, at: tagwatch_model::GeoPoint, now: i64) -> Vec<u32> {
    let reported: Vec<PatrolUnit> = patrol
        .units()
        .iter()
        .map(|u| PatrolUnit {
            unit: u.id.to_string(),
            officer: String::new(),
            position: patrol.position(u),
            available: u.is_available(),
            reported_at_ms: now,
        })
        .collect();
    tagwatch_api::handlers::response::nearest_units(&reported, at, now)
        .into_iter()
        .filter_map(|(u, _)| u.unit.parse().ok())
        .collect()
}

/// Closes the cases a unit has caught up with, and those followed too long.
fn close_cases(fleet: &mut Fleet, city: &City, now: i64, follow_min: i64) {
    for (&tag, case) in fleet.cases.iter_mut().filter(|(_, c)| !c.closed) {
        let unit = fleet.patrol.unit_on(tag).map(|u| (u.id, u.xy()));
        let caught = unit.is_some_and(|(_, xy)| {
            city.in_range_of(tag).any(|s| {
                let [x, y] = s.xy();
                (x - xy[0]).hypot(y - xy[1]) <= AT_STATION_M
            })
        });
        let minutes = (now - case.reported_ms) as f64 / 60_000.0;
        if caught {
            case.recovered_after_min = Some(minutes);
        }
        if caught || minutes >= follow_min as f64 {
            case.closed = true;
            if let Some((id, _)) = unit {
                fleet.patrol.free(id);
            }
        }
    }
}

fn sorted_times(fleet: &Fleet) -> Vec<f64> {
    let mut times: Vec<f64> = fleet
        .cases
        .values()
        .filter_map(|c| c.recovered_after_min)
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

fn report(fleet: &Fleet) {
    let times = sorted_times(fleet);
    let n = fleet.cases.len().max(1) as f64;
    let within = |m: f64| times.iter().filter(|&&t| t <= m).count() as f64 / n;
    // Percentiles over every case: one not recovered counts as longer than any.
    let pct = |p: f64| -> String {
        let i = ((fleet.cases.len().max(1) - 1) as f64 * p).round() as usize;
        times
            .get(i)
            .map_or("not recovered".into(), |t| format!("{t:.1} min"))
    };
    println!(
        "| {} | {} of {} | {:.0} % | {:.0} % | {:.0} % | {} | {} |",
        fleet.name,
        times.len(),
        fleet.cases.len(),
        within(5.0) * 100.0,
        within(10.0) * 100.0,
        within(25.0) * 100.0,
        pct(0.5),
        pct(0.9)
    );
}

/// The share of thefts recovered within each time, one line per dispatcher.
fn plot(path: &PathBuf, fleets: &[Fleet], follow: i64) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Thefts recovered within a time of the report",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..follow as f64, 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc("minutes from the theft report")
        .y_desc("share of thefts recovered")
        .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
        .draw()?;
    let colours = [RGBColor(31, 119, 180), RGBColor(214, 39, 40)];
    for (fleet, colour) in fleets.iter().zip(colours) {
        let n = fleet.cases.len().max(1) as f64;
        let mut points = vec![(0.0, 0.0)];
        for (i, &t) in sorted_times(fleet).iter().enumerate() {
            points.push((t, i as f64 / n));
            points.push((t, (i + 1) as f64 / n));
        }
        let last = points.last().map_or(0.0, |p| p.1);
        points.push((follow as f64, last));
        let style = colour.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(fleet.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    for minutes in [5.0, 10.0, 25.0] {
        chart.draw_series(LineSeries::new(
            [(minutes, 0.0), (minutes, 1.0)],
            BLACK.mix(0.2).stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
