//! The store suite: what the rest of TagWatch relies on the database for.
//!
//! Why this file is long (about 1,000 lines): it is the one suite both backends must pass, test
//! by test (SQLite always, Postgres when configured), so that "both pass the same store test
//! suite" stays true by construction; split by store area, each file would need the backends'
//! setup again.

use tagwatch_model::{
    Alert, AlertDetail, AlertId, AlertKind, CaseId, GeoBox, GeoPoint, Intercept, ReaderFix,
    SessionId, Station, StationId, StationKey, StationStatus, TagId, Vehicle, Visit, VisitId,
    Watermark,
};
use tagwatch_store::{Batch, Error, JournalEntry, PartitionState, PartitionStep, SeenRuns, Store};

/// The backends every test runs against: SQLite always, Postgres when configured.
async fn backends() -> Vec<Store> {
    let mut stores = vec![Store::open("sqlite::memory:").await.expect("sqlite opens")];
    if let Some(url) = tagwatch_store::testing::fresh_postgres().await {
        stores.push(Store::open(&url).await.expect("postgres opens"));
    }
    stores
}

fn station(id: u32) -> Station {
    Station {
        id: StationId(id),
        name: format!("station {id}"),
        position: GeoPoint {
            lat: 23.0 + f64::from(id) / 1000.0,
            lon: 116.0,
        },
    }
}

fn vehicle(tag: u32, plate: &str) -> Vehicle {
    Vehicle {
        tag: TagId(tag),
        plate: plate.into(),
        owner_name: "Li Wei".into(),
        owner_phone: "+86 138 0000 0000".into(),
        ..Default::default()
    }
}

fn visit(id: i64, tag: u32, station: u32, first: i64, last: i64) -> Visit {
    Visit {
        id: VisitId(id),
        tag: TagId(tag),
        station: StationId(station),
        first_seen_ms: first,
        last_seen_ms: last,
        best_rssi: -55,
        reads: 4,
    }
}

fn alert(seq: i64, id: &str) -> Alert {
    Alert {
        seq,
        id: AlertId(id.into()),
        kind: AlertKind::StolenSighting,
        tag: Some(TagId(7)),
        station: StationId(1),
        position: GeoPoint { lat: 1.0, lon: 2.0 },
        seen_at_ms: 10,
        raised_at_ms: 11,
        detail: AlertDetail {
            case: Some(3),
            heading_deg: Some(90.5),
            intercept: vec![Intercept {
                station: StationId(2),
                lat: 1.5,
                lon: 2.5,
                probability: 0.75,
                eta_s: 21.0,
                eta_low_s: 18.0,
                eta_high_s: 26.0,
            }],
            ..AlertDetail::default()
        },
    }
}

/// An alert about a station rather than a tag.
fn station_alert(seq: i64) -> Alert {
    Alert {
        seq,
        id: AlertId(format!("station_silent-1-{seq}")),
        kind: AlertKind::StationSilent,
        tag: None,
        station: StationId(1),
        position: GeoPoint { lat: 1.0, lon: 2.0 },
        seen_at_ms: 10,
        raised_at_ms: 100_010,
        detail: AlertDetail {
            silent_s: Some(100),
            ..AlertDetail::default()
        },
    }
}

#[tokio::test]
async fn stations_keep_their_keys_and_refuse_duplicates() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let key = StationKey([7; 32]);
        store
            .insert_station(&station(1), &key, 0)
            .await
            .expect("insert");
        let err = store
            .insert_station(&station(1), &key, 0)
            .await
            .expect_err("duplicate");
        assert!(matches!(err, Error::StationExists(StationId(1))));
        let all = store.stations().await.expect("list");
        assert_eq!(all, vec![(station(1), key)]);
        assert_eq!(
            store.station(StationId(1)).await.expect("get"),
            Some(station(1))
        );
        assert_eq!(store.station(StationId(2)).await.expect("get"), None);
    }
}

#[tokio::test]
async fn vehicles_are_unique_by_tag_and_by_plate() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .insert_vehicle(&vehicle(1, "A1"), 0)
            .await
            .expect("insert");
        assert!(matches!(
            store.insert_vehicle(&vehicle(1, "B2"), 0).await,
            Err(Error::TagExists(TagId(1)))
        ));
        assert!(matches!(
            store.insert_vehicle(&vehicle(2, "A1"), 0).await,
            Err(Error::PlateExists(p)) if p == "A1"
        ));
        assert_eq!(
            store.vehicle(TagId(1)).await.expect("get"),
            Some(vehicle(1, "A1"))
        );
    }
}

#[tokio::test]
async fn vehicles_are_found_by_plate_however_it_is_typed_and_edited() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let described = Vehicle {
            make: "Honda".into(),
            model: "Wave 110".into(),
            colour: "red".into(),
            ..vehicle(7, "粤A·B1234")
        };
        store.insert_vehicle(&described, 0).await.expect("insert");
        store
            .insert_vehicle(&vehicle(8, "粤A-B1299"), 0)
            .await
            .expect("insert");
        store
            .insert_vehicle(&vehicle(9, "粤AB12"), 0)
            .await
            .expect("insert");
        store
            .insert_vehicle(&vehicle(10, "粤B 1"), 0)
            .await
            .expect("insert");
        assert_eq!(
            store.vehicle(TagId(7)).await.expect("get"),
            Some(described.clone())
        );
        let tags =
            |found: Vec<(Vehicle, bool)>| found.iter().map(|(v, _)| v.tag.0).collect::<Vec<_>>();
        // Separators and letter case do not matter; the exact plate first, then by plate.
        assert_eq!(
            tags(
                store
                    .vehicles_by_plate("粤a b12", 10)
                    .await
                    .expect("search")
            ),
            vec![9, 7, 8]
        );
        assert_eq!(
            tags(
                store
                    .vehicles_by_plate("粤AB1234", 10)
                    .await
                    .expect("search")
            ),
            vec![7]
        );
        assert_eq!(
            tags(store.vehicles_by_plate("粤A", 2).await.expect("search")).len(),
            2
        );
        assert!(store
            .vehicles_by_plate("粤C", 10)
            .await
            .expect("search")
            .is_empty());
        // Stolen while a case is open.
        store.open_case(TagId(8), 1, "").await.expect("case");
        let among = store
            .vehicles_among(&[TagId(7), TagId(8), TagId(99)])
            .await
            .expect("among");
        let mut found: Vec<u32> = among.iter().map(|v| v.tag.0).collect();
        found.sort_unstable();
        assert_eq!(found, vec![7, 8]);
        assert_eq!(among.iter().find(|v| v.tag.0 == 7), Some(&described));
        let flags: Vec<(u32, bool)> = store
            .vehicles_by_plate("粤A", 10)
            .await
            .expect("search")
            .iter()
            .map(|(v, stolen)| (v.tag.0, *stolen))
            .collect();
        assert_eq!(flags, vec![(9, false), (7, false), (8, true)]);
        // Edited: found by the new plate only; another vehicle's plate is refused.
        let repainted = Vehicle {
            plate: "粤A·Z0001".into(),
            colour: "blue".into(),
            ..described.clone()
        };
        store.update_vehicle(&repainted).await.expect("update");
        assert_eq!(
            tags(
                store
                    .vehicles_by_plate("粤AZ0001", 10)
                    .await
                    .expect("search")
            ),
            vec![7]
        );
        assert!(store
            .vehicles_by_plate("粤AB1234", 10)
            .await
            .expect("search")
            .is_empty());
        assert!(matches!(
            store.update_vehicle(&vehicle(7, "粤AB12")).await,
            Err(Error::PlateExists(_))
        ));
        assert!(matches!(
            store.update_vehicle(&vehicle(70, "X1")).await,
            Err(Error::NoSuchVehicle(TagId(70)))
        ));
    }
}

#[tokio::test]
async fn a_hotlist_opens_updates_and_lapses_cases_but_never_closes_a_reported_one() {
    use tagwatch_store::{HotlistEntry, HotlistOutcome, Listed};
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        for (tag, plate) in [(1, "粤A·1"), (2, "GD 2"), (3, "GD-2"), (4, "AB4")] {
            store
                .insert_vehicle(&vehicle(tag, plate), 0)
                .await
                .expect("insert");
        }
        let reported = store
            .open_case(TagId(4), 5, "by its owner")
            .await
            .expect("case");
        let entry = |vehicle: Listed, expires: Option<i64>| HotlistEntry {
            vehicle,
            reported_at_ms: 100,
            expires_at_ms: expires,
            note: "hotlist: test".into(),
        };
        let outcomes = store
            .apply_hotlist(&[
                entry(Listed::Plate("粤a 1".into()), Some(1_000)),
                entry(Listed::Plate("GD2".into()), None),
                entry(Listed::Tag(TagId(9)), None),
                entry(Listed::Tag(TagId(4)), Some(1_000)),
            ])
            .await
            .expect("apply");
        let HotlistOutcome::Opened(TagId(1), case) = outcomes[0] else {
            panic!("{outcomes:?}");
        };
        assert_eq!(
            outcomes[1..],
            [
                HotlistOutcome::Ambiguous(2),
                HotlistOutcome::Unknown,
                HotlistOutcome::AlreadyReported(TagId(4), reported)
            ]
        );
        // Again: the list's case is updated (a later expiry), not opened twice.
        let again = store
            .apply_hotlist(&[entry(Listed::Tag(TagId(1)), Some(2_000))])
            .await
            .expect("apply");
        assert_eq!(again, [HotlistOutcome::Updated(TagId(1), case)]);
        assert!(store
            .close_expired_cases(1_999)
            .await
            .expect("sweep")
            .is_empty());
        assert_eq!(
            store.close_expired_cases(2_000).await.expect("sweep"),
            vec![(TagId(1), case)]
        );
        // Closed once; the owner's report stays open whatever the list said.
        assert!(store
            .close_expired_cases(9_999)
            .await
            .expect("sweep")
            .is_empty());
        assert_eq!(store.open_case_of(TagId(1)).await.expect("case"), None);
        assert_eq!(
            store.open_case_of(TagId(4)).await.expect("case"),
            Some(reported)
        );
    }
}

#[tokio::test]
async fn webhook_deliveries_are_queued_once_claimed_by_one_sender_and_logged() {
    use tagwatch_store::Webhook;
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let mut hook = Webhook {
            id: 0,
            url: "http://127.0.0.1:9/x".into(),
            kinds: vec!["stolen_sighting".into(), "panic".into()],
            secret: "s".repeat(16),
            created_by: "admin".into(),
            created_at_ms: 1,
            queued_to: 10,
        };
        hook.id = store.insert_webhook(&hook).await.expect("insert");
        assert_eq!(store.webhooks().await.expect("list"), vec![hook.clone()]);
        // Queued twice (two senders): one row per alert; queued_to moves once.
        store
            .queue_deliveries(hook.id, 10, 12, &[11, 12], 100)
            .await
            .expect("queue");
        store
            .queue_deliveries(hook.id, 10, 12, &[11, 12], 100)
            .await
            .expect("queue");
        assert_eq!(store.webhooks().await.expect("list")[0].queued_to, 12);
        // Claimed by one sender; a second finds nothing due until the claim runs out.
        let claimed = store.claim_deliveries(100, 1_000, 10).await.expect("claim");
        assert_eq!(
            claimed.iter().map(|d| d.alert_seq).collect::<Vec<_>>(),
            vec![11, 12]
        );
        assert!(store
            .claim_deliveries(500, 1_500, 10)
            .await
            .expect("claim")
            .is_empty());
        let mut failed = claimed[0].clone();
        failed.attempts = 1;
        failed.last_attempt_at_ms = Some(100);
        failed.next_attempt_at_ms = 2_000;
        failed.outcome = "HTTP 503".into();
        store.settle_delivery(&failed).await.expect("settle");
        let mut delivered = claimed[1].clone();
        delivered.state = "delivered".into();
        delivered.attempts = 1;
        delivered.outcome = "HTTP 200".into();
        store.settle_delivery(&delivered).await.expect("settle");
        // The failed one is due again at its retry time, the delivered one never.
        assert!(store
            .claim_deliveries(1_999, 3_000, 10)
            .await
            .expect("claim")
            .is_empty());
        let again = store
            .claim_deliveries(2_000, 3_000, 10)
            .await
            .expect("claim");
        assert_eq!(
            again.iter().map(|d| d.alert_seq).collect::<Vec<_>>(),
            vec![11]
        );
        let log = store
            .deliveries_of(hook.id, i64::MAX, 10)
            .await
            .expect("log");
        assert_eq!(
            log.iter()
                .map(|d| (d.alert_seq, d.state.as_str(), d.outcome.as_str()))
                .collect::<Vec<_>>(),
            vec![(12, "delivered", "HTTP 200"), (11, "pending", "HTTP 503")]
        );
        // Removed: out of service, its pending delivery cancelled.
        assert!(store.delete_webhook(hook.id, 5).await.expect("delete"));
        assert!(!store.delete_webhook(hook.id, 6).await.expect("delete"));
        assert!(store.webhooks().await.expect("list").is_empty());
        let log = store
            .deliveries_of(hook.id, i64::MAX, 10)
            .await
            .expect("log");
        assert_eq!(log[1].state, "cancelled");
        assert!(store
            .claim_deliveries(9_000, 9_999, 10)
            .await
            .expect("claim")
            .is_empty());
    }
}

#[tokio::test]
async fn open_cases_are_listed_with_assignee_history_and_latest_sighting() {
    use tagwatch_store::CaseEvent;
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        for tag in [1, 2] {
            store
                .insert_vehicle(&vehicle(tag, &format!("C{tag}")), 0)
                .await
                .expect("insert");
        }
        let first = store
            .open_case(TagId(1), 100, "market")
            .await
            .expect("case");
        let second = store.open_case(TagId(2), 200, "").await.expect("case");
        let rows = store.open_case_rows().await.expect("rows");
        assert_eq!(
            rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![second, first]
        );
        assert_eq!(
            (rows[1].note.as_str(), rows[1].source.as_str()),
            ("market", "report")
        );
        assert!(store
            .assign_case(first, Some("wang"), "zhang", 300)
            .await
            .expect("assign"));
        assert!(!store
            .assign_case(CaseId(999), Some("wang"), "zhang", 300)
            .await
            .expect("assign"));
        assert_eq!(
            store
                .case_row(first)
                .await
                .expect("row")
                .expect("case")
                .assignee
                .as_deref(),
            Some("wang")
        );
        store.close_case(TagId(1), 400).await.expect("close");
        let closed = CaseEvent {
            at_ms: 400,
            actor: "wang".into(),
            kind: "closed".into(),
            detail: "recovered".into(),
        };
        store.add_case_event(first, &closed).await.expect("event");
        // A closed case is assigned no more; its history stays, in order.
        assert!(!store
            .assign_case(first, None, "zhang", 500)
            .await
            .expect("assign"));
        let history = store.case_events(first).await.expect("history");
        assert_eq!(
            history.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            vec!["assigned", "closed"]
        );
        assert_eq!(history[0].detail, "wang");
        assert_eq!(store.open_case_rows().await.expect("rows").len(), 1);
        // The latest stolen sighting since a time.
        let mut batch = Batch::default();
        for (seq, raised) in [(1, 150), (2, 250)] {
            let mut sighting = alert(seq, &format!("s{seq}"));
            sighting.tag = Some(TagId(2));
            sighting.raised_at_ms = raised;
            batch.alerts.push(sighting);
        }
        store.commit(&batch).await.expect("commit");
        let latest = store
            .latest_alert_of(TagId(2), "stolen_sighting", 200)
            .await
            .expect("latest");
        assert_eq!(latest.map(|a| a.seq), Some(2));
        assert!(store
            .latest_alert_of(TagId(2), "stolen_sighting", 300)
            .await
            .expect("latest")
            .is_none());
    }
}

#[tokio::test]
async fn a_theft_case_needs_a_vehicle_and_only_one_is_open() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        assert!(matches!(
            store.open_case(TagId(9), 0, "").await,
            Err(Error::NoSuchVehicle(TagId(9)))
        ));
        store
            .insert_vehicle(&vehicle(9, "C3"), 0)
            .await
            .expect("insert");
        let case = store
            .open_case(TagId(9), 5, "parked at market")
            .await
            .expect("open");
        assert!(matches!(
            store.open_case(TagId(9), 6, "").await,
            Err(Error::CaseAlreadyOpen(TagId(9)))
        ));
        assert_eq!(
            store.open_cases().await.expect("list"),
            vec![(TagId(9), case)]
        );
        assert_ne!(case, CaseId(0));
    }
}

#[tokio::test]
async fn a_batch_commits_visits_alerts_watermarks_and_status_together() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .insert_station(&station(1), &StationKey([1; 32]), 0)
            .await
            .expect("station");
        let watermark = Watermark {
            station: StationId(1),
            session: SessionId(3),
            contiguous: 10,
            above: vec![12, 15],
        };
        let status = StationStatus {
            station: StationId(1),
            received_at_ms: 100,
            station_time_ms: 99,
            uptime_s: 86_400,
            backlog: 2,
            fw_version: 258,
            temp_c: -5,
            power: 0x81,
            tags_in_range: 40,
        };
        let batch = Batch {
            visits: vec![visit(1, 7, 1, 1_000, 2_000), visit(2, 7, 1, 50_000, 60_000)],
            alerts: vec![alert(1, "a"), station_alert(2)],
            watermarks: vec![watermark.clone()],
            statuses: vec![status],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        // The same alert id again (a frame re-applied after a crash) is kept once.
        let mut again = Batch {
            alerts: vec![alert(3, "a")],
            ..Batch::default()
        };
        // A visit grows and another is merged away.
        again.visits = vec![visit(1, 7, 1, 500, 70_000)];
        again.deleted_visits = vec![VisitId(2)];
        store.commit(&again).await.expect("commit");

        assert_eq!(
            store.all_visits().await.expect("visits"),
            vec![visit(1, 7, 1, 500, 70_000)]
        );
        assert_eq!(
            store.alerts_after(0, 10).await.expect("alerts"),
            vec![alert(1, "a"), station_alert(2)],
            "the detail and a station alert's missing tag survive the round trip"
        );
        assert_eq!(
            store.watermarks().await.expect("watermarks"),
            vec![watermark]
        );
        assert_eq!(
            store.station_status(StationId(1)).await.expect("status"),
            Some(status)
        );
        assert_eq!(store.next_ids().await.expect("ids"), (2, 3));
    }
}

#[tokio::test]
async fn a_partition_advances_only_from_where_its_committer_read_it() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        assert_eq!(
            store.partition_state(5).await.expect("state"),
            PartitionState::default(),
            "a partition nothing applied starts at zero"
        );
        let seen = |runs: &str| SeenRuns {
            station: StationId(1),
            session: SessionId(2),
            runs: runs.into(),
        };
        let step = |version, from, to, runs: &str| PartitionStep {
            partition: 5,
            version,
            from_seq: from,
            to_seq: to,
            checkpoint: true,
            seen: vec![seen(runs)],
            rule_state: Some(format!("as of {to}")),
        };
        let first = Batch {
            visits: vec![visit(1, 7, 1, 1_000, 2_000)],
            alerts: vec![alert(1, "a")],
            partition: Some(step(0, 0, 40, "1-3")),
            ..Batch::default()
        };
        store.commit(&first).await.expect("first step");
        // A shard that read 0 before the first step (it lost the lease and does not know):
        // nothing of its batch is written.
        let zombie = Batch {
            visits: vec![visit(2, 8, 1, 3_000, 4_000)],
            alerts: vec![alert(2, "b")],
            partition: Some(step(0, 0, 55, "1-9")),
            ..Batch::default()
        };
        match store.commit(&zombie).await {
            Err(Error::Fenced {
                partition: 5,
                expected: 0,
            }) => {}
            other => panic!("a stale step must be fenced, got {other:?}"),
        }
        // Alerts only, no checkpoint: the applied sequence moves, the checkpoint stays.
        store
            .commit(&Batch {
                alerts: vec![alert(3, "c")],
                partition: Some(PartitionStep {
                    checkpoint: false,
                    seen: Vec::new(),
                    rule_state: None,
                    ..step(1, 40, 41, "")
                }),
                ..Batch::default()
            })
            .await
            .expect("the next step from 40");
        assert_eq!(
            store.partition_state(5).await.expect("state"),
            PartitionState {
                version: 2,
                applied_seq: 41,
                checkpoint_seq: 40,
                seen: vec![seen("1-3")],
                rule_state: Some("as of 40".into()),
            },
            "the checkpoint's rule state stays until the next checkpoint"
        );
        store
            .commit(&Batch {
                partition: Some(step(2, 41, 44, "1-3,5")),
                ..Batch::default()
            })
            .await
            .expect("a checkpoint from 41");
        assert_eq!(
            store.partition_state(5).await.expect("state"),
            PartitionState {
                version: 3,
                applied_seq: 44,
                checkpoint_seq: 44,
                seen: vec![seen("1-3,5")],
                rule_state: Some("as of 44".into()),
            }
        );
        // A checkpoint that applied nothing new (44 to 44) still moves the version: a shard that
        // read version 2 (and would replay from the checkpoint it saw) is fenced.
        store
            .commit(&Batch {
                partition: Some(step(3, 44, 44, "1-3,5")),
                ..Batch::default()
            })
            .await
            .expect("a checkpoint with nothing new");
        assert!(matches!(
            store
                .commit(&Batch {
                    partition: Some(step(3, 44, 45, "")),
                    ..Batch::default()
                })
                .await,
            Err(Error::Fenced { expected: 3, .. })
        ));
        assert_eq!(
            store.all_visits().await.expect("visits"),
            vec![visit(1, 7, 1, 1_000, 2_000)],
            "the fenced batch's visit is not stored"
        );
        assert_eq!(
            store.alerts_after(0, 10).await.expect("alerts"),
            vec![alert(1, "a"), alert(3, "c")]
        );
        assert_eq!(
            store.partition_state(6).await.expect("state"),
            PartitionState::default(),
            "partitions are apart"
        );
    }
}

#[tokio::test]
async fn location_and_track_come_from_the_visits() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .insert_station(&station(1), &StationKey([1; 32]), 0)
            .await
            .expect("station");
        store
            .insert_station(&station(2), &StationKey([2; 32]), 0)
            .await
            .expect("station");
        let batch = Batch {
            visits: vec![
                visit(1, 7, 1, 1_000, 2_000),
                visit(2, 7, 2, 3_000, 4_000),
                visit(3, 8, 1, 3_500, 9_000),
            ],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        let location = store
            .last_location(TagId(7))
            .await
            .expect("location")
            .expect("known");
        assert_eq!(
            (location.station, location.seen_at_ms),
            (StationId(2), 4_000)
        );
        assert_eq!(location.position, station(2).position);
        assert_eq!(
            store.last_location(TagId(99)).await.expect("location"),
            None
        );

        let track = store.track(TagId(7), 0, 10_000, 100).await.expect("track");
        let ids: Vec<_> = track.iter().map(|p| p.visit.id.0).collect();
        assert_eq!(ids, vec![1, 2]);
        let window = store
            .track(TagId(7), 2_500, 10_000, 100)
            .await
            .expect("track");
        assert_eq!(window.len(), 1, "only visits overlapping the window");
        assert_eq!(
            store
                .track(TagId(7), 0, 10_000, 1)
                .await
                .expect("track")
                .len(),
            1
        );
    }
}

/// Station 3 is a mobile reader provisioned at 23.003: it heard tag 7 at 23.5 (fix at 2,500,
/// the frame reporting the read at 2,000) and again at 24.0 after driving on (fix at 8,000).
#[tokio::test]
async fn a_mobile_readers_visits_are_placed_where_it_was() {
    let fix = |at_ms: i64, lat: f64| ReaderFix {
        station: StationId(3),
        at_ms,
        position: GeoPoint { lat, lon: 116.0 },
    };
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        for id in [1, 3] {
            let key = StationKey([u8::try_from(id).expect("small"); 32]);
            store
                .insert_station(&station(id), &key, 0)
                .await
                .expect("station");
        }
        let batch = Batch {
            visits: vec![
                visit(1, 7, 3, 2_000, 2_400),
                visit(2, 7, 3, 7_000, 7_900),
                visit(3, 8, 1, 7_000, 7_900),
            ],
            reader_fixes: vec![fix(1_000, 23.4), fix(2_500, 23.5), fix(8_000, 24.0)],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        // A replayed frame brings a fix already stored: kept as it is, nothing fails.
        let replay = Batch {
            reader_fixes: vec![fix(2_500, 23.5)],
            ..Batch::default()
        };
        store.commit(&replay).await.expect("replay");

        let track = store.track(TagId(7), 0, 10_000, 10).await.expect("track");
        let lats: Vec<f64> = track.iter().map(|p| p.position.lat).collect();
        assert_eq!(lats, vec![23.5, 24.0]);
        let location = store
            .last_location(TagId(7))
            .await
            .expect("location")
            .expect("known");
        assert_eq!(
            (location.station, location.position.lat),
            (StationId(3), 24.0)
        );
        let around = |lat: f64| GeoBox {
            south: lat - 0.001,
            west: 115.99,
            north: lat + 0.001,
            east: 116.01,
        };
        let found = |visits: Vec<tagwatch_store::PlacedVisit>| -> Vec<i64> {
            visits.iter().map(|p| p.visit.id.0).collect()
        };
        let in_box = store
            .visits_in_box(around(23.5), 0, 10_000, 10)
            .await
            .expect("box");
        assert_eq!(found(in_box), vec![1]);
        let precinct = store
            .visits_in_box(around(23.003), 0, 10_000, 10)
            .await
            .expect("box");
        assert_eq!(
            found(precinct),
            Vec::<i64>::new(),
            "not at the reader's surveyed place"
        );
        let fixed = store
            .visits_in_box(around(23.001), 0, 10_000, 10)
            .await
            .expect("box");
        assert_eq!(found(fixed), vec![3]);

        assert_eq!(
            store.reader_positions().await.expect("readers"),
            vec![fix(8_000, 24.0)]
        );
        let since = store.reader_fixes_since(2_000).await.expect("fixes");
        assert_eq!(since, vec![fix(2_500, 23.5), fix(8_000, 24.0)]);
        // Retention drops the fixes no kept visit needs, keeping each reader's latest place.
        store.retain(9_000).await.expect("retain");
        assert_eq!(
            store.reader_fixes_since(0).await.expect("fixes"),
            vec![fix(8_000, 24.0)]
        );
    }
}

#[tokio::test]
async fn open_visits_are_those_near_the_latest_detection() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let batch = Batch {
            visits: vec![visit(1, 7, 1, 0, 1_000), visit(2, 8, 1, 0, 100_000)],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        let open = store.open_visits(30_000).await.expect("open");
        assert_eq!(open, vec![visit(2, 8, 1, 0, 100_000)]);
    }
}

#[tokio::test]
async fn late_data_reads_back_the_visits_of_a_frames_tags_at_its_station_in_one_window() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let batch = Batch {
            visits: vec![
                visit(1, 7, 1, 0, 1_000),
                visit(2, 7, 1, 50_000, 60_000),
                visit(3, 8, 1, 500, 700),
                visit(4, 7, 2, 0, 1_000),       // another station
                visit(5, 9, 1, 0, 1_000),       // a tag the frame does not carry
                visit(6, 8, 1, 90_000, 95_000), // after the window
            ],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        let mut near = store
            .visits_near(StationId(1), &[TagId(7), TagId(8)], 900, 55_000)
            .await
            .expect("read");
        near.sort_unstable_by_key(|v| v.id);
        assert_eq!(
            near,
            vec![visit(1, 7, 1, 0, 1_000), visit(2, 7, 1, 50_000, 60_000),],
            "visit 3 ended before the window"
        );
        let none = store.visits_near(StationId(1), &[], 0, i64::MAX).await;
        assert!(none.expect("no tags: nothing to read").is_empty());
    }
}

#[tokio::test]
async fn a_database_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.path().join("t.sqlite").display()
    )];
    urls.extend(tagwatch_store::testing::fresh_postgres().await);
    for url in urls {
        reopen(&url).await;
    }
}

async fn reopen(url: &str) {
    let url = url.to_owned();
    {
        let store = Store::open(&url).await.expect("open");
        store
            .commit(&Batch {
                visits: vec![visit(1, 7, 1, 0, 1)],
                ..Batch::default()
            })
            .await
            .expect("commit");
        store.close().await;
    }
    let store = Store::open(&url).await.expect("reopen");
    store.migrate().await.expect("migrations are idempotent");
    assert_eq!(store.all_visits().await.expect("visits").len(), 1);
}

#[tokio::test]
async fn an_unsupported_url_is_refused_clearly() {
    let err = Store::open("mysql://x").await.expect_err("unsupported");
    assert!(err.to_string().contains("not supported"), "{err}");
}

#[tokio::test]
async fn large_batches_span_several_statements_and_stay_atomic() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let n = tagwatch_store::ROWS_PER_STATEMENT as i64 * 2 + 500;
        let visits: Vec<Visit> = (1..=n).map(|id| visit(id, 7, 1, id, id + 1)).collect();
        store
            .commit(&Batch {
                visits: visits.clone(),
                ..Batch::default()
            })
            .await
            .expect("commit");
        assert_eq!(store.all_visits().await.expect("visits"), visits);
        let deleted: Vec<VisitId> = (1..=n - 10).map(VisitId).collect();
        store
            .commit(&Batch {
                deleted_visits: deleted,
                ..Batch::default()
            })
            .await
            .expect("commit");
        assert_eq!(store.all_visits().await.expect("visits").len(), 10);
        // A batch that fails half-way (a second alert with a taken seq) leaves nothing behind.
        store
            .commit(&Batch {
                alerts: vec![alert(1, "x")],
                ..Batch::default()
            })
            .await
            .expect("commit");
        let failing = Batch {
            visits: vec![visit(n + 1, 8, 1, 0, 1)],
            alerts: vec![alert(1, "y")],
            ..Batch::default()
        };
        assert!(store.commit(&failing).await.is_err());
        assert_eq!(
            store.all_visits().await.expect("visits").len(),
            10,
            "rolled back"
        );
    }
}

fn journaled(seq: i64) -> JournalEntry {
    JournalEntry {
        seq,
        applied_at_ms: 1_000 + seq,
        first_visit_id: 50 + seq,
        // Every byte value, so nothing is lost to text encoding.
        frame: (0..=255u8).cycle().skip(seq as usize).take(300).collect(),
    }
}

#[tokio::test]
async fn journaled_frames_read_back_in_order_until_a_checkpoint_covers_them() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let n = tagwatch_store::ROWS_PER_STATEMENT as i64 + 200;
        let entries: Vec<JournalEntry> = (1..=n).map(journaled).collect();
        store
            .commit(&Batch {
                journal: entries.clone(),
                ..Batch::default()
            })
            .await
            .expect("commit");
        assert!(store.all_visits().await.expect("visits").is_empty());
        // Read back in pages, in order, byte for byte.
        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = store.journal_after(after, 500).await.expect("journal");
            let Some(last) = page.last() else { break };
            after = last.seq;
            read.extend(page);
        }
        assert_eq!(read, entries);

        // A checkpoint writes the visits and drops the frames they cover, in one transaction.
        store
            .commit(&Batch {
                visits: vec![visit(1, 7, 1, 0, 10)],
                journal_done_through: Some(n - 3),
                ..Batch::default()
            })
            .await
            .expect("checkpoint");
        let left = store.journal_after(0, 100).await.expect("journal");
        assert_eq!(left, entries[entries.len() - 3..].to_vec());
        // A failed checkpoint drops nothing.
        store
            .commit(&Batch {
                alerts: vec![alert(1, "x")],
                ..Batch::default()
            })
            .await
            .expect("commit");
        let failing = Batch {
            alerts: vec![alert(1, "y")],
            journal_done_through: Some(n),
            ..Batch::default()
        };
        assert!(store.commit(&failing).await.is_err());
        assert_eq!(store.journal_after(0, 100).await.expect("journal").len(), 3);
    }
}

#[tokio::test]
async fn an_extension_updates_the_end_of_a_visit_and_keeps_its_start() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .commit(&Batch {
                visits: vec![visit(1, 7, 1, 1_000, 2_000)],
                ..Batch::default()
            })
            .await
            .expect("commit");
        let mut grown = visit(1, 7, 1, 1_000, 9_000);
        grown.reads = 11;
        grown.best_rssi = -40;
        // An extension of a visit not yet stored is written whole.
        let unseen = visit(2, 8, 1, 3_000, 4_000);
        store
            .commit(&Batch {
                extended_visits: vec![grown, unseen],
                ..Batch::default()
            })
            .await
            .expect("commit");
        assert_eq!(
            store.all_visits().await.expect("visits"),
            vec![grown, unseen]
        );
    }
}

#[tokio::test]
async fn retention_drops_old_visits_but_keeps_those_of_open_theft_cases() {
    const DAY: i64 = 86_400_000;
    let now = 1_800_000_000_000;
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        // Storage for a day 100 days ago and for today (Postgres: their daily partitions).
        store
            .prepare(now - 100 * DAY)
            .await
            .expect("prepare old days");
        store.prepare(now).await.expect("prepare today");
        store
            .insert_vehicle(&vehicle(7, "STOLEN"), 0)
            .await
            .expect("vehicle");
        store.open_case(TagId(7), 0, "").await.expect("case");
        let old = now - 100 * DAY;
        let at = |t: i64, n: i64| VisitId::floor_at(t) + n;
        let visits = vec![
            visit(at(old, 1), 7, 1, old, old + 1_000), // old, stolen: kept
            visit(at(old, 2), 8, 1, old, old + 1_000), // old: dropped
            visit(at(old, 3), 9, 2, old, old + 5_000), // old: dropped
            visit(at(now, 1), 8, 1, now, now + 1_000), // recent: kept
        ];
        store
            .commit(&Batch {
                visits: visits.clone(),
                ..Batch::default()
            })
            .await
            .expect("commit");
        let dropped = store.retain(now - 90 * DAY).await.expect("retain");
        assert_eq!(dropped, 2);
        let left = store.all_visits().await.expect("visits");
        assert_eq!(left, vec![visits[0], visits[3]]);
        // The kept visit is still found by the queries.
        let track = store.track(TagId(7), old - DAY, old + DAY, 10).await;
        assert_eq!(
            track.expect("track").len(),
            0,
            "station 1 is not provisioned here"
        );
        assert_eq!(store.retain(now - 90 * DAY).await.expect("again"), 0);
    }
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.path().join("a.sqlite").display()
    )];
    urls.extend(tagwatch_store::testing::fresh_postgres().await);
    for url in urls {
        let store = Store::open(&url).await.expect("open");
        let entry = tagwatch_model::AuditEntry {
            id: 0,
            at_ms: 1,
            actor: "bob".into(),
            role: tagwatch_model::Role::Officer,
            action: "vehicle.track".into(),
            target: "tag:5".into(),
            purpose: "case 1".into(),
            outcome: "answered".into(),
        };
        let id = store.append_audit(&entry).await.expect("append");
        let denial = tagwatch_model::AuditEntry {
            at_ms: 5,
            actor: "eve".into(),
            target: "tag:6".into(),
            outcome: "refused: not_found".into(),
            ..entry.clone()
        };
        let refused_id = store.append_audit(&denial).await.expect("append");
        store.close().await;
        // Even with direct database access, the log cannot be rewritten.
        use sqlx::Connection;
        let refused = if url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connect");
            let update = sqlx::query("UPDATE audit SET purpose = 'nothing'")
                .execute(&mut conn)
                .await;
            let delete = sqlx::query("DELETE FROM audit").execute(&mut conn).await;
            update.is_err() && delete.is_err()
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            let update = sqlx::query("UPDATE audit SET purpose = 'nothing'")
                .execute(&mut conn)
                .await;
            let delete = sqlx::query("DELETE FROM audit").execute(&mut conn).await;
            update.is_err() && delete.is_err()
        };
        assert!(refused, "{url}: the audit log accepted a change");
        let store = Store::open(&url).await.expect("reopen");
        let entries = store.audit_after(0, 10).await.expect("read");
        let denial = tagwatch_model::AuditEntry {
            id: refused_id,
            ..denial
        };
        assert_eq!(
            entries,
            vec![tagwatch_model::AuditEntry { id, ..entry }, denial.clone()]
        );
        // Searched by actor, vehicle and time, on both backends.
        let by = |filter: tagwatch_store::AuditFilter| {
            let store = store.clone();
            async move { store.audit(&filter, 10).await.expect("search") }
        };
        let eve = tagwatch_store::AuditFilter {
            actor: Some("eve".into()),
            ..Default::default()
        };
        assert_eq!(by(eve).await, vec![denial.clone()]);
        let tag6 = tagwatch_store::AuditFilter {
            target: Some("tag:6".into()),
            ..Default::default()
        };
        assert_eq!(by(tag6).await, vec![denial.clone()]);
        let late = tagwatch_store::AuditFilter {
            from_ms: Some(2),
            to_ms: Some(6),
            ..Default::default()
        };
        assert_eq!(by(late).await, vec![denial]);
    }
}

#[tokio::test]
async fn geofences_and_companion_pairs_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut urls = vec![format!(
        "sqlite://{}",
        dir.path().join("w.sqlite").display()
    )];
    urls.extend(tagwatch_store::testing::fresh_postgres().await);
    let admin = tagwatch_model::UserId(1);
    let fence = tagwatch_model::Geofence {
        id: 0,
        name: "school".into(),
        area: vec![
            GeoPoint {
                lat: 23.0,
                lon: 116.0,
            },
            GeoPoint {
                lat: 23.01,
                lon: 116.0,
            },
            GeoPoint {
                lat: 23.01,
                lon: 116.01,
            },
        ],
        tags: vec![TagId(5), TagId(6)],
        on_enter: false,
        on_leave: true,
    };
    for url in urls {
        let store = Store::open(&url).await.expect("open");
        let first = store
            .insert_geofence(&fence, admin, 10)
            .await
            .expect("insert");
        let second = store
            .insert_geofence(&fence, admin, 11)
            .await
            .expect("insert");
        assert_ne!(first.id, second.id, "{url}: each fence gets its own id");
        assert_eq!(
            first,
            tagwatch_model::Geofence {
                id: first.id,
                ..fence.clone()
            }
        );
        store
            .pair(TagId(5), TagId(50), admin, 12)
            .await
            .expect("pair");
        store
            .pair(TagId(6), TagId(60), admin, 12)
            .await
            .expect("pair");
        store
            .pair(TagId(5), TagId(51), admin, 13)
            .await
            .expect("re-pair replaces");
        assert!(store.delete_geofence(second.id).await.expect("delete"));
        assert!(!store
            .delete_geofence(second.id)
            .await
            .expect("delete again"));
        assert!(store.unpair(TagId(6)).await.expect("unpair"));
        assert!(!store.unpair(TagId(6)).await.expect("unpair again"));
        store.close().await;

        let store = Store::open(&url).await.expect("reopen");
        assert_eq!(
            store.geofences().await.expect("fences"),
            vec![first.clone()],
            "{url}"
        );
        assert_eq!(
            store.pairs().await.expect("pairs"),
            vec![(TagId(5), TagId(51))],
            "{url}"
        );
        assert_eq!(
            store.companion_of(TagId(5)).await.expect("of"),
            Some(TagId(51))
        );
        assert_eq!(store.companion_of(TagId(6)).await.expect("of"), None);
    }
}

#[tokio::test]
async fn alert_decisions_are_kept_in_order_and_units_report_their_place() {
    for store in backends().await {
        let a = alert(1, "stolen-1");
        let batch = Batch {
            alerts: vec![a.clone()],
            ..Batch::default()
        };
        store.commit(&batch).await.expect("commit");
        assert_eq!(store.alert(1).await.expect("read"), Some(a));
        assert_eq!(store.alert(2).await.expect("read"), None);
        let action = |kind, unit: Option<&str>| tagwatch_model::AlertAction {
            id: 0,
            alert_seq: 1,
            action: kind,
            unit: unit.map(str::to_owned),
            reason: "why".into(),
            actor: "bob".into(),
            at_ms: 5,
        };
        use tagwatch_model::ActionKind::{Accepted, Dispatched};
        let first = store
            .add_alert_action(&action(Accepted, None))
            .await
            .expect("add");
        let second = store
            .add_alert_action(&action(Dispatched, Some("P-1")))
            .await
            .expect("add");
        assert!(second.id > first.id);
        assert_eq!(
            store.alert_actions(1).await.expect("read"),
            vec![first, second]
        );
        assert!(store.alert_actions(2).await.expect("read").is_empty());

        let mut unit = tagwatch_model::PatrolUnit {
            unit: "P-1".into(),
            officer: "bob".into(),
            position: GeoPoint {
                lat: 23.0,
                lon: 116.0,
            },
            available: true,
            reported_at_ms: 10,
        };
        assert!(store.report_unit(&unit, 0).await.expect("report"));
        unit.position.lat = 23.5;
        unit.reported_at_ms = 20;
        assert!(store.report_unit(&unit, 0).await.expect("report again"));
        // Another officer cannot move a unit someone reports, unless its report is stale.
        let intruder = tagwatch_model::PatrolUnit {
            officer: "mallory".into(),
            reported_at_ms: 30,
            ..unit.clone()
        };
        assert!(!store.report_unit(&intruder, 20).await.expect("refused"));
        assert_eq!(store.units().await.expect("units"), vec![unit.clone()]);
        assert!(store.set_unit_available("P-1", false).await.expect("busy"));
        assert!(!store
            .set_unit_available("P-2", false)
            .await
            .expect("unknown"));
        unit.available = false;
        assert_eq!(store.units().await.expect("units"), vec![unit]);
    }
}

#[tokio::test]
async fn admin_lists_and_settings_read_back_on_both_backends() {
    for store in backends().await {
        let alice = store
            .insert_user("alice", "hash", tagwatch_model::Role::Owner, 1)
            .await
            .expect("user");
        store
            .insert_token(&[7; 32], alice, 1, 100)
            .await
            .expect("token");
        store
            .insert_vehicle(&vehicle(5, "P-5"), 1)
            .await
            .expect("vehicle");
        store
            .insert_vehicle(&vehicle(6, "P-6"), 1)
            .await
            .expect("vehicle");
        store
            .set_vehicle_owner(TagId(6), alice)
            .await
            .expect("owner");
        store.open_case(TagId(6), 2, "gone").await.expect("case");
        let accounts = store.accounts(50).await.expect("accounts");
        assert_eq!(accounts.len(), 1);
        assert_eq!(
            (accounts[0].username.as_str(), accounts[0].live_tokens),
            ("alice", 1)
        );
        assert_eq!(
            store.accounts(150).await.expect("later")[0].live_tokens,
            0,
            "expired"
        );
        let page = store.vehicles_page(TagId(5), 10).await.expect("page");
        assert_eq!(page.len(), 1);
        assert_eq!(
            (
                page[0].vehicle.tag,
                page[0].owner.as_deref(),
                page[0].stolen
            ),
            (TagId(6), Some("alice"), true)
        );
        assert_eq!(store.setting("retention_days").await.expect("unset"), None);
        store
            .set_setting("retention_days", "30", "root", 3)
            .await
            .expect("set");
        store
            .set_setting("retention_days", "31", "root", 4)
            .await
            .expect("set again");
        assert_eq!(
            store.setting("retention_days").await.expect("set"),
            Some("31".into())
        );
    }
}

#[tokio::test]
async fn a_disarmed_or_recovered_vehicle_was_last_had_by_its_owner_then() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .insert_vehicle(&vehicle(9, "G-9"), 0)
            .await
            .expect("vehicle");
        let at = station(1).position;
        assert_eq!(store.owner_last_had(TagId(9)).await.expect("read"), None);
        store
            .arm(TagId(9), 1_000, StationId(1), at)
            .await
            .expect("arm");
        assert_eq!(
            store.guards().await.expect("guards"),
            vec![(TagId(9), StationId(1), at)]
        );
        assert_eq!(
            store.owner_last_had(TagId(9)).await.expect("read"),
            Some(1_000)
        );
        assert!(store.disarm(TagId(9), 5_000).await.expect("disarm"));
        assert!(
            !store.disarm(TagId(9), 6_000).await.expect("disarm"),
            "not armed any more"
        );
        assert_eq!(store.guards().await.expect("guards"), vec![]);
        assert_eq!(
            store.owner_last_had(TagId(9)).await.expect("read"),
            Some(5_000)
        );
        store
            .arm(TagId(9), 7_000, StationId(1), at)
            .await
            .expect("armed again");
        assert_eq!(store.guards().await.expect("guards").len(), 1);
        assert_eq!(
            store.owner_last_had(TagId(9)).await.expect("read"),
            Some(7_000)
        );
        // Recovered after that: the owner had it back then.
        store.open_case(TagId(9), 8_000, "").await.expect("case");
        store.close_case(TagId(9), 9_000).await.expect("recovered");
        assert_eq!(
            store.owner_last_had(TagId(9)).await.expect("read"),
            Some(9_000)
        );
    }
}

#[tokio::test]
async fn trackers_get_stations_of_their_own_and_keep_commands_until_answered() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        store
            .insert_station(&station(1), &StationKey([1; 32]), 0)
            .await
            .expect("station");
        store
            .insert_vehicle(&vehicle(5, "T5"), 0)
            .await
            .expect("vehicle");
        let key = StationKey([9; 32]);
        assert!(matches!(
            store
                .insert_tracker("868120300212345", TagId(6), "gt06", &key, 10)
                .await,
            Err(Error::NoSuchVehicle(TagId(6)))
        ));
        let first = store
            .insert_tracker("868120300212345", TagId(5), "gt06", &key, 10)
            .await
            .expect("tracker");
        assert_eq!(first, StationId(tagwatch_model::DEVICE_STATIONS_FROM));
        let second = store
            .insert_tracker(
                "868120300299999",
                TagId(5),
                "gt06",
                &StationKey([8; 32]),
                11,
            )
            .await
            .expect("second tracker");
        assert_eq!(second.0, first.0 + 1, "the next free device station");
        assert!(matches!(
            store
                .insert_tracker("868120300212345", TagId(5), "gt06", &key, 12)
                .await,
            Err(Error::Conflict(_))
        ));
        // Its station carries its key, so the gateway admits the listener's frames.
        let stations = store.stations().await.expect("stations");
        assert!(stations.iter().any(|(s, k)| s.id == first && *k == key));
        let row = store
            .tracker("868120300212345")
            .await
            .expect("get")
            .expect("there");
        assert_eq!(
            (row.tag, row.station, row.key, row.report_at_ms),
            (TagId(5), first, key, None)
        );
        store
            .set_tracker_report("868120300212345", 50, "{\"speed_kmh\":3}")
            .await
            .expect("report");
        // An older report does not replace a newer one.
        store
            .set_tracker_report("868120300212345", 40, "{}")
            .await
            .expect("older");
        let row = store
            .tracker("868120300212345")
            .await
            .expect("get")
            .expect("there");
        assert_eq!(
            (row.report_at_ms, row.report.as_deref()),
            (Some(50), Some("{\"speed_kmh\":3}"))
        );
        assert_eq!(store.trackers_on(TagId(5)).await.expect("on").len(), 2);
        assert_eq!(store.trackers().await.expect("all").len(), 2);

        let stop = store
            .queue_command("868120300212345", TagId(5), "stop", "officer", "case 4", 60)
            .await
            .expect("queued");
        assert_eq!(
            store
                .pending_commands("868120300212345")
                .await
                .expect("pending"),
            vec![stop.clone()]
        );
        store.command_sent(stop.id, 70).await.expect("sent");
        store
            .command_answered(stop.id, 80, "DYD=Success!")
            .await
            .expect("answered");
        assert!(store
            .pending_commands("868120300212345")
            .await
            .expect("pending")
            .is_empty());
        let listed = store.commands_on(TagId(5), 10).await.expect("listed");
        assert_eq!(
            (
                listed[0].sent_at_ms,
                listed[0].answered_at_ms,
                listed[0].answer.as_deref()
            ),
            (Some(70), Some(80), Some("DYD=Success!"))
        );

        assert!(store
            .delete_tracker("868120300212345")
            .await
            .expect("delete"));
        assert!(!store
            .delete_tracker("868120300212345")
            .await
            .expect("again"));
        assert!(store
            .tracker("868120300212345")
            .await
            .expect("get")
            .is_none());
        // The station stays (its visits are history), saying what it was.
        let name = store
            .station(first)
            .await
            .expect("station")
            .expect("kept")
            .name;
        assert_eq!(name, "GPS tracker 868120300212345 (removed)");
    }
}

#[tokio::test]
async fn audit_entries_appended_together_are_all_kept_in_order() {
    for store in backends().await {
        eprintln!("backend: {}", store.backend());
        let entries: Vec<tagwatch_model::AuditEntry> = (0..5)
            .map(|i| tagwatch_model::AuditEntry {
                id: 0,
                at_ms: 100 + i,
                actor: format!("officer-{i}"),
                role: tagwatch_model::Role::Officer,
                action: "vehicle.location".into(),
                target: format!("tag:{i}"),
                purpose: "case 9".into(),
                outcome: "answered".into(),
            })
            .collect();
        store.append_audits(&entries).await.expect("appended");
        store.append_audits(&[]).await.expect("nothing to append");
        let read = store
            .audit(&tagwatch_store::AuditFilter::default(), 100)
            .await
            .expect("read");
        let actors: Vec<&str> = read.iter().map(|e| e.actor.as_str()).collect();
        assert_eq!(
            actors,
            [
                "officer-0",
                "officer-1",
                "officer-2",
                "officer-3",
                "officer-4"
            ]
        );
        assert!(read.windows(2).all(|w| w[0].id < w[1].id), "ids in order");
    }
}
