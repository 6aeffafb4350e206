//! # Hot frames first: the order the ingest applies a batch of frames in.
//!
//! A thousand stations send their one-second frames at the same moment, and applying a whole
//! burst of them takes the tracker tens of milliseconds (hundreds at a million detections a
//! second). A frame that may raise an alert (a stolen tag heard outside a visit that has already
//! alerted, see `Tracker::may_alert`) should not wait behind the rest of the city, so the ingest
//! reorders each batch it takes from the gateway: stations with such a frame in the batch go
//! first. Each station's own frames
//! keep their order (its visits and sequence numbers are built in order); the order between
//! stations is only the network's anyway.

use std::collections::HashSet;
use std::hash::Hash;

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
