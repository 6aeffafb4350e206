//! A GPS tracker on the vehicle, as the device listener hands it over: a mobile reader (a device
//! station) that hears only its own vehicle, at each fix, every 10-30 s.

use super::*;
use tagwatch_model::{tag_flags, AlertKind, SessionId, DEVICE_STATIONS_FROM};

const DEVICE: StationId = StationId(DEVICE_STATIONS_FROM);
const TAG: TagId = TagId(7);

/// Fix `seq` at `lon` on the parallel 23° N, at `t`, carrying `flags`.
fn fix(tracker: &mut Tracker, seq: u32, t: i64, lon: f64, flags: u8) -> Vec<Alert> {
    let d = Detection {
        tag: TAG,
        station: DEVICE,
        seen_at_ms: t,
        rssi: -30,
        reads: 1,
        tag_flags: flags,
    };
    let obs = Observation {
        frame: FrameKey {
            station: DEVICE,
            session: SessionId(1),
            seq,
        },
        sent_at_ms: t,
        reader_position: Some(GeoPoint { lat: 23.0, lon }),
        detections: &[d],
    };
    tracker.apply(obs, t)
}

fn kinds(alerts: &[Alert]) -> Vec<AlertKind> {
    alerts.iter().map(|a| a.kind).collect()
}

/// 0.001° of longitude at 23° N is about 102 m.
const DEG_PER_100_M: f64 = 0.000_98;

#[test]
fn a_stolen_vehicle_with_a_tracker_is_alerted_again_every_500_m_not_every_fix() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.report_stolen(TAG, CaseId(4));
    let mut alerted_at = Vec::new();
    // 40 fixes 15 s apart, 100 m each: one visit of the device station (the gap is 30 s), 4 km.
    for i in 0..40u32 {
        let t = 1_000_000 + i64::from(i) * 15_000;
        let lon = 116.0 + f64::from(i) * DEG_PER_100_M;
        let alerts = fix(&mut tracker, i + 1, t, lon, 0);
        if kinds(&alerts).contains(&AlertKind::StolenSighting) {
            alerted_at.push(i);
        }
    }
    // The first fix, then each time it has gone 500 m (five fixes) since the last alert.
    assert_eq!(alerted_at, vec![0, 5, 10, 15, 20, 25, 30, 35]);
}

#[test]
fn a_parked_stolen_vehicle_reporting_every_15_s_is_alerted_once() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.report_stolen(TAG, CaseId(4));
    let alerts: usize = (0..20u32)
        .map(|i| {
            let alerts = fix(
                &mut tracker,
                i + 1,
                1_000_000 + i64::from(i) * 15_000,
                116.0,
                0,
            );
            kinds(&alerts)
                .iter()
                .filter(|k| **k == AlertKind::StolenSighting)
                .count()
        })
        .sum();
    assert_eq!(alerts, 1);
}

#[test]
fn vibration_of_an_armed_vehicle_alerts_where_it_is_parked_and_movement_alone_does_not() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.arm(
        TAG,
        GeoPoint {
            lat: 23.0,
            lon: 116.0,
        },
    );
    assert!(
        fix(&mut tracker, 1, 1_000_000, 116.0, tag_flags::MOVING).is_empty(),
        "still home"
    );
    let shaken = fix(&mut tracker, 2, 1_015_000, 116.0, tag_flags::VIBRATION);
    assert_eq!(kinds(&shaken), vec![AlertKind::ArmedMoved]);
    assert!(
        fix(&mut tracker, 3, 1_030_000, 116.0, tag_flags::VIBRATION).is_empty(),
        "once per visit"
    );
    tracker.command(Command::Disarmed { tag: TAG }, 0);
    assert!(
        fix(&mut tracker, 4, 2_000_000, 116.0, tag_flags::VIBRATION).is_empty(),
        "disarmed"
    );
}

#[test]
fn a_power_cut_alerts_once_per_visit_and_again_in_the_next() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    let first = fix(&mut tracker, 1, 1_000_000, 116.0, tag_flags::POWER_CUT);
    assert_eq!(kinds(&first), vec![AlertKind::PowerCut]);
    assert_eq!(first[0].station, DEVICE);
    assert_eq!(
        first[0].position,
        GeoPoint {
            lat: 23.0,
            lon: 116.0
        },
        "at the fix"
    );
    assert!(fix(&mut tracker, 2, 1_010_000, 116.0, tag_flags::POWER_CUT).is_empty());
    // An hour later: a new visit of the device station.
    let later = fix(&mut tracker, 3, 4_600_000, 116.0, tag_flags::POWER_CUT);
    assert_eq!(kinds(&later), vec![AlertKind::PowerCut]);
}

#[test]
fn a_tracker_asleep_or_sending_old_fixes_is_not_a_silent_or_skewed_station() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    // A fix from two hours before the server's clock (stored while out of coverage).
    let now = 10_000_000;
    let d = Detection {
        tag: TAG,
        station: DEVICE,
        seen_at_ms: now - 7_200_000,
        rssi: -30,
        reads: 1,
        tag_flags: 0,
    };
    let obs = Observation {
        frame: FrameKey {
            station: DEVICE,
            session: SessionId(1),
            seq: 1,
        },
        sent_at_ms: now - 7_200_000,
        reader_position: Some(GeoPoint {
            lat: 23.0,
            lon: 116.0,
        }),
        detections: &[d],
    };
    let alerts = tracker.apply(obs, now);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(
        tracker.last_seen(TAG).map(|l| l.seen_at_ms),
        Some(now - 7_200_000),
        "applied at its own time"
    );
    // Silent for an hour: no station alert.
    assert!(tracker.tick(now + 3_600_000).is_empty());
}
