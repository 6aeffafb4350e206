//! # Calendar queue: entries filed by time, taken in slices once their time has passed.
//!
//! The tracker's housekeeping (closing visits not heard for a gap, forgetting old visits, stays
//! and fixes) used to walk every open visit or every tag: at millions of tags one walk held the
//! ingest, and every alert behind it, for 100 ms or more. Each entry is filed instead under the
//! step of the time it may next be due (a visit's last detection, say), and a pass looks only at
//! the steps before its cut-off, a budget at a time. An entry found not due (heard since it was
//! filed) is filed again at its new time, at or after the cut-off's step, so a pass never sees it
//! twice.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Calendar<T> {
    step_ms: i64,
    slots: BTreeMap<i64, Vec<T>>,
}

impl<T> Calendar<T> {
    /// Files entries by `step_ms` of time.
    pub fn new(step_ms: i64) -> Self {
        Self {
            step_ms: step_ms.max(1),
            slots: BTreeMap::new(),
        }
    }

    fn step_of(&self, t_ms: i64) -> i64 {
        t_ms.div_euclid(self.step_ms)
    }

    /// Files `entry` under the step of `t_ms`.
    pub fn file(&mut self, t_ms: i64, entry: T) {
        self.slots
            .entry(self.step_of(t_ms))
            .or_default()
            .push(entry);
    }

    /// Files `entry` again after a pass with cut-off `cut_ms` found it not due: under the step
    /// of `t_ms`, but none before the cut-off's (this pass does not see it again).
    pub fn refile(&mut self, t_ms: i64, cut_ms: i64, entry: T) {
        self.file(t_ms.max(cut_ms), entry);
    }

    /// Takes up to `budget` entries filed in steps wholly before `cut_ms`'s step, oldest first.
    pub fn take_due(&mut self, cut_ms: i64, budget: usize) -> Vec<T> {
        let cut = self.step_of(cut_ms);
        let mut taken = Vec::new();
        while taken.len() < budget {
            let Some(mut slot) = self.slots.first_entry() else {
                break;
            };
            if *slot.key() >= cut {
                break;
            }
            let left = budget - taken.len();
            if slot.get().len() <= left {
                taken.append(&mut slot.remove());
            } else {
                let entries = slot.get_mut();
                taken.extend(entries.drain(entries.len() - left..));
            }
        }
        taken
    }

    /// Every entry filed, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &T> {
        self.slots.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_steps_wholly_before_the_cut_off_are_due() {
        let mut calendar = Calendar::new(1_000);
        calendar.file(500, 'a');
        calendar.file(1_500, 'b');
        calendar.file(2_100, 'c');
        assert_eq!(calendar.take_due(1_999, 10), vec!['a']);
        assert_eq!(calendar.take_due(2_000, 10), vec!['b']);
        calendar.refile(100, 2_000, 'a');
        assert!(
            calendar.take_due(2_999, 10).is_empty(),
            "refiled at the cut-off's step"
        );
        let mut last: Vec<char> = calendar.take_due(3_000, 10);
        last.sort_unstable();
        assert_eq!(last, vec!['a', 'c']);
    }

    proptest! {
        /// Taken in slices of any budget, every due entry comes out once, and no other.
        #[test]
        fn slices_take_every_due_entry_once(
            times in proptest::collection::vec(0i64..10_000, 0..200),
            cut in 0i64..12_000,
            budget in 1usize..30,
        ) {
            let mut calendar = Calendar::new(1_000);
            for (i, &t) in times.iter().enumerate() {
                calendar.file(t, i);
            }
            let mut taken = Vec::new();
            loop {
                let slice = calendar.take_due(cut, budget);
                prop_assert!(slice.len() <= budget);
                if slice.is_empty() {
                    break;
                }
                taken.extend(slice);
            }
            taken.sort_unstable();
            let due: Vec<usize> = (0..times.len())
                .filter(|&i| times[i].div_euclid(1_000) < cut.div_euclid(1_000))
                .collect();
            prop_assert_eq!(calendar.entries().count(), times.len() - due.len());
            prop_assert_eq!(taken, due);
        }
    }
}
