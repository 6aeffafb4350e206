//! # The police response: deciding about a hit, sending a unit, and where the units are.
//!
//! An officer accepts or rejects an alert with a reason; a dispatcher sends a patrol unit to it.
//! Patrol units report their position as they drive, and an alert lists the nearest available
//! ones. Every decision is kept, in order, with who made it and when.

use crate::answers::{ActionView, AlertFile, AlertView, UnitView, Units};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::point;
use crate::input::{text, Body};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use geo::{Distance, Haversine, Point};
use serde::Deserialize;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{ActionKind, Alert, AlertAction, GeoPoint, PatrolUnit, Role};

/// A unit whose last report is older than this is not offered for dispatch: nobody knows
/// where it is.
pub const UNIT_STALE_MS: i64 = 15 * 60_000;
/// Units listed with an alert.
const NEAREST_UNITS: usize = 3;
/// Longest call sign.
const MAX_CALL_SIGN: usize = 32;

pub(crate) const POLICE: [Role; 3] = [Role::Officer, Role::Dispatcher, Role::Admin];

fn alert_seq(seq: &str) -> Result<i64, ApiError> {
    seq.parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| ApiError::field("seq", format!("alert {seq:?} is not a positive number")))
}

/// The alert `seq`: from the store or, raised a moment ago and not yet flushed there, from the
/// live stream's ring (an officer opens an alert the moment it arrives).
async fn stored_alert(state: &ApiState, seq: i64) -> Result<Alert, ApiError> {
    if let Some(alert) = state.store.alert(seq).await? {
        return Ok(alert);
    }
    state
        .bus
        .recent(seq)
        .ok_or_else(|| ApiError::NotFound(format!("no alert {seq}")))
}

fn call_sign(unit: String) -> Result<String, ApiError> {
    let unit = text("unit", unit)?;
    if unit.chars().count() > MAX_CALL_SIGN
        || !unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_ ".contains(c))
    {
        return Err(ApiError::field(
            "unit",
            format!("unit must be a call sign of letters, digits, '-', '_' or spaces, at most {MAX_CALL_SIGN}"),
        ));
    }
    Ok(unit)
}

fn action_view(a: &AlertAction) -> ActionView {
    ActionView {
        id: a.id,
        action: a.action.as_str(),
        unit: a.unit.clone(),
        reason: a.reason.clone(),
        by: a.actor.clone(),
        at: to_rfc3339(a.at_ms),
    }
}

fn unit_view(u: &PatrolUnit, distance_m: Option<f64>) -> UnitView {
    UnitView {
        unit: u.unit.clone(),
        officer: u.officer.clone(),
        lat: u.position.lat,
        lon: u.position.lon,
        available: u.available,
        reported_at: to_rfc3339(u.reported_at_ms),
        distance_m: distance_m.map(f64::round),
    }
}

fn distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
}

/// The available units that reported recently, nearest to `at` first.
pub fn nearest_units(units: &[PatrolUnit], at: GeoPoint, now_ms: i64) -> Vec<(PatrolUnit, f64)> {
    let mut near: Vec<(PatrolUnit, f64)> = units
        .iter()
        .filter(|u| u.available && now_ms - u.reported_at_ms <= UNIT_STALE_MS)
        .map(|u| (u.clone(), distance_m(u.position, at)))
        .collect();
    near.sort_by(|a, b| a.1.total_cmp(&b.1));
    near.truncate(NEAREST_UNITS);
    near
}

/// An alert is `accepted` or `rejected` by its latest decision, `open` before any.
pub(crate) fn status(actions: &[AlertAction]) -> &'static str {
    actions
        .iter()
        .rev()
        .find_map(|a| match a.action {
            ActionKind::Accepted => Some("accepted"),
            ActionKind::Rejected => Some("rejected"),
            ActionKind::Dispatched => None,
        })
        .unwrap_or("open")
}

/// `GET /api/v1/alerts/{seq}` (police): the alert, what was done about it, and the nearest
/// available units.
pub async fn alert(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(seq): Path<String>,
) -> Result<Json<AlertFile>, ApiError> {
    caller.require(&POLICE)?;
    let seq = alert_seq(&seq)?;
    let alert = stored_alert(&state, seq).await?;
    let actions = state.store.alert_actions(seq).await?;
    let units = state.store.units().await?;
    // Units are ranked from where the vehicle is now, if it has been heard since.
    let now_at = match alert.tag {
        Some(tag) => crate::live::last_seen(&state, tag)
            .await?
            .filter(|latest| latest.seen_at_ms > alert.seen_at_ms)
            .map(|latest| latest.position),
        None => None,
    };
    let mut view = [AlertView::of(&alert, &state.devices)];
    crate::identity::label_alerts(&state, &mut view).await?;
    let [view] = view;
    Ok(Json(AlertFile {
        alert: view,
        status: status(&actions),
        actions: actions.iter().map(action_view).collect(),
        nearest_units: nearest_units(&units, now_at.unwrap_or(alert.position), now_ms())
            .iter()
            .map(|(u, d)| unit_view(u, Some(*d)))
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    reason: String,
}

async fn decide(
    state: ApiState,
    caller: Caller,
    seq: String,
    body: Body<Decision>,
    action: ActionKind,
) -> Result<(StatusCode, Json<ActionView>), ApiError> {
    caller.require(&POLICE)?;
    let seq = alert_seq(&seq)?;
    let Json(decision) = body?;
    let reason = text("reason", decision.reason)?;
    stored_alert(&state, seq).await?;
    let entry = state
        .store
        .add_alert_action(&AlertAction {
            id: 0,
            alert_seq: seq,
            action,
            unit: None,
            reason,
            actor: caller.username.clone(),
            at_ms: now_ms(),
        })
        .await?;
    tracing::info!(seq, action = action.as_str(), by = %caller.username, "alert decided");
    Ok((StatusCode::CREATED, Json(action_view(&entry))))
}

/// `POST /api/v1/alerts/{seq}/accept` `{reason}`: a true hit.
pub async fn accept(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(seq): Path<String>,
    body: Body<Decision>,
) -> Result<impl IntoResponse, ApiError> {
    decide(state, caller, seq, body, ActionKind::Accepted).await
}

/// `POST /api/v1/alerts/{seq}/reject` `{reason}`: a false hit. Units sent to it and not sent
/// anywhere since are free again.
pub async fn reject(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(seq): Path<String>,
    body: Body<Decision>,
) -> Result<impl IntoResponse, ApiError> {
    let number = alert_seq(&seq)?;
    let decided = decide(state.clone(), caller, seq, body, ActionKind::Rejected).await?;
    let freed = state.store.free_units_sent_to(number).await?;
    if !freed.is_empty() {
        tracing::info!(seq = number, ?freed, "units freed: the alert was rejected");
    }
    Ok(decided)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    unit: String,
    note: Option<String>,
}

/// `POST /api/v1/alerts/{seq}/dispatch` `{unit, note}` (dispatchers, admins): sends an
/// available unit, which is then busy until it reports itself available again.
pub async fn dispatch(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(seq): Path<String>,
    body: Body<Dispatch>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Dispatcher, Role::Admin])?;
    let seq = alert_seq(&seq)?;
    let Json(dispatch) = body?;
    let unit = call_sign(dispatch.unit)?;
    let note = match dispatch.note {
        Some(note) => text("note", note)?,
        None => String::from("dispatched"),
    };
    stored_alert(&state, seq).await?;
    let known = state.store.units().await?;
    let Some(found) = known.iter().find(|u| u.unit == unit) else {
        return Err(ApiError::field("unit", format!("no patrol unit {unit:?}")));
    };
    if !found.available {
        return Err(ApiError::Conflict(format!(
            "unit {unit:?} is not available"
        )));
    }
    state.store.set_unit_available(&unit, false).await?;
    let entry = state
        .store
        .add_alert_action(&AlertAction {
            id: 0,
            alert_seq: seq,
            action: ActionKind::Dispatched,
            unit: Some(unit.clone()),
            reason: note,
            actor: caller.username.clone(),
            at_ms: now_ms(),
        })
        .await?;
    tracing::info!(seq, %unit, by = %caller.username, "unit dispatched");
    Ok((StatusCode::CREATED, Json(action_view(&entry))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    unit: String,
    lat: f64,
    lon: f64,
    #[serde(default = "yes")]
    available: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/patrol/position` `{unit, lat, lon, available}` (officers, dispatchers): where
/// a patrol unit is now.
pub async fn report_position(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<Position>,
) -> Result<Json<UnitView>, ApiError> {
    caller.require(&[Role::Officer, Role::Dispatcher])?;
    let Json(report) = body?;
    let unit = PatrolUnit {
        unit: call_sign(report.unit)?,
        officer: caller.username.clone(),
        position: point(report.lat, report.lon)?,
        available: report.available,
        reported_at_ms: now_ms(),
    };
    // A unit is its officer's for a shift: another officer may take it over only once its
    // reports have stopped that long.
    let takeover_before = unit.reported_at_ms - crate::auth::TOKEN_TTL_MS;
    if !state.store.report_unit(&unit, takeover_before).await? {
        return Err(ApiError::Conflict(format!(
            "unit {} is reported by another officer; a unit can be taken over 12 hours after its last report",
            unit.unit
        )));
    }
    Ok(Json(unit_view(&unit, None)))
}

/// `GET /api/v1/patrol/units` (police): every unit and its last report.
pub async fn units(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Units>, ApiError> {
    caller.require(&POLICE)?;
    let units = state.store.units().await?;
    Ok(Json(Units {
        units: units.iter().map(|u| unit_view(u, None)).collect(),
    }))
}
