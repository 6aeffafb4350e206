//! # Transitions: where tags go next, learned online from every tag's moves.
//!
//! Each time a tag moves from one station to the next, the move is counted, together with the
//! station it came from before (so a tag heading north is predicted to keep going north) and how
//! long the move took. A stolen-tag sighting is then given the stations it is most likely to reach
//! next and when, for officers to intercept it. Without enough moves seen from the same direction,
//! the prediction falls back to all moves from the station.
//!
//! The time a move takes is the median of the latest [`SAMPLES`] moves, with their quartiles as
//! its uncertainty: a mean is ruined by the odd vehicle that parked on the way for an hour.

use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::StationId;

/// Moves seen from one direction before that direction's statistics are trusted.
const MIN_EVIDENCE: u32 = 5;
/// Destinations remembered per origin: the long tail carries no useful prediction.
const MAX_DESTINATIONS: usize = 8;
/// Move durations remembered per destination (the latest ones: traffic changes over a day).
pub const SAMPLES: usize = 16;

#[derive(Debug, Clone)]
struct Destination {
    station: StationId,
    count: u32,
    /// The latest move durations, seconds (a ring once full).
    took_s: Vec<f32>,
}

impl Destination {
    fn new(station: StationId, seconds: f64) -> Self {
        Self {
            station,
            count: 1,
            took_s: vec![seconds as f32],
        }
    }

    fn add(&mut self, seconds: f64) {
        if self.took_s.len() < SAMPLES {
            self.took_s.push(seconds as f32);
        } else {
            self.took_s[self.count as usize % SAMPLES] = seconds as f32;
        }
        self.count = self.count.saturating_add(1);
    }

    /// Lower quartile, median and upper quartile of the remembered durations, seconds.
    fn quartiles(&self) -> (f64, f64, f64) {
        let mut sorted = self.took_s.clone();
        sorted.sort_by(f32::total_cmp);
        let at = |q: f64| f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
        (at(0.25), at(0.5), at(0.75))
    }
}

#[derive(Debug, Default, Clone)]
struct Counts {
    total: u32,
    to: Vec<Destination>,
}

impl Counts {
    fn add(&mut self, station: StationId, seconds: f64) {
        self.total = self.total.saturating_add(1);
        if let Some(d) = self.to.iter_mut().find(|d| d.station == station) {
            d.add(seconds);
            return;
        }
        if self.to.len() < MAX_DESTINATIONS {
            self.to.push(Destination::new(station, seconds));
        } else if let Some(rarest) = self.to.iter_mut().min_by_key(|d| d.count) {
            // Drifting traffic: the rarest destination gives way to the newcomer.
            *rarest = Destination::new(station, seconds);
        }
    }
}

/// A likely next station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub station: StationId,
    pub probability: f64,
    /// Median seconds from arriving at the station it is at to arriving there.
    pub eta_s: f64,
    /// Quartiles of the same: half the moves took between these.
    pub eta_low_s: f64,
    pub eta_high_s: f64,
}

/// Counts of moves between stations.
#[derive(Debug, Default)]
pub struct Transitions {
    /// (came from, now at) → next.
    directed: HashMap<(StationId, StationId), Counts>,
    /// now at → next.
    any: HashMap<StationId, Counts>,
}

impl Transitions {
    /// A tag moved from `from` to `to` in `took_ms`, having come to `from` from `before`.
    pub fn learn(
        &mut self,
        before: Option<StationId>,
        from: StationId,
        to: StationId,
        took_ms: i64,
    ) {
        if from == to || took_ms < 0 {
            return;
        }
        let seconds = took_ms as f64 / 1000.0;
        self.any.entry(from).or_default().add(to, seconds);
        if let Some(before) = before {
            self.directed
                .entry((before, from))
                .or_default()
                .add(to, seconds);
        }
    }

    /// The `k` likeliest next stations of a tag at `at` that came from `came_from`.
    pub fn predict(
        &self,
        came_from: Option<StationId>,
        at: StationId,
        k: usize,
    ) -> Vec<Prediction> {
        let counts = came_from
            .and_then(|c| self.directed.get(&(c, at)))
            .filter(|c| c.total >= MIN_EVIDENCE)
            .or_else(|| self.any.get(&at));
        let Some(counts) = counts else {
            return Vec::new();
        };
        let mut to = counts.to.clone();
        to.sort_by(|a, b| b.count.cmp(&a.count).then(a.station.cmp(&b.station)));
        to.into_iter()
            .filter(|d| Some(d.station) != came_from || to_len_one(counts))
            .take(k)
            .map(|d| {
                let (low, median, high) = d.quartiles();
                Prediction {
                    station: d.station,
                    probability: f64::from(d.count) / f64::from(counts.total),
                    eta_s: median,
                    eta_low_s: low,
                    eta_high_s: high,
                }
            })
            .collect()
    }
}

/// A U-turn is predicted only when it is the only move ever seen.
fn to_len_one(counts: &Counts) -> bool {
    counts.to.len() == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: StationId = StationId(1);
    const B: StationId = StationId(2);
    const C: StationId = StationId(3);
    const D: StationId = StationId(4);

    #[test]
    fn the_direction_of_travel_decides_the_prediction_once_seen_often_enough() {
        let mut t = Transitions::default();
        // From B, tags that came from A go on to C; tags that came from C go on to A.
        for _ in 0..6 {
            t.learn(Some(A), B, C, 20_000);
            t.learn(Some(C), B, A, 30_000);
        }
        t.learn(Some(A), B, D, 40_000);
        let north = t.predict(Some(A), B, 2);
        assert_eq!(north[0].station, C);
        assert!((north[0].probability - 6.0 / 7.0).abs() < 1e-9);
        assert_eq!(north[0].eta_s, 20.0);
        assert_eq!(north[1].station, D);
        assert_eq!(t.predict(Some(C), B, 1)[0].station, A);
        // Never seen coming from D: all moves from B, without going back to D.
        let unknown = t.predict(Some(D), B, 3);
        assert_eq!(
            unknown.iter().map(|p| p.station).collect::<Vec<_>>(),
            vec![A, C]
        );
        assert!(t.predict(None, D, 3).is_empty(), "nothing learned at D");
    }

    #[test]
    fn one_vehicle_that_parked_on_the_way_does_not_ruin_the_eta() {
        let mut t = Transitions::default();
        for took in [18_000, 20_000, 22_000, 19_000, 20_000, 21_000, 3_600_000] {
            t.learn(Some(A), B, C, took);
        }
        let next = t.predict(Some(A), B, 1)[0];
        assert_eq!(next.eta_s, 20.0, "the median, not a mean of 531 s");
        assert_eq!((next.eta_low_s, next.eta_high_s), (20.0, 22.0));
        // Only the latest moves count: traffic slows down.
        for _ in 0..SAMPLES {
            t.learn(Some(A), B, C, 60_000);
        }
        assert_eq!(t.predict(Some(A), B, 1)[0].eta_s, 60.0);
    }
}
