//! # The simulated city: a road grid, stations at intersections, tagged vehicles driving routes.
//!
//! Everything is a pure function of the seed and virtual time: [`City::step`] advances the world
//! by one tick and returns the reads each station heard, and records the ground truth (which tag
//! was within which station's range, when) at tick resolution.

use rstar::primitives::GeomWithData;
use rstar::RTree;
use tagwatch_model::{GeoPoint, StationId, TagId};

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

/// The shape of the city and its radio.
#[derive(Debug, Clone)]
pub struct CityConfig {
    pub seed: u64,
    /// Intersections along x and y.
    pub grid_w: u32,
    pub grid_h: u32,
    /// Distance between neighbouring intersections, metres.
    pub spacing_m: f64,
    /// A station's radio range, metres. Over half the spacing, neighbours overlap.
    pub range_m: f64,
    pub tags: u32,
    /// Each tag beacons this often (with its own phase).
    pub beacon_interval_ms: i64,
    /// Probability a station hears a beacon at its own mast; it falls linearly to half of it at
    /// the edge of the range (an average near 65 % over the range).
    pub read_rate_center: f64,
    /// Fraction of vehicles parked at any moment.
    pub parked_fraction: f64,
    /// South-west corner of the grid.
    pub origin: GeoPoint,
    /// First station id (stations are numbered from here) and first tag id.
    pub first_station: u32,
    pub first_tag: u32,
}

impl Default for CityConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            grid_w: 32,
            grid_h: 32,
            spacing_m: 200.0,
            range_m: 110.0,
            tags: 300_000,
            beacon_interval_ms: 2_000,
            read_rate_center: 0.87,
            parked_fraction: 0.5,
            origin: GeoPoint {
                lat: 23.25,
                lon: 116.55,
            },
            first_station: 1001,
            first_tag: 100_001,
        }
    }
}

impl CityConfig {
    /// Metres east and north of the grid's south-west corner, in degrees.
    pub fn geo_of(&self, xy: [f64; 2]) -> GeoPoint {
        to_geo(self.origin, xy)
    }

    /// The city's roads, for a map: each grid line from end to end, as its two ends.
    pub fn roads(&self) -> Vec<[GeoPoint; 2]> {
        let (w, h) = (f64::from(self.grid_w - 1), f64::from(self.grid_h - 1));
        let s = self.spacing_m;
        let columns =
            (0..self.grid_w).map(|x| [[f64::from(x) * s, 0.0], [f64::from(x) * s, h * s]]);
        let rows = (0..self.grid_h).map(|y| [[0.0, f64::from(y) * s], [w * s, f64::from(y) * s]]);
        columns
            .chain(rows)
            .map(|[a, b]| [self.geo_of(a), self.geo_of(b)])
            .collect()
    }

    /// Degrees to metres east and north of the grid's south-west corner.
    pub fn xy_of(&self, p: GeoPoint) -> [f64; 2] {
        let o = self.origin;
        [
            (p.lon - o.lon) * METRES_PER_DEGREE * o.lat.to_radians().cos(),
            (p.lat - o.lat) * METRES_PER_DEGREE,
        ]
    }
}

/// A station of the city.
#[derive(Debug, Clone)]
pub struct SimStation {
    pub id: StationId,
    pub position: GeoPoint,
    xy: [f64; 2],
}

impl SimStation {
    /// Metres east and north of the grid's south-west corner.
    pub fn xy(&self) -> [f64; 2] {
        self.xy
    }
}

/// One beacon heard by one station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read {
    pub station_index: usize,
    pub tag: TagId,
    pub at_ms: i64,
    pub rssi: i8,
    /// The tag's accelerometer says it is moving (the wire's `MOVING` flag).
    pub moving: bool,
}

/// Ground truth: `tag` was within `station`'s range from `enter_ms` to `exit_ms` (tick resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruthInterval {
    pub tag: TagId,
    pub station: StationId,
    pub enter_ms: i64,
    pub exit_ms: i64,
}

#[derive(Debug, Clone, Copy)]
enum Motion {
    /// Stopped mid-block; then drives on to `resume_to` (or picks a new road).
    Parked {
        until_ms: i64,
        resume_to: Option<(u32, u32)>,
    },
    /// Driving to the intersection `to`, parking on the way after `stop_in_m` metres if set.
    Driving {
        to: (u32, u32),
        speed_mps: f64,
        stop_in_m: Option<f64>,
    },
}

#[derive(Debug, Clone)]
struct Vehicle {
    tag: TagId,
    xy: [f64; 2],
    at: (u32, u32),
    motion: Motion,
    beacon_phase_ms: i64,
    /// The intersection it is driving to: traffic has a direction, as a city's does.
    dest: (u32, u32),
    /// Along x first, then y (else the other way): one turn per trip.
    x_first: bool,
    /// Stolen: driving to a den far away without stopping, then hidden there.
    fleeing: bool,
}

/// The whole simulated world.
#[derive(Debug)]
pub struct City {
    config: CityConfig,
    stations: Vec<SimStation>,
    index: RTree<GeomWithData<[f64; 2], usize>>,
    vehicles: Vec<Vehicle>,
    rng: fastrand::Rng,
    now_ms: i64,
    /// Open truth intervals per vehicle: (station index, enter time).
    in_range: Vec<Vec<(usize, i64)>>,
    truth: Vec<TruthInterval>,
    record_truth: bool,
}

impl City {
    /// Builds the city at virtual time `start_ms`.
    pub fn new(config: CityConfig, start_ms: i64) -> Self {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let mut stations = Vec::new();
        for gy in 0..config.grid_h {
            for gx in 0..config.grid_w {
                let xy = [
                    f64::from(gx) * config.spacing_m,
                    f64::from(gy) * config.spacing_m,
                ];
                stations.push(SimStation {
                    id: StationId(config.first_station + gy * config.grid_w + gx),
                    position: to_geo(config.origin, xy),
                    xy,
                });
            }
        }
        let index = RTree::bulk_load(
            stations
                .iter()
                .enumerate()
                .map(|(i, s)| GeomWithData::new(s.xy, i))
                .collect(),
        );
        let vehicles: Vec<Vehicle> = (0..config.tags)
            .map(|i| {
                let at = (rng.u32(0..config.grid_w), rng.u32(0..config.grid_h));
                let mut vehicle = Vehicle {
                    tag: TagId(config.first_tag + i),
                    xy: [
                        f64::from(at.0) * config.spacing_m,
                        f64::from(at.1) * config.spacing_m,
                    ],
                    at,
                    dest: at,
                    x_first: true,
                    fleeing: false,
                    motion: Motion::Parked {
                        until_ms: start_ms,
                        resume_to: None,
                    },
                    beacon_phase_ms: rng.i64(0..config.beacon_interval_ms),
                };
                vehicle.motion = next_motion(&config, &mut rng, &mut vehicle, start_ms);
                vehicle
            })
            .collect();
        let in_range = vec![Vec::new(); vehicles.len()];
        Self {
            config,
            stations,
            index,
            vehicles,
            rng,
            now_ms: start_ms,
            in_range,
            truth: Vec::new(),
            record_truth: true,
        }
    }

    /// Ground truth costs memory on long runs; benchmarks switch it off.
    pub fn record_truth(&mut self, on: bool) {
        self.record_truth = on;
    }

    pub fn stations(&self) -> &[SimStation] {
        &self.stations
    }

    pub fn tags(&self) -> impl Iterator<Item = TagId> + '_ {
        self.vehicles.iter().map(|v| v.tag)
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// The stations whose range the vehicle with this tag is within now (ground truth, as of
    /// the last tick; recorded only while truth is).
    pub fn in_range_of(&self, tag: TagId) -> impl Iterator<Item = &SimStation> + '_ {
        let vi = tag.0.checked_sub(self.config.first_tag).map(|i| i as usize);
        vi.and_then(|i| self.in_range.get(i))
            .into_iter()
            .flatten()
            .map(|&(si, _)| &self.stations[si])
    }

    /// Where the vehicle with this tag truly is: metres east and north of the grid's corner.
    pub fn position_of(&self, tag: TagId) -> Option<[f64; 2]> {
        let i = tag.0.checked_sub(self.config.first_tag)?;
        self.vehicles.get(i as usize).map(|v| v.xy)
    }

    /// A thief takes the vehicle with this tag: from now on it drives, without stopping, to a
    /// den at least half the city away (in blocks), in the middle of a block where no station
    /// hears it, and stays there an hour.
    pub fn steal(&mut self, tag: TagId) {
        let Some(v) = tag
            .0
            .checked_sub(self.config.first_tag)
            .and_then(|i| self.vehicles.get_mut(i as usize))
        else {
            return;
        };
        let (w, h) = (self.config.grid_w, self.config.grid_h);
        let far = (w + h) / 2;
        v.dest = loop {
            let d = (self.rng.u32(0..w), self.rng.u32(0..h));
            if v.at.0.abs_diff(d.0) + v.at.1.abs_diff(d.1) >= far {
                break d;
            }
        };
        v.x_first = self.rng.bool();
        v.fleeing = true;
        match &mut v.motion {
            // Taken from where it was parked: it leaves at once, for the den.
            Motion::Parked { until_ms, .. } => *until_ms = self.now_ms,
            Motion::Driving { stop_in_m, .. } => *stop_in_m = None,
        }
    }

    /// Is the vehicle with this tag moving now?
    pub fn is_driving(&self, tag: TagId) -> bool {
        self.vehicles
            .iter()
            .any(|v| v.tag == tag && matches!(v.motion, Motion::Driving { .. }))
    }

    /// Advances the world by `tick_ms`, appending the reads heard during the tick to `reads`.
    pub fn step(&mut self, tick_ms: i64, reads: &mut Vec<Read>) {
        let end = self.now_ms + tick_ms;
        let interval = self.config.beacon_interval_ms;
        let range = self.config.range_m;
        for vi in 0..self.vehicles.len() {
            self.drive(vi, tick_ms, end);
            let vehicle = &self.vehicles[vi];
            // Beacons whose time falls in (now, end].
            let phase = vehicle.beacon_phase_ms;
            let mut beacon = self.now_ms - (self.now_ms - phase).rem_euclid(interval) + interval;
            let xy = vehicle.xy;
            let tag = vehicle.tag;
            let moving = matches!(vehicle.motion, Motion::Driving { .. });
            let mut near: Vec<(usize, f64)> = self
                .index
                .locate_within_distance(xy, range * range)
                .map(|s| (s.data, distance(s.geom(), &xy)))
                .collect();
            near.sort_by_key(|&(i, _)| i);
            while beacon <= end {
                for &(si, d) in &near {
                    let p = self.config.read_rate_center * (1.0 - 0.5 * d / range);
                    if self.rng.f64() < p {
                        let noise = self.rng.f64() * 6.0 - 3.0;
                        let rssi = (-40.0 - 20.0 * d.max(1.0).log10() + noise).clamp(-127.0, 0.0);
                        reads.push(Read {
                            station_index: si,
                            tag,
                            at_ms: beacon,
                            rssi: rssi as i8,
                            moving,
                        });
                    }
                }
                beacon += interval;
            }
            if self.record_truth {
                self.update_truth(vi, &near, end);
            }
        }
        self.now_ms = end;
    }

    fn drive(&mut self, vi: usize, tick_ms: i64, end: i64) {
        let config = &self.config;
        let rng = &mut self.rng;
        let vehicle = &mut self.vehicles[vi];
        match vehicle.motion {
            Motion::Parked {
                until_ms,
                resume_to,
            } => {
                if end >= until_ms {
                    vehicle.motion = match resume_to {
                        Some(to) => Motion::Driving {
                            to,
                            speed_mps: 6.0 + rng.f64() * 8.0,
                            stop_in_m: None,
                        },
                        None => next_motion(config, rng, vehicle, end),
                    };
                }
            }
            Motion::Driving {
                to,
                speed_mps,
                stop_in_m,
            } => {
                let target = [
                    f64::from(to.0) * config.spacing_m,
                    f64::from(to.1) * config.spacing_m,
                ];
                let step = speed_mps * tick_ms as f64 / 1000.0;
                let left = distance(&vehicle.xy, &target);
                if let Some(stop) = stop_in_m.filter(|&s| s <= step && s < left) {
                    move_towards(&mut vehicle.xy, target, stop / left);
                    vehicle.motion = Motion::Parked {
                        until_ms: end + rng.i64(30_000..600_000),
                        resume_to: Some(to),
                    };
                } else if left <= step {
                    vehicle.xy = target;
                    vehicle.at = to;
                    vehicle.motion = next_motion(config, rng, vehicle, end);
                } else {
                    move_towards(&mut vehicle.xy, target, step / left);
                    vehicle.motion = Motion::Driving {
                        to,
                        speed_mps,
                        stop_in_m: stop_in_m.map(|s| s - step),
                    };
                }
            }
        }
    }

    fn update_truth(&mut self, vi: usize, near: &[(usize, f64)], end: i64) {
        let tag = self.vehicles[vi].tag;
        let open = &mut self.in_range[vi];
        for &(si, _) in near {
            if !open.iter().any(|&(s, _)| s == si) {
                open.push((si, end));
            }
        }
        let stations = &self.stations;
        let truth = &mut self.truth;
        open.retain(|&(s, enter)| {
            if near.iter().any(|&(si, _)| si == s) {
                return true;
            }
            truth.push(TruthInterval {
                tag,
                station: stations[s].id,
                enter_ms: enter,
                exit_ms: end,
            });
            false
        });
    }

    /// Closes the open intervals at the current time and returns all ground truth so far.
    pub fn finish_truth(&mut self) -> Vec<TruthInterval> {
        let now = self.now_ms;
        for (vi, open) in self.in_range.iter_mut().enumerate() {
            for (si, enter) in open.drain(..) {
                self.truth.push(TruthInterval {
                    tag: self.vehicles[vi].tag,
                    station: self.stations[si].id,
                    enter_ms: enter,
                    exit_ms: now,
                });
            }
        }
        let mut truth = std::mem::take(&mut self.truth);
        truth.sort_by_key(|t| (t.tag, t.station, t.enter_ms));
        truth
    }
}

/// The next block: towards the vehicle's destination, along one axis and then the other (a new
/// destination at random once there).
fn next_motion(config: &CityConfig, rng: &mut fastrand::Rng, v: &mut Vehicle, now: i64) -> Motion {
    let (x, y) = v.at;
    if v.fleeing && v.dest == v.at {
        // At the den, in the middle of a block, out of every station's range: dark for an
        // hour. (It comes back out at its corner.)
        v.fleeing = false;
        let half = config.spacing_m / 2.0;
        let inward = |i: u32, n: u32| if i + 1 < n { half } else { -half };
        v.xy[0] += inward(x, config.grid_w);
        v.xy[1] += inward(y, config.grid_h);
        return Motion::Parked {
            until_ms: now + 3_600_000,
            resume_to: Some((x, y)),
        };
    }
    if v.dest == v.at {
        v.dest = (rng.u32(0..config.grid_w), rng.u32(0..config.grid_h));
        v.x_first = rng.bool();
    }
    let step = |from: u32, to: u32| match to.cmp(&from) {
        std::cmp::Ordering::Greater => from + 1,
        std::cmp::Ordering::Less => from - 1,
        std::cmp::Ordering::Equal => from,
    };
    let along_x = (step(x, v.dest.0), y);
    let along_y = (x, step(y, v.dest.1));
    let next = match (along_x != v.at, along_y != v.at) {
        (true, true) if v.x_first => Some(along_x),
        (true, true) => Some(along_y),
        (true, false) => Some(along_x),
        (false, true) => Some(along_y),
        (false, false) => None,
    };
    match next {
        Some(to) => Motion::Driving {
            to,
            speed_mps: 6.0 + rng.f64() * 8.0,
            // Parking happens mid-block, somewhere along the road (a thief does not stop).
            stop_in_m: (!v.fleeing && rng.f64() < config.parked_fraction)
                .then(|| rng.f64() * config.spacing_m),
        },
        None => Motion::Parked {
            until_ms: now + 60_000,
            resume_to: None,
        },
    }
}

fn move_towards(xy: &mut [f64; 2], target: [f64; 2], fraction: f64) {
    xy[0] += (target[0] - xy[0]) * fraction;
    xy[1] += (target[1] - xy[1]) * fraction;
}

fn distance(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Local equirectangular projection: metres east/north of `origin` to degrees. Exact enough over
/// a city's few kilometres.
fn to_geo(origin: GeoPoint, xy: [f64; 2]) -> GeoPoint {
    GeoPoint {
        lat: origin.lat + xy[1] / METRES_PER_DEGREE,
        lon: origin.lon + xy[0] / (METRES_PER_DEGREE * origin.lat.to_radians().cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> CityConfig {
        CityConfig {
            grid_w: 4,
            grid_h: 4,
            tags: 50,
            ..CityConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let run = || {
            let mut city = City::new(small(), 0);
            let mut reads = Vec::new();
            for _ in 0..100 {
                city.step(100, &mut reads);
            }
            (reads, city.finish_truth())
        };
        let (a, ta) = run();
        let (b, tb) = run();
        assert!(!a.is_empty());
        assert_eq!(a, b);
        assert_eq!(ta, tb);
    }

    #[test]
    fn a_stolen_vehicle_drives_to_a_den_half_the_city_away_without_stopping() {
        let config = CityConfig {
            grid_w: 8,
            grid_h: 8,
            parked_fraction: 1.0,
            ..small()
        };
        let mut city = City::new(config, 0);
        let tag = TagId(city.config.first_tag);
        city.steal(tag);
        let start = city.vehicles[0].at;
        let mut reads = Vec::new();
        let mut stops = 0;
        // 14 blocks at 6 m/s at worst is under 8 minutes.
        for _ in 0..6_000 {
            city.step(100, &mut reads);
            let v = &city.vehicles[0];
            if let Motion::Parked { until_ms, .. } = v.motion {
                if until_ms < city.now_ms + 3_000_000 {
                    stops += 1;
                }
            }
        }
        let v = &city.vehicles[0];
        assert_eq!(v.at, v.dest, "at the den");
        assert!(start.0.abs_diff(v.at.0) + start.1.abs_diff(v.at.1) >= 8);
        assert!(matches!(v.motion, Motion::Parked { .. }), "hidden there");
        assert_eq!(
            city.in_range_of(tag).count(),
            0,
            "where no station hears it"
        );
        assert!(
            stops <= 1,
            "{stops} ticks stopped on the way (at most the first, parked)"
        );
    }

    #[test]
    fn reads_come_only_from_stations_in_range_at_a_realistic_rate() {
        let mut city = City::new(small(), 0);
        let mut reads = Vec::new();
        for _ in 0..600 {
            city.step(100, &mut reads);
        }
        let truth = city.finish_truth();
        for r in &reads {
            let station = city.stations()[r.station_index].id;
            let inside = truth.iter().any(|t| {
                t.tag == r.tag
                    && t.station == station
                    && t.enter_ms - 100 <= r.at_ms
                    && r.at_ms <= t.exit_ms
            });
            assert!(inside, "read {r:?} outside every truth interval");
        }
        // Beacons possible while in range vs reads heard: the read rate.
        let possible: i64 = truth.iter().map(|t| (t.exit_ms - t.enter_ms) / 2_000).sum();
        let rate = reads.len() as f64 / possible as f64;
        assert!((0.5..0.8).contains(&rate), "read rate {rate}");
    }
}
