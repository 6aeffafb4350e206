//! # Running the simulated city against a real gateway.
//!
//! Virtual time advances tick by tick: the city moves, stations hear tags, firmware builds frames,
//! and each station's link delivers them. Paced in real time (`speed`) for the demo, or as fast as
//! the server acknowledges for tests and benchmarks. The frames built are a pure function of the
//! seed; only delivery (loss, resends) depends on timing.

use crate::city::{City, CityConfig, Read, SimStation, TruthInterval};
use crate::firmware::Firmware;
use crate::link::{run_link, LinkConfig, LinkStats, Transport};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::wire::{Body, Frame};
use tagwatch_model::{SessionId, StationId, StationKey};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A station cut off from the server for a while: it keeps building frames (its flash is the
/// log) and sends the whole backlog when the link is back.
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub station: StationId,
    /// Virtual time after the start when the link goes down.
    pub starts_after_ms: i64,
    pub lasts_ms: i64,
}

/// A whole simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub city: CityConfig,
    /// Virtual time at the start (Unix ms).
    pub start_ms: i64,
    /// Virtual time to simulate; `None` runs until stopped.
    pub duration_ms: Option<i64>,
    pub tick_ms: i64,
    pub frame_interval_ms: i64,
    pub status_interval_ms: i64,
    /// Virtual milliseconds per real millisecond; `None`: as fast as the server acknowledges.
    pub speed: Option<f64>,
    /// In fast mode, the city waits while more frames than this per station are unsettled.
    pub max_unacked_per_station: usize,
    pub transport: Transport,
    pub loss: f64,
    pub resend_after: Duration,
    pub window: usize,
    /// Keep a copy of every frame built in the report (tests compare against it).
    pub keep_frames: bool,
    /// After the last frame is built, how long to wait for every frame to be settled.
    pub drain_timeout: Duration,
    /// Stations cut off from the server for a while.
    pub outages: Vec<Outage>,
    /// GPS trackers on some vehicles, and the server's GT06 listener.
    pub gps: Option<crate::gps::GpsConfig>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            city: CityConfig::default(),
            start_ms: tagwatch_model::time::now_ms(),
            duration_ms: None,
            tick_ms: 100,
            frame_interval_ms: 1_000,
            status_interval_ms: 30_000,
            speed: Some(1.0),
            max_unacked_per_station: 8,
            transport: Transport::Udp,
            loss: 0.0,
            resend_after: Duration::from_millis(500),
            window: 32,
            keep_frames: false,
            drain_timeout: Duration::from_secs(30),
            outages: Vec::new(),
            gps: None,
        }
    }
}

/// The station key the simulator uses for `station`: derived from the seed, so a server can be
/// provisioned with the same keys before the run.
pub fn station_key(seed: u64, station: StationId) -> StationKey {
    let mut rng = fastrand::Rng::with_seed(seed ^ (u64::from(station.0) << 20) ^ 0x7461_6777);
    let mut key = [0u8; 32];
    rng.fill(&mut key);
    StationKey(key)
}

/// The stations of the city a config describes, with their keys, for provisioning.
pub fn stations(config: &CityConfig) -> Vec<(SimStation, StationKey)> {
    let city = City::new(
        CityConfig {
            tags: 0,
            ..config.clone()
        },
        0,
    );
    city.stations()
        .iter()
        .map(|s| (s.clone(), station_key(config.seed, s.id)))
        .collect()
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct SimReport {
    /// Every frame built (when `keep_frames`).
    pub frames: Vec<Frame>,
    /// Which tag was in which station's range, when.
    pub truth: Vec<TruthInterval>,
    pub stats: LinkStats,
    pub detections_built: u64,
    pub virtual_ms: i64,
    pub real: Duration,
    /// What the GPS trackers did: fixes reported, acknowledged, connections opened and dropped.
    pub gps: [u64; 4],
}

/// Runs the city against the gateway at `server` until the duration is simulated (or `stop`),
/// then waits for every frame to be settled.
pub async fn run(config: SimConfig, server: SocketAddr, stop: CancellationToken) -> SimReport {
    let started = Instant::now();
    let mut city = City::new(config.city.clone(), config.start_ms);
    let mut session_rng = fastrand::Rng::with_seed(config.city.seed ^ 0x5e55_1015);
    let link_stop = CancellationToken::new();
    let mut firmware = Vec::new();
    let mut senders = Vec::new();
    let mut links = Vec::new();
    let mut unacked = Vec::new();
    for (i, station) in city.stations().iter().enumerate() {
        let session = SessionId(session_rng.u32(1..));
        let phase = session_rng.i64(0..config.frame_interval_ms.max(1) * 30);
        firmware.push(Firmware::new(
            station.id,
            session,
            config.start_ms,
            config.frame_interval_ms,
            config.status_interval_ms,
            phase,
        ));
        let (tx, rx) = mpsc::channel(4096);
        let counter = Arc::new(AtomicUsize::new(0));
        let link = LinkConfig {
            server,
            transport: config.transport,
            loss: config.loss,
            resend_after: config.resend_after,
            window: config.window,
            seed: config.city.seed ^ (i as u64) << 8,
            down: None,
            first_sends: None,
        };
        links.push(tokio::spawn(run_link(
            link,
            station_key(config.city.seed, station.id),
            rx,
            counter.clone(),
            link_stop.clone(),
        )));
        senders.push(tx);
        unacked.push(counter);
    }

    let gps_stats = Arc::new(crate::gps::GpsStats::default());
    let (mut trackers, gps_tasks) = match &config.gps {
        Some(gps) => crate::gps::start(
            gps,
            config.city.first_tag,
            config.start_ms,
            config.city.seed,
            gps_stats.clone(),
            link_stop.clone(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut report = SimReport::default();
    let mut reads: Vec<Read> = Vec::new();
    // Frames of stations whose link is down, per station, oldest first.
    let mut held: Vec<Vec<Frame>> = vec![Vec::new(); firmware.len()];
    let cut_off = |station: StationId, now: i64| {
        config.outages.iter().any(|o| {
            let from = config.start_ms + o.starts_after_ms;
            o.station == station && from <= now && now < from + o.lasts_ms
        })
    };
    let mut built: Vec<Frame> = Vec::new();
    let end = config.duration_ms.map(|d| config.start_ms + d);
    'ticks: while end.is_none_or(|end| city.now_ms() < end) && !stop.is_cancelled() {
        // Wait for the tick's end first, so no frame carries a time from the future.
        pace(
            &config,
            city.now_ms() + config.tick_ms,
            started,
            &unacked,
            &stop,
        )
        .await;
        reads.clear();
        city.step(config.tick_ms, &mut reads);
        for r in &reads {
            firmware[r.station_index].hear(r.tag, r.at_ms, r.rssi, r.moving);
        }
        for tracker in &mut trackers {
            if let Some(xy) = city.position_of(tracker.tag) {
                tracker.due(city.now_ms(), xy, config.city.geo_of(xy));
            }
        }
        for (i, fw) in firmware.iter_mut().enumerate() {
            fw.backlog = u32::try_from(unacked[i].load(Ordering::Relaxed)).unwrap_or(u32::MAX);
            built.clear();
            fw.poll(city.now_ms(), &mut built);
            for frame in built.drain(..) {
                if let Body::Detections(records) = &frame.body {
                    report.detections_built += records.len() as u64;
                }
                if config.keep_frames {
                    report.frames.push(frame.clone());
                }
                held[i].push(frame);
            }
            if cut_off(fw.station, city.now_ms()) {
                continue;
            }
            for frame in held[i].drain(..) {
                if senders[i].send(frame).await.is_err() {
                    break 'ticks;
                }
            }
        }
    }
    // A link still down at the end comes back now, with its backlog.
    for (i, frames) in held.into_iter().enumerate() {
        for frame in frames {
            let _ = senders[i].send(frame).await;
        }
    }
    report.virtual_ms = city.now_ms() - config.start_ms;
    report.truth = city.finish_truth();
    drop(senders);
    drop(trackers);
    let drained = async {
        let mut stats = LinkStats::default();
        for link in links {
            if let Ok(s) = link.await {
                stats.add(&s);
            }
        }
        for task in gps_tasks {
            let _ = task.await;
        }
        stats
    };
    let drain = tokio::spawn(drained);
    let deadline = tokio::time::sleep(config.drain_timeout);
    tokio::pin!(deadline);
    tokio::pin!(drain);
    report.stats = tokio::select! {
        stats = &mut drain => stats.unwrap_or_default(),
        () = &mut deadline => {
            link_stop.cancel();
            drain.await.unwrap_or_default()
        }
    };
    report.real = started.elapsed();
    report.gps = gps_stats.snapshot();
    report
}

async fn pace(
    config: &SimConfig,
    tick_end_ms: i64,
    started: Instant,
    unacked: &[Arc<AtomicUsize>],
    stop: &CancellationToken,
) {
    match config.speed {
        Some(speed) if speed > 0.0 => {
            let virtual_elapsed = (tick_end_ms - config.start_ms) as f64;
            let due = started + Duration::from_secs_f64(virtual_elapsed / speed / 1000.0);
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = stop.cancelled() => {}
            }
        }
        _ => {
            let limit = config.max_unacked_per_station.max(1) * unacked.len();
            while unacked
                .iter()
                .map(|u| u.load(Ordering::Relaxed))
                .sum::<usize>()
                > limit
                && !stop.is_cancelled()
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
