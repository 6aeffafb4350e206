//! # Request input: bodies, path ids, free text and times, each checked with a 4xx that names
//! the field. Shared by every handler.

use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::Json;
use tagwatch_model::geo::GeoError;
use tagwatch_model::time::from_rfc3339;
use tagwatch_model::{GeoPoint, TagId};

/// Longest free-text field (names, plates, notes).
const MAX_TEXT: usize = 200;

pub(crate) type Body<T> = Result<Json<T>, JsonRejection>;

pub(crate) fn text(field: &'static str, value: String) -> Result<String, ApiError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(ApiError::field(field, format!("{field} must not be empty")));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::field(
            field,
            format!("{field} is longer than {MAX_TEXT} characters"),
        ));
    }
    Ok(value)
}

/// A free-text field that may be left out or empty (then `""`), within the same length bound.
pub(crate) fn optional_text(
    field: &'static str,
    value: Option<String>,
) -> Result<String, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(String::new()),
        Some(_) => text(field, value.unwrap_or_default()),
    }
}

/// A JSON body whose fields are all optional, so the body itself may be left out (empty or
/// blank: every field absent). `what` names it in the error.
pub(crate) fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadBody(format!("invalid {what}: {e}")))
}

/// A positive id from a path (`/cases/{id}`); `what` names it in the error.
pub(crate) fn path_id(what: &str, id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::field("id", format!("{what} id {id:?} is not a number")))
}

pub(crate) fn id_u32(field: &'static str, value: i64) -> Result<u32, ApiError> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v != 0)
        .ok_or_else(|| ApiError::field(field, format!("{field} must be in 1..=4294967295")))
}

pub(crate) fn tag_from_path(tag: &str) -> Result<TagId, ApiError> {
    tag.parse::<i64>()
        .map_err(|_| ApiError::field("tag", format!("tag {tag:?} is not a number")))
        .and_then(|t| id_u32("tag", t))
        .map(TagId)
}

pub(crate) fn time_param(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            from_rfc3339(v).map_err(|_| {
                ApiError::field(
                    field,
                    format!("{field} {v:?} is not an RFC 3339 time (e.g. 2026-11-23T08:00:00Z)"),
                )
            })
        })
        .transpose()
}

/// A position from a request's `lat` and `lon`, the offending one named when out of range.
pub(crate) fn point(lat: f64, lon: f64) -> Result<GeoPoint, ApiError> {
    GeoPoint::new(lat, lon).map_err(|e| {
        let field = match e {
            GeoError::Latitude(_) => "lat",
            GeoError::Longitude(_) => "lon",
        };
        ApiError::field(field, e.to_string())
    })
}
