//! # Administration: accounts, registered vehicles, and the retention period.
//!
//! (Stations, geofences and user creation live with their own kind of endpoint.)

use crate::answers::{Retention, UserView, Users, VehiclePageAnswer, VehicleRowView};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::Body;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{Role, TagId};

/// The settings key of the retention period, in days.
pub const RETENTION_KEY: &str = "retention_days";
/// Longest retention an administrator may set: ten years.
const MAX_RETENTION_DAYS: u32 = 3_650;
/// Most vehicles in one page.
const MAX_VEHICLE_PAGE: u32 = 1_000;

/// `GET /api/v1/users` (admin): every account, never its password.
pub async fn users(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Users>, ApiError> {
    caller.require(&[Role::Admin])?;
    let accounts = state.store.accounts(now_ms()).await?;
    Ok(Json(Users {
        users: accounts
            .into_iter()
            .map(|a| UserView {
                id: a.id,
                username: a.username,
                role: a.role.as_str(),
                created_at: to_rfc3339(a.created_at_ms),
                live_tokens: a.live_tokens,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehiclePage {
    /// A tag id; a cursor past every tag answers an empty page.
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/vehicles?after=&limit=` (admin): registered vehicles by tag, with their owner's
/// account and whether they are reported stolen; page on with `after` = the last tag.
pub async fn vehicles(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<VehiclePage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<VehiclePageAnswer>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Query(page) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=MAX_VEHICLE_PAGE).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("limit must be 1..={MAX_VEHICLE_PAGE}"),
        ));
    }
    let after = page.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after", "after must be 0 or more"));
    }
    let rows = state
        .store
        .vehicles_page(TagId(u32::try_from(after).unwrap_or(u32::MAX)), limit)
        .await?;
    let next_after = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.vehicle.tag.0))
        .flatten();
    Ok(Json(VehiclePageAnswer {
        vehicles: rows
            .into_iter()
            .map(|r| VehicleRowView {
                tag: r.vehicle.tag.0,
                plate: r.vehicle.plate,
                make: r.vehicle.make,
                model: r.vehicle.model,
                colour: r.vehicle.colour,
                owner_name: r.vehicle.owner_name,
                owner_phone: r.vehicle.owner_phone,
                owner: r.owner,
                stolen: r.stolen,
            })
            .collect(),
        next_after,
    }))
}

fn retention_json(days: u32) -> Retention {
    Retention {
        retention_days: days,
    }
}

/// `GET /api/v1/settings/retention` (admin).
pub async fn retention(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Retention>, ApiError> {
    caller.require(&[Role::Admin])?;
    Ok(Json(retention_json(
        state.retention_days.load(Ordering::Relaxed),
    )))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRetention {
    retention_days: u32,
}

/// `PUT /api/v1/settings/retention` `{retention_days}` (admin): visits older than this are
/// dropped at the next hourly run (theft cases' visits are kept); stored, so it outlives the
/// configuration file's value.
pub async fn set_retention(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewRetention>,
) -> Result<Json<Retention>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(NewRetention { retention_days }) = body?;
    if !(1..=MAX_RETENTION_DAYS).contains(&retention_days) {
        return Err(ApiError::field(
            "retention_days",
            format!("retention_days must be 1..={MAX_RETENTION_DAYS}"),
        ));
    }
    state
        .store
        .set_setting(
            RETENTION_KEY,
            &retention_days.to_string(),
            &caller.username,
            now_ms(),
        )
        .await?;
    state
        .retention_days
        .store(retention_days, Ordering::Relaxed);
    tracing::info!(retention_days, by = %caller.username, "retention period changed");
    Ok(Json(retention_json(retention_days)))
}
