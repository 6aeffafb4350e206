//! # `GET /api/v1/alerts/stream`: live alerts over Server-Sent Events.
//!
//! Event `alert`, SSE `id` = the alert's sequence number. With `Last-Event-ID: N` (or `?after=N`
//! for clients that cannot set headers) the stream first replays every alert after N, from the
//! store and then the bus's ring, and goes on live without a gap or a repeat. A client that falls
//! behind the broadcast is re-synchronised from the same sources rather than dropped.

use crate::answers::AlertView;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::alert_filter::{AlertFilter, FilterParams};
use crate::identity::label_alerts;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::Stream;
use serde::Deserialize;
use std::convert::Infallible;
use tagwatch_model::Alert;
use tokio::sync::{broadcast, mpsc};

/// Alerts fetched from the store per page while replaying.
const REPLAY_PAGE: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    after: Option<String>,
    precinct: Option<i64>,
    south: Option<f64>,
    west: Option<f64>,
    north: Option<f64>,
    east: Option<f64>,
    kinds: Option<String>,
}

fn parse_seq(field: &'static str, text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::field(field, format!("{field} {text:?} is not an event id")))
}

pub async fn stream(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::field("Last-Event-ID", "Last-Event-ID is not text"))
                .and_then(|t| parse_seq("Last-Event-ID", t))
        })
        .transpose()?;
    let after = match header {
        Some(seq) => Some(seq),
        None => query
            .after
            .as_deref()
            .map(|t| parse_seq("after", t))
            .transpose()?,
    };
    // Police see every alert; an owner only those about their own vehicles; either may narrow
    // the stream to an area and to some kinds.
    let params = FilterParams {
        precinct: query.precinct,
        south: query.south,
        west: query.west,
        north: query.north,
        east: query.east,
        kinds: query.kinds,
    };
    let filter = AlertFilter::new(&state, &caller, params).await?;
    let (tx, rx) = mpsc::channel::<Event>(256);
    // The configured admin token cannot be revoked; every issued token can.
    let session = caller.user.map(|_| caller.token_hash);
    tokio::spawn(feed(state, after, filter, session, tx));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// An alert as an SSE event: its stream position as the event id, its [`AlertView`] as data (the
/// same as in lists, with its vehicle's label).
async fn event(state: &ApiState, alert: &Alert) -> Event {
    let mut view = [AlertView::of(alert, &state.devices)];
    // The alert goes out even when its vehicle cannot be named this moment.
    if let Err(error) = label_alerts(state, &mut view).await {
        tracing::warn!(%error, seq = alert.seq, "alert sent without its vehicle's label");
    }
    let data = serde_json::to_string(&view[0]).unwrap_or_default();
    Event::default()
        .event("alert")
        .id(alert.seq.to_string())
        .data(data)
}

/// Why feeding a client stopped.
enum Stop {
    ClientGone,
    /// The token was revoked, expired, or its account disabled.
    SessionEnded,
    Failed(String),
}

/// How often a live stream checks that its token is still valid: a revoked officer, or a
/// disabled account, stops receiving alerts within this long.
const SESSION_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// One client's stream: where it is, and what it may see.
struct Client<'a> {
    tx: &'a mpsc::Sender<Event>,
    /// The hash of the issued token the stream was opened with (`None`: the admin token).
    session: Option<[u8; 32]>,
    /// The newest seq passed (sent, or skipped as not the client's to see).
    last: Option<i64>,
    /// Which alerts the client gets.
    filter: AlertFilter,
    /// To name an alert's vehicle, and a GPS tracker's alerts' device.
    state: ApiState,
}

impl Client<'_> {
    /// Sends `alert` unless the client already has it or may not see it.
    async fn send(&mut self, alert: &Alert) -> Result<(), Stop> {
        if self.last.is_some_and(|l| alert.seq <= l) {
            return Ok(());
        }
        if self.filter.admits(alert) {
            self.tx
                .send(event(&self.state, alert).await)
                .await
                .map_err(|_| Stop::ClientGone)?;
        }
        self.last = Some(alert.seq);
        Ok(())
    }
}

async fn feed(
    state: ApiState,
    after: Option<i64>,
    filter: AlertFilter,
    session: Option<[u8; 32]>,
    tx: mpsc::Sender<Event>,
) {
    let mut client = Client {
        tx: &tx,
        session,
        last: after,
        filter,
        state: state.clone(),
    };
    let notice = match run_feed(&state, after.is_some(), &mut client).await {
        Err(Stop::Failed(cause)) => {
            tracing::error!(%cause, "alert stream failed");
            ("error", "the alert stream failed; reconnect")
        }
        Err(Stop::SessionEnded) => (
            "session_ended",
            "this token is no longer valid; sign in again",
        ),
        Ok(()) | Err(Stop::ClientGone) => return,
    };
    let _ = tx
        .send(Event::default().event(notice.0).data(notice.1))
        .await;
}

/// Whether the stream's token still stands (not revoked, not expired, account not disabled).
async fn session_valid(state: &ApiState, client: &Client<'_>) -> Result<(), Stop> {
    let Some(hash) = client.session else {
        return Ok(());
    };
    match state
        .store
        .token_user(&hash, tagwatch_model::time::now_ms())
        .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Stop::SessionEnded),
        // A store that cannot answer for a moment does not end an officer's stream.
        Err(error) => {
            tracing::warn!(%error, "could not check an alert stream's token");
            Ok(())
        }
    }
}

async fn run_feed(state: &ApiState, mut replay: bool, client: &mut Client<'_>) -> Result<(), Stop> {
    loop {
        let mut sub = state.bus.subscribe(client.last);
        if client.last.is_none() {
            // Live only: start after whatever has been published or stored so far.
            client.last = match sub.newest {
                Some(newest) => Some(newest),
                None => {
                    let (_, next_seq) = state
                        .store
                        .next_ids()
                        .await
                        .map_err(|e| Stop::Failed(e.to_string()))?;
                    Some(next_seq - 1)
                }
            };
        }
        if replay {
            replay_from_store(state, client, sub.ring_starts_at).await?;
            for alert in &sub.recent {
                client.send(alert).await?;
            }
        }
        let mut check = tokio::time::interval(SESSION_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let received = tokio::select! {
                received = sub.live.recv() => received,
                _ = check.tick() => {
                    session_valid(state, client).await?;
                    continue;
                }
            };
            match received {
                Ok(alert) => client.send(&alert).await?,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // Catch up from the ring and the store, then carry on live.
                    tracing::warn!(missed, "alert stream client lagged; re-synchronising");
                    replay = true;
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }
}

/// Sends stored alerts after `last` that are older than the ring's first (or all, if the ring
/// is empty).
async fn replay_from_store(
    state: &ApiState,
    client: &mut Client<'_>,
    ring_starts_at: Option<i64>,
) -> Result<(), Stop> {
    let Some(mut cursor) = client.last else {
        return Ok(());
    };
    if ring_starts_at.is_some_and(|start| start <= cursor.saturating_add(1)) {
        return Ok(());
    }
    loop {
        let page = state
            .store
            .alerts_after(cursor, REPLAY_PAGE)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        for alert in &page {
            if ring_starts_at.is_some_and(|start| alert.seq >= start) {
                return Ok(());
            }
            client.send(alert).await?;
            cursor = alert.seq;
        }
        if page.len() < REPLAY_PAGE as usize {
            return Ok(());
        }
    }
}
