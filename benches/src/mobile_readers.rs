//! # Mobile readers for the truth command: patrol cars with a reader, roaming the city.
//!
//! Each is provisioned as a station whose surveyed place is its precinct, outside the city (as
//! a patrol car's home is not where it reads), and drives from one random intersection to the
//! next. Every tick it hears the vehicles within its range, each with the chance that one of
//! its beacons falls in the tick and is read, and sends one frame with its own GPS position
//! (the wire's `POSITION` block). The truth command scores where the tracker then places those
//! vehicles against where they truly are.

use tagwatch_model::{Detection, GeoPoint, Station, StationId};
use tagwatch_sim::city::{City, CityConfig};
use tagwatch_sim::patrol::{Patrol, PatrolConfig};

/// A car's reader hears a tag this far away (a handheld or roof antenna: less than a mast).
pub const READER_RANGE_M: f64 = 60.0;
/// Its station ids start here.
pub const FIRST_READER: u32 = 90_001;
/// Chance a beacon in range is read.
const READ_RATE: f64 = 0.9;

/// The cars and their readers.
#[derive(Debug)]
pub struct MobileReaders {
    city: CityConfig,
    patrol: Patrol,
    rng: fastrand::Rng,
}

/// One reader's frame: its id, where it was, and what it heard.
pub type ReaderFrame = (StationId, GeoPoint, Vec<Detection>);

impl MobileReaders {
    pub fn new(city: &CityConfig, count: u32, seed: u64) -> Self {
        let config = PatrolConfig {
            units: count,
            speed_mps: 10.0,
            seed,
        };
        Self {
            city: city.clone(),
            patrol: Patrol::new(city, config),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The readers as stations, surveyed at their precinct 3 km south-west of the city.
    pub fn stations(&self) -> Vec<Station> {
        self.patrol
            .units()
            .iter()
            .map(|u| Station {
                id: StationId(FIRST_READER - 1 + u.id),
                name: format!("patrol car P-{}", u.id),
                position: self.city.geo_of([-3_000.0, -3_000.0]),
            })
            .collect()
    }

    /// Drives every car for a tick and returns each one's frame (those that heard something).
    pub fn step(&mut self, city: &City, tick_ms: i64, now_ms: i64) -> Vec<ReaderFrame> {
        let (w, h, s) = (self.city.grid_w, self.city.grid_h, self.city.spacing_m);
        let idle: Vec<u32> = self
            .patrol
            .units()
            .iter()
            .filter(|u| u.is_idle())
            .map(|u| u.id)
            .collect();
        for id in idle {
            let corner = [
                f64::from(self.rng.u32(0..w)) * s,
                f64::from(self.rng.u32(0..h)) * s,
            ];
            self.patrol.roam(id, self.city.geo_of(corner));
        }
        self.patrol.step(tick_ms);
        let p = READ_RATE * tick_ms as f64 / self.city.beacon_interval_ms as f64;
        let mut frames = Vec::new();
        for unit in self.patrol.units() {
            let [ux, uy] = unit.xy();
            let station = StationId(FIRST_READER - 1 + unit.id);
            let heard: Vec<Detection> = city
                .tags()
                .filter_map(|tag| {
                    let [x, y] = city.position_of(tag)?;
                    let d = (x - ux).hypot(y - uy);
                    (d <= READER_RANGE_M).then_some((tag, d))
                })
                .filter(|_| self.rng.f64() < p)
                .map(|(tag, d)| Detection {
                    tag,
                    station,
                    seen_at_ms: now_ms,
                    rssi: (-40.0 - 20.0 * d.max(1.0).log10()) as i8,
                    reads: 1,
                    tag_flags: 0,
                })
                .collect();
            if !heard.is_empty() {
                frames.push((station, self.patrol.position(unit), heard));
            }
        }
        frames
    }
}
