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
    pub make: String,
    pub model: String,
    pub colour: String,
    pub owner_name: String,
    pub owner_phone: String,
    /// The owner's account (`POST /vehicles` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Option<String>>,
}

impl VehicleAnswer {
    /// `owner`: the owner's account, said only where it was just set.
    pub fn of(vehicle: tagwatch_model::Vehicle, owner: Option<Option<String>>) -> Self {
        VehicleAnswer {
            tag: vehicle.tag.0,
            plate: vehicle.plate,
            make: vehicle.make,
            model: vehicle.model,
            colour: vehicle.colour,
            owner_name: vehicle.owner_name,
            owner_phone: vehicle.owner_phone,
            owner,
        }
    }
}

/// How an officer recognises a vehicle in an answer (an alert, a query's results): its plate
/// and description, and whether it is reported stolen now. Never the owner's contact.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VehicleLabel {
    pub plate: String,
    /// Empty when the registration did not say.
    pub make: String,
    pub model: String,
    pub colour: String,
    /// It has an open theft case.
    pub stolen: bool,
}

impl VehicleLabel {
    pub fn of(vehicle: &tagwatch_model::Vehicle, stolen: bool) -> Self {
        VehicleLabel {
            plate: vehicle.plate.clone(),
            make: vehicle.make.clone(),
            model: vehicle.model.clone(),
            colour: vehicle.colour.clone(),
            stolen,
        }
    }
}

/// `GET /vehicles/search`: vehicles by plate.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PlateMatches {
    pub vehicles: Vec<PlateMatch>,
    /// More than the 20 answered matched: type more of the plate.
    pub truncated: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlateMatch {
    pub tag: u32,
    pub vehicle: VehicleLabel,
    /// Where it was last placed (null: never heard).
    pub location: Option<LocationAnswer>,
}

/// `GET /me/vehicles`
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyVehicles {
    pub vehicles: Vec<MyVehicle>,
}

/// An owner's vehicle with its guard and theft state.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MyVehicle {
    #[serde(flatten)]
    pub vehicle: VehicleAnswer,
    /// When it was armed, if it is armed now.
    pub armed_at: Option<String>,
    /// Reported stolen (an open theft case).
    pub stolen: bool,
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
    /// The station's clock minus ours, as its last heartbeat showed (positive: ahead; as the
    /// `station_clock_skew` alert gives it; network delay included).
    pub clock_skew_ms: i64,
}

/// One station in `GET /stations`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StationAnswer {
    pub id: u32,
    pub name: String,
    /// Where the station is: its surveyed place, or a mobile reader's latest GPS fix.
    pub lat: f64,
    pub lon: f64,
    /// A mobile reader (a patrol car or handheld): it sends its position in its frames.
    pub mobile: bool,
    /// When a mobile reader was at `lat`/`lon` (its latest fix); absent for a fixed station.
    pub position_at: Option<String>,
    pub silent: bool,
    pub last_frame_at: Option<String>,
    pub health: Option<StationHealth>,
}

/// `GET /stations`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Stations {
    pub stations: Vec<StationAnswer>,
    /// On a cluster's API node, the partitions whose shards did not answer in time: a station's
    /// last frame and a reader's position may be older than they are. Absent when all answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_partitions: Vec<u16>,
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
    /// What placed it: `station` (a roadside station or a patrol car's reader) or `gps` (its
    /// own GPS tracker).
    pub source: &'static str,
    /// The tracker's fix, with the speed and course the device measured (`source` = `gps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gps: Option<TrackerFix>,
}

/// What placed a read made by `station`.
pub fn source_of(station: u32) -> &'static str {
    if tagwatch_model::StationId(station).is_device() {
        "gps"
    } else {
        "station"
    }
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
    /// The vehicle of a tag's alert: plate, description, stolen now (absent for a station's
    /// alert, or a tag no longer registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vehicle: Option<VehicleLabel>,
    /// In police's lists: `open`, `accepted` or `rejected` (the last decision).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

/// A sighting reported this long after it happened (a station's backlog) is marked late.
pub const LATE_AFTER_MS: i64 = 60_000;

impl From<&tagwatch_model::Alert> for AlertView {
    /// The same whether sent live or replayed. `seen_at` is always the sighting's own time;
    /// `late` and `delay_s` say when it reached the server much later.
    fn from(alert: &tagwatch_model::Alert) -> Self {
        use tagwatch_model::time::to_rfc3339;
        let delay_ms = (alert.raised_at_ms - alert.seen_at_ms).max(0);
        AlertView {
            id: alert.id.0.clone(),
            seq: alert.seq,
            kind: alert.kind.as_str(),
            tag: alert.tag.map(|t| t.0),
            station: alert.station.0,
            lat: alert.position.lat,
            lon: alert.position.lon,
            seen_at: to_rfc3339(alert.seen_at_ms),
            raised_at: to_rfc3339(alert.raised_at_ms),
            late: delay_ms > LATE_AFTER_MS,
            delay_s: delay_ms / 1000,
            detail: serde_json::to_value(&alert.detail).unwrap_or_default(),
            vehicle: None,
            status: None,
        }
    }
}

impl AlertView {
    /// An alert from a GPS tracker names the device in its detail (`detail.device`: its IMEI);
    /// the alert's place and time are the fix's.
    pub fn of(
        alert: &tagwatch_model::Alert,
        devices: &tagwatch_devices::registry::Registry,
    ) -> Self {
        let mut view = Self::from(alert);
        if alert.station.is_device() {
            if let (Some(imei), Some(detail)) = (
                devices.imei_of_station(alert.station),
                view.detail.as_object_mut(),
            ) {
                detail.insert("device".into(), Value::String(imei.to_string()));
            }
        }
        view
    }
}

/// `GET /healthz`
#[derive(Debug, Serialize, JsonSchema)]
pub struct HealthAnswer {
    /// `ok`, or `store_unavailable` (then the status is 503).
    pub status: &'static str,
    pub store_ok: bool,
    /// The last commit of the store, if any since start.
    pub last_commit: Option<String>,
    /// Frames applied and waiting for their commit.
    pub frames_in_flight: usize,
    /// Frames waiting to be applied.
    pub queue_depth: usize,
    /// Stations with a key.
    pub stations: usize,
}

/// `GET /alerts`
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

/// What an officer did about an alert.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionView {
    pub id: i64,
    /// `accepted`, `rejected` or `dispatched`.
    pub action: &'static str,
    /// The unit sent, for a dispatch.
    pub unit: Option<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
}

/// A patrol unit and where it last said it was.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UnitView {
    pub unit: String,
    pub officer: String,
    pub lat: f64,
    pub lon: f64,
    pub available: bool,
    pub reported_at: String,
    /// From the alert asked about, metres (null outside an alert).
    pub distance_m: Option<f64>,
}

/// `GET /alerts/{seq}`: the alert, what was done about it, and who is near.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AlertFile {
    #[serde(flatten)]
    pub alert: AlertView,
    /// `open`, `accepted` or `rejected` (the last decision).
    pub status: &'static str,
    pub actions: Vec<ActionView>,
    /// The three nearest available units that reported in the last 15 minutes, nearest to the
    /// vehicle first (its latest sighting, if heard since the alert).
    pub nearest_units: Vec<UnitView>,
}

/// `GET /patrol/units`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Units {
    pub units: Vec<UnitView>,
}

/// A geofence: tags watched entering or leaving an area.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FenceView {
    pub id: i64,
    pub name: String,
    /// `[lat, lon]` vertices.
    pub area: Vec<[f64; 2]>,
    pub tags: Vec<u32>,
    pub on_enter: bool,
    pub on_leave: bool,
}

/// `GET /geofences`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Fences {
    pub geofences: Vec<FenceView>,
}

/// A vehicle and the companion tag it must be seen with.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PairView {
    pub tag: u32,
    pub companion: u32,
}

/// An account as an administrator sees it (never its password hash).
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub created_at: String,
    /// Tokens neither expired nor revoked.
    pub live_tokens: i64,
}

/// `GET /users`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Users {
    pub users: Vec<UserView>,
}

/// A registered vehicle as an administrator sees it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VehicleRowView {
    pub tag: u32,
    pub plate: String,
    pub make: String,
    pub model: String,
    pub colour: String,
    pub owner_name: String,
    pub owner_phone: String,
    pub owner: Option<String>,
    pub stolen: bool,
}

/// `GET /vehicles`: a page, and where the next one starts (null: this was the last).
#[derive(Debug, Serialize, JsonSchema)]
pub struct VehiclePageAnswer {
    pub vehicles: Vec<VehicleRowView>,
    pub next_after: Option<u32>,
}

/// `GET`/`PUT /settings/retention`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Retention {
    pub retention_days: u32,
}

/// A precinct (created: without its `area`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct PrecinctView {
    pub id: i64,
    pub name: String,
    /// `[lat, lon]` vertices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub area: Option<Vec<[f64; 2]>>,
}

/// `GET /precincts`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Precincts {
    pub precincts: Vec<PrecinctView>,
}

/// A tag that arrived at the same stations as the one asked about.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Companion {
    pub tag: u32,
    /// At how many of the stations.
    pub times: usize,
    pub stations: Vec<u32>,
}

/// `GET /vehicles/{tag}/companions`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Companions {
    pub tag: u32,
    pub companions: Vec<Companion>,
    /// On a cluster's API node, the partitions whose shards did not answer in time: their
    /// vehicles are missing from the companions. Absent when every partition answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_partitions: Vec<u16>,
}

/// A stolen vehicle gone dark: where it was last heard.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DarkTag {
    pub tag: u32,
    pub station: u32,
    pub last_seen: String,
}

/// A cluster of places where stolen vehicles went dark.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Den {
    pub lat: f64,
    pub lon: f64,
    pub tags: Vec<DarkTag>,
}

/// `GET /dens`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Dens {
    pub dens: Vec<Den>,
    /// On a cluster's API node, the partitions whose shards did not answer in time: their
    /// stolen vehicles are missing from the dens. Absent when every partition answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_partitions: Vec<u16>,
}

/// A visit on a track: GeoJSON point feature.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackFeature {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub geometry: PointGeometry,
    pub properties: TrackVisit,
}

/// GeoJSON point: `coordinates` are `[lon, lat]`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PointGeometry {
    /// Always `Point`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub coordinates: [f64; 2],
}

/// What a visit adds to its point.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackVisit {
    pub station: u32,
    /// `station` or `gps`: a GPS tracker's visit is one point per fix it kept (a fix at least
    /// 10 m or a minute from the one before).
    pub source: &'static str,
    pub first_seen: String,
    pub last_seen: String,
    pub best_rssi: i8,
    pub reads: u32,
}

/// The window a track covers, and whether it held more visits than answered.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackWindow {
    pub tag: u32,
    pub from: String,
    pub to: String,
    pub truncated: bool,
}

/// `GET /vehicles/{tag}/track`: a GeoJSON FeatureCollection, one point per visit, in time order.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Track {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub properties: TrackWindow,
    pub features: Vec<TrackFeature>,
}

/// A GPS tracker's latest fix.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackerFix {
    pub at: String,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: u16,
    pub course_deg: u16,
}

/// What a GPS tracker last reported.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackerReport {
    /// When the server received it.
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<TrackerFix>,
    /// The latest alarm it raised (`sos`, `power_cut`, `low_battery`, `tamper`, `removed`,
    /// `vibration`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<String>,
    /// The vehicle's supply, volts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_v: Option<f32>,
    /// The device's own battery, volts and percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_v: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<u8>,
}

/// A GPS tracker fitted to a vehicle.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TrackerAnswer {
    pub imei: String,
    pub tag: u32,
    /// The station its fixes are reported as (3,000,000,000 and up).
    pub station: u32,
    pub protocol: String,
    pub connected: bool,
    pub last_report: Option<TrackerReport>,
}

/// `GET /trackers`
#[derive(Debug, Serialize, JsonSchema)]
pub struct Trackers {
    pub trackers: Vec<TrackerAnswer>,
}

/// An engine command and what became of it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EngineCommandAnswer {
    pub id: i64,
    pub imei: String,
    /// `stop` or `resume`.
    pub action: String,
    /// `queued` (waiting for the device to be connected and, for a stop, slow), `sent`, or
    /// `answered` (`answer` holds the device's text).
    pub state: &'static str,
    pub requested_by: String,
    pub requested_at: String,
    pub sent_at: Option<String>,
    pub answered_at: Option<String>,
    pub answer: Option<String>,
}

/// `GET /vehicles/{tag}/engine`, `POST /vehicles/{tag}/engine`
#[derive(Debug, Serialize, JsonSchema)]
pub struct EngineCommands {
    pub commands: Vec<EngineCommandAnswer>,
}
