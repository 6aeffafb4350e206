//! # Watch rules: each turns what the tracker just learned into alerts.
//!
//! Every alert gets a deterministic id from what raised it (the frame, or the station and time),
//! so a frame applied again after a crash yields the same alert and the store keeps one; and one
//! alert per visit (or per crossing, per silence), not one per detection.

use crate::placement::Heard;
use crate::station_watch::Finding;
use crate::{
    frame_alert_id, raise, spatial, CompanionCheck, Draft, LastSeen, Sighting, Tracker,
    ARMED_RADIUS_M, CLONE_MAX_SPEED_MPS, CLONE_MIN_DISTANCE_M, COMPANION_RADIUS_M,
};
use std::cmp::Reverse;
use tagwatch_model::{
    tag_flags, Alert, AlertDetail, AlertKind, CaseId, CloneEvidence, FenceCrossing, FrameKey,
    GeoPoint, Intercept, TagId,
};

/// Next stations attached to a stolen-tag alert.
const INTERCEPT_STATIONS: usize = 3;

impl Tracker {
    fn issue(&mut self, draft: Draft, now_ms: i64) -> Alert {
        raise(&mut self.next_alert_seq, draft, now_ms)
    }

    /// A draft about a sighting.
    fn draft(kind: AlertKind, scope: &str, s: Sighting<'_>) -> Draft {
        Draft {
            kind,
            id: frame_alert_id(scope, s.d.tag, s.frame),
            tag: Some(s.d.tag),
            station: s.d.station,
            position: s.position,
            seen_at_ms: s.d.seen_at_ms,
            detail: AlertDetail::default(),
        }
    }

    /// `stolen_sighting`: a reported-stolen tag heard, once per visit, with where it is heading.
    pub(crate) fn stolen_rule(&mut self, s: Sighting<'_>, alerts: &mut Vec<Alert>) {
        let Some(stolen) = self.stolen.get_mut(&s.d.tag) else {
            return;
        };
        if !stolen.alerted.insert(s.visit) {
            return;
        }
        let case = stolen.case;
        let scope = format!("stolen_sighting-{}", case.0);
        let mut draft = Self::draft(AlertKind::StolenSighting, &scope, s);
        draft.detail = self.movement_detail(s.d.tag, s.d.station, case, s.d.seen_at_ms, s.now_ms);
        alerts.push(self.issue(draft, s.now_ms));
    }

    /// Case, heading, speed and the likely next stations of a tag just heard at `station`.
    /// Where the tag is heading, from its sighting at `station` at `seen_at_ms`, as known at
    /// `now_ms`: next stations it has probably not passed yet, with ETAs counted from now.
    fn movement_detail(
        &self,
        tag: TagId,
        station: tagwatch_model::StationId,
        case: CaseId,
        seen_at_ms: i64,
        now_ms: i64,
    ) -> AlertDetail {
        let mut detail = AlertDetail {
            case: Some(case.0),
            ..AlertDetail::default()
        };
        if let Some(location) = self.location(tag) {
            detail.heading_deg = location.heading_deg;
            detail.speed_mps = location.speed_mps;
        }
        // The direction it came from: where it is placed, if it is only arriving here.
        let came_from = self.places.get(&tag).and_then(|p| {
            if p.current.station != station {
                Some(p.current.station)
            } else {
                p.previous.map(|prev| prev.station)
            }
        });
        // Seconds since the sighting: a late or looked-back sighting's vehicle has moved on, and
        // a station three quarters of such moves would have reached by now is no place to wait.
        let since_s = (now_ms - seen_at_ms).max(0) as f64 / 1000.0;
        detail.intercept = self
            .transitions
            .predict(came_from, station, INTERCEPT_STATIONS)
            .into_iter()
            .filter(|p| p.eta_high_s >= since_s)
            .filter_map(|p| {
                let at = self.stations.get(&p.station)?;
                Some(Intercept {
                    station: p.station,
                    lat: at.lat,
                    lon: at.lon,
                    probability: p.probability,
                    eta_s: (p.eta_s - since_s).max(0.0),
                    eta_low_s: (p.eta_low_s - since_s).max(0.0),
                    eta_high_s: p.eta_high_s - since_s,
                })
            })
            .collect();
        detail
    }

    /// A theft reported late: its latest sighting since the owner last saw it is alerted now.
    pub(crate) fn look_back(
        &mut self,
        tag: TagId,
        case: CaseId,
        since_ms: i64,
        stored: Option<LastSeen>,
        now_ms: i64,
    ) -> Option<Alert> {
        let in_memory = self.last_seen(tag);
        let latest = [in_memory, stored]
            .into_iter()
            .flatten()
            .filter(|s| s.seen_at_ms >= since_ms)
            .max_by_key(|s| s.seen_at_ms)?;
        // The visit it belongs to counts as alerted: its next detection does not alert again.
        if let Some(visit) = self.visits.visit_at(tag, latest.station, latest.seen_at_ms) {
            if let Some(stolen) = self.stolen.get_mut(&tag) {
                stolen.alerted.insert(visit);
            }
        }
        let mut detail = self.movement_detail(tag, latest.station, case, latest.seen_at_ms, now_ms);
        detail.look_back = true;
        let draft = Draft {
            kind: AlertKind::StolenSighting,
            id: format!(
                "stolen_lookback-{}-{tag}-{}-{}",
                case.0, latest.station, latest.seen_at_ms
            ),
            tag: Some(tag),
            station: latest.station,
            position: latest.position,
            seen_at_ms: latest.seen_at_ms,
            detail,
        };
        Some(self.issue(draft, now_ms))
    }

    /// `armed_moved`: an armed vehicle heard away from where it was armed, once per visit.
    pub(crate) fn armed_rule(&mut self, s: Sighting<'_>, alerts: &mut Vec<Alert>) {
        let Some(guard) = self.armed.get_mut(&s.d.tag) else {
            return;
        };
        let moved_m = spatial::distance_m(guard.position, s.position);
        if moved_m <= ARMED_RADIUS_M || guard.alerted == Some(s.visit) {
            return;
        }
        guard.alerted = Some(s.visit);
        let mut draft = Self::draft(AlertKind::ArmedMoved, "armed_moved", s);
        draft.detail.moved_m = Some(moved_m.round());
        alerts.push(self.issue(draft, s.now_ms));
    }

    /// `clone_suspected`: heard here, and at `previous` too far away for the time between.
    pub(crate) fn clone_rule(&mut self, s: Sighting<'_>, previous: Heard, alerts: &mut Vec<Alert>) {
        if previous.station == s.d.station {
            return;
        }
        let distance = spatial::distance_m(previous.position, s.position);
        if distance <= CLONE_MIN_DISTANCE_M {
            return;
        }
        let seconds = (s.d.seen_at_ms - previous.at_ms).unsigned_abs() as f64 / 1000.0;
        if distance <= CLONE_MAX_SPEED_MPS * seconds {
            return;
        }
        if self.clone_alerted.insert(s.d.tag, s.visit) == Some(s.visit) {
            return;
        }
        let mut draft = Self::draft(AlertKind::CloneSuspected, "clone_suspected", s);
        draft.detail.clone_of = Some(CloneEvidence {
            station: previous.station,
            lat: previous.position.lat,
            lon: previous.position.lon,
            distance_m: distance.round(),
            seconds_apart: seconds,
            // Heard at the same instant: no speed would do.
            implied_speed_mps: (seconds > 0.0).then(|| (distance / seconds * 10.0).round() / 10.0),
        });
        alerts.push(self.issue(draft, s.now_ms));
    }

    /// `tag_tamper`, `panic` and `low_battery`: raised from the tag's own flags, once per flag
    /// per visit.
    pub(crate) fn flag_rules(&mut self, s: Sighting<'_>, alerts: &mut Vec<Alert>) {
        const RULES: [(u8, AlertKind); 3] = [
            (tag_flags::PANIC, AlertKind::Panic),
            (tag_flags::TAMPER, AlertKind::TagTamper),
            (tag_flags::LOW_BATTERY, AlertKind::LowBattery),
        ];
        let raised =
            s.d.tag_flags & (tag_flags::PANIC | tag_flags::TAMPER | tag_flags::LOW_BATTERY);
        if raised == 0 {
            return;
        }
        let entry = self.flags_alerted.entry(s.d.tag).or_insert((s.visit, 0));
        if entry.0 != s.visit {
            *entry = (s.visit, 0);
        }
        let fresh = raised & !entry.1;
        entry.1 |= raised;
        for (bit, kind) in RULES {
            if fresh & bit != 0 {
                let draft = Self::draft(kind, kind.as_str(), s);
                alerts.push(self.issue(draft, s.now_ms));
            }
        }
    }

    /// `geofence`: the tag moved from `from` to `to` across fences watching it.
    pub(crate) fn fence_rule(
        &mut self,
        s: Sighting<'_>,
        from: GeoPoint,
        to: GeoPoint,
        alerts: &mut Vec<Alert>,
    ) {
        if !self.fences.watches(s.d.tag) {
            return;
        }
        let crossings: Vec<FenceCrossing> = self
            .fences
            .crossed(s.d.tag, from, to)
            .into_iter()
            .map(|c| FenceCrossing {
                fence: c.fence.id,
                name: c.fence.name.clone(),
                entered: c.entered,
            })
            .collect();
        for crossing in crossings {
            let way = if crossing.entered { "enter" } else { "leave" };
            let scope = format!("geofence-{}-{way}", crossing.fence);
            let mut draft = Self::draft(AlertKind::Geofence, &scope, s);
            draft.position = to;
            draft.detail.fence = Some(crossing);
            alerts.push(self.issue(draft, s.now_ms));
        }
    }

    /// `companion_missing`: checks whose time has come (the companion had a visit gap to be
    /// heard nearby), once per visit of the paired tag.
    pub(crate) fn companion_rule(&mut self, now_ms: i64, alerts: &mut Vec<Alert>) {
        while let Some(Reverse(check)) = self.companion_checks.peek().copied() {
            if check.due_ms > self.high_water_ms {
                break;
            }
            self.companion_checks.pop();
            // Unpaired (or re-paired) since: the check is moot.
            if self.companions.get(&check.tag) != Some(&check.companion) {
                continue;
            }
            if let Some(alert) = self.companion_missing(check, now_ms) {
                alerts.push(alert);
            }
        }
    }

    fn companion_missing(&mut self, check: CompanionCheck, now_ms: i64) -> Option<Alert> {
        let position = self.read_position(check.station, check.seen_at_ms)?;
        let mut nearby: Vec<_> = self
            .spatial
            .stations_within(position, COMPANION_RADIUS_M)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        nearby.push(check.station);
        let with_it = nearby.iter().any(|&s| {
            self.visits
                .visit_at(check.companion, s, check.seen_at_ms)
                .is_some()
        });
        if with_it {
            return None;
        }
        let draft = Draft {
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
        };
        Some(self.issue(draft, now_ms))
    }

    /// An alert about a station (`tag` null) from what the station watch found. Its id comes
    /// from the frame that showed it, so applying that frame again raises the same alert.
    pub(crate) fn station_alert(
        &mut self,
        finding: Finding,
        frame: Option<FrameKey>,
        now_ms: i64,
    ) -> Alert {
        let station = finding.station();
        let by_frame = |scope: &str| match frame {
            Some(f) => format!("{scope}-{station}-{}-{}", f.session, f.seq),
            None => format!("{scope}-{station}-{now_ms}"),
        };
        let mut detail = AlertDetail::default();
        let (kind, id, seen_at_ms) = match finding {
            Finding::Silent { last_frame_ms, .. } => {
                detail.silent_s = Some((now_ms - last_frame_ms) / 1000);
                let id = format!("station_silent-{station}-{last_frame_ms}");
                (AlertKind::StationSilent, id, last_frame_ms)
            }
            Finding::Skewed { skew_ms, .. } => {
                detail.clock_skew_s = Some(skew_ms as f64 / 1000.0);
                let id = by_frame("station_clock_skew");
                (AlertKind::StationClockSkew, id, now_ms)
            }
            Finding::Back { last_frame_ms, .. } => {
                detail.silent_s = Some((now_ms - last_frame_ms) / 1000);
                (AlertKind::StationBack, by_frame("station_back"), now_ms)
            }
            Finding::PowerFault { .. } => {
                let id = by_frame("station_power_fault");
                (AlertKind::StationPowerFault, id, now_ms)
            }
            Finding::Overheated { temp_c, .. } => {
                detail.temp_c = Some(temp_c);
                (
                    AlertKind::StationOverheat,
                    by_frame("station_overheat"),
                    now_ms,
                )
            }
            Finding::Backlog { frames, .. } => {
                detail.backlog = Some(frames);
                (
                    AlertKind::StationBacklog,
                    by_frame("station_backlog"),
                    now_ms,
                )
            }
        };
        let position = self
            .stations
            .get(&station)
            .copied()
            .unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 });
        let draft = Draft {
            kind,
            id,
            tag: None,
            station,
            position,
            seen_at_ms,
            detail,
        };
        self.issue(draft, now_ms)
    }
}
