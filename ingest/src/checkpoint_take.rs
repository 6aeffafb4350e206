//! # Checkpoint take: a checkpoint's visits taken in slices between the ingest's frames.
//!
//! Between the ingest task and the journal's checkpoints ([`crate::journal`]). A checkpoint of a
//! busy city takes millions of changed visits; taken at once they held the ingest, and every
//! alert behind it, for 200 ms at 3 M tags (800 ms once at 3.6 M). The tracker takes them as they
//! were when the take began ([`Tracker::begin_checkpoint`]), a slice at a time while frames go on
//! being applied; once finished, the checkpoint goes with the next flush, after the flush that
//! journaled the frames it covers.

use crate::journal::Checkpoints;
use crate::metrics::PipelineMetrics;
use std::time::{Duration, Instant};
use tagwatch_store::Batch;
use tagwatch_tracker::Tracker;

/// (Tag, station) pairs taken per slice: about 2 ms at 3 M tags, as long as a slice of frames.
pub const TAKE_SLICE_PAIRS: usize = 16_384;

/// The checkpoint being taken, and the one taken and not yet handed to the writer.
#[derive(Debug, Default)]
pub struct CheckpointTake {
    under_way: Option<UnderWay>,
    ready: Option<Batch>,
}

#[derive(Debug)]
struct UnderWay {
    /// The last journal seq it covers (None: no journal to drop).
    covers: Option<i64>,
    /// The time its slices took so far.
    took: Duration,
}

impl CheckpointTake {
    /// Begins a checkpoint of the tracker as it is now, covering every frame journaled so far.
    pub fn begin(&mut self, tracker: &mut Tracker, checkpoints: &mut Checkpoints) {
        debug_assert!(
            self.under_way.is_none() && self.ready.is_none(),
            "one at a time"
        );
        let started = Instant::now();
        tracker.begin_checkpoint(checkpoints.all_committed());
        self.under_way = Some(UnderWay {
            covers: checkpoints.start(),
            took: started.elapsed(),
        });
    }

    /// Whether a slice is left to take.
    pub fn under_way(&self) -> bool {
        self.under_way.is_some()
    }

    /// Takes one slice of `pairs` (tag, station) pairs; once the take is finished, its batch is
    /// ready for the next flush.
    pub fn step(&mut self, tracker: &mut Tracker, metrics: &PipelineMetrics, pairs: usize) {
        let Some(under_way) = &mut self.under_way else {
            return;
        };
        let started = Instant::now();
        let finished = tracker.continue_checkpoint(pairs);
        under_way.took += started.elapsed();
        let Some(changes) = finished else {
            return;
        };
        metrics
            .checkpoint_take_seconds
            .observe(under_way.took.as_secs_f64());
        self.ready = Some(Batch {
            visits: changes.upserts,
            extended_visits: changes.extended,
            deleted_visits: changes.deletes,
            journal_done_through: under_way.covers,
            ..Batch::default()
        });
        self.under_way = None;
    }

    /// Takes what is left at once (the ingest is stopping).
    pub fn finish(&mut self, tracker: &mut Tracker, metrics: &PipelineMetrics) {
        self.step(tracker, metrics, usize::MAX);
    }

    /// Whether a taken checkpoint waits for a flush.
    pub fn is_ready(&self) -> bool {
        self.ready.is_some()
    }

    /// The taken checkpoint, for the flush about to be sent.
    pub fn take_ready(&mut self) -> Option<Batch> {
        self.ready.take()
    }
}
