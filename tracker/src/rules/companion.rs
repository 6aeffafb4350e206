//! # Companion rule: `companion_missing`, a paired tag (a person and a carer's card, a vehicle
//! and its owner's key) heard at the start of a visit without its companion nearby, once per
//! visit. The check waits a visit gap, so a companion heard a little later still counts.

use super::{frame_alert_id, Draft};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tagwatch_model::{AlertDetail, AlertKind, Detection, FrameKey, GeoPoint, StationId, TagId};

/// A companion heard at a station within this distance counts as with its tag.
pub const COMPANION_RADIUS_M: f64 = 300.0;

/// A paired tag heard at the start of a visit: is its companion heard too, by `due_ms`?
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CompanionCheck {
    pub due_ms: i64,
    pub tag: TagId,
    pub companion: TagId,
    pub frame: FrameKey,
    pub seen_at_ms: i64,
    pub station: StationId,
}

/// The pairs, and the checks waiting for their time.
#[derive(Debug, Default)]
pub(crate) struct Companions {
    pairs: HashMap<TagId, TagId>,
    checks: BinaryHeap<Reverse<CompanionCheck>>,
}

impl Companions {
    pub fn pair(&mut self, tag: TagId, companion: TagId) {
        self.pairs.insert(tag, companion);
    }

    pub fn unpair(&mut self, tag: TagId) {
        self.pairs.remove(&tag);
    }

    /// `d` opened a visit of its tag: if the tag is paired, its companion must be heard nearby
    /// within `gap_ms`.
    pub fn opened(&mut self, d: &Detection, frame: FrameKey, gap_ms: i64) {
        if let Some(&companion) = self.pairs.get(&d.tag) {
            self.checks.push(Reverse(CompanionCheck {
                due_ms: d.seen_at_ms + gap_ms,
                tag: d.tag,
                companion,
                frame,
                seen_at_ms: d.seen_at_ms,
                station: d.station,
            }));
        }
    }

    /// The checks waiting for their time, for a checkpoint (see `Tracker::rule_state`).
    pub fn waiting(&self) -> Vec<CompanionCheck> {
        let mut checks: Vec<CompanionCheck> = self.checks.iter().map(|c| c.0).collect();
        checks.sort_unstable();
        checks
    }

    /// Puts back a check waiting at a checkpoint.
    pub fn restore(&mut self, check: CompanionCheck) {
        self.checks.push(Reverse(check));
    }

    /// The checks due by `now_ms` (station time) whose pair still stands, each judged by
    /// `with_it`: where the tag was read, and whether its companion was heard near there then
    /// (`None`: the place is unknown, no alert).
    pub fn due(
        &mut self,
        now_ms: i64,
        mut with_it: impl FnMut(&CompanionCheck) -> Option<(GeoPoint, bool)>,
        drafts: &mut Vec<Draft>,
    ) {
        while let Some(Reverse(check)) = self.checks.peek().copied() {
            if check.due_ms > now_ms {
                break;
            }
            self.checks.pop();
            // Unpaired (or re-paired) since: the check is moot.
            if self.pairs.get(&check.tag) != Some(&check.companion) {
                continue;
            }
            let Some((position, false)) = with_it(&check) else {
                continue;
            };
            drafts.push(Draft {
                kind: AlertKind::CompanionMissing,
                id: frame_alert_id("companion_missing", check.tag, check.frame),
                tag: Some(check.tag),
                station: check.station,
                position,
                seen_at_ms: check.seen_at_ms,
                detail: AlertDetail {
                    companion: Some(check.companion),
                    ..AlertDetail::default()
                },
            });
        }
    }
}
