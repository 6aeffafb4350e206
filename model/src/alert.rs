//! Alerts: what the watch rules raise and officers receive.

use crate::{GeoPoint, StationId, TagId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A tag reported stolen was heard.
    StolenSighting,
    /// A tag reports its case opened or its strap cut.
    TagTamper,
    /// A tag's panic button is held.
    Panic,
    /// A tag's battery is low.
    LowBattery,
    /// The same tag heard at two places too far apart for the time between: a cloned tag.
    CloneSuspected,
    /// Its owner armed it while parked, and it is heard away from that place.
    ArmedMoved,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StolenSighting => "stolen_sighting",
            AlertKind::TagTamper => "tag_tamper",
            AlertKind::Panic => "panic",
            AlertKind::LowBattery => "low_battery",
            AlertKind::CloneSuspected => "clone_suspected",
            AlertKind::ArmedMoved => "armed_moved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "stolen_sighting" => Some(AlertKind::StolenSighting),
            "tag_tamper" => Some(AlertKind::TagTamper),
            "panic" => Some(AlertKind::Panic),
            "low_battery" => Some(AlertKind::LowBattery),
            "clone_suspected" => Some(AlertKind::CloneSuspected),
            "armed_moved" => Some(AlertKind::ArmedMoved),
            _ => None,
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deterministic alert id: derived from what raised it, so applying the same frame twice (across
/// a crash) yields the same id and the store keeps one alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub String);

/// An alert as stored and streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Position in the alert stream (the SSE `id`): increasing, assigned when raised.
    pub seq: i64,
    pub id: AlertId,
    pub kind: AlertKind,
    pub tag: TagId,
    pub station: StationId,
    pub position: GeoPoint,
    /// When the tag was heard (station clock).
    pub seen_at_ms: i64,
    /// When the server raised the alert.
    pub raised_at_ms: i64,
}
