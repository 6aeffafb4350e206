//! # Patrol units on the city's roads, and a dispatcher that uses only what TagWatch offers.
//!
//! Units drive the road grid (along one road to the corner, then along the other) at a patrol
//! speed, and report where they are as a unit's terminal does. The dispatcher reads what an
//! officer at the console reads: each `stolen_sighting` alert (where the vehicle was heard,
//! when, and the predicted next stations with their ETAs) and TagWatch's ranking of the nearest
//! available units. Two policies, to measure what prediction is worth:
//! - [`Policy::ChaseLastSighting`]: the unit drives to where the vehicle was last heard.
//! - [`Policy::Intercept`]: a vehicle slower than the unit is chased as above (it is caught
//!   from behind; waiting ahead only risks it turning off first); a faster one is headed off:
//!   the unit gets ahead of the vehicle on its road. A predicted next
//!   station gives the road and the direction; the stations beyond it on the same road are
//!   reached, at the vehicle's pace, at multiples of its ETA. The unit drives to the nearest of
//!   them it can reach first (the likeliest prediction first, of the top three), else to where
//!   the vehicle was last heard. A unit that waited past the latest ETA (and a grace) with no
//!   new sighting (the vehicle stopped, or turned off unheard) drives to the last sighting.
//!
//! Everything is a pure function of the seed and the ticks: the truth command and the demo run
//! the same units.

use crate::city::CityConfig;
use std::collections::HashMap;
use tagwatch_model::{GeoPoint, TagId};

/// A unit this close to an intersection is at that station.
pub const AT_STATION_M: f64 = 15.0;

#[derive(Debug, Clone, Copy)]
pub struct PatrolConfig {
    pub units: u32,
    /// Driving speed on a call (a city's traffic allows about 43 km/h).
    pub speed_mps: f64,
    pub seed: u64,
}

impl Default for PatrolConfig {
    fn default() -> Self {
        Self {
            units: 20,
            speed_mps: 12.0,
            seed: 7,
        }
    }
}

/// One patrol unit.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Its call sign's number (`P-<id>`).
    pub id: u32,
    xy: [f64; 2],
    /// Corners still to drive through, the next first.
    route: Vec<[f64; 2]>,
    /// The stolen vehicle it was sent after, if any.
    pub case: Option<TagId>,
}

impl Unit {
    pub fn xy(&self) -> [f64; 2] {
        self.xy
    }

    pub fn is_available(&self) -> bool {
        self.case.is_none()
    }

    /// Nowhere left to drive.
    pub fn is_idle(&self) -> bool {
        self.route.is_empty()
    }
}

/// Every unit of the city.
#[derive(Debug, Clone)]
pub struct Patrol {
    city: CityConfig,
    speed_mps: f64,
    units: Vec<Unit>,
}

impl Patrol {
    /// Units at intersections chosen by the seed.
    pub fn new(city: &CityConfig, config: PatrolConfig) -> Self {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let units = (1..=config.units)
            .map(|id| Unit {
                id,
                xy: [
                    f64::from(rng.u32(0..city.grid_w)) * city.spacing_m,
                    f64::from(rng.u32(0..city.grid_h)) * city.spacing_m,
                ],
                route: Vec::new(),
                case: None,
            })
            .collect();
        Self {
            city: city.clone(),
            speed_mps: config.speed_mps,
            units,
        }
    }

    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Where a unit is, as its terminal reports it.
    pub fn position(&self, unit: &Unit) -> GeoPoint {
        self.city.geo_of(unit.xy)
    }

    /// Drives every unit on its route for `tick_ms`.
    pub fn step(&mut self, tick_ms: i64) {
        let budget = self.speed_mps * tick_ms as f64 / 1000.0;
        for unit in &mut self.units {
            let mut left = budget;
            while left > 0.0 {
                let Some(&next) = unit.route.first() else {
                    break;
                };
                let d = distance(unit.xy, next);
                if d <= left {
                    unit.xy = next;
                    unit.route.remove(0);
                    left -= d;
                } else {
                    let f = left / d;
                    unit.xy[0] += (next[0] - unit.xy[0]) * f;
                    unit.xy[1] += (next[1] - unit.xy[1]) * f;
                    left = 0.0;
                }
            }
        }
    }

    /// The intersection nearest to `p`.
    fn corner_of(&self, p: GeoPoint) -> [f64; 2] {
        let xy = self.city.xy_of(p);
        let s = self.city.spacing_m;
        let snap = |v: f64, n: u32| (v / s).round().clamp(0.0, f64::from(n - 1)) * s;
        [snap(xy[0], self.city.grid_w), snap(xy[1], self.city.grid_h)]
    }

    /// The corners a unit drives through to reach `to` along the roads: along the road it is on
    /// to the corner, then along the other.
    fn route(&self, from: [f64; 2], to: [f64; 2]) -> Vec<[f64; 2]> {
        let s = self.city.spacing_m;
        let on_row = (from[1] / s - (from[1] / s).round()).abs() < 1e-6;
        let corner = if on_row {
            [to[0], from[1]]
        } else {
            [from[0], to[1]]
        };
        let mut route = vec![corner, to];
        route.dedup();
        route.retain(|&c| c != from);
        route
    }

    /// Seconds for `unit` to drive to the station at `to`.
    pub fn travel_s(&self, unit: &Unit, to: GeoPoint) -> f64 {
        self.travel_to_corner_s(unit, self.corner_of(to))
    }

    fn travel_to_corner_s(&self, unit: &Unit, target: [f64; 2]) -> f64 {
        let mut at = unit.xy;
        let mut metres = 0.0;
        for corner in self.route(unit.xy, target) {
            metres += distance(at, corner);
            at = corner;
        }
        metres / self.speed_mps
    }

    /// Sends the unit with call sign number `id` after `case`, to the station at `to`.
    pub fn send(&mut self, id: u32, case: TagId, to: GeoPoint) {
        self.send_to_corner(id, case, self.corner_of(to));
    }

    fn send_to_corner(&mut self, id: u32, case: TagId, target: [f64; 2]) {
        let Some(i) = self.units.iter().position(|u| u.id == id) else {
            return;
        };
        let route = self.route(self.units[i].xy, target);
        let unit = &mut self.units[i];
        unit.route = route;
        unit.case = Some(case);
    }

    /// Sends the unit with call sign number `id` on patrol to the station at `to` (no case).
    pub fn roam(&mut self, id: u32, to: GeoPoint) {
        let target = self.corner_of(to);
        let Some(i) = self.units.iter().position(|u| u.id == id) else {
            return;
        };
        self.units[i].route = self.route(self.units[i].xy, target);
    }

    /// The unit is free again (the vehicle was recovered): it stays where it is.
    pub fn free(&mut self, id: u32) {
        if let Some(unit) = self.units.iter_mut().find(|u| u.id == id) {
            unit.case = None;
            unit.route.clear();
        }
    }

    /// Whether a corner is inside the grid.
    fn on_grid(&self, xy: [f64; 2]) -> bool {
        let s = self.city.spacing_m;
        let (w, h) = (
            f64::from(self.city.grid_w - 1),
            f64::from(self.city.grid_h - 1),
        );
        (0.0..=w * s + 1e-6).contains(&xy[0]) && (0.0..=h * s + 1e-6).contains(&xy[1])
    }

    /// The unit after `case`, if one is.
    pub fn unit_on(&self, case: TagId) -> Option<&Unit> {
        self.units.iter().find(|u| u.case == Some(case))
    }
}

/// How the dispatcher chooses where to send a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    ChaseLastSighting,
    Intercept,
}

/// A predicted next station, as an alert gives it.
#[derive(Debug, Clone, Copy)]
pub struct Predicted {
    pub position: GeoPoint,
    pub probability: f64,
    /// Seconds from the alert, and the late end of its range.
    pub eta_s: f64,
    pub eta_high_s: f64,
}

/// What a `stolen_sighting` alert tells the dispatcher.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub tag: TagId,
    pub position: GeoPoint,
    /// Its speed between its last two stations, when the alert gives one.
    pub speed_mps: Option<f64>,
    pub predicted: Vec<Predicted>,
}

/// A unit waiting ahead of a vehicle: until when, and where the vehicle was last heard.
#[derive(Debug, Clone, Copy)]
struct Ambush {
    until_ms: i64,
    last_seen: GeoPoint,
}

/// Sends a unit after each stolen vehicle sighted, and moves it with each new sighting.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    pub policy: Policy,
    ambushes: HashMap<TagId, Ambush>,
    /// Units sent to wait ahead of a vehicle, and those whose vehicle did not come.
    pub ambushes_set: u32,
    pub ambushes_missed: u32,
}

/// A vehicle later than its latest predicted ETA by this much is not coming.
const AMBUSH_GRACE_MS: i64 = 30_000;
/// How many stations ahead on its road a unit may wait for a vehicle.
const MAX_STATIONS_AHEAD: u32 = 12;

impl Dispatcher {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ambushes: HashMap::new(),
            ambushes_set: 0,
            ambushes_missed: 0,
        }
    }

    /// Units waiting ahead of a vehicle that did not come drive to where it was last heard.
    pub fn tick(&mut self, patrol: &mut Patrol, now_ms: i64) {
        self.ambushes.retain(|&tag, ambush| {
            if now_ms < ambush.until_ms {
                return true;
            }
            if let Some(id) = patrol.unit_on(tag).map(|u| u.id) {
                patrol.send(id, tag, ambush.last_seen);
                self.ambushes_missed += 1;
            }
            false
        });
    }

    /// A sighting: the unit already on the case is re-targeted; otherwise the first of
    /// `nearest_available` (TagWatch's ranking of available units from the sighting, by call
    /// sign number) is sent. Returns the unit sent, if any.
    pub fn on_sighting(
        &mut self,
        patrol: &mut Patrol,
        sighting: &Sighting,
        nearest_available: &[u32],
        now_ms: i64,
    ) -> Option<u32> {
        self.ambushes.remove(&sighting.tag);
        let unit = match patrol.unit_on(sighting.tag) {
            Some(u) => u.clone(),
            None => {
                let id = *nearest_available.first()?;
                patrol.units.iter().find(|u| u.id == id)?.clone()
            }
        };
        let target = match self.policy {
            Policy::ChaseLastSighting => patrol.corner_of(sighting.position),
            Policy::Intercept => match ahead_of(patrol, &unit, sighting) {
                Some((corner, eta_high_s)) => {
                    let until_ms = now_ms + (eta_high_s * 1000.0) as i64 + AMBUSH_GRACE_MS;
                    let last_seen = sighting.position;
                    self.ambushes.insert(
                        sighting.tag,
                        Ambush {
                            until_ms,
                            last_seen,
                        },
                    );
                    self.ambushes_set += 1;
                    corner
                }
                None => patrol.corner_of(sighting.position),
            },
        };
        patrol.send_to_corner(unit.id, sighting.tag, target);
        Some(unit.id)
    }
}

/// The nearest station ahead of the vehicle on its predicted road that `unit` can reach before
/// it, and the late end of the vehicle's ETA there. A unit already waiting or on its way to a
/// station that is still such a one keeps it (turning back and forth loses the lead).
fn ahead_of(patrol: &Patrol, unit: &Unit, sighting: &Sighting) -> Option<([f64; 2], f64)> {
    // A vehicle slower than the unit is caught from behind: waiting ahead only risks the
    // vehicle turning off before it comes. Without a speed the tracker does not know where the
    // vehicle came from (its prediction is every way out), so the unit follows too.
    if sighting.speed_mps? < patrol.speed_mps {
        return None;
    }
    let from = patrol.corner_of(sighting.position);
    let mut ranked = sighting.predicted.clone();
    ranked.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    ranked.truncate(3);
    let candidates: Vec<([f64; 2], f64)> = ranked
        .iter()
        .flat_map(|p| {
            let next = patrol.corner_of(p.position);
            let step = [next[0] - from[0], next[1] - from[1]];
            // Each block beyond the predicted station at the vehicle's speed (else at the pace the
            // prediction implies for the first one).
            let block_m = step[0].hypot(step[1]);
            let block_s = sighting
                .speed_mps
                .filter(|&v| v > 0.5)
                .map_or(p.eta_s, |v| block_m / v);
            let ahead = if step == [0.0, 0.0] {
                0
            } else {
                MAX_STATIONS_AHEAD
            };
            (0..ahead).filter_map(move |beyond| {
                let k = f64::from(beyond + 1);
                let corner = [from[0] + step[0] * k, from[1] + step[1] * k];
                let eta_s = p.eta_s + f64::from(beyond) * block_s;
                let reachable =
                    patrol.on_grid(corner) && patrol.travel_to_corner_s(unit, corner) <= eta_s;
                reachable.then_some((corner, p.eta_high_s + f64::from(beyond) * block_s * 1.5))
            })
        })
        .collect();
    let current = unit.route.last().copied().unwrap_or(unit.xy);
    candidates
        .iter()
        .find(|(corner, _)| distance(*corner, current) < 1.0)
        .or(candidates.first())
        .copied()
}

fn distance(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn city() -> CityConfig {
        CityConfig {
            grid_w: 5,
            grid_h: 5,
            tags: 0,
            ..CityConfig::default()
        }
    }

    fn one_unit_at(patrol: &mut Patrol, xy: [f64; 2]) {
        patrol.units.truncate(1);
        patrol.units[0].xy = xy;
    }

    #[test]
    fn a_unit_drives_the_roads_to_the_station_and_stops_there() {
        let c = city();
        let mut patrol = Patrol::new(&c, PatrolConfig::default());
        one_unit_at(&mut patrol, [0.0, 0.0]);
        let target = c.geo_of([400.0, 200.0]);
        let unit = patrol.units()[0].clone();
        // 400 m east then 200 m north at 12 m/s.
        assert!((patrol.travel_s(&unit, target) - 50.0).abs() < 1e-6);
        patrol.send(1, TagId(9), target);
        for _ in 0..250 {
            patrol.step(100); // 25 s: 300 m along x
        }
        assert!(distance(patrol.units()[0].xy(), [300.0, 0.0]) < 1e-6);
        for _ in 0..300 {
            patrol.step(100);
        }
        let at = patrol.units()[0].xy();
        assert!(distance(at, [400.0, 200.0]) < 1e-6, "{at:?}");
        assert!(!patrol.units()[0].is_available());
        patrol.free(1);
        assert!(patrol.units()[0].is_available());
    }

    #[test]
    fn intercept_waits_ahead_of_a_faster_vehicle_then_gives_up_and_chase_follows_the_sighting() {
        let c = city();
        let mut patrol = Patrol::new(&c, PatrolConfig::default());
        one_unit_at(&mut patrol, [0.0, 0.0]);
        // Heard at (800, 800) driving 20 m/s (10 s a block), heading south (likeliest) or west.
        let sighting = Sighting {
            tag: TagId(9),
            position: c.geo_of([800.0, 800.0]),
            speed_mps: Some(20.0),
            predicted: vec![
                // South: (800, 600) in 15 s, then 25, 35 and 45 s to (800, 0); the unit needs
                // 117, 100, 83 and 67 s. None.
                Predicted {
                    position: c.geo_of([800.0, 600.0]),
                    probability: 0.6,
                    eta_s: 15.0,
                    eta_high_s: 20.0,
                },
                // West: (600, 800) in 40 s, then 50, 60 and 70 s to (0, 800); the unit needs
                // 117, 100, 83 and 67 s: it waits at (0, 800).
                Predicted {
                    position: c.geo_of([600.0, 800.0]),
                    probability: 0.3,
                    eta_s: 40.0,
                    eta_high_s: 50.0,
                },
            ],
        };
        let mut chase = patrol.clone();
        let mut slower = patrol.clone();
        let mut intercept = Dispatcher::new(Policy::Intercept);
        assert_eq!(
            intercept.on_sighting(&mut patrol, &sighting, &[1], 0),
            Some(1)
        );
        assert_eq!(patrol.units[0].route.last(), Some(&[0.0, 800.0]));
        // Not heard again by the latest ETA there (50 s, and three blocks with half again for
        // the pace: 95 s) and the grace after it: to the last sighting.
        intercept.tick(&mut patrol, 124_000);
        assert_eq!(patrol.units[0].route.last(), Some(&[0.0, 800.0]));
        intercept.tick(&mut patrol, 125_000);
        assert_eq!(patrol.units[0].route.last(), Some(&[800.0, 800.0]));
        assert_eq!((intercept.ambushes_set, intercept.ambushes_missed), (1, 1));
        Dispatcher::new(Policy::ChaseLastSighting).on_sighting(&mut chase, &sighting, &[1], 0);
        assert_eq!(chase.units[0].route.last(), Some(&[800.0, 800.0]));
        // A vehicle slower than the unit is followed, not waited for.
        let crawling = Sighting {
            speed_mps: Some(5.0),
            ..sighting.clone()
        };
        Dispatcher::new(Policy::Intercept).on_sighting(&mut slower, &crawling, &[1], 0);
        assert_eq!(slower.units[0].route.last(), Some(&[800.0, 800.0]));
        // No unit free and none on the case: nobody is sent.
        let other = Sighting {
            tag: TagId(10),
            ..sighting
        };
        assert_eq!(
            Dispatcher::new(Policy::Intercept).on_sighting(&mut patrol, &other, &[], 0),
            None
        );
    }
}
