//! # Visits: detections of one tag at one station merged over time.
//!
//! A detection joins the visit of its (tag, station) whose span, widened by the gap tolerance on
//! both sides, contains it; otherwise it opens a new visit. Late or reordered detections land in
//! their place: a detection that bridges two visits merges them (the later one is deleted), so a
//! visit is never split by the order frames arrive in.
//!
//! A checkpoint takes the changed visits in slices between the ingest's frames (at millions of
//! tags, taking them all at once held the ingest, and every alert behind it, for 200 ms). It still
//! takes the visits as they were when it began: a detection about to change a visit the take has
//! not reached yet first hands the take the visit as it is ([`VisitBook::add`]). Old visits leave
//! memory in slices too, found by the minute they were last heard ([`VisitBook::prune`]).
//!
//! Why this file is long: half of it is its tests, the property tests of order independence
//! and of checkpoint takes among them.

// FxHash: keys are small integers that come only from authenticated stations,
// and the maps are hit several times per detection; SipHash's DoS resistance buys nothing here.
use crate::calendar::Calendar;
use crate::FleetMap;
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

/// A visit in memory, and how it changed.
#[derive(Debug, Clone, Copy)]
struct Slot {
    visit: Visit,
    /// A change not yet taken.
    change: Option<Change>,
    /// The take the change belongs to or, once taken, the take that took it (0: read from the
    /// store).
    take: u32,
    /// Every stored visit of this pair overlapping `[complete_from, ∞)` is in memory, so a late
    /// detection at `t` with `t - gap >= complete_from` needs no look at the store
    /// (`i64::MAX`: nothing is known). A claim about the pair, held by each of its slots.
    complete_from: i64,
}

/// A take under way: the visits changed before it began, as they were then.
#[derive(Debug, Clone)]
struct Taking {
    take: u32,
    /// The pairs changed before it began; those before `next` are taken.
    pairs: Vec<(TagId, StationId)>,
    next: usize,
    changes: VisitChanges,
}

/// The visits of one (tag, station) in time order. Almost always one within the hot window, so
/// it is kept inline in the map: a detection then touches one cache line, not two.
type Visits = SmallVec<[Slot; 1]>;

/// The recent visits of every (tag, station), in time order.
#[derive(Debug, Clone)]
pub struct VisitBook {
    gap_ms: i64,
    by_pair: FleetMap<(TagId, StationId), Visits>,
    /// Pairs with a changed visit, in order of first change (a pair may be listed twice; the
    /// flush takes each changed visit once). A list, not a set: appending costs no lookup.
    dirty: Vec<(TagId, StationId)>,
    deleted: Vec<VisitId>,
    /// Visits merged away, by the take that carries their deletion, until it is committed: the
    /// store still holds them meanwhile, and a late frame's look there must not bring one back
    /// (its detections would be counted twice).
    merged_away: rustc_hash::FxHashMap<VisitId, u32>,
    /// The take that changes from now on belong to (takes are numbered from 1).
    take: u32,
    taking: Option<Taking>,
    /// The latest take finished, and the latest known to be committed: a visit taken by it or
    /// before and unchanged since is in the store, and may leave memory.
    finished: u32,
    committed: u32,
    /// Every pair, by the minute of its latest visit's last detection when filed: a calendar
    /// queue, so pruning looks at pairs that may have aged out, not at every pair. A pair heard
    /// since is filed again when its minute comes.
    by_minute: Calendar<(TagId, StationId)>,
    /// Visits held, counted as they come and go (a walk of the map for the count cost 3 % of
    /// the server's CPU at 2.4 M tags, asked at every flush).
    len: usize,
    next_id: i64,
    /// Visit ids are `lane` modulo `lanes`: one process has one lane of one; each partition of a
    /// cluster its own lane, so shards create ids that never collide (see [`VisitBook::set_lane`]).
    lane: i64,
    lanes: i64,
    /// The latest cut-off before which visits have left memory.
    pruned_up_to: i64,
}

impl VisitChanges {
    /// Adds a slot's change, and marks it taken.
    fn take_from(&mut self, slot: &mut Slot) {
        match slot.change.take() {
            Some(Change::Full) => self.upserts.push(slot.visit),
            Some(Change::Extended) => self.extended.push(slot.visit),
            None => {}
        }
    }
}

/// How [`VisitBook::take_changes`] finds the changed visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Looks up each pair on the dirty list.
    Dirty,
    /// Walks the whole map.
    Everything,
}

impl VisitBook {
    /// `gap_ms`: detections of a tag at a station less than this apart belong to one visit.
    pub fn new(gap_ms: i64, next_id: i64) -> Self {
        Self {
            gap_ms,
            by_pair: FleetMap::default(),
            dirty: Vec::new(),
            deleted: Vec::new(),
            merged_away: rustc_hash::FxHashMap::default(),
            take: 1,
            taking: None,
            finished: 0,
            committed: 0,
            by_minute: Calendar::new(60_000),
            len: 0,
            next_id,
            lane: 0,
            lanes: 1,
            pruned_up_to: i64::MIN,
        }
    }

    /// From now on, new visit ids are `lane` modulo `lanes` (`lane < lanes`; `lanes` a power of
    /// two at most 2^[`tagwatch_model::visit::VISIT_ID_TIME_SHIFT`], so every millisecond's first
    /// id is a multiple of it and ids still record when visits were created).
    pub fn set_lane(&mut self, lane: u16, lanes: u16) {
        debug_assert!(lane < lanes && lanes.is_power_of_two());
        self.lane = i64::from(lane);
        self.lanes = i64::from(lanes.max(1));
        self.next_id = self.in_lane(self.next_id);
    }

    /// The first id at or above `id` in this book's lane.
    fn in_lane(&self, id: i64) -> i64 {
        let base = id - id.rem_euclid(self.lanes) + self.lane;
        if base < id {
            base + self.lanes
        } else {
            base
        }
    }

    /// Moves the id sequence up to the server clock, so ids record when visits were created
    /// (see [`tagwatch_model::visit::VISIT_ID_TIME_SHIFT`]).
    pub fn set_clock(&mut self, now_ms: i64) {
        self.next_id = self.next_id.max(self.in_lane(VisitId::floor_at(now_ms)));
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
    /// detections extend it. A visit already in memory is newer than the store's copy: kept; one
    /// merged away whose deletion is not committed yet stays away.
    pub fn restore(&mut self, visit: Visit) {
        self.next_id = self.next_id.max(self.in_lane(visit.id.0 + 1));
        if self.merged_away.contains_key(&visit.id) {
            return;
        }
        let key = (visit.tag, visit.station);
        let list = self.by_pair.entry(key).or_default();
        if list.is_empty() {
            self.by_minute.file(visit.last_seen_ms, key);
        }
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
                take: 0,
                complete_from: i64::MAX,
            },
        );
    }

    /// Whether a detection at `t` may belong with visits already dropped from memory: they
    /// must then be restored from the store before it is added.
    pub fn needs_history(&self, t: i64) -> bool {
        t.saturating_sub(self.gap_ms) < self.pruned_up_to
    }

    /// The window of stored visits of `tag` at `station` to restore before a detection at `t` is
    /// added, if memory may lack one it joins: it is behind the sweep, and no earlier look (or
    /// detection the sweep had not reached) covered it. The window reaches the sweep, so once it
    /// is restored memory holds every stored visit of the pair from `t - gap` on, and later
    /// detections of an in-order backlog need no look; a reordered frame that reaches further
    /// back looks again (joining two visits the store holds apart would otherwise miss the first).
    pub fn history_window(&self, tag: TagId, station: StationId, t: i64) -> Option<(i64, i64)> {
        let from = t.saturating_sub(self.gap_ms);
        if !self.needs_history(t) {
            return None;
        }
        let known = self
            .by_pair
            .get(&(tag, station))
            .and_then(|list| list.iter().map(|s| s.complete_from).min())
            .is_some_and(|complete_from| complete_from <= from);
        (!known).then(|| (from, t.saturating_add(self.gap_ms).max(self.pruned_up_to)))
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
        if list.is_empty() {
            self.by_minute.file(t, key);
        }
        let current = self.take;
        // Hands the take under way a visit it has yet to take, before this detection changes it.
        let mut settle = |slot: &mut Slot| {
            if slot.change.is_some() && slot.take != current {
                if let Some(taking) = &mut self.taking {
                    debug_assert_eq!(slot.take, taking.take);
                    taking.changes.take_from(slot);
                }
            }
        };
        let listed = list.iter().any(|s| s.change.is_some() && s.take == current);
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
            self.next_id += self.lanes;
            let at = list.partition_point(|s| s.visit.first_seen_ms < t);
            self.len += 1;
            list.insert(
                at,
                Slot {
                    visit,
                    change: Some(Change::Full),
                    take: current,
                    complete_from: t.saturating_sub(gap),
                },
            );
            if !listed {
                self.dirty.push(key);
            }
            return (visit, true);
        };
        settle(&mut list[i]);
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
        list[i].complete_from = list[i].complete_from.min(t.saturating_sub(gap));
        // The detection may have closed the gap to the next visit: merge it into this one.
        if let Some(next) = list.get(i + 1).map(|s| (s.visit, s.complete_from)) {
            let (next, next_complete_from) = next;
            if next.first_seen_ms - gap <= list[i].visit.last_seen_ms {
                settle(&mut list[i + 1]);
                list[i].complete_from = list[i].complete_from.min(next_complete_from);
                let v = &mut list[i].visit;
                v.last_seen_ms = v.last_seen_ms.max(next.last_seen_ms);
                v.best_rssi = v.best_rssi.max(next.best_rssi);
                v.reads = v.reads.saturating_add(next.reads);
                list.remove(i + 1);
                self.len -= 1;
                self.deleted.push(next.id);
                self.merged_away.insert(next.id, current);
                change = Change::Full;
            }
        }
        // Only the visit after `i` can newly overlap: `i` was the first one near `t`, so the one
        // before it ends more than a gap before `t`, and extending `i` backwards to `t` keeps that.
        let slot = &mut list[i];
        // A change left is this take's (`settle` took an earlier one's).
        slot.change = match (slot.change, change) {
            (Some(Change::Full), _) | (_, Change::Full) => Some(Change::Full),
            _ => Some(Change::Extended),
        };
        slot.take = current;
        if !listed {
            self.dirty.push(key);
        }
        (slot.visit, false)
    }

    /// Takes what changed since the last take, in no particular order, at once. With `may_prune`
    /// (the caller says every earlier take is committed, so the store has it), first forgets
    /// visits that ended before `keep_after_ms` and did not change since.
    pub fn take_changes(&mut self, keep_after_ms: i64, may_prune: bool) -> VisitChanges {
        // When most pairs changed (a checkpoint of a busy city, where every parked tag's visit
        // grew), one walk through the map in memory order beats a hash lookup per changed pair.
        let walk = if self.dirty.len() >= self.by_pair.len() / 2 {
            Walk::Everything
        } else {
            Walk::Dirty
        };
        self.take_changes_by(walk, keep_after_ms, may_prune)
    }

    fn take_changes_by(&mut self, walk: Walk, keep_after_ms: i64, may_prune: bool) -> VisitChanges {
        if let Some(under_way) = self.continue_take(usize::MAX) {
            // A sliced take was under way: it is this take (what changed since is left for the
            // next one; one row per visit and take).
            return under_way;
        }
        if may_prune {
            self.mark_committed();
            self.prune(keep_after_ms, usize::MAX);
        }
        self.begin_take();
        match walk {
            Walk::Dirty => self.continue_take(usize::MAX).unwrap_or_default(),
            Walk::Everything => {
                let mut taking = self.taking.take().expect("begun above");
                for slot in self.by_pair.values_mut().flatten() {
                    if slot.take == taking.take {
                        taking.changes.take_from(slot);
                    }
                }
                self.finished = taking.take;
                taking.changes
            }
        }
    }

    /// Begins a take of what changed since the last one, as it is now; [`Self::continue_take`]
    /// takes it in slices. One at a time: a take under way is finished first.
    pub fn begin_take(&mut self) {
        debug_assert!(self.taking.is_none(), "one take at a time");
        let pairs = std::mem::take(&mut self.dirty);
        self.taking = Some(Taking {
            take: self.take,
            next: 0,
            changes: VisitChanges {
                // Unsorted: the store's writer sorts them, off the ingest path.
                upserts: Vec::new(),
                extended: Vec::with_capacity(pairs.len()),
                deletes: std::mem::take(&mut self.deleted),
            },
            pairs,
        });
        self.take += 1;
    }

    /// Takes up to `budget` more pairs of the take under way; its changes once it is finished.
    pub fn continue_take(&mut self, budget: usize) -> Option<VisitChanges> {
        let taking = self.taking.as_mut()?;
        let end = taking.next.saturating_add(budget).min(taking.pairs.len());
        for key in &taking.pairs[taking.next..end] {
            if let Some(list) = self.by_pair.get_mut(key) {
                for slot in list.iter_mut() {
                    if slot.take == taking.take {
                        taking.changes.take_from(slot);
                    }
                }
            }
        }
        taking.next = end;
        if end < taking.pairs.len() {
            return None;
        }
        let taking = self.taking.take()?;
        self.finished = taking.take;
        Some(taking.changes)
    }

    /// Whether a take is under way.
    pub fn is_taking(&self) -> bool {
        self.taking.is_some()
    }

    /// Every take finished so far is committed: visits it took may leave memory.
    pub fn mark_committed(&mut self) {
        self.committed = self.finished;
        let committed = self.committed;
        self.merged_away.retain(|_, take| *take > committed);
    }

    /// Forgets visits that ended before `keep_after_ms` and are stored unchanged since, looking
    /// at up to `budget` pairs filed before its minute.
    pub fn prune(&mut self, keep_after_ms: i64, budget: usize) {
        let committed = self.committed;
        for key in self.by_minute.take_due(keep_after_ms, budget) {
            let Some(list) = self.by_pair.get_mut(&key) else {
                continue;
            };
            let before = list.len();
            list.retain(|slot| {
                slot.change.is_some()
                    || slot.take > committed
                    || slot.visit.last_seen_ms >= keep_after_ms
            });
            if list.len() < before {
                // Before a late detection could look for what just left.
                self.pruned_up_to = self.pruned_up_to.max(keep_after_ms);
                self.len -= before - list.len();
                // What is left no longer holds every stored visit of the pair.
                list.iter_mut().for_each(|s| s.complete_from = i64::MAX);
            }
            match list.iter().map(|s| s.visit.last_seen_ms).max() {
                None => {
                    self.by_pair.remove(&key);
                }
                Some(last) => self.by_minute.refile(last, keep_after_ms, key),
            }
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
    use std::collections::BTreeMap;

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
    fn visit_ids_stay_in_their_lane_through_the_clock_and_restores() {
        let mut book = VisitBook::new(10_000, 1);
        book.set_lane(5, 64);
        book.set_clock(1_000);
        let restored = Visit {
            id: VisitId(VisitId::floor_at(1_000) + 64 * 3 + 7),
            tag: TagId(999),
            station: StationId(1),
            first_seen_ms: 50_000,
            last_seen_ms: 50_000,
            best_rssi: -60,
            reads: 1,
        };
        book.restore(restored);
        for t in [0, 20_000, 40_000] {
            book.add(&det(t, 1));
        }
        let ids: Vec<i64> = book
            .take_changes(i64::MIN, true)
            .upserts
            .iter()
            .map(|v| v.id.0)
            .collect();
        assert_eq!(ids.len(), 3);
        for id in &ids {
            assert_eq!(id.rem_euclid(64), 5, "id {id} left lane 5");
            assert!(*id > restored.id.0, "a new id is above the restored one");
            assert_eq!(VisitId(*id).created_ms(), 1_000, "ids still say when");
        }
        let mut distinct = ids.clone();
        distinct.dedup();
        assert_eq!(distinct, ids);
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
        assert!(
            !book.needs_history(0),
            "nothing left memory: its change is not stored yet"
        );
        // Pairs are looked at again once the cut-off has moved on by a minute.
        book.take_changes(160_000, true);
        assert_eq!(book.len(), 0, "stored and old: it left");
        assert!(book.needs_history(165_000), "within a gap of the sweep");
        assert!(!book.needs_history(180_000));
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

    fn sorted(mut changes: VisitChanges) -> VisitChanges {
        changes.upserts.sort_unstable_by_key(|v| v.id);
        changes.extended.sort_unstable_by_key(|v| v.id);
        changes.deletes.sort_unstable();
        changes
    }

    /// What a store holds after committing `changes`.
    fn commit(store: &mut BTreeMap<VisitId, Visit>, changes: VisitChanges) {
        for visit in changes.upserts.into_iter().chain(changes.extended) {
            store.insert(visit.id, visit);
        }
        for id in changes.deletes {
            store.remove(&id);
        }
    }

    fn detection() -> impl Strategy<Value = Detection> {
        (0u32..4, 0u32..3, 0i64..200_000, 1u8..5).prop_map(|(tag, station, t, reads)| Detection {
            tag: TagId(tag),
            station: StationId(station),
            ..det(t, reads)
        })
    }

    proptest! {
        /// A take in slices, with detections applied between its slices, takes the visits as
        /// they were when it began; a store that commits every take holds the book's visits.
        #[test]
        fn a_take_in_slices_takes_the_visits_as_they_were_when_it_began(
            rounds in proptest::collection::vec(
                (proptest::collection::vec(detection(), 0..30),
                 proptest::collection::vec(
                     (1usize..4, proptest::collection::vec(detection(), 0..5)), 0..8)),
                1..5)
        ) {
            let mut book = VisitBook::new(10_000, 1);
            let mut store = BTreeMap::new();
            for (before, slices) in rounds {
                for d in &before {
                    book.add(d);
                }
                let expected = book.clone().take_changes(i64::MIN, false);
                book.begin_take();
                let mut taken = None;
                for (pairs, between) in slices {
                    if taken.is_none() {
                        taken = book.continue_take(pairs);
                    }
                    for d in &between {
                        book.add(d);
                    }
                }
                let taken = taken.or_else(|| book.continue_take(usize::MAX));
                prop_assert!(!book.is_taking());
                let taken = sorted(taken.expect("finished"));
                prop_assert_eq!(&taken, &sorted(expected));
                commit(&mut store, taken);
            }
            commit(&mut store, book.take_changes(i64::MIN, false));
            let mut held: Vec<Visit> = book.by_pair.values().flatten().map(|s| s.visit).collect();
            held.sort_unstable_by_key(|v| v.id);
            prop_assert_eq!(store.into_values().collect::<Vec<_>>(), held);
        }

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

        /// Late detections in any order, with old visits leaving memory between rounds: when the
        /// store's visits are brought back as `history_window` asks, the stored visits are those of
        /// the sorted sequence (a frame resent after later ones were applied does not split a
        /// visit the store holds the first half of).
        #[test]
        fn late_detections_in_any_order_merge_with_visits_that_left_memory(
            rounds in proptest::collection::vec(
                proptest::collection::vec((0u32..2, 0i64..300_000, 1u8..5), 0..30),
                1..8)
        ) {
            let mut book = VisitBook::new(10_000, 1);
            let mut store: BTreeMap<VisitId, Visit> = BTreeMap::new();
            let mut by_tag: BTreeMap<u32, Vec<(i64, u8)>> = BTreeMap::new();
            for (round, detections) in rounds.into_iter().enumerate() {
                for (tag, t, reads) in detections {
                    let d = Detection { tag: TagId(tag), ..det(t, reads) };
                    if let Some((from, to)) = book.history_window(d.tag, d.station, t) {
                        store
                            .values()
                            .filter(|v| v.tag == d.tag && v.first_seen_ms <= to && v.last_seen_ms >= from)
                            .for_each(|v| book.restore(*v));
                    }
                    book.add(&d);
                    by_tag.entry(tag).or_default().push((t, reads));
                }
                // Committed at once, so what is old and unchanged leaves memory.
                let changes = book.take_changes(60_000 * round as i64, true);
                commit(&mut store, changes);
            }
            commit(&mut store, book.take_changes(i64::MIN, false));
            for (tag, times) in by_tag {
                let stored: Vec<_> = store
                    .values()
                    .filter(|v| v.tag == TagId(tag))
                    .map(|v| (v.first_seen_ms, v.last_seen_ms, v.reads))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                prop_assert_eq!(stored, reference(times, 10_000));
            }
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
                let a = by_list.take_changes_by(Walk::Dirty, keep_after, may_prune);
                let b = by_walk.take_changes_by(Walk::Everything, keep_after, may_prune);
                prop_assert_eq!(sorted(a), sorted(b));
                prop_assert_eq!(spans(&mut by_list), spans(&mut by_walk));
                prop_assert!(by_walk.dirty.is_empty());
                for book in [&by_list, &by_walk] {
                    prop_assert_eq!(book.len(), book.by_pair.values().map(SmallVec::len).sum::<usize>());
                }
            }
        }
    }
}
