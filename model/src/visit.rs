//! A visit: consecutive detections of one tag at one station, merged.

use crate::{StationId, TagId};

/// A visit's stable identity. Assigned by the tracker when the visit opens and kept when late
/// detections move its start, so an upsert in the store always hits the same row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
