//! # Applying one partition: JetStream in, the tracker, Postgres out, exactly once.
//!
//! While its shard holds the partition's lease, a worker reads the partition's subject from the
//! `TW_FRAMES` stream with a durable pull consumer of its own. JetStream is the journal, as the
//! store's frame journal is for `serve`: the worker restores the partition's last checkpoint
//! from the store (its visits and the frames it had seen) and applies the stream again from
//! there, quietly up to the sequence last committed as applied (those parts' alerts are stored
//! already), then live. Each part is checked against the frames the partition applied (a resend
//! older than JetStream's duplicate window, see [`crate::seen`]), applied to the partition's
//! tracker, and every alert it raises is published to the alerts stream at once. Every
//! `flush_interval` the alerts (numbered by the alerts stream) are committed with the
//! partition's new applied sequence, conditioned on the partition's version being the one this
//! worker read or last committed (every commit adds one); every `checkpoint_interval`
//! the visits changed since the last checkpoint and the frames seen go with it. Only a commit
//! lets JetStream be acknowledged. Writing visits at checkpoints rather than at every flush is
//! what keeps Postgres from being the bound (a busy visit is written once per checkpoint, not
//! ten times a second).
//!
//! Between parts the worker answers live questions about its partition's vehicles from API
//! nodes ([`crate::ask`]). It also watches the health of the stations whose partition this is
//! ([`crate::partition::station_partition`]): every frame of theirs reaches it (at least as a part
//! without records, STATUS frames whole), so `station_silent`, clock skew and heartbeat alerts
//! are raised here, once, as `serve` raises them; other partitions' station findings are
//! dropped.
//!
//! Crash-only: any failure (the store, the bus, a commit fenced because another shard applies
//! the partition now) ends the worker, and what it applied but did not commit is applied again
//! by the next owner (itself, at the next lease round, or another shard), from the store's
//! state. Nothing is acknowledged that is not committed, and nothing committed is applied twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::Message;
use futures_util::StreamExt;
use std::future::IntoFuture;
use tagwatch_gateway::wire::Body;
use tagwatch_ingest::apply::{apply_detections, apply_status};
use tagwatch_ingest::PipelineMetrics;
use tagwatch_model::{time::now_ms, Alert, StationId, StationStatus};
use tagwatch_store::{Batch, PartitionStep, Store};
use tagwatch_tracker::{Tracker, TrackerConfig};
use tokio_util::sync::CancellationToken;

use crate::alerts;
use crate::ask::{self, ask_subject};
use crate::bus::{partition_subject, Bus, FRAMES_STREAM};
use crate::commands::{self, COMMANDS_STREAM};
use crate::part::Part;
use crate::partition::{station_partition, Groups};
use crate::restore_partition::restore_partition;
use crate::seen::Seen;
use crate::shard::ShardMetrics;

/// What every worker of a shard shares.
#[derive(Debug)]
pub struct Shared {
    pub bus: Bus,
    pub store: Store,
    /// This shard's name (its consumers are named after it).
    pub holder: String,
    pub tracker: TrackerConfig,
    pub groups: Groups,
    pub flush_interval: Duration,
    /// How often a partition's changed visits are written (and its replay after a move starts).
    pub checkpoint_interval: Duration,
    pub pipeline: Arc<PipelineMetrics>,
    pub metrics: Arc<ShardMetrics>,
}

/// Why a worker stopped.
#[derive(Debug)]
pub enum Stopped {
    /// Told to (the lease was lost or given back, or the shard stops).
    Asked,
    /// Another shard committed the partition since this one read it.
    Fenced,
}

/// Longest a worker waits for JetStream to number an alert before giving up the partition.
const ALERT_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Parts read from the consumer per pull.
const PULL_BATCH: usize = 512;
/// How often the time-driven rules run (as `serve`'s ingest runs them).
const CLOCK_TICK: Duration = Duration::from_secs(1);

/// A flush starts early once this many parts wait for it.
const MAX_FLUSH_PARTS: usize = 4_096;

/// The durable consumer a holder reads a partition with.
fn consumer_name(partition: u16, holder: &str) -> String {
    format!("part-{partition}-{holder}")
}

/// Applies `partition` until `stop`, or until something fails (the error says what).
pub async fn apply_partition(
    shared: Arc<Shared>,
    partition: u16,
    stop: CancellationToken,
) -> anyhow::Result<Stopped> {
    let started = Instant::now();
    // Commands after this are read from the stream; those before are in the store already.
    let commands_stream = shared.bus.jetstream.get_stream(COMMANDS_STREAM).await?;
    let commands_after = commands_stream.get_info().await?.state.last_sequence;
    let state = shared.store.partition_state(partition).await?;
    let seen = Seen::restore(&state.seen)
        .map_err(|e| anyhow::anyhow!("partition {partition}'s seen frames: {e}"))?;
    let mut tracker = restore_partition(
        &shared.store,
        shared.tracker,
        &shared.groups,
        partition,
        shared.bus.partitions,
    )
    .await?;
    if let Some(text) = &state.rule_state {
        match serde_json::from_str(text) {
            Ok(rules) => tracker.restore_rule_state(rules),
            // Costs the exactness of a fence crossing near this move, not any data.
            Err(error) => tracing::warn!(partition, %error, "rule state unreadable; left out"),
        }
    }
    let stream = shared.bus.jetstream.get_stream(FRAMES_STREAM).await?;
    let name = consumer_name(partition, &shared.holder);
    // A consumer left by this holder's earlier run starts where that run was: made afresh from
    // the committed sequence instead, so nothing waits for an acknowledgement timeout.
    let _ = stream.delete_consumer(&name).await;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(name),
            filter_subject: partition_subject(partition),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: state.checkpoint_seq + 1,
            },
            ack_policy: AckPolicy::All,
            // Redelivery is not how a worker recovers (it starts again from the store), so
            // an unacknowledged part is not sent twice while its flush commits.
            ack_wait: Duration::from_secs(300),
            max_ack_pending: 100_000,
            // A consumer whose shard died disappears by itself.
            inactive_threshold: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await?;
    let mut commands = commands_stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: commands_after + 1,
            },
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    // Live questions about the partition's vehicles, answered between parts.
    let client = shared.bus.jetstream.client();
    let mut asks = client.subscribe(ask_subject(partition)).await?;
    let mut worker = Worker {
        shared: shared.clone(),
        partition,
        tracker,
        seen,
        version: state.version,
        applied: state.applied_seq,
        position: state.checkpoint_seq,
        delivered: 0,
        pending: Pending::default(),
    };
    shared
        .metrics
        .claim_seconds
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(
        partition,
        checkpoint = state.checkpoint_seq,
        applied = state.applied_seq,
        visits = worker.tracker.visits_in_memory(),
        "applying partition"
    );
    let mut flushes = tokio::time::interval(shared.flush_interval);
    flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoints = tokio::time::interval(shared.checkpoint_interval);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checkpoints.tick().await;
    let mut clock = tokio::time::interval(CLOCK_TICK);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One commit at a time, committing while the next parts are applied: a checkpoint of
    // thousands of visits must not hold up the alerts of the parts behind it.
    let mut in_flight: Option<InFlight> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                if let Some(commit) = in_flight.take() {
                    if let Flushed::Fenced = worker.finish(commit).await? {
                        return Ok(Stopped::Fenced);
                    }
                }
                // A checkpoint before the partition is handed on: the next owner replays
                // nothing.
                if let Some(commit) = worker.start_commit(true) {
                    if let Flushed::Fenced = worker.finish(commit).await? {
                        return Ok(Stopped::Fenced);
                    }
                }
                return Ok(Stopped::Asked);
            }
            result = async { (&mut in_flight.as_mut().expect("guarded").task).await },
                if in_flight.is_some() =>
            {
                if let Some(commit) = in_flight.take() {
                    if let Flushed::Fenced = worker.finished(commit, result).await? {
                        return Ok(Stopped::Fenced);
                    }
                }
            }
            Some(request) = asks.next() => {
                worker.shared.metrics.questions.inc();
                if let Some((to, answer)) = ask::reply(&worker.tracker, &request) {
                    if let Err(error) = client.publish(to, answer).await {
                        tracing::debug!(%error, "an answer was not sent");
                    }
                }
            }
            _ = checkpoints.tick(), if in_flight.is_none() => {
                in_flight = worker.start_commit(true);
            }
            _ = flushes.tick(), if in_flight.is_none() => {
                in_flight = worker.start_commit(false);
            }
            _ = clock.tick() => worker.tick().await?,
            command = commands.next() => {
                let Some(command) = command else {
                    anyhow::bail!("partition {partition}: the commands stream ended");
                };
                worker.command(&command?.payload).await?;
            }
            next = messages.next() => {
                let Some(message) = next else {
                    anyhow::bail!("partition {partition}: the consumer's messages ended");
                };
                worker.apply(message?).await?;
                if in_flight.is_none() && worker.pending.parts >= MAX_FLUSH_PARTS {
                    in_flight = worker.start_commit(false);
                }
            }
        }
    }
}

/// A commit under way: its task, and what to do once it is done.
struct InFlight {
    task: tokio::task::JoinHandle<Result<(), tagwatch_store::Error>>,
    to_seq: u64,
    checkpoint: bool,
    /// The last part it covers, to acknowledge once it is committed.
    last: Option<Message>,
    started: Instant,
}

/// Applied since the last commit.
#[derive(Default)]
struct Pending {
    parts: usize,
    /// The last part applied (acknowledging it acknowledges all before it) and its sequence.
    last: Option<(Message, u64)>,
    /// Alerts raised, each with JetStream's answer to come.
    alerts: Vec<(Alert, PublishAckFuture)>,
    /// The latest STATUS of each watched station heard since.
    statuses: HashMap<StationId, StationStatus>,
}

enum Flushed {
    Done,
    Fenced,
}

struct Worker {
    shared: Arc<Shared>,
    partition: u16,
    tracker: Tracker,
    seen: Seen,
    /// The partition's version as read, then as committed by this worker (its fencing token).
    version: u64,
    /// The partition's applied sequence as committed.
    applied: u64,
    /// The last part applied (or, at the start, the checkpoint's sequence).
    position: u64,
    /// The consumer's number of the last part it delivered for the first time.
    delivered: u64,
    pending: Pending,
}

impl Worker {
    /// Applies one part, unless its frame was applied before; publishes its alerts.
    async fn apply(&mut self, message: Message) -> anyhow::Result<()> {
        let info = message.info().map_err(anyhow::Error::msg)?;
        let (seq, delivery) = (info.stream_sequence, info.consumer_sequence);
        let metrics = &self.shared.metrics;
        if seq <= self.position {
            // Sent again by JetStream: applied already.
            return Ok(());
        }
        // The consumer numbers what it delivers 1, 2, 3...: a number skipped is a part lost on
        // the way (a NATS node or the client dropped it). Acknowledging a later one would
        // acknowledge it too, so the worker starts again from what is committed instead.
        if delivery != self.delivered + 1 {
            anyhow::bail!(
                "partition {}: delivery {delivery} after {}: a part was lost in transit",
                self.partition,
                self.delivered
            );
        }
        self.delivered = delivery;
        self.position = seq;
        // Applied and its alerts committed before the partition moved here: applied again
        // (the state must be what it was), its alerts not raised twice.
        let replay = seq <= self.applied;
        self.pending.parts += 1;
        match Part::decode(self.partition, &message.payload) {
            Err(error) => {
                // Only gateways publish here, after checking the station's frame; a part that
                // does not decode cannot be mended by reading it again.
                metrics.parts_unreadable.inc();
                tracing::error!(partition = self.partition, seq, %error, "unreadable part skipped");
            }
            Ok(part) if self.seen.contains(part.frame.key()) => {
                metrics.parts_duplicate.inc();
            }
            Ok(part) => {
                let raised = match &part.frame.body {
                    Body::Detections(_) => {
                        apply_detections(
                            &mut self.tracker,
                            &self.shared.store,
                            &self.shared.pipeline,
                            &part.frame,
                            now_ms(),
                            None,
                        )
                        .await?
                        .1
                    }
                    // Only to the station's partition (see `crate::part::split`).
                    Body::Status(status) => {
                        let (status, alerts) =
                            apply_status(&mut self.tracker, &part.frame, status, now_ms());
                        self.pending.statuses.insert(status.station, status);
                        alerts
                    }
                    Body::Ack(_) => Vec::new(),
                };
                self.seen.insert(part.frame.key());
                if replay {
                    metrics.parts_replayed.inc();
                    return Ok(());
                }
                metrics.parts_applied.inc();
                self.raise(raised).await?;
            }
        }
        self.pending.last = Some((message, seq));
        Ok(())
    }

    /// Publishes the alerts raised, to be committed at the next flush: a vehicle's (its
    /// partition is this one), and a station's only if this partition watches the station (the
    /// others see some of its frames, enough to correct its clock, not to judge its health).
    async fn raise(&mut self, raised: Vec<Alert>) -> anyhow::Result<()> {
        let partitions = self.shared.bus.partitions;
        for alert in raised {
            if alert.tag.is_none() && station_partition(alert.station, partitions) != self.partition
            {
                continue;
            }
            let ack = alerts::publish(&self.shared.bus.jetstream, &alert)
                .await
                .map_err(anyhow::Error::msg)?;
            self.pending.alerts.push((alert, ack));
        }
        Ok(())
    }

    /// The time-driven rules (a watched station gone silent), once the partition is live:
    /// while it replays, a station's frames still to come would look like silence.
    async fn tick(&mut self) -> anyhow::Result<()> {
        if self.position < self.applied {
            return Ok(());
        }
        let raised = self.tracker.tick(now_ms());
        self.raise(raised).await
    }

    /// Applies a command from the API to the partition's tracker, if it concerns the partition.
    async fn command(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let command = match commands::decode(bytes) {
            Ok(command) => command,
            Err(error) => {
                tracing::error!(partition = self.partition, %error, "unreadable command skipped");
                return Ok(());
            }
        };
        let shared = &self.shared;
        if commands::vehicle_of(&command).is_some_and(|tag| {
            shared.groups.partition(tag, shared.bus.partitions) != self.partition
        }) {
            return Ok(());
        }
        let raised = self.tracker.command(command, now_ms());
        self.raise(raised).await
    }

    /// Starts committing the alerts raised and the partition's applied sequence since the last
    /// commit; with `checkpoint`, also the visits changed since the last checkpoint and the
    /// frames seen. `None` when there is nothing to commit.
    fn start_commit(&mut self, checkpoint: bool) -> Option<InFlight> {
        self.tracker.upkeep_step();
        let to_seq = self.position.max(self.applied);
        let last = self
            .pending
            .last
            .take()
            .filter(|(_, seq)| *seq > self.applied);
        self.pending.parts = 0;
        if !checkpoint
            && last.is_none()
            && self.pending.alerts.is_empty()
            && self.pending.statuses.is_empty()
        {
            return None;
        }
        if checkpoint && self.position < self.applied {
            // Still replaying up to what was committed: the checkpoint waits until it is past.
            return None;
        }
        let alerts = std::mem::take(&mut self.pending.alerts);
        let statuses = std::mem::take(&mut self.pending.statuses);
        let mut batch = Batch {
            statuses: statuses.into_values().collect(),
            partition: Some(PartitionStep {
                partition: self.partition,
                version: self.version,
                from_seq: self.applied,
                to_seq,
                checkpoint,
                seen: Vec::new(),
                rule_state: None,
            }),
            ..Batch::default()
        };
        if checkpoint {
            let changes = self.tracker.take_changes();
            batch.visits = changes.upserts;
            batch.extended_visits = changes.extended;
            batch.deleted_visits = changes.deletes;
            batch.reader_fixes = self.tracker.take_reader_fixes();
            if let Some(step) = batch.partition.as_mut() {
                step.seen = self.seen.take_changed();
                step.rule_state = serde_json::to_string(&self.tracker.rule_state()).ok();
            }
        }
        let store = self.shared.store.clone();
        let task = tokio::spawn(async move {
            // Numbered by the alerts stream, then stored with that number.
            for (mut alert, ack) in alerts {
                let ack = tokio::time::timeout(ALERT_ACK_TIMEOUT, ack.into_future())
                    .await
                    .map_err(|_| {
                        tagwatch_store::Error::Conflict(
                            "the alerts stream did not answer in time".into(),
                        )
                    })?
                    .map_err(|e| {
                        tagwatch_store::Error::Conflict(format!("the alerts stream: {e}"))
                    })?;
                alert.seq = i64::try_from(ack.sequence)
                    .map_err(|_| tagwatch_store::Error::Conflict("alert sequence".into()))?;
                batch.alerts.push(alert);
            }
            store.commit(&batch).await
        });
        Some(InFlight {
            task,
            to_seq,
            checkpoint,
            last: last.map(|(message, _)| message),
            started: Instant::now(),
        })
    }

    /// Waits for a commit to finish, then [`Worker::finished`].
    async fn finish(&mut self, mut commit: InFlight) -> anyhow::Result<Flushed> {
        let result = (&mut commit.task).await;
        self.finished(commit, result).await
    }

    /// A commit has finished: once it is in, the partition's applied sequence moves and
    /// JetStream is acknowledged.
    async fn finished(
        &mut self,
        commit: InFlight,
        result: Result<Result<(), tagwatch_store::Error>, tokio::task::JoinError>,
    ) -> anyhow::Result<Flushed> {
        match result? {
            Ok(()) => {}
            Err(tagwatch_store::Error::Fenced { .. }) => {
                self.shared.metrics.fenced.inc();
                return Ok(Flushed::Fenced);
            }
            Err(error) => return Err(error.into()),
        }
        self.applied = commit.to_seq;
        self.version += 1;
        let metrics = &self.shared.metrics;
        metrics.commits.inc();
        if commit.checkpoint {
            metrics.checkpoints.inc();
        }
        metrics
            .commit_seconds
            .observe(commit.started.elapsed().as_secs_f64());
        // Committed: JetStream may forget what led here. A lost acknowledgement costs nothing:
        // the next worker starts from the store's checkpoint anyway.
        if let Some(last) = commit.last {
            if let Err(error) = last.ack().await {
                tracing::debug!(partition = self.partition, %error, "acknowledgement not sent");
            }
        }
        Ok(Flushed::Done)
    }
}
