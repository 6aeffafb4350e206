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
    /// A tag on a geofence's watch list entered or left the fenced area.
    Geofence,
    /// A tag paired with a companion (a carer's card, the owner's key) heard without it.
    CompanionMissing,
    /// No frame from a station for longer than the configured time.
    StationSilent,
    /// A station's clock is far from the server's.
    StationClockSkew,
    /// A station reported silent is heard again.
    StationBack,
    /// A station's heartbeat reports a power fault.
    StationPowerFault,
    /// A station's heartbeat reports it overheating.
    StationOverheat,
    /// A station's backlog of unacknowledged frames is large and growing.
    StationBacklog,
    /// A GPS tracker reported its vehicle's main power cut.
    PowerCut,
}

impl AlertKind {
    /// Every kind, for parsing and listing.
    pub const ALL: [AlertKind; 15] = [
        AlertKind::StolenSighting,
        AlertKind::TagTamper,
        AlertKind::Panic,
        AlertKind::LowBattery,
        AlertKind::CloneSuspected,
        AlertKind::ArmedMoved,
        AlertKind::Geofence,
        AlertKind::CompanionMissing,
        AlertKind::StationSilent,
        AlertKind::StationClockSkew,
        AlertKind::StationBack,
        AlertKind::StationPowerFault,
        AlertKind::StationOverheat,
        AlertKind::StationBacklog,
        AlertKind::PowerCut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::StolenSighting => "stolen_sighting",
            AlertKind::TagTamper => "tag_tamper",
            AlertKind::Panic => "panic",
            AlertKind::LowBattery => "low_battery",
            AlertKind::CloneSuspected => "clone_suspected",
            AlertKind::ArmedMoved => "armed_moved",
            AlertKind::Geofence => "geofence",
            AlertKind::CompanionMissing => "companion_missing",
            AlertKind::StationSilent => "station_silent",
            AlertKind::StationBack => "station_back",
            AlertKind::StationPowerFault => "station_power_fault",
            AlertKind::StationOverheat => "station_overheat",
            AlertKind::StationBacklog => "station_backlog",
            AlertKind::StationClockSkew => "station_clock_skew",
            AlertKind::PowerCut => "power_cut",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
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
    /// The tag it is about; `None` for alerts about a station.
    pub tag: Option<TagId>,
    pub station: StationId,
    pub position: GeoPoint,
    /// When the tag was heard (station clock).
    pub seen_at_ms: i64,
    /// When the server raised the alert.
    pub raised_at_ms: i64,
    /// What an officer needs to act on it, by kind.
    pub detail: AlertDetail,
}

/// An alert's context. Only the fields its kind uses are set (and serialized).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertDetail {
    /// The theft case (`stolen_sighting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<i64>,
    /// Direction of travel, degrees clockwise from north, from the tag's last two stations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_mps: Option<f64>,
    /// Where the tag is likely to be heard next (`stolen_sighting`), most likely first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intercept: Vec<Intercept>,
    /// Raised by the look-back of a theft report, about a sighting from before the report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub look_back: bool,
    /// The fence crossed (`geofence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceCrossing>,
    /// The companion that was not heard (`companion_missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion: Option<TagId>,
    /// Station clock minus server clock, seconds (`station_clock_skew`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_s: Option<f64>,
    /// The other sighting that makes this one impossible for one tag (`clone_suspected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_of: Option<CloneEvidence>,
    /// How far from where it was armed it was heard, metres (`armed_moved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_m: Option<f64>,
    /// The sighting's time was moved back by this many seconds (negative: forward) because its
    /// station's clock is off by more than the limit: it is placed at a time the server trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_corrected_s: Option<f64>,
    /// Its temperature, °C (`station_overheat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<i8>,
    /// Frames waiting in its flash (`station_backlog`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u32>,
    /// Seconds since the station's last frame (`station_silent`; `station_back`: how long it was
    /// silent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent_s: Option<i64>,
}

/// Why a sighting suggests a cloned tag: the same tag heard at another place too far away for
/// the time between.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CloneEvidence {
    /// Where it was heard before.
    pub station: StationId,
    pub lat: f64,
    pub lon: f64,
    pub distance_m: f64,
    /// Seconds between the two sightings.
    pub seconds_apart: f64,
    /// The speed one vehicle would have needed, m/s (none: heard at the same instant).
    pub implied_speed_mps: Option<f64>,
}

/// A predicted next station of a moving tag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Intercept {
    pub station: StationId,
    pub lat: f64,
    pub lon: f64,
    /// Share of the tags seen making this move that went to this station.
    pub probability: f64,
    /// Typical (median) seconds from when the alert was raised to arrival there: from the
    /// sighting, less the time since (a late sighting's vehicle is already on its way).
    pub eta_s: f64,
    /// Half the vehicles seen making this move arrived between these (seconds, as `eta_s`).
    #[serde(default)]
    pub eta_low_s: f64,
    #[serde(default)]
    pub eta_high_s: f64,
}

/// Which fence a tag crossed, and which way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceCrossing {
    pub fence: i64,
    pub name: String,
    /// True when it entered the area, false when it left it.
    pub entered: bool,
}
