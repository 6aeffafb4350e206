//! # Station watch: stations that fall silent or whose clocks drift.
//!
//! Every authenticated frame (detections or STATUS) tells the tracker its station is alive and
//! what its clock says. A frame's clock can only be trusted to be *behind* when the station had
//! nothing queued (a STATUS frame with an empty backlog): any other frame may be an old one resent
//! from the backlog after an outage. A clock *ahead* of the server's is wrong whatever the frame.
//! A station silent for longer than the configured time raises
//! `station_silent` once, and again only after it has been heard in between; a station whose
//! clock is off by more than the limit raises `station_clock_skew` once per episode.

use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::StationId;

#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Server time of the station's latest frame (or of the watch starting).
    last_frame_ms: i64,
    /// A frame has arrived since the server started.
    heard: bool,
    silent_alerted: bool,
    skewed: bool,
}

/// Something to raise about a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Silent since `last_frame_ms`.
    Silent {
        station: StationId,
        last_frame_ms: i64,
    },
    /// Its clock is `skew_ms` ahead of the server's (negative: behind).
    Skewed { station: StationId, skew_ms: i64 },
}

/// The liveness and clock of every station.
#[derive(Debug)]
pub struct StationWatch {
    silent_after_ms: i64,
    skew_limit_ms: i64,
    clocks: HashMap<StationId, Clock>,
}

impl StationWatch {
    pub fn new(silent_after_ms: i64, skew_limit_ms: i64) -> Self {
        Self {
            silent_after_ms,
            skew_limit_ms,
            clocks: HashMap::default(),
        }
    }

    /// A station to watch, from `now_ms` (a station is given time to speak after a restart).
    pub fn watch(&mut self, station: StationId, now_ms: i64) {
        self.clocks.entry(station).or_insert(Clock {
            last_frame_ms: now_ms,
            heard: false,
            silent_alerted: false,
            skewed: false,
        });
    }

    /// Server time of the latest frame from `station` since the server started, if any.
    pub fn last_frame(&self, station: StationId) -> Option<i64> {
        self.clocks
            .get(&station)
            .filter(|c| c.heard)
            .map(|c| c.last_frame_ms)
    }

    /// A frame from `station`, sent at `sent_at_ms` by its clock, arrived at `now_ms`; `fresh`
    /// when it was built just before it was sent (a STATUS frame with an empty backlog).
    pub fn heard(
        &mut self,
        station: StationId,
        sent_at_ms: i64,
        now_ms: i64,
        fresh: bool,
    ) -> Option<Finding> {
        let clock = self.clocks.entry(station).or_insert(Clock {
            last_frame_ms: now_ms,
            heard: true,
            silent_alerted: false,
            skewed: false,
        });
        clock.last_frame_ms = clock.last_frame_ms.max(now_ms);
        clock.heard = true;
        clock.silent_alerted = false;
        let skew_ms = sent_at_ms.saturating_sub(now_ms);
        if skew_ms < 0 && !fresh {
            return None; // maybe a resent frame: says nothing about the clock
        }
        let skewed = skew_ms.abs() > self.skew_limit_ms;
        let newly = skewed && !clock.skewed;
        clock.skewed = skewed;
        newly.then_some(Finding::Skewed { station, skew_ms })
    }

    /// Stations that have just passed the silence limit at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Finding> {
        let mut found: Vec<Finding> = self
            .clocks
            .iter_mut()
            .filter(|(_, c)| !c.silent_alerted && now_ms - c.last_frame_ms > self.silent_after_ms)
            .map(|(&station, c)| {
                c.silent_alerted = true;
                Finding::Silent {
                    station,
                    last_frame_ms: c.last_frame_ms,
                }
            })
            .collect();
        found.sort_by_key(|f| match f {
            Finding::Silent { station, .. } | Finding::Skewed { station, .. } => *station,
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StationId = StationId(4);

    #[test]
    fn a_silent_station_is_reported_once_per_silence() {
        let mut watch = StationWatch::new(90_000, 120_000);
        watch.watch(S, 0);
        assert!(
            watch.tick(90_000).is_empty(),
            "exactly the limit is not silent"
        );
        let found = watch.tick(90_001);
        assert_eq!(
            found,
            vec![Finding::Silent {
                station: S,
                last_frame_ms: 0
            }]
        );
        assert!(watch.tick(200_000).is_empty(), "once");
        assert_eq!(watch.heard(S, 300_000, 300_000, true), None);
        assert!(watch.tick(350_000).is_empty());
        assert_eq!(watch.tick(400_000).len(), 1, "silent again");
    }

    #[test]
    fn a_skewed_clock_is_reported_once_per_episode() {
        let mut watch = StationWatch::new(90_000, 120_000);
        assert_eq!(
            watch.heard(S, 1_000_000, 1_100_000, true),
            None,
            "100 s behind: within"
        );
        assert_eq!(
            watch.heard(S, 1_000_000, 1_200_001, false),
            None,
            "maybe a resent frame"
        );
        assert_eq!(
            watch.heard(S, 1_000_000, 1_200_001, true),
            Some(Finding::Skewed {
                station: S,
                skew_ms: -200_001
            })
        );
        assert_eq!(
            watch.heard(S, 1_000_000, 1_300_000, true),
            None,
            "still skewed"
        );
        assert_eq!(watch.heard(S, 1_400_000, 1_400_000, true), None, "fixed");
        assert!(
            matches!(
                watch.heard(S, 1_600_000, 1_450_000, false),
                Some(Finding::Skewed {
                    skew_ms: 150_000,
                    ..
                })
            ),
            "ahead: wrong whatever the frame"
        );
    }
}
