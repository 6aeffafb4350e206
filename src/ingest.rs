//! # Ingest: where gateway, tracker and store meet, exactly once.
//!
//! One task owns the [`Tracker`] and the [`Dedupe`] state. It takes verified frames from the
//! gateway's bounded queue every few milliseconds, answers duplicates, queues a fresh frame only
//! while it can be applied within the admission bound and answers BUSY otherwise (see
//! [`crate::admission`]), applies the queued frames (those that may raise an alert first, then
//! live ones, then stations' backlogs, see [`crate::hot_first`]; any alert is published at once),
//! and every `flush_interval`
//! hands a [`Flush`] — the frames applied (journaled, see [`crate::journal`]), new alerts and the
//! frames' watermarks, and now and then a checkpoint of the changed visits — to the writer task.
//! The writer commits it in one transaction and only then sends ACCEPTED for those frames. Only one flush waits for the writer at a time, so a slow store stops the ingest
//! task, fills the gateway's queue, and stations are told BUSY: memory stays bounded and nothing
//! is acknowledged that is not durable.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_api::live::AlertBus;
use tagwatch_api::Health;
use tagwatch_gateway::dedupe::{Dedupe, Seen};
use tagwatch_gateway::wire::{AckStatus, Body, Frame};
use tagwatch_gateway::{AckPath, Content, Inbound};
use tagwatch_model::{
    time::now_ms, Detection, FrameKey, GeoPoint, SessionId, StationId, StationStatus, TagId,
};
use tagwatch_store::{Batch, JournalEntry, Store};
use tagwatch_tracker::{Command, Observation, Query, Tracker, VisitChanges};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admission::{self, Admission, Class, Verdict};
use crate::checkpoint_take::{CheckpointTake, TAKE_SLICE_PAIRS};
use crate::hot_first::Lanes;
use crate::journal::{Checkpoints, Replayed};
use crate::metrics::PipelineMetrics;

/// Batching of the ingest task.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Longest a frame waits for its flush (and so, with the commit, for its ACK).
    pub flush_interval: Duration,
    /// A flush starts early once this many frames are waiting for it. A full batch waits for the
    /// writer; meanwhile hot frames are still applied, up to twice this.
    pub max_batch_frames: usize,
    /// Longest a frame may be expected to wait in the ingest's queue: past it, BUSY.
    pub admission_bound: Duration,
    /// How often a flush writes the changed visits (see [`crate::journal`]); zero: every flush.
    pub checkpoint_interval: Duration,
}

/// A frame applied and waiting for its flush to commit.
#[derive(Debug)]
struct PendingAck {
    path: AckPath,
    key: FrameKey,
    /// ACCEPTED, or REJECTED for a frame whose sequence number was only settled.
    status: AckStatus,
    received_at: Instant,
}

/// One flush: what to commit, and whom to tell once it is committed.
#[derive(Debug)]
pub struct Flush {
    batch: Batch,
    acks: Vec<PendingAck>,
    /// A checkpoint to commit once this flush is, on its own.
    checkpoint: Option<Batch>,
    /// This flush's batch is itself a checkpoint.
    inline_checkpoint: bool,
}

/// What the writer reports back once a flush is committed.
#[derive(Debug)]
pub struct Committed {
    frames: Vec<FrameKey>,
    checkpoint: bool,
}

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

/// Frames taken from the gateway's queue at a time.
const BATCH_FRAMES: usize = 1_024;

/// Longest the ingest applies frames without letting the other tasks of its worker thread run,
/// and without taking in the frames that arrived meanwhile.
const YIELD_EVERY: Duration = Duration::from_millis(2);

/// A frame taken in and queued for the tracker.
#[derive(Debug)]
struct Queued {
    inbound: Inbound,
    /// The class it was admitted under.
    class: Class,
    /// In the backlog lane.
    backlog: bool,
    cost: u64,
}

/// Whether a batch waiting for the writer may still take a hot station's frame: up to twice its
/// bound, so memory stays bounded however long the store takes.
fn room_for_hot(building: &Building, config: &IngestConfig) -> bool {
    building.acks.len() < 2 * config.max_batch_frames
}

/// Takes in the frames `arrived`: answers those already applied, queues the fresh ones the
/// admission lets in (each lane hot stations first) and tells the others BUSY at once.
fn take_in(
    queue: &mut Lanes<StationId, Queued>,
    arrived: &mut Vec<Inbound>,
    tracker: &Tracker,
    dedupe: &Dedupe,
    admission: &mut Admission,
    parts: &IngestParts,
) {
    let (mut live, mut backlog) = (Vec::new(), Vec::new());
    for inbound in arrived.drain(..) {
        let key = inbound.key();
        // Too far ahead is judged when the frame is applied: the frames queued before it
        // may have moved its session's watermark by then.
        let seen = match dedupe.check(key) {
            Seen::TooFarAhead => Seen::Fresh,
            seen => seen,
        };
        let Some(inbound) = answer_unless_fresh(seen, inbound, parts) else {
            continue;
        };
        let (age, hot, detections) = match inbound.frame() {
            Some(frame) => (
                admission.age_class(key.station, frame.time_ms),
                may_alert(tracker, frame),
                match &frame.body {
                    Body::Detections(records) => records.len(),
                    _ => 0,
                },
            ),
            None => (Class::Live, false, 0),
        };
        let class = if hot { Class::Hot } else { age };
        let cost = admission::cost(detections);
        if admission.decide(class, cost) == Verdict::Refuse {
            parts.metrics.refused(class).inc();
            inbound.ack.send(key, AckStatus::Busy);
            continue;
        }
        admission.queued(cost);
        let queued = Queued {
            inbound,
            class,
            backlog: age == Class::Backlog,
            cost,
        };
        if queued.backlog {
            backlog.push(queued);
        } else {
            live.push(queued);
        }
    }
    let moved = queue.admit(
        live,
        backlog,
        |q| q.inbound.key().station,
        |q| q.class == Class::Hot,
    );
    parts.metrics.hot_first.inc_by(moved as u64);
    show_admission(admission, &parts.metrics);
}

/// Sets the gauges of what the ingest has queued and how fast it drains.
fn show_admission(admission: &Admission, metrics: &PipelineMetrics) {
    metrics
        .queued_cost
        .set(i64::try_from(admission.queued_cost()).unwrap_or(i64::MAX));
    metrics.drain_rate.set(admission.rate());
    metrics
        .expected_wait
        .set(admission.expected_wait().as_secs_f64());
}

/// Answers a frame that is not to be applied (already applied, or too far ahead of its session)
/// and returns `None`; returns a fresh frame as it is.
fn answer_unless_fresh(seen: Seen, inbound: Inbound, parts: &IngestParts) -> Option<Inbound> {
    let key = inbound.key();
    match seen {
        Seen::Fresh => return Some(inbound),
        Seen::Duplicate => {
            parts.metrics.duplicates.inc();
            // A rejected frame is settled, never stored: its resend gets the same answer.
            let status = match inbound.content {
                Content::Frame(_) => AckStatus::Duplicate,
                Content::Rejected { .. } => AckStatus::Rejected,
            };
            inbound.ack.send(key, status);
        }
        Seen::InFlight => {
            // Its ACK follows the commit already under way.
            parts.metrics.resends_in_flight.inc();
        }
        Seen::TooFarAhead => {
            parts.metrics.too_far_ahead.inc();
            inbound.ack.send(key, AckStatus::Busy);
        }
    }
    None
}

/// Sets the gauges of the journal not yet checkpointed and of the checkpoint interval in effect.
fn show_checkpoints(checkpoints: &Checkpoints, metrics: &PipelineMetrics) {
    metrics
        .journal_pending
        .set(i64::try_from(checkpoints.pending()).unwrap_or(i64::MAX));
    metrics
        .checkpoint_interval
        .set(checkpoints.interval().as_secs_f64());
}

/// Whether applying `frame` may raise a stolen or armed alert. Not "carries a stolen tag": a
/// stolen tag heard again in a visit that has alerted raises nothing, and with 1 % of tags stolen
/// most busy frames carry one, which would put most of a burst at the front.
fn may_alert(tracker: &Tracker, frame: &Frame) -> bool {
    let time_ms = i64::try_from(frame.time_ms).unwrap_or(i64::MAX);
    matches!(&frame.body, Body::Detections(records)
    if records.iter().any(|r| {
        tracker.may_alert(r.tag, frame.station, time_ms.saturating_sub(i64::from(r.age_ms)))
    }))
}

/// Runs until `shutdown`, then flushes what it has applied and returns.
pub async fn run_ingest(
    mut tracker: Tracker,
    mut dedupe: Dedupe,
    mut parts: IngestParts,
    config: IngestConfig,
    replayed: Replayed,
    shutdown: CancellationToken,
) {
    let mut building = Building::default();
    let mut checkpoints = Checkpoints::new(config.checkpoint_interval, replayed);
    let mut take = CheckpointTake::default();
    // Frames applied again from the journal are pending from the start, not from the first flush
    // (an idle server makes none until its first checkpoint is due).
    show_checkpoints(&checkpoints, &parts.metrics);
    let mut ticker = tokio::time::interval(config.flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Time-driven rules (a station gone silent) are checked once a second.
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Frames taken from the gateway and not yet applied, hot stations' first.
    let mut queue = Lanes::default();
    let mut admission = Admission::new(config.admission_bound);
    let mut arrived = Vec::with_capacity(BATCH_FRAMES);
    // The drain rate is measured over the time since `mark` (with the cost applied since then)
    // while frames were waiting: slices of frames, taking frames in (and refusing them),
    // flushes, the tracker's upkeep, a stall for the writer. All of it is what a queued frame
    // waits for.
    let mut mark = Instant::now();
    let mut drained = 0;
    let mut measured = false;
    loop {
        let now = Instant::now();
        if measured {
            admission.drained(drained, now - mark);
        }
        (mark, drained) = (now, 0);
        // A full batch waits for the writer: this is where backpressure starts. Meanwhile only
        // hot stations' frames are applied (the batch grows past its bound by those few) and
        // frames keep being taken in, so a slow commit holds ACKs, not alerts.
        let held = building.acks.len() >= config.max_batch_frames;
        measured = !queue.is_empty();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(command) = parts.commands.recv() => {
                let alerts = tracker.command(command, now_ms());
                raised(alerts, &mut building, &parts);
            }
            _ = clock.tick() => {
                let alerts = tracker.tick(now_ms());
                raised(alerts, &mut building, &parts);
            }
            Some(Query(ask)) = parts.queries.recv() => ask(&tracker),
            Some(done) = parts.committed.recv() => {
                dedupe.committed(done.frames);
                if done.checkpoint {
                    checkpoints.committed();
                    // An idle server flushes no more: the journal gauge must drop to zero here.
                    show_checkpoints(&checkpoints, &parts.metrics);
                }
                parts.health.frames_in_flight.store(dedupe.in_flight(), Ordering::Relaxed);
            }
            // The ticker before the frames: under steady load the frames branch is always
            // ready, and a biased select would otherwise never flush on time.
            _ = ticker.tick() => {
                // A batch goes only when the writer can take it; while it is busy the
                // batch keeps growing, and repeated detections of a visit merge into one row.
                if (building.has_work() || checkpoints.overdue() || take.is_ready())
                    && !flush(&mut tracker, &dedupe, &mut building, &parts, &mut checkpoints, &mut take, Wait::No).await
                {
                    break;
                }
            }
            permit = parts.writer.reserve(), if held => {
                let Ok(permit) = permit else {
                    break;
                };
                if !flush(&mut tracker, &dedupe, &mut building, &parts, &mut checkpoints, &mut take, Wait::Reserved(permit)).await {
                    break;
                }
            }
            // Frames that came since the last slice are taken in (or told BUSY) at once: a
            // stolen vehicle's sighting goes before everything queued, however much that is.
            received = parts.frames.recv_many(&mut arrived, BATCH_FRAMES) => {
                if received == 0 {
                    break;
                }
                take_in(&mut queue, &mut arrived, &tracker, &dedupe, &mut admission, &parts);
            }
            // An idle server finishes its checkpoint's take (under load, each slice of frames
            // takes a slice of it).
            () = std::future::ready(()), if take.under_way() && queue.is_empty() => {
                take.step(&mut tracker, &parts.metrics, TAKE_SLICE_PAIRS);
                tokio::task::yield_now().await;
            }
            () = std::future::ready(()), if !queue.is_empty() && (!held || (queue.hot_next() && room_for_hot(&building, &config))) => {
                // A slice of a few milliseconds, or up to an alert. Then the other tasks of this
                // worker run: the SSE streams an alert wakes wait in this worker's LIFO slot,
                // which the other worker cannot steal (tokio 1.54), until the ingest yields.
                let started = Instant::now();
                loop {
                    let next = if !held {
                        queue.pop()
                    } else if room_for_hot(&building, &config) {
                        queue.pop_hot()
                    } else {
                        None
                    };
                    let Some(queued) = next else {
                        break;
                    };
                    admission.left(queued.cost);
                    if queued.class != Class::Hot
                        && queued.inbound.received_at.elapsed() > 2 * config.admission_bound
                    {
                        // Admitted at a rate the drain then fell below (a stall for the
                        // writer, a checkpoint's take): it goes back to its station rather than
                        // wait on, so no frame waits much past the bound.
                        parts.metrics.refused_late().inc();
                        queued.inbound.ack.send(queued.inbound.key(), AckStatus::Busy);
                        continue;
                    }
                    drained += queued.cost;
                    let alerts_before = building.alerts.len();
                    handle(&mut tracker, &mut dedupe, &mut building, &parts, queued.inbound).await;
                    if building.alerts.len() > alerts_before || started.elapsed() >= YIELD_EVERY {
                        break;
                    }
                }
                take.step(&mut tracker, &parts.metrics, TAKE_SLICE_PAIRS);
                tokio::task::yield_now().await;
                parts.health.queue_depth.store(parts.frames.len() + queue.len(), Ordering::Relaxed);
            }
        }
    }
    // What was applied is flushed, with a checkpoint so that the next start has no journal to
    // apply; frames still queued were never applied and will be resent. A checkpoint being
    // taken goes first, on its own.
    take.finish(&mut tracker, &parts.metrics);
    let first = take.is_ready().then_some(Wait::Yes);
    for wait in first.into_iter().chain([Wait::Final]) {
        if !flush(
            &mut tracker,
            &dedupe,
            &mut building,
            &parts,
            &mut checkpoints,
            &mut take,
            wait,
        )
        .await
        {
            return;
        }
    }
}

async fn handle(
    tracker: &mut Tracker,
    dedupe: &mut Dedupe,
    building: &mut Building,
    parts: &IngestParts,
    inbound: Inbound,
) {
    let key = inbound.key();
    parts
        .metrics
        .queue_wait
        .observe(inbound.received_at.elapsed().as_secs_f64());
    // Checked again: a resend may have been queued beside its first copy.
    let Some(inbound) = answer_unless_fresh(dedupe.check(key), inbound, parts) else {
        return;
    };
    let frame = match &inbound.content {
        Content::Frame(frame) => frame,
        Content::Rejected { reason, .. } => {
            // Never applied; its number is settled with the session's watermark, and REJECTED
            // goes out once that is committed.
            tracing::debug!(frame = %key, reason, "rejected frame settled");
            settled(
                dedupe,
                building,
                key,
                inbound.ack,
                inbound.received_at,
                AckStatus::Rejected,
            );
            return;
        }
    };
    let time_ms = i64::try_from(frame.time_ms).unwrap_or(i64::MAX);
    match &frame.body {
        Body::Detections(_) => {
            let applied_at_ms = now_ms();
            let first_visit_id = match apply_detections(
                tracker,
                &parts.store,
                &parts.metrics,
                frame,
                applied_at_ms,
                None,
            )
            .await
            {
                Ok((first_visit_id, alerts)) => {
                    let since_arrival = inbound.received_at.elapsed().as_secs_f64();
                    for alert in &alerts {
                        parts.metrics.alert_raised(alert.kind, since_arrival);
                    }
                    raised(alerts, building, parts);
                    first_visit_id
                }
                Err(error) => {
                    // Without the history the frame would be applied wrongly: not now.
                    tracing::warn!(%error, frame = %key, "cannot read history for a late frame");
                    parts.metrics.store_errors.inc();
                    inbound.ack.send(key, AckStatus::Busy);
                    return;
                }
            };
            building.journal.push(JournalEntry {
                seq: 0,
                applied_at_ms,
                first_visit_id,
                frame: inbound.raw,
            });
        }
        Body::Status(s) => {
            let mut alerts = Vec::new();
            let beat = tagwatch_tracker::station_watch::Heartbeat {
                backlog: s.backlog,
                temp_c: s.temp_c,
                power_fault: s.power & 0x80 != 0,
            };
            tracker.heard_status(key, time_ms, now_ms(), beat, &mut alerts);
            raised(alerts, building, parts);
            building.statuses.insert(
                frame.station,
                StationStatus {
                    station: frame.station,
                    received_at_ms: now_ms(),
                    station_time_ms: time_ms,
                    uptime_s: s.uptime_s,
                    backlog: s.backlog,
                    fw_version: s.fw_version,
                    temp_c: s.temp_c,
                    power: s.power,
                    tags_in_range: s.tags_in_range,
                },
            );
        }
        // The gateway refuses ACKs from stations before they get here.
        Body::Ack(_) => {}
    }
    parts.metrics.frames_applied.inc();
    settled(
        dedupe,
        building,
        key,
        inbound.ack,
        inbound.received_at,
        AckStatus::Accepted,
    );
}

/// Records a frame as done in its session, to be answered `status` once its flush commits.
fn settled(
    dedupe: &mut Dedupe,
    building: &mut Building,
    key: FrameKey,
    path: AckPath,
    received_at: Instant,
    status: AckStatus,
) {
    dedupe.record(key);
    building.sessions.insert((key.station, key.session));
    building.acks.push(PendingAck {
        path,
        key,
        status,
        received_at,
    });
}

/// Applies a DETECTIONS frame at server time `now_ms`; returns the tracker's next visit id
/// before it was applied (journaled with it) and the alerts it raised. `resume_visit_id`: a
/// journaled frame applied again continues the visit ids from where it first did.
///
/// A late backlog belongs next to visits that may have left memory: they are brought back from
/// the store first, so the backlog merges into them instead of splitting them; if the store
/// cannot be read the frame is not applied.
pub(crate) async fn apply_detections(
    tracker: &mut Tracker,
    store: &Store,
    metrics: &PipelineMetrics,
    frame: &Frame,
    now_ms: i64,
    resume_visit_id: Option<i64>,
) -> Result<(i64, Vec<tagwatch_model::Alert>), tagwatch_store::Error> {
    let Body::Detections(records) = &frame.body else {
        return Ok((tracker.next_visit_id(), Vec::new()));
    };
    let time_ms = i64::try_from(frame.time_ms).unwrap_or(i64::MAX);
    let detections: Vec<Detection> = records
        .iter()
        .map(|r| Detection {
            tag: r.tag,
            station: frame.station,
            seen_at_ms: time_ms.saturating_sub(i64::from(r.age_ms)),
            rssi: r.rssi,
            reads: r.reads,
            tag_flags: r.tag_flags,
        })
        .collect();
    // One look at the store for the whole frame (its detections share the station), over the
    // union of their windows: restoring a few visits more than needed is harmless.
    let windows = tracker.history_needed(&detections);
    if let (Some(from), Some(to)) = (
        windows.iter().map(|w| w.2).min(),
        windows.iter().map(|w| w.3).max(),
    ) {
        let mut tags: Vec<TagId> = windows.iter().map(|w| w.0).collect();
        tags.sort_unstable();
        tags.dedup();
        let visits = store.visits_near(frame.station, &tags, from, to).await?;
        visits.into_iter().for_each(|v| tracker.restore_visit(v));
        metrics.history_lookups.inc();
    }
    if let Some(next) = resume_visit_id {
        tracker.resume_visit_ids(next);
    }
    let first_visit_id = tracker.next_visit_id();
    let reader_position = frame
        .position
        .and_then(|p| GeoPoint::from_e7(p.lat_e7, p.lon_e7).ok());
    let observation = Observation {
        frame: frame.key(),
        sent_at_ms: time_ms,
        reader_position,
        detections: &detections,
    };
    let alerts = tracker.apply(observation, now_ms);
    metrics.detections_applied.inc_by(detections.len() as u64);
    Ok((first_visit_id, alerts))
}

/// Alerts just raised: published at once, and stored with the next flush.
fn raised(alerts: Vec<tagwatch_model::Alert>, building: &mut Building, parts: &IngestParts) {
    for alert in alerts {
        parts.metrics.alerts.inc();
        let tag = alert.tag.map(|t| t.0);
        tracing::info!(alert = %alert.id.0, ?tag, station = %alert.station, "alert raised");
        parts.bus.publish(alert.clone());
        building.alerts.push(alert);
    }
}

/// Whether a flush may wait for the writer.
enum Wait<'a> {
    Yes,
    No,
    /// The writer has room already.
    Reserved(mpsc::Permit<'a, Flush>),
    /// The last flush before stopping: waits, and is a checkpoint.
    Final,
}

/// Hands the applied state to the writer; false if the writer is gone. With [`Wait::No`] it does
/// nothing while the writer is busy (the batch keeps growing).
async fn flush(
    tracker: &mut Tracker,
    dedupe: &Dedupe,
    building: &mut Building,
    parts: &IngestParts,
    checkpoints: &mut Checkpoints,
    take: &mut CheckpointTake,
    wait: Wait<'_>,
) -> bool {
    let last = matches!(wait, Wait::Final);
    let permit = match wait {
        Wait::Reserved(permit) => permit,
        Wait::Yes | Wait::Final => match parts.writer.reserve().await {
            Ok(permit) => permit,
            Err(_) => return false,
        },
        Wait::No => match parts.writer.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(())) => return true,
            Err(mpsc::error::TrySendError::Closed(())) => return false,
        },
    };
    let mut done = std::mem::take(building);
    let has_work = done.has_work();
    let checkpoint = last || checkpoints.due();
    let mut visits = VisitChanges::default();
    let mut journal = Vec::new();
    let mut journal_done_through = None;
    // A checkpoint taken since the last flush goes with this one: it commits after the flush
    // that journaled the frames it covers.
    let mut separate = take.take_ready();
    let inline = checkpoint && checkpoints.inline();
    if inline {
        // No journal: the visits go with the frames, as their ACKs wait for them anyway.
        visits = tracker.checkpoint(checkpoints.all_committed());
        journal_done_through = checkpoints.start();
    } else {
        let started = Instant::now();
        tracker.maintain();
        parts
            .metrics
            .upkeep_seconds
            .observe(started.elapsed().as_secs_f64());
        journal = std::mem::take(&mut done.journal);
        checkpoints.number(&mut journal);
        parts.metrics.frames_journaled.inc_by(journal.len() as u64);
        if checkpoint {
            // Taken in slices from now on, then committed after a later flush, on its own (see
            // `run_checkpoints`): the frames' ACKs do not wait for it. The last one is taken at
            // once and goes with this flush (a take under way was finished and sent before).
            take.begin(tracker, checkpoints);
            if last {
                debug_assert!(separate.is_none());
                take.finish(tracker, &parts.metrics);
                separate = take.take_ready();
            }
        }
    }
    if journal_done_through.is_none() && visits.is_empty() && separate.is_none() && !has_work {
        // Nothing at all (a final flush with nothing applied since the last checkpoint).
        return true;
    }
    if checkpoint {
        parts.metrics.checkpoints.inc();
    }
    let batch = Batch {
        visits: visits.upserts,
        extended_visits: visits.extended,
        deleted_visits: visits.deletes,
        alerts: done.alerts,
        watermarks: done
            .sessions
            .into_iter()
            .map(|(station, session)| dedupe.watermark(station, session))
            .collect(),
        statuses: done.statuses.into_values().collect(),
        reader_fixes: tracker.take_reader_fixes(),
        journal,
        journal_done_through,
    };
    show_checkpoints(checkpoints, &parts.metrics);
    parts
        .metrics
        .visits_in_memory
        .set(i64::try_from(tracker.visits_in_memory()).unwrap_or(i64::MAX));
    parts
        .health
        .frames_in_flight
        .store(dedupe.in_flight(), Ordering::Relaxed);
    permit.send(Flush {
        batch,
        acks: done.acks,
        inline_checkpoint: inline,
        checkpoint: separate,
    });
    true
}

/// The store writer: commits flushes in order, retrying while the store is down, then ACKs.
/// A flush's checkpoint goes to [`run_checkpoints`] once the flush is committed.
pub async fn run_writer(
    store: Store,
    mut flushes: mpsc::Receiver<Flush>,
    committed: mpsc::UnboundedSender<Committed>,
    health: Arc<Health>,
    metrics: Arc<PipelineMetrics>,
    abandon: CancellationToken,
) {
    let (to_checkpoint, checkpoints) = mpsc::unbounded_channel();
    let checkpointer = tokio::spawn(run_checkpoints(
        store.clone(),
        checkpoints,
        committed.clone(),
        health.clone(),
        metrics.clone(),
        abandon.clone(),
    ));
    while let Some(mut flush) = flushes.recv().await {
        let started = Instant::now();
        sort_visits(&mut flush.batch);
        if !commit_until_done(
            &store,
            &flush.batch,
            Commit::Flush,
            &health,
            &metrics,
            &abandon,
        )
        .await
        {
            return;
        }
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.flush_rows.observe(flush.batch.rows() as f64);
        let mut keys = Vec::with_capacity(flush.acks.len());
        for ack in flush.acks {
            ack.path.send(ack.key, ack.status);
            metrics
                .ack_latency
                .observe(ack.received_at.elapsed().as_secs_f64());
            keys.push(ack.key);
        }
        if let Some(checkpoint) = flush.checkpoint {
            if to_checkpoint.send(checkpoint).is_err() {
                return;
            }
        }
        let done = Committed {
            frames: keys,
            checkpoint: flush.inline_checkpoint,
        };
        // After the last flush the ingest task is gone: its checkpoint still goes above.
        let _ = committed.send(done);
    }
    // The last checkpoint commits before the writer is done.
    drop(to_checkpoint);
    let _ = checkpointer.await;
}

/// Commits checkpoints in order, each after the flush it followed, while the writer goes on
/// with the next flushes; reports each to the ingest task.
async fn run_checkpoints(
    store: Store,
    mut checkpoints: mpsc::UnboundedReceiver<Batch>,
    committed: mpsc::UnboundedSender<Committed>,
    health: Arc<Health>,
    metrics: Arc<PipelineMetrics>,
    abandon: CancellationToken,
) {
    while let Some(mut batch) = checkpoints.recv().await {
        let started = Instant::now();
        // Millions of rows at a busy checkpoint: sorting them would hold a runtime worker (and
        // the tasks queued on it: flushes, ACKs, alerts) for a good part of a second.
        let sorted = tokio::task::spawn_blocking(move || {
            sort_visits(&mut batch);
            batch
        })
        .await;
        let Ok(batch) = sorted else {
            tracing::error!("sorting a checkpoint's visits failed; its journal stays");
            return;
        };
        if !commit_until_done(
            &store,
            &batch,
            Commit::Checkpoint,
            &health,
            &metrics,
            &abandon,
        )
        .await
        {
            return;
        }
        metrics
            .checkpoint_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.checkpoint_rows.observe(batch.rows() as f64);
        let done = Committed {
            frames: Vec::new(),
            checkpoint: true,
        };
        // The ingest task is gone at shutdown; the checkpoint is committed all the same.
        let _ = committed.send(done);
    }
}

/// Visit rows in id order: ids grow with time, so the rows land together in the store's
/// partitions and indexes. Sorted here rather than in the tracker, to keep it off the ingest path.
fn sort_visits(batch: &mut Batch) {
    batch.visits.sort_unstable_by_key(|v| v.id);
    batch.extended_visits.sort_unstable_by_key(|v| v.id);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Flush,
    Checkpoint,
}

/// Commits `batch`, retrying with backoff while the store is down; false if abandoned first.
async fn commit_until_done(
    store: &Store,
    batch: &Batch,
    kind: Commit,
    health: &Health,
    metrics: &PipelineMetrics,
    abandon: &CancellationToken,
) -> bool {
    let mut backoff = Duration::from_millis(50);
    loop {
        let result = match kind {
            Commit::Flush => store.commit(batch).await,
            Commit::Checkpoint => store.commit_checkpoint(batch).await,
        };
        match result {
            Ok(()) => break,
            Err(error) => {
                health.store_ok.store(false, Ordering::Relaxed);
                metrics.store_errors.inc();
                match kind {
                    Commit::Flush => {
                        tracing::warn!(%error, retry_in = ?backoff, "store commit failed; holding ACKs");
                    }
                    Commit::Checkpoint => {
                        tracing::warn!(%error, retry_in = ?backoff, "checkpoint commit failed; the journal keeps its frames");
                    }
                }
                tokio::select! {
                    () = abandon.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    health.store_ok.store(true, Ordering::Relaxed);
    health.last_commit_ms.store(now_ms(), Ordering::Relaxed);
    true
}
