//! # The simulated city fed to a tracker in-process, as the gateway would feed it.
//!
//! Each tick's reads become one frame per station (in station order), and each frame is applied
//! to the tracker with the server's clock at the tick's end. The truth commands
//! (`tagwatch-truth`, `tagwatch-recovery`) score what the tracker concludes from them.

use std::collections::HashMap;
use tagwatch_model::{
    tag_flags, Alert, Detection, FrameKey, GeoPoint, SessionId, Station, StationId,
};
use tagwatch_sim::city::{City, Read};
use tagwatch_tracker::station_watch::Heartbeat;
use tagwatch_tracker::{Observation, Tracker, TrackerConfig};

/// The truth commands' tick: a beacon is heard at the end of the tick it falls in.
pub const TICK_MS: i64 = 100;

/// A tracker that knows every station of the city.
pub fn tracker_for(city: &City) -> Tracker {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    for s in city.stations() {
        tracker.set_station(&Station {
            id: s.id,
            name: String::new(),
            position: s.position,
        });
    }
    tracker
}

/// One tick's reads as one frame per station, in station order: each detection with whether its
/// vehicle was moving (the `MOVING` flag a tag with an accelerometer sets).
pub fn frames(city: &City, reads: &[Read]) -> Vec<Vec<(Detection, bool)>> {
    let mut by_station: HashMap<usize, Vec<(Detection, bool)>> = HashMap::new();
    for r in reads {
        let detection = Detection {
            tag: r.tag,
            station: city.stations()[r.station_index].id,
            seen_at_ms: r.at_ms,
            rssi: r.rssi,
            reads: 1,
            tag_flags: 0,
        };
        by_station
            .entry(r.station_index)
            .or_default()
            .push((detection, r.moving));
    }
    let mut frames: Vec<_> = by_station.into_values().collect();
    frames.sort_by_key(|f| f[0].0.station);
    frames
}

/// Applies frame number `seq` to the tracker at `now_ms`, with the `MOVING` flag set where the
/// vehicle moved if `moving_flag`, stamped by a station clock `clock_offset_ms` off ours; returns
/// the alerts it raised.
pub fn apply(
    tracker: &mut Tracker,
    seq: u32,
    frame: &[(Detection, bool)],
    moving_flag: bool,
    clock_offset_ms: i64,
    now_ms: i64,
) -> Vec<Alert> {
    let station: StationId = frame[0].0.station;
    let detections: Vec<Detection> = frame
        .iter()
        .map(|&(d, moving)| Detection {
            tag_flags: if moving && moving_flag {
                tag_flags::MOVING
            } else {
                0
            },
            seen_at_ms: d.seen_at_ms + clock_offset_ms,
            ..d
        })
        .collect();
    let obs = Observation {
        frame: FrameKey {
            station,
            session: SessionId(1),
            seq,
        },
        sent_at_ms: now_ms + clock_offset_ms,
        reader_position: None,
        detections: &detections,
    };
    tracker.apply(obs, now_ms)
}

/// Applies a mobile reader's frame number `seq`: what it heard at `at` (its GPS position).
pub fn apply_mobile(
    tracker: &mut Tracker,
    seq: u32,
    at: GeoPoint,
    detections: &[Detection],
    now_ms: i64,
) -> Vec<Alert> {
    let obs = Observation {
        frame: FrameKey {
            station: detections[0].station,
            session: SessionId(1),
            seq,
        },
        sent_at_ms: now_ms,
        reader_position: Some(at),
        detections,
    };
    tracker.apply(obs, now_ms)
}

/// A STATUS heartbeat (nothing queued, nothing wrong) from `station`, whose clock is
/// `clock_offset_ms` off ours: what lets the tracker measure a clock running behind.
pub fn heartbeat(
    tracker: &mut Tracker,
    seq: u32,
    station: StationId,
    clock_offset_ms: i64,
    now_ms: i64,
) -> Vec<Alert> {
    let frame = FrameKey {
        station,
        session: SessionId(1),
        seq,
    };
    let beat = Heartbeat {
        backlog: 0,
        temp_c: 30,
        power_fault: false,
    };
    let mut alerts = Vec::new();
    tracker.heard_status(frame, now_ms + clock_offset_ms, now_ms, beat, &mut alerts);
    alerts
}
