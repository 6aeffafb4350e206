//! `tagwatch api` as an officer sees it in a cluster: a theft reported on one API node reaches
//! the shard through the commands stream (its look-back alert follows), sightings through a
//! gateway raise alerts on the alerts stream, and an officer's live stream moves from one API
//! node to the other with `Last-Event-ID`: every alert once, in order, none missed.

mod support;

use std::time::{Duration, Instant};

use support::{next_alert_within, open_events_at, TestStation, TOKEN};
use tagwatch::api_role::{ApiOptions, RunningApi};
use tagwatch::config::{ApiSection, StationsSection};
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch::shard_role::{RunningShard, ShardOptions};
use tagwatch::Secret;
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::BusConfig;
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::now_ms;
use tagwatch_model::{TagId, Vehicle};
use tagwatch_store::Store;
use tagwatch_tracker::TrackerConfig;

const STOLEN: u32 = 7;

async fn api_node(nats: &str, database: &str) -> RunningApi {
    RunningApi::start(ApiOptions {
        nats: nats.to_owned(),
        database: database.to_owned(),
        http: "127.0.0.1:0".parse().expect("addr"),
        bus: BusConfig::default(),
        api: ApiSection {
            admin_token: Some(Secret(TOKEN.into())),
            ..ApiSection::default()
        },
        retention_days: 30,
    })
    .await
    .expect("api node starts")
}

fn stream_url(api: &RunningApi) -> String {
    format!("http://{}/api/v1/alerts/stream", api.http)
}

/// The stolen tag's next alert on `events`, within 10 s.
async fn next_alert(events: &mut support::Events) -> serde_json::Value {
    loop {
        let alert = next_alert_within(events, Duration::from_secs(10))
            .await
            .expect("an alert within 10 s");
        if alert["tag"] == STOLEN {
            return alert;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officers_stream_moves_between_api_nodes_without_a_gap_or_a_repeat() {
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let store = Store::open(&database).await.expect("store");
    for id in 1001..=1005 {
        store
            .insert_station(&support::station(id), &support::key(id), 0)
            .await
            .expect("station");
    }
    store
        .insert_vehicle(
            &Vehicle {
                tag: TagId(STOLEN),
                plate: "GD-A 7777".into(),
                owner_name: "Huang".into(),
                owner_phone: "+86 5".into(),
            },
            0,
        )
        .await
        .expect("vehicle");
    let gateway = RunningGateway::start(GatewayOptions {
        nats: nats.url(),
        database: database.clone(),
        udp: "127.0.0.1:0".parse().expect("addr"),
        tcp: "127.0.0.1:0".parse().expect("addr"),
        stations: StationsSection::default(),
        clock_skew_limit: Duration::from_secs(120),
        bus: BusConfig::default(),
        partitions: Some(4),
        refresh: Duration::from_secs(5),
        http: None,
    })
    .await
    .expect("gateway starts");
    let shard = RunningShard::start(ShardOptions {
        nats: nats.url(),
        database: database.clone(),
        name: "shard-1".into(),
        tracker: TrackerConfig::default(),
        bus: BusConfig::default(),
        lease_ttl: Duration::from_secs(3),
        flush_interval: Duration::from_millis(50),
        checkpoint_interval: Duration::from_secs(2),
        http: None,
    })
    .await
    .expect("shard starts");
    let (first, second) = (
        api_node(&nats.url(), &database).await,
        api_node(&nats.url(), &database).await,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard.metrics.partitions_held.get() < 4 {
        assert!(Instant::now() < deadline, "the shard took no partitions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stations: Vec<TestStation> = futures_util::future::join_all(
        (1001..=1005).map(|id| TestStation::udp(id, 1, gateway.udp)),
    )
    .await;
    // Heard before the theft is reported.
    let heard = now_ms();
    assert_eq!(
        stations[0]
            .exchange(&stations[0].detections(1, heard, &[STOLEN, 8]))
            .await,
        AckStatus::Accepted
    );
    let mut live = open_events_at(&stream_url(&first), TOKEN, None).await;
    // Reported on the first node; the shard's look-back finds the earlier sighting.
    let report = support::client()
        .post(format!(
            "http://{}/api/v1/vehicles/{STOLEN}/theft",
            first.http
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"note": "taken at night"}))
        .send()
        .await
        .expect("report");
    assert_eq!(report.status(), 201);
    let look_back = next_alert(&mut live).await;
    assert_eq!(look_back["station"], 1001, "{look_back}");
    assert_eq!(look_back["kind"], "stolen_sighting");
    // Heard at the next station: alerted live on the first node.
    stations[1]
        .exchange(&stations[1].detections(1, now_ms(), &[STOLEN]))
        .await;
    let seen = next_alert(&mut live).await;
    assert_eq!(seen["station"], 1002, "{seen}");
    let resume_after = seen["seq"].as_i64().expect("seq");
    drop(live);

    // While the officer's client is away, two more sightings.
    for station in &stations[2..4] {
        station
            .exchange(&station.detections(1, now_ms(), &[STOLEN]))
            .await;
    }
    // Back, on the other node, from the last event id it had.
    let mut resumed =
        open_events_at(&stream_url(&second), TOKEN, Some(&resume_after.to_string())).await;
    let missed: Vec<serde_json::Value> = vec![
        next_alert(&mut resumed).await,
        next_alert(&mut resumed).await,
    ];
    let stations_missed: Vec<&serde_json::Value> = missed.iter().map(|a| &a["station"]).collect();
    assert_eq!(stations_missed, [1003, 1004], "the missed ones, in order");
    let seqs: Vec<i64> = missed
        .iter()
        .map(|a| a["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        resume_after < seqs[0] && seqs[0] < seqs[1],
        "numbered by the alerts stream, after the resume point: {resume_after} {seqs:?}"
    );
    // And live on from there: the next sighting, once.
    stations[4]
        .exchange(&stations[4].detections(1, now_ms(), &[STOLEN]))
        .await;
    assert_eq!(next_alert(&mut resumed).await["station"], 1005);
    assert!(
        next_alert_within(&mut resumed, Duration::from_secs(1))
            .await
            .is_none(),
        "nothing repeated"
    );

    // The stored alerts carry the same numbers (each shard commit numbers them from the stream).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored = store.alerts_after(0, 100).await.expect("alerts");
        if stored.len() == 5 {
            let seqs: Vec<i64> = stored.iter().map(|a| a.seq).collect();
            assert!(seqs.contains(&resume_after), "{seqs:?}");
            break;
        }
        assert!(Instant::now() < deadline, "alerts not stored: {stored:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    first.stop().await;
    second.stop().await;
    shard.stop().await;
    gateway.stop().await;
}
