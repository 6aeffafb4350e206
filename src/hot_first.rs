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

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// Frames taken in and not yet applied, hot stations' first. Each item is marked hot or not once,
/// when it arrives: an item marked hot that no longer is only goes early, which is harmless.
#[derive(Debug)]
pub struct HotQueue<T> {
    items: VecDeque<(T, bool)>,
    /// How many items at the front are hot stations' (moved there by the last reordering).
    hot_front: usize,
}

impl<T> Default for HotQueue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            hot_front: 0,
        }
    }
}

impl<T> HotQueue<T> {
    /// Appends `arrived` in order; if any of them is hot, every item of a station with a hot item
    /// in the queue moves before all others (see [`hot_stations_first`]). Returns how many items
    /// moved to the front.
    pub fn admit<S: Eq + Hash>(
        &mut self,
        arrived: impl IntoIterator<Item = T>,
        station: impl Fn(&T) -> S,
        hot: impl Fn(&T) -> bool,
    ) -> usize {
        let before = self.items.len();
        self.items.extend(arrived.into_iter().map(|item| {
            let h = hot(&item);
            (item, h)
        }));
        if !self.items.range(before..).any(|(_, h)| *h) {
            return 0;
        }
        let mut all: Vec<(T, bool)> = self.items.drain(..).collect();
        let moved = hot_stations_first(&mut all, |(item, _)| station(item), |(_, h)| *h);
        self.items.extend(all);
        self.hot_front = moved;
        moved
    }

    /// The next item to apply.
    pub fn pop(&mut self) -> Option<T> {
        self.hot_front = self.hot_front.saturating_sub(1);
        self.items.pop_front().map(|(item, _)| item)
    }

    /// The next item, if it is a hot station's (while the rest wait: see the ingest's held batch).
    pub fn pop_hot(&mut self) -> Option<T> {
        if self.hot_front == 0 {
            return None;
        }
        self.pop()
    }

    /// Whether the next item is a hot station's.
    pub fn hot_next(&self) -> bool {
        self.hot_front > 0
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The ingest's queue: a lane for live frames and one for stations' backlogs (see
/// [`crate::admission`]), each with hot stations first. Hot frames of either lane go first, then
/// live frames, then the backlog: a backlog drains only with what live traffic leaves over.
#[derive(Debug)]
pub struct Lanes<T> {
    live: HotQueue<T>,
    backlog: HotQueue<T>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Self {
            live: HotQueue::default(),
            backlog: HotQueue::default(),
        }
    }
}

impl<T> Lanes<T> {
    /// Appends `live` and `backlog` to their lanes (see [`HotQueue::admit`]); returns how many
    /// items moved to a lane's front.
    pub fn admit<S: Eq + Hash>(
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

    pub fn len(&self) -> usize {
        self.live.len() + self.backlog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.backlog.is_empty()
    }
}

/// Reorders `batch` in place: every item of a station that has at least one `hot` item in the
/// batch comes first, then all others; within each part items keep their order. Returns how many
/// items went to the front.
pub fn hot_stations_first<T, S: Eq + Hash>(
    batch: &mut Vec<T>,
    station: impl Fn(&T) -> S,
    hot: impl Fn(&T) -> bool,
) -> usize {
    let hot_stations: HashSet<S> = batch.iter().filter(|i| hot(i)).map(&station).collect();
    if hot_stations.is_empty() {
        return 0;
    }
    let (front, back): (Vec<T>, Vec<T>) = batch
        .drain(..)
        .partition(|i| hot_stations.contains(&station(i)));
    let moved = front.len();
    batch.extend(front);
    batch.extend(back);
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_hot_station_moves_to_the_front_with_all_its_frames_in_order() {
        // (station, seq, carries a stolen tag)
        let mut batch = vec![
            (1, 1, false),
            (2, 1, false),
            (3, 1, false),
            (2, 2, true),
            (3, 2, false),
        ];
        let moved = hot_stations_first(&mut batch, |f| f.0, |f| f.2);
        assert_eq!(moved, 2);
        assert_eq!(
            batch,
            vec![
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
        let mut batch = vec![(3, 1, false), (1, 1, false), (2, 1, false)];
        let before = batch.clone();
        assert_eq!(hot_stations_first(&mut batch, |f| f.0, |f| f.2), 0);
        assert_eq!(batch, before);
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
        /// Items admitted in several lots, with pops in between, come out as each lot's hot
        /// stations first, never losing an item and never reordering a station's items.
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
                let hot_in_lot = lot.iter().any(|f| f.2);
                queue.admit(lot, |f| f.0, |f| f.2);
                if hot_in_lot {
                    // The next item out is a hot station's.
                    let next = queue.items.front().map(|(f, _)| f.0);
                    let hot: HashSet<u8> =
                        queue.items.iter().filter(|(_, h)| *h).map(|(f, _)| f.0).collect();
                    prop_assert!(next.is_some_and(|s| hot.contains(&s)));
                }
                for _ in 0..pops {
                    popped.extend(queue.pop());
                }
            }
            popped.extend(std::iter::from_fn(|| queue.pop()));
            prop_assert_eq!(popped.len(), seq);
            for station in 0..6 {
                let seqs: Vec<usize> =
                    popped.iter().filter(|f| f.0 == station).map(|f| f.1).collect();
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    proptest! {
        /// Nothing is lost or added, every hot station's frames come before any other
        /// station's, and each station's frames keep their order.
        #[test]
        fn reorders_without_losing_or_reordering_a_station(
            batch in proptest::collection::vec((0u8..8, any::<bool>()), 0..64)
        ) {
            // (station, seq in the batch, hot)
            let mut batch: Vec<(u8, usize, bool)> =
                batch.into_iter().enumerate().map(|(i, (s, h))| (s, i, h)).collect();
            let original = batch.clone();
            let moved = hot_stations_first(&mut batch, |f| f.0, |f| f.2);

            let mut sorted = batch.clone();
            sorted.sort_by_key(|f| f.1);
            prop_assert_eq!(&sorted, &original);

            let hot: HashSet<u8> = original.iter().filter(|f| f.2).map(|f| f.0).collect();
            prop_assert_eq!(moved, original.iter().filter(|f| hot.contains(&f.0)).count());
            prop_assert!(batch[..moved].iter().all(|f| hot.contains(&f.0)));
            prop_assert!(batch[moved..].iter().all(|f| !hot.contains(&f.0)));
            for station in 0..8 {
                let seqs: Vec<usize> =
                    batch.iter().filter(|f| f.0 == station).map(|f| f.1).collect();
                prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
