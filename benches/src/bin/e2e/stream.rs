//! The traffic: the simulator's reference city, recorded once as each station's one-second
//! reads, then replayed at any speed with time moving on, so a step can offer any load without
//! the simulator's own cost (stepping 300,000 vehicles) landing on the machine being measured.
//!
//! A bigger city is the same city with more vehicles on its roads: copy `k` of every tag is the
//! recording `7·k` seconds further on, with tag ids shifted by `k × tags`, so each copy drives
//! the same streets at a different moment and the stations hear `copies` times as many tags.

use tagwatch_gateway::wire::{Body, Frame, Record};
use tagwatch_model::{SessionId, StationId, TagId};
use tagwatch_sim::city::{City, CityConfig, Read};
use tagwatch_sim::firmware::MAX_RECORDS_PER_FRAME;

/// One read: (tag, ms into the second, rssi).
pub type Reading = (TagId, u16, i8);

/// Seconds between the recorded moments two consecutive tag copies replay.
const COPY_PHASE_S: usize = 7;

/// Recorded traffic: `seconds[k][s]` holds station `s`'s reads in second `k`.
pub struct Recording {
    pub stations: Vec<StationId>,
    pub seconds: Vec<Vec<Vec<Reading>>>,
    pub detections: usize,
    /// Tags in the recorded city (the shift between tag copies).
    pub tags: u32,
}

/// Records `seconds` of the city after a minute of warm-up (traffic flowing).
pub fn record(city: &CityConfig, seconds: usize) -> Recording {
    let mut sim = City::new(city.clone(), 0);
    sim.record_truth(false);
    let stations: Vec<StationId> = sim.stations().iter().map(|s| s.id).collect();
    let mut reads: Vec<Read> = Vec::new();
    for _ in 0..600 {
        sim.step(100, &mut reads);
        reads.clear();
    }
    let mut recorded = Vec::with_capacity(seconds);
    let mut detections = 0;
    for _ in 0..seconds {
        let second_start = sim.now_ms();
        for _ in 0..10 {
            sim.step(100, &mut reads);
        }
        let mut per_station: Vec<Vec<Reading>> = vec![Vec::new(); stations.len()];
        for r in reads.drain(..) {
            let into = u16::try_from(r.at_ms - second_start)
                .unwrap_or(999)
                .min(999);
            per_station[r.station_index].push((r.tag, into, r.rssi));
        }
        detections += per_station.iter().map(Vec::len).sum::<usize>();
        recorded.push(per_station);
    }
    Recording {
        stations,
        seconds: recorded,
        detections,
        tags: city.tags,
    }
}

impl Recording {
    /// Detections per simulated second, on average, of one copy of the city.
    pub fn rate(&self) -> f64 {
        self.detections as f64 / self.seconds.len().max(1) as f64
    }

    /// Station `station`'s reads in city second `second` with `copies` copies of every tag.
    pub fn reads(&self, second: usize, station: usize, copies: u32, out: &mut Vec<Reading>) {
        out.clear();
        for k in 0..copies {
            let at = (second + COPY_PHASE_S * k as usize) % self.seconds.len();
            let shift = k * self.tags;
            out.extend(
                self.seconds[at][station]
                    .iter()
                    .map(|&(tag, into, rssi)| (TagId(tag.0 + shift), into, rssi)),
            );
        }
    }

    /// The frames a station sends at the end of the simulated second starting at
    /// `sim_second_ms` (its clock), at most the firmware's records per frame each, numbered
    /// from `next_seq` on.
    pub fn frames(
        &self,
        station: usize,
        reads: &[Reading],
        session: SessionId,
        next_seq: &mut u32,
        sim_second_ms: i64,
    ) -> Vec<Frame> {
        let sent_at = sim_second_ms + 1_000;
        reads
            .chunks(MAX_RECORDS_PER_FRAME)
            .map(|chunk| {
                *next_seq += 1;
                Frame {
                    station: self.stations[station],
                    session,
                    seq: *next_seq,
                    time_ms: u64::try_from(sent_at).unwrap_or(0),
                    position: None,
                    body: Body::Detections(
                        chunk
                            .iter()
                            .map(|&(tag, into, rssi)| Record {
                                tag,
                                age_ms: 1_000 - into,
                                rssi,
                                reads: 1,
                                tag_flags: 0,
                                antenna: 1,
                            })
                            .collect(),
                    ),
                }
            })
            .collect()
    }
}
