//! `tagwatch api` as an officer sees it in a cluster: a theft reported on one API node reaches
//! the shard through the commands stream (its look-back alert follows), sightings through a
//! gateway raise alerts on the alerts stream, and an officer's live stream moves from one API
//! node to the other with `Last-Event-ID`: every alert once, in order, none missed. Live
//! questions (where a vehicle is, tags near a point or through an area) asked of an API node are
//! answered by the shards that hold the partitions, and an answer without a partition says so.
//! A station's health is watched once, by the partition of the station, though its frames reach
//! every partition holding one of its vehicles.

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
use tagwatch_model::{StationId, TagId, Vehicle};
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
        ask_deadline: Duration::from_secs(2),
    })
    .await
    .expect("api node starts")
}

/// A gateway creating the cluster with 4 partitions.
async fn gateway(nats: &str, database: &str) -> RunningGateway {
    RunningGateway::start(GatewayOptions {
        nats: nats.to_owned(),
        database: database.to_owned(),
        udp: "127.0.0.1:0".parse().expect("addr"),
        tcp: "127.0.0.1:0".parse().expect("addr"),
        stations: StationsSection::default(),
        clock_skew_limit: Duration::from_secs(120),
        bus: BusConfig::default(),
        partitions: Some(PARTITIONS),
        refresh: Duration::from_secs(5),
        http: None,
        gt06: None,
    })
    .await
    .expect("gateway starts")
}

async fn shard(nats: &str, database: &str, name: &str) -> RunningShard {
    shard_with(nats, database, name, TrackerConfig::default()).await
}

async fn shard_with(
    nats: &str,
    database: &str,
    name: &str,
    tracker: TrackerConfig,
) -> RunningShard {
    RunningShard::start(ShardOptions {
        nats: nats.to_owned(),
        database: database.to_owned(),
        name: name.into(),
        tracker,
        bus: BusConfig::default(),
        lease_ttl: Duration::from_secs(3),
        flush_interval: Duration::from_millis(50),
        checkpoint_interval: Duration::from_secs(2),
        http: None,
    })
    .await
    .expect("shard starts")
}

const PARTITIONS: u16 = 4;

/// The cluster's store, with these stations registered.
async fn stations_in(database: &str, ids: &[u32]) -> Store {
    let store = Store::open(database).await.expect("store");
    for &id in ids {
        store
            .insert_station(&support::station(id), &support::key(id), 0)
            .await
            .expect("station");
    }
    store
}

/// Waits (15 s at most) until the shards hold every partition between them.
async fn every_partition_held(shards: &[RunningShard]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while shards
        .iter()
        .map(|s| s.metrics.partitions_held.get())
        .sum::<i64>()
        < i64::from(PARTITIONS)
    {
        assert!(Instant::now() < deadline, "the shards took no partitions");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let store = stations_in(&database, &[1001, 1002, 1003, 1004, 1005]).await;
    store
        .insert_vehicle(
            &Vehicle {
                tag: TagId(STOLEN),
                plate: "GD-A 7777".into(),
                owner_name: "Huang".into(),
                owner_phone: "+86 5".into(),
                ..Default::default()
            },
            0,
        )
        .await
        .expect("vehicle");
    let gateway = gateway(&nats.url(), &database).await;
    let shard = shard(&nats.url(), &database, "shard-1").await;
    let (first, second) = (
        api_node(&nats.url(), &database).await,
        api_node(&nats.url(), &database).await,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while shard.metrics.partitions_held.get() < i64::from(PARTITIONS) {
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

/// An officer's GET on an API node: status and body.
async fn ask(api: &RunningApi, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = support::client()
        .get(format!("http://{}{path}", api.http))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

fn tags_of(body: &serde_json::Value) -> Vec<u64> {
    let mut tags: Vec<u64> = body["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("tags in {body}"))
        .iter()
        .map(|t| t["tag"].as_u64().expect("tag"))
        .collect();
    tags.sort_unstable();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_questions_are_answered_by_the_shards_holding_the_partitions() {
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    // Four stations about a kilometre apart on an east-west road.
    let station_ids = [1001u32, 1100, 1200, 1300];
    let store = stations_in(&database, &station_ids).await;
    for tag in 1..=24u32 {
        let vehicle = Vehicle {
            tag: TagId(tag),
            plate: format!("GD-B {tag:04}"),
            owner_name: "Owner".into(),
            owner_phone: "+86 1".into(),
            ..Default::default()
        };
        store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
    }
    let gateway = gateway(&nats.url(), &database).await;
    let shards = [
        shard(&nats.url(), &database, "shard-1").await,
        shard(&nats.url(), &database, "shard-2").await,
    ];
    let api = api_node(&nats.url(), &database).await;
    every_partition_held(&shards).await;

    // Tags 1..=24, tag t heard at station t % 4: every partition holds some of them.
    let heard_at = |tag: u32| station_ids[(tag % 4) as usize];
    let heard = now_ms();
    for (i, &id) in station_ids.iter().enumerate() {
        let tags: Vec<u32> = (1..=24).filter(|&t| heard_at(t) == id).collect();
        let station = TestStation::udp(id, 1, gateway.udp).await;
        assert_eq!(
            station
                .exchange(&station.detections(1, heard + i as i64, &tags))
                .await,
            AckStatus::Accepted
        );
    }

    // Where each vehicle is: from its partition's tracker (placed since, so not the store's).
    let purpose = "purpose=case%20C-31";
    for tag in 1..=24u32 {
        let path = format!("/api/v1/vehicles/{tag}/location?{purpose}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let (status, body) = ask(&api, &path).await;
            if status == 200 {
                break body;
            }
            assert!(
                status == 404 && Instant::now() < deadline,
                "tag {tag}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(body["station"], heard_at(tag), "tag {tag}: {body}");
        assert!(body["placed_since"].is_string(), "from memory: {body}");
    }
    // Tags near each station: gathered from every partition, exactly those heard there.
    for &id in &station_ids {
        let p = support::station(id).position;
        let (status, body) = ask(
            &api,
            &format!(
                "/api/v1/tags/near?lat={}&lon={}&radius_m=300&{purpose}",
                p.lat, p.lon
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let expected: Vec<u64> = (1..=24u32)
            .filter(|&t| heard_at(t) == id)
            .map(u64::from)
            .collect();
        assert_eq!(tags_of(&body), expected, "near {id}: {body}");
        assert!(body.get("missing_partitions").is_none(), "{body}");
    }
    // Through a box around the middle two stations in the last minutes: memory (each
    // partition's from its first detection on) joined with the store (before that).
    let (west, east) = (
        support::station(1100).position,
        support::station(1200).position,
    );
    let window = |ms: i64| tagwatch_model::time::to_rfc3339(ms).replace('+', "%2B");
    let (status, body) = ask(
        &api,
        &format!(
            "/api/v1/tags/through?south={}&west={}&north={}&east={}&from={}&to={}&{purpose}",
            west.lat - 0.001,
            west.lon - 0.001,
            west.lat + 0.001,
            east.lon + 0.001,
            window(heard - 60_000),
            window(now_ms() + 1_000),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected: Vec<u64> = (1..=24u32)
        .filter(|&t| [1100, 1200].contains(&heard_at(t)))
        .map(u64::from)
        .collect();
    assert_eq!(tags_of(&body), expected, "{body}");
    // A track from the vehicle's partition.
    let (status, body) = ask(&api, &format!("/api/v1/vehicles/5/track?{purpose}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["features"][0]["properties"]["station"],
        heard_at(5),
        "{body}"
    );
    // Who arrived with tag 1 at its station (in the same frame): vehicles of other partitions,
    // found by asking every partition about tag 1's stops.
    let (status, body) = ask(
        &api,
        &format!("/api/v1/vehicles/1/companions?min_times=1&{purpose}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut companions: Vec<u64> = body["companions"]
        .as_array()
        .unwrap_or_else(|| panic!("companions in {body}"))
        .iter()
        .map(|c| c["tag"].as_u64().expect("tag"))
        .collect();
    companions.sort_unstable();
    assert_eq!(companions, [5, 9, 13, 17, 21], "{body}");
    // Every station heard just now, by the partitions that saw its frames.
    let (status, body) = ask(&api, "/api/v1/stations").await;
    assert_eq!(status, 200, "{body}");
    for station in body["stations"].as_array().expect("stations") {
        assert_eq!(station["silent"], false, "{station}");
        assert!(station["last_frame_at"].is_string(), "{station}");
    }
    let answered: u64 = shards.iter().map(|s| s.metrics.questions.get()).sum();
    assert!(
        answered >= 24 + 4 * 4 + 4,
        "asked of the shards: {answered}"
    );

    // No shard left: an area's answer says which partitions are missing from it, and a
    // vehicle's question is refused with the partition that did not answer.
    for shard in shards {
        shard.stop().await;
    }
    let p = support::station(1001).position;
    let (status, body) = ask(
        &api,
        &format!(
            "/api/v1/tags/near?lat={}&lon={}&radius_m=300&{purpose}",
            p.lat, p.lon
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tags_of(&body), Vec::<u64>::new());
    assert_eq!(body["missing_partitions"], serde_json::json!([0, 1, 2, 3]));
    let (status, body) = ask(&api, &format!("/api/v1/vehicles/5/location?{purpose}")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unanswered", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer"), "{message}");
    let (status, body) = ask(&api, &format!("/api/v1/dens?{purpose}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing_partitions"], serde_json::json!([0, 1, 2, 3]));
    let (status, body) = ask(&api, "/api/v1/stations").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["missing_partitions"], serde_json::json!([0, 1, 2, 3]));

    api.stop().await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stations_health_is_watched_once_across_partitions() {
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let (quiet, busy) = (1001u32, 1100u32);
    let store = stations_in(&database, &[quiet, busy]).await;
    let gateway = gateway(&nats.url(), &database).await;
    let tracker = TrackerConfig {
        station_silent_ms: 3_000,
        ..TrackerConfig::default()
    };
    let shards = [
        shard_with(&nats.url(), &database, "shard-1", tracker).await,
        shard_with(&nats.url(), &database, "shard-2", tracker).await,
    ];
    every_partition_held(&shards).await;
    let station_alerts = || async {
        let alerts = store.alerts_after(0, 1_000).await.expect("alerts");
        alerts
            .into_iter()
            .filter(|a| a.tag.is_none())
            .map(|a| (a.station.0, a.kind.as_str().to_owned()))
            .collect::<Vec<_>>()
    };
    let a = TestStation::udp(quiet, 1, gateway.udp).await;
    let b = TestStation::udp(busy, 1, gateway.udp).await;
    // The quiet station hears vehicles of every partition, and reports a power fault once.
    let tags: Vec<u32> = (1..=16).collect();
    assert_eq!(
        a.exchange(&a.detections(1, now_ms(), &tags)).await,
        AckStatus::Accepted
    );
    let fault = tagwatch_gateway::wire::Status {
        uptime_s: 60,
        backlog: 0,
        fw_version: 1,
        temp_c: 30,
        power: 0x80,
        tags_in_range: 16,
    };
    let status = a.frame(2, now_ms(), tagwatch_gateway::wire::Body::Status(fault));
    assert_eq!(a.exchange(&status).await, AckStatus::Accepted);
    // Then it falls silent while the busy one goes on (its frames without a vehicle too).
    let mut seq = 0;
    let quiet_from = Instant::now();
    while quiet_from.elapsed() < Duration::from_secs(6) {
        seq += 1;
        let heard: &[u32] = if seq % 2 == 0 { &[] } else { &[3, 4, 5] };
        assert_eq!(
            b.exchange(&b.detections(seq, now_ms(), heard)).await,
            AckStatus::Accepted
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Heard again.
    assert_eq!(
        a.exchange(&a.detections(3, now_ms(), &tags)).await,
        AckStatus::Accepted
    );
    let expected = vec![
        (quiet, "station_power_fault".to_owned()),
        (quiet, "station_silent".to_owned()),
        (quiet, "station_back".to_owned()),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = station_alerts().await;
    while found.len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        found = station_alerts().await;
    }
    // A moment more: nothing raised twice by another partition.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(station_alerts().await, expected);
    let status = store
        .station_status(StationId(quiet))
        .await
        .expect("status")
        .expect("the quiet station's status is stored");
    assert_eq!(status.power, 0x80);

    for shard in shards {
        shard.stop().await;
    }
    gateway.stop().await;
}

/// A GPS tracker in a cluster: registered through an API node, it reaches a gateway's GT06
/// listener (which reads the trackers again every refresh), and its fix is where the API node
/// places the vehicle, answered by the shard holding the vehicle's partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gps_tracker_registered_on_an_api_node_reports_through_a_gateway() {
    use tagwatch_devices::gt06::{device, frame, reply, Frame};
    use tagwatch_devices::{Fix, Imei};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    const TAG: u32 = 21;
    let store = stations_in(&database, &[]).await;
    let vehicle = Vehicle {
        tag: TagId(TAG),
        plate: "GD-B 2121".into(),
        owner_name: "Lin".into(),
        owner_phone: "+86 6".into(),
        ..Default::default()
    };
    store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
    let gateway = RunningGateway::start(GatewayOptions {
        nats: nats.url(),
        database: database.clone(),
        udp: "127.0.0.1:0".parse().expect("addr"),
        tcp: "127.0.0.1:0".parse().expect("addr"),
        stations: StationsSection::default(),
        clock_skew_limit: Duration::from_secs(120),
        bus: BusConfig::default(),
        partitions: Some(PARTITIONS),
        refresh: Duration::from_millis(200),
        http: None,
        gt06: Some("127.0.0.1:0".parse().expect("addr")),
    })
    .await
    .expect("gateway starts");
    let shard = shard(&nats.url(), &database, "shard-1").await;
    let api = api_node(&nats.url(), &database).await;
    every_partition_held(std::slice::from_ref(&shard)).await;

    let imei = "868120300254321";
    let (status, _) = support::call_at(
        &format!("http://{}", api.http),
        reqwest::Method::POST,
        "/api/v1/trackers",
        TOKEN,
        Some(serde_json::json!({"imei": imei, "tag": TAG})),
    )
    .await;
    assert_eq!(status, 201);

    // The gateway learns the tracker within its refresh: log in until answered.
    let addr = gateway.gt06.expect("GT06 listener on");
    let login = device::login(Imei::parse(imei).expect("imei"), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        assert!(
            Instant::now() < deadline,
            "the gateway never took the tracker's login"
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(&login).await.expect("send");
        let mut ack = [0u8; 10];
        match tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut ack)).await {
            Ok(Ok(_)) => break stream,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let fix = Fix {
        at_ms: now_ms(),
        lat: 23.2601,
        lon: 116.5902,
        speed_kmh: 35,
        course_deg: 270,
        valid: true,
        satellites: Some(8),
        ignition: Some(true),
    };
    let message = device::fix(&fix, 2);
    stream.write_all(&message).await.expect("send fix");
    let mut buffer = Vec::new();
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(total) = frame::check(&buffer, frame::MAX_FRAME_LEN) {
                return buffer[..total].to_vec();
            }
            let mut chunk = [0u8; 64];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before the fix was acknowledged");
            buffer.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the fix acknowledged once JetStream holds it");
    let sent = Frame::parse(&message).expect("frame");
    assert_eq!(acked, reply::ack(&sent).expect("ack"));

    let deadline = Instant::now() + Duration::from_secs(10);
    let location = loop {
        let (status, body) = support::call_at(
            &format!("http://{}", api.http),
            reqwest::Method::GET,
            &format!("/api/v1/vehicles/{TAG}/location?purpose=case%2021%20check"),
            TOKEN,
            None,
        )
        .await;
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no location: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(location["source"], "gps", "{location}");
    assert!(
        (location["lat"].as_f64().expect("lat") - fix.lat).abs() < 1e-5,
        "{location}"
    );
    assert!(
        (location["lon"].as_f64().expect("lon") - fix.lon).abs() < 1e-5,
        "{location}"
    );
    drop(stream);
    api.stop().await;
    shard.stop().await;
    gateway.stop().await;
}
