//! # A vehicle's track: its visits in a time window, as GeoJSON.
//!
//! Read from both places a visit lives: the store (everything committed, however old) and the
//! tracker's memory (everything applied, up to its index window). Memory is needed because a
//! visit exists there the moment its detection is applied, and an alert about it is published
//! then too, while the store has it only once the next flush commits: an officer who opens a
//! brand-new alert's track must see the sighting that raised it.

use crate::answers::{source_of, PointGeometry, Track, TrackFeature, TrackVisit, TrackWindow};
use crate::audit::{audit_movements, checked_params, movement_query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::export::Format;
use crate::input::{tag_from_path, time_param};
use crate::ApiState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::HashMap;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{GeoPoint, TagId, Visit};
use tagwatch_store::PlacedVisit;
use tagwatch_tracker::TrackPoint;

/// Widest track window one request may ask for.
const MAX_TRACK_WINDOW_MS: i64 = 31 * 24 * 3_600_000;
/// Default track window when `from` is not given.
const DEFAULT_TRACK_WINDOW_MS: i64 = 24 * 3_600_000;
/// Most visits in one track answer.
const MAX_TRACK_VISITS: u32 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackQuery {
    from: Option<String>,
    to: Option<String>,
    purpose: Option<String>,
    /// `geojson` (the default), `csv`, `gpx` or `kml`.
    format: Option<String>,
}

/// `GET /api/v1/vehicles/{tag}/track?from=&to=&format=`: GeoJSON, one Point per visit, in time
/// order; or the same points as a CSV, GPX or KML file (`crate::export`).
pub async fn track(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    uri: axum::http::Uri,
    query: Result<Query<TrackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_from_path(&tag)?;
    let target = format!("tag:{tag}");
    let query = movement_query(&state, &caller, "vehicle.track", target, &uri, query).await?;
    let window = (|| {
        let to = time_param("to", query.to.as_deref())?.unwrap_or_else(now_ms);
        let from =
            time_param("from", query.from.as_deref())?.unwrap_or(to - DEFAULT_TRACK_WINDOW_MS);
        if from > to {
            return Err(ApiError::field("from", "from is after to"));
        }
        if to - from > MAX_TRACK_WINDOW_MS {
            return Err(ApiError::field(
                "from",
                "the window from..to is longer than 31 days",
            ));
        }
        let format = match query.format.as_deref() {
            None => Format::GeoJson,
            Some(text) => Format::parse(text)
                .ok_or_else(|| ApiError::field("format", "format is geojson, csv, gpx or kml"))?,
        };
        Ok((from, to, format))
    })();
    let (from, to, format) = checked_params(
        &state,
        &caller,
        "vehicle.track",
        format!("tag:{tag}"),
        query.purpose.as_deref(),
        window,
    )
    .await?;
    audit_movements(
        &state,
        &caller,
        "vehicle.track",
        tag,
        query.purpose.as_deref(),
    )
    .await?;
    // The store first, memory second: a visit the store read missed was not committed yet, so
    // it is still in memory when memory is asked (it leaves memory hours after its commit).
    let stored = state.store.track(tag, from, to, MAX_TRACK_VISITS).await?;
    let applied = crate::live::track(&state, tag, from, to).await?;
    let (visits, truncated) = merge(tag, stored, applied, MAX_TRACK_VISITS as usize);
    let mut features = Vec::with_capacity(visits.len());
    for p in &visits {
        let feature = |position: GeoPoint, first_ms: i64, last_ms: i64| TrackFeature {
            kind: "Feature",
            geometry: PointGeometry {
                kind: "Point",
                coordinates: [position.lon, position.lat],
            },
            properties: TrackVisit {
                station: p.visit.station.0,
                source: source_of(p.visit.station.0),
                first_seen: to_rfc3339(first_ms),
                last_seen: to_rfc3339(last_ms),
                best_rssi: p.visit.best_rssi,
                reads: p.visit.reads,
            },
        };
        // A GPS tracker's visit lasts as long as it reports without a gap: one point per fix
        // it kept, so the track follows the road it drove, not one point per visit.
        let fixes = if p.visit.station.is_device() {
            state
                .store
                .reader_fixes_between(
                    p.visit.station,
                    p.visit.first_seen_ms,
                    p.visit.last_seen_ms,
                    MAX_TRACK_VISITS,
                )
                .await?
        } else {
            Vec::new()
        };
        if fixes.is_empty() {
            features.push(feature(
                p.position,
                p.visit.first_seen_ms,
                p.visit.last_seen_ms,
            ));
        }
        for fix in fixes {
            features.push(feature(fix.position, fix.at_ms, fix.at_ms));
        }
    }
    let truncated = truncated || features.len() > MAX_TRACK_VISITS as usize;
    features.truncate(MAX_TRACK_VISITS as usize);
    let body = Track {
        kind: "FeatureCollection",
        properties: TrackWindow {
            tag: tag.0,
            from: to_rfc3339(from),
            to: to_rfc3339(to),
            truncated,
        },
        features,
    };
    let file = match format {
        Format::GeoJson => {
            return Ok(
                ([(header::CONTENT_TYPE, format.content_type())], Json(body)).into_response(),
            )
        }
        Format::Csv => crate::export::csv(&body),
        Format::Gpx => crate::export::gpx(&body),
        Format::Kml => crate::export::kml(&body),
    };
    let disposition = format!(
        "attachment; filename=\"tag-{tag}-track.{}\"",
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file,
    )
        .into_response())
}

/// The stored visits and the tracker's, once each, in time order, at most `limit`; and whether
/// the window held more. Memory's copy of a visit wins: it is at least as new as the store's.
/// `stored` is the store's first `limit` visits by start: when it is full, visits starting after
/// its last are left out too (the next page starts there), so no gap opens inside the answer.
fn merge(
    tag: TagId,
    stored: Vec<PlacedVisit>,
    applied: Vec<TrackPoint>,
    limit: usize,
) -> (Vec<PlacedVisit>, bool) {
    let store_full = stored.len() >= limit;
    let cut = store_full
        .then(|| stored.last().map(|p| p.visit.first_seen_ms))
        .flatten();
    let mut by_id: HashMap<_, PlacedVisit> = stored.into_iter().map(|p| (p.visit.id, p)).collect();
    for point in applied {
        by_id.insert(
            point.visit,
            PlacedVisit {
                visit: Visit {
                    id: point.visit,
                    tag,
                    station: point.station,
                    first_seen_ms: point.first_ms,
                    last_seen_ms: point.last_ms,
                    best_rssi: point.best_rssi,
                    reads: point.reads,
                },
                position: point.position,
            },
        );
    }
    let mut visits: Vec<PlacedVisit> = by_id
        .into_values()
        .filter(|p| cut.is_none_or(|cut| p.visit.first_seen_ms <= cut))
        .collect();
    visits.sort_by_key(|p| (p.visit.first_seen_ms, p.visit.id));
    let truncated = store_full || visits.len() > limit;
    visits.truncate(limit);
    (visits, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_model::{GeoPoint, StationId, VisitId};

    const TAG: TagId = TagId(7);

    fn stored(id: i64, first: i64, last: i64) -> PlacedVisit {
        PlacedVisit {
            visit: Visit {
                id: VisitId(id),
                tag: TAG,
                station: StationId(1),
                first_seen_ms: first,
                last_seen_ms: last,
                best_rssi: -70,
                reads: 1,
            },
            position: GeoPoint { lat: 1.0, lon: 2.0 },
        }
    }

    fn applied(id: i64, first: i64, last: i64) -> TrackPoint {
        TrackPoint {
            visit: VisitId(id),
            station: StationId(2),
            position: GeoPoint { lat: 3.0, lon: 4.0 },
            first_ms: first,
            last_ms: last,
            best_rssi: -50,
            reads: 9,
        }
    }

    fn ids(visits: &[PlacedVisit]) -> Vec<i64> {
        visits.iter().map(|p| p.visit.id.0).collect()
    }

    #[test]
    fn a_visit_not_yet_committed_is_in_the_track() {
        let (visits, truncated) = merge(TAG, vec![stored(1, 0, 10)], vec![applied(2, 20, 30)], 100);
        assert_eq!(ids(&visits), [1, 2]);
        assert_eq!(visits[1].visit.tag, TAG);
        assert_eq!(visits[1].visit.reads, 9);
        assert!(!truncated);
    }

    #[test]
    fn a_visit_in_both_appears_once_as_memory_has_it() {
        let (visits, _) = merge(
            TAG,
            vec![stored(1, 0, 10), stored(2, 20, 25)],
            vec![applied(2, 20, 40)],
            100,
        );
        assert_eq!(ids(&visits), [1, 2]);
        assert_eq!(visits[1].visit.last_seen_ms, 40);
        assert_eq!(visits[1].visit.best_rssi, -50);
    }

    #[test]
    fn a_full_store_page_is_not_extended_past_its_last_visit() {
        let (visits, truncated) = merge(
            TAG,
            vec![stored(1, 0, 10), stored(2, 20, 25)],
            vec![applied(3, 15, 16), applied(4, 30, 40)],
            2,
        );
        // 3 falls inside the page and pushes 2 out; 4 is past the page and is left out.
        assert_eq!(ids(&visits), [1, 3]);
        assert!(truncated);
    }

    #[test]
    fn memory_alone_past_the_limit_is_truncated() {
        let (visits, truncated) = merge(
            TAG,
            Vec::new(),
            (0..5).map(|i| applied(i, i * 10, i * 10 + 5)).collect(),
            3,
        );
        assert_eq!(ids(&visits), [0, 1, 2]);
        assert!(truncated);
    }
}
