//! # Station watch: stations that fall silent or whose clocks drift.
//!
//! Every authenticated frame (detections or STATUS) tells the tracker its station is alive and
//! what its clock says. A frame's clock can only be trusted to be *behind* when the station had
//! nothing queued (a STATUS frame with an empty backlog): any other frame may be an old one resent
//! from the backlog after an outage. A clock *ahead* of the server's is wrong whatever the frame.
//! A station silent for longer than the configured time raises
//! `station_silent` once, and again only after it has been heard in between; a station whose
//! clock is off by more than the limit raises `station_clock_skew` once per episode.
//!
//! The server's clock is the only "now": a frame from a station whose clock is off by more than
//! the limit is still applied, at the time the server can trust ([`StationWatch::correction`]),
//! so one bad clock neither moves other vehicles' time nor places a tag where it was not.

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
    /// The station's clock minus the server's, as last measured: exactly by a fresh frame, at
    /// least by a frame from the future.
    offset_ms: i64,
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
            offset_ms: 0,
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
            offset_ms: 0,
        });
        clock.last_frame_ms = clock.last_frame_ms.max(now_ms);
        clock.heard = true;
        clock.silent_alerted = false;
        let skew_ms = sent_at_ms.saturating_sub(now_ms);
        if skew_ms < 0 && !fresh {
            return None; // maybe a resent frame: says nothing about the clock
        }
        clock.offset_ms = if fresh {
            skew_ms
        } else {
            clock.offset_ms.max(skew_ms)
        };
        let skewed = skew_ms.abs() > self.skew_limit_ms;
        let newly = skewed && !clock.skewed;
        clock.skewed = skewed;
        newly.then_some(Finding::Skewed { station, skew_ms })
    }

    /// How far to move back the times of a frame from `station` built at `sent_at_ms` by its
    /// clock and applied at server time `now_ms` (call [`StationWatch::heard`] first): 0 while
    /// its clock is within the limit; else its measured offset, but never so far that the frame
    /// would have been built after it arrived (a clock put right since, or one that just jumped
    /// ahead). Negative for a clock known to be behind: its frames move forward to when they
    /// were truly built.
    pub fn correction(&self, station: StationId, sent_at_ms: i64, now_ms: i64) -> i64 {
        let known = self
            .clocks
            .get(&station)
            .map_or(0, |c| c.offset_ms)
            .clamp(-i64::MAX, i64::MAX);
        let known = if known.abs() > self.skew_limit_ms {
            known
        } else {
            0
        };
        let ahead = sent_at_ms.saturating_sub(now_ms);
        if known != 0 || ahead > self.skew_limit_ms {
            known.max(ahead)
        } else {
            0
        }
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

    #[test]
    fn frames_of_a_clock_off_by_more_than_the_limit_move_to_the_servers_time() {
        let mut watch = StationWatch::new(90_000, 120_000);
        let now = 10_000_000;
        // Within the limit (a minute ahead or behind): times as the station gave them.
        watch.heard(S, now + 60_000, now, false);
        assert_eq!(watch.correction(S, now + 60_000, now), 0);
        assert_eq!(watch.correction(S, now - 60_000, now), 0);
        // Ten minutes ahead: this frame and an older one from its backlog move back ten minutes.
        watch.heard(S, now + 600_000, now, false);
        assert_eq!(watch.correction(S, now + 600_000, now), 600_000);
        assert_eq!(
            watch.correction(S, now + 300_000, now),
            600_000,
            "built five minutes ago by the same clock"
        );
        // The largest time the wire allows: built no later than it arrived.
        let other = StationId(5);
        watch.heard(other, i64::MAX, now, false);
        assert_eq!(i64::MAX - watch.correction(other, i64::MAX, now), now);
        // Ten minutes behind, as a fresh STATUS measures it: its frames move forward, never
        // past the server's now.
        let behind = StationId(6);
        watch.heard(behind, now - 600_000, now, true);
        assert_eq!(watch.correction(behind, now - 600_000, now), -600_000);
        assert_eq!(
            watch.correction(behind, now - 900_000, now),
            -600_000,
            "five minutes of backlog"
        );
        // Its clock jumps right: a frame stamped now is not moved into the future.
        assert_eq!(watch.correction(behind, now, now), 0);
        // And once a fresh STATUS says so, nothing is moved.
        watch.heard(behind, now + 1_000, now + 1_000, true);
        assert_eq!(watch.correction(behind, now - 5_000, now + 1_000), 0);
    }
}
