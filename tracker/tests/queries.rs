//! The tracker's queries and watch rules on small hand-built scenarios with exact answers.
//!
//! The "street": stations 1..=9 every 0.0018° of latitude (about 200 m) due north along 116° E,
//! and stations 11..=19 on a parallel street 0.05° (about 5 km) east.

use tagwatch_model::{
    AlertKind, CaseId, Detection, FrameKey, GeoBox, GeoPoint, Geofence, SessionId, Station,
    StationId, TagId,
};
use tagwatch_tracker::{Area, Command, LastSeen, Observation, Tracker, TrackerConfig};

const STEP_DEG: f64 = 0.0018;

fn position(station: u32) -> GeoPoint {
    let (street, i) = (station / 10, station % 10);
    GeoPoint {
        lat: 23.0 + f64::from(i) * STEP_DEG,
        lon: 116.0 + f64::from(street) * 0.05,
    }
}

struct Street {
    tracker: Tracker,
    seq: u32,
}

impl Street {
    fn new() -> Self {
        let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
        for id in (1..=9).chain(11..=19) {
            tracker.set_station(&Station {
                id: StationId(id),
                name: format!("s{id}"),
                position: position(id),
            });
        }
        Self { tracker, seq: 0 }
    }

    /// `tag` heard at `station` at `t` ms: one frame, sent on time.
    fn hear(&mut self, station: u32, tag: u32, t: i64) -> Vec<tagwatch_model::Alert> {
        self.hear_with(station, tag, t, 0)
    }

    /// As [`Street::hear`], the tag's beacon carrying `tag_flags`.
    fn hear_with(
        &mut self,
        station: u32,
        tag: u32,
        t: i64,
        tag_flags: u8,
    ) -> Vec<tagwatch_model::Alert> {
        self.seq += 1;
        let detection = Detection {
            tag: TagId(tag),
            station: StationId(station),
            seen_at_ms: t,
            rssi: -65,
            reads: 1,
            tag_flags,
        };
        let obs = Observation {
            frame: FrameKey {
                station: StationId(station),
                session: SessionId(1),
                seq: self.seq,
            },
            sent_at_ms: t,
            reader_position: None,
            detections: &[detection],
        };
        let alerts = self.tracker.apply(obs, t);
        self.tracker.take_changes();
        alerts
    }

    /// `tag` drives north from `from` to `to`, heard every 2 s for 16 s at each station, 20 s per
    /// station, starting at `t0`.
    fn drive(&mut self, tag: u32, from: u32, to: u32, t0: i64) -> Vec<tagwatch_model::Alert> {
        let mut alerts = Vec::new();
        for (k, station) in (from..=to).enumerate() {
            let arrive = t0 + k as i64 * 20_000;
            for beacon in 0..8 {
                alerts.extend(self.hear(station, tag, arrive + beacon * 2_000));
            }
        }
        alerts
    }

    /// Moves time on with a far-away tag, so visits close and rules come due.
    fn pass_time(&mut self, until: i64) -> Vec<tagwatch_model::Alert> {
        let mut alerts = Vec::new();
        let mut t = until - 60_000;
        while t <= until {
            alerts.extend(self.hear(19, 999_999, t));
            t += 5_000;
        }
        alerts
    }
}

#[test]
fn location_has_heading_and_speed_and_the_track_is_in_order() {
    let mut street = Street::new();
    street.drive(7, 1, 3, 0);
    let location = street.tracker.location(TagId(7)).expect("placed");
    assert_eq!(location.station, StationId(3));
    assert_eq!(location.since_ms, 40_000);
    let heading = location.heading_deg.expect("heading");
    assert!(
        heading.abs() < 0.5 || (heading - 360.0).abs() < 0.5,
        "due north: {heading}"
    );
    let speed = location.speed_mps.expect("speed");
    assert!((speed - 10.0).abs() < 0.2, "200 m in 20 s: {speed}");

    street.pass_time(200_000);
    let track = street.tracker.track(TagId(7), 0, 300_000);
    let stations: Vec<u32> = track.iter().map(|p| p.station.0).collect();
    assert_eq!(stations, vec![1, 2, 3]);
    assert_eq!((track[1].first_ms, track[1].last_ms), (20_000, 34_000));
    assert!(street.tracker.track(TagId(7), 100_000, 300_000).is_empty());
    assert!(street.tracker.covers(0));
}

#[test]
fn tags_through_an_area_come_from_stays_transits_and_open_visits() {
    let mut street = Street::new();
    street.drive(7, 1, 4, 0); // at 2 from 20 s, at 4 from 60 s
    street.drive(8, 11, 12, 0); // the other street
    street.pass_time(300_000);
    street.hear(2, 9, 300_000); // heard now: still an open visit

    let around = |station: u32| {
        let p = position(station);
        Area::Box(GeoBox {
            south: p.lat - 0.0003,
            west: p.lon - 0.0003,
            north: p.lat + 0.0003,
            east: p.lon + 0.0003,
        })
    };
    let tags = |area: &Area, from: i64, to: i64| -> Vec<u32> {
        street
            .tracker
            .tags_through(area, from, to, 100)
            .iter()
            .map(|p| p.tag.0)
            .collect()
    };
    assert_eq!(tags(&around(2), 25_000, 30_000), vec![7]);
    assert_eq!(tags(&around(2), 100_000, 200_000), Vec::<u32>::new());
    assert_eq!(
        tags(&around(2), 0, 400_000),
        vec![7, 9],
        "the open visit too"
    );
    assert_eq!(tags(&around(12), 0, 400_000), vec![8]);
    // In the box from its approach (the transit from 1 crosses the box's edge 33 m out, at about
    // 19 s) until it left (34 s, then on towards 3).
    let passage = street.tracker.tags_through(&around(2), 0, 100_000, 10)[0];
    assert!((18_900..=19_100).contains(&passage.first_ms), "{passage:?}");
    assert!((34_000..=35_100).contains(&passage.last_ms), "{passage:?}");

    // Half-way between stations 2 and 3, where no station is: only the transit (34 s → 40 s).
    let mid = GeoPoint {
        lat: 23.0 + 2.5 * STEP_DEG,
        lon: 116.0,
    };
    let triangle = Area::Polygon(vec![
        GeoPoint {
            lat: mid.lat - 0.0002,
            lon: mid.lon - 0.0003,
        },
        GeoPoint {
            lat: mid.lat - 0.0002,
            lon: mid.lon + 0.0003,
        },
        GeoPoint {
            lat: mid.lat + 0.0003,
            lon: mid.lon,
        },
    ]);
    assert_eq!(tags(&triangle, 36_000, 38_000), vec![7]);
    assert_eq!(
        tags(&triangle, 50_000, 58_000),
        Vec::<u32>::new(),
        "it had moved on"
    );
    assert_eq!(tags(&around(2), 0, 400_000).len(), 2);
    assert_eq!(
        street.tracker.tags_through(&around(2), 0, 400_000, 1).len(),
        1,
        "limit"
    );
}

#[test]
fn tags_travelling_together_are_found_and_a_one_off_is_not() {
    let mut street = Street::new();
    street.drive(1, 1, 5, 0);
    street.drive(2, 1, 5, 5_000); // 5 s behind, all the way
    street.drive(3, 1, 2, 10_000); // shares two stations only
    street.drive(4, 1, 5, 500_000); // same road, much later
    street.pass_time(800_000);
    let with = street
        .tracker
        .travelling_with(TagId(1), 0, 400_000, 30_000, 3, 10);
    assert_eq!(with.len(), 1, "{with:?}");
    assert_eq!(with[0].tag, TagId(2));
    let stations: Vec<u32> = with[0].stations.iter().map(|s| s.0).collect();
    assert_eq!(stations, vec![1, 2, 3, 4, 5]);
    let loose = street
        .tracker
        .travelling_with(TagId(1), 0, 400_000, 30_000, 2, 10);
    assert_eq!(
        loose.iter().map(|c| c.tag.0).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

#[test]
fn fencing_dens_are_clusters_of_stolen_tags_gone_dark() {
    let mut street = Street::new();
    for tag in [1, 2, 3] {
        street.hear(5, tag, 1_000);
    }
    street.hear(6, 4, 1_000); // 200 m from 5: same den
    street.hear(15, 5, 1_000);
    street.hear(15, 6, 1_000);
    street.hear(9, 7, 1_000); // alone
    street.hear(5, 8, 1_000); // not stolen
    street.hear(15, 9, 1_000); // stolen but still heard
    for tag in [1, 2, 3, 4, 5, 6, 7, 9] {
        street
            .tracker
            .report_stolen(TagId(tag), CaseId(i64::from(tag)));
    }
    street.pass_time(3_000_000);
    street.hear(15, 9, 3_000_000);
    let dens = street.tracker.dens(3_000_000, 1_800_000, 300.0, 2);
    let found: Vec<Vec<u32>> = dens
        .iter()
        .map(|d| d.tags.iter().map(|(t, _)| t.0).collect())
        .collect();
    assert_eq!(found, vec![vec![1, 2, 3, 4], vec![5, 6]]);
    let center = dens[0].center;
    assert!(
        (center.lat - (23.0 + 5.25 * STEP_DEG)).abs() < 1e-6,
        "{center:?}"
    );
}

#[test]
fn a_watched_tag_crossing_a_fence_alerts_on_entering_and_leaving() {
    let mut street = Street::new();
    street.tracker.command(depot_fence(), 0);
    let alerts = street.drive(7, 1, 6, 0);
    let crossings: Vec<(u32, bool)> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Geofence)
        .map(|a| {
            let fence = a.detail.fence.as_ref().expect("fence detail");
            assert_eq!((fence.fence, fence.name.as_str()), (5, "depot"));
            (a.station.0, fence.entered)
        })
        .collect();
    // Placed at 3 when no longer heard at 2 for 10 s; likewise at 5.
    assert_eq!(crossings, vec![(3, true), (5, false)]);
    // Not on the watch list: nothing.
    assert!(street.drive(8, 1, 6, 0).is_empty());
}

/// Around stations 3 and 4, watching tag 7 both ways.
fn depot_fence() -> Command {
    let (low, high) = (position(3), position(4));

    Command::Geofence(Geofence {
        id: 5,
        name: "depot".into(),
        area: vec![
            GeoPoint {
                lat: low.lat - 0.0005,
                lon: 115.99,
            },
            GeoPoint {
                lat: low.lat - 0.0005,
                lon: 116.01,
            },
            GeoPoint {
                lat: high.lat + 0.0005,
                lon: 116.01,
            },
            GeoPoint {
                lat: high.lat + 0.0005,
                lon: 115.99,
            },
        ],
        tags: vec![TagId(7)],
        on_enter: true,
        on_leave: true,
    })
}

#[test]
fn a_fence_crossing_after_a_restore_from_the_rule_state_is_the_uninterrupted_ones() {
    let crossings = |street: &mut Street, from: u32, to: u32, t0: i64| -> Vec<(u32, bool)> {
        street
            .drive(7, from, to, t0)
            .iter()
            .filter(|a| a.kind == AlertKind::Geofence)
            .map(|a| (a.station.0, a.detail.fence.as_ref().expect("fence").entered))
            .collect()
    };
    let mut whole = Street::new();
    whole.tracker.command(depot_fence(), 0);
    assert_eq!(crossings(&mut whole, 1, 2, 0), vec![]);
    // A checkpoint here: the tag is placed at 2, outside the fence.
    let text = serde_json::to_string(&whole.tracker.rule_state()).expect("rule state");
    let restored_state = serde_json::from_str(&text).expect("reads back");
    let mut restored = Street::new();
    restored.tracker.command(depot_fence(), 0);
    restored.tracker.restore_rule_state(restored_state);
    let mut forgetful = Street::new();
    forgetful.tracker.command(depot_fence(), 0);
    // From there on to 6: entering at 3, leaving at 5.
    let expected = crossings(&mut whole, 3, 6, 40_000);
    assert_eq!(expected, vec![(3, true), (5, false)]);
    assert_eq!(crossings(&mut restored, 3, 6, 40_000), expected);
    // Without the rule state the tag is first placed inside the fence: its entry is missed.
    assert_eq!(crossings(&mut forgetful, 3, 6, 40_000), vec![(5, false)]);
}

#[test]
fn a_paired_tag_heard_without_its_companion_alerts_once() {
    let mut street = Street::new();
    street.tracker.command(
        Command::Pair {
            tag: TagId(1),
            companion: TagId(2),
        },
        0,
    );
    // Together at station 1 (the companion heard by the next station: near enough).
    let mut together = street.hear(1, 1, 0);
    together.extend(street.hear(2, 2, 1_000));
    together.extend(street.pass_time(100_000));
    assert!(together.is_empty(), "{together:?}");
    // Alone at 15, far away, twice in one visit.
    let mut alone = street.hear(15, 1, 200_000);
    assert!(alone.is_empty(), "the companion has a visit gap to turn up");
    alone.extend(street.hear(15, 1, 210_000));
    alone.extend(street.pass_time(400_000));
    assert_eq!(alone.len(), 1, "{alone:?}");
    let alert = &alone[0];
    assert_eq!(alert.kind, AlertKind::CompanionMissing);
    assert_eq!((alert.tag, alert.station), (Some(TagId(1)), StationId(15)));
    assert_eq!(alert.detail.companion, Some(TagId(2)));
    assert_eq!(alert.seen_at_ms, 200_000);
}

#[test]
fn silent_stations_and_skewed_clocks_alert_once_each() {
    let mut street = Street::new();
    assert!(
        street.tracker.tick(1_000_000).is_empty(),
        "the watch starts"
    );
    street.hear(1, 7, 1_050_000);
    let silent = street.tracker.tick(1_091_000);
    // Every station but 1 (heard at 1,050 s) has been silent since 1,000 s.
    assert_eq!(silent.len(), 17);
    assert!(silent
        .iter()
        .all(|a| a.kind == AlertKind::StationSilent && a.tag.is_none()));
    assert!(silent.iter().all(|a| a.station != StationId(1)));
    assert_eq!(silent[0].detail.silent_s, Some(91));
    assert!(
        street.tracker.tick(1_100_000).is_empty(),
        "once per silence"
    );
    let one = street.tracker.tick(1_141_000);
    assert_eq!(one.iter().map(|a| a.station.0).collect::<Vec<_>>(), vec![1]);

    // A frame stamped five minutes ahead of the server.
    let obs = Observation {
        frame: FrameKey {
            station: StationId(2),
            session: SessionId(9),
            seq: 1,
        },
        sent_at_ms: 1_500_000,
        reader_position: None,
        detections: &[],
    };
    let found = street.tracker.apply(obs, 1_200_000);
    // Silent since 1,000 s, station 2 is back; and its clock is off.
    assert_eq!(
        found.iter().map(|a| a.kind).collect::<Vec<_>>(),
        [AlertKind::StationBack, AlertKind::StationClockSkew]
    );
    assert_eq!(found[0].detail.silent_s, Some(200));
    let skewed = &found[1];
    assert_eq!(skewed.detail.clock_skew_s, Some(300.0));
    assert_eq!(skewed.id.0, "station_clock_skew-2-9-1");
}

#[test]
fn a_late_theft_report_alerts_the_latest_sighting_since_the_owner_last_saw_it() {
    let mut street = Street::new();
    street.drive(7, 1, 3, 0); // last placed at 3, heard until 54 s
    let report = |since_ms, stored| Command::Stolen {
        tag: TagId(7),
        case: CaseId(4),
        since_ms: Some(since_ms),
        stored,
    };
    let alerts = street.tracker.command(report(30_000, None), 100_000);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(
        (alert.kind, alert.station, alert.seen_at_ms),
        (AlertKind::StolenSighting, StationId(3), 54_000)
    );
    assert!(alert.detail.look_back);
    assert_eq!(alert.detail.case, Some(4));
    // Heard again in the same visit: already alerted.
    assert!(street.hear(3, 7, 56_000).is_empty());
    // Nothing since the owner last saw it in memory, but the store has a newer sighting.
    let mut other = Street::new();
    other.drive(7, 1, 1, 0);
    assert!(other
        .tracker
        .command(report(30_000, None), 100_000)
        .is_empty());
    let stored = LastSeen {
        station: StationId(12),
        position: position(12),
        seen_at_ms: 40_000,
    };
    let from_store = other.tracker.command(report(30_000, Some(stored)), 100_000);
    assert_eq!(from_store[0].station, StationId(12));
}

#[test]
fn a_stolen_sighting_predicts_the_next_stations_from_learned_moves() {
    let mut street = Street::new();
    // Twenty tags drive 1 → 4.
    for tag in 100..120 {
        street.drive(tag, 1, 4, i64::from(tag - 100) * 1_000);
    }
    street.tracker.report_stolen(TagId(7), CaseId(1));
    let alerts = street.drive(7, 1, 2, 200_000);
    let at_two = alerts
        .iter()
        .find(|a| a.station == StationId(2))
        .expect("alerted at 2");
    let next: Vec<u32> = at_two
        .detail
        .intercept
        .iter()
        .map(|i| i.station.0)
        .collect();
    assert_eq!(next, vec![3]);
    let prediction = at_two.detail.intercept[0];
    assert!((prediction.probability - 1.0).abs() < 1e-9);
    assert!((prediction.eta_s - 20.0).abs() < 0.01, "{prediction:?}");
    assert!(prediction.eta_low_s <= prediction.eta_s && prediction.eta_s <= prediction.eta_high_s);
    assert_eq!(prediction.lat, position(3).lat);

    // A theft reported late: its sighting at 2 was 40 s before the report. Counted from now,
    // station 3 is not 20 s away; and for a two-hour-old sighting nothing is predicted.
    street.tracker.report_stolen(TagId(8), CaseId(2));
    street.drive(8, 1, 2, 400_000); // arrives at 2 at 420 s
    let late = |street: &mut Street, now_ms| {
        street.tracker.command(
            Command::Stolen {
                tag: TagId(8),
                case: CaseId(3),
                since_ms: Some(0),
                stored: None,
            },
            now_ms,
        )
    };
    let alerts = late(&mut street, 434_000 + 5_000);
    let intercept = &alerts[0].detail.intercept;
    assert_eq!(intercept.len(), 1, "{alerts:?}");
    assert_eq!(
        intercept[0].eta_s, 15.0,
        "20 s from arrival at 2, less 5 s since"
    );
    let alerts = late(&mut street, 434_000 + 2 * 3_600_000);
    assert_eq!(alerts[0].detail.intercept, vec![], "long gone");
}

#[test]
fn a_vehicle_passing_stations_seconds_apart_is_placed_at_each_and_crosses_fences_on_time() {
    let mut street = Street::new();
    // A fence around station 3 only.
    let at = position(3);
    let corner = |dlat: f64, dlon: f64| GeoPoint {
        lat: at.lat + dlat,
        lon: at.lon + dlon,
    };
    street.tracker.command(
        Command::Geofence(Geofence {
            id: 6,
            name: "market".into(),
            area: vec![
                corner(-0.0009, -0.001),
                corner(-0.0009, 0.001),
                corner(0.0009, 0.001),
                corner(0.0009, -0.001),
            ],
            tags: vec![TagId(7)],
            on_enter: true,
            on_leave: true,
        }),
        0,
    );
    // 200 m every 5 s (40 m/s would be reckless; 144 km/h on a motorway is not): three beacons
    // heard at each station, every station at the same signal, the tag saying it moves.
    let mut crossings = Vec::new();
    for (k, station) in (1..=6).enumerate() {
        let arrive = k as i64 * 5_000;
        for beacon in 0..3 {
            let alerts = street.hear_with(
                station,
                7,
                arrive + beacon * 1_000,
                tagwatch_model::tag_flags::MOVING,
            );
            crossings.extend(
                alerts
                    .iter()
                    .filter(|a| a.kind == AlertKind::Geofence)
                    .map(|a| (a.station.0, a.detail.fence.as_ref().map(|f| f.entered))),
            );
        }
        let placed = street.tracker.location(TagId(7)).expect("placed").station;
        assert_eq!(placed, StationId(station), "placed where it is, not behind");
    }
    assert_eq!(crossings, vec![(3, Some(true)), (4, Some(false))]);
}

#[test]
fn a_companion_check_waiting_at_a_checkpoint_is_judged_after_a_restore() {
    let pair = || Command::Pair {
        tag: TagId(1),
        companion: TagId(2),
    };
    let street = || {
        let mut street = Street::new();
        street.tracker.command(pair(), 0);
        street
    };
    let mut whole = street();
    // Alone at 15: the check waits a visit gap. A checkpoint here.
    assert!(whole.hear(15, 1, 200_000).is_empty());
    let text = serde_json::to_string(&whole.tracker.rule_state()).expect("rule state");
    let mut restored = street();
    restored
        .tracker
        .restore_rule_state(serde_json::from_str(&text).expect("reads back"));
    let mut forgetful = street();
    let missing = |alerts: Vec<tagwatch_model::Alert>| -> Vec<(u32, i64)> {
        alerts
            .iter()
            .filter(|a| a.kind == AlertKind::CompanionMissing)
            .map(|a| (a.station.0, a.seen_at_ms))
            .collect()
    };
    let expected = missing(whole.pass_time(400_000));
    assert_eq!(expected, vec![(15, 200_000)]);
    assert_eq!(missing(restored.pass_time(400_000)), expected);
    assert_eq!(
        missing(forgetful.pass_time(400_000)),
        vec![],
        "no check waiting"
    );
}
