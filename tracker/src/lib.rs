//! # TagWatch tracker
//!
//! The second stage of the pipeline: verified frames in; visits, placements, trajectories and
//! alerts out. Pure state with no I/O, owned by exactly one task (the ingest loop), which feeds it
//! frames and flushes its changes to the store; the API asks it questions through that task.
//!
//! ## Layout
//! - [`visits`]: detections → visits (per tag and station), robust to gaps, reordering, late data.
//! - [`placement`]: where each tag is now, one station at a time, without ping-pong.
//! - [`spatial`]: stations in a 2-D R-tree, and the tags placed at each.
//! - [`readers`]: where each mobile reader was over time, which places its reads.
//! - [`trajectory`]: closed visits and the moves between them in 3-D (x, y, t) R-trees, one per
//!   ten minutes.
//! - [`transitions`]: moves between stations learned online, to predict where a tag goes next.
//! - [`rules`]: the watch rules that raise alerts, one module per family, each with its own
//!   state (hotlist, armed vehicles, flags, clones, geofences with [`fences`], companions, and
//!   stations with [`station_watch`]); the tracker applies a frame and then asks them.
//! - `movement`: where a stolen vehicle is heading, for its alert.
//! - `ahead`: stolen, armed, panic and tamper alerts raised as a frame arrives, before it is
//!   applied.
//! - [`queries`]: what investigators ask (track, area, near, convoy, fencing dens).
//!
//! Why this file is long (about 850 lines): it is the facade every frame goes through, the
//! applying loop and the upkeep that must see all of the state at once; each part it asks
//! (visits, placement, trajectories, rules) lives in its own module.

mod ahead;
pub mod calendar;
pub mod fences;
mod movement;
pub mod placement;
pub mod queries;
pub mod questions;
pub mod readers;
pub mod rules;
pub mod spatial;
pub mod station_watch;
pub mod trajectory;
pub mod transitions;
pub mod visits;

use placement::Step;
pub use placement::TagPlace;
// FxHash: keys are small integers that come only from authenticated stations,
// and the maps are hit several times per detection; SipHash's DoS resistance buys nothing here.
pub use queries::{
    companions_of, dens_of, Area, Companion, Den, Location, Passage, Stop, TrackPoint,
};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// A map with an entry per tag (or per tag and station): millions at city scale. An ordinary
/// hash map doubles all at once when full, and at 3.7 M entries that one insert took 220 ms: the
/// ingest, and every alert behind it, waited. This one moves a few old entries on each insert
/// after it grows, so no insert waits for the whole table.
pub(crate) type FleetMap<K, V> = griddle::HashMap<K, V, rustc_hash::FxBuildHasher>;
use rules::{raise, Draft, Sighting};
use tagwatch_model::{
    tag_flags, Alert, AlertKind, CaseId, Detection, FrameKey, GeoPoint, Geofence, ReaderFix,
    Station, StationId, TagId, VisitId,
};
pub use visits::{VisitBook, VisitChanges};

pub use rules::armed::ARMED_RADIUS_M;
pub use rules::clone::{CLONE_MAX_SPEED_MPS, CLONE_MIN_DISTANCE_M};
pub use rules::companion::COMPANION_RADIUS_M;

/// How late (in detection time) a closed visit may move into the trajectory index: the index
/// seals a bucket only this long after the visit gap.
const CLOSE_STEP_MS: i64 = 10_000;
/// Open visits looked at for closing, and (tag, station) pairs or tags for what to forget, per
/// [`Tracker::upkeep_step`] (every slice of frames and every flush). Every open visit comes due
/// about once per visit gap (a parked tag's is queued again). Looked at all at once every 10 s,
/// they were a million lookups at 3 M tags and the ingest stopped for most of a second; 20,000
/// per flush still held it 20-57 ms of CPU at 4.8 M tags (2-4 times that in wall time on a
/// saturated machine), and a stolen vehicle's alert raised ahead waited behind that turn. A
/// thousand take a millisecond or two, like a slice of frames, and at hundreds of slices a
/// second they keep up with hundreds of thousands of visits coming due per second.
const UPKEEP_SLICE: usize = 1_000;

/// How often the trajectory index seals and drops buckets.
const MAINTAIN_STEP_MS: i64 = 60_000;

/// Tuning of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackerConfig {
    /// Detections of a tag at one station closer than this belong to one visit.
    pub visit_gap_ms: i64,
    /// How long visits stay in memory after their last detection (for late data to merge into).
    pub hot_window_ms: i64,
    /// How far back the trajectory index reaches; older questions go to the store.
    pub index_window_ms: i64,
    /// Time span of one R-tree of the trajectory index.
    pub bucket_ms: i64,
    /// A station with no frame for this long raises `station_silent`.
    pub station_silent_ms: i64,
    /// A frame whose clock differs from the server's by more than this raises
    /// `station_clock_skew`.
    pub clock_skew_limit_ms: i64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            visit_gap_ms: 30_000,
            hot_window_ms: 3_600_000,
            index_window_ms: 86_400_000,
            bucket_ms: 600_000,
            station_silent_ms: 90_000,
            clock_skew_limit_ms: 120_000,
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
    /// A theft was reported: the tag joins the hotlist. With `since_ms` (when the owner last saw
    /// it), its latest sighting since then is alerted at once: from memory, or `stored` (the
    /// latest one in the store) when memory does not reach back that far.
    Stolen {
        tag: TagId,
        case: CaseId,
        since_ms: Option<i64>,
        stored: Option<LastSeen>,
    },
    /// The vehicle was recovered: the tag leaves the hotlist at once.
    Recovered {
        tag: TagId,
    },
    /// Its owner armed it, parked at `position` (where it was last heard).
    Armed {
        tag: TagId,
        position: GeoPoint,
    },
    /// Its owner disarmed it.
    Disarmed {
        tag: TagId,
    },
    /// A geofence was created or changed.
    Geofence(Geofence),
    RemoveGeofence {
        id: i64,
    },
    /// `tag` must be heard with `companion` (a person and a carer's card, a vehicle and its
    /// owner's key).
    Pair {
        tag: TagId,
        companion: TagId,
    },
    Unpair {
        tag: TagId,
    },
}

/// See [`Tracker::rule_state`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RuleState {
    pub placements: Vec<(TagId, TagPlace)>,
    #[serde(default)]
    pub companion_checks: Vec<rules::companion::CompanionCheck>,
}

/// Where a tag was last placed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LastSeen {
    pub station: StationId,
    pub position: GeoPoint,
    pub seen_at_ms: i64,
}

/// One frame's worth of detections, with where they were heard.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub frame: FrameKey,
    /// The frame's own time by the station's clock.
    pub sent_at_ms: i64,
    /// The reader's own position (mobile readers); fixed stations use their surveyed one.
    pub reader_position: Option<GeoPoint>,
    pub detections: &'a [Detection],
}

/// The live state of the whole city.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    /// Every station's surveyed place.
    stations: HashMap<StationId, GeoPoint>,
    /// Fixed stations only: a mobile reader is wherever its last fix says.
    spatial: spatial::Spatial,
    readers: readers::Readers,
    visits: VisitBook,
    places: FleetMap<TagId, TagPlace>,
    /// Open visits at each station: they join the trajectory index when they close.
    open: HashMap<StationId, HashSet<(TagId, VisitId)>>,
    /// The same open visits by tag, for a tag's track.
    open_of_tag: FleetMap<TagId, Vec<(StationId, VisitId)>>,
    /// The same open visits by the second they may close (their last detection when queued,
    /// which only grows): a calendar queue, so closing looks at those due, not at every open
    /// visit, and queueing is an append.
    closing: calendar::Calendar<(TagId, StationId, VisitId)>,
    trajectories: trajectory::Trajectories,
    transitions: transitions::Transitions,
    /// The watch rules, each with its own state (see [`rules`]).
    hotlist: rules::stolen::Hotlist,
    guards: rules::armed::Guards,
    flags: rules::flags::FlagWatch,
    clones: rules::clone::CloneWatch,
    fences: fences::Fences,
    companions: rules::companion::Companions,
    station_watch: station_watch::StationWatch,
    /// Sightings alerted as their frame arrived, not applied yet (see `ahead`).
    ahead: ahead::Ledger,
    next_alert_seq: i64,
    /// The latest detection time seen: the tracker's notion of "now", in station time, so that
    /// replays and simulations at any speed age out the hot window consistently.
    high_water_ms: i64,
    /// The first detection time seen since start: the trajectory index is complete after it.
    started_ms: Option<i64>,
    maintained_up_to_ms: i64,
}

impl Tracker {
    /// `next_visit_id` and `next_alert_seq` continue the sequences already in the store.
    pub fn new(config: TrackerConfig, next_visit_id: i64, next_alert_seq: i64) -> Self {
        Self {
            config,
            stations: HashMap::default(),
            spatial: spatial::Spatial::default(),
            readers: readers::Readers::default(),
            visits: VisitBook::new(config.visit_gap_ms, next_visit_id),
            places: FleetMap::default(),
            open: HashMap::default(),
            open_of_tag: FleetMap::default(),
            closing: calendar::Calendar::new(1_000),
            trajectories: trajectory::Trajectories::new(config.bucket_ms),
            transitions: transitions::Transitions::default(),
            hotlist: rules::stolen::Hotlist::default(),
            guards: rules::armed::Guards::default(),
            flags: rules::flags::FlagWatch::default(),
            clones: rules::clone::CloneWatch::default(),
            fences: fences::Fences::default(),
            companions: rules::companion::Companions::default(),
            station_watch: station_watch::StationWatch::new(
                config.station_silent_ms,
                config.clock_skew_limit_ms,
            ),
            ahead: ahead::Ledger::default(),
            next_alert_seq,
            high_water_ms: i64::MIN,
            started_ms: None,
            maintained_up_to_ms: i64::MIN,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Applies a change of reference data; returns the alerts it raises (a theft report's
    /// look-back).
    pub fn command(&mut self, command: Command, now_ms: i64) -> Vec<Alert> {
        match command {
            Command::Station(station) => self.set_station(&station),
            Command::Stolen {
                tag,
                case,
                since_ms,
                stored,
            } => {
                self.report_stolen(tag, case);
                if let Some(since) = since_ms {
                    return self
                        .look_back(tag, case, since, stored, now_ms)
                        .into_iter()
                        .collect();
                }
            }
            Command::Recovered { tag } => self.recovered(tag),
            Command::Armed { tag, position } => self.arm(tag, position),
            Command::Disarmed { tag } => self.guards.disarm(tag),
            Command::Geofence(fence) => self.fences.set(fence),
            Command::RemoveGeofence { id } => self.fences.remove(id),
            Command::Pair { tag, companion } => self.companions.pair(tag, companion),
            Command::Unpair { tag } => self.companions.unpair(tag),
        }
        Vec::new()
    }

    pub fn set_station(&mut self, station: &Station) {
        self.stations.insert(station.id, station.position);
        if !self.readers.is_mobile(station.id) {
            self.spatial.set_station(station.id, station.position);
        }
    }

    /// Where a read at `station` at `t` was made: a mobile reader's fix of the frame that reported it, else
    /// the station's surveyed place.
    pub fn read_position(&self, station: StationId, t: i64) -> Option<GeoPoint> {
        self.readers
            .at(station, t)
            .or_else(|| self.stations.get(&station).copied())
    }

    /// Puts back a mobile reader's fix loaded from the store after a restart.
    pub fn restore_reader_fix(&mut self, fix: ReaderFix) {
        if !self.readers.is_mobile(fix.station) {
            self.spatial.remove_station(fix.station);
        }
        self.readers.restore(fix);
    }

    /// Mobile readers' fixes recorded since the last call (each flush saves them).
    pub fn take_reader_fixes(&mut self) -> Vec<ReaderFix> {
        self.readers.take_unsaved()
    }

    /// Each mobile reader's latest fix (time and place) held in memory.
    pub fn reader_positions(&self) -> Vec<(StationId, i64, GeoPoint)> {
        self.readers.latest().collect()
    }

    /// The tag is now stolen: every sighting raises an alert until the case closes.
    pub fn report_stolen(&mut self, tag: TagId, case: CaseId) {
        self.hotlist.report(tag, case);
    }

    /// Guards the tag where it is parked.
    pub fn arm(&mut self, tag: TagId, position: GeoPoint) {
        self.guards.arm(tag, position);
    }

    pub fn recovered(&mut self, tag: TagId) {
        self.hotlist.recovered(tag);
    }

    pub fn is_stolen(&self, tag: TagId) -> bool {
        self.hotlist.is_stolen(tag)
    }

    /// Whether a sighting of `tag` may raise a stolen or armed alert somewhere.
    pub fn is_watched(&self, tag: TagId) -> bool {
        self.hotlist.is_stolen(tag) || self.guards.is_armed(tag)
    }

    /// The state of the rules that a restore from visits alone would not rebuild: where each
    /// tag a fence watches is placed (with its hysteresis), and the companion checks waiting a
    /// visit gap, so that a fence crossing or a missing companion right after a cluster's
    /// partition moves to another shard is the one an uninterrupted tracker raises.
    pub fn rule_state(&self) -> RuleState {
        let mut placements: Vec<(TagId, TagPlace)> = self
            .fences
            .watched()
            .filter_map(|tag| Some((tag, *self.places.get(&tag)?)))
            .collect();
        placements.sort_by_key(|(tag, _)| *tag);
        RuleState {
            placements,
            companion_checks: self.companions.waiting(),
        }
    }

    /// Puts back [`Tracker::rule_state`], after the open visits.
    pub fn restore_rule_state(&mut self, state: RuleState) {
        for check in state.companion_checks {
            self.companions.restore(check);
        }
        for (tag, mut place) in state.placements {
            if !self.stations.contains_key(&place.current.station) || self.places.contains_key(&tag)
            {
                continue;
            }
            place.slot = self
                .spatial
                .arrive(place.current.station, tag, place.current.seen_at_ms);
            self.places.insert(tag, place);
        }
    }

    /// Puts back an open visit loaded from the store after a restart.
    pub fn restore_visit(&mut self, visit: tagwatch_model::Visit) {
        self.high_water_ms = self.high_water_ms.max(visit.last_seen_ms);
        if self.stations.contains_key(&visit.station) {
            self.opened(visit.tag, visit.station, visit.id, visit.last_seen_ms);
        }
        self.visits.restore(visit);
    }

    /// The (tag, station, from, to) windows whose stored visits must be restored before these
    /// detections are applied: those behind the hot window (a station's late backlog) that memory
    /// may not hold completely (see [`VisitBook::history_window`]).
    pub fn history_needed(&self, detections: &[Detection]) -> Vec<(TagId, StationId, i64, i64)> {
        detections
            .iter()
            .filter_map(|d| {
                let (from, to) = self.visits.history_window(d.tag, d.station, d.seen_at_ms)?;
                Some((d.tag, d.station, from, to))
            })
            .collect()
    }

    /// After a restart: `alert` was raised before, so the visit it was raised in (if restored)
    /// must not raise another.
    pub fn restore_alert(&mut self, alert: &Alert) {
        let Some(tag) = alert.tag else {
            return;
        };
        let Some(visit) = self.visits.visit_at(tag, alert.station, alert.seen_at_ms) else {
            // Raised ahead of a frame not applied before the stop: when the station resends it,
            // its sighting must not alert again.
            if matches!(
                alert.kind,
                AlertKind::StolenSighting | AlertKind::ArmedMoved
            ) || ahead::urgent_flag(alert.kind) != 0
            {
                self.ahead.alerted(
                    tag,
                    alert.station,
                    alert.seen_at_ms,
                    alert.kind,
                    self.config.visit_gap_ms,
                );
            }
            return;
        };
        match alert.kind {
            AlertKind::StolenSighting => self.hotlist.alerted(tag, visit, alert.position),
            AlertKind::ArmedMoved => self.guards.alerted(tag, visit),
            kind => self.flags.alerted(tag, visit, kind),
        }
    }

    /// Applies one frame's detections; returns the alerts they raise, in order.
    pub fn apply(&mut self, obs: Observation<'_>, now_ms: i64) -> Vec<Alert> {
        self.visits.set_clock(now_ms);
        let mut alerts = Vec::new();
        self.heard_from(obs.frame, obs.sent_at_ms, now_ms, false, &mut alerts);
        // A station whose clock is off by more than the limit: its detections are applied at the
        // times the server can trust, and its alerts say by how much they were moved.
        let shift_ms = self
            .station_watch
            .correction(obs.frame.station, obs.sent_at_ms, now_ms);
        let corrected: Vec<Detection>;
        let detections = if shift_ms == 0 {
            obs.detections
        } else {
            corrected = obs
                .detections
                .iter()
                .map(|d| Detection {
                    seen_at_ms: d.seen_at_ms.saturating_sub(shift_ms),
                    ..*d
                })
                .collect();
            &corrected
        };
        let Some(position) = obs
            .reader_position
            .or_else(|| self.stations.get(&obs.frame.station).copied())
        else {
            // A station with a key always has a position; without one we still keep the visits.
            for d in detections {
                self.visits.add(d);
            }
            return alerts;
        };
        let xy = self.spatial.project(position);
        if let Some(at) = obs.reader_position {
            let sent_ms = obs.sent_at_ms.saturating_sub(shift_ms);
            if self.readers.record(obs.frame.station, sent_ms, at) {
                // A mobile reader is not at its surveyed place: the fixed-station index (area
                // and radius questions) must not find its reads there.
                self.spatial.remove_station(obs.frame.station);
            }
        }
        self.warm(detections);
        let first_sighting_alert = alerts.len();
        for d in detections {
            self.high_water_ms = self.high_water_ms.max(d.seen_at_ms);
            self.started_ms.get_or_insert(d.seen_at_ms);
            let (visit, new) = self.visits.add(d);
            if obs.reader_position.is_some() {
                self.trajectories.fix(d.tag, xy, d.seen_at_ms);
            }
            if new {
                self.opened(d.tag, d.station, visit.id, visit.last_seen_ms);
                self.companions
                    .opened(d, obs.frame, self.config.visit_gap_ms);
            }
            let sighting = Sighting {
                frame: obs.frame,
                d,
                visit: visit.id,
                position,
            };
            // Alerts raised as the frame arrived are not raised again; their visit counts as
            // alerted all the same.
            let ahead = if self.ahead.is_empty() {
                ahead::Covered::default()
            } else {
                self.ahead.settle(obs.frame, d, self.config.visit_gap_ms)
            };
            let mut drafts = Vec::new();
            self.place(sighting, &mut drafts);
            self.flags.check(sighting, &mut drafts);
            // A flag alerted ahead is not raised again (`check` has counted it for the visit).
            drafts.retain(|draft| ahead::urgent_flag(draft.kind) & ahead.flags == 0);
            drafts.extend(self.guards.check(sighting).filter(|_| !ahead.armed));
            if let Some((case, mut draft)) = self.hotlist.check(sighting) {
                if !ahead.stolen {
                    draft.detail =
                        self.movement_detail(d.tag, d.station, case, d.seen_at_ms, now_ms);
                    drafts.push(draft);
                }
            }
            for draft in drafts {
                alerts.push(self.issue(draft, now_ms));
            }
        }
        if shift_ms != 0 {
            for alert in &mut alerts[first_sighting_alert..] {
                alert.detail.clock_corrected_s = Some(shift_ms as f64 / 1000.0);
            }
        }
        self.companion_rule(now_ms, &mut alerts);
        alerts
    }

    /// Gives a draft its place in the alert stream.
    fn issue(&mut self, draft: Draft, now_ms: i64) -> Alert {
        raise(&mut self.next_alert_seq, draft, now_ms)
    }

    /// `companion_missing` for the checks now due: was the companion heard at the tag's station
    /// or one within [`COMPANION_RADIUS_M`] of where the tag was read?
    fn companion_rule(&mut self, now_ms: i64, alerts: &mut Vec<Alert>) {
        let mut drafts = Vec::new();
        let (spatial, visits, readers, stations) =
            (&self.spatial, &self.visits, &self.readers, &self.stations);
        self.companions.due(
            self.high_water_ms,
            |check| {
                let position = readers
                    .at(check.station, check.seen_at_ms)
                    .or_else(|| stations.get(&check.station).copied())?;
                let mut nearby: Vec<StationId> = spatial
                    .stations_within(position, COMPANION_RADIUS_M)
                    .into_iter()
                    .map(|(s, _)| s)
                    .collect();
                nearby.push(check.station);
                let with_it = nearby.iter().any(|&s| {
                    visits
                        .visit_at(check.companion, s, check.seen_at_ms)
                        .is_some()
                });
                Some((position, with_it))
            },
            &mut drafts,
        );
        for draft in drafts {
            alerts.push(self.issue(draft, now_ms));
        }
    }

    /// Looks up each detection's place and visits before any is applied. With millions of tags
    /// their entries are spread over gigabytes and almost every lookup misses the cache; these
    /// lookups do not depend on one another, so the CPU overlaps their misses, and the applying
    /// loop then finds a frame's entries (a few hundred KB) in cache. Applying one by one, each
    /// miss waited for the one before: two thirds of the tracker's time at 3 M tags.
    fn warm(&self, detections: &[Detection]) {
        for d in detections {
            if let Some(place) = self.places.get(&d.tag) {
                std::hint::black_box(place.latest.at_ms);
            }
            self.visits.warm(d.tag, d.station);
        }
    }

    /// Moves the tag's placement with this detection, and runs the rules that watch moves.
    fn place(&mut self, s: Sighting<'_>, drafts: &mut Vec<Draft>) {
        let (d, position) = (s.d, s.position);
        let Some(place) = self.places.get_mut(&d.tag) else {
            let mut place = TagPlace::new(d.station, position, d.seen_at_ms, d.rssi);
            place.slot = self.spatial.arrive(d.station, d.tag, d.seen_at_ms);
            self.places.insert(d.tag, place);
            return;
        };
        let latest = place.latest;
        let moving = d.tag_flags & tag_flags::MOVING != 0;
        let step = place.observe(d.station, position, d.seen_at_ms, d.rssi, moving);
        let (current, before, slot) = (place.current, place.before, place.slot);
        match step {
            Step::Stayed => {
                self.spatial
                    .touch(current.station, slot, d.tag, current.seen_at_ms);
            }
            Step::Moved(from) => {
                place.slot = self
                    .spatial
                    .arrive(current.station, d.tag, current.seen_at_ms);
                if let Some(swapped) = self.spatial.leave(from.station, slot) {
                    if let Some(other) = self.places.get_mut(&swapped) {
                        other.slot = slot;
                    }
                }
            }
            Step::First | Step::Challenged | Step::Late => {}
        }
        drafts.extend(self.clones.check(s, latest));
        match step {
            Step::Moved(from) => {
                // Moves between roadside stations only: a patrol car's reader is somewhere
                // else every time, and no vehicle goes "next" to it.
                let mobile =
                    |id: Option<StationId>| id.is_some_and(|id| self.readers.is_mobile(id));
                if !mobile(before) && !mobile(Some(from.station)) && !mobile(Some(current.station))
                {
                    self.transitions.learn(
                        before,
                        from.station,
                        current.station,
                        current.since_ms - from.since_ms,
                    );
                }
                rules::fence::check(&self.fences, s, from.position, current.position, drafts);
            }
            // A mobile reader carried the tag along: fences watch its position too.
            Step::Stayed if latest.position != position && latest.station == d.station => {
                rules::fence::check(&self.fences, s, latest.position, position, drafts);
            }
            Step::First | Step::Stayed | Step::Challenged | Step::Late => {}
        }
    }

    /// A frame from `frame.station` sent at `sent_at_ms` (its clock) reached the server at
    /// `now_ms`: the station is alive; a clock off by more than the limit raises an alert.
    /// `fresh`: the frame was built just before it was sent (a STATUS with an empty backlog).
    pub fn heard_from(
        &mut self,
        frame: FrameKey,
        sent_at_ms: i64,
        now_ms: i64,
        fresh: bool,
        alerts: &mut Vec<Alert>,
    ) {
        // A GPS tracker's frames carry its fixes' times, which may be old (it stores fixes while
        // out of coverage) and it sleeps while parked: neither its silence nor its clock says
        // anything about a station.
        if frame.station.is_device() {
            return;
        }
        let mut found = Vec::new();
        self.station_watch
            .heard(frame.station, sent_at_ms, now_ms, fresh, &mut found);
        self.station_alerts(found, frame, now_ms, alerts);
    }

    /// A STATUS heartbeat from `frame.station`: as [`Tracker::heard_from`] (fresh when nothing
    /// is queued), and the trouble it reports (power fault, overheating, a growing backlog)
    /// raises an alert once per episode.
    pub fn heard_status(
        &mut self,
        frame: FrameKey,
        sent_at_ms: i64,
        now_ms: i64,
        beat: station_watch::Heartbeat,
        alerts: &mut Vec<Alert>,
    ) {
        self.heard_from(frame, sent_at_ms, now_ms, beat.backlog == 0, alerts);
        let mut found = Vec::new();
        self.station_watch
            .heartbeat(frame.station, beat, &mut found);
        self.station_alerts(found, frame, now_ms, alerts);
    }

    /// Raises what the station watch found, shown by `frame`.
    fn station_alerts(
        &mut self,
        found: Vec<station_watch::Finding>,
        frame: FrameKey,
        now_ms: i64,
        alerts: &mut Vec<Alert>,
    ) {
        for finding in found {
            let alert = self.station_alert(finding, Some(frame), now_ms);
            alerts.push(alert);
        }
    }

    /// An alert about a station from what the station watch found.
    fn station_alert(
        &mut self,
        finding: station_watch::Finding,
        frame: Option<FrameKey>,
        now_ms: i64,
    ) -> Alert {
        let position = self
            .stations
            .get(&finding.station())
            .copied()
            .unwrap_or(GeoPoint { lat: 0.0, lon: 0.0 });
        let draft = rules::station::draft(finding, frame, position, now_ms);
        self.issue(draft, now_ms)
    }

    /// Runs the time-driven rules (stations gone silent) at server time `now_ms`; called about
    /// once a second by the owning task.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Alert> {
        for &station in self.stations.keys() {
            self.station_watch.watch(station, now_ms);
        }
        self.station_watch
            .tick(now_ms)
            .into_iter()
            .map(|finding| self.station_alert(finding, None, now_ms))
            .collect()
    }

    /// New visits get ids in `lane` modulo `lanes`: a cluster's shards give each partition its
    /// own lane, so visits of different partitions never share an id.
    pub fn set_visit_lane(&mut self, lane: u16, lanes: u16) {
        self.visits.set_lane(lane, lanes);
    }

    /// The id the next new visit gets: journaled with each frame, see [`Tracker::resume_visit_ids`].
    pub fn next_visit_id(&self) -> i64 {
        self.visits.next_id()
    }

    /// Continues visit ids from `next`. A journaled frame applied again after a restart, from the
    /// id it was first applied with, gives its visits their first ids, which its stored alerts name.
    pub fn resume_visit_ids(&mut self, next: i64) {
        self.visits.resume_ids(next);
    }

    /// Continues alert seqs from `next` (the store's, once the journal has been applied again:
    /// its alerts are stored already and are not raised twice).
    pub fn resume_alert_seq(&mut self, next: i64) {
        self.next_alert_seq = next;
    }

    /// The visit rows to write in the next checkpoint, with [`Tracker::maintain`] first; visits
    /// past the hot window leave memory (everything taken before counts as stored).
    pub fn take_changes(&mut self) -> VisitChanges {
        self.checkpoint(true)
    }

    /// [`Tracker::take_changes`] for a store that commits behind: `earlier_committed` says
    /// whether every earlier checkpoint is committed. Only then may visits leave memory (a late
    /// frame restores them from the store); if not, they stay until a later checkpoint.
    pub fn checkpoint(&mut self, earlier_committed: bool) -> VisitChanges {
        self.maintain();
        self.visits
            .take_changes(self.hot_window_cut(), earlier_committed)
    }

    /// [`Tracker::checkpoint`] taken in slices (call [`Tracker::maintain`] first): begins it as
    /// the visits are now, and [`Tracker::continue_checkpoint`] takes them while frames go on
    /// being applied.
    pub fn begin_checkpoint(&mut self, earlier_committed: bool) {
        if earlier_committed {
            self.visits.mark_committed();
        }
        self.visits.begin_take();
    }

    /// Takes up to `budget` more (tag, station) pairs of the checkpoint under way; its visit rows
    /// once it is finished.
    pub fn continue_checkpoint(&mut self, budget: usize) -> Option<VisitChanges> {
        self.visits.continue_take(budget)
    }

    /// Visits last heard before this leave memory once stored.
    fn hot_window_cut(&self) -> i64 {
        self.high_water_ms.saturating_sub(self.config.hot_window_ms)
    }

    /// Moves closed visits into the trajectory index and ages the index (every flush; cheap
    /// when there is nothing to do).
    pub fn maintain(&mut self) {
        self.upkeep_step();
        let index_cut = self
            .high_water_ms
            .saturating_sub(self.config.index_window_ms);
        self.readers.prune(index_cut);
        if self.high_water_ms.saturating_sub(self.maintained_up_to_ms) >= MAINTAIN_STEP_MS {
            self.maintained_up_to_ms = self.high_water_ms;
            // A frame alerted ahead and never applied (its station gave up on it).
            self.ahead.forget_before(
                self.high_water_ms
                    .saturating_sub(2 * self.config.hot_window_ms),
            );
            let closed_before = self
                .high_water_ms
                .saturating_sub(self.config.visit_gap_ms + 2 * CLOSE_STEP_MS);
            let keep_after = self
                .high_water_ms
                .saturating_sub(self.config.index_window_ms);
            self.trajectories.maintain(closed_before, keep_after);
        } else {
            self.trajectories.take_merged();
        }
    }

    /// A slice of the upkeep that grows with the tags: closes visits not heard for a gap (they
    /// move into the trajectory index) and forgets what left the hot and index windows, a
    /// bounded number of each, so the ingest can run it between slices of frames.
    pub fn upkeep_step(&mut self) {
        self.close_visits(UPKEEP_SLICE);
        self.visits.prune(self.hot_window_cut(), UPKEEP_SLICE);
        let index_cut = self
            .high_water_ms
            .saturating_sub(self.config.index_window_ms);
        self.trajectories.forget_before(index_cut, UPKEEP_SLICE);
    }

    /// A visit opened.
    fn opened(&mut self, tag: TagId, station: StationId, id: VisitId, last_seen_ms: i64) {
        if self.open.entry(station).or_default().insert((tag, id)) {
            self.open_of_tag.entry(tag).or_default().push((station, id));
            self.queue_closing(last_seen_ms, (tag, station, id));
        }
    }

    /// Visits not heard for a gap are closed: they leave the open lists for the index.
    fn queue_closing(&mut self, last_seen_ms: i64, visit: (TagId, StationId, VisitId)) {
        self.closing.file(last_seen_ms, visit);
    }

    fn close_visits(&mut self, budget: usize) {
        let cut = self.high_water_ms.saturating_sub(self.config.visit_gap_ms);
        // Whole seconds before the cut-off's second: every visit in them was last heard before it.
        // A visit heard since is queued again at its last detection, at or after the cut-off.
        for (tag, station, id) in self.closing.take_due(cut, budget) {
            self.close_visit(tag, station, id, cut);
        }
    }

    /// Closes the open visit if it was last heard before `cut`; queues it again if not.
    fn close_visit(&mut self, tag: TagId, station: StationId, id: VisitId, cut: i64) {
        let visit = self.visits.get(tag, station, id);
        if let Some(v) = visit.filter(|v| v.last_seen_ms >= cut) {
            // Heard since it was queued: it closes a gap after its latest detection.
            self.queue_closing(v.last_seen_ms, (tag, station, id));
            return;
        }
        if let Some(set) = self.open.get_mut(&station) {
            set.remove(&(tag, id));
        }
        if let Some(list) = self.open_of_tag.get_mut(&tag) {
            list.retain(|&entry| entry != (station, id));
            if list.is_empty() {
                self.open_of_tag.remove(&tag);
            }
        }
        // Gone from memory: merged into another visit, or aged out.
        let Some(v) = visit else {
            return;
        };
        let Some(xy) = self
            .read_position(station, v.first_seen_ms)
            .and_then(|p| self.spatial.projected(p))
        else {
            return;
        };
        self.trajectories.close(
            tag,
            trajectory::Stay {
                visit: v.id,
                station: v.station,
                xy,
                first_ms: v.first_seen_ms,
                last_ms: v.last_seen_ms,
                best_rssi: v.best_rssi,
                reads: v.reads,
            },
        );
    }

    /// Server time of the latest frame from `station` since the server started, if any.
    pub fn station_last_frame(&self, station: StationId) -> Option<i64> {
        self.station_watch.last_frame(station)
    }

    /// Tags with a known place.
    pub fn tags_tracked(&self) -> usize {
        self.places.len()
    }

    /// Visits held in memory (the hot window).
    pub fn visits_in_memory(&self) -> usize {
        self.visits.len()
    }

    /// Entries in the trajectory index.
    pub fn index_entries(&self) -> usize {
        self.trajectories.len()
    }

    /// Waits for the trajectory index's background merges to land (benchmarks and tests that
    /// want its settled shape; the server never waits).
    pub fn settle_index(&mut self) {
        self.trajectories.settle();
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gps;
