//! # Flag rules: `panic`, `tag_tamper` and `low_battery`, raised from the tag's own flags, once per
//! flag per visit (a held panic button raises one alert per visit, not one per frame).

use super::{Draft, Sighting};
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{tag_flags, AlertKind, Detection, FrameKey, GeoPoint, TagId, VisitId};

const RULES: [(u8, AlertKind); 4] = [
    (tag_flags::PANIC, AlertKind::Panic),
    (tag_flags::TAMPER, AlertKind::TagTamper),
    (tag_flags::LOW_BATTERY, AlertKind::LowBattery),
    (tag_flags::POWER_CUT, AlertKind::PowerCut),
];
/// The flag bits [`RULES`] alert on.
const ALERTED: u8 =
    tag_flags::PANIC | tag_flags::TAMPER | tag_flags::LOW_BATTERY | tag_flags::POWER_CUT;

/// Per tag, the visit of its latest flag alert and the flag bits already alerted in it.
#[derive(Debug, Default)]
pub(crate) struct FlagWatch {
    alerted: HashMap<TagId, (VisitId, u8)>,
}

impl FlagWatch {
    /// The alerts this sighting's flags raise.
    pub fn check(&mut self, s: Sighting<'_>, drafts: &mut Vec<Draft>) {
        let raised = s.d.tag_flags & ALERTED;
        if raised == 0 {
            return;
        }
        let entry = self.alerted.entry(s.d.tag).or_insert((s.visit, 0));
        if entry.0 != s.visit {
            *entry = (s.visit, 0);
        }
        let fresh = raised & !entry.1;
        entry.1 |= raised;
        for (bit, kind) in RULES {
            if fresh & bit != 0 {
                drafts.push(Draft::about(kind, kind.as_str(), s));
            }
        }
    }

    /// The flag bits of `flags` not yet alerted in `visit` (the visit a sighting joins, if memory
    /// holds it), drafted for detection `d` of `frame` before the frame is applied (see
    /// `Tracker::alert_ahead`). The drafts are those applying it would make.
    pub fn draft_ahead(
        &self,
        flags: u8,
        visit: Option<VisitId>,
        frame: FrameKey,
        d: &Detection,
        position: GeoPoint,
        drafts: &mut Vec<Draft>,
    ) {
        let alerted = match (self.alerted.get(&d.tag), visit) {
            (Some(&(of, bits)), Some(visit)) if of == visit => bits,
            _ => 0,
        };
        let fresh = flags & !alerted;
        for (bit, kind) in RULES {
            if fresh & bit != 0 {
                drafts.push(Draft::heard(kind, kind.as_str(), frame, d, position));
            }
        }
    }

    /// After a restart: `kind` was raised in `visit`, which must not raise it again.
    pub fn alerted(&mut self, tag: TagId, visit: VisitId, kind: AlertKind) {
        let Some(&(bit, _)) = RULES.iter().find(|(_, k)| *k == kind) else {
            return;
        };
        let entry = self.alerted.entry(tag).or_insert((visit, 0));
        if entry.0 != visit {
            *entry = (visit, 0);
        }
        entry.1 |= bit;
    }
}
