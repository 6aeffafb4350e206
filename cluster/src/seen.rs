//! # Which frames a partition has applied: the shard's duplicate check past JetStream's window.
//!
//! JetStream drops a part published again within its duplicate window (two minutes). A station
//! may resend a frame from its flash much later (its gateway died between JetStream's answer and
//! the station's ACK), and the part is then stored twice in the stream. The shard applying the
//! partition recognises it here: for each station session, the sequence numbers it applied, as
//! runs. A partition sees only the frames that carry its vehicles, so its numbers are sparse and
//! a gap proves nothing (unlike a station's window in `serve`); runs keep them exactly.
//!
//! Bounded: at most [`MAX_RUNS`] runs per session. Past it the lowest run is forgotten, so a
//! resend from that far back, older than the duplicate window too, would be applied a second
//! time (its alerts still once: their ids are deterministic) rather than any frame be lost.

use std::collections::{BTreeSet, HashMap};

use tagwatch_model::{FrameKey, SessionId, StationId};
use tagwatch_store::SeenRuns;

/// Runs kept per station session.
pub const MAX_RUNS: usize = 512;

/// Applied sequence numbers of one session: sorted, disjoint, non-adjacent inclusive runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs(Vec<(u32, u32)>);

impl Runs {
    pub fn contains(&self, seq: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < seq);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// Adds `seq`; false if it was there.
    pub fn insert(&mut self, seq: u32) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < seq);
        if self.0.get(i).is_some_and(|&(lo, _)| lo <= seq) {
            return false;
        }
        let joins_left = i > 0 && self.0[i - 1].1.checked_add(1) == Some(seq);
        let joins_right = self
            .0
            .get(i)
            .is_some_and(|&(lo, _)| seq.checked_add(1) == Some(lo));
        match (joins_left, joins_right) {
            (true, true) => {
                self.0[i - 1].1 = self.0[i].1;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].1 = seq,
            (false, true) => self.0[i].0 = seq,
            (false, false) => self.0.insert(i, (seq, seq)),
        }
        if self.0.len() > MAX_RUNS {
            self.0.remove(0);
        }
        true
    }

    /// `1-40,42,44-50`.
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads [`Runs::to_text`]'s form back; runs out of order or overlapping are refused.
    pub fn from_text(text: &str) -> Result<Self, String> {
        let mut runs = Vec::new();
        for run in text.split(',').filter(|r| !r.is_empty()) {
            let number = |n: &str| n.parse::<u32>().map_err(|_| format!("bad run {run:?}"));
            let (lo, hi) = match run.split_once('-') {
                Some((lo, hi)) => (number(lo)?, number(hi)?),
                None => (number(run)?, number(run)?),
            };
            let after_last = runs
                .last()
                .is_none_or(|&(_, last): &(u32, u32)| u64::from(lo) > u64::from(last) + 1);
            if lo > hi || !after_last {
                return Err(format!("run {run:?} out of order in {text:?}"));
            }
            runs.push((lo, hi));
        }
        Ok(Self(runs))
    }
}

/// The frames one partition applied, by station session, and which sessions changed since they
/// were last taken for a commit.
#[derive(Debug, Default)]
pub struct Seen {
    sessions: HashMap<(StationId, SessionId), Runs>,
    changed: BTreeSet<(StationId, SessionId)>,
}

impl Seen {
    /// As stored.
    pub fn restore(rows: &[SeenRuns]) -> Result<Self, String> {
        let mut seen = Self::default();
        for row in rows {
            seen.sessions
                .insert((row.station, row.session), Runs::from_text(&row.runs)?);
        }
        Ok(seen)
    }

    pub fn contains(&self, key: FrameKey) -> bool {
        self.sessions
            .get(&(key.station, key.session))
            .is_some_and(|runs| runs.contains(key.seq))
    }

    /// Records a frame as applied; false if it was already.
    pub fn insert(&mut self, key: FrameKey) -> bool {
        let session = (key.station, key.session);
        let new = self.sessions.entry(session).or_default().insert(key.seq);
        if new {
            self.changed.insert(session);
        }
        new
    }

    /// The sessions changed since the last call, for the next commit.
    pub fn take_changed(&mut self) -> Vec<SeenRuns> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|(station, session)| SeenRuns {
                station,
                session,
                runs: self
                    .sessions
                    .get(&(station, session))
                    .map(Runs::to_text)
                    .unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        /// Below the run limit the runs are exactly the set of numbers inserted, and survive
        /// their text.
        #[test]
        fn runs_hold_exactly_what_was_inserted(seqs in proptest::collection::vec(0u32..600, 0..400)) {
            let mut runs = Runs::default();
            let mut model = HashSet::new();
            for &seq in &seqs {
                prop_assert_eq!(runs.insert(seq), model.insert(seq));
            }
            for seq in 0..602 {
                prop_assert_eq!(runs.contains(seq), model.contains(&seq), "seq {}", seq);
            }
            prop_assert!(runs.0.windows(2).all(|w| w[0].1 + 1 < w[1].0), "disjoint, apart");
            prop_assert_eq!(Runs::from_text(&runs.to_text()), Ok(runs));
        }
    }

    #[test]
    fn past_the_limit_the_oldest_run_is_forgotten_and_nothing_else() {
        let mut runs = Runs::default();
        for n in 0..=MAX_RUNS as u32 {
            runs.insert(n * 2);
        }
        assert!(!runs.contains(0), "the lowest run goes");
        assert!((1..=MAX_RUNS as u32).all(|n| runs.contains(n * 2)));
        assert!(runs.insert(u32::MAX) && runs.contains(u32::MAX));
    }

    #[test]
    fn bad_text_is_refused() {
        for text in ["5-3", "1-4,3", "x", "1,,2-", "4,5"] {
            assert!(Runs::from_text(text).is_err(), "{text:?}");
        }
        assert_eq!(Runs::from_text(""), Ok(Runs::default()));
    }

    #[test]
    fn only_changed_sessions_are_taken_for_a_commit() {
        let key = |station, session, seq| FrameKey {
            station: StationId(station),
            session: SessionId(session),
            seq,
        };
        let mut seen = Seen::default();
        assert!(seen.insert(key(1, 1, 1)) && seen.insert(key(1, 1, 2)));
        assert!(seen.insert(key(2, 9, 7)));
        assert!(!seen.insert(key(1, 1, 2)));
        let taken = seen.take_changed();
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].runs, "1-2");
        assert!(seen.take_changed().is_empty());
        let back = Seen::restore(&taken).expect("restores");
        assert!(back.contains(key(2, 9, 7)) && !back.contains(key(2, 9, 8)));
    }
}
