//! # Where a stolen vehicle is heading: the detail of a `stolen_sighting` alert (case, heading,
//! speed, the next stations with their ETAs), and the look-back when a theft is reported late.
//! The tracker's to say, not the hotlist's: it reads the tag's placement, the learned transitions
//! between stations and the stations' places.

use crate::rules::Draft;
use crate::{LastSeen, Tracker};
use tagwatch_model::{Alert, AlertDetail, AlertKind, CaseId, Intercept, TagId};

/// Next stations attached to a stolen-tag alert.
const INTERCEPT_STATIONS: usize = 3;

impl Tracker {
    /// Case, heading, speed and the likely next stations of a tag just heard at `station`.
    /// Where the tag is heading, from its sighting at `station` at `seen_at_ms`, as known at
    /// `now_ms`: next stations it has probably not passed yet, with ETAs counted from now.
    pub(crate) fn movement_detail(
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
            self.hotlist.alerted(tag, visit, latest.position);
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
}
