//! # Stations: provisioning (admin) and the list with each one's health (police).

use crate::answers::{StationAnswer, StationCreated, StationHealth, Stations};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{id_u32, text, Body};
use crate::live::Gathered;
use crate::{tell_tracker, ApiState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::HashMap;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{GeoPoint, Role, Station, StationId, StationKey};
use tagwatch_tracker::questions::{Answer, Question};
use tagwatch_tracker::Command;

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
    if id.is_device() {
        return Err(ApiError::field(
            "id",
            format!(
                "station ids from {} up are GPS trackers' (registered through /trackers)",
                tagwatch_model::DEVICE_STATIONS_FROM
            ),
        ));
    }
    let name = text("name", new.name)?;
    let position = crate::input::point(new.lat, new.lon)?;
    let (key, generated) = match new.key.as_deref() {
        Some(hex) => (
            StationKey::from_hex(hex).map_err(|e| ApiError::field("key", e.to_string()))?,
            false,
        ),
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes)
                .map_err(|e| ApiError::internal(format!("randomness: {e}")))?;
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
    // GPS trackers are listed under /trackers, with what they report.
    let mut stations = state.store.stations_health().await?;
    stations.retain(|(station, _)| !station.id.is_device());
    let ids: Vec<StationId> = stations.iter().map(|(s, _)| s.id).collect();
    let question = Question::StationsHeard { stations: ids };
    let Gathered { answer, missing } = crate::live::area(&state, question).await?;
    let Answer::StationsHeard {
        last_frames,
        readers,
    } = answer
    else {
        return Err(ApiError::internal("not an answer to stations heard"));
    };
    let readers: HashMap<StationId, (i64, GeoPoint)> = readers
        .into_iter()
        .map(|(id, at, position)| (id, (at, position)))
        .collect();
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
    Ok(Json(Stations {
        stations,
        missing_partitions: missing,
    }))
}
