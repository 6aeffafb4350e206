//! The traffic: the simulator's reference city, recorded once as each station's one-second
//! frames, then replayed at any speed with time moving on, so a step can offer any load without
//! the simulator's own cost (stepping 300,000 vehicles) landing on the machine being measured.

use tagwatch_gateway::wire::{Body, Frame, Record};
use tagwatch_model::{SessionId, StationId, TagId};
use tagwatch_sim::city::{City, CityConfig, Read};

/// One station's reads in one simulated second: (tag, ms into the second, rssi).
pub struct Second {
    pub station: usize,
    pub reads: Vec<(TagId, u16, i8)>,
}

/// Recorded traffic: `seconds[k]` holds every station's reads of second `k`.
pub struct Recording {
    pub stations: Vec<StationId>,
    pub seconds: Vec<Vec<Second>>,
    pub detections: usize,
}

/// Records `seconds` of the city after a minute of warm-up (traffic flowing).
pub fn record(city: &CityConfig, seconds: usize) -> Recording {
    let start = 0;
    let mut sim = City::new(city.clone(), start);
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
        let mut per_station: Vec<Vec<(TagId, u16, i8)>> = vec![Vec::new(); stations.len()];
        for r in reads.drain(..) {
            let into = u16::try_from(r.at_ms - second_start)
                .unwrap_or(999)
                .min(999);
            per_station[r.station_index].push((r.tag, into, r.rssi));
        }
        detections += per_station.iter().map(Vec::len).sum::<usize>();
        recorded.push(
            per_station
                .into_iter()
                .enumerate()
                .filter(|(_, r)| !r.is_empty())
                .map(|(station, reads)| Second { station, reads })
                .collect(),
        );
    }
    Recording {
        stations,
        seconds: recorded,
        detections,
    }
}

impl Recording {
    /// Detections per simulated second, on average.
    pub fn rate(&self) -> f64 {
        self.detections as f64 / self.seconds.len().max(1) as f64
    }

    /// The frame a station sends at the end of simulated second `sim_second_ms` (its clock),
    /// with the reads of recorded second `k`.
    pub fn frame(&self, s: &Second, session: SessionId, seq: u32, sim_second_ms: i64) -> Frame {
        let sent_at = sim_second_ms + 1_000;
        Frame {
            station: self.stations[s.station],
            session,
            seq,
            time_ms: u64::try_from(sent_at).unwrap_or(0),
            position: None,
            body: Body::Detections(
                s.reads
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
    }
}
