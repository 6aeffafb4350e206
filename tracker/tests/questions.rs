//! Questions as data ([`tagwatch_tracker::questions`]): trackers that each hold some of the
//! vehicles, asked the same question, joined, answer what one tracker holding them all answers.
//! This is what lets a cluster's API node ask its shards' partitions instead of one tracker.

use proptest::prelude::*;
use tagwatch_model::{
    CaseId, Detection, FrameKey, GeoBox, GeoPoint, SessionId, Station, StationId, TagId,
};
use tagwatch_tracker::questions::{join, Answer, Question};
use tagwatch_tracker::{companions_of, dens_of, Observation, Tracker, TrackerConfig};

/// Stations 1..=9 about 200 m apart due north, 11..=19 on a street 5 km east.
fn position(station: u32) -> GeoPoint {
    GeoPoint {
        lat: 23.0 + f64::from(station % 10) * 0.0018,
        lon: 116.0 + f64::from(station / 10) * 0.05,
    }
}

/// Far from every question's place: where the clock tag is heard.
const CLOCK_STATION: u32 = 99;
/// Heard by every tracker (see [`heard`]).
const CLOCK_TAG: u32 = 999;

fn street() -> Tracker {
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    for id in (1..=9).chain(11..=19) {
        tracker.set_station(&Station {
            id: StationId(id),
            name: format!("s{id}"),
            position: position(id),
        });
    }
    tracker.set_station(&Station {
        id: StationId(CLOCK_STATION),
        name: "far away".into(),
        position: GeoPoint {
            lat: 24.0,
            lon: 117.0,
        },
    });
    tracker
}

/// One detection, one frame.
fn hear(tracker: &mut Tracker, seq: u32, (station, tag, t): (u32, u32, i64)) {
    let detection = Detection {
        tag: TagId(tag),
        station: StationId(station),
        seen_at_ms: t,
        rssi: -60,
        reads: 1,
        tag_flags: 0,
    };
    let key = FrameKey {
        station: StationId(station),
        session: SessionId(1),
        seq,
    };
    tracker.apply(
        Observation {
            frame: key,
            sent_at_ms: t,
            reader_position: None,
            detections: &[detection],
        },
        t,
    );
    tracker.take_changes();
}

/// Drives: (tag, first station, stations passed, start in s); heard every 4 s, 20 s a station.
/// A tracker's time is its detections' (visits close, transits form as it moves on), and a
/// partition's moves on only with its own vehicles: a busy one's as fast as one tracker's, an
/// idle one's not. So that the parts here are as busy as a province's, a clock tag far away is
/// heard every 4 s by every tracker.
fn heard(drives: &[(u32, u32, u32, i64)]) -> Vec<(u32, u32, i64)> {
    let mut heard: Vec<(u32, u32, i64)> = (0..=60)
        .map(|k| (CLOCK_STATION, CLOCK_TAG, k * 4_000))
        .collect();
    for &(tag, from, count, start_s) in drives {
        for k in 0..count {
            let station = (from + k - 1) % 9 + 1 + if tag % 3 == 0 { 10 } else { 0 };
            for beacon in 0..5 {
                heard.push((
                    station,
                    tag,
                    start_s * 1_000 + i64::from(k) * 20_000 + beacon * 4_000,
                ));
            }
        }
    }
    heard.sort_by_key(|&(_, tag, t)| (t, tag));
    heard
}

fn questions() -> impl Strategy<Value = Question> {
    let near = (1u32..=19, 50.0f64..3_000.0, 0i64..200, 1usize..8).prop_map(
        |(station, radius_m, since_s, limit)| Question::Near {
            center: position(station),
            radius_m,
            since_ms: since_s * 1_000,
            limit,
        },
    );
    let through = (1u32..=19, 1u32..4, 0i64..150, 1i64..150, 1usize..8).prop_map(
        |(station, span, from_s, length_s, limit)| {
            let (a, b) = (position(station), position(station + span));
            Question::Through {
                area: GeoBox {
                    south: a.lat.min(b.lat) - 0.0003,
                    west: a.lon.min(b.lon) - 0.0003,
                    north: a.lat.max(b.lat) + 0.0003,
                    east: a.lon.max(b.lon) + 0.0003,
                },
                from_ms: from_s * 1_000,
                to_ms: (from_s + length_s) * 1_000,
                limit,
            }
        },
    );
    let dark = (0i64..200, 0i64..120).prop_map(|(now_s, dark_s)| Question::Dark {
        now_ms: now_s * 1_000,
        dark_for_ms: dark_s * 1_000,
    });
    prop_oneof![near, through, dark]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn partitions_joined_answer_as_one_tracker(
        drives in proptest::collection::vec((1u32..40, 1u32..=9, 1u32..6, 0i64..120), 1..24),
        asked in proptest::collection::vec(questions(), 1..6),
        partitions in 2u32..5,
    ) {
        let heard = heard(&drives);
        let mut whole = street();
        let mut parts: Vec<Tracker> = (0..partitions).map(|_| street()).collect();
        for (seq, &read) in (1..).zip(&heard) {
            hear(&mut whole, seq, read);
            if read.1 == CLOCK_TAG {
                for part in &mut parts {
                    hear(part, seq, read);
                }
            } else {
                hear(&mut parts[(read.1 % partitions) as usize], seq, read);
            }
        }
        // Even tags are stolen (for dens).
        for tag in (2..40).step_by(2) {
            whole.report_stolen(TagId(tag), CaseId(i64::from(tag)));
            parts[(tag % partitions) as usize].report_stolen(TagId(tag), CaseId(i64::from(tag)));
        }
        // Who travelled with a vehicle: its stops from its own partition, the arrivals at them
        // from every partition.
        for &(tag, ..) in drives.iter().take(3) {
            let (to_ms, within_ms) = (400_000, 20_000);
            let stops_asked = Question::Stops { tag: TagId(tag), from_ms: Some(0), to_ms, max_window_ms: to_ms };
            let Answer::Stops(Some(stops)) = parts[(tag % partitions) as usize].answer(&stops_asked) else {
                return Err(TestCaseError::fail("no stops"));
            };
            let arrivals_asked = Question::Arrivals { stops: stops.clone(), within_ms };
            let answers = parts.iter().map(|p| p.answer(&arrivals_asked)).collect();
            let Some(Answer::Arrivals(arrivals)) = join(&arrivals_asked, answers) else {
                return Err(TestCaseError::fail("no arrivals"));
            };
            prop_assert_eq!(
                companions_of(TagId(tag), &stops, &arrivals, 1, 50),
                whole.travelling_with(TagId(tag), 0, to_ms, within_ms, 1, 50)
            );
        }
        for question in &asked {
            let answers: Vec<Answer> = parts.iter().map(|p| p.answer(question)).collect();
            let joined = join(question, answers).expect("answers of the question's kind");
            if let (Question::Dark { now_ms, dark_for_ms }, Answer::Dark { reference_lat, tags }) =
                (question, &joined)
            {
                let dens = dens_of(tags.clone(), *reference_lat, 300.0, 2);
                prop_assert_eq!(dens, whole.dens(*now_ms, *dark_for_ms, 300.0, 2));
                continue;
            }
            let Answer::Through { covered, passages } = joined else {
                prop_assert_eq!(joined, whole.answer(question), "{:?}", question);
                continue;
            };
            // Each part's memory starts at its own first detection: the parts together cover a
            // window only if every one does, so the joined answer may say "not covered" where
            // the whole would not; the passages it has are the same.
            let Answer::Through { covered: whole_covered, passages: whole_passages } =
                whole.answer(question) else { unreachable!() };
            prop_assert!(!covered || whole_covered);
            if covered {
                prop_assert_eq!(passages, whole_passages, "{:?}", question);
            }
        }
    }
}

#[test]
fn answers_cross_the_network_unchanged() {
    let mut tracker = street();
    for (seq, read) in (1..).zip(heard(&[(7, 2, 3, 0), (9, 4, 2, 10)])) {
        hear(&mut tracker, seq, read);
    }
    let asked = [
        Question::LastSeen { tag: TagId(7) },
        Question::Location { tag: TagId(7) },
        Question::Track {
            tag: TagId(7),
            from_ms: 0,
            to_ms: 100_000,
        },
        Question::Near {
            center: position(3),
            radius_m: 800.0,
            since_ms: 0,
            limit: 5,
        },
    ];
    for question in asked {
        let text = serde_json::to_string(&question).expect("question");
        assert_eq!(
            serde_json::from_str::<Question>(&text).expect("back"),
            question
        );
        let answer = tracker.answer(&question);
        assert!(
            !matches!(&answer, Answer::Near(found) if found.is_empty()),
            "{question:?}"
        );
        let text = serde_json::to_string(&answer).expect("answer");
        assert_eq!(serde_json::from_str::<Answer>(&text).expect("back"), answer);
    }
}

#[test]
fn an_answer_of_another_kind_is_not_joined() {
    let near = Question::Near {
        center: position(1),
        radius_m: 100.0,
        since_ms: 0,
        limit: 3,
    };
    assert_eq!(
        join(&near, vec![Answer::Near(vec![]), Answer::Track(vec![])]),
        None
    );
    assert_eq!(join(&near, vec![]), None);
    let one = Question::LastSeen { tag: TagId(1) };
    assert_eq!(
        join(&one, vec![Answer::LastSeen(None)]),
        Some(Answer::LastSeen(None))
    );
    assert_eq!(join(&one, vec![Answer::Location(None)]), None);
}
