//! The tracker's behaviour, through its facade: frames applied, alerts raised, state restored.

use super::*;
use tagwatch_model::{tag_flags, AlertKind, SessionId};

fn station() -> Station {
    Station {
        id: StationId(1),
        name: "north gate".into(),
        position: GeoPoint {
            lat: 23.26,
            lon: 116.59,
        },
    }
}

/// A station on the meridian 116° E at latitude `lat`.
fn station_at(id: u32, lat: f64) -> Station {
    Station {
        id: StationId(id),
        name: String::new(),
        position: GeoPoint { lat, lon: 116.0 },
    }
}

fn frame(seq: u32) -> FrameKey {
    FrameKey {
        station: StationId(1),
        session: SessionId(3),
        seq,
    }
}

fn det(tag: u32, t: i64) -> Detection {
    Detection {
        tag: TagId(tag),
        station: StationId(1),
        seen_at_ms: t,
        rssi: -60,
        reads: 1,
        tag_flags: 0,
    }
}

/// Frame `seq` of station 1 carrying `detections`.
fn observed(seq: u32, detections: &[Detection]) -> Observation<'_> {
    Observation {
        frame: frame(seq),
        sent_at_ms: 0,
        reader_position: None,
        detections,
    }
}

fn apply(tracker: &mut Tracker, seq: u32, detections: &[Detection]) -> Vec<Alert> {
    tracker.apply(observed(seq, detections), 99)
}

#[test]
fn visits_close_in_slices_until_every_due_one_is_closed() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 41);
    tracker.set_station(&station());
    let gap = tracker.config().visit_gap_ms;
    let parked: Vec<Detection> = (1..=50).map(|tag| det(tag, 1_000)).collect();
    apply(&mut tracker, 1, &parked);
    // Much later another tag is heard: the 50 visits' gap is over, the new one's is not.
    apply(&mut tracker, 2, &[det(99, 1_000 + 10 * gap)]);
    let open = |t: &Tracker| t.open_of_tag.len();
    assert_eq!(open(&tracker), 51);
    tracker.close_visits(20);
    assert_eq!(open(&tracker), 31, "20 looked at, 20 closed");
    tracker.close_visits(20);
    tracker.close_visits(20);
    assert_eq!(
        open(&tracker),
        1,
        "only the visit still within its gap stays open"
    );
    assert!(tracker.closing.entries().all(|e| e.0 == TagId(99)));
}

#[test]
fn an_upkeep_step_closes_a_bounded_slice_and_steps_close_every_due_visit() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 41);
    tracker.set_station(&station());
    let gap = tracker.config().visit_gap_ms;
    let due = 2 * UPKEEP_SLICE + 500;
    let parked: Vec<Detection> = (1..=due as u32).map(|tag| det(tag, 1_000)).collect();
    apply(&mut tracker, 1, &parked);
    apply(&mut tracker, 2, &[det(999_999, 1_000 + 10 * gap)]);
    let open = |t: &Tracker| t.open_of_tag.len();
    // The ingest runs a step between slices of frames: each must stay short, whatever is due.
    tracker.upkeep_step();
    assert_eq!(open(&tracker), due + 1 - UPKEEP_SLICE);
    tracker.upkeep_step();
    tracker.upkeep_step();
    assert_eq!(open(&tracker), 1, "three steps close every due visit");
}

#[test]
fn a_stolen_tag_raises_one_alert_per_visit_with_a_deterministic_id() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 41);
    tracker.set_station(&station());
    assert!(
        apply(&mut tracker, 1, &[det(7, 1_000)]).is_empty(),
        "not stolen yet"
    );
    tracker.report_stolen(TagId(7), CaseId(5));
    let alerts = apply(&mut tracker, 2, &[det(8, 2_000), det(7, 2_000)]);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert.seq, 41);
    assert_eq!(alert.id.0, "stolen_sighting-5-7-1-3-2");
    assert_eq!((alert.tag, alert.station), (Some(TagId(7)), StationId(1)));
    assert_eq!(alert.detail.case, Some(5));
    assert_eq!(alert.position, station().position);
    assert_eq!(alert.seen_at_ms, 2_000);
    // Same visit: no second alert. A new visit much later: a new one.
    assert!(apply(&mut tracker, 3, &[det(7, 3_000)]).is_empty());
    let later = apply(&mut tracker, 4, &[det(7, 500_000)]);
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].seq, 42);
    tracker.recovered(TagId(7));
    assert!(apply(&mut tracker, 5, &[det(7, 900_000)]).is_empty());
}

fn ahead(tracker: &mut Tracker, seq: u32, detections: &[Detection]) -> Vec<Alert> {
    tracker.alert_ahead(observed(seq, detections), 99)
}

#[test]
fn an_alert_ahead_is_raised_once_per_visit_and_not_again_when_its_frames_are_applied() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    assert!(
        ahead(&mut tracker, 1, &[det(7, 1_000)]).is_empty(),
        "not stolen"
    );
    tracker.report_stolen(TagId(7), CaseId(5));
    let first = ahead(&mut tracker, 2, &[det(8, 1_000), det(7, 1_000)]);
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].id.0, "stolen_sighting-5-7-1-3-2",
        "the frame's own id"
    );
    assert_eq!(first[0].detail.case, Some(5));
    // The next frames of the same visit arrive before the first is applied: no second alert,
    // also for a sighting more than a visit gap after the first (the one between links them).
    assert!(ahead(&mut tracker, 3, &[det(7, 20_000)]).is_empty());
    assert!(ahead(&mut tracker, 4, &[det(7, 45_000)]).is_empty());
    assert!(
        ahead(&mut tracker, 2, &[det(8, 1_000), det(7, 1_000)]).is_empty(),
        "a copy resent after a BUSY"
    );
    // Applied in any order: nothing more, and the ledger empties.
    assert!(apply(&mut tracker, 4, &[det(7, 45_000)]).is_empty());
    assert!(apply(&mut tracker, 2, &[det(8, 1_000), det(7, 1_000)]).is_empty());
    assert!(apply(&mut tracker, 3, &[det(7, 20_000)]).is_empty());
    assert_eq!(tracker.judged_ahead(), 0);
    // The visit counts as alerted: its next sighting, ahead or applied, raises nothing.
    assert!(ahead(&mut tracker, 5, &[det(7, 50_000)]).is_empty());
    assert!(apply(&mut tracker, 5, &[det(7, 50_000)]).is_empty());
    // A new visit alerts again; so does a late sighting between two visits (a backlog).
    assert_eq!(ahead(&mut tracker, 6, &[det(7, 500_000)]).len(), 1);
    assert_eq!(ahead(&mut tracker, 7, &[det(7, 250_000)]).len(), 1);
    assert!(apply(&mut tracker, 6, &[det(7, 500_000)]).is_empty());
    assert!(apply(&mut tracker, 7, &[det(7, 250_000)]).is_empty());
    assert_eq!(tracker.judged_ahead(), 0);
}

#[test]
fn an_armed_vehicle_heard_away_alerts_ahead_once() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    // Armed where the station is: hearing it there is no alert.
    tracker.arm(TagId(9), station().position);
    assert!(ahead(&mut tracker, 1, &[det(9, 1_000)]).is_empty());
    assert!(apply(&mut tracker, 1, &[det(9, 1_000)]).is_empty());
    let far = GeoPoint {
        lat: station().position.lat + 0.01,
        lon: station().position.lon,
    };
    tracker.arm(TagId(9), far);
    let alerts = ahead(&mut tracker, 2, &[det(9, 500_000)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::ArmedMoved);
    assert!(alerts[0].detail.moved_m.is_some_and(|m| m > 1_000.0));
    assert!(apply(&mut tracker, 2, &[det(9, 500_000)]).is_empty());
    assert!(apply(&mut tracker, 3, &[det(9, 501_000)]).is_empty());
}

#[test]
fn a_panic_button_alerts_ahead_once_per_visit_as_applying_its_frame_would() {
    let pressed = |tag: u32, t: i64, flags: u8| Detection {
        tag_flags: flags,
        ..det(tag, t)
    };
    // Applying the frame alone: what an alert ahead must equal.
    let mut plain = Tracker::new(TrackerConfig::default(), 1, 1);
    plain.set_station(&station());
    let applied = apply(&mut plain, 2, &[pressed(7, 1_000, tag_flags::PANIC)]);
    assert_eq!(applied.len(), 1);

    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    // Any tag's panic button, watched or not; a low battery waits for the frame's turn.
    assert!(tracker.judges_ahead(TagId(7), tag_flags::PANIC));
    assert!(!tracker.judges_ahead(TagId(7), tag_flags::LOW_BATTERY));
    let first = ahead(&mut tracker, 2, &[pressed(7, 1_000, tag_flags::PANIC)]);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, AlertKind::Panic);
    assert_eq!(
        (
            &first[0].id,
            first[0].station,
            first[0].position,
            first[0].seen_at_ms
        ),
        (
            &applied[0].id,
            applied[0].station,
            applied[0].position,
            applied[0].seen_at_ms
        )
    );
    // Held down: the next frames of the visit, resent copies, and applying them raise nothing
    // more; a tamper in the same visit is its own alert.
    assert!(ahead(&mut tracker, 3, &[pressed(7, 5_000, tag_flags::PANIC)]).is_empty());
    assert!(ahead(&mut tracker, 2, &[pressed(7, 1_000, tag_flags::PANIC)]).is_empty());
    let torn = ahead(
        &mut tracker,
        4,
        &[pressed(7, 6_000, tag_flags::PANIC | tag_flags::TAMPER)],
    );
    assert_eq!(torn.len(), 1);
    assert_eq!(torn[0].kind, AlertKind::TagTamper);
    assert!(apply(&mut tracker, 3, &[pressed(7, 5_000, tag_flags::PANIC)]).is_empty());
    assert!(apply(&mut tracker, 2, &[pressed(7, 1_000, tag_flags::PANIC)]).is_empty());
    assert!(apply(
        &mut tracker,
        4,
        &[pressed(7, 6_000, tag_flags::PANIC | tag_flags::TAMPER)]
    )
    .is_empty());
    assert_eq!(tracker.judged_ahead(), 0);
    assert!(ahead(&mut tracker, 5, &[pressed(7, 7_000, tag_flags::PANIC)]).is_empty());
    assert!(apply(&mut tracker, 5, &[pressed(7, 7_000, tag_flags::PANIC)]).is_empty());
    // Pressed again in a new visit: a new alert.
    assert_eq!(
        ahead(&mut tracker, 6, &[pressed(7, 500_000, tag_flags::PANIC)]).len(),
        1
    );
}

#[test]
fn an_alert_ahead_says_what_applying_its_frame_would() {
    // Two trackers that know the same: the tag heard at station 2, then at station 1.
    let setup = || {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station_at(1, 23.0));
        tracker.set_station(&station_at(2, 23.01));
        tracker.report_stolen(TagId(7), CaseId(5));
        let at_2 = Detection {
            station: StationId(2),
            ..det(7, 1_000)
        };
        let obs = Observation {
            frame: FrameKey {
                station: StationId(2),
                session: SessionId(1),
                seq: 1,
            },
            sent_at_ms: 0,
            reader_position: None,
            detections: &[at_2],
        };
        assert_eq!(tracker.apply(obs, 99).len(), 1);
        tracker
    };
    let applied = apply(&mut setup(), 1, &[det(7, 90_000)]);
    let raised = ahead(&mut setup(), 1, &[det(7, 90_000)]);
    assert_eq!(applied.len(), 1);
    assert_eq!(raised.len(), 1);
    let (applied, raised) = (&applied[0], &raised[0]);
    assert_eq!(raised.id, applied.id);
    assert_eq!(
        (raised.kind, raised.station, raised.seen_at_ms),
        (applied.kind, applied.station, applied.seen_at_ms)
    );
    assert_eq!(raised.detail.case, applied.detail.case);
    assert!(applied.detail.heading_deg.is_some(), "{applied:?}");
    assert_eq!(raised.detail.heading_deg, applied.detail.heading_deg);
    assert_eq!(raised.detail.speed_mps, applied.detail.speed_mps);
}

#[test]
fn after_a_restart_a_sighting_alerted_ahead_is_not_alerted_again_when_resent() {
    let mut before = Tracker::new(TrackerConfig::default(), 1, 1);
    before.set_station(&station());
    before.report_stolen(TagId(7), CaseId(5));
    let alerts = ahead(&mut before, 1, &[det(7, 1_000)]);
    assert_eq!(alerts.len(), 1);
    // Stopped before the frame was applied; the alert was stored.
    let mut after = Tracker::new(TrackerConfig::default(), 1, 2);
    after.set_station(&station());
    after.report_stolen(TagId(7), CaseId(5));
    after.restore_alert(&alerts[0]);
    assert!(ahead(&mut after, 1, &[det(7, 1_000)]).is_empty());
    assert!(apply(&mut after, 1, &[det(7, 1_000)]).is_empty());
    assert!(apply(&mut after, 2, &[det(7, 2_000)]).is_empty());
}

#[test]
fn a_restored_alert_covers_its_visit_until_its_own_sighting_is_applied() {
    let mut before = Tracker::new(TrackerConfig::default(), 1, 1);
    before.set_station(&station());
    before.report_stolen(TagId(7), CaseId(5));
    let alerts = ahead(&mut before, 5, &[det(7, 100_000)]);
    assert_eq!(alerts.len(), 1);
    let mut after = Tracker::new(TrackerConfig::default(), 1, 2);
    after.set_station(&station());
    after.report_stolen(TagId(7), CaseId(5));
    after.restore_alert(&alerts[0]);
    // A later frame of the visit comes first and is applied: its visit does not reach back to
    // an earlier resent frame, 45 s before it, which the restored alert's sighting links to it.
    assert!(ahead(&mut after, 6, &[det(7, 120_000)]).is_empty());
    assert!(apply(&mut after, 6, &[det(7, 120_000)]).is_empty());
    assert!(
        ahead(&mut after, 4, &[det(7, 75_000)]).is_empty(),
        "one visit: 75 s, 100 s, 120 s"
    );
    assert!(apply(&mut after, 4, &[det(7, 75_000)]).is_empty());
    assert!(apply(&mut after, 5, &[det(7, 100_000)]).is_empty());
    assert_eq!(after.judged_ahead(), 0);
}

#[test]
fn tag_flags_raise_one_alert_per_flag_per_visit() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    let flagged = |t: i64, flags: u8| Detection {
        tag_flags: flags,
        ..det(7, t)
    };
    let first = apply(
        &mut tracker,
        1,
        &[flagged(1_000, tag_flags::PANIC | tag_flags::MOVING)],
    );
    let kinds: Vec<_> = first.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AlertKind::Panic]);
    assert_eq!(first[0].id.0, "panic-7-1-3-1");
    // Still held in the same visit: nothing new; tamper appears: one more.
    assert!(apply(&mut tracker, 2, &[flagged(2_000, tag_flags::PANIC)]).is_empty());
    let second = apply(
        &mut tracker,
        3,
        &[flagged(3_000, tag_flags::PANIC | tag_flags::TAMPER)],
    );
    assert_eq!(
        second.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![AlertKind::TagTamper]
    );
    // A new visit much later: the held button alerts again; low battery too.
    let later = apply(
        &mut tracker,
        4,
        &[flagged(900_000, tag_flags::PANIC | tag_flags::LOW_BATTERY)],
    );
    let kinds: Vec<_> = later.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AlertKind::Panic, AlertKind::LowBattery]);
    assert!(apply(&mut tracker, 5, &[flagged(901_000, tag_flags::MOVING)]).is_empty());
}

#[test]
fn a_restored_alert_keeps_its_visit_from_alerting_again() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    tracker.report_stolen(TagId(7), CaseId(5));
    let raised = apply(&mut tracker, 1, &[det(7, 1_000)]);
    let visit = tracker.take_changes().upserts[0];

    // A restarted tracker: the visit and the alert come back from the store.
    let mut restarted = Tracker::new(TrackerConfig::default(), 100, 2);
    restarted.set_station(&station());
    restarted.report_stolen(TagId(7), CaseId(5));
    restarted.restore_visit(visit);
    restarted.restore_alert(&raised[0]);
    assert!(apply(&mut restarted, 2, &[det(7, 2_000)]).is_empty());
    // Without the alert restored, the same visit would alert a second time.
    let mut forgetful = Tracker::new(TrackerConfig::default(), 100, 2);
    forgetful.set_station(&station());
    forgetful.report_stolen(TagId(7), CaseId(5));
    forgetful.restore_visit(visit);
    assert_eq!(apply(&mut forgetful, 2, &[det(7, 2_000)]).len(), 1);
}

#[test]
fn last_seen_keeps_the_latest_detection_even_when_frames_arrive_late() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station());
    apply(&mut tracker, 2, &[det(7, 5_000)]);
    apply(&mut tracker, 1, &[det(7, 4_000)]);
    assert_eq!(
        tracker.last_seen(TagId(7)).map(|l| l.seen_at_ms),
        Some(5_000)
    );
    assert_eq!(tracker.last_seen(TagId(8)), None);
}

#[test]
fn an_armed_vehicle_heard_away_from_its_place_alerts_once_per_visit() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    let home = GeoPoint {
        lat: 23.0,
        lon: 116.0,
    };
    let neighbour = GeoPoint {
        lat: 23.002,
        lon: 116.0,
    }; // 223 m
    let away = GeoPoint {
        lat: 23.01,
        lon: 116.0,
    }; // 1.1 km
    tracker.arm(TagId(7), home);
    let heard_at = |tracker: &mut Tracker, place: GeoPoint, t: i64| {
        let obs = Observation {
            frame: frame(u32::try_from(t / 1000).unwrap_or(0)),
            sent_at_ms: 0,
            reader_position: Some(place),
            detections: &[det(7, t)],
        };
        tracker.apply(obs, 0)
    };
    assert!(heard_at(&mut tracker, home, 1_000).is_empty());
    assert!(
        heard_at(&mut tracker, neighbour, 2_000).is_empty(),
        "the overlap is home"
    );
    let moved = heard_at(&mut tracker, away, 200_000);
    assert_eq!(
        moved.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![AlertKind::ArmedMoved]
    );
    let metres = spatial::distance_m(home, away).round();
    assert!((1_000.0..1_200.0).contains(&metres));
    assert_eq!(moved[0].detail.moved_m, Some(metres), "it says how far");
    assert!(
        heard_at(&mut tracker, away, 201_000).is_empty(),
        "same visit"
    );
    tracker.command(Command::Disarmed { tag: TagId(7) }, 0);
    assert!(heard_at(&mut tracker, away, 900_000).is_empty(), "disarmed");
}

#[test]
fn impossible_travel_suggests_a_cloned_tag_and_normal_driving_does_not() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station_at(1, 23.0));
    tracker.set_station(&station_at(2, 23.002)); // 223 m: a neighbour
    tracker.set_station(&station_at(3, 23.05)); // 5.6 km away
                                                // One frame from `station` with one detection of tag 7 at `t`.
    fn heard(tracker: &mut Tracker, station: u32, t: i64) -> Vec<Alert> {
        let detection = Detection {
            station: StationId(station),
            ..det(7, t)
        };
        let frame = FrameKey {
            station: StationId(station),
            session: SessionId(3),
            seq: u32::try_from(t / 1000).unwrap_or(0),
        };
        let obs = Observation {
            frame,
            sent_at_ms: 0,
            reader_position: None,
            detections: &[detection],
        };
        tracker.apply(obs, 0)
    }
    // Neighbours hear it within a second: not a clone. 5.6 km in 5 minutes (67 km/h): fine.
    assert!(heard(&mut tracker, 1, 0).is_empty());
    assert!(heard(&mut tracker, 2, 500).is_empty());
    assert!(heard(&mut tracker, 3, 300_000).is_empty());
    // Back at station 1 ten seconds later: 5.6 km in 10 s is impossible.
    let alerts = heard(&mut tracker, 1, 310_000);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::CloneSuspected);
    assert_eq!(alerts[0].station, StationId(1));
    assert_eq!(alerts[0].id.0, "clone_suspected-7-1-3-310");
    // It says where else the tag was, how far that is and the speed it would take.
    let evidence = alerts[0].detail.clone_of.expect("the other place");
    let metres = spatial::distance_m(station_at(1, 23.0).position, station_at(3, 23.05).position);
    assert_eq!(evidence.station, StationId(3));
    assert_eq!(evidence.distance_m, metres.round());
    assert_eq!(evidence.seconds_apart, 10.0);
    assert_eq!(
        evidence.implied_speed_mps,
        Some((metres / 10.0 * 10.0).round() / 10.0)
    );
    // The clone keeps being heard at 1 and 3 alternately: one alert per visit, not per frame.
    assert_eq!(heard(&mut tracker, 3, 311_000).len(), 1, "at 3 again");
    assert!(
        heard(&mut tracker, 3, 312_000).is_empty(),
        "same visit, same place"
    );
}

#[test]
fn tags_near_a_point_are_found_through_their_stations() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station_at(1, 23.0));
    tracker.set_station(&station_at(2, 23.002)); // ~223 m north
    tracker.set_station(&station_at(3, 23.02)); // ~2.2 km north
    let at = |tag: u32, station: u32, t: i64| Detection {
        station: StationId(station),
        ..det(tag, t)
    };
    fn obs(detections: &[Detection]) -> Observation<'_> {
        Observation {
            frame: frame(1),
            sent_at_ms: 0,
            reader_position: None,
            detections,
        }
    }
    tracker.apply(
        obs(&[at(10, 1, 1_000), at(11, 2, 1_000), at(12, 3, 1_000)]),
        0,
    );
    tracker.apply(obs(&[at(13, 2, 100)]), 0); // heard long ago
                                              // Tag 10 moved to station 2: no longer heard at 1 for longer than the switch silence.
    tracker.apply(obs(&[at(10, 2, 20_000)]), 0);
    let center = GeoPoint {
        lat: 23.0,
        lon: 116.0,
    };
    let near = tracker.tags_near(center, 500.0, 500, 100);
    let tags: Vec<_> = near.iter().map(|(t, l, _)| (t.0, l.station.0)).collect();
    assert_eq!(
        tags,
        vec![(10, 2), (11, 2)],
        "newest first at the nearest station"
    );
    assert!((near[0].2 - 222.6).abs() < 1.0, "{near:?}");
    assert_eq!(
        tracker.tags_near(center, 500.0, 0, 100).len(),
        3,
        "tag 13 too"
    );
    assert_eq!(
        tracker.tags_near(center, 100.0, 0, 100).len(),
        0,
        "none left at 1"
    );
    assert_eq!(tracker.tags_near(center, 5_000.0, 0, 2).len(), 2, "limit");
}

#[test]
fn a_mobile_reader_places_the_alert_at_its_own_position() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.report_stolen(TagId(7), CaseId(1));
    let here = GeoPoint { lat: 1.0, lon: 2.0 };
    let obs = Observation {
        frame: frame(1),
        sent_at_ms: 0,
        reader_position: Some(here),
        detections: &[det(7, 1)],
    };
    let alerts = tracker.apply(obs, 0);
    assert_eq!(alerts[0].position, here);
}

/// A tag heard by a patrol car's reader between two roadside stations: the moves to and
/// from the car teach the predictor nothing (no vehicle goes "next" to a patrol car).
#[test]
fn moves_to_and_from_a_mobile_reader_are_not_learned() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    for (id, lat) in [(1, 23.0), (2, 23.01), (3, 23.02)] {
        tracker.set_station(&station_at(id, lat));
    }
    let moving = |station: u32, t: i64| Detection {
        station: StationId(station),
        tag_flags: tag_flags::MOVING,
        ..det(7, t)
    };
    apply(&mut tracker, 1, &[moving(1, 0)]);
    let car = Observation {
        frame: FrameKey {
            station: StationId(3),
            ..frame(2)
        },
        sent_at_ms: 20_000,
        reader_position: Some(GeoPoint {
            lat: 23.005,
            lon: 116.0,
        }),
        detections: &[moving(3, 20_000)],
    };
    tracker.apply(car, 20_000);
    apply(&mut tracker, 3, &[moving(2, 40_000)]);
    assert_eq!(
        tracker.location(TagId(7)).map(|l| l.station),
        Some(StationId(2))
    );
    assert!(tracker
        .transitions
        .predict(None, StationId(1), 3)
        .is_empty());
    assert!(tracker
        .transitions
        .predict(None, StationId(3), 3)
        .is_empty());
}

/// A patrol car provisioned at its precinct (station 1, at 23.0) drives 5 km north and
/// hears tag 7 there, then 550 m further on: the track, the radius and area questions and
/// the reader's own place all say where it heard the tag, never the precinct.
#[test]
fn every_answer_places_a_mobile_read_where_the_reader_was() {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    tracker.set_station(&station_at(1, 23.0));
    tracker.set_station(&station_at(2, 23.001));
    let (first, second) = (
        GeoPoint {
            lat: 23.045,
            lon: 116.0,
        },
        GeoPoint {
            lat: 23.05,
            lon: 116.0,
        },
    );
    let heard = |tracker: &mut Tracker, seq: u32, t: i64, at: GeoPoint| {
        let obs = Observation {
            frame: frame(seq),
            sent_at_ms: t,
            reader_position: Some(at),
            detections: &[det(7, t)],
        };
        tracker.apply(obs, t);
    };
    heard(&mut tracker, 1, 10_000, first);
    // Still open: the track answers from the open visit.
    let open = tracker.track(TagId(7), 0, 20_000);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].position, first);
    // Heard again after the visit gap, 550 m on: a second visit, at the second place.
    heard(&mut tracker, 2, 100_000, second);
    // A fixed station's tag keeps the tracker's time moving so both visits close.
    apply(
        &mut tracker,
        3,
        &[Detection {
            station: StationId(2),
            ..det(8, 400_000)
        }],
    );
    tracker.maintain();
    let track = tracker.track(TagId(7), 0, 500_000);
    let places: Vec<(StationId, GeoPoint)> =
        track.iter().map(|p| (p.station, p.position)).collect();
    assert_eq!(places, vec![(StationId(1), first), (StationId(1), second)]);

    // Near the precinct: only tag 8 at station 2, not tag 7.
    let precinct = station_at(1, 23.0).position;
    let near_precinct: Vec<u32> = tracker
        .tags_near(precinct, 1_000.0, 0, 10)
        .iter()
        .map(|(t, _, _)| t.0)
        .collect();
    assert_eq!(near_precinct, vec![8]);
    // Near where the car heard it last: tag 7, placed there.
    let near = tracker.tags_near(second, 200.0, 0, 10);
    assert_eq!(near.len(), 1);
    assert_eq!(
        (near[0].0, near[0].1.position, near[0].1.station),
        (TagId(7), second, StationId(1))
    );
    assert!(near[0].2 < 1.0);

    // Through a box around the first place: tag 7; around the precinct: not tag 7.
    let around = |p: GeoPoint| {
        Area::Box(tagwatch_model::GeoBox {
            south: p.lat - 0.001,
            west: p.lon - 0.001,
            north: p.lat + 0.001,
            east: p.lon + 0.001,
        })
    };
    let through = tracker.tags_through(&around(first), 0, 500_000, 10);
    assert_eq!(through.iter().map(|p| p.tag.0).collect::<Vec<_>>(), vec![7]);
    let through = tracker.tags_through(&around(precinct), 0, 500_000, 10);
    assert!(through.iter().all(|p| p.tag != TagId(7)), "{through:?}");

    // The reader itself: its latest fix, and the fixes for the store.
    assert_eq!(
        tracker.reader_positions(),
        vec![(StationId(1), 100_000, second)]
    );
    let saved: Vec<(i64, GeoPoint)> = tracker
        .take_reader_fixes()
        .iter()
        .map(|f| (f.at_ms, f.position))
        .collect();
    assert_eq!(saved, vec![(10_000, first), (100_000, second)]);
}

proptest::proptest! {
    /// However tags move, each station's list holds exactly the tags placed there, with their
    /// latest time: the slots stay in step with the placements.
    #[test]
    fn station_lists_match_the_placements(
        heard in proptest::collection::vec((1u32..40, 1u32..8, 0i64..600, -90i8..-40), 1..400)
    ) {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        for s in 1..8 {
            tracker.set_station(&station_at(s, 23.0 + f64::from(s) * 0.002));
        }
        for (i, &(tag, station, second, rssi)) in heard.iter().enumerate() {
            let d = Detection {
                station: StationId(station),
                rssi,
                ..det(tag, second * 1_000 + i as i64)
            };
            let frame = FrameKey { station: StationId(station), session: SessionId(1), seq: i as u32 + 1 };
            tracker.apply(Observation { frame, sent_at_ms: 0, reader_position: None, detections: &[d] }, 0);
        }
        for s in 1..8 {
            let mut listed: Vec<(u32, i64)> = tracker
                .spatial
                .present_at(StationId(s))
                .iter()
                .map(|p| (p.tag.0, p.seen_at_ms))
                .collect();
            listed.sort_unstable();
            let mut placed: Vec<(u32, i64)> = tracker
                .places
                .iter()
                .filter(|(_, p)| p.current.station == StationId(s))
                .map(|(t, p)| (t.0, p.current.seen_at_ms))
                .collect();
            placed.sort_unstable();
            proptest::prop_assert_eq!(listed, placed);
        }
    }
}

proptest::proptest! {
    /// Frames of a stolen tag (or of a tag whose panic button is held) arrive in time order,
    /// each judged ahead once or twice (a copy resent after a BUSY), and are applied later in
    /// any order: every visit they make has exactly one alert, raised ahead, and the ledger
    /// empties.
    #[test]
    fn alerts_ahead_are_one_per_visit_whatever_order_frames_are_applied_in(
        mut times in proptest::collection::vec(0i64..400_000, 1..14),
        resent in proptest::collection::vec(proptest::bool::ANY, 14),
        order in proptest::collection::vec(proptest::num::usize::ANY, 14),
        panic in proptest::bool::ANY,
    ) {
        times.sort_unstable();
        times.dedup();
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        tracker.set_station(&station());
        let flags = if panic { tag_flags::PANIC } else { 0 };
        if !panic {
            tracker.report_stolen(TagId(7), CaseId(5));
        }
        let seen = |t: i64| Detection { tag_flags: flags, ..det(7, t) };
        let mut alerts = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            let seq = i as u32 + 1;
            alerts.extend(ahead(&mut tracker, seq, &[seen(t)]));
            if resent[i] {
                alerts.extend(ahead(&mut tracker, seq, &[seen(t)]));
            }
        }
        let mut pending: Vec<usize> = (0..times.len()).collect();
        for pick in order.iter().take(times.len()) {
            let i = pending.remove(pick % pending.len());
            let applied = apply(&mut tracker, i as u32 + 1, &[seen(times[i])]);
            proptest::prop_assert!(applied.is_empty(), "raised again when applied: {applied:?}");
        }
        proptest::prop_assert_eq!(tracker.judged_ahead(), 0);
        // The visits: runs of times no further apart than the gap.
        let gap = tracker.config().visit_gap_ms;
        let mut visits: Vec<(i64, i64)> = Vec::new();
        for &t in &times {
            match visits.last_mut() {
                Some(v) if t - v.1 <= gap => v.1 = t,
                _ => visits.push((t, t)),
            }
        }
        for v in &visits {
            let in_it = alerts.iter().filter(|a| v.0 <= a.seen_at_ms && a.seen_at_ms <= v.1).count();
            proptest::prop_assert_eq!(in_it, 1, "visit {:?}, alerts {:?}", v, alerts);
        }
        proptest::prop_assert_eq!(alerts.len(), visits.len());
    }
}
