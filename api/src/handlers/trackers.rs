//! # GPS trackers: registration (admin), the list with each one's latest report (police; owners
//! see their own), and the engine cut-off (an officer for a stolen vehicle; resuming after
//! recovery, its owner too). Every engine command states a purpose and is audited.

use crate::answers::{
    EngineCommandAnswer, EngineCommands, TrackerAnswer, TrackerFix, TrackerReport, Trackers,
};
use crate::audit::{accessible_vehicle, audit};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{id_u32, tag_from_path, Body};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::Arc;
use tagwatch_devices::registry::{Device, EngineAction, LastReport, PendingCommand};
use tagwatch_devices::Imei;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{Role, StationKey, TagId};
use tagwatch_store::{CommandRow, TrackerRow};

/// Most commands listed for a vehicle.
const MAX_COMMANDS_LISTED: u32 = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTracker {
    imei: String,
    tag: i64,
}

fn imei_of(field: &'static str, text: &str) -> Result<Imei, ApiError> {
    Imei::parse(text).ok_or_else(|| ApiError::field(field, "an IMEI is 15 decimal digits"))
}

/// `POST /api/v1/trackers` (admin): a GPS tracker fitted to a registered vehicle.
pub async fn create_tracker(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewTracker>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let imei = imei_of("imei", &new.imei)?;
    let tag = TagId(id_u32("tag", new.tag)?);
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("randomness: {e}")))?;
    let key = StationKey(bytes);
    let station = state
        .store
        .insert_tracker(&imei.to_string(), tag, "gt06", &key, now_ms())
        .await?;
    // The gateway admits the listener's frames for it from now on.
    state.keys.insert(station, key.clone());
    state.devices.insert(Device {
        imei,
        tag,
        station,
        key: Arc::new(key),
    });
    tracing::info!(%imei, %tag, %station, "GPS tracker registered");
    let answer = TrackerAnswer {
        imei: imei.to_string(),
        tag: tag.0,
        station: station.0,
        protocol: "gt06".into(),
        connected: false,
        last_report: None,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

fn report_answer(report: LastReport) -> TrackerReport {
    TrackerReport {
        received_at: to_rfc3339(report.received_at_ms),
        fix: report.fix.map(|f| TrackerFix {
            at: to_rfc3339(f.at_ms),
            lat: f.lat,
            lon: f.lon,
            speed_kmh: f.speed_kmh,
            course_deg: f.course_deg,
        }),
        alarm: report.alarm,
        external_v: report.external_v,
        battery_v: report.battery_v,
        battery_pct: report.battery_pct,
    }
}

/// A tracker as listed: the registry's live report when it has one (newer), else the stored.
fn tracker_answer(state: &ApiState, row: TrackerRow) -> TrackerAnswer {
    let imei = Imei::parse(&row.imei);
    let live = imei.and_then(|imei| state.devices.last_report(imei));
    let stored = row
        .report
        .as_deref()
        .and_then(|json| serde_json::from_str::<LastReport>(json).ok());
    let report = match (live, stored) {
        (Some(live), Some(stored)) if stored.received_at_ms > live.received_at_ms => Some(stored),
        (live, stored) => live.or(stored),
    };
    TrackerAnswer {
        imei: row.imei,
        tag: row.tag.0,
        station: row.station.0,
        protocol: row.protocol,
        connected: imei.is_some_and(|imei| state.devices.is_connected(imei)),
        last_report: report.map(report_answer),
    }
}

/// `GET /api/v1/trackers`: every tracker (police); an owner's own.
pub async fn list_trackers(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Trackers>, ApiError> {
    let rows = match (caller.role, caller.user) {
        (Role::Owner, Some(user)) => state.store.trackers_of(user).await?,
        (Role::Owner, None) => Vec::new(),
        _ => state.store.trackers().await?,
    };
    let trackers = rows
        .into_iter()
        .map(|row| tracker_answer(&state, row))
        .collect();
    Ok(Json(Trackers { trackers }))
}

/// `DELETE /api/v1/trackers/{imei}` (admin). Its connection closes; its history stays.
pub async fn delete_tracker(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(imei): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let imei = imei_of("imei", &imei)?;
    if !state.store.delete_tracker(&imei.to_string()).await? {
        return Err(ApiError::NotFound(format!("no tracker {imei}")));
    }
    state.devices.remove(imei);
    tracing::info!(%imei, "GPS tracker removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineRequest {
    /// `stop` or `resume`.
    action: String,
    purpose: Option<String>,
}

fn command_answer(row: CommandRow) -> EngineCommandAnswer {
    let state = match (row.sent_at_ms, row.answered_at_ms) {
        (_, Some(_)) => "answered",
        (Some(_), None) => "sent",
        (None, None) => "queued",
    };
    EngineCommandAnswer {
        id: row.id,
        imei: row.imei,
        action: row.action,
        state,
        requested_by: row.requested_by,
        requested_at: to_rfc3339(row.requested_at_ms),
        sent_at: row.sent_at_ms.map(to_rfc3339),
        answered_at: row.answered_at_ms.map(to_rfc3339),
        answer: row.answer,
    }
}

/// `POST /api/v1/vehicles/{tag}/engine {"action": "stop"|"resume", "purpose"}`: queues the
/// command for every tracker on the vehicle. A stop: police, for a vehicle with an open theft
/// case. A resume: police, or the owner once the case is closed. The device gets it when it is
/// connected and, for a stop, its latest fix says 20 km/h or less (see `docs/DEVICES.md`).
pub async fn engine(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    body: Body<EngineRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_from_path(&tag)?;
    let Json(request) = body?;
    let action = EngineAction::parse(&request.action)
        .ok_or_else(|| ApiError::field("action", "action is \"stop\" or \"resume\""))?;
    accessible_vehicle(&state, &caller, tag).await?;
    let case = state.store.open_case_of(tag).await?;
    match (action, caller.role.is_police(), case) {
        (EngineAction::Stop, false, _) => {
            return Err(ApiError::Forbidden(
                "only the police may stop a vehicle's engine".into(),
            ))
        }
        (EngineAction::Stop, true, None) => {
            return Err(ApiError::Conflict(format!(
                "tag {tag} is not reported stolen: an engine is stopped only for an open theft case"
            )))
        }
        (EngineAction::Resume, false, Some(_)) => {
            return Err(ApiError::Conflict(format!(
                "tag {tag} is still reported stolen: mark it recovered before resuming its engine"
            )))
        }
        _ => {}
    }
    let trackers = state.store.trackers_on(tag).await?;
    if trackers.is_empty() {
        return Err(ApiError::Conflict(format!(
            "tag {tag} has no GPS tracker fitted"
        )));
    }
    let target = format!("tag:{tag}");
    let action_name = format!("vehicle.engine_{}", action.as_str());
    audit(
        &state,
        &caller,
        &action_name,
        target,
        request.purpose.as_deref(),
    )
    .await?;
    let purpose = request
        .purpose
        .as_deref()
        .unwrap_or("owner after recovery")
        .trim();
    let mut commands = Vec::new();
    for tracker in trackers {
        let row = state
            .store
            .queue_command(
                &tracker.imei,
                tag,
                action.as_str(),
                &caller.username,
                purpose,
                now_ms(),
            )
            .await?;
        if let Some(imei) = Imei::parse(&tracker.imei) {
            state
                .devices
                .queue(imei, PendingCommand { id: row.id, action });
        }
        tracing::info!(imei = tracker.imei, %tag, action = action.as_str(), by = caller.username, "engine command queued");
        commands.push(command_answer(row));
    }
    Ok((StatusCode::ACCEPTED, Json(EngineCommands { commands })))
}

/// `GET /api/v1/vehicles/{tag}/engine`: the vehicle's latest engine commands, newest first.
pub async fn engine_commands(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<EngineCommands>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    let rows = state.store.commands_on(tag, MAX_COMMANDS_LISTED).await?;
    Ok(Json(EngineCommands {
        commands: rows.into_iter().map(command_answer).collect(),
    }))
}
