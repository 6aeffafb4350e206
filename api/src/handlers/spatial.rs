//! # Spatial queries for police: tags near a point now, tags through an area in a window, tags
//! travelling with a tag, and where stolen tags go dark.
//!
//! All reveal who was where, so all need a purpose and are audited, like a vehicle's track. They
//! are answered by the tracker's in-memory indexes for the time they cover; "through" falls back
//! to the store for older windows.

use crate::answers::{Companion, Companions, DarkTag, Den, Dens, VehicleLabel};
use crate::audit::{audit, checked_params, movement_query, require_police};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::identity::labels;
use crate::input::{point, time_param};
use crate::live::Gathered;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{GeoBox, TagId};
use tagwatch_tracker::companions_of;
use tagwatch_tracker::questions::{Answer, Question};

/// Largest radius of a "near" query.
pub const MAX_RADIUS_M: f64 = 5_000.0;
/// Furthest back a "near" query looks.
const MAX_MINUTES: u32 = 24 * 60;
/// Largest side of a "through" box, in degrees (about 11 km).
const MAX_BOX_DEGREES: f64 = 0.1;
/// Longest window of a "through" query.
const MAX_WINDOW_MS: i64 = 24 * 3_600_000;
/// Most rows in one answer.
const MAX_ROWS: u32 = 5_000;

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
    uri: axum::http::Uri,
    query: Result<Query<NearQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<NearAnswer>, ApiError> {
    let q = movement_query(&state, &caller, "tags.near", "area".into(), &uri, query).await?;
    require_police(&state, &caller, "tags.near", q.purpose.as_deref()).await?;
    let params = (|| {
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
        Ok((center, minutes, limit(q.limit)?))
    })();
    let (center, minutes, limit) = checked_params(
        &state,
        &caller,
        "tags.near",
        "area".into(),
        q.purpose.as_deref(),
        params,
    )
    .await?;
    let target = format!("near {:.6},{:.6} r={}m", center.lat, center.lon, q.radius_m);
    audit(&state, &caller, "tags.near", target, q.purpose.as_deref()).await?;
    let since = now_ms() - i64::from(minutes) * 60_000;
    let radius = q.radius_m;
    let question = Question::Near {
        center,
        radius_m: radius,
        since_ms: since,
        limit: limit as usize,
    };
    let Gathered { answer, missing } = crate::live::area(&state, question).await?;
    let Answer::Near(found) = answer else {
        return Err(ApiError::internal("not an answer to near"));
    };
    let mut labels = labels(&state, found.iter().map(|(tag, _, _)| *tag)).await?;
    let tags = found
        .iter()
        .map(|(tag, last, distance)| NearTag {
            tag: tag.0,
            station: last.station.0,
            lat: last.position.lat,
            lon: last.position.lon,
            seen_at: to_rfc3339(last.seen_at_ms),
            distance_m: (distance * 10.0).round() / 10.0,
            vehicle: labels.remove(tag),
        })
        .collect();
    Ok(Json(NearAnswer {
        tags,
        missing_partitions: missing,
    }))
}

/// Answers of thousands of rows are serialised straight from these, not built as JSON trees.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NearAnswer {
    tags: Vec<NearTag>,
    /// On a cluster's API node, the partitions whose shards did not answer in time: their
    /// vehicles are missing from the answer. Absent when every partition answered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing_partitions: Vec<u16>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct NearTag {
    tag: u32,
    station: u32,
    lat: f64,
    lon: f64,
    seen_at: String,
    distance_m: f64,
    /// Its plate and description, and whether it is stolen (absent: not registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<VehicleLabel>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ThroughAnswer {
    source: &'static str,
    truncated: bool,
    tags: Vec<Passage>,
    /// As in [`NearAnswer`]: partitions missing from the answer's memory part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    missing_partitions: Vec<u16>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct Passage {
    tag: u32,
    first_seen: String,
    last_seen: String,
    /// As in a "near" answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<VehicleLabel>,
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

/// `GET /api/v1/tags/through?south=&west=&north=&east=&from=&to=&limit=&purpose=`: every tag that
/// was in the box during the window (at a station inside it, or, from memory, passing through it
/// between stations), with when it was first and last there, by tag. `source` says whether the
/// tracker's memory answered, or the store (for windows memory does not cover, with memory's
/// passages for the part it does).
pub async fn tags_through(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
    query: Result<Query<ThroughQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ThroughAnswer>, ApiError> {
    let q = movement_query(&state, &caller, "tags.through", "area".into(), &uri, query).await?;
    require_police(&state, &caller, "tags.through", q.purpose.as_deref()).await?;
    let params = (|| {
        let sw = point(q.south, q.west)?;
        let ne = point(q.north, q.east)?;
        if sw.lat > ne.lat || sw.lon > ne.lon {
            return Err(ApiError::field(
                "south",
                "south/west must be below north/east",
            ));
        }
        // A tolerance for decimal degrees that binary floats cannot hold: 23.3 - 23.2 is
        // 0.10000000000000142, and a 0.1-degree box must pass.
        let too_wide = |side: f64| side > MAX_BOX_DEGREES + 1e-9;
        if too_wide(ne.lat - sw.lat) || too_wide(ne.lon - sw.lon) {
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
        Ok((sw, ne, from, to, limit(q.limit)?))
    })();
    let (sw, ne, from, to, limit) = checked_params(
        &state,
        &caller,
        "tags.through",
        "area".into(),
        q.purpose.as_deref(),
        params,
    )
    .await?;
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
    let area = GeoBox {
        south: sw.lat,
        west: sw.lon,
        north: ne.lat,
        east: ne.lon,
    };
    let question = Question::Through {
        area,
        from_ms: from,
        to_ms: to,
        limit: limit as usize,
    };
    let Gathered { answer, missing } = crate::live::area(&state, question).await?;
    let Answer::Through {
        covered,
        passages: from_memory,
    } = answer
    else {
        return Err(ApiError::internal("not an answer to through"));
    };
    let from_memory = from_memory.iter().map(|p| (p.tag.0, p.first_ms, p.last_ms));
    // A partition missing from memory's answer is read from the store (up to its checkpoint).
    let (source, passages) = if covered && missing.is_empty() {
        ("memory", from_memory.collect::<Vec<_>>())
    } else {
        // Visits, grouped by tag; the store caps the visits, so the answer may be cut short.
        // Memory's passages join them: the store has the latest visits only from the next
        // checkpoint on.
        let visits = state.store.visits_in_box(area, from, to, MAX_ROWS).await?;
        let mut by_tag: std::collections::BTreeMap<u32, (i64, i64)> = Default::default();
        let stored = visits.iter().map(|p| {
            (
                p.visit.tag.0,
                p.visit.first_seen_ms.max(from),
                p.visit.last_seen_ms.min(to),
            )
        });
        for (tag, first, last) in stored.chain(from_memory) {
            let e = by_tag.entry(tag).or_insert((first, last));
            *e = (e.0.min(first), e.1.max(last));
        }
        let found: Vec<_> = by_tag.into_iter().map(|(t, (f, l))| (t, f, l)).collect();
        ("store", found)
    };
    let truncated = passages.len() >= limit as usize;
    let shown = &passages[..passages.len().min(limit as usize)];
    let mut labels = labels(&state, shown.iter().map(|&(tag, _, _)| TagId(tag))).await?;
    let tags = shown
        .iter()
        .map(|&(tag, first, last)| Passage {
            tag,
            first_seen: to_rfc3339(first),
            last_seen: to_rfc3339(last),
            vehicle: labels.remove(&TagId(tag)),
        })
        .collect();
    Ok(Json(ThroughAnswer {
        source,
        truncated,
        tags,
        missing_partitions: missing,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanionsQuery {
    from: Option<String>,
    to: Option<String>,
    within_s: Option<u32>,
    min_times: Option<u32>,
    limit: Option<u32>,
    purpose: Option<String>,
}

/// Widest "arrived together" gap.
const MAX_WITHIN_S: u32 = 600;

/// `GET /api/v1/vehicles/{tag}/companions?from=&to=&within_s=&min_times=&limit=&purpose=`: tags
/// that arrived at the same stations as this one, within `within_s` (default 60) of it, at
/// `min_times` (default 3) or more of them: accomplices, or a convoy. Answered from memory; by
/// default over as much of the last 24 hours as memory holds.
pub async fn travelling_with(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(tag): axum::extract::Path<String>,
    uri: axum::http::Uri,
    query: Result<Query<CompanionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Companions>, ApiError> {
    let tag = crate::input::tag_from_path(&tag)?;
    let target = format!("tag:{tag}");
    let q = movement_query(&state, &caller, "vehicle.companions", target, &uri, query).await?;
    require_police(&state, &caller, "vehicle.companions", q.purpose.as_deref()).await?;
    let now = now_ms();
    let params = (|| {
        let to = time_param("to", q.to.as_deref())?.unwrap_or(now);
        let from = time_param("from", q.from.as_deref())?;
        if from.is_some_and(|from| from > to) {
            return Err(ApiError::field("from", "from is after to"));
        }
        let within_s = q.within_s.unwrap_or(60);
        if !(1..=MAX_WITHIN_S).contains(&within_s) {
            return Err(ApiError::field(
                "within_s",
                format!("within_s must be 1..={MAX_WITHIN_S}"),
            ));
        }
        let min_times = q.min_times.unwrap_or(3);
        if !(1..=100).contains(&min_times) {
            return Err(ApiError::field("min_times", "min_times must be 1..=100"));
        }
        Ok((from, to, within_s, min_times, limit(q.limit)?))
    })();
    let (from, to, within_s, min_times, limit) = checked_params(
        &state,
        &caller,
        "vehicle.companions",
        format!("tag:{tag}"),
        q.purpose.as_deref(),
        params,
    )
    .await?;
    audit(
        &state,
        &caller,
        "vehicle.companions",
        format!("tag:{tag}"),
        q.purpose.as_deref(),
    )
    .await?;
    // Where the vehicle stopped (by default as far back as memory reaches, at most 24 hours),
    // then who arrived with it at each stop: in a cluster, its partition first, then all.
    let stops = crate::live::stops(&state, tag, from, to, MAX_WINDOW_MS)
        .await?
        .ok_or_else(|| {
            ApiError::field(
                "from",
                "this question is answered from the tracker's memory, which does not reach back \
                 to from",
            )
        })?;
    let question = Question::Arrivals {
        stops: stops.clone(),
        within_ms: i64::from(within_s) * 1_000,
    };
    let Gathered { answer, missing } = crate::live::area(&state, question).await?;
    let Answer::Arrivals(arrivals) = answer else {
        return Err(ApiError::internal("not an answer to arrivals"));
    };
    let found = companions_of(tag, &stops, &arrivals, min_times as usize, limit as usize);
    Ok(Json(Companions {
        missing_partitions: missing,
        tag: tag.0,
        companions: found
            .iter()
            .map(|c| Companion {
                tag: c.tag.0,
                times: c.stations.len(),
                stations: c.stations.iter().map(|s| s.0).collect(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensQuery {
    dark_minutes: Option<u32>,
    radius_m: Option<f64>,
    min_tags: Option<u32>,
    purpose: Option<String>,
}

/// `GET /api/v1/dens?dark_minutes=&radius_m=&min_tags=&purpose=`: where stolen tags go dark:
/// clusters (within `radius_m`, default 300) of at least `min_tags` (default 2) last places of
/// stolen vehicles not heard for `dark_minutes` (default 30), largest first.
pub async fn dens(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
    query: Result<Query<DensQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Dens>, ApiError> {
    let q = movement_query(&state, &caller, "dens", "area".into(), &uri, query).await?;
    require_police(&state, &caller, "dens", q.purpose.as_deref()).await?;
    let params = (|| {
        let dark_minutes = q.dark_minutes.unwrap_or(30);
        if !(1..=MAX_MINUTES).contains(&dark_minutes) {
            return Err(ApiError::field(
                "dark_minutes",
                format!("dark_minutes must be 1..={MAX_MINUTES}"),
            ));
        }
        let radius = q.radius_m.unwrap_or(300.0);
        if !(radius > 0.0 && radius <= MAX_RADIUS_M) {
            return Err(ApiError::field(
                "radius_m",
                format!("radius_m must be more than 0 and at most {MAX_RADIUS_M}"),
            ));
        }
        let min_tags = q.min_tags.unwrap_or(2);
        if !(1..=1_000).contains(&min_tags) {
            return Err(ApiError::field("min_tags", "min_tags must be 1..=1000"));
        }
        Ok((dark_minutes, radius, min_tags))
    })();
    let (dark_minutes, radius, min_tags) = checked_params(
        &state,
        &caller,
        "dens",
        "area".into(),
        q.purpose.as_deref(),
        params,
    )
    .await?;
    audit(
        &state,
        &caller,
        "dens",
        format!("dark {dark_minutes} min, r={radius} m"),
        q.purpose.as_deref(),
    )
    .await?;
    let now = now_ms();
    let question = Question::Dark {
        now_ms: now,
        dark_for_ms: i64::from(dark_minutes) * 60_000,
    };
    let Gathered { answer, missing } = crate::live::area(&state, question).await?;
    let Answer::Dark {
        reference_lat,
        tags,
    } = answer
    else {
        return Err(ApiError::internal("not an answer to dark"));
    };
    let found = tagwatch_tracker::dens_of(tags, reference_lat, radius, min_tags as usize);
    Ok(Json(Dens {
        missing_partitions: missing,
        dens: found
            .iter()
            .map(|d| Den {
                lat: d.center.lat,
                lon: d.center.lon,
                tags: d
                    .tags
                    .iter()
                    .map(|(tag, last)| DarkTag {
                        tag: tag.0,
                        station: last.station.0,
                        last_seen: to_rfc3339(last.seen_at_ms),
                    })
                    .collect(),
            })
            .collect(),
    }))
}
