//! # Mobile readers: where each patrol car or handheld was, over time.
//!
//! A mobile reader sends its GPS position in every frame (`POSITION` in `PROTOCOL.md`). Its
//! surveyed place (where it was provisioned, often its precinct) says nothing about where it
//! heard a tag, so every answer about a read it made (location, track, area and radius queries,
//! the station list) places that read where the reader was at the read's time: the fix of the
//! frame that reported it. The tracker records each reader's fixes here; the ingest hands new ones
//! to the store with each flush (`reader_fixes`), so answers from the store place them the same
//! way, and a frame replayed from the journal records the same fix again (the store keeps one).

use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use tagwatch_model::{GeoPoint, ReaderFix, StationId};

/// A reader that moved less than this since its last kept fix, and reported less than
/// [`KEEP_EVERY_MS`] after it, adds no fix: a parked patrol car reporting every two seconds
/// would otherwise write 1,800 rows an hour saying the same place.
pub const MIN_STEP_M: f64 = 10.0;
pub const KEEP_EVERY_MS: i64 = 60_000;

/// Every mobile reader's recent fixes, oldest first, and the fixes not yet handed to the store.
#[derive(Debug, Default)]
pub struct Readers {
    fixes: HashMap<StationId, VecDeque<(i64, GeoPoint)>>,
    unsaved: Vec<ReaderFix>,
}

impl Readers {
    /// The reader `station` was at `position` at `at_ms`. Returns true the first time this
    /// station is seen to be mobile.
    pub fn record(&mut self, station: StationId, at_ms: i64, position: GeoPoint) -> bool {
        let first = !self.fixes.contains_key(&station);
        let list = self.fixes.entry(station).or_default();
        let at = list.partition_point(|&(t, _)| t <= at_ms);
        // A fix close to its predecessor in place and time adds nothing (a late frame's fix
        // is compared with the one before it in time, not with the newest).
        if let Some(&(t, p)) = at.checked_sub(1).and_then(|i| list.get(i)) {
            if t == at_ms
                || (at_ms - t < KEEP_EVERY_MS
                    && crate::spatial::distance_m(p, position) < MIN_STEP_M)
            {
                return first;
            }
        }
        list.insert(at, (at_ms, position));
        self.unsaved.push(ReaderFix {
            station,
            at_ms,
            position,
        });
        first
    }

    /// Puts back a fix read from the store after a restart (it is saved already).
    pub fn restore(&mut self, fix: ReaderFix) {
        let list = self.fixes.entry(fix.station).or_default();
        let at = list.partition_point(|&(t, _)| t < fix.at_ms);
        if list.get(at).is_none_or(|&(t, _)| t != fix.at_ms) {
            list.insert(at, (fix.at_ms, fix.position));
        }
    }

    pub fn is_mobile(&self, station: StationId) -> bool {
        self.fixes.contains_key(&station)
    }

    /// Where the reader was when it heard a tag at `t`: the fix of the frame that reported the
    /// read (its first fix at or after `t`: a frame is sent after the reads it carries), or its
    /// latest fix when none is later. The store places stored visits by the same rule.
    pub fn at(&self, station: StationId, t: i64) -> Option<GeoPoint> {
        let list = self.fixes.get(&station)?;
        let i = list.partition_point(|&(ft, _)| ft < t);
        list.get(i).or(list.back()).map(|&(_, p)| p)
    }

    /// Mobile readers and their latest fix.
    pub fn latest(&self) -> impl Iterator<Item = (StationId, i64, GeoPoint)> + '_ {
        self.fixes
            .iter()
            .filter_map(|(&s, list)| list.back().map(|&(t, p)| (s, t, p)))
    }

    /// Fixes recorded since the last call, for the store.
    pub fn take_unsaved(&mut self) -> Vec<ReaderFix> {
        std::mem::take(&mut self.unsaved)
    }

    /// Forgets fixes older than `keep_after_ms`, keeping each reader's latest (it still says
    /// where the reader is, and a reader stays known as mobile).
    pub fn prune(&mut self, keep_after_ms: i64) {
        for list in self.fixes.values_mut() {
            while list.len() > 1 && list.front().is_some_and(|&(t, _)| t < keep_after_ms) {
                list.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64) -> GeoPoint {
        GeoPoint { lat, lon: 116.0 }
    }

    #[test]
    fn a_read_is_placed_at_the_fix_of_the_frame_that_reported_it() {
        let mut r = Readers::default();
        let reader = StationId(9);
        assert!(r.record(reader, 10_000, p(23.00)));
        assert!(!r.record(reader, 20_000, p(23.01)));
        assert!(!r.record(reader, 30_000, p(23.02)));
        assert_eq!(r.at(reader, 0), Some(p(23.00)));
        assert_eq!(r.at(reader, 10_000), Some(p(23.00)));
        assert_eq!(r.at(reader, 11_000), Some(p(23.01)));
        assert_eq!(r.at(reader, 20_000), Some(p(23.01)));
        assert_eq!(r.at(reader, 99_000), Some(p(23.02)));
        assert_eq!(r.at(StationId(1), 10_000), None);
        assert!(r.is_mobile(reader) && !r.is_mobile(StationId(1)));
    }

    #[test]
    fn a_parked_reader_keeps_one_fix_a_minute_and_a_late_fix_lands_in_its_place() {
        let mut r = Readers::default();
        let reader = StationId(9);
        for t in (0..120_000).step_by(2_000) {
            r.record(reader, t, p(23.0));
        }
        // Kept: t = 0 and t = 60 s (one a minute while parked).
        assert_eq!(r.take_unsaved().len(), 2);
        r.record(reader, 130_000, p(23.01));
        r.record(reader, 125_000, p(23.005));
        assert_eq!(r.at(reader, 124_000), Some(p(23.005)));
        assert_eq!(r.at(reader, 126_000), Some(p(23.01)));
        assert_eq!(r.take_unsaved().len(), 2);
        r.prune(126_000);
        assert_eq!(r.at(reader, 0), Some(p(23.01)));
        assert_eq!(
            r.latest().collect::<Vec<_>>(),
            vec![(reader, 130_000, p(23.01))]
        );
    }
}
