//! # TagWatch tracker
//!
//! The second stage of the pipeline: verified frames in; visits, last locations and alerts out.
//! Pure state with no I/O, owned by exactly one task (the ingest loop), which feeds it frames and
//! flushes its changes to the store.
//!
//! ## Layout
//! - [`visits`]: detections → visits, robust to reordering and late data.
//! - [`spatial`]: stations in an R-tree and the tags last heard at each, for "near me" queries.
//! - [`Tracker`]: stations, the stolen-tag hotlist, each tag's last location, and the watch rule
//!   that raises `stolen_sighting`.

pub mod spatial;
pub mod visits;

// FxHash: keys are small integers that come only from authenticated stations,
// and the maps are hit several times per detection; SipHash's DoS resistance buys nothing here.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tagwatch_model::{
    tag_flags, Alert, AlertId, AlertKind, CaseId, Detection, FrameKey, GeoPoint, Station,
    StationId, TagId, VisitId,
};
pub use visits::{VisitBook, VisitChanges};

/// Two sightings of one tag closer than this are never impossible travel: neighbouring stations
/// hear the same tag within a second, so the distance must exceed any overlap of ranges.
pub const CLONE_MIN_DISTANCE_M: f64 = 1_500.0;
/// Faster than this between two sightings is impossible for a road vehicle (252 km/h).
pub const CLONE_MAX_SPEED_MPS: f64 = 70.0;

/// An armed vehicle heard further than this from where it was armed has moved: beyond the
/// overlap of neighbouring stations, so a parked vehicle heard by the next station is not one.
pub const ARMED_RADIUS_M: f64 = 300.0;

/// Tuning of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Detections of a tag at one station closer than this belong to one visit.
    pub visit_gap_ms: i64,
    /// How long visits stay in memory after their last detection (for late data to merge into).
    pub hot_window_ms: i64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            visit_gap_ms: 30_000,
            hot_window_ms: 3_600_000,
        }
    }
}

/// A question for the tracker, asked by the API: a closure the tracker's owning task runs against
/// the live state (it answers through a channel of its own). Keeps every query in one place, the
/// task that owns the state, with no lock on the hot path.
pub struct Query(pub Box<dyn FnOnce(&Tracker) + Send>);

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Query(..)")
    }
}

/// Changes to the tracker's reference data, sent by the API to the task that owns the tracker.
#[derive(Debug, Clone)]
pub enum Command {
    /// A station was provisioned (its position places its detections).
    Station(Station),
    /// A theft was reported: the tag joins the hotlist.
    Stolen { tag: TagId, case: CaseId },
    /// The vehicle was recovered: the tag leaves the hotlist at once.
    Recovered { tag: TagId },
    /// Its owner armed it, parked at `position` (where it was last heard).
    Armed { tag: TagId, position: GeoPoint },
    /// Its owner disarmed it.
    Disarmed { tag: TagId },
}

/// Where a tag was last heard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastSeen {
    pub station: StationId,
    pub position: GeoPoint,
    pub seen_at_ms: i64,
}

#[derive(Debug)]
struct Guard {
    position: GeoPoint,
    alerted: Option<VisitId>,
}

#[derive(Debug)]
struct Stolen {
    case: CaseId,
    /// Visits already alerted in this case: one alert per visit, not per detection.
    alerted: HashSet<VisitId>,
}

/// One frame's worth of detections, with where they were heard.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub frame: FrameKey,
    /// The reader's own position (mobile readers); fixed stations use their surveyed one.
    pub reader_position: Option<GeoPoint>,
    pub detections: &'a [Detection],
}

/// The live state of the whole city.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    stations: HashMap<StationId, GeoPoint>,
    spatial: spatial::Spatial,
    visits: VisitBook,
    last_seen: HashMap<TagId, LastSeen>,
    stolen: HashMap<TagId, Stolen>,
    /// Per tag, the visit of its latest flag alert and the flag bits already alerted in it:
    /// a held panic button raises one alert per visit, not one per frame.
    flags_alerted: HashMap<TagId, (VisitId, u8)>,
    /// Per tag, the visit of its latest clone alert: one alert per visit at the far place.
    clone_alerted: HashMap<TagId, VisitId>,
    /// Armed vehicles: where they were armed, and the visit of their latest alert.
    armed: HashMap<TagId, Guard>,
    next_alert_seq: i64,
    /// The latest detection time seen: the tracker's notion of "now", in station time, so that
    /// replays and simulations at any speed age out the hot window consistently.
    high_water_ms: i64,
}

impl Tracker {
    /// `next_visit_id` and `next_alert_seq` continue the sequences already in the store.
    pub fn new(config: TrackerConfig, next_visit_id: i64, next_alert_seq: i64) -> Self {
        Self {
            config,
            stations: HashMap::default(),
            spatial: spatial::Spatial::default(),
            visits: VisitBook::new(config.visit_gap_ms, next_visit_id),
            last_seen: HashMap::default(),
            stolen: HashMap::default(),
            flags_alerted: HashMap::default(),
            clone_alerted: HashMap::default(),
            armed: HashMap::default(),
            next_alert_seq,
            high_water_ms: i64::MIN,
        }
    }

    /// Applies a change of reference data.
    pub fn command(&mut self, command: Command) {
        match command {
            Command::Station(station) => self.set_station(&station),
            Command::Stolen { tag, case } => self.report_stolen(tag, case),
            Command::Recovered { tag } => self.recovered(tag),
            Command::Armed { tag, position } => self.arm(tag, position),
            Command::Disarmed { tag } => {
                self.armed.remove(&tag);
            }
        }
    }

    pub fn set_station(&mut self, station: &Station) {
        self.stations.insert(station.id, station.position);
        self.spatial.set_station(station.id, station.position);
    }

    /// The tag is now stolen: every sighting raises an alert until the case closes.
    pub fn report_stolen(&mut self, tag: TagId, case: CaseId) {
        self.stolen.insert(
            tag,
            Stolen {
                case,
                alerted: HashSet::default(),
            },
        );
    }

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

    pub fn recovered(&mut self, tag: TagId) {
        self.stolen.remove(&tag);
    }

    pub fn is_stolen(&self, tag: TagId) -> bool {
        self.stolen.contains_key(&tag)
    }

    /// Puts back an open visit loaded from the store after a restart.
    pub fn restore_visit(&mut self, visit: tagwatch_model::Visit) {
        self.high_water_ms = self.high_water_ms.max(visit.last_seen_ms);
        self.visits.restore(visit);
    }

    /// The (tag, station, from, to) windows whose stored visits must be restored before these
    /// detections are applied: those behind the hot window (a station's late backlog).
    pub fn history_needed(&self, detections: &[Detection]) -> Vec<(TagId, StationId, i64, i64)> {
        let gap = self.visits.gap_ms();
        detections
            .iter()
            .filter(|d| self.visits.needs_history(d.seen_at_ms))
            // Once a visit near it is back in memory, later detections need no lookup.
            .filter(|d| {
                self.visits
                    .visit_at(d.tag, d.station, d.seen_at_ms)
                    .is_none()
            })
            .map(|d| (d.tag, d.station, d.seen_at_ms - gap, d.seen_at_ms + gap))
            .collect()
    }

    /// After a restart: `alert` was raised before, so the visit it was raised in (if restored)
    /// must not raise another.
    pub fn restore_alert(&mut self, alert: &Alert) {
        let Some(visit) = self
            .visits
            .visit_at(alert.tag, alert.station, alert.seen_at_ms)
        else {
            return;
        };
        if let Some(stolen) = self.stolen.get_mut(&alert.tag) {
            stolen.alerted.insert(visit);
        }
    }

    /// Applies one frame's detections; returns the alerts they raise, in order.
    pub fn apply(&mut self, obs: Observation<'_>, now_ms: i64) -> Vec<Alert> {
        self.visits.set_clock(now_ms);
        let mut alerts = Vec::new();
        let Some(position) = obs
            .reader_position
            .or_else(|| self.stations.get(&obs.frame.station).copied())
        else {
            // A station with a key always has a position; without one we still keep the visits.
            for d in obs.detections {
                self.visits.add(d);
            }
            return alerts;
        };
        for d in obs.detections {
            self.high_water_ms = self.high_water_ms.max(d.seen_at_ms);
            let (visit, _new) = self.visits.add(d);
            if let Some(previous) = self.last_seen.get(&d.tag).copied() {
                self.clone_rule(
                    obs.frame,
                    d,
                    visit.id,
                    position,
                    previous,
                    now_ms,
                    &mut alerts,
                );
            }
            let last = self.last_seen.entry(d.tag).or_insert(LastSeen {
                station: d.station,
                position,
                seen_at_ms: d.seen_at_ms,
            });
            if d.seen_at_ms >= last.seen_at_ms {
                let before = (last.seen_at_ms != d.seen_at_ms || last.station != d.station)
                    .then_some(last.station);
                self.spatial.moved(d.tag, before, d.station);
                *last = LastSeen {
                    station: d.station,
                    position,
                    seen_at_ms: d.seen_at_ms,
                };
            }
            self.flag_rules(obs.frame, d, visit.id, position, now_ms, &mut alerts);
            self.armed_rule(obs.frame, d, visit.id, position, now_ms, &mut alerts);
            if let Some(stolen) = self.stolen.get_mut(&d.tag) {
                if stolen.alerted.insert(visit.id) {
                    alerts.push(raise(
                        &mut self.next_alert_seq,
                        AlertKind::StolenSighting,
                        &format!("stolen_sighting-{}", stolen.case.0),
                        obs.frame,
                        d,
                        position,
                        now_ms,
                    ));
                }
            }
        }
        alerts
    }

    /// `armed_moved`: an armed vehicle heard away from where it was armed, once per visit.
    fn armed_rule(
        &mut self,
        frame: FrameKey,
        d: &Detection,
        visit: VisitId,
        position: GeoPoint,
        now_ms: i64,
        alerts: &mut Vec<Alert>,
    ) {
        let Some(guard) = self.armed.get_mut(&d.tag) else {
            return;
        };
        if spatial::distance_m(guard.position, position) <= ARMED_RADIUS_M
            || guard.alerted == Some(visit)
        {
            return;
        }
        guard.alerted = Some(visit);
        alerts.push(raise(
            &mut self.next_alert_seq,
            AlertKind::ArmedMoved,
            "armed_moved",
            frame,
            d,
            position,
            now_ms,
        ));
    }

    /// `clone_suspected`: heard here, and at `previous` too far away for the time between.
    #[allow(clippy::too_many_arguments)]
    fn clone_rule(
        &mut self,
        frame: FrameKey,
        d: &Detection,
        visit: VisitId,
        position: GeoPoint,
        previous: LastSeen,
        now_ms: i64,
        alerts: &mut Vec<Alert>,
    ) {
        if previous.station == d.station {
            return;
        }
        let distance = spatial::distance_m(previous.position, position);
        if distance <= CLONE_MIN_DISTANCE_M {
            return;
        }
        let seconds = (d.seen_at_ms - previous.seen_at_ms).unsigned_abs() as f64 / 1000.0;
        if distance <= CLONE_MAX_SPEED_MPS * seconds {
            return;
        }
        if self.clone_alerted.insert(d.tag, visit) == Some(visit) {
            return;
        }
        alerts.push(raise(
            &mut self.next_alert_seq,
            AlertKind::CloneSuspected,
            "clone_suspected",
            frame,
            d,
            position,
            now_ms,
        ));
    }

    /// `tag_tamper`, `panic` and `low_battery`: raised from the tag's own flags, once per flag
    /// per visit.
    fn flag_rules(
        &mut self,
        frame: FrameKey,
        d: &Detection,
        visit: VisitId,
        position: GeoPoint,
        now_ms: i64,
        alerts: &mut Vec<Alert>,
    ) {
        const RULES: [(u8, AlertKind); 3] = [
            (tag_flags::PANIC, AlertKind::Panic),
            (tag_flags::TAMPER, AlertKind::TagTamper),
            (tag_flags::LOW_BATTERY, AlertKind::LowBattery),
        ];
        let raised = d.tag_flags & (tag_flags::PANIC | tag_flags::TAMPER | tag_flags::LOW_BATTERY);
        if raised == 0 {
            return;
        }
        let entry = self.flags_alerted.entry(d.tag).or_insert((visit, 0));
        if entry.0 != visit {
            *entry = (visit, 0);
        }
        for (bit, kind) in RULES {
            if raised & bit != 0 && entry.1 & bit == 0 {
                entry.1 |= bit;
                alerts.push(raise(
                    &mut self.next_alert_seq,
                    kind,
                    kind.as_str(),
                    frame,
                    d,
                    position,
                    now_ms,
                ));
            }
        }
    }

    /// The visit rows to write in the next flush.
    pub fn take_changes(&mut self) -> VisitChanges {
        let keep_after = self.high_water_ms.saturating_sub(self.config.hot_window_ms);
        self.visits.take_changes(keep_after)
    }

    /// Tags last heard within `radius_m` of `center` at or after `since_ms`, nearest first (by
    /// their station), at most `limit`.
    pub fn tags_near(
        &self,
        center: GeoPoint,
        radius_m: f64,
        since_ms: i64,
        limit: usize,
    ) -> Vec<(TagId, LastSeen, f64)> {
        let mut found = Vec::new();
        for (station, distance) in self.spatial.stations_within(center, radius_m) {
            let mut here: Vec<(TagId, LastSeen, f64)> = self
                .spatial
                .tags_at(station)
                .filter_map(|tag| self.last_seen.get(&tag).map(|l| (tag, *l, distance)))
                .filter(|(_, l, _)| l.station == station && l.seen_at_ms >= since_ms)
                .collect();
            here.sort_by_key(|(tag, l, _)| (std::cmp::Reverse(l.seen_at_ms), *tag));
            found.extend(here);
            if found.len() >= limit {
                found.truncate(limit);
                break;
            }
        }
        found
    }

    pub fn last_seen(&self, tag: TagId) -> Option<LastSeen> {
        self.last_seen.get(&tag).copied()
    }

    /// Tags with a known last location.
    pub fn tags_tracked(&self) -> usize {
        self.last_seen.len()
    }

    /// Visits held in memory (the hot window).
    pub fn visits_in_memory(&self) -> usize {
        self.visits.len()
    }
}

/// Builds an alert raised by `d` in `frame`, taking the next sequence number. Its id is
/// `{scope}-{tag}-{station}-{session}-{seq}`: deterministic, so the same frame applied again
/// (after a crash) yields the same id and the store keeps one alert.
fn raise(
    next_seq: &mut i64,
    kind: AlertKind,
    scope: &str,
    frame: FrameKey,
    d: &Detection,
    position: GeoPoint,
    now_ms: i64,
) -> Alert {
    let FrameKey {
        station,
        session,
        seq,
    } = frame;
    let alert = Alert {
        seq: *next_seq,
        id: AlertId(format!("{scope}-{}-{station}-{session}-{seq}", d.tag)),
        kind,
        tag: d.tag,
        station: d.station,
        position,
        seen_at_ms: d.seen_at_ms,
        raised_at_ms: now_ms,
    };
    *next_seq += 1;
    alert
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_model::SessionId;

    fn station() -> Station {
        Station {
            id: StationId(1),
            name: "north gate".into(),
            position: GeoPoint {
                lat: 23.26,
                lon: 116.59,
            },
        }
    }

    /// A station on the meridian 116° E at latitude `lat`.
    fn station_at(id: u32, lat: f64) -> Station {
        Station {
            id: StationId(id),
            name: String::new(),
            position: GeoPoint { lat, lon: 116.0 },
        }
    }

    fn frame(seq: u32) -> FrameKey {
        FrameKey {
            station: StationId(1),
            session: SessionId(3),
            seq,
        }
    }

    fn det(tag: u32, t: i64) -> Detection {
        Detection {
            tag: TagId(tag),
            station: StationId(1),
            seen_at_ms: t,
            rssi: -60,
            reads: 1,
            tag_flags: 0,
        }
    }

    fn apply(tracker: &mut Tracker, seq: u32, detections: &[Detection]) -> Vec<Alert> {
        let obs = Observation {
            frame: frame(seq),
            reader_position: None,
            detections,
        };
        tracker.apply(obs, 99)
    }

    #[test]
    fn a_stolen_tag_raises_one_alert_per_visit_with_a_deterministic_id() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 41);
        tracker.set_station(&station());
        assert!(
            apply(&mut tracker, 1, &[det(7, 1_000)]).is_empty(),
            "not stolen yet"
        );
        tracker.report_stolen(TagId(7), CaseId(5));
        let alerts = apply(&mut tracker, 2, &[det(8, 2_000), det(7, 2_000)]);
        assert_eq!(alerts.len(), 1);
        let alert = &alerts[0];
        assert_eq!(alert.seq, 41);
        assert_eq!(alert.id.0, "stolen_sighting-5-7-1-3-2");
        assert_eq!((alert.tag, alert.station), (TagId(7), StationId(1)));
        assert_eq!(alert.position, station().position);
        assert_eq!(alert.seen_at_ms, 2_000);
        // Same visit: no second alert. A new visit much later: a new one.
        assert!(apply(&mut tracker, 3, &[det(7, 3_000)]).is_empty());
        let later = apply(&mut tracker, 4, &[det(7, 500_000)]);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].seq, 42);
        tracker.recovered(TagId(7));
        assert!(apply(&mut tracker, 5, &[det(7, 900_000)]).is_empty());
    }

    #[test]
    fn tag_flags_raise_one_alert_per_flag_per_visit() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station());
        let flagged = |t: i64, flags: u8| Detection {
            tag_flags: flags,
            ..det(7, t)
        };
        let first = apply(
            &mut tracker,
            1,
            &[flagged(1_000, tag_flags::PANIC | tag_flags::MOVING)],
        );
        let kinds: Vec<_> = first.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![AlertKind::Panic]);
        assert_eq!(first[0].id.0, "panic-7-1-3-1");
        // Still held in the same visit: nothing new; tamper appears: one more.
        assert!(apply(&mut tracker, 2, &[flagged(2_000, tag_flags::PANIC)]).is_empty());
        let second = apply(
            &mut tracker,
            3,
            &[flagged(3_000, tag_flags::PANIC | tag_flags::TAMPER)],
        );
        assert_eq!(
            second.iter().map(|a| a.kind).collect::<Vec<_>>(),
            vec![AlertKind::TagTamper]
        );
        // A new visit much later: the held button alerts again; low battery too.
        let later = apply(
            &mut tracker,
            4,
            &[flagged(900_000, tag_flags::PANIC | tag_flags::LOW_BATTERY)],
        );
        let kinds: Vec<_> = later.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![AlertKind::Panic, AlertKind::LowBattery]);
        assert!(apply(&mut tracker, 5, &[flagged(901_000, tag_flags::MOVING)]).is_empty());
    }

    #[test]
    fn a_restored_alert_keeps_its_visit_from_alerting_again() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station());
        tracker.report_stolen(TagId(7), CaseId(5));
        let raised = apply(&mut tracker, 1, &[det(7, 1_000)]);
        let visit = tracker.take_changes().upserts[0];

        // A restarted tracker: the visit and the alert come back from the store.
        let mut restarted = Tracker::new(TrackerConfig::default(), 100, 2);
        restarted.set_station(&station());
        restarted.report_stolen(TagId(7), CaseId(5));
        restarted.restore_visit(visit);
        restarted.restore_alert(&raised[0]);
        assert!(apply(&mut restarted, 2, &[det(7, 2_000)]).is_empty());
        // Without the alert restored, the same visit would alert a second time.
        let mut forgetful = Tracker::new(TrackerConfig::default(), 100, 2);
        forgetful.set_station(&station());
        forgetful.report_stolen(TagId(7), CaseId(5));
        forgetful.restore_visit(visit);
        assert_eq!(apply(&mut forgetful, 2, &[det(7, 2_000)]).len(), 1);
    }

    #[test]
    fn last_seen_keeps_the_latest_detection_even_when_frames_arrive_late() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station());
        apply(&mut tracker, 2, &[det(7, 5_000)]);
        apply(&mut tracker, 1, &[det(7, 4_000)]);
        assert_eq!(
            tracker.last_seen(TagId(7)).map(|l| l.seen_at_ms),
            Some(5_000)
        );
        assert_eq!(tracker.last_seen(TagId(8)), None);
    }

    #[test]
    fn an_armed_vehicle_heard_away_from_its_place_alerts_once_per_visit() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        let home = GeoPoint {
            lat: 23.0,
            lon: 116.0,
        };
        let neighbour = GeoPoint {
            lat: 23.002,
            lon: 116.0,
        }; // 223 m
        let away = GeoPoint {
            lat: 23.01,
            lon: 116.0,
        }; // 1.1 km
        tracker.arm(TagId(7), home);
        let heard_at = |tracker: &mut Tracker, place: GeoPoint, t: i64| {
            let obs = Observation {
                frame: frame(u32::try_from(t / 1000).unwrap_or(0)),
                reader_position: Some(place),
                detections: &[det(7, t)],
            };
            tracker.apply(obs, 0)
        };
        assert!(heard_at(&mut tracker, home, 1_000).is_empty());
        assert!(
            heard_at(&mut tracker, neighbour, 2_000).is_empty(),
            "the overlap is home"
        );
        let moved = heard_at(&mut tracker, away, 200_000);
        assert_eq!(
            moved.iter().map(|a| a.kind).collect::<Vec<_>>(),
            vec![AlertKind::ArmedMoved]
        );
        assert!(
            heard_at(&mut tracker, away, 201_000).is_empty(),
            "same visit"
        );
        tracker.command(Command::Disarmed { tag: TagId(7) });
        assert!(heard_at(&mut tracker, away, 900_000).is_empty(), "disarmed");
    }

    #[test]
    fn impossible_travel_suggests_a_cloned_tag_and_normal_driving_does_not() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station_at(1, 23.0));
        tracker.set_station(&station_at(2, 23.002)); // 223 m: a neighbour
        tracker.set_station(&station_at(3, 23.05)); // 5.6 km away
                                                    // One frame from `station` with one detection of tag 7 at `t`.
        fn heard(tracker: &mut Tracker, station: u32, t: i64) -> Vec<Alert> {
            let detection = Detection {
                station: StationId(station),
                ..det(7, t)
            };
            let frame = FrameKey {
                station: StationId(station),
                session: SessionId(3),
                seq: u32::try_from(t / 1000).unwrap_or(0),
            };
            let obs = Observation {
                frame,
                reader_position: None,
                detections: &[detection],
            };
            tracker.apply(obs, 0)
        }
        // Neighbours hear it within a second: not a clone. 5.6 km in 5 minutes (67 km/h): fine.
        assert!(heard(&mut tracker, 1, 0).is_empty());
        assert!(heard(&mut tracker, 2, 500).is_empty());
        assert!(heard(&mut tracker, 3, 300_000).is_empty());
        // Back at station 1 ten seconds later: 5.6 km in 10 s is impossible.
        let alerts = heard(&mut tracker, 1, 310_000);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::CloneSuspected);
        assert_eq!(alerts[0].station, StationId(1));
        assert_eq!(alerts[0].id.0, "clone_suspected-7-1-3-310");
        // The clone keeps being heard at 1 and 3 alternately: one alert per visit, not per frame.
        assert_eq!(heard(&mut tracker, 3, 311_000).len(), 1, "at 3 again");
        assert!(
            heard(&mut tracker, 3, 312_000).is_empty(),
            "same visit, same place"
        );
    }

    #[test]
    fn tags_near_a_point_are_found_through_their_stations() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station_at(1, 23.0));
        tracker.set_station(&station_at(2, 23.002)); // ~223 m north
        tracker.set_station(&station_at(3, 23.02)); // ~2.2 km north
        let at = |tag: u32, station: u32, t: i64| Detection {
            station: StationId(station),
            ..det(tag, t)
        };
        fn obs(detections: &[Detection]) -> Observation<'_> {
            Observation {
                frame: frame(1),
                reader_position: None,
                detections,
            }
        }
        tracker.apply(
            obs(&[at(10, 1, 1_000), at(11, 2, 1_000), at(12, 3, 1_000)]),
            0,
        );
        tracker.apply(obs(&[at(13, 2, 100)]), 0); // heard long ago
        tracker.apply(obs(&[at(10, 2, 2_000)]), 0); // tag 10 moved to station 2
        let center = GeoPoint {
            lat: 23.0,
            lon: 116.0,
        };
        let near = tracker.tags_near(center, 500.0, 500, 100);
        let tags: Vec<_> = near.iter().map(|(t, l, _)| (t.0, l.station.0)).collect();
        assert_eq!(
            tags,
            vec![(10, 2), (11, 2)],
            "newest first at the nearest station"
        );
        assert!((near[0].2 - 222.6).abs() < 1.0, "{near:?}");
        assert_eq!(
            tracker.tags_near(center, 500.0, 0, 100).len(),
            3,
            "tag 13 too"
        );
        assert_eq!(
            tracker.tags_near(center, 100.0, 0, 100).len(),
            0,
            "none left at 1"
        );
        assert_eq!(tracker.tags_near(center, 5_000.0, 0, 2).len(), 2, "limit");
    }

    #[test]
    fn a_mobile_reader_places_the_alert_at_its_own_position() {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.report_stolen(TagId(7), CaseId(1));
        let here = GeoPoint { lat: 1.0, lon: 2.0 };
        let obs = Observation {
            frame: frame(1),
            reader_position: Some(here),
            detections: &[det(7, 1)],
        };
        let alerts = tracker.apply(obs, 0);
        assert_eq!(alerts[0].position, here);
    }
}
