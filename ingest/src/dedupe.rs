//! # Exactly-once bookkeeping: which (station, session, seq) frames have been applied.
//!
//! Pure state, owned by the one task that applies frames. A frame is *fresh* (apply it), *in
//! flight* (applied, its store flush not yet committed: do not answer, the ACK follows the commit),
//! *duplicate* (committed before: answer DUPLICATE), or *too far ahead* of the session's contiguous
//! watermark (answer BUSY; the station resends oldest first, so the gap fills).
//!
//! Per session we keep the contiguous watermark plus the few seqs applied above it, which bounds
//! memory by the window while tolerating reordering and loss.

use std::collections::{BTreeSet, HashMap, HashSet};
use tagwatch_model::{FrameKey, SessionId, StationId, Watermark};

/// How far past a session's contiguous watermark a frame may be and still be applied.
pub const DEFAULT_WINDOW: u32 = 4096;

/// The verdict on one incoming frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Fresh,
    InFlight,
    Duplicate,
    TooFarAhead,
}

#[derive(Debug, Default, Clone)]
struct SessionState {
    contiguous: u32,
    above: BTreeSet<u32>,
}

impl SessionState {
    fn contains(&self, seq: u32) -> bool {
        seq <= self.contiguous || self.above.contains(&seq)
    }

    fn insert(&mut self, seq: u32) {
        if seq == self.contiguous.saturating_add(1) {
            self.contiguous = seq;
            while self.above.remove(&self.contiguous.saturating_add(1)) {
                self.contiguous += 1;
            }
        } else if seq > self.contiguous {
            self.above.insert(seq);
        }
    }
}

/// Applied-frame state for every station session.
#[derive(Debug)]
pub struct Dedupe {
    window: u32,
    sessions: HashMap<(StationId, SessionId), SessionState>,
    in_flight: HashSet<FrameKey>,
}

impl Dedupe {
    pub fn new(window: u32) -> Self {
        Self {
            window,
            sessions: HashMap::new(),
            in_flight: HashSet::new(),
        }
    }

    /// Loads the committed state after a restart.
    pub fn restore(&mut self, watermarks: impl IntoIterator<Item = Watermark>) {
        for w in watermarks {
            let mut state = SessionState {
                contiguous: w.contiguous,
                above: BTreeSet::new(),
            };
            for seq in w.above {
                state.insert(seq);
            }
            self.sessions.insert((w.station, w.session), state);
        }
    }

    pub fn check(&self, key: FrameKey) -> Seen {
        let state = self.sessions.get(&(key.station, key.session));
        let contiguous = state.map_or(0, |s| s.contiguous);
        if state.is_some_and(|s| s.contains(key.seq)) {
            if self.in_flight.contains(&key) {
                Seen::InFlight
            } else {
                Seen::Duplicate
            }
        } else if key.seq > contiguous.saturating_add(self.window) {
            Seen::TooFarAhead
        } else {
            Seen::Fresh
        }
    }

    /// Records a fresh frame as applied and in flight until [`Dedupe::committed`].
    pub fn record(&mut self, key: FrameKey) {
        self.sessions
            .entry((key.station, key.session))
            .or_default()
            .insert(key.seq);
        self.in_flight.insert(key);
    }

    /// The store committed these frames: resends are now answered DUPLICATE.
    pub fn committed(&mut self, keys: impl IntoIterator<Item = FrameKey>) {
        for key in keys {
            self.in_flight.remove(&key);
        }
    }

    /// The state of one session, to be committed together with the frames it covers.
    pub fn watermark(&self, station: StationId, session: SessionId) -> Watermark {
        let state = self.sessions.get(&(station, session));
        Watermark {
            station,
            session,
            contiguous: state.map_or(0, |s| s.contiguous),
            above: state.map_or_else(Vec::new, |s| s.above.iter().copied().collect()),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seq: u32) -> FrameKey {
        FrameKey {
            station: StationId(1),
            session: SessionId(7),
            seq,
        }
    }

    #[test]
    fn fresh_then_in_flight_then_duplicate() {
        let mut d = Dedupe::new(DEFAULT_WINDOW);
        assert_eq!(d.check(key(1)), Seen::Fresh);
        d.record(key(1));
        assert_eq!(d.check(key(1)), Seen::InFlight);
        d.committed([key(1)]);
        assert_eq!(d.check(key(1)), Seen::Duplicate);
        assert_eq!(d.check(key(2)), Seen::Fresh);
    }

    #[test]
    fn out_of_order_frames_are_kept_above_the_watermark() {
        let mut d = Dedupe::new(DEFAULT_WINDOW);
        for seq in [1, 3, 4] {
            d.record(key(seq));
        }
        let w = d.watermark(StationId(1), SessionId(7));
        assert_eq!((w.contiguous, w.above), (1, vec![3, 4]));
        d.record(key(2));
        let w = d.watermark(StationId(1), SessionId(7));
        assert_eq!((w.contiguous, w.above), (4, vec![]));
    }

    #[test]
    fn too_far_ahead_is_not_applied() {
        let d = Dedupe::new(10);
        assert_eq!(d.check(key(10)), Seen::Fresh);
        assert_eq!(d.check(key(11)), Seen::TooFarAhead);
        assert_eq!(d.check(key(u32::MAX)), Seen::TooFarAhead);
    }

    #[test]
    fn sessions_are_independent_and_restored() {
        let mut d = Dedupe::new(DEFAULT_WINDOW);
        d.restore([Watermark {
            station: StationId(1),
            session: SessionId(7),
            contiguous: 5,
            above: vec![9],
        }]);
        assert_eq!(d.check(key(5)), Seen::Duplicate);
        assert_eq!(d.check(key(9)), Seen::Duplicate);
        assert_eq!(d.check(key(6)), Seen::Fresh);
        let other = FrameKey {
            session: SessionId(8),
            ..key(1)
        };
        assert_eq!(d.check(other), Seen::Fresh);
    }

    proptest! {
        /// Whatever the arrival order, a frame is fresh exactly once, and the persisted watermark
        /// restores the same verdicts.
        #[test]
        fn each_frame_is_fresh_once(seqs in proptest::collection::vec(1u32..200, 1..400)) {
            let mut d = Dedupe::new(DEFAULT_WINDOW);
            let mut applied = std::collections::HashSet::new();
            for &seq in &seqs {
                let fresh = d.check(key(seq)) == Seen::Fresh;
                prop_assert_eq!(fresh, applied.insert(seq));
                if fresh {
                    d.record(key(seq));
                }
            }
            let mut restored = Dedupe::new(DEFAULT_WINDOW);
            restored.restore([d.watermark(StationId(1), SessionId(7))]);
            for seq in 1..200 {
                let expected = if applied.contains(&seq) { Seen::Duplicate } else { Seen::Fresh };
                prop_assert_eq!(restored.check(key(seq)), expected);
            }
        }
    }
}
