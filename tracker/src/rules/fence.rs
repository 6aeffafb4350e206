//! # Geofence rule: `geofence`, a tag's move across the fences watching it, one alert per fence
//! and crossing.

use super::{Draft, Sighting};
use crate::fences::Fences;
use tagwatch_model::{AlertKind, FenceCrossing, GeoPoint};

/// The alerts for the tag's move from `from` to `to` (where this sighting places it).
pub(crate) fn check(
    fences: &Fences,
    s: Sighting<'_>,
    from: GeoPoint,
    to: GeoPoint,
    drafts: &mut Vec<Draft>,
) {
    if !fences.watches(s.d.tag) {
        return;
    }
    for crossing in fences.crossed(s.d.tag, from, to) {
        let crossing = FenceCrossing {
            fence: crossing.fence.id,
            name: crossing.fence.name.clone(),
            entered: crossing.entered,
        };
        let way = if crossing.entered { "enter" } else { "leave" };
        let scope = format!("geofence-{}-{way}", crossing.fence);
        let mut draft = Draft::about(AlertKind::Geofence, &scope, s);
        draft.position = to;
        draft.detail.fence = Some(crossing);
        drafts.push(draft);
    }
}
