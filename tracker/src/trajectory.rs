//! # Trajectories: every tag's recent movements in 3-D (x, y, time) R-trees.
//!
//! When a visit closes (its tag has not been heard at that station for the visit gap), it enters
//! the index as a *stay*: a vertical segment at its station from its first to its last detection,
//! joined to the tag's previous stay by a *transit* segment. Tags heard by mobile readers add
//! segments between the reader's GPS fixes instead. Segments live in one R-tree per time bucket
//! (ten minutes by default), dropped whole when the bucket leaves the index window.
//!
//! Nothing here may stall the ingest path, and a question about the last minutes must be as fast
//! as one about yesterday. So a bucket grows in chunks: appended segments are built in bulk into
//! a small tree every [`CHUNK`] entries (milliseconds), and once the bucket has closed a builder
//! thread merges its chunks into one packed tree (seconds, for a busy city's ten minutes) while
//! queries keep using the chunks. The tracker answers area, track and convoy questions from here
//! for the window it covers; older questions go to the store.
//!
//! Coordinates are metres on the tracker's local plane and milliseconds. Entries hold `f32`
//! (half the memory of `f64`) with time relative to their bucket's start: a day's milliseconds
//! then keep a precision of 8 ms or better, and a city's metres a few millimetres.

use crate::calendar::Calendar;
use crate::FleetMap;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{Envelope, RTree, RTreeObject, AABB};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use tagwatch_model::{StationId, TagId, VisitId};

/// Transit segments longer than this in time are not drawn: the tag went somewhere unseen.
pub const MAX_TRANSIT_MS: i64 = 600_000;
/// A mobile reader's fixes of one tag closer than this (in time and space) add no segment.
const FIX_MIN_STEP_MS: i64 = 15_000;
const FIX_MIN_STEP_M: f64 = 25.0;
/// Appended entries are built into a tree this many at a time: a few milliseconds of work, and
/// the most a query ever scans linearly in one bucket.
pub const CHUNK: usize = 16_384;

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

/// A segment's box in (x, y, time since its bucket's start): 32 bytes with its payload.
type Entry = GeomWithData<Rectangle<[f32; 3]>, Piece>;
type Tree = Arc<RTree<Entry>>;

/// A segment of a trajectory: from `a` to `b`, each `[x, y, t]`, with `a[2] <= b[2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub tag: TagId,
    pub kind: PieceKind,
    pub a: [f64; 3],
    pub b: [f64; 3],
}

impl Segment {
    fn from_entry(e: &Entry, origin: i64) -> Self {
        let env = e.geom().envelope();
        let widen = |p: [f32; 3]| {
            [
                f64::from(p[0]),
                f64::from(p[1]),
                f64::from(p[2]) + origin as f64,
            ]
        };
        let (lo, hi) = (widen(env.lower()), widen(env.upper()));
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

/// A box in bucket-local `f32` coordinates that contains the `f64` box `[lo, hi]`: rounded
/// outwards, so the R-tree never misses an entry on the edge (callers test exactly after).
fn local_box(lo: [f64; 3], hi: [f64; 3], origin: i64) -> ([f32; 3], [f32; 3]) {
    let down = |v: f64| (v as f32).next_down();
    let up = |v: f64| (v as f32).next_up();
    let o = origin as f64;
    (
        [down(lo[0]), down(lo[1]), down(lo[2] - o)],
        [up(hi[0]), up(hi[1]), up(hi[2] - o)],
    )
}

#[derive(Debug, Default)]
struct Bucket {
    /// Trees built from the bucket's entries: chunks of [`CHUNK`] while it is current, merged
    /// into one by the builder thread once it has closed.
    trees: Vec<Tree>,
    /// Entries not in a tree yet (fewer than [`CHUNK`]).
    pending: Vec<Entry>,
    /// No more entries are expected, except late ones.
    closed: bool,
    /// A merge of the first this-many trees is with the builder.
    merging: usize,
}

impl Bucket {
    fn len(&self) -> usize {
        self.trees.iter().map(|t| t.size()).sum::<usize>() + self.pending.len()
    }

    fn push(&mut self, entry: Entry) {
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(CHUNK);
        }
        self.pending.push(entry);
        if self.pending.len() >= CHUNK {
            self.build_chunk();
        }
    }

    /// Builds the pending entries into a tree of their own.
    fn build_chunk(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let entries = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.trees.push(Arc::new(RTree::bulk_load(entries)));
    }

    /// Whether the builder should merge this bucket's trees now.
    fn wants_merge(&self) -> bool {
        self.closed && self.merging == 0 && self.trees.len() > 1
    }
}

/// Work for the builder thread.
enum Job {
    /// Merge these trees of the bucket starting at `start`.
    Merge { start: i64, trees: Vec<Tree> },
    /// Free these trees. Freeing an R-tree walks all its nodes: 8.2 M entries' chunks took 130 ms
    /// and their merged tree 158 ms on this machine, a pause of the ingest (and of every alert
    /// behind it) if done there when a merge comes back or a bucket ages out.
    Free(Vec<Tree>),
}

/// The builder's answer: the first `merged` trees of bucket `start`, as one.
struct Merged {
    start: i64,
    merged: usize,
    tree: RTree<Entry>,
}

/// The thread that merges closed buckets' chunks and frees trees no longer used, so neither a
/// bulk build nor a free of millions of entries runs on the ingest path. It ends when the index
/// is dropped.
#[derive(Debug)]
struct Builder {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Merged>,
}

impl Builder {
    fn spawn() -> Self {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("trajectory-builder".into())
            .spawn(move || {
                for job in job_rx {
                    let (start, trees) = match job {
                        Job::Merge { start, trees } => (start, trees),
                        Job::Free(trees) => {
                            drop(trees);
                            continue;
                        }
                    };
                    let entries: Vec<Entry> =
                        trees.iter().flat_map(|t| t.iter().copied()).collect();
                    let merged = Merged {
                        start,
                        merged: trees.len(),
                        tree: RTree::bulk_load(entries),
                    };
                    // The index still holds these: it hands them back to be freed here.
                    drop(trees);
                    if done_tx.send(merged).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn the trajectory builder thread");
        Self { jobs, done }
    }

    /// Has the builder thread free `trees` (here if it is gone). A tree a query still holds
    /// is freed by whichever drops it last.
    fn free(&self, trees: Vec<Tree>) {
        if !trees.is_empty() {
            let _ = self.jobs.send(Job::Free(trees));
        }
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
    stays: FleetMap<TagId, Vec<Stay>>,
    /// Each tag's latest mobile fix that went into the index.
    fixes: FleetMap<TagId, Fix>,
    /// The tags with stays, and with a fix, by the index bucket they may age out with.
    stays_by_bucket: Calendar<TagId>,
    fixes_by_bucket: Calendar<TagId>,
    segments: usize,
    builder: Builder,
}

impl Trajectories {
    pub fn new(bucket_ms: i64) -> Self {
        Self {
            bucket_ms: bucket_ms.max(1),
            buckets: BTreeMap::new(),
            stays: FleetMap::default(),
            fixes: FleetMap::default(),
            stays_by_bucket: Calendar::new(bucket_ms),
            fixes_by_bucket: Calendar::new(bucket_ms),
            segments: 0,
            builder: Builder::spawn(),
        }
    }

    fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket_ms) * self.bucket_ms
    }

    /// Inserts a segment into every bucket its time span touches.
    fn insert(&mut self, tag: TagId, a: [f64; 3], b: [f64; 3], kind: PieceKind) {
        let (first, last) = (a[2].min(b[2]) as i64, a[2].max(b[2]) as i64);
        let mut bucket = self.bucket_of(first);
        while bucket <= last {
            let local = |p: [f64; 3]| [p[0] as f32, p[1] as f32, (p[2] - bucket as f64) as f32];
            let rect = Rectangle::from_corners(local(a), local(b));
            self.buckets
                .entry(bucket)
                .or_default()
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
        if list.is_empty() {
            self.stays_by_bucket.file(stay.last_ms, tag);
        }
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
                self.fixes_by_bucket.file(t, tag);
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
        let mut found = Vec::new();
        self.for_each_segment_in(lo, hi, |s| found.push(s));
        found
    }

    /// Calls `f` with each segment whose box meets `[lo, hi]` (x, y, t), once each, without
    /// collecting them first.
    pub fn for_each_segment_in(&self, lo: [f64; 3], hi: [f64; 3], mut f: impl FnMut(Segment)) {
        let (first, last) = (self.bucket_of(lo[2] as i64), self.bucket_of(hi[2] as i64));
        for (&start, bucket) in self.buckets.range(first..=last) {
            let (l, h) = local_box(lo, hi, start);
            let envelope = AABB::from_corners(l, h);
            let pending = bucket
                .pending
                .iter()
                .filter(|e| e.envelope().intersects(&envelope));
            for e in bucket
                .trees
                .iter()
                .flat_map(|t| t.locate_in_envelope_intersecting(&envelope))
                .chain(pending)
            {
                // A segment spanning buckets is in each: report it from the first one queried.
                if e.geom().envelope().lower()[2] < 0.0 && start > first {
                    continue;
                }
                f(Segment::from_entry(e, start));
            }
        }
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

    /// Closes buckets that ended before `closed_before` (their chunks go to the builder to be
    /// merged), takes in merged trees, and drops buckets that ended before `keep_after`, with
    /// the stays that ended before it.
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
                self.builder.free(bucket.trees);
            }
        }
        self.take_merged();
        for (&start, bucket) in self.buckets.iter_mut() {
            if !bucket.closed && start + bucket_ms <= closed_before {
                bucket.closed = true;
                bucket.build_chunk();
            }
            if bucket.wants_merge() {
                bucket.merging = bucket.trees.len();
                let job = Job::Merge {
                    start,
                    trees: bucket.trees.clone(),
                };
                if self.builder.jobs.send(job).is_err() {
                    bucket.merging = 0;
                }
            }
        }
    }

    /// Forgets the stays and fixes that ended before `keep_after`, looking at up to `budget`
    /// tags of each that may have (a walk of every tag held the ingest for 100 ms at 3 M tags).
    pub fn forget_before(&mut self, keep_after: i64, budget: usize) {
        for tag in self.stays_by_bucket.take_due(keep_after, budget) {
            let Some(list) = self.stays.get_mut(&tag) else {
                continue;
            };
            list.retain(|s| s.last_ms >= keep_after);
            match list.iter().map(|s| s.last_ms).max() {
                Some(last) => self.stays_by_bucket.refile(last, keep_after, tag),
                None => {
                    self.stays.remove(&tag);
                }
            }
        }
        for tag in self.fixes_by_bucket.take_due(keep_after, budget) {
            match self.fixes.get(&tag) {
                Some(fix) if fix.t >= keep_after => {
                    self.fixes_by_bucket.refile(fix.t, keep_after, tag);
                }
                Some(_) => {
                    self.fixes.remove(&tag);
                }
                None => {}
            }
        }
    }

    /// Puts the builder's merged trees in place of the chunks they were built from. Cheap when
    /// there are none: called on every flush.
    pub fn take_merged(&mut self) {
        while let Ok(merged) = self.builder.done.try_recv() {
            self.put_merged(merged);
        }
    }

    fn put_merged(&mut self, merged: Merged) {
        // A bucket dropped meanwhile has nothing to replace.
        if let Some(bucket) = self.buckets.get_mut(&merged.start) {
            let chunks: Vec<Tree> = bucket
                .trees
                .splice(..merged.merged, [Arc::new(merged.tree)])
                .collect();
            bucket.merging = 0;
            self.builder.free(chunks);
        } else {
            self.builder.free(vec![Arc::new(merged.tree)]);
        }
    }

    /// Waits until every merge sent to the builder is back in place (for tests and benches
    /// that want the final shape of the index).
    pub fn settle(&mut self) {
        while self.buckets.values().any(|b| b.merging > 0) {
            match self.builder.done.recv() {
                Ok(merged) => self.put_merged(merged),
                Err(_) => break,
            }
        }
    }

    /// Index entries held (a segment spanning buckets counts once per bucket).
    pub fn len(&self) -> usize {
        self.segments
    }

    pub fn is_empty(&self) -> bool {
        self.segments == 0
    }

    /// Buckets held, and how many are closed.
    pub fn buckets(&self) -> (usize, usize) {
        (
            self.buckets.len(),
            self.buckets.values().filter(|b| b.closed).count(),
        )
    }

    /// Trees held over all buckets: one per closed bucket once merged.
    pub fn trees(&self) -> usize {
        self.buckets.values().map(|b| b.trees.len()).sum()
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
        assert_eq!(
            index.stays(TagId(1), 0, 10_000).len(),
            1,
            "forgotten in slices, later"
        );
        index.forget_before(5_000, 1);
        assert!(index.stays(TagId(1), 0, 10_000).is_empty());
    }

    #[test]
    fn a_busy_bucket_grows_in_chunks_and_is_merged_into_one_tree_once_closed() {
        let mut index = Trajectories::new(600_000);
        let n = 3 * CHUNK + 100;
        for i in 0..n {
            let x = (i % 1_000) as f64 * 10.0;
            let t = (i as i64 * 500_000) / n as i64;
            index.close(TagId(i as u32), stay(i as i64, 1, x, t, t + 1_000));
        }
        let query = |index: &Trajectories| {
            let mut tags: Vec<u32> = index
                .segments_in([95.0, -1.0, 100_000.0], [205.0, 1.0, 200_000.0])
                .iter()
                .map(|s| s.tag.0)
                .collect();
            tags.sort_unstable();
            tags
        };
        assert_eq!(
            index.trees(),
            3,
            "three full chunks built, 100 entries pending"
        );
        let before = query(&index);
        // Stays at x = 100 or 200 (i % 1000 in 10..=20) with t in the window: about 1 in 90.
        assert!(before.len() > 100, "{}", before.len());
        index.maintain(600_000, 0);
        index.settle();
        assert_eq!(index.trees(), 1, "merged by the builder");
        assert_eq!(index.len(), n);
        assert_eq!(
            query(&index),
            before,
            "same answer from chunks and merged tree"
        );
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
