//! # The gateway's handoff to the bus
//!
//! In `tagwatch gateway` the listeners hand each verified frame to a [`BusHandoff`] instead of
//! an ingest: a task splits it into parts ([`crate::part`]), publishes them to JetStream in the
//! order frames arrived (one NATS connection, so a partition's parts keep that order), and
//! answers the station once JetStream has answered for every part:
//! - ACCEPTED when every part is stored (some may have been stored by an earlier attempt);
//! - DUPLICATE when JetStream reports every part a duplicate (all stored before);
//! - BUSY when JetStream refuses a part or does not answer within the publish timeout: the
//!   station resends, and the parts already stored are duplicates then;
//! - REJECTED at once for a frame with a valid MAC and invalid content: nothing of it is
//!   published, and no shard's watermark waits for its sequence number.
//!
//! Bounds: frames waiting to be published ([`PUBLISH_QUEUE`], BUSY beyond) and parts awaiting
//! JetStream's answer (the JetStream context's in-flight limit, BUSY beyond).

use std::future::IntoFuture;
use std::sync::Arc;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use futures_util::future::join_all;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tagwatch_gateway::wire::{AckStatus, Frame};
use tagwatch_gateway::{Content, Handoff, Inbound, Refused};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bus::Bus;
use crate::part::{split, Part};
use crate::partition::Groups;

/// Frames a gateway holds before publishing (BUSY beyond).
pub const PUBLISH_QUEUE: usize = 8_192;

/// Hands frames to the publishing task.
#[derive(Debug, Clone)]
pub struct BusHandoff {
    tx: mpsc::Sender<Inbound>,
}

/// What the publishing reports in the gateway's `/metrics`.
#[derive(Debug)]
pub struct PublishMetrics {
    /// From a frame's arrival to its ACCEPTED or DUPLICATE (JetStream stored every part).
    pub ack_latency: Histogram,
}

impl Default for PublishMetrics {
    fn default() -> Self {
        Self {
            ack_latency: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
        }
    }
}

impl PublishMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tagwatch_ack_latency_seconds",
            "Time from a frame's arrival to its ACK (every part stored in JetStream)",
            self.ack_latency.clone(),
        );
    }
}

impl Handoff for BusHandoff {
    fn hand_off(&self, inbound: Inbound) -> Result<(), Refused> {
        self.tx.hand_off(inbound)
    }
}

impl BusHandoff {
    /// Starts the publishing task; it ends when every handoff is dropped.
    pub fn start(
        bus: Bus,
        groups: watch::Receiver<Arc<Groups>>,
        metrics: Arc<PublishMetrics>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let task = tokio::spawn(publish_frames(bus, groups, rx, metrics));
        (Self { tx }, task)
    }
}

async fn publish_frames(
    bus: Bus,
    groups: watch::Receiver<Arc<Groups>>,
    mut frames: mpsc::Receiver<Inbound>,
    metrics: Arc<PublishMetrics>,
) {
    while let Some(inbound) = frames.recv().await {
        let key = inbound.key();
        let frame = match &inbound.content {
            Content::Frame(frame) => frame,
            Content::Rejected { .. } => {
                inbound.ack.send(key, AckStatus::Rejected);
                continue;
            }
        };
        let messages = messages_of(frame, &groups.borrow(), bus.partitions);
        let mut acks = Vec::with_capacity(messages.len());
        let mut refused = false;
        for (subject, id, payload) in messages {
            let message = PublishMessage::build().payload(payload).message_id(id);
            match bus.jetstream.send_publish(subject, message).await {
                Ok(ack) => acks.push(ack),
                Err(error) => {
                    tracing::debug!(%error, "publish refused: the station is told BUSY");
                    refused = true;
                    break;
                }
            }
        }
        if refused {
            inbound.ack.send(key, AckStatus::Busy);
            continue;
        }
        // JetStream's answers are awaited beside the next frames' publishing.
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let status = settle(acks).await;
            if status != AckStatus::Busy {
                metrics
                    .ack_latency
                    .observe(inbound.received_at.elapsed().as_secs_f64());
            }
            inbound.ack.send(key, status);
        });
    }
}

/// What goes on the bus for a frame: (subject, message id, payload) per part.
pub fn messages_of(
    frame: &Frame,
    groups: &Groups,
    partitions: u16,
) -> Vec<(String, String, bytes::Bytes)> {
    split(frame, groups, partitions)
        .into_iter()
        .map(|part: Part| (part.subject(), part.message_id(), part.encode()))
        .collect()
}

/// The station's answer once JetStream has answered for every part (a frame has at least one:
/// its station's).
async fn settle(acks: Vec<PublishAckFuture>) -> AckStatus {
    let mut all_duplicate = true;
    for answer in join_all(acks.into_iter().map(|ack| ack.into_future())).await {
        match answer {
            Ok(ack) => all_duplicate &= ack.duplicate,
            Err(error) => {
                tracing::debug!(%error, "no acknowledgement from JetStream: BUSY");
                return AckStatus::Busy;
            }
        }
    }
    if all_duplicate {
        AckStatus::Duplicate
    } else {
        AckStatus::Accepted
    }
}
