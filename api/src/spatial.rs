//! # Spatial queries for police: tags near a point now, and tags through an area in a window.
//!
//! Both reveal who was where, so both need a purpose and are audited, like a vehicle's track.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{audit, time_param};
use crate::ApiState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{GeoBox, GeoPoint, Role};
use tokio::sync::oneshot;

/// Largest radius of a "near" query.
const MAX_RADIUS_M: f64 = 5_000.0;
/// Furthest back a "near" query looks.
const MAX_MINUTES: u32 = 24 * 60;
/// Largest side of a "through" box, in degrees (about 11 km).
const MAX_BOX_DEGREES: f64 = 0.1;
/// Longest window of a "through" query.
const MAX_WINDOW_MS: i64 = 24 * 3_600_000;
/// Most rows in one answer.
const MAX_ROWS: u32 = 5_000;

const POLICE: [Role; 3] = [Role::Officer, Role::Dispatcher, Role::Admin];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearQuery {
    lat: f64,
    lon: f64,
    radius_m: f64,
    minutes: Option<u32>,
    limit: Option<u32>,
    purpose: Option<String>,
}

fn point(lat: f64, lon: f64) -> Result<GeoPoint, ApiError> {
    GeoPoint::new(lat, lon).map_err(|e| {
        let field = if e.to_string().starts_with("lat") {
            "lat"
        } else {
            "lon"
        };
        ApiError::field(field, e.to_string())
    })
}

fn limit(value: Option<u32>) -> Result<u32, ApiError> {
    let limit = value.unwrap_or(500);
    if (1..=MAX_ROWS).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::field(
            "limit",
            format!("limit must be 1..={MAX_ROWS}"),
        ))
    }
}

/// `GET /api/v1/tags/near?lat=&lon=&radius_m=&minutes=&limit=&purpose=`: tags last heard within
/// the radius in the last `minutes` (default 15), nearest first.
pub async fn tags_near(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<NearQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&POLICE)?;
    let Query(q) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let center = point(q.lat, q.lon)?;
    if !(q.radius_m > 0.0 && q.radius_m <= MAX_RADIUS_M) {
        return Err(ApiError::field(
            "radius_m",
            format!("radius_m must be more than 0 and at most {MAX_RADIUS_M}"),
        ));
    }
    let minutes = q.minutes.unwrap_or(15);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::field(
            "minutes",
            format!("minutes must be 1..={MAX_MINUTES}"),
        ));
    }
    let limit = limit(q.limit)?;
    let target = format!("near {:.6},{:.6} r={}m", center.lat, center.lon, q.radius_m);
    audit(&state, &caller, "tags.near", target, q.purpose.as_deref()).await?;
    let since = now_ms() - i64::from(minutes) * 60_000;
    let (tx, rx) = oneshot::channel();
    let radius = q.radius_m;
    let ask = move |tracker: &tagwatch_tracker::Tracker| {
        let _ = tx.send(tracker.tags_near(center, radius, since, limit as usize));
    };
    state
        .queries
        .send(tagwatch_tracker::Query(Box::new(ask)))
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let found = rx.await.map_err(|_| ApiError::Unavailable)?;
    Ok(Json(json!({
        "tags": found.iter().map(|(tag, last, distance)| json!({
            "tag": tag.0,
            "station": last.station.0,
            "lat": last.position.lat,
            "lon": last.position.lon,
            "seen_at": to_rfc3339(last.seen_at_ms),
            "distance_m": (distance * 10.0).round() / 10.0,
        })).collect::<Vec<_>>()
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughQuery {
    south: f64,
    west: f64,
    north: f64,
    east: f64,
    from: String,
    to: String,
    limit: Option<u32>,
    purpose: Option<String>,
}

/// `GET /api/v1/tags/through?south=&west=&north=&east=&from=&to=&limit=&purpose=`: the visits of
/// every tag at a station inside the box during the window, in time order.
pub async fn tags_through(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ThroughQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(&POLICE)?;
    let Query(q) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let sw = point(q.south, q.west)?;
    let ne = point(q.north, q.east)?;
    if sw.lat > ne.lat || sw.lon > ne.lon {
        return Err(ApiError::field(
            "south",
            "south/west must be below north/east",
        ));
    }
    if ne.lat - sw.lat > MAX_BOX_DEGREES || ne.lon - sw.lon > MAX_BOX_DEGREES {
        return Err(ApiError::field(
            "north",
            format!("the box may be at most {MAX_BOX_DEGREES} degrees on a side"),
        ));
    }
    let from = time_param("from", Some(&q.from))?.unwrap_or_default();
    let to = time_param("to", Some(&q.to))?.unwrap_or_default();
    if from > to {
        return Err(ApiError::field("from", "from is after to"));
    }
    if to - from > MAX_WINDOW_MS {
        return Err(ApiError::field(
            "from",
            "the window from..to is longer than 24 hours",
        ));
    }
    let limit = limit(q.limit)?;
    let target = format!(
        "box {:.6},{:.6}..{:.6},{:.6} {}..{}",
        sw.lat, sw.lon, ne.lat, ne.lon, q.from, q.to
    );
    audit(
        &state,
        &caller,
        "tags.through",
        target,
        q.purpose.as_deref(),
    )
    .await?;
    let visits = state
        .store
        .visits_in_box(
            GeoBox {
                south: sw.lat,
                west: sw.lon,
                north: ne.lat,
                east: ne.lon,
            },
            from,
            to,
            limit,
        )
        .await?;
    Ok(Json(json!({
        "truncated": visits.len() == limit as usize,
        "visits": visits.iter().map(|p| json!({
            "tag": p.visit.tag.0,
            "station": p.visit.station.0,
            "lat": p.position.lat,
            "lon": p.position.lon,
            "first_seen": to_rfc3339(p.visit.first_seen_ms),
            "last_seen": to_rfc3339(p.visit.last_seen_ms),
        })).collect::<Vec<_>>()
    })))
}
