//! # Vehicles: registration (admin), guard mode (the owner arms and disarms), and where one is
//! now (police, or its owner; audited with its purpose).

use crate::answers::{
    source_of, GuardAnswer, LocationAnswer, PlateMatch, PlateMatches, TrackerFix, VehicleAnswer,
    VehicleLabel,
};
use crate::audit::{
    accessible_vehicle, audit, audit_movements, checked_params, movement_query, require_police,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{id_u32, optional_body, optional_text, tag_from_path, text, Body};
use crate::{tell_tracker, ApiState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{Role, TagId, Vehicle};
use tagwatch_tracker::Command;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVehicle {
    tag: i64,
    plate: String,
    #[serde(default)]
    make: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    colour: Option<String>,
    owner_name: String,
    owner_phone: String,
    /// The username of the owner's account, if they have one.
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /api/v1/vehicles` (admin: vehicles are registered at the registration desk)
pub async fn create_vehicle(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewVehicle>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let vehicle = Vehicle {
        tag: TagId(id_u32("tag", new.tag)?),
        plate: plate(new.plate)?,
        make: optional_text("make", new.make)?,
        model: optional_text("model", new.model)?,
        colour: optional_text("colour", new.colour)?,
        owner_name: text("owner_name", new.owner_name)?,
        owner_phone: text("owner_phone", new.owner_phone)?,
    };
    let owner = match new.owner.as_deref() {
        Some(username) => {
            let user = state
                .store
                .user_by_name(username)
                .await?
                .ok_or_else(|| ApiError::field("owner", format!("no user {username:?}")))?;
            if user.role != Role::Owner {
                return Err(ApiError::field(
                    "owner",
                    format!("{username:?} is not an owner"),
                ));
            }
            Some(user)
        }
        None => None,
    };
    state.store.insert_vehicle(&vehicle, now_ms()).await?;
    state.identities.forget(vehicle.tag);
    if let Some(user) = &owner {
        state.store.set_vehicle_owner(vehicle.tag, user.id).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(VehicleAnswer::of(vehicle, Some(owner.map(|u| u.username)))),
    ))
}

/// Longest plate, as typed.
const MAX_PLATE_CHARS: usize = 20;

/// A plate as registered or searched: free text (plates differ by country) of at most
/// [`MAX_PLATE_CHARS`], with at least two letters or digits once separators are taken out.
fn plate(value: String) -> Result<String, ApiError> {
    let plate = text("plate", value)?;
    if plate.chars().count() > MAX_PLATE_CHARS {
        return Err(ApiError::field(
            "plate",
            format!("plate is longer than {MAX_PLATE_CHARS} characters"),
        ));
    }
    if tagwatch_model::plate_key(&plate).chars().count() < 2 {
        return Err(ApiError::field(
            "plate",
            "plate needs at least two letters or digits besides separators",
        ));
    }
    Ok(plate)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleChange {
    plate: Option<String>,
    make: Option<String>,
    model: Option<String>,
    colour: Option<String>,
    owner_name: Option<String>,
    owner_phone: Option<String>,
}

/// `PATCH /api/v1/vehicles/{tag}` (admin): corrects what is recorded of a vehicle (a new plate,
/// a repaint, the owner's new phone). Fields left out stay as they are; make, model and colour
/// may be set empty.
pub async fn update_vehicle(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<VehicleAnswer>, ApiError> {
    caller.require(&[Role::Admin])?;
    let tag = tag_from_path(&tag)?;
    // Every field is optional, so is the body: an empty PATCH changes nothing.
    let change: VehicleChange = optional_body(&body, "vehicle change")?;
    let mut vehicle = state
        .store
        .vehicle(tag)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no vehicle with tag {tag}")))?;
    if let Some(value) = change.plate {
        vehicle.plate = plate(value)?;
    }
    for (field, value, slot) in [
        ("make", change.make, &mut vehicle.make),
        ("model", change.model, &mut vehicle.model),
        ("colour", change.colour, &mut vehicle.colour),
    ] {
        if value.is_some() {
            *slot = optional_text(field, value)?;
        }
    }
    if let Some(value) = change.owner_name {
        vehicle.owner_name = text("owner_name", value)?;
    }
    if let Some(value) = change.owner_phone {
        vehicle.owner_phone = text("owner_phone", value)?;
    }
    state.store.update_vehicle(&vehicle).await?;
    state.identities.forget(vehicle.tag);
    Ok(Json(VehicleAnswer::of(vehicle, None)))
}

/// Most vehicles a plate search answers: a plate search names a vehicle; more matches than
/// this mean "type more of the plate".
const MAX_PLATE_MATCHES: u32 = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateQuery {
    plate: Option<String>,
    purpose: Option<String>,
}

/// `GET /api/v1/vehicles/search?plate=&purpose=` (police): the vehicles whose plate
/// starts with what was typed (separators and letter case ignored; the exact plate first), each
/// with its description, whether it is stolen, and where it was last placed. It reveals where
/// vehicles are, so it states a purpose and is audited: the search, and each vehicle found.
pub async fn search(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
    query: Result<Query<PlateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PlateMatches>, ApiError> {
    const ACTION: &str = "vehicle.search";
    let q = movement_query(&state, &caller, ACTION, "plate".into(), &uri, query).await?;
    require_police(&state, &caller, ACTION, q.purpose.as_deref()).await?;
    let params = plate(q.plate.clone().unwrap_or_default());
    let key = checked_params(
        &state,
        &caller,
        ACTION,
        "plate".into(),
        q.purpose.as_deref(),
        params,
    )
    .await
    .map(|plate| tagwatch_model::plate_key(&plate))?;
    let target = format!("plate:{key}");
    // One more than shown, to tell a full answer from a cut one.
    let mut found = state
        .store
        .vehicles_by_plate(&key, MAX_PLATE_MATCHES + 1)
        .await?;
    let truncated = found.len() > MAX_PLATE_MATCHES as usize;
    found.truncate(MAX_PLATE_MATCHES as usize);
    // The search itself, then one entry per vehicle found, so that "who looked at this
    // vehicle" (the audit log by tag) shows the searches that revealed where it was.
    audit(&state, &caller, ACTION, target, q.purpose.as_deref()).await?;
    let purpose = q.purpose.as_deref();
    futures_util::future::try_join_all(found.iter().map(|(vehicle, _)| {
        audit(
            &state,
            &caller,
            ACTION,
            format!("tag:{}", vehicle.tag),
            purpose,
        )
    }))
    .await?;
    let mut vehicles = Vec::with_capacity(found.len());
    for (vehicle, stolen) in found {
        vehicles.push(PlateMatch {
            tag: vehicle.tag.0,
            vehicle: VehicleLabel::of(&vehicle, stolen),
            location: whereabouts(&state, vehicle.tag).await?,
        });
    }
    Ok(Json(PlateMatches {
        vehicles,
        truncated,
    }))
}

/// `POST /api/v1/vehicles/{tag}/arm`: guard mode while parked. The vehicle is guarded where it
/// was last heard; heard away from there, it raises `armed_moved`.
pub async fn arm(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<GuardAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    let place = crate::live::last_seen(&state, tag).await?.ok_or_else(|| {
        ApiError::Conflict(format!(
            "tag {tag} has not been heard yet: arm it where a station can hear it"
        ))
    })?;
    let armed_at = now_ms();
    state
        .store
        .arm(tag, armed_at, place.station, place.position)
        .await?;
    tell_tracker(
        &state,
        Command::Armed {
            tag,
            position: place.position,
        },
    )
    .await?;
    Ok(Json(GuardAnswer {
        tag: tag.0,
        armed: true,
        armed_at: Some(to_rfc3339(armed_at)),
        station: Some(place.station.0),
        lat: Some(place.position.lat),
        lon: Some(place.position.lon),
    }))
}

/// `POST /api/v1/vehicles/{tag}/disarm`
pub async fn disarm(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<GuardAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    if !state.store.disarm(tag, now_ms()).await? {
        return Err(ApiError::Conflict(format!("tag {tag} is not armed")));
    }
    tell_tracker(&state, Command::Disarmed { tag }).await?;
    Ok(Json(GuardAnswer {
        tag: tag.0,
        armed: false,
        armed_at: None,
        station: None,
        lat: None,
        lon: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeQuery {
    purpose: Option<String>,
}

/// `GET /api/v1/vehicles/{tag}/location`
pub async fn location(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    uri: axum::http::Uri,
    query: Result<Query<PurposeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LocationAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    let target = format!("tag:{tag}");
    let query = movement_query(&state, &caller, "vehicle.location", target, &uri, query).await?;
    audit_movements(
        &state,
        &caller,
        "vehicle.location",
        tag,
        query.purpose.as_deref(),
    )
    .await?;
    whereabouts(&state, tag)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("tag {tag} has not been heard yet")))
}

/// Where `tag` is placed now (`None`: never heard). Asked only after the query is audited.
pub(crate) async fn whereabouts(
    state: &ApiState,
    tag: TagId,
) -> Result<Option<LocationAnswer>, ApiError> {
    // The tracker knows where it is placed now and how it is moving; after a restart, before
    // it is heard again, the store knows where it was last.
    if let Some(now) = crate::live::location(state, tag).await? {
        let mut answer = LocationAnswer {
            tag: tag.0,
            station: now.station.0,
            lat: now.position.lat,
            lon: now.position.lon,
            seen_at: to_rfc3339(now.seen_at_ms),
            placed_since: Some(to_rfc3339(now.since_ms)),
            heading_deg: now.heading_deg.map(|h| (h * 10.0).round() / 10.0),
            speed_mps: now.speed_mps.map(|v| (v * 10.0).round() / 10.0),
            source: source_of(now.station.0),
            gps: None,
        };
        with_gps(state, &mut answer);
        return Ok(Some(answer));
    }
    let Some(location) = state.store.last_location(tag).await? else {
        return Ok(None);
    };
    Ok(Some(LocationAnswer {
        tag: tag.0,
        station: location.station.0,
        lat: location.position.lat,
        lon: location.position.lon,
        seen_at: to_rfc3339(location.seen_at_ms),
        placed_since: None,
        heading_deg: None,
        speed_mps: None,
        source: source_of(location.station.0),
        gps: None,
    }))
}

/// Placed by its GPS tracker: the speed and course the device measured, not ones worked out
/// from the moves between places.
fn with_gps(state: &ApiState, answer: &mut LocationAnswer) {
    if answer.source != "gps" {
        return;
    }
    let station = tagwatch_model::StationId(answer.station);
    let Some(fix) = state.devices.report_of_station(station).and_then(|r| r.fix) else {
        return;
    };
    answer.speed_mps = Some((f64::from(fix.speed_kmh) / 3.6 * 10.0).round() / 10.0);
    answer.heading_deg = Some(f64::from(fix.course_deg));
    answer.gps = Some(TrackerFix {
        at: to_rfc3339(fix.at_ms),
        lat: fix.lat,
        lon: fix.lon,
        speed_kmh: fix.speed_kmh,
        course_deg: fix.course_deg,
    });
}
