//! # Stolen rule: `stolen_sighting`, a tag on the hotlist heard, once per visit.
//!
//! The hotlist holds the tags with an open theft case and, per case, the visits already alerted.
//! Where the vehicle is heading (the alert's detail) is the tracker's to say: see
//! `Tracker::movement_detail`.

use super::{Draft, Sighting};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tagwatch_model::{AlertKind, CaseId, Detection, FrameKey, GeoPoint, TagId, VisitId};

#[derive(Debug)]
struct Stolen {
    case: CaseId,
    /// Visits already alerted in this case: one alert per visit, not per detection.
    alerted: HashSet<VisitId>,
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

    /// Whether hearing `tag` in `visit` (if it joins one) may raise an alert: stolen, and that
    /// visit not alerted yet.
    pub fn may_alert(&self, tag: TagId, visit: Option<VisitId>) -> bool {
        self.stolen
            .get(&tag)
            .is_some_and(|stolen| visit.is_none_or(|v| !stolen.alerted.contains(&v)))
    }

    /// `visit` of `tag` counts as alerted (an alert restored after a restart, a look-back).
    pub fn alerted(&mut self, tag: TagId, visit: VisitId) {
        if let Some(stolen) = self.stolen.get_mut(&tag) {
            stolen.alerted.insert(visit);
        }
    }

    /// The alert this sighting raises, with its case, if the tag is stolen and the visit has not
    /// alerted yet; the caller adds where the vehicle is heading.
    pub fn check(&mut self, s: Sighting<'_>) -> Option<(CaseId, Draft)> {
        let stolen = self.stolen.get_mut(&s.d.tag)?;
        if !stolen.alerted.insert(s.visit) {
            return None;
        }
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
