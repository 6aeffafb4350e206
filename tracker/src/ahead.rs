//! # Alerts ahead of their frame: a stolen or armed sighting, or a pressed panic button or a
//! tampered tag, told the moment its frame arrives.
//!
//! Under overload a frame waits its turn to be applied (up to the admission bound, or it is told
//! BUSY and resent later), and with 1 % of tags stolen most busy frames carry a sighting that
//! alerts: ordering whole frames cannot put the alerts first. So the ingest asks
//! [`Tracker::alert_ahead`] as each frame comes in: the sightings of stolen and armed vehicles,
//! and of pressed panic buttons and tampered tags, are judged at once against what memory knows (the visit each joins at its own time, the hotlist,
//! where the vehicle was armed), their alerts raised, and a ledger entry kept. When the frame (or
//! a copy resent after a BUSY) is applied, a sighting the ledger covers does not alert again: its
//! visit counts as alerted. One alert per visit still holds whatever the order: a ledger entry
//! stands for the visit its detection will join (detections within the visit gap of each other
//! end up in one visit).
//!
//! The alert's id comes from the frame, as when it is raised by applying it, so a frame applied
//! again after a crash yields the same alert. Where memory may not hold the visit a sighting
//! joins (behind the hot window, not yet brought back from the store), the sighting is left to
//! the frame's application, which reads the store first.

use crate::rules::Draft;
use crate::{Observation, Tracker};
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{
    tag_flags, Alert, AlertKind, Detection, FrameKey, GeoPoint, StationId, TagId,
};

/// Sightings of one tag at one station judged ahead, within the visit gap of one another: what
/// their visit will be once their frames are applied, and which of its alerts are raised.
#[derive(Debug, Clone)]
struct Span {
    first_ms: i64,
    last_ms: i64,
    stolen: bool,
    armed: bool,
    /// Urgent flag bits ([`URGENT_FLAGS`]) alerted.
    flags: u8,
    /// The frames whose sightings these are, not applied yet.
    frames: Vec<FrameKey>,
    /// Sightings alerted before a restart whose frames are not known (restored alerts), by
    /// time, not applied yet: until they are, no visit in memory stands for them.
    restored: Vec<i64>,
}

impl Span {
    fn near(&self, t: i64, gap: i64) -> bool {
        self.first_ms - gap <= t && t <= self.last_ms + gap
    }

    /// Its visit has raised an alert of `kind`.
    fn mark(&mut self, kind: AlertKind) {
        match kind {
            AlertKind::StolenSighting => self.stolen = true,
            AlertKind::ArmedMoved => self.armed = true,
            other => self.flags |= urgent_flag(other),
        }
    }

    fn covered(&self) -> Covered {
        Covered {
            stolen: self.stolen,
            armed: self.armed,
            flags: self.flags,
        }
    }
}

/// The flags a tag raises that cannot wait for its frame's turn: a panic button pressed, a tag
/// torn off. (A low battery can.)
pub const URGENT_FLAGS: u8 = tag_flags::PANIC | tag_flags::TAMPER | tag_flags::POWER_CUT;

/// The urgent flag bit an alert of `kind` stands for (0 for other kinds).
pub(crate) fn urgent_flag(kind: AlertKind) -> u8 {
    match kind {
        AlertKind::Panic => tag_flags::PANIC,
        AlertKind::TagTamper => tag_flags::TAMPER,
        AlertKind::PowerCut => tag_flags::POWER_CUT,
        _ => 0,
    }
}

/// Which of a detection's alerts were raised ahead (for its visit).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Covered {
    pub stolen: bool,
    pub armed: bool,
    pub flags: u8,
}

/// Watched tags' sightings judged ahead whose frames are not all applied yet, as spans per (tag,
/// station) merged like visits. Small: a span lives from its first frame's arrival until its
/// last frame is applied (seconds), or until it ages out of twice the hot window (frames their
/// station never resends). Every sighting judged ahead is noted, not only those that alerted: a
/// station's backlog arrives faster than it is applied, and a vehicle parked by a station for
/// minutes would otherwise alert again every visit gap, its frames in between not applied yet.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    by_pair: HashMap<(TagId, StationId), Vec<Span>>,
}

impl Ledger {
    pub fn is_empty(&self) -> bool {
        self.by_pair.is_empty()
    }

    /// Spans held.
    pub fn len(&self) -> usize {
        self.by_pair.values().map(Vec::len).sum()
    }

    /// Notes detection `d` of `frame` (None: an alert restored after a restart), merging the
    /// spans it bridges; returns the span it is now part of.
    fn note(&mut self, frame: Option<FrameKey>, d: &Detection, gap: i64) -> &mut Span {
        let spans = self.by_pair.entry((d.tag, d.station)).or_default();
        let t = d.seen_at_ms;
        let mut joined = Span {
            first_ms: t,
            last_ms: t,
            stolen: false,
            armed: false,
            flags: 0,
            frames: Vec::new(),
            restored: Vec::new(),
        };
        spans.retain(|s| {
            if !s.near(t, gap) {
                return true;
            }
            joined.first_ms = joined.first_ms.min(s.first_ms);
            joined.last_ms = joined.last_ms.max(s.last_ms);
            joined.stolen |= s.stolen;
            joined.armed |= s.armed;
            joined.flags |= s.flags;
            joined.frames.extend_from_slice(&s.frames);
            joined.restored.extend_from_slice(&s.restored);
            false
        });
        match frame {
            Some(frame) if !joined.frames.contains(&frame) => joined.frames.push(frame),
            Some(_) => {}
            None => joined.restored.push(t),
        }
        spans.push(joined);
        spans.last_mut().expect("just pushed")
    }

    /// An alert of `kind` was raised for the visit a detection of `tag` at `station` at `t` joins
    /// (restored after a restart): later sightings there must not raise it again.
    pub fn alerted(&mut self, tag: TagId, station: StationId, t: i64, kind: AlertKind, gap: i64) {
        let d = Detection {
            tag,
            station,
            seen_at_ms: t,
            rssi: 0,
            reads: 0,
            tag_flags: 0,
        };
        self.note(None, &d, gap).mark(kind);
    }

    /// An alert of `kind` was just raised for the sighting `d` noted (see [`Ledger::note`]).
    fn mark(&mut self, d: &Detection, gap: i64, kind: AlertKind) {
        if let Some(spans) = self.by_pair.get_mut(&(d.tag, d.station)) {
            // After `note`, one span is near `d`: the one it joined.
            for span in spans.iter_mut().filter(|s| s.near(d.seen_at_ms, gap)) {
                span.mark(kind);
            }
        }
    }

    /// Detection `d` of `frame` is being applied: which alerts were raised ahead for the visit it
    /// joins. `frame` (and a restored sighting at `d`'s very time) is done with in the spans near
    /// it; a span with nothing left to apply goes: memory now holds a visit over all of it,
    /// marked alerted by the caller. (A restored span dropped at the first detection near it left
    /// its own sighting's time uncovered, and an earlier resent frame alerted the visit again:
    /// seen once in the SIGKILL test.)
    pub fn settle(&mut self, frame: FrameKey, d: &Detection, gap: i64) -> Covered {
        let Some(spans) = self.by_pair.get_mut(&(d.tag, d.station)) else {
            return Covered::default();
        };
        let mut covered = Covered::default();
        for s in spans.iter_mut().filter(|s| s.near(d.seen_at_ms, gap)) {
            covered.stolen |= s.stolen;
            covered.armed |= s.armed;
            covered.flags |= s.flags;
            s.frames.retain(|&f| f != frame);
            s.restored.retain(|&t| t != d.seen_at_ms);
        }
        spans.retain(|s| {
            !(s.near(d.seen_at_ms, gap) && s.frames.is_empty() && s.restored.is_empty())
        });
        if spans.is_empty() {
            self.by_pair.remove(&(d.tag, d.station));
        }
        covered
    }

    /// Drops the spans that ended before `cut` (frames never applied).
    pub fn forget_before(&mut self, cut: i64) {
        self.by_pair.retain(|_, spans| {
            spans.retain(|s| s.last_ms >= cut);
            !spans.is_empty()
        });
    }
}

impl Tracker {
    /// Whether a detection of `tag` with `flags` is judged as its frame arrives: a stolen or
    /// armed vehicle's, or one with an urgent flag (for the ingest's cheap look at each record).
    pub fn judges_ahead(&self, tag: TagId, flags: u8) -> bool {
        flags & URGENT_FLAGS != 0 || self.is_watched(tag)
    }

    /// Raises now the stolen, armed, panic and tamper alerts that `obs` will raise when it is
    /// applied, judged
    /// against what memory holds, and remembers them so that applying it (or a resent copy) later
    /// raises them no more. For the ingest, as each frame comes in, before it is queued, and
    /// whether or not it is then queued: a frame told BUSY still alerts, once.
    pub fn alert_ahead(&mut self, obs: Observation<'_>, now_ms: i64) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let Some(position) = obs
            .reader_position
            .or_else(|| self.stations.get(&obs.frame.station).copied())
        else {
            return alerts;
        };
        let shift_ms = self
            .station_watch
            .correction(obs.frame.station, obs.sent_at_ms, now_ms);
        let gap = self.config.visit_gap_ms;
        for d in obs.detections {
            if !self.judges_ahead(d.tag, d.tag_flags) {
                continue;
            }
            let d = Detection {
                seen_at_ms: d.seen_at_ms.saturating_sub(shift_ms),
                ..*d
            };
            if self
                .visits
                .history_window(d.tag, d.station, d.seen_at_ms)
                .is_some()
            {
                // Memory may lack the visit it joins: applying the frame reads the store first.
                continue;
            }
            let visit = self.visits.visit_at(d.tag, d.station, d.seen_at_ms);
            let covered = self.ahead.note(Some(obs.frame), &d, gap).covered();
            let mut drafts = Vec::new();
            if self.hotlist.may_alert(d.tag, visit, position) && !covered.stolen {
                if let Some((case, mut draft)) = self.hotlist.draft(obs.frame, &d, position) {
                    draft.detail =
                        self.movement_detail(d.tag, d.station, case, d.seen_at_ms, now_ms);
                    self.heading_here(&mut draft, d.seen_at_ms);
                    drafts.push(draft);
                }
            }
            if self
                .guards
                .may_alert(d.tag, Some(position), d.tag_flags, visit)
                && !covered.armed
            {
                drafts.extend(self.guards.draft(obs.frame, &d, position));
            }
            let urgent = d.tag_flags & URGENT_FLAGS & !covered.flags;
            if urgent != 0 {
                self.flags
                    .draft_ahead(urgent, visit, obs.frame, &d, position, &mut drafts);
            }
            for mut draft in drafts {
                if shift_ms != 0 {
                    draft.detail.clock_corrected_s = Some(shift_ms as f64 / 1000.0);
                }
                self.ahead.mark(&d, gap, draft.kind);
                alerts.push(self.issue(draft, now_ms));
            }
        }
        alerts
    }

    /// Spans of sightings judged ahead whose frames are not all applied yet.
    pub fn judged_ahead(&self) -> usize {
        self.ahead.len()
    }

    /// A sighting at a station the tag is not placed at yet: its heading and speed are those of
    /// the move from where it is placed to here (what the alert would say once the frame is
    /// applied and the tag placed here), not of the move before.
    fn heading_here(&self, draft: &mut Draft, seen_at_ms: i64) {
        let Some(tag) = draft.tag else {
            return;
        };
        let Some(place) = self.places.get(&tag) else {
            return;
        };
        if place.current.station == draft.station {
            return;
        }
        let here: GeoPoint = draft.position;
        let motion = crate::queries::motion(
            (place.current.position, place.current.since_ms),
            (here, seen_at_ms),
        );
        draft.detail.speed_mps = motion.map(|m| m.0);
        draft.detail.heading_deg = motion.map(|m| m.1);
    }
}
