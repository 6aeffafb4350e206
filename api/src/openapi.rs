//! # The OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! Built from one table, [`ENDPOINTS`]: method, path, who may call it, what it does, and its
//! query and body fields. The API tests check the table against the router both ways (every
//! route documented, every documented route answered), so the document cannot drift.
//!
//! Why this file is long: it is the OpenAPI document itself, endpoint by endpoint.

use crate::answers::*;
use crate::handlers::spatial::{NearAnswer, ThroughAnswer};
use serde_json::{json, Map, Value};

/// A query or body field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    /// A JSON Schema type: `string`, `integer`, `number`, `boolean`, `array`.
    pub kind: &'static str,
    pub required: bool,
    pub doc: &'static str,
}

/// One documented endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    /// Relative to `/api/v1`, with `{param}` path parameters.
    pub path: &'static str,
    /// Roles allowed, or `anyone`.
    pub who: &'static str,
    pub summary: &'static str,
    pub query: &'static [Field],
    pub body: &'static [Field],
    /// The status of a successful answer: 200, 201 for a creation, 204 with no body.
    pub status: u16,
    /// The JSON Schema of a successful answer, from its type (`None`: an object, not yet typed).
    pub answer: Option<AnswerSchema>,
}

const fn req(name: &'static str, kind: &'static str, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, kind: &'static str, doc: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        doc,
    }
}

const PURPOSE: Field = opt(
    "purpose",
    "string",
    "why (a case number or a reason: 3-200 characters, at least three letters or digits, not one \
     character repeated); required of police, audited, refusals too",
);
/// The purpose of a police-only query: required.
const POLICE_PURPOSE: Field = req(
    "purpose",
    "string",
    "why (a case number or a reason: 3-200 characters, at least three letters or digits, not one \
     character repeated); audited, refusals too",
);
const FROM: Field = opt("from", "string", "RFC 3339 start of the window");
const TO: Field = opt("to", "string", "RFC 3339 end of the window (default: now)");
const LIMIT: Field = opt("limit", "integer", "most rows in the answer");
const NONE: &[Field] = &[];
const FILTERS: [Field; 6] = [
    opt("precinct", "integer", "only alerts inside this precinct"),
    opt(
        "south",
        "number",
        "only alerts inside the box (with west, north, east)",
    ),
    opt("west", "number", "box"),
    opt("north", "number", "box"),
    opt("east", "number", "box"),
    opt("kinds", "string", "comma-separated alert kinds"),
];

const fn get(path: &'static str, who: &'static str, summary: &'static str) -> Endpoint {
    Endpoint {
        method: "get",
        path,
        who,
        summary,
        query: NONE,
        body: NONE,
        status: 200,
        answer: None,
    }
}

const fn with_query(mut e: Endpoint, query: &'static [Field]) -> Endpoint {
    e.query = query;
    e
}

const fn call(
    method: &'static str,
    path: &'static str,
    who: &'static str,
    summary: &'static str,
    body: &'static [Field],
) -> Endpoint {
    Endpoint {
        method,
        path,
        who,
        summary,
        query: NONE,
        body,
        status: 200,
        answer: None,
    }
}

/// An endpoint whose successful answer is a `T` of [`crate::answers`].
const fn answers(mut e: Endpoint, schema: AnswerSchema) -> Endpoint {
    e.answer = Some(schema);
    e
}

/// An endpoint that answers 201 with what it created.
const fn created(mut e: Endpoint) -> Endpoint {
    e.status = 201;
    e
}

/// An endpoint that answers 202: taken on, done later.
const fn accepted(mut e: Endpoint) -> Endpoint {
    e.status = 202;
    e
}

/// An endpoint that answers 204 with no body.
const fn no_content(mut e: Endpoint) -> Endpoint {
    e.status = 204;
    e
}

const POLICE: &str = "officer, dispatcher, admin";
const OWNER_OR_POLICE: &str = "police; owner for their own vehicle";

/// Every endpoint under `/api/v1`.
pub const ENDPOINTS: &[Endpoint] = &[
    answers(
        call(
            "post",
            "/login",
            "anyone",
            "Sign in: a bearer token valid for 12 hours",
            &[
                req("username", "string", "account name"),
                req("password", "string", "password"),
            ],
        ),
        schema_of::<LoginAnswer>,
    ),
    no_content(call(
        "post",
        "/logout",
        "any account",
        "Revoke the token used",
        NONE,
    )),
    answers(
        get("/me", "any", "Who the token belongs to"),
        schema_of::<AccountAnswer>,
    ),
    answers(
        get("/me/vehicles", "owner", "The caller's vehicles"),
        schema_of::<MyVehicles>,
    ),
    answers(
        created(call(
            "post",
            "/users",
            "admin",
            "Create an account",
            &[
                req("username", "string", "3-64 characters"),
                req("password", "string", "at least 10 characters"),
                req("role", "string", "owner, officer, dispatcher or admin"),
            ],
        )),
        schema_of::<AccountAnswer>,
    ),
    answers(
        get(
            "/users",
            "admin",
            "Every account with its role and live tokens",
        ),
        schema_of::<Users>,
    ),
    answers(
        call(
            "post",
            "/users/{username}/revoke",
            "admin",
            "Revoke every token of a user (their live streams end within seconds)",
            NONE,
        ),
        schema_of::<AccountChange>,
    ),
    answers(
        call(
            "post",
            "/users/{username}/disable",
            "admin",
            "Disable an account: its tokens stop working, it cannot log in",
            NONE,
        ),
        schema_of::<AccountChange>,
    ),
    answers(
        call(
            "post",
            "/users/{username}/enable",
            "admin",
            "Enable a disabled account again",
            NONE,
        ),
        schema_of::<AccountChange>,
    ),
    answers(
        call(
            "post",
            "/users/{username}/password",
            "admin",
            "Reset a user's password (every session of theirs ends)",
            &[req("password", "string", "10-1024 characters")],
        ),
        schema_of::<AccountChange>,
    ),
    no_content(call(
        "post",
        "/me/password",
        "any account",
        "Change one's own password (other sessions end)",
        &[
            req("current", "string", "the password now"),
            req("new", "string", "10-1024 characters"),
        ],
    )),
    answers(
        with_query(
            get(
                "/audit",
                "admin",
                "The audit log of movement queries (answered and refused), oldest first",
            ),
            &[
                opt("after", "integer", "entries after this id"),
                LIMIT,
                opt("actor", "string", "only this actor's entries"),
                opt("tag", "integer", "only entries about this vehicle"),
                opt("from", "string", "RFC 3339: entries at or after"),
                opt("to", "string", "RFC 3339: entries before"),
            ],
        ),
        schema_of::<AuditAnswer>,
    ),
    answers(
        get("/settings/retention", "admin", "The retention period"),
        schema_of::<Retention>,
    ),
    answers(
        call(
            "put",
            "/settings/retention",
            "admin",
            "Set the retention period",
            &[req("retention_days", "integer", "1-3650")],
        ),
        schema_of::<Retention>,
    ),
    answers(
        get("/stations", POLICE, "Every station with its health"),
        schema_of::<Stations>,
    ),
    answers(
        created(call(
            "post",
            "/stations",
            "admin",
            "Provision a station (its key is never shown again)",
            &[
                req("id", "integer", "station id"),
                req("name", "string", "name"),
                req("lat", "number", "latitude"),
                req("lon", "number", "longitude"),
                opt(
                    "key",
                    "string",
                    "64 hex characters; when absent one is generated and shown in the answer, once",
                ),
            ],
        )),
        schema_of::<StationCreated>,
    ),
    answers(
        get(
            "/trackers",
            "police; owner for their own vehicles",
            "GPS trackers with each one's latest report",
        ),
        schema_of::<Trackers>,
    ),
    answers(
        created(call(
            "post",
            "/trackers",
            "admin",
            "Register a GT06 GPS tracker fitted to a vehicle",
            &[
                req("imei", "string", "the device's IMEI, 15 digits"),
                req("tag", "integer", "the vehicle it is fitted to"),
            ],
        )),
        schema_of::<TrackerAnswer>,
    ),
    no_content(call(
        "delete",
        "/trackers/{imei}",
        "admin",
        "Remove a tracker (its history stays)",
        NONE,
    )),
    answers(
        get(
            "/vehicles/{tag}/engine",
            OWNER_OR_POLICE,
            "The vehicle's engine commands and their answers",
        ),
        schema_of::<EngineCommands>,
    ),
    answers(
        accepted(call(
            "post",
            "/vehicles/{tag}/engine",
            "police (stop: an open theft case); owner for their own vehicle (resume, after recovery)",
            "Stop or resume the engine through its GPS tracker",
            &[
                req("action", "string", "stop or resume"),
                opt("purpose", "string", "why (police: required, audited)"),
            ],
        )),
        schema_of::<EngineCommands>,
    ),
    answers(
        created(call(
            "post",
            "/vehicles",
            "admin",
            "Register a vehicle",
            &[
                req("tag", "integer", "tag id"),
                req("plate", "string", "licence plate, as on the vehicle"),
                opt("make", "string", "manufacturer, e.g. Honda"),
                opt("model", "string", "model, e.g. Wave 110"),
                opt("colour", "string", "colour, as an officer would say it"),
                req("owner_name", "string", "owner's name"),
                req("owner_phone", "string", "owner's phone"),
                opt("owner", "string", "the owner's account"),
            ],
        )),
        schema_of::<VehicleAnswer>,
    ),
    answers(
        call(
            "patch",
            "/vehicles/{tag}",
            "admin",
            "Correct a vehicle's plate, description or owner's contact (fields left out stay)",
            &[
                opt("plate", "string", "licence plate"),
                opt("make", "string", "manufacturer (empty: unknown)"),
                opt("model", "string", "model (empty: unknown)"),
                opt("colour", "string", "colour (empty: unknown)"),
                opt("owner_name", "string", "owner's name"),
                opt("owner_phone", "string", "owner's phone"),
            ],
        ),
        schema_of::<VehicleAnswer>,
    ),
    answers(
        get(
            "/cases",
            POLICE,
            "Open theft cases, newest first: vehicle, source, assignee, latest sighting",
        ),
        schema_of::<crate::handlers::cases::CaseList>,
    ),
    answers(
        get(
            "/cases/{id}",
            POLICE,
            "A case: its history (assigned, closed) and its sightings",
        ),
        schema_of::<crate::handlers::cases::CaseFile>,
    ),
    answers(
        call(
            "post",
            "/cases/{id}/assign",
            "dispatcher, admin",
            "Assign an open case to an officer (null: to nobody)",
            &[opt("username", "string", "an officer's, dispatcher's or admin's username")],
        ),
        schema_of::<crate::handlers::cases::CaseView>,
    ),
    answers(
        created(call(
            "post",
            "/webhooks",
            "admin",
            "Register a webhook: each alert of the kinds it wants is POSTed to the URL as JSON \
             signed with the secret (X-TagWatch-Signature), retried until delivered or expired",
            &[
                req("url", "string", "http or https URL"),
                opt("kinds", "array", "alert kinds (empty or absent: every kind)"),
                req("secret", "string", "signs each delivery (16-256 characters); never shown"),
            ],
        )),
        schema_of::<crate::webhooks::WebhookView>,
    ),
    answers(
        get("/webhooks", "admin", "The webhooks in service (never their secrets)"),
        schema_of::<crate::webhooks::WebhookList>,
    ),
    no_content(call(
        "delete",
        "/webhooks/{id}",
        "admin",
        "Remove a webhook; its queued deliveries are cancelled",
        NONE,
    )),
    answers(
        with_query(
            get(
                "/webhooks/{id}/deliveries",
                "admin",
                "A webhook's delivery log, newest first: state, attempts, last outcome",
            ),
            &[
                opt("before", "integer", "deliveries below this id"),
                LIMIT,
            ],
        ),
        schema_of::<crate::webhooks::DeliveryLog>,
    ),
    answers(
        call(
            "post",
            "/hotlist",
            "admin, dispatcher",
            "Import a stolen-vehicle list (CSV): opens or updates theft cases; every refused line \
             with why; entries expire",
            NONE,
        ),
        schema_of::<crate::hotlist::HotlistAnswer>,
    ),
    answers(
        with_query(
            get(
                "/vehicles/search",
                POLICE,
                "Vehicles by plate (a prefix; separators and case ignored), with description, \
                 stolen or not, and last location; audited",
            ),
            &[
                req("plate", "string", "the plate, or its start (at most 20 vehicles answered)"),
                POLICE_PURPOSE,
            ],
        ),
        schema_of::<PlateMatches>,
    ),
    answers(
        with_query(
            get("/vehicles", "admin", "Registered vehicles by tag"),
            &[opt("after", "integer", "tags after this one"), LIMIT],
        ),
        schema_of::<VehiclePageAnswer>,
    ),
    answers(
        created(call(
            "post",
            "/vehicles/{tag}/theft",
            OWNER_OR_POLICE,
            "Report a theft",
            &[
                opt("note", "string", "what happened"),
                opt(
                    "last_seen_at",
                    "string",
                    "RFC 3339: when the owner last saw it (default: when they last armed, \
                     disarmed or recovered it, else 24 hours ago); the latest sighting since is alerted",
                ),
                opt("last_seen_place", "string", "where"),
            ],
        )),
        schema_of::<CaseAnswer>,
    ),
    answers(
        call(
            "post",
            "/vehicles/{tag}/recovered",
            OWNER_OR_POLICE,
            "Close the theft case",
            NONE,
        ),
        schema_of::<CaseAnswer>,
    ),
    answers(
        call(
            "post",
            "/vehicles/{tag}/arm",
            OWNER_OR_POLICE,
            "Guard mode while parked",
            NONE,
        ),
        schema_of::<GuardAnswer>,
    ),
    answers(
        call(
            "post",
            "/vehicles/{tag}/disarm",
            OWNER_OR_POLICE,
            "End guard mode",
            NONE,
        ),
        schema_of::<GuardAnswer>,
    ),
    answers(
        with_query(
            get(
                "/vehicles/{tag}/location",
                OWNER_OR_POLICE,
                "Last location, heading and speed",
            ),
            &[PURPOSE],
        ),
        schema_of::<LocationAnswer>,
    ),
    answers(
        with_query(
            get(
                "/vehicles/{tag}/track",
                OWNER_OR_POLICE,
                "Track as GeoJSON, or exported as CSV, GPX or KML",
            ),
            &[
                FROM,
                TO,
                PURPOSE,
                opt("format", "string", "geojson (default), csv, gpx or kml: a file to download"),
            ],
        ),
        schema_of::<Track>,
    ),
    answers(
        with_query(
            get(
                "/vehicles/{tag}/companions",
                POLICE,
                "Tags travelling with this one",
            ),
            &[
                FROM,
                TO,
                opt("within_s", "integer", "arrival gap, seconds (default 60)"),
                opt("min_times", "integer", "stations in common (default 3)"),
                LIMIT,
                POLICE_PURPOSE,
            ],
        ),
        schema_of::<Companions>,
    ),
    answers(
        get(
            "/vehicles/{tag}/pair",
            "owner (their own), admin",
            "The tag's companion",
        ),
        schema_of::<PairView>,
    ),
    answers(
        call(
            "put",
            "/vehicles/{tag}/pair",
            "owner (both tags theirs), admin",
            "Pair with a companion tag",
            &[req("companion", "integer", "the companion's tag")],
        ),
        schema_of::<PairView>,
    ),
    no_content(call(
        "delete",
        "/vehicles/{tag}/pair",
        "owner (their own), admin",
        "Unpair",
        NONE,
    )),
    answers(
        with_query(
            get(
                "/alerts",
                "police: all; owner: their vehicles'",
                "Stored alerts",
            ),
            &[
                opt(
                    "after",
                    "integer",
                    "alerts after this sequence number, oldest first",
                ),
                opt(
                    "before",
                    "integer",
                    "alerts below this sequence number, newest first (the latest: a number above \
                     every alert's, e.g. 9007199254740991); with `after`, between the two",
                ),
                LIMIT,
                opt(
                    "tag",
                    "integer",
                    "one tag's alerts, newest first (police: with a purpose)",
                ),
                PURPOSE,
                FILTERS[0],
                FILTERS[1],
                FILTERS[2],
                FILTERS[3],
                FILTERS[4],
                FILTERS[5],
            ],
        ),
        schema_of::<AlertList>,
    ),
    with_query(
        get(
            "/alerts/stream",
            "police: all; owner: their vehicles'",
            "Live alerts (SSE); Last-Event-ID resumes",
        ),
        &[
            opt(
                "after",
                "integer",
                "replay alerts after this sequence number first",
            ),
            FILTERS[0],
            FILTERS[1],
            FILTERS[2],
            FILTERS[3],
            FILTERS[4],
            FILTERS[5],
        ],
    ),
    answers(
        get(
            "/alerts/{seq}",
            POLICE,
            "An alert, its decisions and the nearest available units",
        ),
        schema_of::<AlertFile>,
    ),
    answers(
        created(call(
            "post",
            "/alerts/{seq}/accept",
            POLICE,
            "A true hit",
            &[req("reason", "string", "why")],
        )),
        schema_of::<ActionView>,
    ),
    answers(
        created(call(
            "post",
            "/alerts/{seq}/reject",
            POLICE,
            "A false hit",
            &[req("reason", "string", "why")],
        )),
        schema_of::<ActionView>,
    ),
    answers(
        created(call(
            "post",
            "/alerts/{seq}/dispatch",
            "dispatcher, admin",
            "Send an available unit",
            &[
                req("unit", "string", "call sign"),
                opt("note", "string", "instructions"),
            ],
        )),
        schema_of::<ActionView>,
    ),
    answers(
        call(
            "post",
            "/patrol/position",
            "officer, dispatcher",
            "A patrol unit's position",
            &[
                req("unit", "string", "call sign"),
                req("lat", "number", "latitude"),
                req("lon", "number", "longitude"),
                opt("available", "boolean", "free to take a job (default true)"),
            ],
        ),
        schema_of::<UnitView>,
    ),
    answers(
        get(
            "/patrol/units",
            POLICE,
            "Every patrol unit and its last report",
        ),
        schema_of::<Units>,
    ),
    answers(
        with_query(
            get(
                "/tags/near",
                POLICE,
                "Tags last heard near a point, nearest first",
            ),
            &[
                req("lat", "number", "latitude"),
                req("lon", "number", "longitude"),
                req("radius_m", "number", "up to 5000"),
                opt("minutes", "integer", "how far back (default 15)"),
                LIMIT,
                POLICE_PURPOSE,
            ],
        ),
        schema_of::<NearAnswer>,
    ),
    answers(
        with_query(
            get(
                "/tags/through",
                POLICE,
                "Tags that passed through a box in a window",
            ),
            &[
                req("south", "number", "box"),
                req("west", "number", "box"),
                req("north", "number", "box"),
                req("east", "number", "box"),
                req("from", "string", "RFC 3339"),
                req("to", "string", "RFC 3339 (window up to 24 h)"),
                LIMIT,
                POLICE_PURPOSE,
            ],
        ),
        schema_of::<ThroughAnswer>,
    ),
    answers(
        with_query(
            get("/dens", POLICE, "Where stolen tags go dark"),
            &[
                opt(
                    "dark_minutes",
                    "integer",
                    "not heard for this long (default 30)",
                ),
                opt("radius_m", "number", "cluster radius (default 300)"),
                opt("min_tags", "integer", "smallest cluster (default 2)"),
                POLICE_PURPOSE,
            ],
        ),
        schema_of::<Dens>,
    ),
    answers(
        get("/geofences", POLICE, "Every geofence"),
        schema_of::<Fences>,
    ),
    answers(
        created(call(
            "post",
            "/geofences",
            "admin",
            "Watch tags entering or leaving an area",
            &[
                req("name", "string", "name"),
                req("area", "array", "[[lat, lon], ...], 3-256 vertices"),
                req("tags", "array", "tags to watch"),
                opt("on_enter", "boolean", "alert on entering"),
                opt("on_leave", "boolean", "alert on leaving"),
            ],
        )),
        schema_of::<FenceView>,
    ),
    no_content(call(
        "delete",
        "/geofences/{id}",
        "admin",
        "Remove a geofence",
        NONE,
    )),
    answers(
        get("/precincts", POLICE, "Every precinct"),
        schema_of::<Precincts>,
    ),
    answers(
        created(call(
            "post",
            "/precincts",
            "admin",
            "A police district to filter alerts by",
            &[
                req("name", "string", "unique name"),
                req("area", "array", "[[lat, lon], ...], 3-256 vertices"),
            ],
        )),
        schema_of::<PrecinctView>,
    ),
    get("/openapi.json", "anyone", "This document"),
];

/// The ranges and lengths the handlers enforce, by field name, so that a client (or a fuzzer
/// reading this document) knows what is valid without trying.
fn constrained(name: &str, kind: &str) -> Value {
    let mut schema = json!({ "type": kind });
    let bounds = match name {
        "lat" | "south" | "north" => json!({ "minimum": -90, "maximum": 90 }),
        "lon" | "west" | "east" => json!({ "minimum": -180, "maximum": 180 }),
        // The smallest page of any endpoint (alerts, audit: 1,000; areas: 5,000).
        "limit" => json!({ "minimum": 1, "maximum": 1000 }),
        "min_tags" => json!({ "minimum": 1, "maximum": 1000 }),
        "after" => json!({ "minimum": 0, "maximum": i64::MAX }),
        "before" => json!({ "minimum": 1, "maximum": i64::MAX }),
        "minutes" | "dark_minutes" => json!({ "minimum": 1, "maximum": 1440 }),
        "min_times" => json!({ "minimum": 1, "maximum": 100 }),
        "within_s" => json!({ "minimum": 1, "maximum": 600 }),
        "role" => json!({ "enum": ["owner", "officer", "dispatcher", "admin"] }),
        "kinds" if kind == "array" => {
            let kinds: Vec<&str> = tagwatch_model::AlertKind::ALL
                .iter()
                .map(|k| k.as_str())
                .collect();
            json!({ "maxItems": 32, "items": { "type": "string", "enum": kinds } })
        }
        "url" => {
            json!({ "format": "uri", "minLength": 8, "maxLength": 2048, "pattern": "^https?://[^/@\\s]+" })
        }
        "secret" => json!({ "minLength": 16, "maxLength": 256 }),
        "kinds" => {
            let kind = tagwatch_model::AlertKind::ALL.map(|k| k.as_str()).join("|");
            json!({ "pattern": format!("^ *({kind}) *(, *({kind}) *)*$") })
        }
        "unit" => {
            json!({ "minLength": 1, "maxLength": 32, "pattern": "^ *[A-Za-z0-9_-][A-Za-z0-9_ -]*$" })
        }
        // At least two letters or digits besides separators (spaces, hyphens, dots, `·`).
        "plate" => json!({ "minLength": 2, "maxLength": 20, "pattern": "[^\\s.·-].*[^\\s.·-]" }),
        "make" | "model" | "colour" => json!({ "maxLength": 200 }),
        "reason" | "name" | "owner_name" | "owner_phone" | "owner" => {
            json!({ "minLength": 1, "maxLength": 200, "pattern": "\\S" })
        }
        "tag" | "companion" if kind == "integer" => {
            json!({ "minimum": 1, "maximum": u32::MAX })
        }
        // Station ids from 3,000,000,000 up are GPS trackers', assigned by the server.
        "id" if kind == "integer" => {
            json!({ "minimum": 1, "maximum": tagwatch_model::DEVICE_STATIONS_FROM - 1 })
        }
        "imei" => json!({ "pattern": "^[0-9]{15}$" }),
        "action" => json!({ "enum": ["stop", "resume"] }),
        "format" => json!({ "enum": ["geojson", "csv", "gpx", "kml"] }),
        "seq" if kind == "integer" => json!({ "minimum": 1, "maximum": i64::MAX }),
        "radius_m" => {
            json!({ "exclusiveMinimum": 0, "maximum": crate::handlers::spatial::MAX_RADIUS_M })
        }
        "retention_days" => json!({ "type": "integer", "minimum": 1, "maximum": 3650 }),
        "tags" => json!({ "minItems": 1, "maxItems": crate::handlers::watch::MAX_FENCE_TAGS,
                          "items": { "type": "integer", "minimum": 1, "maximum": u32::MAX } }),
        "area" => json!({ "minItems": 3, "maxItems": 256, "items": { "type": "array",
            "prefixItems": [{ "type": "number", "minimum": -90, "maximum": 90 },
                            { "type": "number", "minimum": -180, "maximum": 180 }],
            "minItems": 2, "maxItems": 2 } }),
        "purpose" => json!({ "minLength": 3, "maxLength": tagwatch_model::MAX_PURPOSE_CHARS,
                             "pattern": "[0-9A-Za-z].*[0-9A-Za-z].*[0-9A-Za-z]" }),
        "password" | "new" => json!({ "minLength": 10, "maxLength": 1024 }),
        "username" => json!({ "minLength": 3, "maxLength": 64, "pattern": "^[A-Za-z0-9._@-]+$" }),
        "key" => json!({ "pattern": "^[0-9a-fA-F]{64}$" }),
        "from" | "to" | "last_seen_at" => json!({ "format": "date-time" }),
        // Optional, and blank means none.
        "note" | "last_seen_place" => json!({ "maxLength": 200 }),
        _ => json!({}),
    };
    if let (Some(schema), Some(bounds)) = (schema.as_object_mut(), bounds.as_object()) {
        schema.extend(bounds.clone());
    }
    schema
}

fn schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    for f in fields {
        let mut property = constrained(f.name, f.kind);
        if !f.required && f.kind != "boolean" {
            // An optional field may also be given as null, which means "not given" (flags take
            // a boolean or nothing).
            property["type"] = json!([property["type"].clone(), "null"]);
        }
        property["description"] = json!(f.doc);
        properties.insert(f.name.into(), property);
    }
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn operation(e: &Endpoint, generator: &mut schemars::SchemaGenerator) -> Value {
    let mut parameters: Vec<Value> = e
        .path
        .split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let kind = if matches!(name, "tag" | "seq" | "id") { "integer" } else { "string" };
            json!({ "name": name, "in": "path", "required": true, "schema": constrained(name, kind) })
        })
        .collect();
    parameters.extend(e.query.iter().map(|f| {
        json!({ "name": f.name, "in": "query", "required": f.required, "description": f.doc,
                "schema": constrained(f.name, f.kind) })
    }));
    let error = |description: &str| {
        json!({ "description": description,
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let success = match (e.status, e.path) {
        (204, _) => json!({ "description": "Done; no body" }),
        // Each event's data: an alert's JSON (`alert`), or a line of text (`error`,
        // `session_ended`).
        (_, "/alerts/stream") => json!({
            "description": "Server-Sent Events: `alert` events (id = the alert's sequence number), \
                            `session_ended` when the token stops being valid",
            "content": { "text/event-stream": { "schema": {} } },
        }),
        (_, "/vehicles/{tag}/track") => json!({
            "description": "GeoJSON: one Point feature per visit (per fix for a GPS tracker), in \
                            time order; with `format`, the same points as a file (CSV, GPX, KML)",
            "content": {
                "application/geo+json": {
                    "schema": e.answer.map_or_else(|| json!({ "type": "object" }), |of| of(generator))
                },
                "text/csv": { "schema": { "type": "string" } },
                "application/gpx+xml": { "schema": { "type": "string" } },
                "application/vnd.google-earth.kml+xml": { "schema": { "type": "string" } },
            },
        }),
        (status, _) => {
            let schema = e
                .answer
                .map_or_else(|| json!({ "type": "object" }), |of| of(generator));
            json!({ "description": match status { 201 => "Created", 202 => "Accepted", _ => "OK" },
                    "content": { "application/json": { "schema": schema } } })
        }
    };
    let mut too_many = error("Over a rate limit: wait `Retry-After` seconds");
    too_many["headers"] =
        json!({ "Retry-After": { "schema": { "type": "integer", "minimum": 1 } } });
    let mut responses = Map::new();
    responses.insert(e.status.to_string(), success);
    responses.insert(
        "400".into(),
        error("A parameter or body field is invalid (named in `field`)"),
    );
    responses.insert(
        "401".into(),
        error("No valid token, or a wrong username or password"),
    );
    responses.insert(
        "403".into(),
        error("The caller's role may not do this, or the account is disabled"),
    );
    responses.insert(
        "404".into(),
        error("No such resource (or none the caller may see)"),
    );
    responses.insert("405".into(), error("The path does not take this method"));
    responses.insert("409".into(), error("It conflicts with the current state"));
    responses.insert("413".into(), error("The body is larger than 64 KiB"));
    responses.insert("429".into(), too_many);
    responses.insert(
        "503".into(),
        error("The pipeline behind the API is unavailable"),
    );
    let mut op = json!({
        "summary": e.summary,
        "description": format!("Who: {}.", e.who),
        "parameters": parameters,
        "responses": responses,
    });
    if !e.body.is_empty() {
        // A body of optional fields only may be left out (a theft report without a note).
        let required = e.body.iter().any(|f| f.required);
        op["requestBody"] = json!({ "required": required, "content": { "application/json": { "schema": schema(e.body) } } });
    }
    if e.path == "/hotlist" {
        op["requestBody"] = json!({ "required": true, "content": { "text/csv": { "schema": {
            "type": "string",
            "description": "a header naming the columns (any order): plate and/or tag, reason, \
                            reported_at, expires_at (optional); times RFC 3339 or a date; at \
                            most 50,000 lines and 4 MiB",
        } } } });
    }
    if e.who == "anyone" {
        op["security"] = json!([]);
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut generator = generator();
    for e in ENDPOINTS {
        let item = paths
            .entry(format!("/api/v1{}", e.path))
            .or_insert_with(|| json!({}));
        item[e.method] = operation(e, &mut generator);
    }
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "TagWatch API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stolen-vehicle tracking: stations, vehicles, alerts, tracks and spatial queries. \
                            Every movement query states a purpose and is audited.",
        },
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string" },
                        "field": { "type": "string" },
                        "message": { "type": "string" },
                    }, "required": ["code", "message"] } },
                    "required": ["error"],
                },
            },
        },
        "paths": paths,
    });
    // The answer types, and the types inside them, referenced from the operations.
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        schemas.extend(generator.take_definitions(true));
    }
    document
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}
