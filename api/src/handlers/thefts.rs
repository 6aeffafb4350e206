//! # Thefts: a report opens a case (every later sighting alerts, and the latest since the owner
//! last saw it is looked back for); a recovery closes it.

use crate::answers::CaseAnswer;
use crate::audit::accessible_vehicle;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{optional_body, tag_from_path, text, time_param};
use crate::{tell_tracker, ApiState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_tracker::{Command, LastSeen};

/// How far a theft report without `last_seen_at` looks back when its owner never armed,
/// disarmed or recovered the vehicle.
const DEFAULT_LOOK_BACK_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TheftReport {
    #[serde(default)]
    note: Option<String>,
    /// When the owner last saw the vehicle (RFC 3339): sightings since then are searched at once.
    #[serde(default)]
    last_seen_at: Option<String>,
    /// Where the owner last saw it, in their words.
    #[serde(default)]
    last_seen_place: Option<String>,
}

/// `POST /api/v1/vehicles/{tag}/theft`: opens a case; from now on every sighting alerts.
pub async fn report_theft(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    // The body is optional: an empty POST reports the theft with no note.
    let report: TheftReport = optional_body(&body, "theft report")?;
    let mut note = match report.note {
        Some(note) if !note.trim().is_empty() => text("note", note)?,
        _ => String::new(),
    };
    if let Some(place) = report.last_seen_place.filter(|p| !p.trim().is_empty()) {
        let place = text("last_seen_place", place)?;
        note = format!(
            "{note}{}last seen at: {place}",
            if note.is_empty() { "" } else { "\n" }
        );
    }
    let opened_at = now_ms();
    let given = time_param("last_seen_at", report.last_seen_at.as_deref())?;
    if given.is_some_and(|since| since > opened_at) {
        return Err(ApiError::field(
            "last_seen_at",
            "last_seen_at is in the future",
        ));
    }
    // Without a time, the owner last had it when they last armed, disarmed or recovered it; else
    // the look-back covers the last day (a sighting a minute before the report is the one to
    // chase).
    let since = match given {
        Some(since) => since,
        None => match state.store.owner_last_had(tag).await? {
            Some(changed) => changed,
            None => opened_at - DEFAULT_LOOK_BACK_MS,
        },
    };
    // The look-back reaches into the store for sightings older than the tracker's memory.
    let stored = state
        .store
        .last_location(tag)
        .await?
        .filter(|l| l.seen_at_ms >= since)
        .map(|l| LastSeen {
            station: l.station,
            position: l.position,
            seen_at_ms: l.seen_at_ms,
        });
    let case = state.store.open_case(tag, opened_at, &note).await?;
    tell_tracker(
        &state,
        Command::Stolen {
            tag,
            case,
            since_ms: Some(since),
            stored,
        },
    )
    .await?;
    tracing::info!(%tag, case = case.0, "theft reported");
    Ok((
        StatusCode::CREATED,
        Json(CaseAnswer {
            case_id: case.0,
            tag: tag.0,
            opened_at: Some(to_rfc3339(opened_at)),
            closed_at: None,
        }),
    ))
}

/// `POST /api/v1/vehicles/{tag}/recovered`: closes the theft case; the tag leaves the stolen
/// list at once, so its next sighting raises nothing.
pub async fn recovered(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(tag): Path<String>,
) -> Result<Json<CaseAnswer>, ApiError> {
    let tag = tag_from_path(&tag)?;
    accessible_vehicle(&state, &caller, tag).await?;
    let closed_at = now_ms();
    let case = state.store.close_case(tag, closed_at).await?;
    tell_tracker(&state, Command::Recovered { tag }).await?;
    let closed = tagwatch_store::CaseEvent {
        at_ms: closed_at,
        actor: caller.username.clone(),
        kind: "closed".into(),
        detail: "recovered".into(),
    };
    state.store.add_case_event(case, &closed).await?;
    tracing::info!(%tag, case = case.0, by = %caller.username, "vehicle recovered");
    Ok(Json(CaseAnswer {
        case_id: case.0,
        tag: tag.0,
        opened_at: None,
        closed_at: Some(to_rfc3339(closed_at)),
    }))
}
