//! # Where tags are now: stations in a 2-D R-tree, and the tags placed at each station.
//!
//! Each station keeps its tags in a plain vector with their latest time, so "tags near a point"
//! reads a few contiguous arrays instead of looking every tag up; a tag remembers its slot (in its
//! placement), so a detection updates its time without a search, and a move is a swap-remove.
//!
//! Positions are projected to metres on a local plane (equirectangular about the first station's
//! latitude): exact to well under a metre over a city, and it lets the R-tree answer radius
//! queries in metres directly.

use rstar::primitives::GeomWithData;
use rstar::RTree;
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{GeoPoint, StationId, TagId};

const METRES_PER_DEGREE: f64 = 111_320.0;

type StationPoint = GeomWithData<[f64; 2], StationId>;

/// The station index and the tags at each station.
#[derive(Debug, Default)]
pub struct Spatial {
    /// Latitude the projection is centred on (cosine of it scales longitudes).
    reference_lat: Option<f64>,
    stations: RTree<StationPoint>,
    /// Tags placed at each station.
    present: HashMap<StationId, Vec<Present>>,
}

/// A tag placed at a station, and when it was last heard there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Present {
    pub tag: TagId,
    pub seen_at_ms: i64,
}

impl Spatial {
    /// `p` on the local plane, which is centred on the first point ever projected.
    pub fn project(&mut self, p: GeoPoint) -> [f64; 2] {
        let lat0 = *self.reference_lat.get_or_insert(p.lat);
        project(lat0, p)
    }

    /// `p` on the local plane, if there is one yet.
    pub fn projected(&self, p: GeoPoint) -> Option<[f64; 2]> {
        self.reference_lat.map(|lat0| project(lat0, p))
    }

    /// Back from the local plane to degrees.
    pub fn unproject(&self, xy: [f64; 2]) -> Option<GeoPoint> {
        Some(unproject(self.reference_lat?, xy))
    }

    /// The latitude the local plane is centred on, if there is one yet.
    pub fn reference_lat(&self) -> Option<f64> {
        self.reference_lat
    }

    /// Stations inside the box `[lo, hi]` on the local plane.
    pub fn stations_in(
        &self,
        lo: [f64; 2],
        hi: [f64; 2],
    ) -> impl Iterator<Item = (StationId, [f64; 2])> + '_ {
        self.stations
            .locate_in_envelope(&rstar::AABB::from_corners(lo, hi))
            .map(|s| (s.data, *s.geom()))
    }

    /// Adds (or moves) a station. An R-tree entry must never change in place: removed, then
    /// inserted again.
    pub fn set_station(&mut self, id: StationId, position: GeoPoint) {
        let xy = self.project(position);
        self.remove_station(id);
        self.stations.insert(GeomWithData::new(xy, id));
    }

    /// Takes a station out of the index (a mobile reader: it is not at its surveyed place).
    pub fn remove_station(&mut self, id: StationId) {
        let old: Vec<StationPoint> = self
            .stations
            .iter()
            .filter(|s| s.data == id)
            .copied()
            .collect();
        for s in old {
            self.stations.remove(&s);
        }
    }

    /// `tag` is now placed at `station`; returns its slot there.
    pub fn arrive(&mut self, station: StationId, tag: TagId, seen_at_ms: i64) -> u32 {
        let list = self.present.entry(station).or_default();
        list.push(Present { tag, seen_at_ms });
        u32::try_from(list.len() - 1).unwrap_or(u32::MAX)
    }

    /// `tag`, in `slot` at `station`, was heard again.
    pub fn touch(&mut self, station: StationId, slot: u32, tag: TagId, seen_at_ms: i64) {
        if let Some(p) = self
            .present
            .get_mut(&station)
            .and_then(|list| list.get_mut(slot as usize))
            .filter(|p| p.tag == tag)
        {
            p.seen_at_ms = p.seen_at_ms.max(seen_at_ms);
        }
    }

    /// The tag in `slot` left `station`. Returns the tag moved into that slot in its place, whose
    /// slot is now `slot`.
    pub fn leave(&mut self, station: StationId, slot: u32) -> Option<TagId> {
        let list = self.present.get_mut(&station)?;
        let slot = slot as usize;
        if slot >= list.len() {
            return None;
        }
        list.swap_remove(slot);
        list.get(slot).map(|p| p.tag)
    }

    /// Stations within `radius_m` of `center`, with their distance in metres, nearest first.
    pub fn stations_within(&self, center: GeoPoint, radius_m: f64) -> Vec<(StationId, f64)> {
        let Some(lat0) = self.reference_lat else {
            return Vec::new();
        };
        let c = project(lat0, center);
        let mut found: Vec<(StationId, f64)> = self
            .stations
            .locate_within_distance(c, radius_m * radius_m)
            .map(|s| {
                let [x, y] = *s.geom();
                (s.data, ((x - c[0]).powi(2) + (y - c[1]).powi(2)).sqrt())
            })
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        found
    }

    /// Tags placed at `station`.
    pub fn present_at(&self, station: StationId) -> &[Present] {
        self.present.get(&station).map_or(&[], Vec::as_slice)
    }
}

/// Distance in metres between two points a city apart (equirectangular about their mean
/// latitude: within 0.1 % up to tens of kilometres).
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    // One cosine, not one per point: this runs whenever neighbouring stations share a tag.
    let east = (a.lon - b.lon) * METRES_PER_DEGREE * ((a.lat + b.lat) / 2.0).to_radians().cos();
    let north = (a.lat - b.lat) * METRES_PER_DEGREE;
    (east * east + north * north).sqrt()
}

/// Back from a plane centred on `lat0` to degrees.
pub(crate) fn unproject(lat0: f64, xy: [f64; 2]) -> GeoPoint {
    GeoPoint {
        lat: xy[1] / METRES_PER_DEGREE,
        lon: xy[0] / (METRES_PER_DEGREE * lat0.to_radians().cos()),
    }
}

/// `p` on a plane centred on `lat0`.
pub(crate) fn project(lat0: f64, p: GeoPoint) -> [f64; 2] {
    [
        p.lon * METRES_PER_DEGREE * lat0.to_radians().cos(),
        p.lat * METRES_PER_DEGREE,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn radius_queries_are_in_metres_and_nearest_first() {
        let mut s = Spatial::default();
        s.set_station(StationId(1), at(23.0, 116.0));
        // ~111 m north, ~102 m east (cos 23° × 111 m), ~1.1 km north.
        s.set_station(StationId(2), at(23.001, 116.0));
        s.set_station(StationId(3), at(23.0, 116.001));
        s.set_station(StationId(4), at(23.01, 116.0));
        let found = s.stations_within(at(23.0, 116.0), 150.0);
        let ids: Vec<_> = found.iter().map(|f| f.0).collect();
        assert_eq!(ids, vec![StationId(1), StationId(3), StationId(2)]);
        assert!((found[2].1 - 111.3).abs() < 0.5, "{found:?}");
        assert!((found[1].1 - 102.5).abs() < 0.5, "{found:?}");
        // Moving a station replaces it.
        s.set_station(StationId(4), at(23.0005, 116.0));
        assert_eq!(s.stations_within(at(23.0, 116.0), 60.0).len(), 2);
    }

    #[test]
    fn tags_arrive_are_touched_and_leave_by_slot() {
        let mut s = Spatial::default();
        let (a, b) = (StationId(1), StationId(2));
        let slots: Vec<u32> = (1..=3).map(|t| s.arrive(a, TagId(t), 10)).collect();
        assert_eq!(slots, vec![0, 1, 2]);
        s.touch(a, 1, TagId(2), 50);
        s.touch(a, 1, TagId(3), 99); // wrong tag for the slot: ignored
        assert_eq!(
            s.present_at(a)[1],
            Present {
                tag: TagId(2),
                seen_at_ms: 50
            }
        );
        // Tag 1 leaves: tag 3 takes its slot 0.
        assert_eq!(s.leave(a, 0), Some(TagId(3)));
        assert_eq!(s.arrive(b, TagId(1), 60), 0);
        let at_a: Vec<u32> = s.present_at(a).iter().map(|p| p.tag.0).collect();
        assert_eq!(at_a, vec![3, 2]);
        // The last slot leaving moves nobody.
        assert_eq!(s.leave(a, 1), None);
        assert_eq!(s.present_at(a).len(), 1);
        assert!(s.present_at(StationId(7)).is_empty());
    }
}
