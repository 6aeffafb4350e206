//! The whole cluster as a province would run it, each role a process of its own: a three-node
//! NATS JetStream cluster, Postgres, two gateways, three tracker shards and two API nodes. Two
//! simulated districts (stolen, armed, fenced and paired vehicles among their traffic) reach
//! the gateways, one over UDP and one over TCP. Mid-run a shard, a gateway and a NATS node are
//! SIGKILLed and started again, and an officer's alert stream moves from one API node to the
//! other with `Last-Event-ID`.
//!
//! Afterwards: every frame acknowledged; the stored visits equal a single `serve`'s given the
//! same frames in the same order (and the frames' own visits); the same stolen and armed
//! alerts as that `serve`, by id; every alert once in the store, once on the alerts stream and
//! once on the officer's stream.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::cluster::{
    arrival_order, checkpointed_everything, replay, run_role_child, streamed_alerts, RoleProcess,
};
use support::{free_port, open_events_at, provision_city, visit_key, VisitKey, TOKEN};
use tagwatch_cluster::local::NatsCluster;
use tagwatch_cluster::{Bus, BusConfig};
use tagwatch_model::{GeoPoint, Geofence, Role, StationId, StationKey, TagId, Vehicle};
use tagwatch_sim::{CityConfig, SimConfig, SimReport, Transport};
use tagwatch_store::Store;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const PARTITIONS: u16 = 16;
const CHILD: &str = "cluster_role_child";

/// A role process this test starts. Does nothing unless started by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a role process of the cluster test; the test starts it"]
async fn cluster_role_child() {
    run_role_child().await;
}

/// Two districts side by side, with stations and tags of their own.
fn districts() -> [CityConfig; 2] {
    let west = CityConfig {
        seed: 21,
        grid_w: 3,
        grid_h: 3,
        tags: 120,
        ..CityConfig::default()
    };
    let east = CityConfig {
        seed: 22,
        first_station: 2001,
        first_tag: 200_001,
        origin: GeoPoint {
            lat: west.origin.lat,
            lon: west.origin.lon + 0.02,
        },
        ..west.clone()
    };
    [west, east]
}

/// Stations, and in each district: two stolen vehicles, two armed where they start, a geofence
/// over its south-west quarter watching four tags, and two pairs. The same calls in the same
/// order on every store, so case and fence ids (and the alert ids made from them) agree.
async fn provision(store: &Store) {
    let admin = store
        .insert_user("provisioner", "x", Role::Admin, 0)
        .await
        .expect("user");
    for city in districts() {
        provision_city(store, &city).await;
        let tag = |i: u32| TagId(city.first_tag + i);
        for i in 0..4 {
            let vehicle = Vehicle {
                tag: tag(i),
                plate: format!("D-{}", tag(i).0),
                owner_name: "Zhao".into(),
                owner_phone: "+86 6".into(),
                ..Default::default()
            };
            store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
        }
        for i in 0..2 {
            store.open_case(tag(i), 0, "e2e").await.expect("case");
        }
        let first = StationId(city.first_station);
        let first_place = city.origin;
        for i in 2..4 {
            store
                .arm(tag(i), 0, first, first_place)
                .await
                .expect("armed");
        }
        let o = city.origin;
        let fence = Geofence {
            id: 0,
            name: format!("district {}", city.first_station),
            area: vec![
                o,
                GeoPoint {
                    lat: o.lat,
                    lon: o.lon + 0.004,
                },
                GeoPoint {
                    lat: o.lat + 0.004,
                    lon: o.lon + 0.004,
                },
                GeoPoint {
                    lat: o.lat + 0.004,
                    lon: o.lon,
                },
            ],
            tags: (4..8).map(tag).collect(),
            on_enter: true,
            on_leave: true,
        };
        store
            .insert_geofence(&fence, admin, 0)
            .await
            .expect("fence");
        for (a, b) in [(8, 9), (10, 11)] {
            store.pair(tag(a), tag(b), admin, 0).await.expect("pair");
        }
    }
}

fn sim(city: CityConfig, transport: Transport) -> SimConfig {
    SimConfig {
        city,
        start_ms: 1_800_000_000_000,
        duration_ms: Some(6 * 60_000),
        // Paced (12 s of real time), so every kill lands mid-run.
        speed: Some(30.0),
        transport,
        loss: 0.02,
        resend_after: Duration::from_millis(200),
        keep_frames: true,
        drain_timeout: Duration::from_secs(90),
        ..SimConfig::default()
    }
}

/// Alerts an officer's stream delivered: (SSE id, alert id) of each.
type Received = Arc<Mutex<Vec<(i64, String)>>>;

/// Reads alert events into `received` until told to stop or the stream ends.
fn collect_alerts(
    mut events: support::Events,
    received: Received,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = &mut stop => break,
                event = events.next() => event,
            };
            let Some(Ok(event)) = event else { break };
            if event.event == "alert" {
                let alert: serde_json::Value =
                    serde_json::from_str(&event.data).expect("alert json");
                let seq: i64 = event.id.parse().expect("numeric event id");
                assert_eq!(alert["seq"], seq, "the event id is the alert's seq");
                let id = alert["id"].as_str().expect("id").to_owned();
                received.lock().expect("lock").push((seq, id));
            }
        }
    });
    (stop_tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_under_sigkills_stores_and_alerts_what_serve_does() {
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(mut nats) = NatsCluster::start().await.expect("nats cluster starts") else {
        return;
    };
    let url = nats.url();
    // The cluster's streams, three copies each, once JetStream has elected its leader.
    let deadline = Instant::now() + Duration::from_secs(60);
    let bus = loop {
        let config = BusConfig {
            replicas: 3,
            ..BusConfig::default()
        };
        match Bus::connect(&url, config, Some(PARTITIONS)).await {
            Ok(bus) => break bus,
            Err(error) if Instant::now() < deadline => {
                eprintln!("waiting for JetStream: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("the NATS cluster never served JetStream: {error}"),
        }
    };
    drop(bus);
    let store = Store::open(&database).await.expect("store");
    provision(&store).await;

    let addr =
        |port: u16| -> std::net::SocketAddr { format!("127.0.0.1:{port}").parse().expect("addr") };
    let (udp_port, tcp_port) = (free_port(), free_port());
    let _gateway_udp =
        RoleProcess::gateway(CHILD, &url, &database, 3, addr(udp_port), addr(free_port())).await;
    let mut gateway_tcp =
        RoleProcess::gateway(CHILD, &url, &database, 3, addr(free_port()), addr(tcp_port)).await;
    let mut shards = Vec::new();
    for name in ["shard-1", "shard-2", "shard-3"] {
        shards.push(RoleProcess::shard(CHILD, &url, &database, 3, name).await);
    }
    let api = [
        RoleProcess::api(CHILD, &url, &database).await,
        RoleProcess::api(CHILD, &url, &database).await,
    ];
    let held = "tagwatch_shard_partitions_held";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut total = 0.0;
        for shard in &shards {
            total += shard.metric(held).await;
        }
        if total >= f64::from(PARTITIONS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shards did not take every partition"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream_url = |node: &RoleProcess| format!("http://{}/api/v1/alerts/stream", node.http);
    let received: Received = Arc::default();
    let (stop_first, first_stream) = collect_alerts(
        open_events_at(&stream_url(&api[0]), TOKEN, None).await,
        received.clone(),
    );

    let [west, east] = districts();
    let runs = [
        tokio::spawn(tagwatch_sim::run(
            sim(west.clone(), Transport::Udp),
            addr(udp_port),
            CancellationToken::new(),
        )),
        tokio::spawn(tagwatch_sim::run(
            sim(east.clone(), Transport::Tcp),
            addr(tcp_port),
            CancellationToken::new(),
        )),
    ];

    // A shard dies; the others take its partitions once its leases lapse.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim_held = shards[0].metric(held).await;
    shards[0].kill().await;
    let killed = Instant::now();
    loop {
        let survivors = shards[1].metric(held).await + shards[2].metric(held).await;
        if survivors >= f64::from(PARTITIONS) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the other shards did not take over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed.elapsed();
    // The TCP gateway dies and comes back on its port; its stations reconnect and resend.
    gateway_tcp.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateway_tcp.restart().await;
    shards[0].restart().await;
    // The officer's client moves to the other API node, from the last event it had.
    stop_first.send(()).expect("first stream reader");
    first_stream.await.expect("first stream");
    let last_id = received
        .lock()
        .expect("lock")
        .last()
        .map_or(0, |(seq, _)| *seq)
        .to_string();
    let (stop_second, second_stream) = collect_alerts(
        open_events_at(&stream_url(&api[1]), TOKEN, Some(&last_id)).await,
        received.clone(),
    );
    // A NATS node dies; the streams go on with the other two copies.
    nats.kill(1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.restart(1).await.expect("the NATS node starts again");

    let mut reports: Vec<SimReport> = Vec::new();
    for run in runs {
        reports.push(run.await.expect("simulator"));
    }
    for report in &reports {
        let stats = &report.stats;
        eprintln!("{stats:?}");
        assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
        assert_eq!(stats.rejected, 0, "{stats:?}");
        assert_eq!(stats.accepted + stats.duplicate, stats.frames_built);
    }
    assert!(
        checkpointed_everything(&url, &store, PARTITIONS, Duration::from_secs(120)).await,
        "the shards did not checkpoint every part within 120 s"
    );
    eprintln!(
        "shard-1's {victim_held} partitions taken over {:.2} s after its SIGKILL",
        takeover.as_secs_f64()
    );
    // The officer's stream has caught up with the alerts stream (at most 20 s more).
    let on_the_stream = streamed_alerts(&url).await.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.lock().expect("lock").len() < on_the_stream && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_second.send(()).expect("second stream reader");
    second_stream.await.expect("second stream");

    // The same frames through one `serve`, in the order the gateways received them.
    let serve = support::TestServer::start_with(|c| {
        c.tracker.visit_gap = Duration::from_secs(30);
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    })
    .await;
    provision(serve.store()).await;
    let mut serve = serve;
    serve.restart().await;
    let keys: HashMap<StationId, StationKey> = [&west, &east]
        .into_iter()
        .flat_map(tagwatch_sim::stations)
        .map(|(s, key)| (s.id, key))
        .collect();
    let frames: Vec<_> = reports.iter().flat_map(|r| r.frames.clone()).collect();
    let order = arrival_order(&url, &frames).await;
    replay(&order, &keys, serve.udp()).await;
    let serve_store = serve.stop_and_open_store().await;

    let visits = |visits: Vec<tagwatch_model::Visit>| {
        let mut keys: Vec<VisitKey> = visits.iter().map(visit_key).collect();
        keys.sort_unstable();
        keys
    };
    let stored_visits = store.all_visits().await.expect("visits");
    let mut by_key: HashMap<VisitKey, Vec<i64>> = HashMap::new();
    for v in &stored_visits {
        by_key.entry(visit_key(v)).or_default().push(v.id.0);
    }
    let twice: Vec<_> = by_key
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .take(5)
        .collect();
    assert!(
        twice.is_empty(),
        "visits stored twice (ids: lane = id % 1024, created = id >> 20): {twice:?}"
    );
    let cluster_visits = visits(stored_visits);
    let serve_visits = visits(serve_store.all_visits().await.expect("visits"));
    let mut expected: Vec<VisitKey> = reports
        .iter()
        .flat_map(|r| support::expected_visits(r, 30_000))
        .collect();
    expected.sort_unstable();
    let differences = |a: &[VisitKey], b: &[VisitKey]| -> (Vec<VisitKey>, Vec<VisitKey>) {
        let (a_set, b_set): (BTreeSet<_>, BTreeSet<_>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        (
            a_set.difference(&b_set).take(5).copied().collect(),
            b_set.difference(&a_set).take(5).copied().collect(),
        )
    };
    assert!(cluster_visits.len() > 500, "a meaningful run");
    assert!(
        cluster_visits == expected,
        "the cluster's visits differ from the frames' ({} and {}): {:?}",
        cluster_visits.len(),
        expected.len(),
        differences(&cluster_visits, &expected)
    );
    assert!(
        serve_visits == expected,
        "serve's visits differ from the frames' ({} and {}): {:?}",
        serve_visits.len(),
        expected.len(),
        differences(&serve_visits, &expected)
    );

    // Vehicles' alerts: a station's health follows the server's clock as frames arrive, and the
    // replay into `serve` is not paced as the run was (`cluster_api.rs` tests station health).
    let vehicles = |alerts: Vec<tagwatch_model::Alert>| -> Vec<tagwatch_model::Alert> {
        alerts.into_iter().filter(|a| a.tag.is_some()).collect()
    };
    let cluster_alerts = vehicles(store.alerts_after(0, 100_000).await.expect("alerts"));
    let serve_alerts = vehicles(serve_store.alerts_after(0, 100_000).await.expect("alerts"));
    let kinds: BTreeSet<&str> = serve_alerts.iter().map(|a| a.kind.as_str()).collect();
    eprintln!("{} alerts of kinds {kinds:?}", serve_alerts.len());
    assert!(kinds.contains("stolen_sighting"), "{kinds:?}");
    let ids = |alerts: &[tagwatch_model::Alert]| -> BTreeSet<String> {
        alerts.iter().map(|a| a.id.0.clone()).collect()
    };
    // Every vehicle's alert follows from the frames, the alerts stored before a partition moved
    // and the partition's rule state at its checkpoint (where fenced tags were placed, the
    // companion checks waiting): exactly serve's, by id.
    let (cluster_ids, serve_ids) = (ids(&cluster_alerts), ids(&serve_alerts));
    assert!(
        cluster_ids == serve_ids,
        "the same vehicles' alerts as serve; only in the cluster: {:?}; only in serve: {:?}",
        cluster_ids.difference(&serve_ids).collect::<Vec<_>>(),
        serve_ids.difference(&cluster_ids).collect::<Vec<_>>()
    );
    eprintln!("{} vehicles' alerts in both", cluster_ids.len());
    // Stations' alerts too, from here on: every alert stored once, streamed once.
    let all_cluster_ids = ids(&store.alerts_after(0, 100_000).await.expect("alerts"));
    let streamed = streamed_alerts(&url).await;
    let streamed_ids: BTreeSet<String> = streamed.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(
        streamed.len(),
        streamed_ids.len(),
        "each alert once on the stream"
    );
    assert_eq!(
        streamed_ids, all_cluster_ids,
        "the stream carries the stored ones"
    );

    let officer: Vec<(i64, String)> = received.lock().expect("lock").clone();
    assert!(
        officer.windows(2).all(|w| w[0].0 < w[1].0),
        "the officer's stream is in order, without a repeat, across the move"
    );
    let officer_ids: BTreeSet<String> = officer.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        officer_ids, all_cluster_ids,
        "the officer received every alert, across the move"
    );
}
