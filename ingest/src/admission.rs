//! # Admission: which frames the ingest takes in when more arrives than it can apply.
//!
//! The ingest takes every frame the gateway verified as soon as it can (every few milliseconds),
//! and decides here, at once, whether to queue it or to answer BUSY. The bound is on time, not on
//! count: a frame is queued only while the frames ahead of it can be applied within
//! `admission_bound` at the rate the ingest is measured to drain its queue (which already
//! includes a slow store, a checkpoint's take and the machine's other work). Everything else
//! stays in the stations' flash, which is what it is for: they resend after a back-off
//! (`PROTOCOL.md`). So queue wait, the memory the queue holds and the delay before an alert are
//! bounded whatever is offered.
//!
//! Two classes, in the order the ingest applies them (see [`crate::lanes`]):
//! - **live**: the station's newest traffic. Admitted within the bound;
//! - **backlog**: frames more than [`LIVE_WINDOW_MS`] older than the newest one heard from their
//!   station (a station resending its flash after an outage). Admitted within half the bound,
//!   so live frames always find room. Across stations the backlog drains fair rather than
//!   oldest first: every station paces itself with a window that a BUSY halves (`PROTOCOL.md`),
//!   so stations sharing a full server converge to equal shares, all their flash empties at the
//!   same pace, none is left to fill up while another drains, and the whole city catches up
//!   together. (A cap of a few queued frames per station was tried: it turned most of a
//!   reconnecting city's frames into BUSY answers, which cost the CPU the drain needed.)
//!
//! Alerts do not wait in either: a frame's stolen, armed, panic and tamper sightings are alerted
//! as it is taken in, before this decision (`Tracker::alert_ahead`), so a frame told BUSY has alerted all the
//! same. (Until 2026-12-06 frames that might alert had a class of their own, admitted up to four
//! bounds and applied first; with 1 % of tags stolen, most busy frames were in it, and past the
//! machine's capacity alerts waited seconds in a queue of "hot" frames.)
//!
//! Frame cost is in detections (plus [`FRAME_COST`] for the frame itself), so a station hearing a
//! hundred tags weighs a hundred times one hearing one.

use std::collections::HashMap;
use std::time::Duration;
use tagwatch_model::StationId;

/// Which queue a frame goes to, and under which bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Live,
    Backlog,
}

impl Class {
    pub fn label(self) -> &'static str {
        match self {
            Class::Live => "live",
            Class::Backlog => "backlog",
        }
    }
}

/// A frame more than this much older than its station's newest is backlog.
pub const LIVE_WINDOW_MS: u64 = 30_000;

/// A frame's own cost, in detections: the dedupe, the journal entry and the ACK.
pub const FRAME_COST: u64 = 4;

/// The drain rate assumed before any is measured, in detections a second: a fraction of what this
/// machine applies, so a cold start refuses early rather than queueing for seconds.
const INITIAL_RATE: f64 = 250_000.0;

/// Busy time over which one rate sample is taken.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Weight of the newest sample in the drain rate.
const SAMPLE_WEIGHT: f64 = 0.5;

/// The cost of a frame of `detections` records.
pub fn cost(detections: usize) -> u64 {
    FRAME_COST + detections as u64
}

/// The ingest's drain rate: cost applied per second of wall time while frames were waiting.
#[derive(Debug, Clone)]
pub struct DrainRate {
    per_second: f64,
    cost: u64,
    busy: Duration,
}

impl Default for DrainRate {
    fn default() -> Self {
        Self {
            per_second: INITIAL_RATE,
            cost: 0,
            busy: Duration::ZERO,
        }
    }
}

impl DrainRate {
    /// Records that `cost` was applied over `busy`, a stretch during which frames were queued.
    pub fn record(&mut self, cost: u64, busy: Duration) {
        self.cost += cost;
        self.busy += busy;
        if self.busy >= SAMPLE_EVERY {
            let sample = self.cost as f64 / self.busy.as_secs_f64();
            self.per_second = (1.0 - SAMPLE_WEIGHT) * self.per_second + SAMPLE_WEIGHT * sample;
            // Never zero: a store down for a while must not refuse the first frame after it.
            self.per_second = self.per_second.max(1_000.0);
            self.cost = 0;
            self.busy = Duration::ZERO;
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }
}

/// The verdict on one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    /// Answer BUSY: the station keeps the frame and resends it later.
    Refuse,
}

/// What is queued and how fast it drains.
#[derive(Debug)]
pub struct Admission {
    bound: Duration,
    rate: DrainRate,
    /// Cost of every frame queued.
    queued: u64,
    /// The newest frame time heard from each station, to tell backlog from live.
    newest_ms: HashMap<StationId, u64>,
}

impl Admission {
    pub fn new(bound: Duration) -> Self {
        Self {
            bound,
            rate: DrainRate::default(),
            queued: 0,
            newest_ms: HashMap::new(),
        }
    }

    /// Live or backlog, by the frame's time against the newest heard from its station.
    pub fn age_class(&mut self, station: StationId, time_ms: u64) -> Class {
        let newest = self.newest_ms.entry(station).or_insert(time_ms);
        *newest = (*newest).max(time_ms);
        if *newest - time_ms > LIVE_WINDOW_MS {
            Class::Backlog
        } else {
            Class::Live
        }
    }

    /// Whether a frame of `class` costing `cost` may be queued now.
    pub fn decide(&self, class: Class, cost: u64) -> Verdict {
        // An empty queue takes anything: however large, the frame is applied next.
        if self.queued == 0 {
            return Verdict::Admit;
        }
        let wait_s = (self.queued + cost) as f64 / self.rate.per_second();
        let bound_s = self.bound.as_secs_f64();
        let admit = match class {
            Class::Live => wait_s <= bound_s,
            Class::Backlog => wait_s <= bound_s / 2.0,
        };
        if admit {
            Verdict::Admit
        } else {
            Verdict::Refuse
        }
    }

    /// A frame was queued.
    pub fn queued(&mut self, cost: u64) {
        self.queued += cost;
    }

    /// A queued frame left the queue (applied, or answered without applying it).
    pub fn left(&mut self, cost: u64) {
        self.queued = self.queued.saturating_sub(cost);
    }

    /// See [`DrainRate::record`].
    pub fn drained(&mut self, cost: u64, busy: Duration) {
        self.rate.record(cost, busy);
    }

    /// Cost of every frame queued.
    pub fn queued_cost(&self) -> u64 {
        self.queued
    }

    /// The drain rate, in cost a second.
    pub fn rate(&self) -> f64 {
        self.rate.per_second()
    }

    /// How long the queue would take to drain at the measured rate.
    pub fn expected_wait(&self) -> Duration {
        Duration::from_secs_f64(self.queued as f64 / self.rate.per_second())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S1: StationId = StationId(1);
    const S2: StationId = StationId(2);

    /// An admission whose rate is measured at `per_second` (two full samples).
    fn measured(bound_ms: u64, per_second: u64) -> Admission {
        let mut a = Admission::new(Duration::from_millis(bound_ms));
        for _ in 0..40 {
            a.drained(per_second / 10, Duration::from_millis(100));
        }
        assert!((a.rate() - per_second as f64).abs() < per_second as f64 * 0.01);
        a
    }

    #[test]
    fn live_frames_are_queued_up_to_the_bound_in_time_then_refused() {
        // 100,000 a second, one second's bound: 100,000 of cost fit.
        let mut a = measured(1_000, 100_000);
        let mut admitted = 0;
        while a.decide(Class::Live, 1_000) == Verdict::Admit {
            a.queued(1_000);
            admitted += 1;
        }
        assert_eq!(admitted, 100, "one second of work at the measured rate");
        // Applying one frame makes room for one.
        a.left(1_000);
        assert_eq!(a.decide(Class::Live, 1_000), Verdict::Admit);
    }

    #[test]
    fn a_slower_drain_admits_less() {
        let mut fast = measured(1_000, 100_000);
        let mut slow = measured(1_000, 10_000);
        for a in [&mut fast, &mut slow] {
            a.queued(20_000);
        }
        assert_eq!(fast.decide(Class::Live, 1_000), Verdict::Admit);
        assert_eq!(slow.decide(Class::Live, 1_000), Verdict::Refuse);
        assert_eq!(slow.expected_wait(), Duration::from_secs(2));
    }

    #[test]
    fn backlog_takes_half_the_bound() {
        let mut a = measured(1_000, 100_000);
        a.queued(49_000);
        assert_eq!(a.decide(Class::Backlog, 1_000), Verdict::Admit);
        a.queued(1_000);
        assert_eq!(a.decide(Class::Backlog, 1_000), Verdict::Refuse);
        assert_eq!(
            a.decide(Class::Live, 1_000),
            Verdict::Admit,
            "live frames still find room"
        );
    }

    #[test]
    fn an_empty_queue_takes_any_frame() {
        let a = measured(1, 1_000);
        assert_eq!(a.decide(Class::Backlog, 1_000_000), Verdict::Admit);
    }

    #[test]
    fn frames_far_behind_their_stations_newest_are_backlog() {
        let mut a = Admission::new(Duration::from_secs(1));
        let now = 10_000_000;
        assert_eq!(a.age_class(S1, now), Class::Live);
        assert_eq!(a.age_class(S1, now - 3_600_000), Class::Backlog);
        assert_eq!(a.age_class(S1, now - LIVE_WINDOW_MS), Class::Live);
        assert_eq!(
            a.age_class(S2, now - 3_600_000),
            Class::Live,
            "each station by its own clock"
        );
    }

    #[test]
    fn the_rate_follows_a_drain_that_slows_down() {
        let mut a = measured(1_000, 1_000_000);
        for _ in 0..20 {
            a.drained(0, Duration::from_millis(100));
        }
        assert_eq!(a.rate(), 1_000.0, "a stalled drain: the floor, never zero");
        a.drained(50_000, Duration::from_millis(100));
        assert!(
            a.rate() > 200_000.0,
            "and it recovers at once: {}",
            a.rate()
        );
    }

    proptest! {
        /// Whatever is queued and left, the queued cost is what is still in the queue.
        #[test]
        fn queued_cost_is_what_was_queued_and_has_not_left(
            ops in proptest::collection::vec((1u64..1_000, any::<bool>()), 0..200)
        ) {
            let mut a = Admission::new(Duration::from_secs(1));
            let mut inside: Vec<u64> = Vec::new();
            for (cost, enter) in ops {
                if enter || inside.is_empty() {
                    a.queued(cost);
                    inside.push(cost);
                } else {
                    a.left(inside.remove(0));
                }
            }
            prop_assert_eq!(a.queued_cost(), inside.iter().sum::<u64>());
        }
    }
}
