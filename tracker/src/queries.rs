//! # Queries: what investigators ask the tracker, answered from memory.
//!
//! Each answers for the time the tracker's index covers ([`Tracker::covers`]); the API sends
//! older questions to the store. All distances are metres, all times milliseconds.

use crate::trajectory::PieceKind;
use crate::{spatial, LastSeen, Tracker};
use geo::{Coord, Dbscan, Intersects, Line, LineString, Point, Polygon};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use tagwatch_model::{GeoBox, GeoPoint, StationId, TagId, VisitId};

/// Entries up to this far apart in time count as "together" in a convoy by default.
pub const CONVOY_WITHIN_MS: i64 = 60_000;

/// An area on the map.
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    Box(GeoBox),
    /// An outline in order, closed implicitly.
    Polygon(Vec<GeoPoint>),
}

impl Area {
    fn outline(&self) -> Vec<GeoPoint> {
        match self {
            Area::Box(b) => vec![
                GeoPoint {
                    lat: b.south,
                    lon: b.west,
                },
                GeoPoint {
                    lat: b.south,
                    lon: b.east,
                },
                GeoPoint {
                    lat: b.north,
                    lon: b.east,
                },
                GeoPoint {
                    lat: b.north,
                    lon: b.west,
                },
            ],
            Area::Polygon(points) => points.clone(),
        }
    }
}

/// A tag's last place, with its movement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub station: StationId,
    pub position: GeoPoint,
    pub seen_at_ms: i64,
    /// Placed at this station since.
    pub since_ms: i64,
    /// Degrees clockwise from north, from the previous station to this one.
    pub heading_deg: Option<f64>,
    pub speed_mps: Option<f64>,
}

/// One stay of a cleaned track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    pub visit: VisitId,
    pub station: StationId,
    pub position: GeoPoint,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Strongest signal of the visit, dBm.
    pub best_rssi: i8,
    /// Raw reads merged into the visit.
    pub reads: u32,
}

/// A tag that passed through an area: when it was first and last there within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    pub tag: TagId,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A tag seen travelling with another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companion {
    pub tag: TagId,
    /// The stations where both were seen together, in the order the watched tag passed them.
    pub stations: Vec<StationId>,
}

/// Where and when a watched vehicle arrived at a station: what others are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    pub station: StationId,
    pub position: GeoPoint,
    pub first_ms: i64,
}

impl Stop {
    pub fn of(point: &TrackPoint) -> Self {
        Self {
            station: point.station,
            position: point.position,
            first_ms: point.first_ms,
        }
    }
}

/// A cluster of places where stolen tags went dark.
#[derive(Debug, Clone, PartialEq)]
pub struct Den {
    pub center: GeoPoint,
    pub tags: Vec<(TagId, LastSeen)>,
}

/// Speeds above this from two stations' entry times are noise (overlapping stations).
const MAX_PLAUSIBLE_SPEED_MPS: f64 = 90.0;

/// Speed (m/s) and heading (degrees from north) of a move from one place, arrived at at one time,
/// to another: none when the move is too slow to be one (longer than a transit) or faster than
/// any vehicle (two stations' clocks, or a clone).
pub(crate) fn motion(from: (GeoPoint, i64), to: (GeoPoint, i64)) -> Option<(f64, f64)> {
    let seconds = (to.1 - from.1) as f64 / 1000.0;
    let speed = spatial::distance_m(from.0, to.0) / seconds;
    (seconds > 0.0
        && seconds <= crate::trajectory::MAX_TRANSIT_MS as f64 / 1000.0
        && speed <= MAX_PLAUSIBLE_SPEED_MPS)
        .then(|| (speed, bearing(from.0, to.0)))
}

impl Tracker {
    /// The earliest time memory answers questions from: the later of the tracker's first
    /// detection and the start of the index window. None before the first detection.
    pub fn covered_from(&self) -> Option<i64> {
        let window = self
            .high_water_ms
            .saturating_sub(self.config.index_window_ms);
        self.started_ms.map(|started| started.max(window))
    }

    /// Whether questions about times from `from_ms` on can be answered from memory.
    pub fn covers(&self, from_ms: i64) -> bool {
        self.covered_from().is_some_and(|c| from_ms >= c)
    }

    pub fn last_seen(&self, tag: TagId) -> Option<LastSeen> {
        self.places.get(&tag).map(|p| LastSeen {
            station: p.current.station,
            position: p.current.position,
            seen_at_ms: p.current.seen_at_ms,
        })
    }

    /// Where the tag is, and its heading and speed from the station it came from (entry to
    /// entry, so both are measured the same way).
    pub fn location(&self, tag: TagId) -> Option<Location> {
        let place = self.places.get(&tag)?;
        let current = place.current;
        let mut location = Location {
            station: current.station,
            position: current.position,
            seen_at_ms: current.seen_at_ms,
            since_ms: current.since_ms,
            heading_deg: None,
            speed_mps: None,
        };
        if let Some(previous) = place.previous {
            if let Some((speed, heading)) = motion(
                (previous.position, previous.since_ms),
                (current.position, current.since_ms),
            ) {
                location.speed_mps = Some(speed);
                location.heading_deg = Some(heading);
            }
        }
        Some(location)
    }

    /// The tag's track between two times: its visits in time order. Two overlap in time where
    /// neighbouring stations heard it at once (its placement, in [`Tracker::location`], is one
    /// station at a time).
    pub fn track(&self, tag: TagId, from_ms: i64, to_ms: i64) -> Vec<TrackPoint> {
        let mut points: Vec<TrackPoint> = self
            .trajectories
            .stays(tag, from_ms, to_ms)
            .into_iter()
            .filter_map(|s| {
                Some(TrackPoint {
                    visit: s.visit,
                    station: s.station,
                    position: self.read_position(s.station, s.first_ms)?,
                    first_ms: s.first_ms,
                    last_ms: s.last_ms,
                    best_rssi: s.best_rssi,
                    reads: s.reads,
                })
            })
            .collect();
        for &(station, id) in self.open_of_tag.get(&tag).into_iter().flatten() {
            let Some(v) = self.visits.get(tag, station, id) else {
                continue;
            };
            let Some(position) = self.read_position(station, v.first_seen_ms) else {
                continue;
            };
            if v.last_seen_ms >= from_ms && v.first_seen_ms <= to_ms {
                points.push(TrackPoint {
                    visit: v.id,
                    station: v.station,
                    position,
                    first_ms: v.first_seen_ms,
                    last_ms: v.last_seen_ms,
                    best_rssi: v.best_rssi,
                    reads: v.reads,
                });
            }
        }
        points.sort_by_key(|p| (p.first_ms, p.visit));
        points.dedup_by_key(|p| p.visit);
        points
    }

    /// Tags that were inside `area` at some time in `[from_ms, to_ms]` (at a station inside it,
    /// or moving through it between stations), at most `limit`, by tag.
    pub fn tags_through(
        &self,
        area: &Area,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Vec<Passage> {
        let outline: Vec<Coord<f64>> = area
            .outline()
            .into_iter()
            .filter_map(|p| self.spatial.projected(p))
            .map(|[x, y]| Coord { x, y })
            .collect();
        if outline.len() < 3 {
            return Vec::new();
        }
        let polygon = Polygon::new(LineString::from(outline.clone()), Vec::new());
        let is_box = matches!(area, Area::Box(_));
        let (mut lo, mut hi) = ([f64::MAX; 2], [f64::MIN; 2]);
        for c in &outline {
            lo = [lo[0].min(c.x), lo[1].min(c.y)];
            hi = [hi[0].max(c.x), hi[1].max(c.y)];
        }
        let mut found: HashMap<TagId, (i64, i64)> =
            HashMap::with_capacity_and_hasher(4_096, Default::default());
        let mut note = |tag: TagId, first: i64, last: i64| {
            let e = found.entry(tag).or_insert((first, last));
            *e = (e.0.min(first), e.1.max(last));
        };
        let (from, to) = (from_ms as f64, to_ms as f64);
        let window = ([lo[0], lo[1], from], [hi[0], hi[1], to]);
        self.trajectories
            .for_each_segment_in(window.0, window.1, |s| {
                let Some((p, q)) = s.clip(from, to) else {
                    return;
                };
                // A box is its own bounding box: the R-tree already tested a stay's point, and a move
                // is clipped against it below. Only a polygon needs the exact test.
                let inside = match (s.kind, is_box) {
                    (PieceKind::Stay, true) => true,
                    (PieceKind::Stay, false) => polygon.intersects(&Point::new(p[0], p[1])),
                    (PieceKind::Transit { .. }, true) => clip_to_box(p, q, lo, hi).is_some(),
                    (PieceKind::Transit { .. }, false) => polygon.intersects(&Line::new(
                        Coord { x: p[0], y: p[1] },
                        Coord { x: q[0], y: q[1] },
                    )),
                };
                if !inside {
                    return;
                }
                match s.kind {
                    PieceKind::Stay => note(s.tag, s.a[2].max(from) as i64, s.b[2].min(to) as i64),
                    // A move's time in the area: the part of it inside the area's bounding box.
                    PieceKind::Transit { .. } => {
                        let (t0, t1) = (s.a[2].max(from), s.b[2].min(to));
                        if let Some((f0, f1)) = clip_to_box(p, q, lo, hi) {
                            note(
                                s.tag,
                                (t0 + f0 * (t1 - t0)) as i64,
                                (t0 + f1 * (t1 - t0)) as i64,
                            );
                        }
                    }
                }
            });
        // Visits still open at stations inside the area.
        for (station, xy) in self.spatial.stations_in(lo, hi) {
            if !is_box && !polygon.intersects(&Point::new(xy[0], xy[1])) {
                continue;
            }
            for &(tag, id) in self.open.get(&station).into_iter().flatten() {
                if let Some(v) = self.visits.get(tag, station, id) {
                    if v.last_seen_ms >= from_ms && v.first_seen_ms <= to_ms {
                        note(tag, v.first_seen_ms.max(from_ms), v.last_seen_ms.min(to_ms));
                    }
                }
            }
        }
        let mut passages: Vec<Passage> = found
            .into_iter()
            .map(|(tag, (first_ms, last_ms))| Passage {
                tag,
                first_ms,
                last_ms,
            })
            .collect();
        passages.sort_unstable_by_key(|p| p.tag);
        passages.truncate(limit);
        passages
    }

    /// Tags seen arriving at the same stations as `tag`, within `within_ms` of it, at `min_times`
    /// or more of its stations in `[from_ms, to_ms]`: accomplices, or a convoy. Most often first.
    pub fn travelling_with(
        &self,
        tag: TagId,
        from_ms: i64,
        to_ms: i64,
        within_ms: i64,
        min_times: usize,
        limit: usize,
    ) -> Vec<Companion> {
        let stops = self.stops(tag, from_ms, to_ms);
        let arrivals = self.arrivals(&stops, within_ms);
        companions_of(tag, &stops, &arrivals, min_times, limit)
    }

    /// Where `tag` arrived at each station of its track between two times.
    pub fn stops(&self, tag: TagId, from_ms: i64, to_ms: i64) -> Vec<Stop> {
        self.track(tag, from_ms, to_ms)
            .iter()
            .map(Stop::of)
            .collect()
    }

    /// For each stop, the tags that arrived at its station within `within_ms` of it (sorted,
    /// once each): what [`companions_of`] counts.
    pub fn arrivals(&self, stops: &[Stop], within_ms: i64) -> Vec<Vec<TagId>> {
        stops
            .iter()
            .map(|stop| {
                let Some([x, y]) = self.spatial.projected(stop.position) else {
                    return Vec::new();
                };
                let (t0, t1) = (stop.first_ms - within_ms, stop.first_ms + within_ms);
                let mut here: Vec<TagId> = self
                    .trajectories
                    .segments_in([x - 1.0, y - 1.0, t0 as f64], [x + 1.0, y + 1.0, t1 as f64])
                    .into_iter()
                    .filter(|s| {
                        s.kind == PieceKind::Stay && (s.a[2] as i64) >= t0 && (s.a[2] as i64) <= t1
                    })
                    .map(|s| s.tag)
                    .collect();
                for &(other, id) in self.open.get(&stop.station).into_iter().flatten() {
                    if let Some(v) = self.visits.get(other, stop.station, id) {
                        if (t0..=t1).contains(&v.first_seen_ms) {
                            here.push(other);
                        }
                    }
                }
                here.sort_unstable();
                here.dedup();
                here
            })
            .collect()
    }

    /// The stolen tags not heard for `dark_for_ms` before `now_ms` (the server's clock: no
    /// station's clock says how long a tag has been dark), with their last places.
    pub fn dark_stolen(&self, now_ms: i64, dark_for_ms: i64) -> Vec<(TagId, LastSeen)> {
        self.hotlist
            .tags()
            .filter_map(|tag| Some((tag, self.last_seen(tag)?)))
            .filter(|(_, l)| l.seen_at_ms <= now_ms.saturating_sub(dark_for_ms))
            .collect()
    }

    /// Where stolen tags go dark: [`dens_of`] the [`Tracker::dark_stolen`] tags.
    pub fn dens(&self, now_ms: i64, dark_for_ms: i64, radius_m: f64, min_tags: usize) -> Vec<Den> {
        dens_of(
            self.dark_stolen(now_ms, dark_for_ms),
            self.spatial.reference_lat(),
            radius_m,
            min_tags,
        )
    }

    /// Tags placed within `radius_m` of `center` at or after `since_ms`, nearest first (by
    /// their station, or for a mobile reader's read by where it was made), at most `limit`.
    pub fn tags_near(
        &self,
        center: GeoPoint,
        radius_m: f64,
        since_ms: i64,
        limit: usize,
    ) -> Vec<(TagId, LastSeen, f64)> {
        let mut found = self.tags_near_fixed(center, radius_m, since_ms, limit);
        // Tags placed at a mobile reader are where it heard them (their place's position), and
        // the fixed-station index does not hold readers. Readers are few, and so are their tags.
        let mut mobile: Vec<(TagId, LastSeen, f64)> = Vec::new();
        for (reader, _, _) in self.readers.latest() {
            for p in self.spatial.present_at(reader) {
                let Some(place) = self.places.get(&p.tag).filter(|_| p.seen_at_ms >= since_ms)
                else {
                    continue;
                };
                let distance = spatial::distance_m(center, place.current.position);
                if distance <= radius_m {
                    let seen = LastSeen {
                        station: reader,
                        position: place.current.position,
                        seen_at_ms: p.seen_at_ms,
                    };
                    mobile.push((p.tag, seen, distance));
                }
            }
        }
        if !mobile.is_empty() {
            found.extend(mobile);
            found.sort_by(nearest_first);
            found.truncate(limit);
        }
        found
    }
}

/// The order of [`Tracker::tags_near`]'s answer: nearest first, then by station (the order
/// [`spatial::Spatial::stations_within`] gives equidistant stations), the latest heard first,
/// then by tag.
pub fn nearest_first(a: &(TagId, LastSeen, f64), b: &(TagId, LastSeen, f64)) -> std::cmp::Ordering {
    a.2.total_cmp(&b.2)
        .then(a.1.station.cmp(&b.1.station))
        .then(b.1.seen_at_ms.cmp(&a.1.seen_at_ms))
        .then(a.0.cmp(&b.0))
}

impl Tracker {
    /// [`Tracker::tags_near`] at fixed stations.
    fn tags_near_fixed(
        &self,
        center: GeoPoint,
        radius_m: f64,
        since_ms: i64,
        limit: usize,
    ) -> Vec<(TagId, LastSeen, f64)> {
        let mut found = Vec::new();
        for (station, distance) in self.spatial.stations_within(center, radius_m) {
            let Some(&position) = self.stations.get(&station) else {
                continue;
            };
            let start = found.len();
            found.extend(
                self.spatial
                    .present_at(station)
                    .iter()
                    .filter(|p| p.seen_at_ms >= since_ms)
                    .map(|p| {
                        let seen = LastSeen {
                            station,
                            position,
                            seen_at_ms: p.seen_at_ms,
                        };
                        (p.tag, seen, distance)
                    }),
            );
            found[start..]
                .sort_unstable_by_key(|(tag, l, _)| (std::cmp::Reverse(l.seen_at_ms), *tag));
            if found.len() >= limit {
                found.truncate(limit);
                break;
            }
        }
        found
    }
}

/// The fractions of the way from `p` to `q` between which the segment is inside the box
/// `[lo, hi]` (Liang–Barsky), if it enters it at all.
fn clip_to_box(p: [f64; 2], q: [f64; 2], lo: [f64; 2], hi: [f64; 2]) -> Option<(f64, f64)> {
    let (mut f0, mut f1) = (0.0f64, 1.0f64);
    for axis in 0..2 {
        let d = q[axis] - p[axis];
        for (edge, inward) in [(lo[axis], 1.0), (hi[axis], -1.0)] {
            let gap = (p[axis] - edge) * inward;
            let along = d * inward;
            if along == 0.0 {
                if gap < 0.0 {
                    return None;
                }
            } else {
                let f = -gap / along;
                if along > 0.0 {
                    f0 = f0.max(f);
                } else {
                    f1 = f1.min(f);
                }
            }
        }
    }
    (f0 <= f1).then_some((f0, f1))
}

/// Initial bearing from `a` to `b`, degrees clockwise from north.
fn bearing(a: GeoPoint, b: GeoPoint) -> f64 {
    use geo::{Bearing, Haversine};
    Haversine.bearing(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
}

/// Dark tags' last places clustered (DBSCAN, on the local plane centred on `reference_lat`) with
/// neighbours within `radius_m`: clusters of at least `min_tags`, largest first. A free function
/// so that a cluster's API node can cluster the dark tags gathered from every partition.
pub fn dens_of(
    mut dark: Vec<(TagId, LastSeen)>,
    reference_lat: Option<f64>,
    radius_m: f64,
    min_tags: usize,
) -> Vec<Den> {
    let Some(lat0) = reference_lat else {
        return Vec::new();
    };
    // By tag: the same clusters whatever order the tags were gathered in.
    dark.sort_by_key(|(tag, _)| *tag);
    let points: Vec<Point<f64>> = dark
        .iter()
        .map(|(_, l)| spatial::project(lat0, l.position))
        .map(|[x, y]| Point::new(x, y))
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    let labels = points.as_slice().dbscan(radius_m, min_tags.max(1));
    let mut clusters: HashMap<usize, Vec<usize>> = HashMap::default();
    for (i, label) in labels.into_iter().enumerate() {
        if let Some(c) = label {
            clusters.entry(c).or_default().push(i);
        }
    }
    let mut dens: Vec<Den> = clusters
        .into_values()
        .map(|members| {
            let n = members.len() as f64;
            let x = members.iter().map(|&i| points[i].x()).sum::<f64>() / n;
            let y = members.iter().map(|&i| points[i].y()).sum::<f64>() / n;
            let mut tags: Vec<(TagId, LastSeen)> = members.iter().map(|&i| dark[i]).collect();
            tags.sort_by_key(|(t, _)| *t);
            Den {
                center: spatial::unproject(lat0, [x, y]),
                tags,
            }
        })
        .collect();
    dens.sort_by(|a, b| {
        b.tags
            .len()
            .cmp(&a.tags.len())
            .then(a.tags[0].0.cmp(&b.tags[0].0))
    });
    dens
}

/// The tags other than `tag` that arrived with it at `min_times` or more of its `stops`
/// (`arrivals[i]`: those that arrived at stop `i`, as [`Tracker::arrivals`] gives them), most
/// often first, at most `limit`. A free function so that a cluster's API node can count the
/// arrivals gathered from every partition.
pub fn companions_of(
    tag: TagId,
    stops: &[Stop],
    arrivals: &[Vec<TagId>],
    min_times: usize,
    limit: usize,
) -> Vec<Companion> {
    let mut together: HashMap<TagId, Vec<StationId>> = HashMap::default();
    for (stop, here) in stops.iter().zip(arrivals) {
        for &other in here.iter().filter(|&&o| o != tag) {
            together.entry(other).or_default().push(stop.station);
        }
    }
    let mut companions: Vec<Companion> = together
        .into_iter()
        .filter(|(_, stations)| stations.len() >= min_times)
        .map(|(tag, stations)| Companion { tag, stations })
        .collect();
    companions.sort_by(|a, b| {
        b.stations
            .len()
            .cmp(&a.stations.len())
            .then(a.tag.cmp(&b.tag))
    });
    companions.truncate(limit);
    companions
}
