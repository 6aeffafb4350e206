//! # Geofences: watched tags entering or leaving areas.
//!
//! A fence is an outline and a watch list. When a watched tag's placement moves (it is placed at
//! another station, or a mobile reader hears it elsewhere), the tracker asks which of the tag's
//! fences it crossed, and which way.

use geo::{Contains, Coord, LineString, Polygon};
use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::{GeoPoint, Geofence, TagId};

/// A crossing of one fence.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing<'a> {
    pub fence: &'a Geofence,
    pub entered: bool,
}

#[derive(Debug)]
struct Fence {
    fence: Geofence,
    outline: Polygon<f64>,
}

/// The fences and, for each watched tag, the fences watching it.
#[derive(Debug, Default)]
pub struct Fences {
    fences: HashMap<i64, Fence>,
    by_tag: HashMap<TagId, Vec<i64>>,
}

fn outline(area: &[GeoPoint]) -> Polygon<f64> {
    let ring: Vec<Coord<f64>> = area.iter().map(|p| Coord { x: p.lon, y: p.lat }).collect();
    Polygon::new(LineString::from(ring), Vec::new())
}

impl Fences {
    /// Adds or replaces a fence.
    pub fn set(&mut self, fence: Geofence) {
        self.remove(fence.id);
        for tag in &fence.tags {
            self.by_tag.entry(*tag).or_default().push(fence.id);
        }
        let outline = outline(&fence.area);
        self.fences.insert(fence.id, Fence { fence, outline });
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(old) = self.fences.remove(&id) {
            for tag in &old.fence.tags {
                if let Some(list) = self.by_tag.get_mut(tag) {
                    list.retain(|f| *f != id);
                    if list.is_empty() {
                        self.by_tag.remove(tag);
                    }
                }
            }
        }
    }

    /// Every tag some fence watches.
    pub fn watched(&self) -> impl Iterator<Item = TagId> + '_ {
        self.by_tag.keys().copied()
    }

    /// Whether any fence watches `tag` (cheap: checked on every move).
    pub fn watches(&self, tag: TagId) -> bool {
        self.by_tag.contains_key(&tag)
    }

    /// The fences `tag` crossed moving from `from` to `to` that alert on that direction.
    pub fn crossed(&self, tag: TagId, from: GeoPoint, to: GeoPoint) -> Vec<Crossing<'_>> {
        let Some(ids) = self.by_tag.get(&tag) else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| self.fences.get(id))
            .filter_map(|f| {
                let inside = |p: GeoPoint| f.outline.contains(&Coord { x: p.lon, y: p.lat });
                let (was, is) = (inside(from), inside(to));
                match (was, is) {
                    (false, true) if f.fence.on_enter => Some(Crossing {
                        fence: &f.fence,
                        entered: true,
                    }),
                    (true, false) if f.fence.on_leave => Some(Crossing {
                        fence: &f.fence,
                        entered: false,
                    }),
                    _ => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    fn square(id: i64, tags: &[u32], on_enter: bool, on_leave: bool) -> Geofence {
        Geofence {
            id,
            name: format!("fence {id}"),
            area: vec![p(0.0, 0.0), p(0.0, 1.0), p(1.0, 1.0), p(1.0, 0.0)],
            tags: tags.iter().map(|t| TagId(*t)).collect(),
            on_enter,
            on_leave,
        }
    }

    #[test]
    fn crossings_are_reported_for_watched_tags_in_the_directions_asked() {
        let mut fences = Fences::default();
        fences.set(square(1, &[7], true, true));
        fences.set(square(2, &[7, 8], false, true));
        let (outside, inside) = (p(2.0, 2.0), p(0.5, 0.5));
        let entering = fences.crossed(TagId(7), outside, inside);
        assert_eq!(entering.len(), 1);
        assert_eq!((entering[0].fence.id, entering[0].entered), (1, true));
        let leaving: Vec<_> = fences
            .crossed(TagId(7), inside, outside)
            .iter()
            .map(|c| (c.fence.id, c.entered))
            .collect();
        assert_eq!(leaving, vec![(1, false), (2, false)]);
        assert!(
            fences.crossed(TagId(7), inside, p(0.6, 0.6)).is_empty(),
            "moved inside"
        );
        assert!(
            fences.crossed(TagId(9), outside, inside).is_empty(),
            "not watched"
        );
        fences.remove(1);
        assert!(fences.crossed(TagId(7), outside, inside).is_empty());
        assert!(fences.watches(TagId(8)));
        fences.remove(2);
        assert!(!fences.watches(TagId(7)));
    }
}
