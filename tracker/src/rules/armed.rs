//! # Armed rule: `armed_moved`, an armed vehicle heard away from where its owner parked it, once
//! per visit.

use super::{Draft, Sighting};
use crate::spatial;
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{tag_flags, AlertKind, Detection, FrameKey, GeoPoint, TagId, VisitId};

/// An armed vehicle heard further than this from where it was armed has moved: beyond the
/// overlap of neighbouring stations, so a parked vehicle heard by the next station is not one.
pub const ARMED_RADIUS_M: f64 = 300.0;

#[derive(Debug)]
struct Guard {
    position: GeoPoint,
    alerted: Option<VisitId>,
}

/// The armed vehicles: where each was armed, and the visit of its latest alert.
#[derive(Debug, Default)]
pub(crate) struct Guards {
    armed: HashMap<TagId, Guard>,
}

impl Guards {
    /// Guards the tag where it is parked.
    pub fn arm(&mut self, tag: TagId, position: GeoPoint) {
        self.armed.insert(
            tag,
            Guard {
                position,
                alerted: None,
            },
        );
    }

    pub fn disarm(&mut self, tag: TagId) {
        self.armed.remove(&tag);
    }

    /// After a restart (or a partition moving to another shard): `visit` alerted already.
    pub fn alerted(&mut self, tag: TagId, visit: VisitId) {
        if let Some(guard) = self.armed.get_mut(&tag) {
            guard.alerted = Some(visit);
        }
    }

    pub fn is_armed(&self, tag: TagId) -> bool {
        self.armed.contains_key(&tag)
    }

    /// Whether hearing `tag` at a station placed at `heard_at`, in `visit` (if it joins one),
    /// with `flags`, may raise an alert: armed, away from where it was armed (or its GPS tracker
    /// felt it handled), and that visit not alerted yet.
    pub fn may_alert(
        &self,
        tag: TagId,
        heard_at: Option<GeoPoint>,
        flags: u8,
        visit: Option<VisitId>,
    ) -> bool {
        let Some(guard) = self.armed.get(&tag) else {
            return false;
        };
        let away = heard_at
            .is_some_and(|position| spatial::distance_m(guard.position, position) > ARMED_RADIUS_M);
        (away || shaken(flags)) && visit.is_none_or(|v| guard.alerted != Some(v))
    }

    /// The alert this sighting raises, if the tag is armed and has moved.
    pub fn check(&mut self, s: Sighting<'_>) -> Option<Draft> {
        if self.armed.get(&s.d.tag)?.alerted == Some(s.visit) {
            return None;
        }
        let draft = self.draft(s.frame, s.d, s.position)?;
        self.armed.get_mut(&s.d.tag)?.alerted = Some(s.visit);
        Some(draft)
    }

    /// The alert hearing `d` in `frame` at `position` raises if the tag is armed and that is
    /// away from where it was armed, whatever visit it joins (an alert raised ahead of its frame:
    /// see `crate::ahead`).
    pub fn draft(&self, frame: FrameKey, d: &Detection, position: GeoPoint) -> Option<Draft> {
        let guard = self.armed.get(&d.tag)?;
        let moved_m = spatial::distance_m(guard.position, position);
        if moved_m <= ARMED_RADIUS_M && !shaken(d.tag_flags) {
            return None;
        }
        let mut draft = Draft::heard(AlertKind::ArmedMoved, "armed_moved", frame, d, position);
        draft.detail.moved_m = Some(moved_m.round());
        Some(draft)
    }
}

/// A GPS tracker felt the vehicle handled: someone is at an armed vehicle before it has moved
/// far, which is when an owner most wants to know.
fn shaken(flags: u8) -> bool {
    flags & tag_flags::VIBRATION != 0
}
