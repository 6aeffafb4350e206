//! # Lanes: the order the ingest applies the frames it has queued.
//!
//! Two lanes, each in arrival order: the stations' live frames, then their backlogs (frames
//! resent from flash after an outage, see [`crate::admission`]). A backlog drains with what live
//! traffic leaves over. Each station's frames keep their order within a lane (its visits and
//! sequence numbers are built in order); between stations the order is only the network's anyway.
//!
//! No lane for alerts: a frame's stolen, armed, panic and tamper sightings are alerted as it is
//! taken in (`Tracker::alert_ahead`), so the frame itself has nothing to hurry for.

use std::collections::VecDeque;

/// Frames queued: live ones first, then the backlog.
#[derive(Debug)]
pub struct Lanes<T> {
    live: VecDeque<T>,
    backlog: VecDeque<T>,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Self {
            live: VecDeque::new(),
            backlog: VecDeque::new(),
        }
    }
}

impl<T> Lanes<T> {
    pub fn push_live(&mut self, item: T) {
        self.live.push_back(item);
    }

    pub fn push_backlog(&mut self, item: T) {
        self.backlog.push_back(item);
    }

    /// The next item to apply.
    pub fn pop(&mut self) -> Option<T> {
        self.live.pop_front().or_else(|| self.backlog.pop_front())
    }

    /// Every item, live ones first (at shutdown).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.live.drain(..).chain(self.backlog.drain(..))
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
    fn live_frames_go_before_the_backlog_each_in_arrival_order() {
        let mut lanes = Lanes::default();
        lanes.push_backlog((3, 1));
        lanes.push_live((1, 10));
        lanes.push_backlog((3, 2));
        lanes.push_live((2, 10));
        assert_eq!(lanes.len(), 4);
        assert_eq!(lanes.pop(), Some((1, 10)));
        assert_eq!(lanes.pop(), Some((2, 10)));
        lanes.push_live((1, 11));
        assert_eq!(lanes.pop(), Some((1, 11)), "a live frame that came later");
        assert_eq!(lanes.pop(), Some((3, 1)));
        assert_eq!(lanes.pop(), Some((3, 2)));
        assert!(lanes.is_empty());
    }

    proptest! {
        /// Items pushed in either lane with pops in between: nothing is lost, and each lane's
        /// items come out in the order they went in.
        #[test]
        fn nothing_is_lost_and_each_lane_keeps_its_order(
            ops in proptest::collection::vec(0u8..3, 0..200)
        ) {
            let mut lanes = Lanes::default();
            let mut popped = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                match op {
                    0 => lanes.push_live((true, n)),
                    1 => lanes.push_backlog((false, n)),
                    _ => popped.extend(lanes.pop()),
                }
            }
            popped.extend(lanes.drain());
            prop_assert_eq!(popped.len(), ops.iter().filter(|&&o| o < 2).count());
            for lane in [true, false] {
                let order: Vec<usize> = popped.iter().filter(|i| i.0 == lane).map(|i| i.1).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
