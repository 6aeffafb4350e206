//! # The alerts stream: every shard's alerts, once each, numbered for every API node.
//!
//! A shard publishes each alert it raises to `tw.alerts` in the `TW_ALERTS` stream the moment
//! it is raised, with the alert's id as the JetStream message id: a frame applied again (after a
//! crash, or by the shard that took its partition over) raises the same id, which JetStream
//! drops within its duplicate window and the store's unique id drops after it. The stream
//! sequence JetStream gives the alert (the first one's, for a duplicate) is the alert's `seq`:
//! the id an officer's live stream resumes from on any API node, never reused.

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tagwatch_ingest::live::{AlertBus, DEFAULT_RING};
use tagwatch_model::{Alert, AlertDetail, AlertId, AlertKind, GeoPoint, StationId, TagId};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The stream every shard publishes alerts to.
pub const ALERTS_STREAM: &str = "TW_ALERTS";
/// Its one subject.
pub const ALERTS_SUBJECT: &str = "tw.alerts";

/// How long JetStream drops an alert id published again: longer than a partition takes to be
/// applied again after its shard dies (seconds), with room for a whole cluster restart.
pub const ALERT_DUPLICATE_WINDOW: Duration = Duration::from_secs(3_600);

/// An alert as it travels on the stream (its `seq` is the stream's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OnTheBus {
    id: AlertId,
    kind: AlertKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<TagId>,
    station: StationId,
    position: GeoPoint,
    seen_at_ms: i64,
    raised_at_ms: i64,
    detail: AlertDetail,
}

/// An alert's bytes on the stream.
pub fn encode(alert: &Alert) -> Vec<u8> {
    serde_json::to_vec(&OnTheBus {
        id: alert.id.clone(),
        kind: alert.kind,
        tag: alert.tag,
        station: alert.station,
        position: alert.position,
        seen_at_ms: alert.seen_at_ms,
        raised_at_ms: alert.raised_at_ms,
        detail: alert.detail.clone(),
    })
    .unwrap_or_default()
}

/// An alert read back from the stream at sequence `seq`.
pub fn decode(seq: u64, bytes: &[u8]) -> Result<Alert, String> {
    let bus: OnTheBus = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(Alert {
        seq: i64::try_from(seq).map_err(|_| format!("alert sequence {seq}"))?,
        id: bus.id,
        kind: bus.kind,
        tag: bus.tag,
        station: bus.station,
        position: bus.position,
        seen_at_ms: bus.seen_at_ms,
        raised_at_ms: bus.raised_at_ms,
        detail: bus.detail,
    })
}

/// Publishes `alert` (deduplicated by its id); the future answers with its stream sequence.
pub async fn publish(jetstream: &Context, alert: &Alert) -> Result<PublishAckFuture, String> {
    jetstream
        .send_publish(
            ALERTS_SUBJECT,
            PublishMessage::build()
                .payload(encode(alert).into())
                .message_id(alert.id.0.as_str()),
        )
        .await
        .map_err(|e| e.to_string())
}

/// Reads the alerts stream into `alert_bus` (an API node's), in stream order, from the last
/// ring's worth on (the ring holds what a resuming stream needs that the store may not have
/// committed yet), until `shutdown`; then closes the bus.
pub async fn follow(
    jetstream: &Context,
    alert_bus: Arc<AlertBus>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, String> {
    let stream = jetstream
        .get_stream(ALERTS_STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let mut stream_info = stream.clone();
    let last = stream_info
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .last_sequence;
    let ring = u64::try_from(DEFAULT_RING).unwrap_or(u64::MAX);
    let mut messages = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: last.saturating_sub(ring).max(1),
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    Ok(tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
                    match decode(seq, &message.payload) {
                        Ok(alert) => alert_bus.publish(alert),
                        Err(error) => tracing::error!(seq, %error, "unreadable alert skipped"),
                    }
                }
                Some(Err(error)) => tracing::warn!(%error, "alerts stream interrupted"),
                None => break,
            }
        }
        alert_bus.close();
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_survives_the_stream_and_takes_its_sequence() {
        let alert = Alert {
            seq: 3,
            id: AlertId("stolen_sighting-7-1234-9-1-44".into()),
            kind: AlertKind::StolenSighting,
            tag: Some(TagId(1234)),
            station: StationId(9),
            position: GeoPoint {
                lat: 23.1,
                lon: 113.3,
            },
            seen_at_ms: 1_700_000_000_000,
            raised_at_ms: 1_700_000_000_020,
            detail: AlertDetail {
                case: Some(7),
                ..AlertDetail::default()
            },
        };
        let back = decode(812, &encode(&alert)).expect("decodes");
        assert_eq!(back, Alert { seq: 812, ..alert });
        assert!(decode(1, b"{\"id\":1}").is_err());
    }
}
