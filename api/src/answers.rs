//! # What the API answers: one type per answer, serialised as is and described from the type.
//!
//! The OpenAPI document takes each operation's response schema from these types (schemars), so
//! the document says what the handlers send because they send these. Times are RFC 3339 strings,
//! positions WGS 84 degrees, ids the numbers the stations and the store use.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// Describes an answer type in the OpenAPI document.
pub type AnswerSchema = fn(&mut schemars::SchemaGenerator) -> Value;

/// A `$ref` to the answer type `T`, whose schema (and those of the types in it) the generator
/// keeps for the document's `components/schemas`.
pub fn schema_of<T: JsonSchema>(generator: &mut schemars::SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// The generator whose references point into an OpenAPI document's `components/schemas`.
pub fn generator() -> schemars::SchemaGenerator {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator()
}

/// `POST /login`
#[derive(Debug, Serialize, JsonSchema)]
pub struct LoginAnswer {
    /// The bearer token (64 hex characters), shown once.
    pub token: String,
    pub username: String,
    pub role: String,
    pub expires_at: String,
}

/// `GET /me`, and an account just created (`POST /users`, with its `id`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub username: String,
    pub role: String,
}

/// What an administrator did to an account: revoked its tokens, disabled, enabled, reset.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AccountChange {
    pub username: String,
    /// Whether the account is disabled now (absent for a revocation, which leaves it as it was).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Tokens revoked by the change.
    pub revoked: u64,
}

/// A registered vehicle as its owner and the police see it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VehicleAnswer {
    pub tag: u32,
    pub plate: String,
    pub owner_name: String,
    pub owner_phone: String,
    /// The owner's account (`POST /vehicles` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Option<String>>,
}

/// `GET /me/vehicles`
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyVehicles {
    pub vehicles: Vec<VehicleAnswer>,
}

/// One line of the audit log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditLine {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub purpose: String,
    /// `answered`, or `refused: <error code>`.
    pub outcome: String,
}

/// `GET /audit`
#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditAnswer {
    pub entries: Vec<AuditLine>,
}

/// `POST /stations`
#[derive(Debug, Serialize, JsonSchema)]
pub struct StationCreated {
    pub id: u32,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// The generated key (64 hex characters), shown this once; absent when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A station's last heartbeat.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StationHealth {
    pub last_status_at: String,
    pub backlog: u32,
    pub uptime_s: u32,
    pub fw_version: u16,
    pub temp_c: i8,
    /// `mains`, `battery`, `solar` or `unknown`.
    pub power: &'static str,
    pub power_fault: bool,
    pub tags_in_range: u16,
    /// Positive: the station's clock is behind ours (network delay included).
    pub clock_skew_ms: i64,
}

/// One station in `GET /stations`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StationAnswer {
    pub id: u32,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub silent: bool,
    pub last_frame_at: Option<String>,
    pub health: Option<StationHealth>,
}

/// `GET /stations`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stations {
    pub stations: Vec<StationAnswer>,
}

/// A theft case opened (`opened_at`) or closed as recovered (`closed_at`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseAnswer {
    pub case_id: i64,
    pub tag: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
}

/// `POST /vehicles/{tag}/arm`, `.../disarm`
#[derive(Debug, Serialize, JsonSchema)]
pub struct GuardAnswer {
    pub tag: u32,
    pub armed: bool,
    /// Where and when it was armed (arming only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub armed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// `GET /vehicles/{tag}/location`
#[derive(Debug, Serialize, JsonSchema)]
pub struct LocationAnswer {
    pub tag: u32,
    pub station: u32,
    pub lat: f64,
    pub lon: f64,
    pub seen_at: String,
    /// Since when the tracker places it there (null when answered from the store).
    pub placed_since: Option<String>,
    pub heading_deg: Option<f64>,
    pub speed_mps: Option<f64>,
}

/// An alert, the same in lists, on its own and on the live stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertView {
    pub id: String,
    pub seq: i64,
    pub kind: &'static str,
    pub tag: Option<u32>,
    pub station: u32,
    pub lat: f64,
    pub lon: f64,
    /// When the sighting happened.
    pub seen_at: String,
    /// When the server raised the alert.
    pub raised_at: String,
    /// Reported over a minute after it happened (a station's backlog).
    pub late: bool,
    pub delay_s: i64,
    /// What the alert's kind adds (the vehicle's case, a fence, a companion, ...).
    pub detail: Value,
}

/// `GET /alerts`
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}
