//! # Placement: where a tag is now, at one station at a time.
//!
//! Neighbouring stations overlap, so a tag parked between two of them is heard by both, each
//! missing a third of the reads. Placing it at whichever heard it last would flip it between them
//! every few seconds. Instead a tag stays placed where it is until another station's smoothed
//! signal beats the current one by a clear margin, or the current station has not heard it for a
//! while and the other has: hysteresis on both signal and time, so no ping-pong.
//!
//! A tag whose accelerometer says it is moving (the wire's `MOVING` flag) is on its way: a
//! station that hears it after the current one has missed [`MOVING_SILENCE_MS`] of its beacons
//! takes it at once, unless it is the station the tag just came from: going back takes silence
//! at the new one (just after a move the old station is often still the stronger, and the tag
//! is leaving it; with widely overlapping stations that flipped it, and fences, back and forth). Waiting ten seconds of silence would leave a vehicle passing stations a few
//! seconds apart one or two stations behind, and a geofence entered a station late.

use serde::{Deserialize, Serialize};
use tagwatch_model::{GeoPoint, StationId};

/// Weight of a new read in a station's smoothed RSSI (an exponential moving average).
const SMOOTHING: f32 = 0.3;
/// Another station must be this much stronger (smoothed) to take the tag over.
pub const SWITCH_MARGIN_DB: f32 = 6.0;
/// Or the current station must not have heard the tag for this long while another did.
pub const SWITCH_SILENCE_MS: i64 = 10_000;
/// A moving tag not heard by its current station for this long (two beacons) moves to the
/// station that hears it.
pub const MOVING_SILENCE_MS: i64 = 2_000;
/// Detections this much older than the tag's latest are old news (a late frame): they do not
/// move the tag.
const REORDER_MS: i64 = 5_000;

/// A station the tag is placed at (or challenging for it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub station: StationId,
    /// The station's position, or a mobile reader's position when it last heard the tag.
    pub position: GeoPoint,
    /// First detection at this station in this placement.
    pub since_ms: i64,
    /// Latest detection at this station.
    pub seen_at_ms: i64,
    /// Smoothed RSSI, dBm.
    score: f32,
}

impl Place {
    fn new(station: StationId, position: GeoPoint, t: i64, rssi: i8) -> Self {
        Self {
            station,
            position,
            since_ms: t,
            seen_at_ms: t,
            score: f32::from(rssi),
        }
    }

    fn heard(&mut self, position: GeoPoint, t: i64, rssi: i8) {
        self.score += SMOOTHING * (f32::from(rssi) - self.score);
        if t >= self.seen_at_ms {
            self.seen_at_ms = t;
            self.position = position;
        }
        self.since_ms = self.since_ms.min(t);
    }
}

/// What a detection did to the tag's placement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The tag's first detection: placed.
    First,
    /// Still placed at the same station.
    Stayed,
    /// Heard elsewhere, but not convincingly: still placed where it was.
    Challenged,
    /// Moved from this place to the current one.
    Moved(Place),
    /// Older than what is known: changes nothing.
    Late,
}

/// One tag's placement: where it is, the strongest challenger, and where it was before.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TagPlace {
    pub current: Place,
    /// The last place it moved from.
    pub previous: Option<Place>,
    /// Where it was before `previous` (the direction it came from).
    pub before: Option<StationId>,
    /// Its latest detection anywhere (placed or not): what impossible travel is measured from.
    pub latest: Heard,
    /// Its slot among the tags placed at its station (kept by the tracker's spatial index).
    pub slot: u32,
    rival: Option<Place>,
}

/// One detection, as remembered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Heard {
    pub station: StationId,
    pub position: GeoPoint,
    pub at_ms: i64,
}

impl TagPlace {
    pub fn new(station: StationId, position: GeoPoint, t: i64, rssi: i8) -> Self {
        Self {
            current: Place::new(station, position, t, rssi),
            previous: None,
            before: None,
            latest: Heard {
                station,
                position,
                at_ms: t,
            },
            slot: 0,
            rival: None,
        }
    }

    /// Takes one detection into account; `moving`: the tag says it is moving.
    pub fn observe(
        &mut self,
        station: StationId,
        position: GeoPoint,
        t: i64,
        rssi: i8,
        moving: bool,
    ) -> Step {
        if t >= self.latest.at_ms {
            self.latest = Heard {
                station,
                position,
                at_ms: t,
            };
        }
        if t < self.current.seen_at_ms - REORDER_MS {
            return Step::Late;
        }
        if station == self.current.station {
            self.current.heard(position, t, rssi);
            return Step::Stayed;
        }
        // On the way, not back: a vehicle in the overlap of two stations, each missing some of
        // its beacons, would otherwise flip between them (and in and out of a fence between
        // them). Going back to the station it came from takes the hysteresis below.
        let back = self.previous.is_some_and(|p| p.station == station);
        if moving && !back && t - self.current.seen_at_ms >= MOVING_SILENCE_MS {
            return self.move_to(Place::new(station, position, t, rssi));
        }
        let rival = match &mut self.rival {
            Some(r) if r.station == station && t - r.seen_at_ms <= SWITCH_SILENCE_MS => {
                r.heard(position, t, rssi);
                *r
            }
            // A stale challenger, or a weaker one than this new station: replaced.
            slot => {
                let fresh = Place::new(station, position, t, rssi);
                match slot {
                    Some(r) if t - r.seen_at_ms <= SWITCH_SILENCE_MS && r.score >= fresh.score => {
                        return Step::Challenged;
                    }
                    _ => {
                        *slot = Some(fresh);
                        fresh
                    }
                }
            }
        };
        let silent = rival.seen_at_ms - self.current.seen_at_ms > SWITCH_SILENCE_MS;
        // A moving tag goes back to the station it came from on silence only: just after a
        // move the old station is often still the stronger one, and the tag is leaving it.
        let stronger = rival.score >= self.current.score + SWITCH_MARGIN_DB && !(moving && back);
        if !(silent || stronger) {
            return Step::Challenged;
        }
        self.move_to(rival)
    }

    fn move_to(&mut self, to: Place) -> Step {
        let from = std::mem::replace(&mut self.current, to);
        self.before = self.previous.map(|p| p.station);
        self.previous = Some(from);
        self.rival = None;
        Step::Moved(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: StationId = StationId(1);
    const B: StationId = StationId(2);
    const HERE: GeoPoint = GeoPoint { lat: 0.0, lon: 0.0 };

    #[test]
    fn a_tag_heard_alternately_by_two_equal_stations_stays_put() {
        let mut place = TagPlace::new(A, HERE, 0, -80);
        // Parked between A and B: each hears about half the beacons, at the same strength.
        for i in 1..200 {
            let t = i * 2_000;
            let station = if i % 3 == 0 { A } else { B };
            let step = place.observe(station, HERE, t, -80 + (i % 5) as i8 - 2, false);
            assert!(
                !matches!(step, Step::Moved(_)),
                "moved at {t} ({station:?})"
            );
        }
        assert_eq!(place.current.station, A);
        assert_eq!(place.current.since_ms, 0);
    }

    #[test]
    fn a_much_stronger_station_takes_the_tag_over_at_once() {
        let mut place = TagPlace::new(A, HERE, 0, -90);
        let step = place.observe(B, HERE, 1_000, -60, false);
        assert!(
            matches!(step, Step::Moved(from) if from.station == A),
            "{step:?}"
        );
        assert_eq!(place.current.station, B, "30 dB stronger");
        assert_eq!(place.previous.map(|p| p.station), Some(A));
        assert_eq!(place.current.since_ms, 1_000);
    }

    #[test]
    fn a_tag_no_longer_heard_where_it_was_moves_to_where_it_is_heard() {
        let mut place = TagPlace::new(A, HERE, 0, -70);
        assert_eq!(place.observe(A, HERE, 4_000, -75, false), Step::Stayed);
        assert_eq!(place.observe(B, HERE, 6_000, -80, false), Step::Challenged);
        assert_eq!(place.observe(B, HERE, 10_000, -78, false), Step::Challenged);
        let step = place.observe(B, HERE, 14_100, -75, false);
        assert!(matches!(step, Step::Moved(from) if from.station == A && from.seen_at_ms == 4_000));
        assert_eq!(place.current.station, B);
        assert_eq!(
            place.current.since_ms, 6_000,
            "placed since B first heard it"
        );
        // A late frame from A does not move it back.
        assert_eq!(place.observe(A, HERE, 3_000, -50, false), Step::Late);
        assert_eq!(place.current.station, B);
    }

    #[test]
    fn a_moving_tag_moves_once_its_station_has_missed_two_beacons() {
        let mut place = TagPlace::new(A, HERE, 0, -70);
        assert_eq!(place.observe(A, HERE, 1_000, -70, true), Step::Stayed);
        // In the overlap, heard by both each second: it stays (no ping-pong).
        assert_eq!(place.observe(B, HERE, 2_000, -70, true), Step::Challenged);
        assert_eq!(place.observe(A, HERE, 2_500, -70, true), Step::Stayed);
        // A has missed two beacons and B hears it: it is at B.
        let step = place.observe(B, HERE, 4_500, -72, true);
        assert!(
            matches!(step, Step::Moved(from) if from.station == A),
            "{step:?}"
        );
        assert_eq!(place.current.station, B);
        // Still in the overlap, A hears it after B missed two beacons, even much stronger (it
        // is still nearer A, driving away): it stays at B.
        assert_eq!(place.observe(A, HERE, 7_000, -60, true), Step::Challenged);
        assert_eq!(place.observe(A, HERE, 8_000, -58, true), Step::Challenged);
        assert_eq!(place.current.station, B);
        // Parked back at A, B silent: A takes it back once B has been silent for a while.
        let step = place.observe(A, HERE, 4_500 + SWITCH_SILENCE_MS + 1, -60, false);
        assert!(
            matches!(step, Step::Moved(from) if from.station == B),
            "{step:?}"
        );
        // Parked, the same silence is not enough.
        let mut parked = TagPlace::new(A, HERE, 0, -70);
        assert_eq!(parked.observe(B, HERE, 2_500, -72, false), Step::Challenged);
    }
}
