//! # Clone rule: `clone_suspected`, a tag heard here and at a place too far away for the time
//! between (two tags with one id), once per visit at the far place.

use super::{Draft, Sighting};
use crate::placement::Heard;
use crate::spatial;
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{AlertKind, CloneEvidence, TagId, VisitId};

/// Two sightings of one tag closer than this are never impossible travel: neighbouring stations
/// hear the same tag within a second, so the distance must exceed any overlap of ranges.
pub const CLONE_MIN_DISTANCE_M: f64 = 1_500.0;
/// Faster than this between two sightings is impossible for a road vehicle (252 km/h).
pub const CLONE_MAX_SPEED_MPS: f64 = 70.0;

/// Per tag, the visit of its latest clone alert.
#[derive(Debug, Default)]
pub(crate) struct CloneWatch {
    alerted: HashMap<TagId, VisitId>,
}

impl CloneWatch {
    /// Whether this sighting, after the tag was last heard at `previous`, shows a clone.
    pub fn check(&mut self, s: Sighting<'_>, previous: Heard) -> Option<Draft> {
        if previous.station == s.d.station {
            return None;
        }
        let distance = spatial::distance_m(previous.position, s.position);
        if distance <= CLONE_MIN_DISTANCE_M {
            return None;
        }
        let seconds = (s.d.seen_at_ms - previous.at_ms).unsigned_abs() as f64 / 1000.0;
        if distance <= CLONE_MAX_SPEED_MPS * seconds {
            return None;
        }
        if self.alerted.insert(s.d.tag, s.visit) == Some(s.visit) {
            return None;
        }
        let mut draft = Draft::about(AlertKind::CloneSuspected, "clone_suspected", s);
        draft.detail.clone_of = Some(CloneEvidence {
            station: previous.station,
            lat: previous.position.lat,
            lon: previous.position.lon,
            distance_m: distance.round(),
            seconds_apart: seconds,
            // Heard at the same instant: no speed would do.
            implied_speed_mps: (seconds > 0.0).then(|| (distance / seconds * 10.0).round() / 10.0),
        });
        Some(draft)
    }
}
