//! # Visits: detections of one tag at one station merged over time.
//!
//! A detection joins the visit of its (tag, station) whose span, widened by the gap tolerance on
//! both sides, contains it; otherwise it opens a new visit. Late or reordered detections land in
//! their place: a detection that bridges two visits merges them (the later one is deleted), so a
//! visit is never split by the order frames arrive in.

// FxHash: keys are small integers that come only from authenticated stations,
// and the maps are hit several times per detection; SipHash's DoS resistance buys nothing here.
use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;
use tagwatch_model::{Detection, StationId, TagId, Visit, VisitId};

/// What a flush must write: every visit changed since the last flush, and the ids merged away.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VisitChanges {
    /// New visits, and visits whose start moved (late data): every column may have changed.
    pub upserts: Vec<Visit>,
    /// Visits already flushed that only grew at the end: their start is unchanged, which lets the
    /// store leave the indexes on it alone.
    pub extended: Vec<Visit>,
    pub deletes: Vec<VisitId>,
}

impl VisitChanges {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.extended.is_empty() && self.deletes.is_empty()
    }
}

/// How a visit changed since the last flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Grew at the end only.
    Extended,
    /// New, or its start moved.
    Full,
}

/// A visit in memory, and how it changed since the last flush.
#[derive(Debug, Clone, Copy)]
struct Slot {
    visit: Visit,
    change: Option<Change>,
}

/// The visits of one (tag, station) in time order. Almost always one within the hot window, so
/// it is kept inline in the map: a detection then touches one cache line, not two.
type Visits = SmallVec<[Slot; 1]>;

/// The recent visits of every (tag, station), in time order.
#[derive(Debug)]
pub struct VisitBook {
    gap_ms: i64,
    by_pair: HashMap<(TagId, StationId), Visits>,
    /// Pairs with a changed visit, in order of first change (a pair may be listed twice; the
    /// flush takes each changed visit once). A list, not a set: appending costs no lookup.
    dirty: Vec<(TagId, StationId)>,
    deleted: Vec<VisitId>,
    /// Visits held, counted as they come and go (a walk of the map for the count cost 3 % of
    /// the server's CPU at 2.4 M tags, asked at every flush).
    len: usize,
    next_id: i64,
    /// The cut-off of the last sweep of old visits. Sweeping walks every pair, so it runs when
    /// the cut-off has moved by a minute, not on every flush.
    pruned_up_to: i64,
}

/// How [`VisitBook::take_changes`] finds the changed visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Looks up each pair on the dirty list.
    Dirty,
    /// Walks the whole map.
    Everything,
}

/// How far the hot window's cut-off moves between sweeps of old visits.
const PRUNE_STEP_MS: i64 = 60_000;

impl VisitBook {
    /// `gap_ms`: detections of a tag at a station less than this apart belong to one visit.
    pub fn new(gap_ms: i64, next_id: i64) -> Self {
        Self {
            gap_ms,
            by_pair: HashMap::default(),
            dirty: Vec::new(),
            deleted: Vec::new(),
            len: 0,
            next_id,
            pruned_up_to: i64::MIN,
        }
    }

    /// Moves the id sequence up to the server clock, so ids record when visits were created
    /// (see [`tagwatch_model::visit::VISIT_ID_TIME_SHIFT`]).
    pub fn set_clock(&mut self, now_ms: i64) {
        self.next_id = self.next_id.max(VisitId::floor_at(now_ms));
    }

    /// The id the next new visit gets.
    pub fn next_id(&self) -> i64 {
        self.next_id
    }

    /// Continues the ids from `next` (a journaled frame applied again after a restart gets the
    /// visit ids it got the first time).
    pub fn resume_ids(&mut self, next: i64) {
        self.next_id = next;
    }

    /// Puts back a visit loaded from the store (after a restart, or for late data), so later
    /// detections extend it. A visit already in memory is newer than the store's copy: kept.
    pub fn restore(&mut self, visit: Visit) {
        self.next_id = self.next_id.max(visit.id.0 + 1);
        let list = self.by_pair.entry((visit.tag, visit.station)).or_default();
        if list.iter().any(|s| s.visit.id == visit.id) {
            return;
        }
        let at = list.partition_point(|s| s.visit.first_seen_ms < visit.first_seen_ms);
        self.len += 1;
        list.insert(
            at,
            Slot {
                visit,
                change: None,
            },
        );
    }

    /// Whether a detection at `t` may belong with visits already dropped from memory: they
    /// must then be restored from the store before it is added.
    pub fn needs_history(&self, t: i64) -> bool {
        t.saturating_sub(self.gap_ms) < self.pruned_up_to
    }

    /// The detection gap: a detection at `t` joins visits overlapping `t ± gap`.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// The visit of `tag` at `station` that a detection at `t` belongs to, if any.
    pub fn visit_at(&self, tag: TagId, station: StationId, t: i64) -> Option<VisitId> {
        let gap = self.gap_ms;
        self.by_pair
            .get(&(tag, station))?
            .iter()
            .map(|s| &s.visit)
            .find(|v| v.first_seen_ms - gap <= t && t <= v.last_seen_ms + gap)
            .map(|v| v.id)
    }

    /// The visit `id` of `tag` at `station`, if still in memory.
    pub fn get(&self, tag: TagId, station: StationId, id: VisitId) -> Option<Visit> {
        self.by_pair
            .get(&(tag, station))?
            .iter()
            .find(|s| s.visit.id == id)
            .map(|s| s.visit)
    }

    /// Reads the visits of `tag` at `station`, so that an [`add`](Self::add) soon after finds
    /// them in cache (see `Tracker::warm`).
    pub fn warm(&self, tag: TagId, station: StationId) {
        if let Some(list) = self.by_pair.get(&(tag, station)) {
            std::hint::black_box(list.first().map(|s| s.visit.last_seen_ms));
        }
    }

    /// Adds one detection and returns the visit it now belongs to, and whether that visit is new.
    pub fn add(&mut self, d: &Detection) -> (Visit, bool) {
        let gap = self.gap_ms;
        let key = (d.tag, d.station);
        let list = self.by_pair.entry(key).or_default();
        let t = d.seen_at_ms;
        let near = |s: &Slot| s.visit.first_seen_ms - gap <= t && t <= s.visit.last_seen_ms + gap;
        let Some(i) = list.iter().position(near) else {
            let visit = Visit {
                id: VisitId(self.next_id),
                tag: d.tag,
                station: d.station,
                first_seen_ms: t,
                last_seen_ms: t,
                best_rssi: d.rssi,
                reads: u32::from(d.reads),
            };
            self.next_id += 1;
            let at = list.partition_point(|s| s.visit.first_seen_ms < t);
            let listed = list.iter().any(|s| s.change.is_some());
            self.len += 1;
            list.insert(
                at,
                Slot {
                    visit,
                    change: Some(Change::Full),
                },
            );
            if !listed {
                self.dirty.push(key);
            }
            return (visit, true);
        };
        let listed = list.iter().any(|s| s.change.is_some());
        let v = &mut list[i].visit;
        let mut change = if t < v.first_seen_ms {
            Change::Full
        } else {
            Change::Extended
        };
        v.first_seen_ms = v.first_seen_ms.min(t);
        v.last_seen_ms = v.last_seen_ms.max(t);
        v.best_rssi = v.best_rssi.max(d.rssi);
        v.reads = v.reads.saturating_add(u32::from(d.reads));
        // The detection may have closed the gap to the next visit: merge it into this one.
        if let Some(next) = list.get(i + 1).map(|s| s.visit) {
            if next.first_seen_ms - gap <= list[i].visit.last_seen_ms {
                let v = &mut list[i].visit;
                v.last_seen_ms = v.last_seen_ms.max(next.last_seen_ms);
                v.best_rssi = v.best_rssi.max(next.best_rssi);
                v.reads = v.reads.saturating_add(next.reads);
                list.remove(i + 1);
                self.len -= 1;
                self.deleted.push(next.id);
                change = Change::Full;
            }
        }
        // Only the visit after `i` can newly overlap: `i` was the first one near `t`, so the one
        // before it ends more than a gap before `t`, and extending `i` backwards to `t` keeps that.
        let slot = &mut list[i];
        slot.change = match (slot.change, change) {
            (Some(Change::Full), _) | (_, Change::Full) => Some(Change::Full),
            _ => Some(Change::Extended),
        };
        if !listed {
            self.dirty.push(key);
        }
        (slot.visit, false)
    }

    /// Takes what changed since the last call, in no particular order. With `may_prune`, first forgets visits that ended
    /// before `keep_after_ms` and did not change since the last call: the caller says the earlier
    /// calls' changes are committed, so the store has them (a visit changed since is kept until
    /// a later call, or a late frame reading the store for it might miss it).
    pub fn take_changes(&mut self, keep_after_ms: i64, may_prune: bool) -> VisitChanges {
        // When most pairs changed (a checkpoint of a busy city, where every parked tag's visit
        // grew), one walk through the map in memory order beats a hash lookup per changed pair:
        // at 2.4 M tags the lookups paused the ingest for 0.4 s.
        let walk = if self.dirty.len() >= self.by_pair.len() / 2 {
            Walk::Everything
        } else {
            Walk::Dirty
        };
        self.take_changes_by(walk, keep_after_ms, may_prune)
    }

    fn take_changes_by(&mut self, walk: Walk, keep_after_ms: i64, may_prune: bool) -> VisitChanges {
        let prune = may_prune && keep_after_ms.saturating_sub(self.pruned_up_to) >= PRUNE_STEP_MS;
        if prune {
            self.pruned_up_to = keep_after_ms;
        }
        let mut upserts = Vec::new();
        let mut extended = Vec::with_capacity(self.dirty.len());
        // Takes a slot's change; whether it changed.
        let mut take = |slot: &mut Slot| {
            let change = slot.change.take();
            match change {
                Some(Change::Full) => upserts.push(slot.visit),
                Some(Change::Extended) => extended.push(slot.visit),
                None => {}
            }
            change.is_some()
        };
        // Pruning keeps every visit changed since the last take (its change is not stored yet).
        let mut pruned = 0;
        let mut keep = |changed: bool, slot: &Slot| {
            let kept = changed || slot.visit.last_seen_ms >= keep_after_ms;
            pruned += usize::from(!kept);
            kept
        };
        match walk {
            Walk::Dirty => {
                if prune {
                    self.by_pair.retain(|_, list| {
                        list.retain(|slot| keep(slot.change.is_some(), slot));
                        !list.is_empty()
                    });
                }
                for key in self.dirty.drain(..) {
                    if let Some(list) = self.by_pair.get_mut(&key) {
                        list.iter_mut().for_each(|slot| {
                            take(slot);
                        });
                    }
                }
            }
            Walk::Everything => {
                self.dirty.clear();
                self.by_pair.retain(|_, list| {
                    list.retain(|slot| {
                        let changed = take(slot);
                        !prune || keep(changed, slot)
                    });
                    !list.is_empty()
                });
            }
        }
        self.len -= pruned;
        // Unsorted: the store's writer sorts them, off the ingest path.
        VisitChanges {
            upserts,
            extended,
            deletes: std::mem::take(&mut self.deleted),
        }
    }

    /// Visits held in memory.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.by_pair.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(t: i64, reads: u8) -> Detection {
        Detection {
            tag: TagId(9),
            station: StationId(1),
            seen_at_ms: t,
            rssi: -70,
            reads,
            tag_flags: 0,
        }
    }

    fn spans(book: &mut VisitBook) -> Vec<(i64, i64, u32)> {
        let mut all: Vec<_> = book
            .by_pair
            .values()
            .flatten()
            .map(|s| (s.visit.first_seen_ms, s.visit.last_seen_ms, s.visit.reads))
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn a_gap_longer_than_the_tolerance_starts_a_new_visit() {
        let mut book = VisitBook::new(10_000, 1);
        assert!(book.add(&det(0, 1)).1);
        assert!(!book.add(&det(9_000, 1)).1);
        assert!(book.add(&det(25_000, 1)).1);
        assert_eq!(spans(&mut book), vec![(0, 9_000, 2), (25_000, 25_000, 1)]);
    }

    #[test]
    fn a_late_detection_bridging_two_visits_merges_them() {
        let mut book = VisitBook::new(10_000, 1);
        book.add(&det(0, 1));
        book.add(&det(18_000, 2));
        let before = book.take_changes(i64::MIN, true);
        assert_eq!(before.upserts.len(), 2);
        book.add(&det(9_000, 1));
        assert_eq!(spans(&mut book), vec![(0, 18_000, 4)]);
        let changes = book.take_changes(i64::MIN, true);
        assert_eq!(changes.upserts.len(), 1, "a merge rewrites the whole visit");
        assert!(changes.extended.is_empty());
        assert_eq!(changes.upserts[0].id, before.upserts[0].id);
        assert_eq!(changes.deletes, vec![before.upserts[1].id]);
    }

    #[test]
    fn growth_at_the_end_is_an_extension_and_an_earlier_start_is_not() {
        let mut book = VisitBook::new(10_000, 1);
        book.add(&det(5_000, 1));
        let first = book.take_changes(i64::MIN, true);
        assert_eq!(
            (first.upserts.len(), first.extended.len()),
            (1, 0),
            "new: full row"
        );
        book.add(&det(6_000, 1));
        let grown = book.take_changes(i64::MIN, true);
        assert_eq!((grown.upserts.len(), grown.extended.len()), (0, 1));
        assert_eq!(grown.extended[0].last_seen_ms, 6_000);
        book.add(&det(7_000, 1));
        book.add(&det(4_000, 1));
        let moved = book.take_changes(i64::MIN, true);
        assert_eq!(
            (moved.upserts.len(), moved.extended.len()),
            (1, 0),
            "start moved: full"
        );
        assert_eq!(moved.upserts[0].first_seen_ms, 4_000);
    }

    #[test]
    fn history_is_needed_only_behind_the_sweep() {
        let mut book = VisitBook::new(10_000, 1);
        assert!(!book.needs_history(0), "nothing swept yet");
        book.add(&det(0, 1));
        book.take_changes(100_000, true);
        assert!(book.needs_history(105_000), "within a gap of the sweep");
        assert!(!book.needs_history(120_000));
        // A restored visit is not doubled, and a late detection merges into it.
        let stored = Visit {
            id: VisitId(1),
            tag: TagId(9),
            station: StationId(1),
            first_seen_ms: 0,
            last_seen_ms: 0,
            best_rssi: -70,
            reads: 1,
        };
        book.restore(stored);
        book.restore(stored);
        assert_eq!(book.len(), 1);
        assert!(!book.add(&det(5_000, 1)).1, "joins the restored visit");
    }

    #[test]
    fn old_visits_leave_memory_only_once_their_last_change_is_stored() {
        let mut book = VisitBook::new(10_000, 1);
        book.add(&det(0, 1));
        book.add(&det(200_000, 1));
        let changes = book.take_changes(50_000, true);
        assert_eq!(changes.upserts.len(), 2, "flushed before forgotten");
        assert!(changes.extended.is_empty());
        assert_eq!(book.len(), 2, "the old visit's change is not committed yet");
        // Unchanged since the last take, whose changes are now committed: it goes.
        assert!(book.take_changes(110_000, true).is_empty());
        assert_eq!(book.len(), 1);
    }

    #[test]
    fn nothing_leaves_memory_while_earlier_changes_may_be_uncommitted() {
        let mut book = VisitBook::new(10_000, 1);
        book.add(&det(0, 1));
        book.take_changes(i64::MIN, true);
        book.take_changes(100_000, false);
        assert_eq!(book.len(), 1);
        assert!(!book.needs_history(0), "no sweep has happened");
        book.take_changes(100_000, true);
        assert_eq!(book.len(), 0);
        assert!(book.needs_history(0));
    }

    /// The reference: sort all detection times and cut wherever consecutive ones are more than
    /// the gap apart.
    fn reference(mut times: Vec<(i64, u8)>, gap: i64) -> Vec<(i64, i64, u32)> {
        times.sort_unstable();
        let mut out: Vec<(i64, i64, u32)> = Vec::new();
        for (t, reads) in times {
            match out.last_mut() {
                Some(last) if t - last.1 <= gap => {
                    last.1 = t;
                    last.2 += u32::from(reads);
                }
                _ => out.push((t, t, u32::from(reads))),
            }
        }
        out
    }

    proptest! {
        /// Whatever order detections arrive in, the visits are those of the sorted sequence.
        #[test]
        fn arrival_order_does_not_change_the_visits(
            times in proptest::collection::vec((0i64..200_000, 1u8..5), 1..80)
        ) {
            let mut book = VisitBook::new(10_000, 1);
            for &(t, reads) in &times {
                book.add(&det(t, reads));
            }
            prop_assert_eq!(spans(&mut book), reference(times, 10_000));
        }

        /// Both ways of finding the changes take the same visits and keep the same ones in
        /// memory, round after round, pruning or not.
        #[test]
        fn walking_everything_takes_what_the_dirty_list_does(
            rounds in proptest::collection::vec(
                (proptest::collection::vec((0u32..6, 0u32..3, 0i64..400_000, 1u8..5), 0..40),
                 any::<bool>()),
                1..5)
        ) {
            let mut by_list = VisitBook::new(10_000, 1);
            let mut by_walk = VisitBook::new(10_000, 1);
            for (round, (detections, may_prune)) in rounds.into_iter().enumerate() {
                for &(tag, station, t, reads) in &detections {
                    let d = Detection { tag: TagId(tag), station: StationId(station), ..det(t, reads) };
                    by_list.add(&d);
                    by_walk.add(&d);
                }
                let keep_after = 100_000 * round as i64;
                let mut a = by_list.take_changes_by(Walk::Dirty, keep_after, may_prune);
                let mut b = by_walk.take_changes_by(Walk::Everything, keep_after, may_prune);
                for c in [&mut a, &mut b] {
                    c.upserts.sort_unstable_by_key(|v| v.id);
                    c.extended.sort_unstable_by_key(|v| v.id);
                    c.deletes.sort_unstable();
                }
                prop_assert_eq!(a, b);
                prop_assert_eq!(spans(&mut by_list), spans(&mut by_walk));
                prop_assert!(by_walk.dirty.is_empty());
                for book in [&by_list, &by_walk] {
                    prop_assert_eq!(book.len(), book.by_pair.values().map(SmallVec::len).sum::<usize>());
                }
            }
        }
    }
}
