//! # What a GPS tracker reports, whatever its protocol.
//!
//! The decoders of device protocols ([`crate::gt06`]) produce these; the listener turns them
//! into a mobile reader's frames and the device's replies.

use std::fmt;

/// A device's identity: its modem's IMEI, 15 decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Imei(u64);

impl Imei {
    /// 15 digits, the first not necessarily nonzero (the check digit is not verified: clones of
    /// trackers often carry made-up IMEIs, and the registry, not the digit, decides who may talk).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Imei)
    }

    pub fn from_u64(value: u64) -> Option<Self> {
        (value < 1_000_000_000_000_000).then_some(Imei(value))
    }

    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}", self.0)
    }
}

/// A device announcing itself at the start of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login {
    pub imei: Imei,
    /// The device's model code, when it sends one.
    pub model: Option<u16>,
}

/// One GPS fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// UTC, from the device's GPS clock.
    pub at_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: u16,
    /// Degrees clockwise from north, 0-359.
    pub course_deg: u16,
    /// The receiver had a position fix. A fix without one repeats an old or empty position and
    /// places nothing.
    pub valid: bool,
    pub satellites: Option<u8>,
    /// Ignition (ACC) on, when the device reports it.
    pub ignition: Option<bool>,
}

/// An alarm a device raised. The first five are the ones TagWatch alerts on; the rest are
/// decoded so that they are counted and shown, not mistaken for something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alarm {
    Sos,
    PowerCut,
    LowBattery,
    /// Case opened, or the device tampered with.
    Tamper,
    /// The device taken off the vehicle.
    Removed,
    /// The device felt the vehicle handled or moved.
    Vibration,
    Overspeed,
    GeofenceEnter,
    GeofenceExit,
    Geofence,
    PowerOff,
    Door,
    Acceleration,
    Braking,
    Cornering,
    Accident,
    FallDown,
    Jamming,
    /// An alarm the device flagged without saying which.
    General,
    /// A code this decoder does not know.
    Other(u16),
}

impl Alarm {
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::Sos => "sos",
            Alarm::PowerCut => "power_cut",
            Alarm::LowBattery => "low_battery",
            Alarm::Tamper => "tamper",
            Alarm::Removed => "removed",
            Alarm::Vibration => "vibration",
            Alarm::Overspeed => "overspeed",
            Alarm::GeofenceEnter => "geofence_enter",
            Alarm::GeofenceExit => "geofence_exit",
            Alarm::Geofence => "geofence",
            Alarm::PowerOff => "power_off",
            Alarm::Door => "door",
            Alarm::Acceleration => "acceleration",
            Alarm::Braking => "braking",
            Alarm::Cornering => "cornering",
            Alarm::Accident => "accident",
            Alarm::FallDown => "fall_down",
            Alarm::Jamming => "jamming",
            Alarm::General => "general",
            Alarm::Other(_) => "other",
        }
    }
}

/// Power readings, each when the message carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Power {
    /// The vehicle's supply, volts.
    pub external_v: Option<f32>,
    /// The device's own battery, volts.
    pub battery_v: Option<f32>,
    /// The device's own battery, percent.
    pub battery_pct: Option<u8>,
}

/// Everything a non-login message said that TagWatch uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub fix: Option<Fix>,
    pub alarm: Option<Alarm>,
    pub power: Power,
    /// The device's answer to a command (the text it sent back).
    pub reply_text: Option<String>,
}

/// One decoded device message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Login(Login),
    /// The device asks for the time (it has no GPS time yet); answered with UTC.
    TimeRequest,
    /// A heartbeat, fix, alarm, status or command reply.
    Report(Report),
    /// A well-formed message of a kind TagWatch does not use (cell towers, Wi-Fi scans, photos,
    /// OBD data): acknowledged where the protocol expects it, otherwise ignored.
    Unused,
}
