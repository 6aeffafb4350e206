//! A visit: consecutive detections of one tag at one station, merged.

use crate::{StationId, TagId};
use serde::{Deserialize, Serialize};

/// A visit's stable identity. Assigned by the tracker when the visit opens and kept when late
/// detections move its start, so an upsert in the store always hits the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VisitId(pub i64);

/// One tag's stay within one station's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub id: VisitId,
    pub tag: TagId,
    pub station: StationId,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Strongest signal of any detection in the visit, dBm.
    pub best_rssi: i8,
    /// Raw reads merged into the visit (the sum of the records' `reads`).
    pub reads: u32,
}

/// Bits of a visit id below its creation time: ids are `created_ms << VISIT_ID_TIME_SHIFT | n`,
/// so they grow with time and a range of ids is a range of creation times. The store partitions
/// visits by id ranges (one per day) without a partition key that could ever change: late data
/// can move a visit's start, never its id. 20 bits leave a million ids per millisecond, and the
/// scheme lasts until the year 2248.
pub const VISIT_ID_TIME_SHIFT: u32 = 20;

impl VisitId {
    /// The smallest id a visit created at `ms` can have.
    pub fn floor_at(ms: i64) -> i64 {
        ms.max(0).saturating_mul(1 << VISIT_ID_TIME_SHIFT)
    }

    /// When the visit was created (server clock).
    pub fn created_ms(self) -> i64 {
        self.0 >> VISIT_ID_TIME_SHIFT
    }
}
