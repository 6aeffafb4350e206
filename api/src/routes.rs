//! # Endpoint handlers: validate, act, answer in JSON.

use crate::answers::{
    AlertList, CaseAnswer, GuardAnswer, LocationAnswer, StationAnswer, StationCreated,
    StationHealth, Stations, VehicleAnswer,
};
use crate::audit::{accessible_vehicle, audit_movements, checked_params, movement_query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{id_u32, tag_from_path, text, time_param, Body};
use crate::ApiState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{GeoPoint, Role, Station, StationId, StationKey, TagId, Vehicle};
use tagwatch_tracker::{Command, LastSeen};

/// How far a theft report without `last_seen_at` looks back when its owner never armed,
/// disarmed or recovered the vehicle.
const DEFAULT_LOOK_BACK_MS: i64 = 24 * 3_600_000;

pub(crate) async fn tell_tracker(state: &ApiState, command: Command) -> Result<(), ApiError> {
    state
        .tracker
        .send(command)
        .await
        .map_err(|_| ApiError::Unavailable)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewStation {
    id: i64,
    name: String,
    lat: f64,
    lon: f64,
    /// 64 hex characters; generated (and shown in the answer, once) when absent.
    key: Option<String>,
}

/// `POST /api/v1/stations`
pub async fn create_station(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewStation>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let id = StationId(id_u32("id", new.id)?);
    let name = text("name", new.name)?;
    let position = crate::spatial::point(new.lat, new.lon)?;
    let (key, generated) = match new.key.as_deref() {
        Some(hex) => (
            StationKey::from_hex(hex).map_err(|e| ApiError::field("key", e.to_string()))?,
            false,
        ),
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| ApiError::Internal(format!("randomness: {e}")))?;
            (StationKey(bytes), true)
        }
    };
    let station = Station { id, name, position };
    state.store.insert_station(&station, &key, now_ms()).await?;
    // The tracker learns the position before the gateway accepts the station's frames.
    tell_tracker(&state, Command::Station(station.clone())).await?;
    // Shown once, in this answer, when the server made it.
    let shown = generated.then(|| key.to_hex());
    state.keys.insert(id, key);
    tracing::info!(station = %id, "station provisioned");
    let answer = StationCreated {
        id: id.0,
        name: station.name,
        lat: position.lat,
        lon: position.lon,
        key: shown,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// A station that has sent no frame (a heartbeat every 30 s, detections while tags pass) for
/// this long is reported silent.
const SILENT_AFTER_MS: i64 = 90_000;

/// `GET /api/v1/stations` (police): every station with its health from its last heartbeat.
pub async fn list_stations(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Stations>, ApiError> {
    caller.require(&[Role::Officer, Role::Dispatcher, Role::Admin])?;
    let now = now_ms();
    let stations = state.store.stations_health().await?;
    let ids: Vec<StationId> = stations.iter().map(|(s, _)| s.id).collect();
    let (last_frames, readers) = crate::ask_tracker(&state, move |tracker| {
        let last_frames: Vec<Option<i64>> = ids
            .iter()
            .map(|&id| tracker.station_last_frame(id))
            .collect();
        let readers: HashMap<StationId, (i64, GeoPoint)> = tracker
            .reader_positions()
            .into_iter()
            .map(|(id, at, position)| (id, (at, position)))
            .collect();
        (last_frames, readers)
    })
    .await?;
    let stations = stations
        .into_iter()
        .zip(last_frames)
        .map(|((station, status), last_frame)| {
            // A mobile reader is where its latest GPS fix says, not at its surveyed place.
            let fix = readers.get(&station.id);
            let position = fix.map_or(station.position, |&(_, p)| p);
            let heard_at = status.as_ref().map(|s| s.received_at_ms).max(last_frame);
            let silent = heard_at.is_none_or(|at| now - at > SILENT_AFTER_MS);
            let health = status.map(|s| StationHealth {
                last_status_at: to_rfc3339(s.received_at_ms),
                backlog: s.backlog,
                uptime_s: s.uptime_s,
                fw_version: s.fw_version,
                temp_c: s.temp_c,
                power: match s.power & 0x7f {
                    0 => "mains",
                    1 => "battery",
                    2 => "solar",
                    _ => "unknown",
                },
                power_fault: s.power & 0x80 != 0,
                tags_in_range: s.tags_in_range,
                clock_skew_ms: s.station_time_ms - s.received_at_ms,
            });
            StationAnswer {
                id: station.id.0,
                name: station.name,
                lat: position.lat,
                lon: position.lon,
                mobile: fix.is_some(),
                position_at: fix.map(|&(at, _)| to_rfc3339(at)),
                silent,
                last_frame_at: last_frame.map(to_rfc3339),
                health,
            }
        })
        .collect();
    Ok(Json(Stations { stations }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVehicle {
    tag: i64,
    plate: String,
    owner_name: String,
    owner_phone: String,
    /// The username of the owner's account, if they have one.
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /api/v1/vehicles` (admin: vehicles are registered at the registration desk)
pub async fn create_vehicle(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewVehicle>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let vehicle = Vehicle {
        tag: TagId(id_u32("tag", new.tag)?),
        plate: text("plate", new.plate)?,
        owner_name: text("owner_name", new.owner_name)?,
        owner_phone: text("owner_phone", new.owner_phone)?,
    };
    let owner = match new.owner.as_deref() {
        Some(username) => {
            let user = state
                .store
                .user_by_name(username)
                .await?
                .ok_or_else(|| ApiError::field("owner", format!("no user {username:?}")))?;
            if user.role != Role::Owner {
                return Err(ApiError::field(
                    "owner",
                    format!("{username:?} is not an owner"),
                ));
            }
            Some(user)
        }
        None => None,
    };
    state.store.insert_vehicle(&vehicle, now_ms()).await?;
    if let Some(user) = &owner {
        state.store.set_vehicle_owner(vehicle.tag, user.id).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(VehicleAnswer {
            tag: vehicle.tag.0,
            plate: vehicle.plate,
            owner_name: vehicle.owner_name,
            owner_phone: vehicle.owner_phone,
            owner: Some(owner.map(|u| u.username)),
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TheftReport {
    #[serde(default)]
    note: Option<String>,
    /// When the owner last saw the vehicle (RFC 3339): sightings since then are searched at once.
    #[serde(default)]
    last_seen_at: Option<String>,
    /// Where the owner last saw it, in their words.
    #[serde(default)]
    last_seen_place: Option<String>,
}

/// `POST /api/v1/vehicles/{tag}/theft`: opens a case; from now on every sighting alerts.
pub async fn report_theft(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    // The body is optional: an empty POST reports the theft with no note.
    let report: TheftReport = if body.iter().all(u8::is_ascii_whitespace) {
        TheftReport::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadBody(format!("invalid theft report: {e}")))?
    };
    let mut note = match report.note {
        Some(note) if !note.trim().is_empty() => text("note", note)?,
        _ => String::new(),
    };
    if let Some(place) = report.last_seen_place.filter(|p| !p.trim().is_empty()) {
        let place = text("last_seen_place", place)?;
        note = format!(
            "{note}{}last seen at: {place}",
            if note.is_empty() { "" } else { "\n" }
        );
    }
    let opened_at = now_ms();
    let given = time_param("last_seen_at", report.last_seen_at.as_deref())?;
    if given.is_some_and(|since| since > opened_at) {
        return Err(ApiError::field(
            "last_seen_at",
            "last_seen_at is in the future",
        ));
    }
    // Without a time, the owner last had it when they last armed, disarmed or recovered it; else
    // the look-back covers the last day (a sighting a minute before the report is the one to
    // chase).
    let since = match given {
        Some(since) => since,
        None => match state.store.owner_last_had(tag).await? {
            Some(changed) => changed,
            None => opened_at - DEFAULT_LOOK_BACK_MS,
        },
    };
    // The look-back reaches into the store for sightings older than the tracker's memory.
    let stored = state
        .store
        .last_location(tag)
        .await?
        .filter(|l| l.seen_at_ms >= since)
        .map(|l| LastSeen {
            station: l.station,
            position: l.position,
            seen_at_ms: l.seen_at_ms,
        });
    let case = state.store.open_case(tag, opened_at, &note).await?;
    tell_tracker(
        &state,
        Command::Stolen {
            tag,
            case,
            since_ms: Some(since),
            stored,
        },
    )
    .await?;
    tracing::info!(%tag, case = case.0, "theft reported");
    Ok((
        StatusCode::CREATED,
        Json(CaseAnswer {
            case_id: case.0,
            tag: tag.0,
            opened_at: Some(to_rfc3339(opened_at)),
            closed_at: None,
        }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    after: Option<i64>,
    limit: Option<u32>,
    tag: Option<String>,
    /// Required of police with `tag`: alerts about one vehicle are its sightings.
    purpose: Option<String>,
    precinct: Option<i64>,
    south: Option<f64>,
    west: Option<f64>,
    north: Option<f64>,
    east: Option<f64>,
    kinds: Option<String>,
}

/// Most alerts in one answer.
const MAX_ALERT_PAGE: u32 = 1_000;

/// `GET /api/v1/alerts?after=&limit=&tag=&precinct=|south=&west=&north=&east=&kinds=`: stored
/// alerts. Police: all, oldest first after `after`, or one tag's newest first. Owners: their own
/// vehicles' only. The area and kind filters apply to the page read (`limit` alerts scanned).
pub async fn list_alerts(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    #[derive(Deserialize)]
    struct Stated {
        tag: Option<String>,
    }
    // A query that names a vehicle asks for its sightings: a refusal to read it is audited.
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => match Query::<Stated>::try_from_uri(&uri)
            .ok()
            .and_then(|q| q.0.tag)
        {
            Some(tag) => {
                let target = format!("tag:{tag}");
                let refused = Err(rejection);
                movement_query(&state, &caller, "vehicle.alerts", target, &uri, refused).await?
            }
            None => return Err(ApiError::BadBody(rejection.body_text())),
        },
    };
    let tag = query.tag.as_deref().map(tag_from_path).transpose()?;
    let page = (|| {
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_ALERT_PAGE).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("limit must be 1..={MAX_ALERT_PAGE}"),
            ));
        }
        let after = query.after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::field("after", "after must be 0 or more"));
        }
        Ok((limit, after))
    })();
    // One vehicle's alerts are its sightings: refusing them is audited like any movement query.
    let (limit, after) = match tag {
        Some(tag) => {
            let target = format!("tag:{tag}");
            let action = "vehicle.alerts";
            checked_params(
                &state,
                &caller,
                action,
                target,
                query.purpose.as_deref(),
                page,
            )
            .await?
        }
        None => page?,
    };
    // Alerts about one vehicle are its sightings: a movement query like its track.
    if let Some(tag) = tag {
        audit_movements(
            &state,
            &caller,
            "vehicle.alerts",
            tag,
            query.purpose.as_deref(),
        )
        .await?;
    } else if query
        .purpose
        .as_deref()
        .is_some_and(|p| !tagwatch_model::purpose_says_something(p))
    {
        return Err(ApiError::field(
            "purpose",
            "a purpose, when given, needs at least three letters or digits",
        ));
    }
    let filter = crate::alert_filter::AlertFilter::new(
        &state,
        &caller,
        crate::alert_filter::FilterParams {
            precinct: query.precinct,
            south: query.south,
            west: query.west,
            north: query.north,
            east: query.east,
            kinds: query.kinds,
        },
    )
    .await?;
    let mut alerts = if caller.role.is_police() {
        match tag {
            Some(tag) => state.store.alerts_for_tag(tag, limit).await?,
            None => state.store.alerts_after(after, limit).await?,
        }
    } else {
        if caller.user.is_none() {
            return Err(ApiError::Forbidden("no account behind this token".into()));
        }
        // The filter already holds the owner's vehicles.
        let mut mine = Vec::new();
        for &own in filter.owned_tags().into_iter().flatten() {
            if tag.is_none_or(|t| t == own) {
                mine.extend(state.store.alerts_for_tag(own, limit).await?);
            }
        }
        mine.sort_by_key(|a| std::cmp::Reverse(a.seq));
        mine.truncate(limit as usize);
        mine
    };
    alerts.retain(|a| filter.admits(a));
    Ok(Json(AlertList {
        alerts: alerts.iter().map(crate::sse::alert_view).collect(),
    }))
}

/// `POST /api/v1/vehicles/{tag}/arm`: guard mode while parked. The vehicle is guarded where it
/// was last heard; heard away from there, it raises `armed_moved`.
pub async fn arm(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<GuardAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    let place = crate::ask_tracker(&state, move |tracker| tracker.last_seen(tag))
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "tag {tag} has not been heard yet: arm it where a station can hear it"
            ))
        })?;
    let armed_at = now_ms();
    state
        .store
        .arm(tag, armed_at, place.station, place.position)
        .await?;
    tell_tracker(
        &state,
        Command::Armed {
            tag,
            position: place.position,
        },
    )
    .await?;
    Ok(Json(GuardAnswer {
        tag: tag.0,
        armed: true,
        armed_at: Some(to_rfc3339(armed_at)),
        station: Some(place.station.0),
        lat: Some(place.position.lat),
        lon: Some(place.position.lon),
    }))
}

/// `POST /api/v1/vehicles/{tag}/disarm`
pub async fn disarm(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<GuardAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    if !state.store.disarm(tag, now_ms()).await? {
        return Err(ApiError::Conflict(format!("tag {tag} is not armed")));
    }
    tell_tracker(&state, Command::Disarmed { tag }).await?;
    Ok(Json(GuardAnswer {
        tag: tag.0,
        armed: false,
        armed_at: None,
        station: None,
        lat: None,
        lon: None,
    }))
}

/// `POST /api/v1/vehicles/{tag}/recovered`: closes the theft case; the tag leaves the stolen
/// list at once, so its next sighting raises nothing.
pub async fn recovered(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<CaseAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    let closed_at = now_ms();
    let case = state.store.close_case(tag, closed_at).await?;
    tell_tracker(&state, Command::Recovered { tag }).await?;
    tracing::info!(%tag, case = case.0, by = %caller.username, "vehicle recovered");
    Ok(Json(CaseAnswer {
        case_id: case.0,
        tag: tag.0,
        opened_at: None,
        closed_at: Some(to_rfc3339(closed_at)),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    purpose: Option<String>,
}

/// `GET /api/v1/vehicles/{tag}/location`
pub async fn location(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    uri: axum::http::Uri,
    query: Result<Query<PurposeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LocationAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    let target = format!("tag:{tag}");
    let query = movement_query(&state, &caller, "vehicle.location", target, &uri, query).await?;
    audit_movements(
        &state,
        &caller,
        "vehicle.location",
        tag,
        query.purpose.as_deref(),
    )
    .await?;
    // The tracker knows where it is placed now and how it is moving; after a restart, before
    // it is heard again, the store knows where it was last.
    if let Some(now) = crate::ask_tracker(&state, move |tracker| tracker.location(tag)).await? {
        return Ok(Json(LocationAnswer {
            tag: tag.0,
            station: now.station.0,
            lat: now.position.lat,
            lon: now.position.lon,
            seen_at: to_rfc3339(now.seen_at_ms),
            placed_since: Some(to_rfc3339(now.since_ms)),
            heading_deg: now.heading_deg.map(|h| (h * 10.0).round() / 10.0),
            speed_mps: now.speed_mps.map(|v| (v * 10.0).round() / 10.0),
        }));
    }
    let location = state
        .store
        .last_location(tag)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("tag {tag} has not been heard yet")))?;
    Ok(Json(LocationAnswer {
        tag: tag.0,
        station: location.station.0,
        lat: location.position.lat,
        lon: location.position.lon,
        seen_at: to_rfc3339(location.seen_at_ms),
        placed_since: None,
        heading_deg: None,
        speed_mps: None,
    }))
}

/// `GET /healthz`: 200 while the store commits, 503 while it does not.
pub async fn healthz(State(state): State<ApiState>) -> impl IntoResponse {
    let h = &state.health;
    let store_ok = h.store_ok.load(Ordering::Relaxed);
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let last_commit = h.last_commit_ms.load(Ordering::Relaxed);
    (
        status,
        Json(json!({
            "status": if store_ok { "ok" } else { "store_unavailable" },
            "store_ok": store_ok,
            "last_commit": (last_commit > 0).then(|| to_rfc3339(last_commit)),
            "frames_in_flight": h.frames_in_flight.load(Ordering::Relaxed),
            "queue_depth": h.queue_depth.load(Ordering::Relaxed),
            "stations": state.keys.len(),
        })),
    )
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}
