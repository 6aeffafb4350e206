//! # Watch lists over HTTP: geofences (administrators) and companion pairs (owners, admins).
//!
//! Each change is stored first and then handed to the tracker, which checks every detection
//! against it; at start the server loads both lists from the store into the tracker.

use crate::answers::{FenceView, Fences, PairView};
use crate::audit::accessible_vehicle;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{id_u32, tag_from_path, text, Body};
use crate::tell_tracker;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use tagwatch_model::time::now_ms;
use tagwatch_model::{Geofence, Role, TagId, UserId};
use tagwatch_tracker::Command;

/// Most tags on one fence's watch list.
pub const MAX_FENCE_TAGS: usize = 10_000;
/// Widest a fence may be, in degrees of latitude or longitude (about 110 km): a district, not a
/// country (every watched tag's every move is tested against it).
const MAX_FENCE_DEGREES: f64 = 1.0;

const POLICE: [Role; 3] = [Role::Officer, Role::Dispatcher, Role::Admin];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGeofence {
    name: String,
    /// The outline as `[lat, lon]` pairs.
    area: Vec<[f64; 2]>,
    tags: Vec<i64>,
    #[serde(default)]
    on_enter: bool,
    #[serde(default)]
    on_leave: bool,
}

fn geofence(new: NewGeofence) -> Result<Geofence, ApiError> {
    let name = text("name", new.name)?;
    let area = crate::handlers::alert_filter::outline(&new.area)?;
    let span = |f: fn(&tagwatch_model::GeoPoint) -> f64| {
        let (lo, hi) = area
            .iter()
            .map(f)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        hi - lo
    };
    if span(|p| p.lat) > MAX_FENCE_DEGREES || span(|p| p.lon) > MAX_FENCE_DEGREES {
        return Err(ApiError::field(
            "area",
            format!("area must fit in {MAX_FENCE_DEGREES}° of latitude and longitude"),
        ));
    }
    if new.tags.is_empty() || new.tags.len() > MAX_FENCE_TAGS {
        return Err(ApiError::field(
            "tags",
            format!("tags must list 1 to {MAX_FENCE_TAGS} tags to watch"),
        ));
    }
    let mut tags = new
        .tags
        .into_iter()
        .map(|t| id_u32("tags", t).map(TagId))
        .collect::<Result<Vec<_>, _>>()?;
    tags.sort_unstable();
    tags.dedup();
    if !new.on_enter && !new.on_leave {
        return Err(ApiError::field(
            "on_enter",
            "set on_enter, on_leave or both: a fence that alerts on nothing watches nothing",
        ));
    }
    Ok(Geofence {
        id: 0,
        name,
        area,
        tags,
        on_enter: new.on_enter,
        on_leave: new.on_leave,
    })
}

fn fence_view(fence: &Geofence) -> FenceView {
    FenceView {
        id: fence.id,
        name: fence.name.clone(),
        area: fence.area.iter().map(|p| [p.lat, p.lon]).collect(),
        tags: fence.tags.iter().map(|t| t.0).collect(),
        on_enter: fence.on_enter,
        on_leave: fence.on_leave,
    }
}

/// The account behind the caller (0 for the configured admin token, which has none).
fn actor(caller: &Caller) -> UserId {
    caller.user.unwrap_or(UserId(0))
}

/// `POST /api/v1/geofences` (admin): watch tags entering or leaving an area.
pub async fn create_geofence(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewGeofence>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let fence = geofence(new)?;
    let fence = state
        .store
        .insert_geofence(&fence, actor(&caller), now_ms())
        .await?;
    tell_tracker(&state, Command::Geofence(fence.clone())).await?;
    tracing::info!(id = fence.id, name = %fence.name, by = %caller.username, "geofence created");
    Ok((StatusCode::CREATED, Json(fence_view(&fence))))
}

/// `GET /api/v1/geofences` (police).
pub async fn list_geofences(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Fences>, ApiError> {
    caller.require(&POLICE)?;
    let fences = state.store.geofences().await?;
    Ok(Json(Fences {
        geofences: fences.iter().map(fence_view).collect(),
    }))
}

/// `DELETE /api/v1/geofences/{id}` (admin).
pub async fn delete_geofence(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let id: i64 = id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::field("id", format!("geofence id {id:?} is not a positive number"))
    })?;
    if !state.store.delete_geofence(id).await? {
        return Err(ApiError::NotFound(format!("no geofence {id}")));
    }
    tell_tracker(&state, Command::RemoveGeofence { id }).await?;
    tracing::info!(id, by = %caller.username, "geofence deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPair {
    companion: i64,
}

/// Owners and admins manage pairs; an owner only between tags that are both theirs.
fn may_pair(caller: &Caller) -> Result<(), ApiError> {
    caller.require(&[Role::Owner, Role::Admin])
}

/// `PUT /api/v1/vehicles/{tag}/pair`: alert when `tag` is heard without `companion`.
pub async fn pair(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    body: Body<NewPair>,
) -> Result<Json<PairView>, ApiError> {
    may_pair(&caller)?;
    let tag = tag_from_path(&tag)?;
    let Json(new) = body?;
    let companion = TagId(id_u32("companion", new.companion)?);
    if companion == tag {
        return Err(ApiError::field(
            "companion",
            "a tag cannot be its own companion",
        ));
    }
    accessible_vehicle(&state, &caller, tag).await?;
    accessible_vehicle(&state, &caller, companion)
        .await
        .map_err(|_| {
            ApiError::field(
                "companion",
                format!("no registered tag {companion} among those you may pair"),
            )
        })?;
    state
        .store
        .pair(tag, companion, actor(&caller), now_ms())
        .await?;
    tell_tracker(&state, Command::Pair { tag, companion }).await?;
    Ok(Json(PairView {
        tag: tag.0,
        companion: companion.0,
    }))
}

/// `GET /api/v1/vehicles/{tag}/pair`
pub async fn get_pair(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<PairView>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    match state.store.companion_of(tag).await? {
        Some(companion) => Ok(Json(PairView {
            tag: tag.0,
            companion: companion.0,
        })),
        None => Err(ApiError::NotFound(format!("tag {tag} has no companion"))),
    }
}

/// `DELETE /api/v1/vehicles/{tag}/pair`
pub async fn unpair(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<StatusCode, ApiError> {
    may_pair(&caller)?;
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    // Idempotent, as a DELETE is: a vehicle with no companion is unpaired already.
    if state.store.unpair(tag).await? {
        tell_tracker(&state, Command::Unpair { tag }).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
