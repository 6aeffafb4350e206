//! Geofences: areas watched for tags entering or leaving them.

use crate::{GeoPoint, TagId};
use serde::{Deserialize, Serialize};

/// Most vertices a fence's outline may have: enough for any district, small enough to test fast.
pub const MAX_FENCE_VERTICES: usize = 256;

/// A watched area and the tags on its watch list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geofence {
    pub id: i64,
    pub name: String,
    /// The outline, in order; closed implicitly (the last vertex joins the first).
    pub area: Vec<GeoPoint>,
    /// Tags watched by this fence.
    pub tags: Vec<TagId>,
    /// Alert when a watched tag enters the area.
    pub on_enter: bool,
    /// Alert when a watched tag leaves the area.
    pub on_leave: bool,
}
