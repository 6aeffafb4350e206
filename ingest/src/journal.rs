//! # Journal and checkpoints: every frame durable at once, its visits written coalesced.
//!
//! Between the ingest task and the store. A frame may be ACKed only once what it changed is
//! durable; writing the changed visits at every flush costs one row per detection (a tag heard
//! every second updates its visit every second), and that row rate was the server's limit. So a
//! flush commits the applied frames themselves (as their stations sent them, one row per frame)
//! with their alerts and watermarks, and only every `checkpoint_interval` is a checkpoint taken:
//! the visits changed since the last one, each once however often it grew, and the deletion of
//! the frames they cover, in one transaction. It commits after the flush it was taken at, on its
//! own (a second connection on Postgres), so the flushes and their ACKs go on meanwhile; one
//! checkpoint at a time. After a crash the server applies the frames left in the journal again
//! ([`replay`]), each with the visit ids it first got, and the next checkpoint writes their visits.
//!
//! The interval is a minimum: the next checkpoint also waits [`CHECKPOINT_SPACING`] times as long
//! as the last one took to commit. A checkpoint rewrites every visit that grew, so at millions of
//! tags it takes the store tens of seconds; back to back, checkpoints would keep a store core busy
//! for good. Spaced out, each covers more frames but rewrites a parked tag's open visit once for
//! them all: the store writes fewer rows per second, at the price of a longer journal (and restart).
//!
//! Until a checkpoint, the latest changes of a visit are in the tracker's memory, not in the
//! visits table: readers that need them (a vehicle's track, tags through an area) ask the tracker
//! too. Visits leave the tracker's memory only at a checkpoint taken when every earlier one is
//! committed, so a late frame that reads an old visit back from the store finds it there.

use crate::apply::apply_detections;
use crate::metrics::PipelineMetrics;
use std::collections::VecDeque;
use std::time::Duration;
// Tokio's clock, so the spacing of checkpoints can be tested with time paused.
use tagwatch_gateway::wire;
use tagwatch_store::{JournalEntry, Store};
use tagwatch_tracker::Tracker;
use tokio::time::Instant;

/// A checkpoint starts no sooner than this many times the last one's commit time after that one
/// started: writing visits takes at most half of the store's time.
pub const CHECKPOINT_SPACING: u32 = 2;

/// When the next checkpoint is due, and the journal's numbering.
#[derive(Debug)]
pub struct Checkpoints {
    /// The shortest interval (configured).
    interval: Duration,
    /// When the last checkpoint started, and how long the last committed one took.
    last: Instant,
    last_took: Duration,
    next_seq: i64,
    /// Frames journaled that no checkpoint has covered yet.
    uncovered: u64,
    /// Frames covered by each checkpoint started and not yet committed, oldest first.
    covering: VecDeque<u64>,
    /// Checkpoints handed to the writer, and those it has committed.
    started: u64,
    committed: u64,
}

impl Checkpoints {
    /// Continues after `replayed` (the journal rows left by the last run).
    pub fn new(interval: Duration, replayed: Replayed) -> Self {
        Self {
            interval,
            last: Instant::now(),
            last_took: Duration::ZERO,
            next_seq: replayed.next_seq,
            uncovered: replayed.frames,
            covering: VecDeque::new(),
            started: 0,
            committed: 0,
        }
    }

    /// Whether this flush should be a checkpoint: its interval is over, and the last one is
    /// committed (one at a time: while one commits, the changes keep coalescing).
    pub fn due(&self) -> bool {
        // Inline checkpoints commit in the flush itself, in order: nothing to wait for.
        self.inline() || (self.last.elapsed() >= self.interval() && self.all_committed())
    }

    /// The interval in effect: the configured one, or longer while checkpoints take long.
    pub fn interval(&self) -> Duration {
        self.interval.max(self.last_took * CHECKPOINT_SPACING)
    }

    /// Checkpoints go with every flush, in the same transaction: no journal.
    pub fn inline(&self) -> bool {
        self.interval.is_zero()
    }

    /// Whether a checkpoint is due and there is a journal for it to drop: an idle server still
    /// writes its visits one interval after its last frame.
    pub fn overdue(&self) -> bool {
        self.uncovered > 0 && self.due()
    }

    /// Frames journaled whose visits are not yet in the visits table: no checkpoint covering
    /// them has committed. Zero: the visits table holds every visit applied.
    pub fn pending(&self) -> u64 {
        self.uncovered + self.covering.iter().sum::<u64>()
    }

    /// Numbers a flush's frames in the order they were applied, which is the order to apply
    /// them again in.
    pub fn number(&mut self, entries: &mut [JournalEntry]) {
        for entry in entries.iter_mut() {
            entry.seq = self.next_seq;
            self.next_seq += 1;
        }
        self.uncovered += entries.len() as u64;
    }

    /// A checkpoint is being written: starts the next interval and returns the last seq it
    /// covers (every frame numbered so far: none of this flush's own frames is journaled), or
    /// None when there is no journal to drop.
    pub fn start(&mut self) -> Option<i64> {
        self.last = Instant::now();
        self.started += 1;
        let covers = std::mem::take(&mut self.uncovered);
        self.covering.push_back(covers);
        (covers > 0).then_some(self.next_seq - 1)
    }

    /// The writer committed the oldest checkpoint not yet committed (they commit in order).
    pub fn committed(&mut self) {
        self.committed += 1;
        self.covering.pop_front();
        // Separate checkpoints go one at a time: this is the one started last.
        if self.all_committed() && !self.inline() {
            self.last_took = self.last.elapsed();
        }
    }

    /// Whether every checkpoint started is committed: only then does the store hold every
    /// visit that has not changed since, and may visits leave the tracker's memory.
    pub fn all_committed(&self) -> bool {
        self.committed == self.started
    }
}

/// What [`replay`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub frames: u64,
    /// The journal's next seq.
    pub next_seq: i64,
}

/// Journal rows read at a time at start.
const REPLAY_PAGE: u32 = 2_000;
/// Frames between progress messages while the journal is applied again.
const PROGRESS_EVERY: u64 = 100_000;

/// Applies the journaled frames again, in order, each at the server time and from the visit id
/// it was first applied with. Their alerts are already stored (they were committed with the
/// frames) and are not raised again; the alert seq then continues from `next_alert_seq`.
pub async fn replay(
    tracker: &mut Tracker,
    store: &Store,
    metrics: &PipelineMetrics,
    next_alert_seq: i64,
) -> anyhow::Result<Replayed> {
    let mut replayed = Replayed {
        frames: 0,
        next_seq: 1,
    };
    loop {
        let page = store
            .journal_after(replayed.next_seq - 1, REPLAY_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        replayed.next_seq = last.seq + 1;
        let before = replayed.frames;
        for entry in &page {
            // The MAC was checked when the frame arrived; the content checks run again.
            let frame = wire::decode_verified(&entry.frame).map_err(|e| {
                anyhow::anyhow!("journaled frame {} cannot be decoded: {e}", entry.seq)
            })?;
            apply_detections(
                tracker,
                store,
                metrics,
                &frame,
                entry.applied_at_ms,
                Some(entry.first_visit_id),
            )
            .await?;
            replayed.frames += 1;
        }
        if before / PROGRESS_EVERY != replayed.frames / PROGRESS_EVERY {
            tracing::info!(
                frames = replayed.frames,
                "journal frames applied again so far"
            );
        }
    }
    tracker.resume_alert_seq(next_alert_seq);
    metrics.frames_replayed.inc_by(replayed.frames);
    Ok(replayed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> JournalEntry {
        JournalEntry {
            seq: 0,
            applied_at_ms: 0,
            first_visit_id: 0,
            frame: Vec::new(),
        }
    }

    fn after(frames: u64, next_seq: i64) -> Replayed {
        Replayed { frames, next_seq }
    }

    #[test]
    fn frames_are_numbered_in_order_and_a_checkpoint_covers_all_numbered() {
        let mut checkpoints = Checkpoints::new(Duration::ZERO, after(0, 41));
        let mut first = vec![entry(), entry()];
        checkpoints.number(&mut first);
        assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [41, 42]);
        assert_eq!(checkpoints.pending(), 2);
        assert!(checkpoints.due(), "an interval of zero: every flush");
        assert_eq!(checkpoints.start(), Some(42));
        assert!(!checkpoints.overdue(), "every frame is covered");
        assert_eq!(checkpoints.pending(), 2, "covered, but not committed yet");
        checkpoints.committed();
        assert_eq!(checkpoints.pending(), 0);
        assert_eq!(checkpoints.start(), None, "nothing journaled since");
        let mut next = vec![entry()];
        checkpoints.number(&mut next);
        assert_eq!(next[0].seq, 43);
        assert_eq!(checkpoints.start(), Some(43));
    }

    #[test]
    fn checkpoints_count_as_committed_only_once_the_writer_says_so() {
        let mut checkpoints = Checkpoints::new(Duration::ZERO, after(0, 1));
        assert!(checkpoints.all_committed());
        checkpoints.start();
        checkpoints.start();
        checkpoints.committed();
        assert!(!checkpoints.all_committed(), "one of two");
        checkpoints.committed();
        assert!(checkpoints.all_committed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_checkpoint_spaces_out_the_next() {
        let interval = Duration::from_millis(20);
        let mut checkpoints = Checkpoints::new(interval, after(0, 1));
        assert_eq!(
            checkpoints.interval(),
            interval,
            "no checkpoint has taken any time yet"
        );
        checkpoints.start();
        tokio::time::advance(Duration::from_millis(50)).await;
        checkpoints.committed();
        assert_eq!(
            checkpoints.interval(),
            Duration::from_millis(100),
            "twice the 50 ms it took, not the 20 ms configured"
        );
        assert!(!checkpoints.due(), "it started 50 ms ago");
        tokio::time::advance(Duration::from_millis(49)).await;
        assert!(!checkpoints.due(), "99 ms after it started");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(checkpoints.due(), "100 ms after it started");
        checkpoints.start();
        checkpoints.committed();
        assert_eq!(
            checkpoints.interval(),
            interval,
            "a quick one brings it back"
        );
    }

    #[test]
    fn the_first_checkpoint_after_a_replay_drops_the_replayed_frames() {
        let mut checkpoints = Checkpoints::new(Duration::from_secs(3_600), after(5, 11));
        assert!(!checkpoints.due(), "due only after its interval");
        assert_eq!(checkpoints.pending(), 5, "the replayed frames are pending");
        assert_eq!(checkpoints.start(), Some(10));
        let mut fresh = Checkpoints::new(Duration::from_secs(3_600), after(0, 1));
        assert_eq!(fresh.start(), None);
    }
}
