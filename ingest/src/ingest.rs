//! # Ingest: where gateway, tracker and store meet, exactly once.
//!
//! One task, [`Ingest::run`], owns the [`Tracker`] and the [`Dedupe`] state. It takes verified
//! frames from the gateway's bounded queue every few milliseconds, answers duplicates, raises at
//! once the stolen, armed, panic and tamper alerts a fresh frame carries
//! (`Tracker::alert_ahead`: the frame itself may wait, or be told BUSY), queues it only while it can be applied within the
//! admission bound and answers BUSY otherwise (see [`crate::admission`]), applies the queued
//! frames (live ones, then stations' backlogs, see [`crate::lanes`]; any alert is published at
//! once), and every `flush_interval` hands a [`Flush`] — the frames applied (journaled, see
//! [`crate::journal`]), new alerts and the frames' watermarks, and now and then a checkpoint of
//! the changed visits — to the writer task ([`crate::writer`]). The writer commits it in one
//! transaction and only then sends ACCEPTED for those frames. Only one flush waits for the writer
//! at a time, so a slow store stops the ingest task, fills the gateway's queue, and stations are
//! told BUSY: memory stays bounded and nothing is acknowledged that is not durable.
//!
//! Why this file is long (about 750 lines): the one task that owns the tracker, with its loop,
//! intake, slices and flush together, because they share its state turn by turn; applying a
//! frame, writing, journaling and admission each live in their own module.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::wire::{AckStatus, Body};
use tagwatch_gateway::{AckPath, Content, Inbound};
use tagwatch_model::{time::now_ms, FrameKey, SessionId, StationId, StationStatus};
use tagwatch_store::{Batch, JournalEntry, Store};
use tagwatch_tracker::{Command, Query, Tracker, VisitChanges};
use tokio::sync::mpsc;
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use crate::admission::{self, Admission, Class, Verdict};
use crate::apply::{alert_ahead, apply_detections};
use crate::checkpoint_take::{CheckpointTake, TAKE_SLICE_PAIRS};
use crate::dedupe::{Dedupe, Seen};
use crate::health::Health;
use crate::journal::{Checkpoints, Replayed};
use crate::lanes::Lanes;
use crate::live::AlertBus;
use crate::metrics::PipelineMetrics;
use crate::writer::{Committed, Flush, PendingAck};

/// Batching of the ingest task.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Longest a frame waits for its flush (and so, with the commit, for its ACK).
    pub flush_interval: Duration,
    /// A flush starts early once this many frames are waiting for it. A full batch waits for the
    /// writer, and nothing more is applied meanwhile (frames are still taken in, and their alerts
    /// raised).
    pub max_batch_frames: usize,
    /// Longest a frame may be expected to wait in the ingest's queue: past it, BUSY.
    pub admission_bound: Duration,
    /// How often a flush writes the changed visits (see [`crate::journal`]); zero: every flush.
    pub checkpoint_interval: Duration,
}

/// The channels and shared parts the ingest task works with.
#[derive(Debug)]
pub struct IngestParts {
    /// For late data: visits that have left the tracker's memory are read back from here.
    pub store: Store,
    pub frames: mpsc::Receiver<Inbound>,
    pub commands: mpsc::Receiver<Command>,
    /// Questions from the API, answered from the live state between frames.
    pub queries: mpsc::Receiver<Query>,
    pub committed: mpsc::UnboundedReceiver<Committed>,
    pub writer: mpsc::Sender<Flush>,
    pub bus: Arc<AlertBus>,
    pub health: Arc<Health>,
    pub metrics: Arc<PipelineMetrics>,
}

/// What has been applied since the last flush.
#[derive(Debug, Default)]
struct Building {
    acks: Vec<PendingAck>,
    sessions: HashSet<(StationId, SessionId)>,
    alerts: Vec<tagwatch_model::Alert>,
    statuses: HashMap<StationId, StationStatus>,
    /// The DETECTIONS frames applied, numbered at the flush.
    journal: Vec<JournalEntry>,
}

impl Building {
    /// Frames waiting for their ACK, or alerts (from a command or a tick) waiting to be stored.
    fn has_work(&self) -> bool {
        !self.acks.is_empty() || !self.alerts.is_empty()
    }
}

/// Frames taken from the gateway's queue at a time.
const BATCH_FRAMES: usize = 1_024;

/// Most frames one turn takes in: everything waiting in the gateway's queue, up to this (its
/// default capacity), so a frame's alerts are raised at the next turn however many arrived with
/// it.
const MAX_INTAKE: usize = 16 * BATCH_FRAMES;

/// Longest the ingest applies frames without letting the other tasks of its worker thread run,
/// and without taking in the frames that arrived meanwhile.
const YIELD_EVERY: Duration = Duration::from_millis(2);

/// A frame taken in and queued for the tracker.
#[derive(Debug)]
struct Queued {
    inbound: Inbound,
    cost: u64,
}

/// Whether a flush may wait for the writer.
enum Wait {
    Yes,
    No,
    /// The writer has room already.
    Reserved(mpsc::OwnedPermit<Flush>),
    /// The last flush before stopping: waits, and is a checkpoint.
    Final,
}

/// What the ingest task turns to next: one arm of its `select!` each.
enum Event {
    Shutdown,
    Command(Command),
    Clock,
    Query(Query),
    Committed(Committed),
    FlushDue,
    WriterReady(mpsc::OwnedPermit<Flush>),
    /// The gateway or the writer is gone: the server is stopping.
    Closed,
    Arrived,
    TakeStep,
    Slice,
}

impl Event {
    /// What the ingest does for it, as its metrics name it.
    fn step(&self) -> &'static str {
        match self {
            Event::Shutdown | Event::Closed => "stop",
            Event::Command(_) => "command",
            Event::Clock => "clock",
            Event::Query(_) => "query",
            Event::Committed(_) => "committed",
            Event::FlushDue | Event::WriterReady(_) => "flush",
            Event::Arrived => "take_in",
            Event::TakeStep => "take_step",
            Event::Slice => "slice",
        }
    }
}

/// How fast the queue drains, measured over the time since `mark` (with the cost applied since
/// then) while frames were waiting: slices of frames, taking frames in (and refusing them),
/// flushes, the tracker's upkeep, a stall for the writer. All of it is what a queued frame waits
/// for.
#[derive(Debug)]
struct DrainClock {
    mark: Instant,
    drained: u64,
    measuring: bool,
}

/// The ingest task's state; see the module's documentation.
#[derive(Debug)]
pub struct Ingest {
    tracker: Tracker,
    dedupe: Dedupe,
    parts: IngestParts,
    config: IngestConfig,
    building: Building,
    checkpoints: Checkpoints,
    take: CheckpointTake,
    /// Frames taken from the gateway and not yet applied, live ones first.
    queue: Lanes<Queued>,
    admission: Admission,
    arrived: Vec<Inbound>,
    /// The last turn took frames in: the next applies a slice first, if there is one to apply.
    took_in: bool,
    drain: DrainClock,
}

/// The ingest's timers, made on the runtime that runs it (a timer belongs to the runtime it was
/// made on).
struct Timers {
    /// When a flush is due.
    flush: Interval,
    /// Time-driven rules (a station gone silent) are checked once a second.
    clock: Interval,
}

impl Timers {
    fn new(flush_interval: Duration) -> Self {
        let mut flush = tokio::time::interval(flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut clock = tokio::time::interval(Duration::from_secs(1));
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { flush, clock }
    }
}

impl Ingest {
    pub fn new(
        tracker: Tracker,
        dedupe: Dedupe,
        parts: IngestParts,
        config: IngestConfig,
        replayed: Replayed,
    ) -> Self {
        let ingest = Self {
            tracker,
            dedupe,
            checkpoints: Checkpoints::new(config.checkpoint_interval, replayed),
            take: CheckpointTake::default(),
            building: Building::default(),
            queue: Lanes::default(),
            admission: Admission::new(config.admission_bound),
            arrived: Vec::with_capacity(BATCH_FRAMES),
            took_in: false,
            drain: DrainClock {
                mark: Instant::now(),
                drained: 0,
                measuring: false,
            },
            parts,
            config,
        };
        // Frames applied again from the journal are pending from the start, not from the first
        // flush (an idle server makes none until its first checkpoint is due).
        ingest.show_checkpoints();
        ingest
    }

    /// Runs until `shutdown`, then flushes what it has applied and returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut timers = Timers::new(self.config.flush_interval);
        loop {
            self.measure_drain();
            let event = self.next_event(&mut timers, &shutdown).await;
            self.took_in = matches!(event, Event::Arrived);
            let started = Instant::now();
            let step = event.step();
            let keep_going = match event {
                Event::Shutdown | Event::Closed => false,
                Event::Command(command) => {
                    let alerts = self.tracker.command(command, now_ms());
                    self.raised(alerts);
                    true
                }
                Event::Clock => {
                    let alerts = self.tracker.tick(now_ms());
                    self.raised(alerts);
                    true
                }
                Event::Query(Query(ask)) => {
                    ask(&self.tracker);
                    true
                }
                Event::Committed(done) => {
                    self.committed(done);
                    true
                }
                Event::FlushDue => self.flush_if_due().await,
                Event::WriterReady(permit) => self.flush(Wait::Reserved(permit)).await,
                Event::Arrived => {
                    self.take_in();
                    true
                }
                Event::TakeStep => {
                    // An idle server finishes its checkpoint's take (under load, each slice of
                    // frames takes a slice of it).
                    self.take
                        .step(&mut self.tracker, &self.parts.metrics, TAKE_SLICE_PAIRS);
                    tokio::task::yield_now().await;
                    true
                }
                Event::Slice => {
                    self.apply_slice().await;
                    true
                }
            };
            self.parts
                .metrics
                .ingest_step(step, started.elapsed().as_secs_f64());
            if !keep_going {
                break;
            }
        }
        self.finish().await;
    }

    /// Waits for whatever comes first, in this order of priority when several are ready.
    async fn next_event(&mut self, timers: &mut Timers, shutdown: &CancellationToken) -> Event {
        // A full batch waits for the writer: this is where backpressure starts. Meanwhile frames
        // keep being taken in, and their alerts raised, so a slow commit holds ACKs, not alerts.
        let held = self.batch_full();
        let queued = !self.queue.is_empty();
        let take_under_way = self.take.under_way();
        let slice_ready = queued && !held;
        self.drain.measuring = queued;
        // Taking frames in and applying them take turns: while stations resend what was refused,
        // frames arrive at every turn, and taking them in first each time left nothing applied
        // (at ×20 load, 265,000 detections a second applied, and alerts waited seconds).
        let may_take_in = !(slice_ready && self.took_in);
        let writer = self.parts.writer.clone();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => Event::Shutdown,
            Some(command) = self.parts.commands.recv() => Event::Command(command),
            _ = timers.clock.tick() => Event::Clock,
            Some(query) = self.parts.queries.recv() => Event::Query(query),
            Some(done) = self.parts.committed.recv() => Event::Committed(done),
            // The flush ticker before the frames: under steady load the frames are always
            // ready, and a biased select would otherwise never flush on time.
            _ = timers.flush.tick() => Event::FlushDue,
            permit = writer.reserve_owned(), if held => match permit {
                Ok(permit) => Event::WriterReady(permit),
                Err(_) => Event::Closed,
            },
            // Frames that came since the last slice are taken in (or told BUSY) at once: a
            // stolen vehicle's sighting is alerted before everything queued, however much that is.
            received = self.parts.frames.recv_many(&mut self.arrived, BATCH_FRAMES), if may_take_in => {
                if received == 0 { Event::Closed } else { Event::Arrived }
            }
            () = std::future::ready(()), if take_under_way && !queued => Event::TakeStep,
            () = std::future::ready(()), if slice_ready => Event::Slice,
        }
    }

    /// Feeds the admission the drain rate measured since the last turn of the loop.
    fn measure_drain(&mut self) {
        let now = Instant::now();
        if self.drain.measuring {
            self.admission
                .drained(self.drain.drained, now - self.drain.mark);
        }
        self.drain.mark = now;
        self.drain.drained = 0;
    }

    /// Whether the batch being built is full: it waits for the writer (see [`IngestConfig`]).
    fn batch_full(&self) -> bool {
        self.building.acks.len() >= self.config.max_batch_frames
    }

    /// The writer committed a flush: its frames are now durable.
    fn committed(&mut self, done: Committed) {
        self.dedupe.committed(done.frames);
        if done.checkpoint {
            self.checkpoints.committed();
            // An idle server flushes no more: the journal gauge must drop to zero here.
            self.show_checkpoints();
        }
        self.parts
            .health
            .frames_in_flight
            .store(self.dedupe.in_flight(), Ordering::Relaxed);
    }

    /// A batch goes only when the writer can take it; while it is busy the batch keeps growing,
    /// and repeated detections of a visit merge into one row. False if the writer is gone.
    async fn flush_if_due(&mut self) -> bool {
        if self.building.has_work() || self.checkpoints.overdue() || self.take.is_ready() {
            self.flush(Wait::No).await
        } else {
            true
        }
    }

    /// Takes in the frames that arrived: answers those already applied, raises the alerts of the
    /// fresh ones, queues those the admission lets in and tells the others BUSY at once.
    fn take_in(&mut self) {
        let mut arrived = std::mem::take(&mut self.arrived);
        while arrived.len() < MAX_INTAKE {
            match self.parts.frames.try_recv() {
                Ok(inbound) => arrived.push(inbound),
                Err(_) => break,
            }
        }
        for inbound in arrived.drain(..) {
            let key = inbound.key();
            // Too far ahead is judged when the frame is applied: the frames queued before it
            // may have moved its session's watermark by then.
            let seen = match self.dedupe.check(key) {
                Seen::TooFarAhead => Seen::Fresh,
                seen => seen,
            };
            let Some(inbound) = self.answer_unless_fresh(seen, inbound) else {
                continue;
            };
            let (class, detections) = match inbound.frame() {
                Some(frame) => {
                    let alerts = alert_ahead(&mut self.tracker, frame, now_ms());
                    if !alerts.is_empty() {
                        self.parts.metrics.alerts_ahead.inc_by(alerts.len() as u64);
                        self.raised_for(alerts, inbound.received_at);
                    }
                    (
                        self.admission.age_class(key.station, frame.time_ms),
                        match &frame.body {
                            Body::Detections(records) => records.len(),
                            _ => 0,
                        },
                    )
                }
                None => (Class::Live, 0),
            };
            let cost = admission::cost(detections);
            if self.admission.decide(class, cost) == Verdict::Refuse {
                self.parts.metrics.refused(class).inc();
                inbound.ack.send(key, AckStatus::Busy);
                continue;
            }
            self.admission.queued(cost);
            let queued = Queued { inbound, cost };
            match class {
                Class::Live => self.queue.push_live(queued),
                Class::Backlog => self.queue.push_backlog(queued),
            }
        }
        // The buffer's capacity is kept for the next frames.
        self.arrived = arrived;
        self.show_admission();
    }

    /// Applies queued frames for a slice of a few milliseconds, or up to an alert, or until the
    /// batch is full. Then the other tasks of this thread run (the store's connections, the
    /// writer's handoff).
    async fn apply_slice(&mut self) {
        let started = Instant::now();
        // Checked at each frame: a slice may fill the batch.
        while !self.batch_full() {
            let Some(queued) = self.queue.pop() else {
                break;
            };
            self.admission.left(queued.cost);
            if queued.inbound.received_at.elapsed() > 2 * self.config.admission_bound {
                // Admitted at a rate the drain then fell below (a stall for the writer, a
                // checkpoint's take): it goes back to its station rather than wait on, so no
                // frame waits much past the bound.
                self.parts.metrics.refused_late().inc();
                queued
                    .inbound
                    .ack
                    .send(queued.inbound.key(), AckStatus::Busy);
                continue;
            }
            self.drain.drained += queued.cost;
            let alerts_before = self.building.alerts.len();
            self.handle(queued.inbound).await;
            if self.building.alerts.len() > alerts_before || started.elapsed() >= YIELD_EVERY {
                break;
            }
        }
        self.take
            .step(&mut self.tracker, &self.parts.metrics, TAKE_SLICE_PAIRS);
        self.upkeep(Tracker::upkeep_step);
        tokio::task::yield_now().await;
        self.parts.health.queue_depth.store(
            self.parts.frames.len() + self.queue.len(),
            Ordering::Relaxed,
        );
    }

    /// Runs a part of the tracker's upkeep, timed.
    fn upkeep(&mut self, part: fn(&mut Tracker)) {
        let started = Instant::now();
        part(&mut self.tracker);
        self.parts
            .metrics
            .upkeep_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Applies one frame taken from the queue (or answers it, if a copy was applied meanwhile).
    async fn handle(&mut self, inbound: Inbound) {
        let key = inbound.key();
        self.parts
            .metrics
            .queue_wait
            .observe(inbound.received_at.elapsed().as_secs_f64());
        // Checked again: a resend may have been queued beside its first copy.
        let Some(inbound) = self.answer_unless_fresh(self.dedupe.check(key), inbound) else {
            return;
        };
        let frame = match &inbound.content {
            Content::Frame(frame) => frame,
            Content::Rejected { reason, .. } => {
                // Never applied; its number is settled with the session's watermark, and
                // REJECTED goes out once that is committed.
                tracing::debug!(frame = %key, reason, "rejected frame settled");
                self.settled(key, inbound.ack, inbound.received_at, AckStatus::Rejected);
                return;
            }
        };
        match &frame.body {
            Body::Detections(_) => {
                let applied_at_ms = now_ms();
                let first_visit_id = match apply_detections(
                    &mut self.tracker,
                    &self.parts.store,
                    &self.parts.metrics,
                    frame,
                    applied_at_ms,
                    None,
                )
                .await
                {
                    Ok((first_visit_id, alerts)) => {
                        self.raised_for(alerts, inbound.received_at);
                        first_visit_id
                    }
                    Err(error) => {
                        // Without the history the frame would be applied wrongly: not now.
                        tracing::warn!(%error, frame = %key, "cannot read history for a late frame");
                        self.parts.metrics.store_errors.inc();
                        inbound.ack.send(key, AckStatus::Busy);
                        return;
                    }
                };
                self.building.journal.push(JournalEntry {
                    seq: 0,
                    applied_at_ms,
                    first_visit_id,
                    frame: inbound.raw,
                });
            }
            Body::Status(s) => {
                let (status, alerts) =
                    crate::apply::apply_status(&mut self.tracker, frame, s, now_ms());
                self.raised(alerts);
                self.building.statuses.insert(frame.station, status);
            }
            // The gateway refuses ACKs from stations before they get here.
            Body::Ack(_) => {}
        }
        self.parts.metrics.frames_applied.inc();
        self.settled(key, inbound.ack, inbound.received_at, AckStatus::Accepted);
    }

    /// Answers a frame that is not to be applied (already applied, or too far ahead of its
    /// session) and returns `None`; returns a fresh frame as it is.
    fn answer_unless_fresh(&self, seen: Seen, inbound: Inbound) -> Option<Inbound> {
        let key = inbound.key();
        let metrics = &self.parts.metrics;
        match seen {
            Seen::Fresh => return Some(inbound),
            Seen::Duplicate => {
                metrics.duplicates.inc();
                // A rejected frame is settled, never stored: its resend gets the same answer.
                let status = match inbound.content {
                    Content::Frame(_) => AckStatus::Duplicate,
                    Content::Rejected { .. } => AckStatus::Rejected,
                };
                inbound.ack.send(key, status);
            }
            Seen::InFlight => {
                // Its ACK follows the commit already under way.
                metrics.resends_in_flight.inc();
            }
            Seen::TooFarAhead => {
                metrics.too_far_ahead.inc();
                inbound.ack.send(key, AckStatus::Busy);
            }
        }
        None
    }

    /// Records a frame as done in its session, to be answered `status` once its flush commits.
    fn settled(&mut self, key: FrameKey, path: AckPath, received_at: Instant, status: AckStatus) {
        self.dedupe.record(key);
        self.building.sessions.insert((key.station, key.session));
        self.building.acks.push(PendingAck {
            path,
            key,
            status,
            received_at,
        });
    }

    /// Alerts a frame that arrived at `received_at` raised: timed, then [`Self::raised`].
    fn raised_for(&mut self, alerts: Vec<tagwatch_model::Alert>, received_at: Instant) {
        let since_arrival = received_at.elapsed().as_secs_f64();
        for alert in &alerts {
            self.parts.metrics.alert_raised(alert.kind, since_arrival);
        }
        self.raised(alerts);
    }

    /// Alerts just raised: published at once, and stored with the next flush.
    fn raised(&mut self, alerts: Vec<tagwatch_model::Alert>) {
        for alert in alerts {
            self.parts.metrics.alerts.inc();
            let tag = alert.tag.map(|t| t.0);
            tracing::info!(alert = %alert.id.0, ?tag, station = %alert.station, "alert raised");
            self.parts.bus.publish(alert.clone());
            self.building.alerts.push(alert);
        }
    }

    /// Hands the applied state to the writer; false if the writer is gone. With [`Wait::No`] it
    /// does nothing while the writer is busy (the batch keeps growing).
    async fn flush(&mut self, wait: Wait) -> bool {
        let last = matches!(wait, Wait::Final);
        let permit = match wait {
            Wait::Reserved(permit) => permit,
            Wait::Yes | Wait::Final => match self.parts.writer.clone().reserve_owned().await {
                Ok(permit) => permit,
                Err(_) => return false,
            },
            Wait::No => match self.parts.writer.clone().try_reserve_owned() {
                Ok(permit) => permit,
                Err(mpsc::error::TrySendError::Full(_)) => return true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            },
        };
        let mut done = std::mem::take(&mut self.building);
        let has_work = done.has_work();
        let checkpoint = last || self.checkpoints.due();
        let mut visits = VisitChanges::default();
        let mut journal = Vec::new();
        let mut journal_done_through = None;
        // A checkpoint taken since the last flush goes with this one: it commits after the flush
        // that journaled the frames it covers.
        let mut separate = self.take.take_ready();
        let inline = checkpoint && self.checkpoints.inline();
        if inline {
            // No journal: the visits go with the frames, as their ACKs wait for them anyway.
            visits = self.tracker.checkpoint(self.checkpoints.all_committed());
            journal_done_through = self.checkpoints.start();
        } else {
            self.upkeep(Tracker::maintain);
            journal = std::mem::take(&mut done.journal);
            self.checkpoints.number(&mut journal);
            self.parts
                .metrics
                .frames_journaled
                .inc_by(journal.len() as u64);
            if checkpoint {
                // Taken in slices from now on, then committed after a later flush, on its own
                // (see `writer::run_checkpoints`): the frames' ACKs do not wait for it. The last
                // one is taken at once and goes with this flush (a take under way was finished
                // and sent before).
                self.take.begin(&mut self.tracker, &mut self.checkpoints);
                if last {
                    debug_assert!(separate.is_none());
                    self.take.finish(&mut self.tracker, &self.parts.metrics);
                    separate = self.take.take_ready();
                }
            }
        }
        if journal_done_through.is_none() && visits.is_empty() && separate.is_none() && !has_work {
            // Nothing at all (a final flush with nothing applied since the last checkpoint).
            return true;
        }
        if checkpoint {
            self.parts.metrics.checkpoints.inc();
        }
        let batch = Batch {
            visits: visits.upserts,
            extended_visits: visits.extended,
            deleted_visits: visits.deletes,
            alerts: done.alerts,
            watermarks: done
                .sessions
                .into_iter()
                .map(|(station, session)| self.dedupe.watermark(station, session))
                .collect(),
            statuses: done.statuses.into_values().collect(),
            reader_fixes: self.tracker.take_reader_fixes(),
            journal,
            journal_done_through,
            partition: None,
        };
        self.show_checkpoints();
        let metrics = &self.parts.metrics;
        metrics
            .visits_in_memory
            .set(i64::try_from(self.tracker.visits_in_memory()).unwrap_or(i64::MAX));
        metrics
            .judged_ahead
            .set(i64::try_from(self.tracker.judged_ahead()).unwrap_or(i64::MAX));
        self.parts
            .health
            .frames_in_flight
            .store(self.dedupe.in_flight(), Ordering::Relaxed);
        permit.send(Flush {
            batch,
            acks: done.acks,
            inline_checkpoint: inline,
            checkpoint: separate,
        });
        true
    }

    /// What was applied is flushed, with a checkpoint so that the next start has no journal to
    /// apply; frames still queued were never applied and will be resent. A checkpoint being
    /// taken goes first, on its own.
    async fn finish(mut self) {
        self.take.finish(&mut self.tracker, &self.parts.metrics);
        let first = self.take.is_ready().then_some(Wait::Yes);
        for wait in first.into_iter().chain([Wait::Final]) {
            if !self.flush(wait).await {
                return;
            }
        }
    }

    /// Sets the gauges of what the ingest has queued and how fast it drains.
    fn show_admission(&self) {
        let metrics = &self.parts.metrics;
        metrics
            .queued_cost
            .set(i64::try_from(self.admission.queued_cost()).unwrap_or(i64::MAX));
        metrics.drain_rate.set(self.admission.rate());
        metrics
            .expected_wait
            .set(self.admission.expected_wait().as_secs_f64());
    }

    /// Sets the gauges of the journal not yet checkpointed and of the checkpoint interval in
    /// effect.
    fn show_checkpoints(&self) {
        let metrics = &self.parts.metrics;
        metrics
            .journal_pending
            .set(i64::try_from(self.checkpoints.pending()).unwrap_or(i64::MAX));
        metrics
            .checkpoint_interval
            .set(self.checkpoints.interval().as_secs_f64());
    }
}

/// Runs the ingest until `shutdown` (see [`Ingest::run`]).
pub async fn run_ingest(
    tracker: Tracker,
    dedupe: Dedupe,
    parts: IngestParts,
    config: IngestConfig,
    replayed: Replayed,
    shutdown: CancellationToken,
) {
    Ingest::new(tracker, dedupe, parts, config, replayed)
        .run(shutdown)
        .await;
}
