//! # TagWatch domain model
//!
//! The types every stage of the pipeline shares (station → gateway → tracker → store → api):
//! ids as newtypes so a tag can never be passed where a station is expected, positions, visits and
//! alerts. No I/O and no behaviour beyond validation lives here.

pub mod account;
pub mod alert;
pub mod fence;
pub mod geo;
pub mod ids;
pub mod key;
pub mod response;
pub mod time;
pub mod visit;

pub use account::{purpose_says_something, AuditEntry, Role, User, UserId, MAX_PURPOSE_CHARS};
pub use alert::{Alert, AlertDetail, AlertId, AlertKind, CloneEvidence, FenceCrossing, Intercept};
pub use fence::Geofence;
pub use geo::{GeoBox, GeoPoint};
pub use ids::{FrameKey, SessionId, StationId, TagId, DEVICE_STATIONS_FROM};
pub use key::StationKey;
pub use response::{ActionKind, AlertAction, PatrolUnit};
pub use visit::{Visit, VisitId};

/// Bits of a detection's `tag_flags` (`PROTOCOL.md`).
pub mod tag_flags {
    /// Case opened or tag cut.
    pub const TAMPER: u8 = 0x01;
    pub const LOW_BATTERY: u8 = 0x02;
    /// Panic button held.
    pub const PANIC: u8 = 0x04;
    /// The tag's accelerometer says it is moving.
    pub const MOVING: u8 = 0x08;
    /// A GPS tracker's alarm: the vehicle's main power was cut. Set only by TagWatch's device
    /// listener for the frames it makes from a tracker's reports; a station never sets it.
    pub const POWER_CUT: u8 = 0x10;
    /// A GPS tracker's alarm: it felt the vehicle handled (vibration). Raises `armed_moved` for
    /// an armed vehicle wherever it is heard. Set only by the device listener, as `POWER_CUT`.
    pub const VIBRATION: u8 = 0x20;
}

/// A reader's detection of one tag, as the tracker consumes it: the wire record resolved to an
/// absolute time and the place of the reader that heard it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub tag: TagId,
    pub station: StationId,
    /// When the tag was last heard in this record: the frame's `time_ms` minus the record's `age_ms`.
    pub seen_at_ms: i64,
    pub rssi: i8,
    pub reads: u8,
    pub tag_flags: u8,
}

/// A registered station as the server knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    pub position: GeoPoint,
}

/// Where a mobile reader (a patrol car or handheld) was, by its GPS, at a time (server-trusted
/// time: the frame's send time, corrected for the reader's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReaderFix {
    pub station: StationId,
    pub at_ms: i64,
    pub position: GeoPoint,
}

/// A registered vehicle, what it looks like (for an officer to recognise it on the road), and
/// its owner's contact. Make, model and colour are empty when the registration did not say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vehicle {
    pub tag: TagId,
    pub plate: String,
    pub make: String,
    pub model: String,
    pub colour: String,
    pub owner_name: String,
    pub owner_phone: String,
}

/// A plate as searched: ASCII letters upper-cased, and the separators people type or leave out
/// (spaces, hyphens, dots, the middle dot of Chinese plates) removed, so `粤A·12345`,
/// `粤a 12345` and `粤A12345` are the same plate. The store keeps this beside the plate as typed.
pub fn plate_key(plate: &str) -> String {
    plate
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '·'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// An open theft case: while it is open, every sighting of its tag raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaseId(pub i64);

/// Which frames of one station session have been applied: every seq in `1..=contiguous`, plus the
/// seqs in `above` (all greater than `contiguous + 1`), which arrived ahead of a missing one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watermark {
    pub station: StationId,
    pub session: SessionId,
    pub contiguous: u32,
    pub above: Vec<u32>,
}

/// A station's last heartbeat and what the gateway noticed about its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StationStatus {
    pub station: StationId,
    pub received_at_ms: i64,
    pub station_time_ms: i64,
    pub uptime_s: u32,
    pub backlog: u32,
    pub fw_version: u16,
    pub temp_c: i8,
    pub power: u8,
    pub tags_in_range: u16,
}
