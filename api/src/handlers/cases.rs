//! # Case work for police: the open theft cases with each vehicle's latest sighting and who the
//! case is assigned to, one case's history, and assigning it. A case is opened by a theft report
//! (`thefts`) or a hotlist import (`hotlist`) and closed when the vehicle is recovered.
//!
//! The latest sighting of a stolen vehicle is its latest `stolen_sighting` alert, which police
//! see on the alert stream anyway: the list reveals no movement beyond the alerts, so it needs no
//! purpose; a vehicle's track still does.

use crate::answers::VehicleLabel;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::response::POLICE;
use crate::identity::labels;
use crate::input::{path_id, Body};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{CaseId, Role};
use tagwatch_store::CaseRow;

/// Sightings listed in one case's file.
const CASE_SIGHTINGS: u32 = 100;

/// A theft case in the list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseView {
    pub case_id: i64,
    pub tag: u32,
    pub vehicle: Option<VehicleLabel>,
    pub opened_at: String,
    pub closed_at: Option<String>,
    /// `report` (an owner or officer) or `hotlist` (an import).
    pub source: String,
    pub note: String,
    /// A hotlist entry's lapse.
    pub expires_at: Option<String>,
    pub assignee: Option<String>,
    /// The latest stolen-vehicle sighting since the case opened.
    pub latest_sighting: Option<Sighting>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Sighting {
    /// The alert that reported it.
    pub seq: i64,
    pub station: u32,
    pub lat: f64,
    pub lon: f64,
    pub seen_at: String,
}

impl Sighting {
    fn of(alert: &tagwatch_model::Alert) -> Self {
        Sighting {
            seq: alert.seq,
            station: alert.station.0,
            lat: alert.position.lat,
            lon: alert.position.lon,
            seen_at: to_rfc3339(alert.seen_at_ms),
        }
    }
}

/// `GET /cases`
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseList {
    pub cases: Vec<CaseView>,
}

/// An entry of a case's history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseEventView {
    pub at: String,
    pub by: String,
    /// `assigned`, `unassigned` or `closed`.
    pub kind: String,
    pub detail: String,
}

/// `GET /cases/{id}`
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaseFile {
    #[serde(flatten)]
    pub case: CaseView,
    pub history: Vec<CaseEventView>,
    /// Every stolen-vehicle sighting of the case, newest first (at most 100).
    pub sightings: Vec<Sighting>,
}

async fn view(
    state: &ApiState,
    row: CaseRow,
    vehicle: Option<VehicleLabel>,
) -> Result<CaseView, ApiError> {
    let latest = state
        .store
        .latest_alert_of(row.tag, "stolen_sighting", row.opened_at_ms)
        .await?;
    Ok(CaseView {
        case_id: row.id.0,
        tag: row.tag.0,
        vehicle,
        opened_at: to_rfc3339(row.opened_at_ms),
        closed_at: row.closed_at_ms.map(to_rfc3339),
        source: row.source,
        note: row.note,
        expires_at: row.expires_at_ms.map(to_rfc3339),
        assignee: row.assignee,
        latest_sighting: latest.as_ref().map(Sighting::of),
    })
}

/// `GET /api/v1/cases` (police): the open cases, newest first.
pub async fn list(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<CaseList>, ApiError> {
    caller.require(&POLICE)?;
    let rows = state.store.open_case_rows().await?;
    let mut found = labels(&state, rows.iter().map(|r| r.tag)).await?;
    let mut cases = Vec::with_capacity(rows.len());
    for row in rows {
        let vehicle = found.remove(&row.tag);
        cases.push(view(&state, row, vehicle).await?);
    }
    Ok(Json(CaseList { cases }))
}

/// `GET /api/v1/cases/{id}` (police): the case, its history and its sightings.
pub async fn file(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<CaseFile>, ApiError> {
    caller.require(&POLICE)?;
    let id = CaseId(path_id("case", &id)?);
    let row = state
        .store
        .case_row(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no case {}", id.0)))?;
    let (opened, closed) = (row.opened_at_ms, row.closed_at_ms.unwrap_or(i64::MAX));
    let sightings = state
        .store
        .alerts_for_tag(row.tag, CASE_SIGHTINGS)
        .await?
        .iter()
        .filter(|a| {
            a.kind == tagwatch_model::AlertKind::StolenSighting
                && (opened..=closed).contains(&a.raised_at_ms)
        })
        .map(Sighting::of)
        .collect();
    let history = state
        .store
        .case_events(id)
        .await?
        .into_iter()
        .map(|e| CaseEventView {
            at: to_rfc3339(e.at_ms),
            by: e.actor,
            kind: e.kind,
            detail: e.detail,
        })
        .collect();
    let vehicle = labels(&state, [row.tag]).await?.remove(&row.tag);
    Ok(Json(CaseFile {
        case: view(&state, row, vehicle).await?,
        history,
        sightings,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// An officer's, dispatcher's or admin's username; null: nobody.
    username: Option<String>,
}

/// `POST /api/v1/cases/{id}/assign {"username"}` (dispatcher, admin).
pub async fn assign(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body<Assignment>,
) -> Result<Json<CaseView>, ApiError> {
    caller.require(&[Role::Dispatcher, Role::Admin])?;
    let id = CaseId(path_id("case", &id)?);
    let Json(assignment) = body?;
    let assignee = match assignment.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => {
            let user = state
                .store
                .user_by_name(name)
                .await?
                .ok_or_else(|| ApiError::field("username", format!("no user {name:?}")))?;
            if !user.role.is_police() {
                return Err(ApiError::field(
                    "username",
                    format!("{name:?} is not police: a case goes to an officer"),
                ));
            }
            Some(user.username)
        }
    };
    if !state
        .store
        .assign_case(id, assignee.as_deref(), &caller.username, now_ms())
        .await?
    {
        return Err(ApiError::NotFound(format!("no open case {}", id.0)));
    }
    let row = state
        .store
        .case_row(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no case {}", id.0)))?;
    let vehicle = labels(&state, [row.tag]).await?.remove(&row.tag);
    Ok(Json(view(&state, row, vehicle).await?))
}
