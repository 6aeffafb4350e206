//! # Which alerts a listener gets: an owner only their vehicles', and anyone may narrow the list
//! or the live stream to an area (a box, or a precinct's outline) and to some kinds.

use crate::answers::{PrecinctView, Precincts};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::point;
use crate::input::Body;
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use geo::{Contains, Coord, LineString, Point, Polygon};
use serde::Deserialize;
use std::collections::HashSet;
use tagwatch_model::fence::MAX_FENCE_VERTICES;
use tagwatch_model::time::now_ms;
use tagwatch_model::{Alert, AlertKind, GeoPoint, Role, TagId};

/// The filter parameters of `GET /alerts` and `GET /alerts/stream`, as given.
#[derive(Debug, Default)]
pub struct FilterParams {
    pub precinct: Option<i64>,
    pub south: Option<f64>,
    pub west: Option<f64>,
    pub north: Option<f64>,
    pub east: Option<f64>,
    /// Comma-separated alert kinds.
    pub kinds: Option<String>,
}

/// A listener's filter.
#[derive(Debug, Default)]
pub struct AlertFilter {
    /// `Some`: only alerts about these tags (an owner's vehicles).
    tags: Option<HashSet<TagId>>,
    area: Option<Polygon<f64>>,
    kinds: Option<Vec<AlertKind>>,
}

fn polygon(outline: &[GeoPoint]) -> Polygon<f64> {
    let ring: Vec<Coord<f64>> = outline
        .iter()
        .map(|p| Coord { x: p.lon, y: p.lat })
        .collect();
    Polygon::new(LineString::from(ring), Vec::new())
}

impl AlertFilter {
    /// The filter for `caller` with `params`, every field checked.
    pub async fn new(
        state: &ApiState,
        caller: &Caller,
        params: FilterParams,
    ) -> Result<Self, ApiError> {
        let tags = match (caller.role.is_police(), caller.user) {
            (true, _) => None,
            (false, Some(owner)) => Some(
                state
                    .store
                    .vehicles_of(owner)
                    .await?
                    .into_iter()
                    .map(|v| v.tag)
                    .collect(),
            ),
            (false, None) => Some(HashSet::new()),
        };
        let corners = [params.south, params.west, params.north, params.east];
        let any_corner = corners.iter().any(Option::is_some);
        if params.precinct.is_some() && any_corner {
            return Err(ApiError::field(
                "precinct",
                "give a precinct or a box (south, west, north, east), not both",
            ));
        }
        let area = match (params.precinct, corners) {
            (Some(id), _) => {
                let precinct = state
                    .store
                    .precinct(id)
                    .await?
                    .ok_or_else(|| ApiError::field("precinct", format!("no precinct {id}")))?;
                Some(polygon(&precinct.area))
            }
            (None, [Some(s), Some(w), Some(n), Some(e)]) => {
                let (sw, ne) = (point(s, w)?, point(n, e)?);
                if sw.lat >= ne.lat || sw.lon >= ne.lon {
                    return Err(ApiError::field(
                        "south",
                        "the box needs south < north and west < east",
                    ));
                }
                let (se, nw) = (
                    GeoPoint {
                        lat: sw.lat,
                        lon: ne.lon,
                    },
                    GeoPoint {
                        lat: ne.lat,
                        lon: sw.lon,
                    },
                );
                Some(polygon(&[sw, se, ne, nw]))
            }
            (None, _) if any_corner => {
                return Err(ApiError::field(
                    "south",
                    "a box needs all of south, west, north and east",
                ))
            }
            (None, _) => None,
        };
        let kinds = params
            .kinds
            .as_deref()
            .map(|list| {
                list.split(',')
                    .map(|k| {
                        AlertKind::parse(k.trim()).ok_or_else(|| {
                            ApiError::field("kinds", format!("{k:?} is not an alert kind"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Self { tags, area, kinds })
    }

    /// `Some`: the only tags whose alerts the listener may see (an owner's vehicles).
    pub fn owned_tags(&self) -> Option<&HashSet<TagId>> {
        self.tags.as_ref()
    }

    /// Whether the listener gets `alert`.
    pub fn admits(&self, alert: &Alert) -> bool {
        let tag_ok = self
            .tags
            .as_ref()
            .is_none_or(|tags| alert.tag.is_some_and(|t| tags.contains(&t)));
        let place = Point::new(alert.position.lon, alert.position.lat);
        let area_ok = self.area.as_ref().is_none_or(|a| a.contains(&place));
        let kind_ok = self.kinds.as_ref().is_none_or(|k| k.contains(&alert.kind));
        tag_ok && area_ok && kind_ok
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPrecinct {
    name: String,
    /// The outline as `[lat, lon]` pairs.
    area: Vec<[f64; 2]>,
}

/// An area's outline from `[lat, lon]` pairs: 3 to [`MAX_FENCE_VERTICES`] valid points, or a
/// 400 naming `area`. (Geofences and precincts.)
pub(crate) fn outline(pairs: &[[f64; 2]]) -> Result<Vec<GeoPoint>, ApiError> {
    if !(3..=MAX_FENCE_VERTICES).contains(&pairs.len()) {
        return Err(ApiError::field(
            "area",
            format!("area must have 3 to {MAX_FENCE_VERTICES} [lat, lon] vertices"),
        ));
    }
    pairs
        .iter()
        .map(|&[lat, lon]| point(lat, lon).map_err(|e| ApiError::field("area", e.to_string())))
        .collect()
}

/// `POST /api/v1/precincts` `{name, area}` (admin): a district to filter alerts by.
pub async fn create_precinct(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewPrecinct>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let name = crate::input::text("name", new.name)?;
    let area = outline(&new.area)?;
    let id = state.store.insert_precinct(&name, &area, now_ms()).await?;
    Ok((
        StatusCode::CREATED,
        Json(PrecinctView {
            id,
            name,
            area: None,
        }),
    ))
}

/// `GET /api/v1/precincts` (police).
pub async fn precincts(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Precincts>, ApiError> {
    caller.require(&[Role::Officer, Role::Dispatcher, Role::Admin])?;
    let all = state.store.precincts().await?;
    Ok(Json(Precincts {
        precincts: all
            .into_iter()
            .map(|p| PrecinctView {
                id: p.id,
                name: p.name,
                area: Some(p.area.iter().map(|v| [v.lat, v.lon]).collect()),
            })
            .collect(),
    }))
}
