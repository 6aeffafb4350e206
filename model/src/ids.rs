//! Identifiers. Each is a newtype so that a tag id, a station id and a session id cannot be mixed
//! up across crate boundaries, even though all three are `u32` on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A tag, and so one registered vehicle (or person). Never 0 on the wire.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct TagId(pub u32);

/// A base station or mobile reader, assigned at installation. Never 0 on the wire.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StationId(pub u32);

/// Station ids from here up belong to GPS trackers (`docs/DEVICES.md`): each tracker is a mobile
/// reader of its own vehicle, with a station id the server assigns when it is registered.
pub const DEVICE_STATIONS_FROM: u32 = 3_000_000_000;

impl StationId {
    /// A GPS tracker's station, not a roadside station or a patrol car's reader.
    pub fn is_device(self) -> bool {
        self.0 >= DEVICE_STATIONS_FROM
    }
}

/// Chosen by a station at each boot; sequence numbers restart at 1 in each session.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SessionId(pub u32);

/// Names one frame for deduplication: (station, session, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FrameKey {
    pub station: StationId,
    pub session: SessionId,
    pub seq: u32,
}

impl fmt::Display for TagId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for StationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for FrameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.station, self.session, self.seq)
    }
}
