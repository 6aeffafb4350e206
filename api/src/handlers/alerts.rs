//! # Stored alerts: the list an officer pages through, filtered by tag, area, precinct and kind
//! (the live ones come by `sse`).

use crate::answers::{AlertList, AlertView};
use crate::audit::{audit_movements, checked_params, movement_query};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::tag_from_path;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    after: Option<i64>,
    /// Newest first, below this sequence number (and above `after`): the latest alerts, and
    /// paging back through history.
    before: Option<i64>,
    limit: Option<u32>,
    tag: Option<String>,
    /// Required of police with `tag`: alerts about one vehicle are its sightings.
    purpose: Option<String>,
    precinct: Option<i64>,
    south: Option<f64>,
    west: Option<f64>,
    north: Option<f64>,
    east: Option<f64>,
    kinds: Option<String>,
}

/// Most alerts in one answer.
const MAX_ALERT_PAGE: u32 = 1_000;

/// `GET /api/v1/alerts?after=&before=&limit=&tag=&precinct=|south=&west=&north=&east=&kinds=`:
/// stored alerts, each with its status. Police: all, oldest first after `after`, or newest first
/// below `before` (the console's history), or one tag's newest first. Owners: their own
/// vehicles' only. The area and kind filters apply to the page read (`limit` alerts scanned).
pub async fn list_alerts(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    #[derive(Deserialize)]
    struct Stated {
        tag: Option<String>,
    }
    // A query that names a vehicle asks for its sightings: a refusal to read it is audited.
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => match Query::<Stated>::try_from_uri(&uri)
            .ok()
            .and_then(|q| q.0.tag)
        {
            Some(tag) => {
                let target = format!("tag:{tag}");
                let refused = Err(rejection);
                movement_query(&state, &caller, "vehicle.alerts", target, &uri, refused).await?
            }
            None => return Err(ApiError::BadBody(rejection.body_text())),
        },
    };
    let tag = query.tag.as_deref().map(tag_from_path).transpose()?;
    let page = (|| {
        let limit = query.limit.unwrap_or(100);
        if !(1..=MAX_ALERT_PAGE).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("limit must be 1..={MAX_ALERT_PAGE}"),
            ));
        }
        let after = query.after.unwrap_or(0);
        if after < 0 {
            return Err(ApiError::field("after", "after must be 0 or more"));
        }
        if query.before.is_some_and(|b| b < 1) {
            return Err(ApiError::field("before", "before must be 1 or more"));
        }
        Ok((limit, after, query.before))
    })();
    // One vehicle's alerts are its sightings: refusing them is audited like any movement query.
    let (limit, after, newest) = match tag {
        Some(tag) => {
            let target = format!("tag:{tag}");
            let action = "vehicle.alerts";
            checked_params(
                &state,
                &caller,
                action,
                target,
                query.purpose.as_deref(),
                page,
            )
            .await?
        }
        None => page?,
    };
    // Alerts about one vehicle are its sightings: a movement query like its track.
    if let Some(tag) = tag {
        audit_movements(
            &state,
            &caller,
            "vehicle.alerts",
            tag,
            query.purpose.as_deref(),
        )
        .await?;
    } else if query
        .purpose
        .as_deref()
        .is_some_and(|p| !tagwatch_model::purpose_says_something(p))
    {
        return Err(ApiError::field(
            "purpose",
            "a purpose, when given, needs at least three letters or digits",
        ));
    }
    let filter = crate::handlers::alert_filter::AlertFilter::new(
        &state,
        &caller,
        crate::handlers::alert_filter::FilterParams {
            precinct: query.precinct,
            south: query.south,
            west: query.west,
            north: query.north,
            east: query.east,
            kinds: query.kinds,
        },
    )
    .await?;
    let mut alerts = if caller.role.is_police() {
        match tag {
            Some(tag) => state.store.alerts_for_tag(tag, limit).await?,
            None => match newest {
                Some(before) => state.store.alerts_before(after, before, limit).await?,
                None => state.store.alerts_after(after, limit).await?,
            },
        }
    } else {
        if caller.user.is_none() {
            return Err(ApiError::Forbidden("no account behind this token".into()));
        }
        // The filter already holds the owner's vehicles.
        let mut mine = Vec::new();
        for &own in filter.owned_tags().into_iter().flatten() {
            if tag.is_none_or(|t| t == own) {
                mine.extend(state.store.alerts_for_tag(own, limit).await?);
            }
        }
        mine.sort_by_key(|a| std::cmp::Reverse(a.seq));
        mine.truncate(limit as usize);
        mine
    };
    alerts.retain(|a| filter.admits(a));
    let mut views: Vec<AlertView> = alerts
        .iter()
        .map(|a| AlertView::of(a, &state.devices))
        .collect();
    crate::identity::label_alerts(&state, &mut views).await?;
    if caller.role.is_police() {
        with_status(&state, &mut views).await?;
    }
    Ok(Json(AlertList { alerts: views }))
}

/// Gives each alert of a page its status (`open`, `accepted`, `rejected`: the last decision).
async fn with_status(state: &ApiState, views: &mut [AlertView]) -> Result<(), ApiError> {
    let (Some(first), Some(last)) = (
        views.iter().map(|v| v.seq).min(),
        views.iter().map(|v| v.seq).max(),
    ) else {
        return Ok(());
    };
    let mut decided = std::collections::HashMap::new();
    for action in state.store.alert_actions_between(first, last).await? {
        decided
            .entry(action.alert_seq)
            .or_insert_with(Vec::new)
            .push(action);
    }
    for view in views {
        view.status = Some(crate::handlers::response::status(
            decided.get(&view.seq).map_or(&[][..], Vec::as_slice),
        ));
    }
    Ok(())
}
