//! Offers the recorded city to the stations' uplinks, second by second, at a given speed and
//! number of tag copies, keeping each station's sequence numbers and the city clock running
//! from step to step.
//!
//! Each station sends its second at its own moment within the second, spread evenly, as
//! stations on their own clocks do. (Handing every station's second over at once made a
//! synchronized burst each second, the whole city's traffic within the ~100 ms it took to build;
//! alerts then waited behind up to a second's worth of frames; `--synchronized` still does.)

use crate::stream::{Reading, Recording};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::wire::Frame;
use tagwatch_model::SessionId;
use tagwatch_sim::link::FirstSends;
use tokio::sync::mpsc;

/// Frames that carry a stolen tag, by (station, seq), with when their station first sent them
/// (stamped by its uplink), for alert latency.
pub type Handoffs = FirstSends;

/// Moments within a second at which stations send: station `i` of `n` sends in moment
/// `i * MOMENTS_PER_SECOND / n`.
const MOMENTS_PER_SECOND: usize = 100;

/// What one stretch of offered traffic amounted to.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offered {
    pub detections: usize,
    /// Frames the uplink's queue refused (the station's own buffer was full).
    pub overflow_frames: usize,
    /// Wall-clock seconds the stretch lasted.
    pub secs: f64,
}

pub struct Replay {
    pub recording: Arc<Recording>,
    pub uplinks: Vec<mpsc::Sender<Frame>>,
    pub handoffs: Handoffs,
    /// The city's tags `t` with `(t - first_tag) % stolen_every == 0` are reported stolen.
    pub first_tag: u32,
    pub stolen_every: u32,
    pub session: SessionId,
    /// Every station sends at the start of each second.
    pub synchronized: bool,
    seqs: Vec<u32>,
    /// City seconds offered so far; the city clock is `sim_start_ms` plus these.
    sim_second: i64,
    pub sim_start_ms: i64,
}

impl Replay {
    pub fn new(
        recording: Arc<Recording>,
        uplinks: Vec<mpsc::Sender<Frame>>,
        handoffs: Handoffs,
        first_tag: u32,
        stolen_every: u32,
    ) -> Self {
        Self {
            seqs: vec![0; recording.stations.len()],
            recording,
            uplinks,
            handoffs,
            first_tag,
            stolen_every,
            session: SessionId(1),
            synchronized: false,
            sim_second: 0,
            sim_start_ms: tagwatch_model::time::now_ms() / 1_000 * 1_000,
        }
    }

    /// The last sequence number each station has built, by station index.
    pub fn seqs(&self) -> &[u32] {
        &self.seqs
    }

    /// The city clock: the end of the last second offered.
    pub fn sim_now_ms(&self) -> i64 {
        self.sim_start_ms + self.sim_second * 1_000
    }

    /// Offers `city_seconds` of the city with `copies` tag copies at `speed` times real time;
    /// returns once the last second is handed over and its time is up.
    pub async fn offer(&mut self, city_seconds: i64, speed: f64, copies: u32) -> Offered {
        let started = Instant::now();
        let mut offered = Offered::default();
        let mut reads: Vec<Reading> = Vec::new();
        let recorded = self.recording.seconds.len();
        for k in 0..city_seconds {
            let due = started + Duration::from_secs_f64(k as f64 / speed);
            tokio::time::sleep_until(due.into()).await;
            let second = (self.sim_second as usize) % recorded;
            let sim_ms = self.sim_now_ms();
            self.sim_second += 1;
            let stations = self.recording.stations.len();
            for station in 0..stations {
                let moment = if self.synchronized {
                    0
                } else {
                    station * MOMENTS_PER_SECOND / stations
                };
                let at = due
                    + Duration::from_secs_f64(moment as f64 / MOMENTS_PER_SECOND as f64 / speed);
                tokio::time::sleep_until(at.into()).await;
                self.recording.reads(second, station, copies, &mut reads);
                if reads.is_empty() {
                    continue;
                }
                let frames = self.recording.frames(
                    station,
                    &reads,
                    self.session,
                    &mut self.seqs[station],
                    sim_ms,
                );
                for frame in frames {
                    let records = match &frame.body {
                        tagwatch_gateway::wire::Body::Detections(r) => &r[..],
                        _ => &[],
                    };
                    offered.detections += records.len();
                    // Only the city's own tags are reported stolen, not their copies.
                    let stolen =
                        |i: u32| i < self.recording.tags && i.is_multiple_of(self.stolen_every);
                    if records.iter().any(|r| stolen(r.tag.0 - self.first_tag)) {
                        self.handoffs
                            .lock()
                            .expect("lock")
                            .insert((frame.station.0, frame.seq), None);
                    }
                    if self.uplinks[station].try_send(frame).is_err() {
                        offered.overflow_frames += 1;
                    }
                }
                // Building a second of a busy city takes this worker for a good while: the
                // server's tasks queued on it (and the alert listener) run between stations.
                tokio::task::yield_now().await;
            }
        }
        let secs = city_seconds as f64 / speed;
        tokio::time::sleep_until((started + Duration::from_secs_f64(secs)).into()).await;
        offered.secs = started.elapsed().as_secs_f64();
        offered
    }
}
