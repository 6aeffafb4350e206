//! # Trajectories: every tag's recent movements in 3-D (x, y, time) R-trees.
//!
//! When a visit closes (its tag has not been heard at that station for the visit gap), it enters
//! the index as a *stay*: a vertical segment at its station from its first to its last detection,
//! joined to the tag's previous stay by a *transit* segment. Tags heard by mobile readers add
//! segments between the reader's GPS fixes instead. Segments live in one R-tree per time bucket
//! (ten minutes by default): while a bucket is current its segments are only appended to a list
//! (an R-tree insertion costs microseconds, on the ingest path); once it closes it is built in
//! bulk into a packed tree, and it is dropped whole when it leaves the index window. The
//! tracker answers area, track and convoy questions from here for the window it covers; older
//! questions go to the store.
//!
//! Coordinates are metres on the tracker's local plane and milliseconds.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{Envelope, RTree, RTreeObject, AABB};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use tagwatch_model::{StationId, TagId, VisitId};

/// Transit segments longer than this in time are not drawn: the tag went somewhere unseen.
pub const MAX_TRANSIT_MS: i64 = 600_000;
/// A mobile reader's fixes of one tag closer than this (in time and space) add no segment.
const FIX_MIN_STEP_MS: i64 = 15_000;
const FIX_MIN_STEP_M: f64 = 25.0;

/// A closed visit: the tag stayed in range of `station` from `first_ms` to `last_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stay {
    pub visit: VisitId,
    pub station: StationId,
    pub xy: [f64; 2],
    pub first_ms: i64,
    pub last_ms: i64,
    pub best_rssi: i8,
    pub reads: u32,
}

/// What an index entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceKind {
    /// A stay: constant x and y.
    Stay,
    /// A movement. The box's corners are its ends; which diagonal it runs along is recorded.
    Transit { east: bool, north: bool },
}

/// An index entry's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub tag: TagId,
    pub kind: PieceKind,
}

type Entry = GeomWithData<Rectangle<[f64; 3]>, Piece>;

/// A segment of a trajectory: from `a` to `b`, each `[x, y, t]`, with `a[2] <= b[2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub tag: TagId,
    pub kind: PieceKind,
    pub a: [f64; 3],
    pub b: [f64; 3],
}

impl Segment {
    fn from_entry(e: &Entry) -> Self {
        let env = e.geom().envelope();
        let (lo, hi) = (env.lower(), env.upper());
        let (mut a, mut b) = (lo, hi);
        if let PieceKind::Transit { east, north } = e.data.kind {
            if !east {
                (a[0], b[0]) = (hi[0], lo[0]);
            }
            if !north {
                (a[1], b[1]) = (hi[1], lo[1]);
            }
        }
        Self {
            tag: e.data.tag,
            kind: e.data.kind,
            a,
            b,
        }
    }

    /// The part of the segment within `[from, to]`, by linear interpolation; None if outside.
    pub fn clip(&self, from: f64, to: f64) -> Option<([f64; 2], [f64; 2])> {
        let (t0, t1) = (self.a[2], self.b[2]);
        if t1 < from || t0 > to {
            return None;
        }
        let at = |t: f64| {
            let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
            [
                self.a[0] + f * (self.b[0] - self.a[0]),
                self.a[1] + f * (self.b[1] - self.a[1]),
            ]
        };
        Some((at(t0.max(from)), at(t1.min(to))))
    }
}

#[derive(Debug, Default)]
struct Bucket {
    /// Built in bulk once the bucket has closed.
    tree: RTree<Entry>,
    /// Entries not in the tree yet: all of them while the bucket is current (appending is far
    /// cheaper than inserting into an R-tree, and a bucket holds minutes of data, so a scan is
    /// short), and late ones after it was built.
    pending: Vec<Entry>,
    sealed: bool,
}

/// Late entries a built bucket collects (and scans) before it is rebuilt with them: at least
/// this many, and an eighth of the tree, so rebuilding costs O(log n) per entry over time. (A
/// long visit closing now also lands in the buckets before the current one.)
const MIN_LATE_ENTRIES: usize = 1_024;

impl Bucket {
    fn len(&self) -> usize {
        self.tree.size() + self.pending.len()
    }

    /// Puts the pending entries into the tree, rebuilding it in bulk.
    fn build(&mut self) {
        let mut entries: Vec<Entry> = std::mem::take(&mut self.tree).into_iter().collect();
        entries.append(&mut self.pending);
        self.tree = RTree::bulk_load(entries);
        self.sealed = true;
    }
}

#[derive(Debug, Clone, Copy)]
struct Fix {
    xy: [f64; 2],
    t: i64,
}

/// The index of recent trajectories.
#[derive(Debug)]
pub struct Trajectories {
    bucket_ms: i64,
    buckets: BTreeMap<i64, Bucket>,
    /// Each tag's closed stays, in order of closing (nearly time order).
    stays: HashMap<TagId, Vec<Stay>>,
    /// Each tag's latest mobile fix that went into the index.
    fixes: HashMap<TagId, Fix>,
    segments: usize,
}

impl Trajectories {
    pub fn new(bucket_ms: i64) -> Self {
        Self {
            bucket_ms: bucket_ms.max(1),
            buckets: BTreeMap::new(),
            stays: HashMap::default(),
            fixes: HashMap::default(),
            segments: 0,
        }
    }

    fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket_ms) * self.bucket_ms
    }

    /// Inserts a segment into every bucket its time span touches.
    fn insert(&mut self, tag: TagId, a: [f64; 3], b: [f64; 3], kind: PieceKind) {
        let rect = Rectangle::from_corners(a, b);
        let (first, last) = (a[2].min(b[2]) as i64, a[2].max(b[2]) as i64);
        let mut bucket = self.bucket_of(first);
        while bucket <= last {
            self.buckets
                .entry(bucket)
                .or_default()
                .pending
                .push(GeomWithData::new(rect, Piece { tag, kind }));
            self.segments += 1;
            bucket += self.bucket_ms;
        }
    }

    /// A visit of `tag` closed: it becomes a stay, joined to the tag's previous stay.
    pub fn close(&mut self, tag: TagId, stay: Stay) {
        let [x, y] = stay.xy;
        self.insert(
            tag,
            [x, y, stay.first_ms as f64],
            [x, y, stay.last_ms as f64],
            PieceKind::Stay,
        );
        let list = self.stays.entry(tag).or_default();
        let previous = list
            .iter()
            .rev()
            .find(|p| p.first_ms <= stay.first_ms && p.station != stay.station)
            .copied();
        list.push(stay);
        if let Some(p) = previous {
            if stay.first_ms - p.last_ms <= MAX_TRANSIT_MS {
                self.transit(
                    tag,
                    [p.xy[0], p.xy[1], p.last_ms as f64],
                    [x, y, stay.first_ms as f64],
                );
            }
        }
    }

    /// A segment from `a` to `b` (either may come first in time).
    fn transit(&mut self, tag: TagId, a: [f64; 3], b: [f64; 3]) {
        let (a, b) = if a[2] <= b[2] { (a, b) } else { (b, a) };
        let kind = PieceKind::Transit {
            east: b[0] >= a[0],
            north: b[1] >= a[1],
        };
        let lo = [a[0].min(b[0]), a[1].min(b[1]), a[2]];
        let hi = [a[0].max(b[0]), a[1].max(b[1]), b[2]];
        self.insert(tag, lo, hi, kind);
    }

    /// A mobile reader heard `tag` at `xy`: extends the tag's path of fixes.
    pub fn fix(&mut self, tag: TagId, xy: [f64; 2], t: i64) {
        let fix = Fix { xy, t };
        match self.fixes.get(&tag).copied() {
            None => {
                self.insert(
                    tag,
                    [xy[0], xy[1], t as f64],
                    [xy[0], xy[1], t as f64],
                    PieceKind::Stay,
                );
            }
            Some(last) => {
                let moved = ((xy[0] - last.xy[0]).powi(2) + (xy[1] - last.xy[1]).powi(2)).sqrt();
                let dt = (t - last.t).abs();
                if moved < FIX_MIN_STEP_M && dt < FIX_MIN_STEP_MS {
                    return;
                }
                if dt <= MAX_TRANSIT_MS {
                    self.transit(
                        tag,
                        [last.xy[0], last.xy[1], last.t as f64],
                        [xy[0], xy[1], t as f64],
                    );
                } else {
                    self.insert(
                        tag,
                        [xy[0], xy[1], t as f64],
                        [xy[0], xy[1], t as f64],
                        PieceKind::Stay,
                    );
                }
            }
        }
        self.fixes.insert(tag, fix);
    }

    /// Segments whose box meets `[lo, hi]` (x, y, t), each once.
    pub fn segments_in(&self, lo: [f64; 3], hi: [f64; 3]) -> Vec<Segment> {
        let envelope = AABB::from_corners(lo, hi);
        let mut found = Vec::new();
        let (first, last) = (self.bucket_of(lo[2] as i64), self.bucket_of(hi[2] as i64));
        for (&start, bucket) in self.buckets.range(first..=last) {
            let pending = bucket
                .pending
                .iter()
                .filter(|e| e.envelope().intersects(&envelope));
            for e in bucket
                .tree
                .locate_in_envelope_intersecting(&envelope)
                .chain(pending)
            {
                let segment = Segment::from_entry(e);
                // A segment spanning buckets is in each: report it from the first one queried.
                if segment.a[2] < start as f64 && start > first {
                    continue;
                }
                found.push(segment);
            }
        }
        found
    }

    /// The tag's closed stays overlapping `[from, to]`, in time order.
    pub fn stays(&self, tag: TagId, from: i64, to: i64) -> Vec<Stay> {
        let mut found: Vec<Stay> = self
            .stays
            .get(&tag)
            .into_iter()
            .flatten()
            .filter(|s| s.last_ms >= from && s.first_ms <= to)
            .copied()
            .collect();
        found.sort_by_key(|s| (s.first_ms, s.visit));
        found
    }

    /// Seals buckets that ended before `closed_before` (rebuilt in bulk) and drops those that
    /// ended before `keep_after`, with the stays that ended before it.
    pub fn maintain(&mut self, closed_before: i64, keep_after: i64) {
        let bucket_ms = self.bucket_ms;
        let old: Vec<i64> = self
            .buckets
            .range(..self.bucket_of(keep_after))
            .map(|(&start, _)| start)
            .filter(|&start| start + bucket_ms <= keep_after)
            .collect();
        for start in old {
            if let Some(bucket) = self.buckets.remove(&start) {
                self.segments -= bucket.len();
            }
        }
        for (&start, bucket) in self.buckets.iter_mut() {
            let closed = !bucket.sealed && start + bucket_ms <= closed_before;
            let late = bucket.pending.len();
            if closed || (bucket.sealed && late > MIN_LATE_ENTRIES.max(bucket.tree.size() / 8)) {
                bucket.build();
            }
        }
        self.stays.retain(|_, list| {
            list.retain(|s| s.last_ms >= keep_after);
            !list.is_empty()
        });
        self.fixes.retain(|_, f| f.t >= keep_after);
    }

    /// Index entries held (a segment spanning buckets counts once per bucket).
    pub fn len(&self) -> usize {
        self.segments
    }

    pub fn is_empty(&self) -> bool {
        self.segments == 0
    }

    /// Buckets held, and how many are sealed.
    pub fn buckets(&self) -> (usize, usize) {
        (
            self.buckets.len(),
            self.buckets.values().filter(|b| b.sealed).count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay(visit: i64, station: u32, x: f64, first: i64, last: i64) -> Stay {
        Stay {
            visit: VisitId(visit),
            station: StationId(station),
            xy: [x, 0.0],
            first_ms: first,
            last_ms: last,
            best_rssi: -70,
            reads: 3,
        }
    }

    #[test]
    fn stays_and_the_transits_between_them_are_found_by_place_and_time() {
        let mut index = Trajectories::new(3_600_000);
        let tag = TagId(7);
        index.close(tag, stay(1, 1, 0.0, 0, 20_000));
        index.close(tag, stay(2, 2, 200.0, 40_000, 60_000));
        // The transit from x=0 at 20 s to x=200 at 40 s passes x=100 at 30 s.
        let around_middle = index.segments_in([90.0, -5.0, 25_000.0], [110.0, 5.0, 35_000.0]);
        assert_eq!(around_middle.len(), 1);
        let transit = around_middle[0];
        assert!(matches!(
            transit.kind,
            PieceKind::Transit { east: true, .. }
        ));
        assert_eq!(transit.a, [0.0, 0.0, 20_000.0]);
        assert_eq!(transit.b, [200.0, 0.0, 40_000.0]);
        let (p, q) = transit.clip(25_000.0, 35_000.0).expect("overlaps");
        assert_eq!((p[0], q[0]), (50.0, 150.0));
        // At station 1 after it left: nothing.
        assert!(index
            .segments_in([-5.0, -5.0, 45_000.0], [5.0, 5.0, 50_000.0])
            .is_empty());
        assert_eq!(index.stays(tag, 30_000, 100_000).len(), 1);
    }

    #[test]
    fn a_stay_spanning_buckets_is_reported_once_and_old_buckets_are_dropped() {
        let mut index = Trajectories::new(1_000);
        index.close(TagId(1), stay(1, 1, 0.0, 500, 3_500));
        assert_eq!(index.len(), 4, "in buckets 0, 1, 2 and 3");
        assert_eq!(
            index
                .segments_in([-1.0, -1.0, 0.0], [1.0, 1.0, 5_000.0])
                .len(),
            1
        );
        index.maintain(3_000, 2_000);
        assert_eq!(index.buckets(), (2, 1), "0 and 1 dropped, 2 sealed, 3 open");
        assert_eq!(
            index
                .segments_in([-1.0, -1.0, 2_000.0], [1.0, 1.0, 2_100.0])
                .len(),
            1
        );
        index.maintain(10_000, 5_000);
        assert!(index.is_empty());
        assert!(index.stays(TagId(1), 0, 10_000).is_empty());
    }

    #[test]
    fn mobile_fixes_are_joined_and_thinned() {
        let mut index = Trajectories::new(3_600_000);
        index.fix(TagId(3), [0.0, 0.0], 0);
        index.fix(TagId(3), [5.0, 0.0], 1_000); // too close: no segment
        index.fix(TagId(3), [0.0, 300.0], 20_000);
        let all = index.segments_in([-1e6, -1e6, -1e9], [1e6, 1e6, 1e9]);
        assert_eq!(all.len(), 2, "the first point and one segment");
        let moving = all
            .iter()
            .find(|s| s.kind != PieceKind::Stay)
            .expect("a transit");
        assert_eq!(moving.a, [0.0, 0.0, 0.0]);
        assert_eq!(moving.b, [0.0, 300.0, 20_000.0]);
    }
}
