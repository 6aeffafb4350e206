//! Pipeline metrics (ingest and store flushes), in Prometheus naming.

use crate::admission::Class;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Debug)]
pub struct PipelineMetrics {
    pub frames_applied: Counter,
    pub detections_applied: Counter,
    pub duplicates: Counter,
    pub resends_in_flight: Counter,
    pub alerts_ahead: Counter,
    pub too_far_ahead: Counter,
    pub alerts: Counter,
    pub store_errors: Counter,
    pub history_lookups: Counter,
    pub frames_journaled: Counter,
    pub frames_replayed: Counter,
    pub checkpoints: Counter,
    pub journal_pending: Gauge,
    pub checkpoint_interval: Gauge<f64, AtomicU64>,
    pub visits_in_memory: Gauge,
    pub judged_ahead: Gauge,
    pub ack_latency: Histogram,
    pub flush_rows: Histogram,
    pub flush_seconds: Histogram,
    pub checkpoint_rows: Histogram,
    pub checkpoint_seconds: Histogram,
    pub checkpoint_take_seconds: Histogram,
    pub upkeep_seconds: Histogram,
    pub queue_wait: Histogram,
    alert_raise: Family<KindLabel, Histogram, fn() -> Histogram>,
    steps: Family<StepLabel, Histogram, fn() -> Histogram>,
    refused: Family<ClassLabel, Counter>,
    pub queued_cost: Gauge,
    pub drain_rate: Gauge<f64, AtomicU64>,
    pub expected_wait: Gauge<f64, AtomicU64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// 0.1 ms .. ~3 s
fn alert_raise_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self {
            frames_applied: Counter::default(),
            detections_applied: Counter::default(),
            duplicates: Counter::default(),
            resends_in_flight: Counter::default(),
            alerts_ahead: Counter::default(),
            too_far_ahead: Counter::default(),
            alerts: Counter::default(),
            store_errors: Counter::default(),
            history_lookups: Counter::default(),
            frames_journaled: Counter::default(),
            frames_replayed: Counter::default(),
            checkpoints: Counter::default(),
            journal_pending: Gauge::default(),
            checkpoint_interval: Gauge::default(),
            visits_in_memory: Gauge::default(),
            judged_ahead: Gauge::default(),
            // 0.5 ms .. ~16 s
            ack_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            flush_rows: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            flush_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            checkpoint_rows: Histogram::new(exponential_buckets(1.0, 4.0, 12)),
            checkpoint_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            checkpoint_take_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            upkeep_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 0.1 ms .. ~3 s
            queue_wait: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            alert_raise: Family::new_with_constructor(alert_raise_buckets),
            steps: Family::new_with_constructor(alert_raise_buckets),
            refused: Family::default(),
            queued_cost: Gauge::default(),
            drain_rate: Gauge::default(),
            expected_wait: Gauge::default(),
        }
    }
}

impl PipelineMetrics {
    /// Frames of `class` the admission answered BUSY.
    pub fn refused(&self, class: Class) -> Counter {
        self.refused_as(class.label())
    }

    /// Frames admitted and then answered BUSY, because the drain slowed after their admission
    /// and they waited past twice the bound.
    pub fn refused_late(&self) -> Counter {
        self.refused_as("late")
    }

    fn refused_as(&self, class: &'static str) -> Counter {
        self.refused.get_or_create(&ClassLabel { class }).clone()
    }

    /// The ingest task spent `seconds` on one turn of its loop of kind `step` (nothing else ran
    /// on it meanwhile: a frame's alerts wait at most that long to be raised).
    pub fn ingest_step(&self, step: &'static str, seconds: f64) {
        self.steps
            .get_or_create(&StepLabel { step })
            .observe(seconds);
    }

    /// An alert of `kind` published `seconds` after its frame arrived.
    pub fn alert_raised(&self, kind: tagwatch_model::AlertKind, seconds: f64) {
        self.alert_raise
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .observe(seconds);
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tagwatch_frames_applied",
            "Fresh frames applied to the tracker",
            self.frames_applied.clone(),
        );
        registry.register(
            "tagwatch_detections_applied",
            "Detection records applied to the tracker",
            self.detections_applied.clone(),
        );
        registry.register(
            "tagwatch_frames_duplicate",
            "Frames already stored, answered DUPLICATE",
            self.duplicates.clone(),
        );
        registry.register(
            "tagwatch_frames_resent_in_flight",
            "Resends of frames whose flush had not committed yet (answered after the commit)",
            self.resends_in_flight.clone(),
        );
        registry.register(
            "tagwatch_alerts_ahead",
            "Stolen and armed alerts raised as their frame was taken in, before it was applied (whether it was then queued or told BUSY)",
            self.alerts_ahead.clone(),
        );
        registry.register(
            "tagwatch_frames_too_far_ahead",
            "Frames too far past their session's watermark, answered BUSY",
            self.too_far_ahead.clone(),
        );
        registry.register(
            "tagwatch_alerts_raised",
            "Alerts raised",
            self.alerts.clone(),
        );
        registry.register(
            "tagwatch_store_commit_errors",
            "Store commits that failed and were retried",
            self.store_errors.clone(),
        );
        registry.register(
            "tagwatch_history_lookups",
            "Store reads of visits for late data behind the tracker's hot window (one per frame that needs any)",
            self.history_lookups.clone(),
        );
        registry.register(
            "tagwatch_frames_journaled",
            "Frames committed to the journal, their visits left for the next checkpoint",
            self.frames_journaled.clone(),
        );
        registry.register(
            "tagwatch_frames_replayed",
            "Journaled frames applied again at start (the last run did not checkpoint them)",
            self.frames_replayed.clone(),
        );
        registry.register(
            "tagwatch_checkpoints",
            "Flushes that wrote the changed visits and dropped the journal they cover",
            self.checkpoints.clone(),
        );
        registry.register(
            "tagwatch_journal_frames_pending",
            "Frames in the journal that no committed checkpoint covers yet (0: the visits table is complete)",
            self.journal_pending.clone(),
        );
        registry.register(
            "tagwatch_checkpoint_interval_seconds",
            "Interval before the next checkpoint: the configured one, or twice the last checkpoint's commit time if longer",
            self.checkpoint_interval.clone(),
        );
        registry.register(
            "tagwatch_visits_in_memory",
            "Visits held in the tracker's hot window",
            self.visits_in_memory.clone(),
        );
        registry.register(
            "tagwatch_tracker_judged_ahead",
            "Spans of stolen or armed sightings alerted (or judged) ahead whose frames are not all applied yet",
            self.judged_ahead.clone(),
        );
        registry.register(
            "tagwatch_ack_latency_seconds",
            "From a frame's arrival to its ACCEPTED",
            self.ack_latency.clone(),
        );
        registry.register(
            "tagwatch_store_flush_rows",
            "Rows written per store flush",
            self.flush_rows.clone(),
        );
        registry.register(
            "tagwatch_store_flush_seconds",
            "Duration of one store flush commit",
            self.flush_seconds.clone(),
        );
        registry.register(
            "tagwatch_checkpoint_rows",
            "Rows written per checkpoint committed on its own (visits, deletions)",
            self.checkpoint_rows.clone(),
        );
        registry.register(
            "tagwatch_checkpoint_take_seconds",
            "Time the ingest task spends collecting a checkpoint's changed visits (frames wait meanwhile)",
            self.checkpoint_take_seconds.clone(),
        );
        registry.register(
            "tagwatch_ingest_queue_wait_seconds",
            "Time from a frame's arrival at the gateway until the ingest takes it up (how far behind the ingest is)",
            self.queue_wait.clone(),
        );
        registry.register(
            "tagwatch_tracker_upkeep_seconds",
            "Time the ingest task spends on a part of the tracker's upkeep, after each slice of frames and at each flush: closing visits, forgetting old ones, the trajectory index's buckets (frames wait meanwhile)",
            self.upkeep_seconds.clone(),
        );
        registry.register(
            "tagwatch_alert_raise_seconds",
            "From the arrival of a frame at the gateway to the publication of an alert it raised (on the live bus, before it is stored), by kind",
            self.alert_raise.clone(),
        );
        registry.register(
            "tagwatch_ingest_step_seconds",
            "Time the ingest task spends on one turn of its loop, by what it did (take_in, slice, flush, take_step, clock, command, query, committed); a frame's alerts wait behind at most one",
            self.steps.clone(),
        );
        registry.register(
            "tagwatch_ingest_refused_busy",
            "Frames answered BUSY because the ingest could not apply them within the admission bound, by class (live, backlog; late: admitted, then past twice the bound when their turn came)",
            self.refused.clone(),
        );
        registry.register(
            "tagwatch_ingest_queued_cost",
            "Work queued in the ingest, in detections (plus a few per frame)",
            self.queued_cost.clone(),
        );
        registry.register(
            "tagwatch_ingest_drain_rate",
            "Work the ingest is measured to apply per second while frames wait, in detections",
            self.drain_rate.clone(),
        );
        registry.register(
            "tagwatch_ingest_expected_wait_seconds",
            "How long the ingest's queue would take to drain at the measured rate",
            self.expected_wait.clone(),
        );
        registry.register(
            "tagwatch_checkpoint_seconds",
            "Duration of one checkpoint commit (flushes go on meanwhile on Postgres)",
            self.checkpoint_seconds.clone(),
        );
    }
}
