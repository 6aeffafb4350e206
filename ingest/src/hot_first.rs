//! # Hot frames first: the order the ingest applies the frames it has taken in.
//!
//! A thousand stations send their one-second frames at the same moment, and applying a whole
//! burst of them takes the tracker tens of milliseconds (hundreds at a million detections a
//! second). A frame that may raise an alert (a stolen tag heard outside a visit that has already
//! alerted, see `Tracker::may_alert`) should not wait behind the rest of the city, so the ingest
//! keeps the frames it has taken from the gateway in a [`HotQueue`]: stations with such a frame
//! go first, and frames that arrive while it works through the queue join it (the ingest takes
//! them every few milliseconds), a hot one going before the rest. Each station's own frames
//! keep their order (its visits and sequence numbers are built in order); the order between
//! stations is only the network's anyway.

use std::collections::VecDeque;
use std::hash::Hash;

/// Frames taken in and not yet applied, hot ones first. Each item is marked hot or not once, when
/// it arrives: an item marked hot that no longer is only goes early, which is harmless.
///
/// Two queues: `hot` holds the hot items and, ahead of each, the earlier items of its station;
/// `cold` the rest. A hot item takes its station's cold items out of `cold` (left as holes,
/// skipped when popped), so nothing else is moved: taking in a frame costs the same however deep
/// the queue is, and a hot one one scan of `cold`. Every hot item goes before every cold one, so
/// each station's items keep their order. A station's later items that are not hot stay cold:
/// were they to follow it into `hot`, a deep queue would keep every station that was ever hot
/// there (its next frame arriving before the last one is applied), and the hot queue would grow
/// into the whole queue, with alerts waiting behind it (seen at ×16 load).
#[derive(Debug)]
pub struct HotQueue<S, T> {
    hot: VecDeque<T>,
    cold: VecDeque<Option<(S, T)>>,
    /// Items in `cold` (holes not counted).
    cold_len: usize,
}

impl<S, T> Default for HotQueue<S, T> {
    fn default() -> Self {
        Self {
            hot: VecDeque::new(),
            cold: VecDeque::new(),
            cold_len: 0,
        }
    }
}

impl<S: Copy + Eq + Hash, T> HotQueue<S, T> {
    /// Appends `arrived` in order; a hot item goes to the hot queue, taking its station's earlier
    /// cold items with it. Returns how many items went to the hot queue.
    pub fn admit(
        &mut self,
        arrived: impl IntoIterator<Item = T>,
        station: impl Fn(&T) -> S,
        hot: impl Fn(&T) -> bool,
    ) -> usize {
        let mut moved = 0;
        for item in arrived {
            let s = station(&item);
            if !hot(&item) {
                self.cold.push_back(Some((s, item)));
                self.cold_len += 1;
                continue;
            }
            moved += self.take_cold_of(s);
            self.hot.push_back(item);
            moved += 1;
        }
        moved
    }

    /// Moves station `s`'s cold items to the hot queue, in order; returns how many.
    fn take_cold_of(&mut self, s: S) -> usize {
        let before = self.hot.len();
        for slot in self.cold.iter_mut() {
            if slot.as_ref().is_some_and(|(of, _)| *of == s) {
                self.hot.extend(slot.take().map(|(_, item)| item));
            }
        }
        let n = self.hot.len() - before;
        self.cold_len -= n;
        n
    }

    /// The next item to apply.
    pub fn pop(&mut self) -> Option<T> {
        self.pop_hot().or_else(|| {
            while let Some(slot) = self.cold.pop_front() {
                if let Some((_, item)) = slot {
                    self.cold_len -= 1;
                    return Some(item);
                }
            }
            None
        })
    }

    /// The next item, if it is hot or a hot item's station's (while the rest wait: see the
    /// ingest's held batch).
    pub fn pop_hot(&mut self) -> Option<T> {
        self.hot.pop_front()
    }

    /// Whether the next item is a hot station's.
    pub fn hot_next(&self) -> bool {
        !self.hot.is_empty()
    }

    /// Takes the first item of the hot queue that `wanted` picks, ahead of the rest (a frame
    /// that may alert, ahead of its station's earlier frames, while the batch waits for a slow
    /// store). The hot queue is short: hot items and their stations' earlier ones.
    pub fn take_first_hot(&mut self, wanted: impl Fn(&T) -> bool) -> Option<T> {
        let at = self.hot.iter().position(wanted)?;
        self.hot.remove(at)
    }

    /// Whether the hot queue holds an item `wanted` picks.
    pub fn any_hot(&self, wanted: impl Fn(&T) -> bool) -> bool {
        self.hot.iter().any(wanted)
    }

    pub fn len(&self) -> usize {
        self.hot.len() + self.cold_len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ingest's queue: a lane for live frames and one for stations' backlogs (see
/// [`crate::admission`]), each with hot stations first. Hot frames of either lane go first, then
/// live frames, then the backlog: a backlog drains only with what live traffic leaves over.
#[derive(Debug)]
pub struct Lanes<S, T> {
    live: HotQueue<S, T>,
    backlog: HotQueue<S, T>,
}

impl<S, T> Default for Lanes<S, T> {
    fn default() -> Self {
        Self {
            live: HotQueue::default(),
            backlog: HotQueue::default(),
        }
    }
}

impl<S: Copy + Eq + Hash, T> Lanes<S, T> {
    /// Appends `live` and `backlog` to their lanes (see [`HotQueue::admit`]); returns how many
    /// items went to a lane's hot queue.
    pub fn admit(
        &mut self,
        live: Vec<T>,
        backlog: Vec<T>,
        station: impl Fn(&T) -> S,
        hot: impl Fn(&T) -> bool,
    ) -> usize {
        let mut moved = 0;
        if !live.is_empty() {
            moved += self.live.admit(live, &station, &hot);
        }
        if !backlog.is_empty() {
            moved += self.backlog.admit(backlog, &station, &hot);
        }
        moved
    }

    /// The next item to apply.
    pub fn pop(&mut self) -> Option<T> {
        if self.live.hot_next() || (!self.backlog.hot_next() && !self.live.is_empty()) {
            self.live.pop()
        } else {
            self.backlog.pop()
        }
    }

    /// The next item, if it is a hot station's.
    pub fn pop_hot(&mut self) -> Option<T> {
        self.live.pop_hot().or_else(|| self.backlog.pop_hot())
    }

    /// Whether the next item is a hot station's.
    pub fn hot_next(&self) -> bool {
        self.live.hot_next() || self.backlog.hot_next()
    }

    /// The first hot-queue item `wanted` picks, live lane first (see
    /// [`HotQueue::take_first_hot`]).
    pub fn take_first_hot(&mut self, wanted: impl Fn(&T) -> bool) -> Option<T> {
        self.live
            .take_first_hot(&wanted)
            .or_else(|| self.backlog.take_first_hot(&wanted))
    }

    /// Whether either lane's hot queue holds an item `wanted` picks.
    pub fn any_hot(&self, wanted: impl Fn(&T) -> bool) -> bool {
        self.live.any_hot(&wanted) || self.backlog.any_hot(&wanted)
    }

    pub fn len(&self) -> usize {
        self.live.len() + self.backlog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.backlog.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_hot_station_moves_to_the_front_with_all_its_frames_in_order() {
        let mut queue = HotQueue::default();
        // (station, seq, carries a stolen tag)
        let batch = [
            (1, 1, false),
            (2, 1, false),
            (3, 1, false),
            (2, 2, true),
            (3, 2, false),
        ];
        assert_eq!(queue.admit(batch, |f| f.0, |f| f.2), 2);
        let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(
            out,
            [
                (2, 1, false),
                (2, 2, true),
                (1, 1, false),
                (3, 1, false),
                (3, 2, false)
            ]
        );
    }

    #[test]
    fn a_batch_without_hot_frames_is_left_alone() {
        let mut queue = HotQueue::default();
        let batch = [(3, 1, false), (1, 1, false), (2, 1, false)];
        assert_eq!(queue.admit(batch, |f| f.0, |f| f.2), 0);
        let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(out, batch);
    }

    #[test]
    fn only_hot_stations_frames_pop_as_hot() {
        let mut queue = HotQueue::default();
        // (station, seq, hot)
        queue.admit([(1, 1, false), (2, 1, false)], |f| f.0, |f| f.2);
        assert!(!queue.hot_next());
        assert_eq!(queue.pop_hot(), None, "nothing hot: the rest waits");
        queue.admit([(3, 1, false), (2, 2, true)], |f| f.0, |f| f.2);
        assert_eq!(
            queue.pop_hot(),
            Some((2, 1, false)),
            "station 2's frames, in order"
        );
        assert_eq!(queue.pop_hot(), Some((2, 2, true)));
        assert_eq!(queue.pop_hot(), None);
        assert_eq!(queue.len(), 2, "the others are still there");
        assert_eq!(queue.pop(), Some((1, 1, false)));
    }

    #[test]
    fn a_hot_frame_arriving_later_goes_before_the_rest_of_the_queue() {
        let mut queue = HotQueue::default();
        // (station, seq, hot)
        let first = [(1, 1, false), (2, 1, false), (3, 1, false)];
        assert_eq!(queue.admit(first, |f| f.0, |f| f.2), 0);
        assert_eq!(queue.pop(), Some((1, 1, false)));
        let moved = queue.admit([(4, 1, false), (3, 2, true)], |f| f.0, |f| f.2);
        assert_eq!(moved, 2, "station 3's earlier frame goes with it");
        let rest: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(
            rest,
            [(3, 1, false), (3, 2, true), (2, 1, false), (4, 1, false)]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn a_hot_stations_later_frames_wait_with_the_rest() {
        let mut queue = HotQueue::default();
        // (station, seq, hot)
        queue.admit([(1, 1, true)], |f| f.0, |f| f.2);
        // Station 1 is in the hot queue; its next frame is not hot and takes its turn.
        assert_eq!(
            queue.admit([(2, 1, false), (1, 2, false)], |f| f.0, |f| f.2),
            0
        );
        let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(out, [(1, 1, true), (2, 1, false), (1, 2, false)]);
    }

    #[test]
    fn a_frame_that_may_alert_can_be_taken_ahead_of_its_stations_earlier_ones() {
        let mut lanes = Lanes::default();
        // (station, seq, hot)
        lanes.admit(
            vec![(1, 1, false), (2, 1, false)],
            Vec::new(),
            |f| f.0,
            |f| f.2,
        );
        lanes.admit(vec![(1, 2, true)], vec![(3, 1, true)], |f| f.0, |f| f.2);
        assert!(lanes.any_hot(|f| f.2));
        assert_eq!(lanes.take_first_hot(|f| f.2), Some((1, 2, true)));
        assert_eq!(lanes.take_first_hot(|f| f.2), Some((3, 1, true)));
        assert_eq!(lanes.take_first_hot(|f| f.2), None);
        assert!(!lanes.any_hot(|f| f.2));
        let rest: Vec<_> = std::iter::from_fn(|| lanes.pop()).collect();
        assert_eq!(rest, [(1, 1, false), (2, 1, false)], "nothing lost");
    }

    #[test]
    fn hot_frames_of_either_lane_go_first_then_live_then_backlog() {
        let mut lanes = Lanes::default();
        // (station, seq, hot)
        let live = vec![(1, 10, false), (2, 10, false)];
        let backlog = vec![(3, 1, false), (4, 1, true), (3, 2, false)];
        assert_eq!(lanes.admit(live, backlog, |f| f.0, |f| f.2), 1);
        assert!(lanes.hot_next());
        assert_eq!(
            lanes.pop_hot(),
            Some((4, 1, true)),
            "a hot backlog frame first"
        );
        assert_eq!(lanes.pop_hot(), None);
        let rest: Vec<_> = std::iter::from_fn(|| lanes.pop()).collect();
        assert_eq!(
            rest,
            [(1, 10, false), (2, 10, false), (3, 1, false), (3, 2, false)],
            "live before backlog, each in arrival order"
        );
        lanes.admit(vec![(1, 11, false)], vec![(3, 3, false)], |f| f.0, |f| f.2);
        lanes.admit(vec![(2, 11, true)], Vec::new(), |f| f.0, |f| f.2);
        assert_eq!(lanes.len(), 3);
        assert_eq!(lanes.pop(), Some((2, 11, true)));
        assert_eq!(lanes.pop(), Some((1, 11, false)));
        assert_eq!(lanes.pop(), Some((3, 3, false)));
        assert!(lanes.is_empty());
    }

    proptest! {
        /// Items admitted in several lots, with pops in between: nothing is lost, each station's
        /// items keep their order, and a hot item is next in line (or behind other hot ones).
        #[test]
        fn the_queue_keeps_each_stations_order_and_loses_nothing(
            lots in proptest::collection::vec(
                (proptest::collection::vec((0u8..6, proptest::bool::weighted(0.1)), 0..20), 0usize..20),
                1..8,
            )
        ) {
            let mut queue = HotQueue::default();
            let mut popped = Vec::new();
            let mut seq = 0;
            for (lot, pops) in lots {
                let lot: Vec<(u8, usize, bool)> = lot
                    .into_iter()
                    .map(|(s, h)| { seq += 1; (s, seq, h) })
                    .collect();
                let hot_in_lot: Vec<u8> = lot.iter().filter(|f| f.2).map(|f| f.0).collect();
                queue.admit(lot, |f| f.0, |f| f.2);
                if !hot_in_lot.is_empty() {
                    prop_assert!(queue.hot_next(), "a hot item goes to the hot queue");
                }
                for _ in 0..pops {
                    popped.extend(queue.pop());
                }
            }
            popped.extend(std::iter::from_fn(|| queue.pop()));
            prop_assert_eq!(popped.len(), seq);
            prop_assert!(queue.is_empty());
            for station in 0..6 {
                let seqs: Vec<usize> =
                    popped.iter().filter(|f| f.0 == station).map(|f| f.1).collect();
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
