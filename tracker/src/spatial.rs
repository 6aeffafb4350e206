//! # Where tags are now: stations in a 2-D R-tree, and the tags last heard at each station.
//!
//! Positions are projected to metres on a local plane (equirectangular about the first station's
//! latitude): exact to well under a metre over a city, and it lets the R-tree answer radius
//! queries in metres directly.

use rstar::primitives::GeomWithData;
use rstar::RTree;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tagwatch_model::{GeoPoint, StationId, TagId};

const METRES_PER_DEGREE: f64 = 111_320.0;

type StationPoint = GeomWithData<[f64; 2], StationId>;

/// The station index and the tags at each station.
#[derive(Debug, Default)]
pub struct Spatial {
    /// Latitude the projection is centred on (cosine of it scales longitudes).
    reference_lat: Option<f64>,
    stations: RTree<StationPoint>,
    /// Tags whose latest detection was at the station.
    tags_at: HashMap<StationId, HashSet<TagId>>,
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
        let lat0 = self.reference_lat?;
        Some(GeoPoint {
            lat: xy[1] / METRES_PER_DEGREE,
            lon: xy[0] / (METRES_PER_DEGREE * lat0.to_radians().cos()),
        })
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
        let old: Vec<StationPoint> = self
            .stations
            .iter()
            .filter(|s| s.data == id)
            .copied()
            .collect();
        for s in old {
            self.stations.remove(&s);
        }
        self.stations.insert(GeomWithData::new(xy, id));
    }

    /// The tag's latest detection moved from `from` (if any) to `to`.
    pub fn moved(&mut self, tag: TagId, from: Option<StationId>, to: StationId) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            if let Some(set) = self.tags_at.get_mut(&from) {
                set.remove(&tag);
            }
        }
        self.tags_at.entry(to).or_default().insert(tag);
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

    /// Tags whose latest detection was at `station`.
    pub fn tags_at(&self, station: StationId) -> impl Iterator<Item = TagId> + '_ {
        self.tags_at.get(&station).into_iter().flatten().copied()
    }
}

/// Distance in metres between two points a city apart (equirectangular about their mean
/// latitude: within 0.1 % up to tens of kilometres).
pub fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let lat0 = (a.lat + b.lat) / 2.0;
    let (pa, pb) = (project(lat0, a), project(lat0, b));
    ((pa[0] - pb[0]).powi(2) + (pa[1] - pb[1]).powi(2)).sqrt()
}

fn project(lat0: f64, p: GeoPoint) -> [f64; 2] {
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
    fn a_tag_is_at_one_station_at_a_time() {
        let mut s = Spatial::default();
        s.moved(TagId(9), None, StationId(1));
        s.moved(TagId(9), Some(StationId(1)), StationId(2));
        assert_eq!(s.tags_at(StationId(1)).count(), 0);
        assert_eq!(s.tags_at(StationId(2)).collect::<Vec<_>>(), vec![TagId(9)]);
    }
}
