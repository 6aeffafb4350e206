//! # Station watch: stations that fall silent, come back, drift, or report trouble.
//!
//! Every authenticated frame (detections or STATUS) tells the tracker its station is alive and
//! what its clock says. A frame's clock can only be trusted to be *behind* when the station had
//! nothing queued (a STATUS frame with an empty backlog): any other frame may be an old one resent
//! from the backlog after an outage. A clock *ahead* of the server's is wrong whatever the frame.
//! A station silent for longer than the configured time raises
//! `station_silent` once, and again only after it has been heard in between; a station whose
//! clock is off by more than the limit raises `station_clock_skew` once per episode. A silent
//! station heard again raises `station_back`. Its heartbeats (STATUS) raise, once per episode,
//! `station_power_fault` (the fault bit), `station_overheat` (at [`OVERHEAT_C`], cleared below
//! [`COOLED_C`]) and `station_backlog` (a backlog of [`BACKLOG_ALERT_FRAMES`] or more that is
//! still growing: its uplink is failing and sightings wait in its flash; cleared when it drains).
//!
//! The server's clock is the only "now": a frame from a station whose clock is off by more than
//! the limit is still applied, at the time the server can trust ([`StationWatch::correction`]),
//! so one bad clock neither moves other vehicles' time nor places a tag where it was not.

use rustc_hash::FxHashMap as HashMap;
use tagwatch_model::StationId;

/// Commercial-grade electronics are rated to 70 °C: a station at that temperature is failing.
pub const OVERHEAT_C: i8 = 70;
/// Five degrees of hysteresis, so a station hovering at the limit raises one alert, not many.
pub const COOLED_C: i8 = 65;
/// Five minutes of frames at one a second waiting in the station's flash.
pub const BACKLOG_ALERT_FRAMES: u32 = 300;

/// What a STATUS heartbeat says about the station's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub backlog: u32,
    pub temp_c: i8,
    pub power_fault: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Trouble {
    power_fault: bool,
    overheated: bool,
    backlog_alerted: bool,
    last_backlog: u32,
}

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
    trouble: Trouble,
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
    /// Heard again after it was reported silent (since `last_frame_ms`).
    Back {
        station: StationId,
        last_frame_ms: i64,
    },
    /// Its heartbeat reports a power fault.
    PowerFault { station: StationId },
    /// Its heartbeat reports [`OVERHEAT_C`] or more.
    Overheated { station: StationId, temp_c: i8 },
    /// Its backlog is [`BACKLOG_ALERT_FRAMES`] or more and growing.
    Backlog { station: StationId, frames: u32 },
}

impl Finding {
    pub fn station(&self) -> StationId {
        match *self {
            Finding::Silent { station, .. }
            | Finding::Skewed { station, .. }
            | Finding::Back { station, .. }
            | Finding::PowerFault { station }
            | Finding::Overheated { station, .. }
            | Finding::Backlog { station, .. } => station,
        }
    }
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
            trouble: Trouble::default(),
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
    /// when it was built just before it was sent (a STATUS frame with an empty backlog). What
    /// it shows (the station is back, its clock is off) goes into `found`.
    pub fn heard(
        &mut self,
        station: StationId,
        sent_at_ms: i64,
        now_ms: i64,
        fresh: bool,
        found: &mut Vec<Finding>,
    ) {
        let clock = self.clocks.entry(station).or_insert(Clock {
            last_frame_ms: now_ms,
            heard: true,
            silent_alerted: false,
            skewed: false,
            offset_ms: 0,
            trouble: Trouble::default(),
        });
        if clock.silent_alerted {
            found.push(Finding::Back {
                station,
                last_frame_ms: clock.last_frame_ms,
            });
        }
        clock.last_frame_ms = clock.last_frame_ms.max(now_ms);
        clock.heard = true;
        clock.silent_alerted = false;
        let skew_ms = sent_at_ms.saturating_sub(now_ms);
        if skew_ms < 0 && !fresh {
            return; // maybe a resent frame: says nothing about the clock
        }
        clock.offset_ms = if fresh {
            skew_ms
        } else {
            clock.offset_ms.max(skew_ms)
        };
        let skewed = skew_ms.abs() > self.skew_limit_ms;
        if skewed && !clock.skewed {
            found.push(Finding::Skewed { station, skew_ms });
        }
        clock.skewed = skewed;
    }

    /// A heartbeat from `station` (after [`StationWatch::heard`]): trouble it reports for the
    /// first time in an episode goes into `found`.
    pub fn heartbeat(&mut self, station: StationId, beat: Heartbeat, found: &mut Vec<Finding>) {
        let Some(clock) = self.clocks.get_mut(&station) else {
            return;
        };
        let t = &mut clock.trouble;
        if beat.power_fault && !t.power_fault {
            found.push(Finding::PowerFault { station });
        }
        t.power_fault = beat.power_fault;
        if beat.temp_c >= OVERHEAT_C && !t.overheated {
            t.overheated = true;
            found.push(Finding::Overheated {
                station,
                temp_c: beat.temp_c,
            });
        } else if beat.temp_c < COOLED_C {
            t.overheated = false;
        }
        let growing = beat.backlog >= BACKLOG_ALERT_FRAMES && beat.backlog > t.last_backlog;
        if growing && !t.backlog_alerted {
            t.backlog_alerted = true;
            found.push(Finding::Backlog {
                station,
                frames: beat.backlog,
            });
        } else if beat.backlog == 0 {
            t.backlog_alerted = false;
        }
        t.last_backlog = beat.backlog;
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
        found.sort_by_key(Finding::station);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StationId = StationId(4);

    fn heard(
        watch: &mut StationWatch,
        station: StationId,
        sent_at_ms: i64,
        now_ms: i64,
        fresh: bool,
    ) -> Vec<Finding> {
        let mut found = Vec::new();
        watch.heard(station, sent_at_ms, now_ms, fresh, &mut found);
        found
    }

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
        assert_eq!(
            heard(&mut watch, S, 300_000, 300_000, true),
            vec![Finding::Back {
                station: S,
                last_frame_ms: 0
            }],
            "heard again: it is back"
        );
        assert_eq!(heard(&mut watch, S, 301_000, 301_000, true), vec![], "once");
        assert!(watch.tick(350_000).is_empty());
        assert_eq!(watch.tick(400_000).len(), 1, "silent again");
    }

    #[test]
    fn a_skewed_clock_is_reported_once_per_episode() {
        let mut watch = StationWatch::new(90_000, 120_000);
        assert_eq!(
            heard(&mut watch, S, 1_000_000, 1_100_000, true),
            vec![],
            "100 s behind: within"
        );
        assert_eq!(
            heard(&mut watch, S, 1_000_000, 1_200_001, false),
            vec![],
            "maybe a resent frame"
        );
        assert_eq!(
            heard(&mut watch, S, 1_000_000, 1_200_001, true),
            vec![Finding::Skewed {
                station: S,
                skew_ms: -200_001
            }]
        );
        assert_eq!(
            heard(&mut watch, S, 1_000_000, 1_300_000, true),
            vec![],
            "still skewed"
        );
        assert_eq!(
            heard(&mut watch, S, 1_400_000, 1_400_000, true),
            vec![],
            "fixed"
        );
        assert!(
            matches!(
                heard(&mut watch, S, 1_600_000, 1_450_000, false).as_slice(),
                [Finding::Skewed {
                    skew_ms: 150_000,
                    ..
                }]
            ),
            "ahead: wrong whatever the frame"
        );
    }

    #[test]
    fn frames_of_a_clock_off_by_more_than_the_limit_move_to_the_servers_time() {
        let mut watch = StationWatch::new(90_000, 120_000);
        let now = 10_000_000;
        // Within the limit (a minute ahead or behind): times as the station gave them.
        heard(&mut watch, S, now + 60_000, now, false);
        assert_eq!(watch.correction(S, now + 60_000, now), 0);
        assert_eq!(watch.correction(S, now - 60_000, now), 0);
        // Ten minutes ahead: this frame and an older one from its backlog move back ten minutes.
        heard(&mut watch, S, now + 600_000, now, false);
        assert_eq!(watch.correction(S, now + 600_000, now), 600_000);
        assert_eq!(
            watch.correction(S, now + 300_000, now),
            600_000,
            "built five minutes ago by the same clock"
        );
        // The largest time the wire allows: built no later than it arrived.
        let other = StationId(5);
        heard(&mut watch, other, i64::MAX, now, false);
        assert_eq!(i64::MAX - watch.correction(other, i64::MAX, now), now);
        // Ten minutes behind, as a fresh STATUS measures it: its frames move forward, never
        // past the server's now.
        let behind = StationId(6);
        heard(&mut watch, behind, now - 600_000, now, true);
        assert_eq!(watch.correction(behind, now - 600_000, now), -600_000);
        assert_eq!(
            watch.correction(behind, now - 900_000, now),
            -600_000,
            "five minutes of backlog"
        );
        // Its clock jumps right: a frame stamped now is not moved into the future.
        assert_eq!(watch.correction(behind, now, now), 0);
        // And once a fresh STATUS says so, nothing is moved.
        heard(&mut watch, behind, now + 1_000, now + 1_000, true);
        assert_eq!(watch.correction(behind, now - 5_000, now + 1_000), 0);
    }

    #[test]
    fn heartbeats_report_power_heat_and_a_growing_backlog_once_per_episode() {
        let mut watch = StationWatch::new(90_000, 120_000);
        heard(&mut watch, S, 0, 0, true);
        let mut beat = |backlog, temp_c, power_fault| {
            let mut found = Vec::new();
            let beat = Heartbeat {
                backlog,
                temp_c,
                power_fault,
            };
            watch.heartbeat(S, beat, &mut found);
            found
        };
        assert_eq!(beat(0, 40, false), vec![], "healthy");
        assert_eq!(beat(0, 40, true), vec![Finding::PowerFault { station: S }]);
        assert_eq!(beat(0, 40, true), vec![], "the same fault");
        assert_eq!(beat(0, 40, false), vec![]);
        assert_eq!(
            beat(0, 40, true),
            vec![Finding::PowerFault { station: S }],
            "a new fault"
        );
        assert_eq!(
            beat(0, 71, false),
            vec![Finding::Overheated {
                station: S,
                temp_c: 71
            }]
        );
        assert_eq!(beat(0, 68, false), vec![], "still hot");
        assert_eq!(beat(0, 71, false), vec![], "not cooled down in between");
        assert_eq!(beat(0, 60, false), vec![]);
        assert_eq!(beat(0, 70, false).len(), 1, "hot again");
        assert_eq!(beat(299, 40, false), vec![], "under five minutes of frames");
        assert_eq!(
            beat(400, 40, false),
            vec![Finding::Backlog {
                station: S,
                frames: 400
            }]
        );
        assert_eq!(beat(900, 40, false), vec![], "the same episode");
        assert_eq!(beat(500, 40, false), vec![], "draining");
        assert_eq!(beat(600, 40, false), vec![], "not drained in between");
        assert_eq!(beat(0, 40, false), vec![], "drained");
        assert_eq!(beat(350, 40, false).len(), 1, "growing again");
    }
}
