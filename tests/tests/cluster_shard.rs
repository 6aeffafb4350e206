//! Tracker shards as a cluster runs them: the simulated city through a gateway into JetStream,
//! applied by two shard processes, one of them SIGKILLed mid-run and started again. Afterwards
//! the store must hold exactly what `serve` stores for the same frames: the same visits and the
//! same alerts (same ids), each alert once on the alerts stream, numbered by it.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use support::{free_port, provision_city, spawn_server_process, visit_key, TestStation, VisitKey};
use tagwatch::config::StationsSection;
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch::shard_role::{RunningShard, ShardOptions};
use tagwatch_cluster::alerts::ALERTS_STREAM;
use tagwatch_cluster::bus::{partition_subject, FRAMES_STREAM};
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::BusConfig;
use tagwatch_gateway::wire::{AckStatus, Frame};
use tagwatch_model::{FrameKey, SessionId, StationId, TagId, Vehicle};
use tagwatch_sim::{CityConfig, SimConfig, Transport};
use tagwatch_store::Store;
use tagwatch_tracker::TrackerConfig;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

const PARTITIONS: u16 = 8;
const LEASE_TTL: Duration = Duration::from_secs(3);
/// Set in the child: `nats|database|name|http`.
const CHILD_ENV: &str = "TAGWATCH_SHARD_CHILD";

fn tracker_config() -> TrackerConfig {
    TrackerConfig {
        visit_gap_ms: 30_000,
        clock_skew_limit_ms: i64::try_from(support::SIMULATED_CLOCKS.as_millis()).expect("fits"),
        ..TrackerConfig::default()
    }
}

/// A shard process the test kills. Does nothing unless started by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the shard test's shard process; the shard test starts it"]
async fn shard_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [nats, database, name, http] = parts.as_slice() else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let _shard = RunningShard::start(ShardOptions {
        nats: (*nats).to_owned(),
        database: (*database).to_owned(),
        name: (*name).to_owned(),
        tracker: tracker_config(),
        bus: BusConfig::default(),
        lease_ttl: LEASE_TTL,
        flush_interval: Duration::from_millis(50),
        http: Some(http.parse().expect("http")),
    })
    .await
    .expect("the shard starts");
    // The parent kills us; an orphan ends by itself.
    tokio::time::sleep(Duration::from_secs(300)).await;
}

struct ShardProcess {
    spec: String,
    http: String,
    child: Child,
}

impl ShardProcess {
    async fn start(nats: &str, database: &str, name: &str) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let spec = format!("{nats}|{database}|{name}|{http}");
        let child = spawn_server_process("shard_child", CHILD_ENV, &spec, &http).await;
        Self { spec, http, child }
    }

    async fn restart(&mut self) {
        self.child = spawn_server_process("shard_child", CHILD_ENV, &self.spec, &self.http).await;
    }

    async fn held(&self) -> f64 {
        support::metric_at(
            &format!("http://{}", self.http),
            "tagwatch_shard_partitions_held",
        )
        .await
    }
}

fn city() -> CityConfig {
    CityConfig {
        seed: 11,
        grid_w: 5,
        grid_h: 5,
        tags: 200,
        ..CityConfig::default()
    }
}

/// The tags reported stolen before the run (the city's first ten).
fn stolen(city: &CityConfig) -> Vec<TagId> {
    (0..10).map(|i| TagId(city.first_tag + i)).collect()
}

/// The city's stations, and theft cases for the stolen tags, opened in the same order (so
/// case ids, and the alert ids made from them, agree between stores).
async fn provision(store: &Store, city: &CityConfig) {
    provision_city(store, city).await;
    for tag in stolen(city) {
        let vehicle = Vehicle {
            tag,
            plate: format!("ST-{}", tag.0),
            owner_name: "Chen".into(),
            owner_phone: "+86 3".into(),
        };
        store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
        store.open_case(tag, 0, "shard test").await.expect("case");
    }
}

/// Waits until every partition has applied everything the frames stream holds for it.
async fn applied_everything(nats: &str, store: &Store) -> bool {
    let client = async_nats::connect(nats).await.expect("connect");
    let stream = jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await
        .expect("frames stream");
    let deadline = Instant::now() + Duration::from_secs(90);
    'wait: while Instant::now() < deadline {
        for partition in 0..PARTITIONS {
            let last = match stream
                .get_last_raw_message_by_subject(&partition_subject(partition))
                .await
            {
                Ok(message) => message.sequence,
                Err(_) => continue,
            };
            let applied = store
                .partition_state(partition)
                .await
                .expect("state")
                .applied_seq;
            if applied < last {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'wait;
            }
        }
        return true;
    }
    false
}

/// The frames in the order the gateway received them (the order their parts reached
/// JetStream): which frame raised a sighting's alert first depends on it, so `serve` is given the
/// same order. Frames without parts (no records) come last.
async fn arrival_order(nats: &str, frames: &[Frame]) -> Vec<Frame> {
    let client = async_nats::connect(nats).await.expect("connect");
    let stream = jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await
        .expect("frames stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut by_key: HashMap<FrameKey, Frame> =
        frames.iter().map(|f| (f.key(), f.clone())).collect();
    let mut order = Vec::with_capacity(frames.len());
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        let frame = tagwatch_gateway::wire::decode_verified(&message.payload).expect("a part");
        if let Some(frame) = by_key.remove(&frame.key()) {
            order.push(frame);
        }
    }
    let mut rest: Vec<Frame> = by_key.into_values().collect();
    rest.sort_by_key(Frame::key);
    order.extend(rest);
    order
}

/// Sends `frames` to a `serve` over UDP, in the given order (paced, so none is dropped on the
/// way), then resends any not acknowledged until all are.
async fn replay(frames: &[Frame], city: &CityConfig, target: std::net::SocketAddr) {
    let keys: HashMap<StationId, _> = tagwatch_sim::stations(city)
        .into_iter()
        .map(|(s, key)| (s.id, key))
        .collect();
    let acked: Arc<Mutex<HashSet<FrameKey>>> = Arc::default();
    let mut senders: HashMap<(StationId, SessionId), Arc<TestStation>> = HashMap::new();
    let mut receivers = Vec::new();
    for frame in frames {
        let (station, session) = (frame.station, frame.session);
        if senders.contains_key(&(station, session)) {
            continue;
        }
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        socket.connect(target).await.expect("connect");
        let sender = Arc::new(TestStation {
            id: station,
            session,
            key: keys[&station].clone(),
            socket,
        });
        senders.insert((station, session), sender.clone());
        let acked = acked.clone();
        receivers.push(tokio::spawn(async move {
            while let Some((seq, status)) = sender.ack_within(Duration::from_secs(3)).await {
                assert_ne!(status, AckStatus::Rejected, "{station}/{session}/{seq}");
                if status != AckStatus::Busy {
                    acked.lock().expect("lock").insert(FrameKey {
                        station,
                        session,
                        seq,
                    });
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pending: Vec<&Frame> = frames.iter().collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "serve did not acknowledge every frame"
        );
        for (i, frame) in pending.iter().enumerate() {
            senders[&(frame.station, frame.session)].send(frame).await;
            if i % 32 == 31 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let acked = acked.lock().expect("lock");
        pending.retain(|f| !acked.contains(&f.key()));
    }
    for receiver in receivers {
        receiver.abort();
    }
}

/// Every alert on the alerts stream: (sequence, alert id).
async fn streamed_alerts(nats: &str) -> Vec<(u64, String)> {
    let client = async_nats::connect(nats).await.expect("connect");
    let stream = jetstream::new(client)
        .get_stream(ALERTS_STREAM)
        .await
        .expect("alerts stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut alerts = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        let alert =
            tagwatch_cluster::alerts::decode(message.sequence, &message.payload).expect("decodes");
        alerts.push((message.sequence, alert.id.0));
    }
    alerts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_one_killed_store_what_serve_stores_for_the_same_frames() {
    let Some(database) = tagwatch_store::testing::fresh_postgres().await else {
        eprintln!("skipped: a cluster needs Postgres (set TAGWATCH_TEST_POSTGRES_URL)");
        return;
    };
    let Some(nats) = NatsServer::start().await.expect("nats-server starts") else {
        return;
    };
    let city = city();
    let store = Store::open(&database).await.expect("store");
    provision(&store, &city).await;
    let gateway = RunningGateway::start(GatewayOptions {
        nats: nats.url(),
        database: database.clone(),
        udp: "127.0.0.1:0".parse().expect("addr"),
        tcp: "127.0.0.1:0".parse().expect("addr"),
        stations: StationsSection::default(),
        clock_skew_limit: support::SIMULATED_CLOCKS,
        bus: BusConfig::default(),
        partitions: Some(PARTITIONS),
        refresh: Duration::from_secs(5),
        http: None,
    })
    .await
    .expect("gateway starts");
    let mut shard_a = ShardProcess::start(&nats.url(), &database, "shard-a").await;
    let shard_b = ShardProcess::start(&nats.url(), &database, "shard-b").await;

    let sim = SimConfig {
        city: city.clone(),
        start_ms: 1_800_000_000_000,
        duration_ms: Some(10 * 60_000),
        // Paced (10 s of real time), so the kill lands mid-run.
        speed: Some(60.0),
        transport: Transport::Udp,
        loss: 0.02,
        resend_after: Duration::from_millis(150),
        keep_frames: true,
        drain_timeout: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let sim = tokio::spawn(tagwatch_sim::run(
        sim,
        gateway.udp,
        CancellationToken::new(),
    ));
    // Both shards hold a share before the kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    while shard_a.held().await + shard_b.held().await < f64::from(PARTITIONS) {
        assert!(
            Instant::now() < deadline,
            "the shards did not share the partitions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held_by_a = shard_a.held().await;
    assert!(held_by_a > 0.0, "shard a holds a share");
    shard_a.child.kill().await.expect("SIGKILL shard a");
    let killed = Instant::now();
    while shard_b.held().await < f64::from(PARTITIONS) {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "shard b did not take over shard a's partitions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "shard a's {held_by_a} partitions were taken over {:.2} s after its SIGKILL",
        killed.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Back again: it takes a share back from shard b.
    shard_a.restart().await;
    let report = sim.await.expect("simulator");
    let stats = &report.stats;
    eprintln!("{stats:?}");
    assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(stats.accepted + stats.duplicate, stats.frames_built);
    assert!(
        applied_everything(&nats.url(), &store).await,
        "the shards did not apply every part within 90 s"
    );
    assert!(
        shard_a.held().await > 0.0,
        "the restarted shard took a share"
    );

    // The same frames through `serve`.
    let serve = support::TestServer::start_with(|c| {
        c.tracker.visit_gap = Duration::from_secs(30);
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    })
    .await;
    provision(serve.store(), &city).await;
    let mut serve = serve;
    serve.restart().await;
    let order = arrival_order(&nats.url(), &report.frames).await;
    replay(&order, &city, serve.udp()).await;
    let serve_store = serve.stop_and_open_store().await;

    let visits = |mut keys: Vec<VisitKey>| {
        keys.sort_unstable();
        keys
    };
    let cluster_visits = visits(
        store
            .all_visits()
            .await
            .expect("visits")
            .iter()
            .map(visit_key)
            .collect(),
    );
    let serve_visits = visits(
        serve_store
            .all_visits()
            .await
            .expect("visits")
            .iter()
            .map(visit_key)
            .collect(),
    );
    assert!(cluster_visits.len() > 500, "a meaningful run");
    assert_eq!(cluster_visits.len(), serve_visits.len(), "visit count");
    assert!(
        cluster_visits == serve_visits,
        "the cluster's visits differ from serve's"
    );
    assert_eq!(
        cluster_visits,
        support::expected_visits(&report, 30_000),
        "and both are the frames' visits"
    );

    // Vehicles' alerts: station health is not the shards' (a station's frames are split
    // between them), and serve's replay takes its own time over it.
    let ids = |alerts: Vec<tagwatch_model::Alert>| -> BTreeSet<String> {
        alerts
            .into_iter()
            .filter(|a| a.tag.is_some())
            .map(|a| a.id.0)
            .collect()
    };
    let cluster_alerts = store.alerts_after(0, 100_000).await.expect("alerts");
    let serve_alerts = ids(serve_store.alerts_after(0, 100_000).await.expect("alerts"));
    assert!(!serve_alerts.is_empty(), "the stolen tags were heard");
    let streamed = streamed_alerts(&nats.url()).await;
    let streamed_ids: BTreeSet<String> = streamed.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(
        streamed.len(),
        streamed_ids.len(),
        "each alert once on the stream"
    );
    for alert in &cluster_alerts {
        assert!(
            streamed.contains(&(u64::try_from(alert.seq).expect("seq"), alert.id.0.clone())),
            "stored alert {} is numbered by the stream",
            alert.id.0
        );
    }
    let cluster_alerts = ids(cluster_alerts);
    assert_eq!(cluster_alerts, serve_alerts, "the same alerts as serve");
    assert_eq!(streamed_ids, serve_alerts, "and the stream carries those");

    drop(shard_b);
    gateway.stop().await;
}
