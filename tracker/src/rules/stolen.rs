//! # Stolen rule: `stolen_sighting`, a tag on the hotlist heard, once per visit, and again
//! within a visit each time a mobile reader (a GPS tracker on the vehicle, a patrol car) has
//! carried it [`STOLEN_MOVE_M`] from where the last alert placed it.
//!
//! The hotlist holds the tags with an open theft case and, per case, the visits already alerted.
//! Where the vehicle is heading (the alert's detail) is the tracker's to say: see
//! `Tracker::movement_detail`.

use super::{Draft, Sighting};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tagwatch_model::{AlertKind, CaseId, Detection, FrameKey, GeoPoint, TagId, VisitId};

/// Within one visit of a mobile reader (a GPS tracker reporting every 10-30 s is one long visit
/// while it drives), a stolen vehicle is alerted again once it is this far from where its last
/// alert placed it: a few blocks, about a minute at city speed. Every fix would bury an officer
/// in alerts; once per visit would leave a chase with a position minutes old.
pub const STOLEN_MOVE_M: f64 = 500.0;

#[derive(Debug)]
struct Stolen {
    case: CaseId,
    /// Visits already alerted in this case: one alert per visit, not per detection.
    alerted: HashSet<VisitId>,
    /// Where the latest alert placed the vehicle.
    last_alert_at: Option<GeoPoint>,
}

impl Stolen {
    fn moved_on(&self, position: GeoPoint) -> bool {
        self.last_alert_at
            .is_some_and(|at| crate::spatial::distance_m(at, position) >= STOLEN_MOVE_M)
    }
}

/// The tags reported stolen.
#[derive(Debug, Default)]
pub(crate) struct Hotlist {
    stolen: HashMap<TagId, Stolen>,
}

impl Hotlist {
    /// The tag is now stolen: every sighting raises an alert until the case closes.
    pub fn report(&mut self, tag: TagId, case: CaseId) {
        self.stolen.insert(
            tag,
            Stolen {
                case,
                alerted: HashSet::default(),
                last_alert_at: None,
            },
        );
    }

    pub fn recovered(&mut self, tag: TagId) {
        self.stolen.remove(&tag);
    }

    pub fn is_stolen(&self, tag: TagId) -> bool {
        self.stolen.contains_key(&tag)
    }

    /// Every tag on the hotlist.
    pub fn tags(&self) -> impl Iterator<Item = TagId> + '_ {
        self.stolen.keys().copied()
    }

    /// Whether hearing `tag` at `position` in `visit` (if it joins one) may raise an alert:
    /// stolen, and that visit not alerted yet or the vehicle carried far since the last alert.
    pub fn may_alert(&self, tag: TagId, visit: Option<VisitId>, position: GeoPoint) -> bool {
        self.stolen.get(&tag).is_some_and(|stolen| {
            visit.is_none_or(|v| !stolen.alerted.contains(&v)) || stolen.moved_on(position)
        })
    }

    /// `visit` of `tag` counts as alerted, at `position` (an alert restored after a restart, a
    /// look-back).
    pub fn alerted(&mut self, tag: TagId, visit: VisitId, position: GeoPoint) {
        if let Some(stolen) = self.stolen.get_mut(&tag) {
            stolen.alerted.insert(visit);
            stolen.last_alert_at = Some(position);
        }
    }

    /// The alert this sighting raises, with its case, if the tag is stolen and the visit has not
    /// alerted yet; the caller adds where the vehicle is heading.
    pub fn check(&mut self, s: Sighting<'_>) -> Option<(CaseId, Draft)> {
        let stolen = self.stolen.get_mut(&s.d.tag)?;
        if !stolen.alerted.insert(s.visit) && !stolen.moved_on(s.position) {
            return None;
        }
        stolen.last_alert_at = Some(s.position);
        self.draft(s.frame, s.d, s.position)
    }

    /// The alert hearing `d` in `frame` raises if the tag is stolen, whatever visit it joins
    /// (an alert raised ahead of its frame: see `crate::ahead`).
    pub fn draft(
        &self,
        frame: FrameKey,
        d: &Detection,
        position: GeoPoint,
    ) -> Option<(CaseId, Draft)> {
        let case = self.stolen.get(&d.tag)?.case;
        let scope = format!("stolen_sighting-{}", case.0);
        let draft = Draft::heard(AlertKind::StolenSighting, &scope, frame, d, position);
        Some((case, draft))
    }
}
