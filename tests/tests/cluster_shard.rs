//! Tracker shards as a cluster runs them: the simulated city through a gateway into JetStream,
//! applied by two shard processes, one of them SIGKILLed mid-run and started again. Afterwards
//! the store must hold exactly what `serve` stores for the same frames: the same visits and the
//! same alerts (same ids), each alert once on the alerts stream, numbered by it.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use support::cluster::{
    arrival_order, checkpointed_everything, replay, run_role_child, streamed_alerts, RoleProcess,
};
use support::{provision_city, visit_key, VisitKey};
use tagwatch::config::StationsSection;
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::BusConfig;
use tagwatch_model::{StationId, TagId, Vehicle};
use tagwatch_sim::{CityConfig, SimConfig, Transport};
use tagwatch_store::Store;
use tokio_util::sync::CancellationToken;

const PARTITIONS: u16 = 8;

/// A role process this test starts. Does nothing unless started by the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a role process of the shard test; the test starts it"]
async fn shard_role_child() {
    run_role_child().await;
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
            ..Default::default()
        };
        store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
        store.open_case(tag, 0, "shard test").await.expect("case");
    }
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
        gt06: None,
    })
    .await
    .expect("gateway starts");
    let child = "shard_role_child";
    let mut shard_a = RoleProcess::shard(child, &nats.url(), &database, 1, "shard-a").await;
    let shard_b = RoleProcess::shard(child, &nats.url(), &database, 1, "shard-b").await;
    let held = "tagwatch_shard_partitions_held";

    let sim = SimConfig {
        city: city.clone(),
        start_ms: 1_800_000_000_000,
        duration_ms: Some(5 * 60_000),
        // Paced (10 s of real time), so the kill lands mid-run.
        speed: Some(30.0),
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
    while shard_a.metric(held).await + shard_b.metric(held).await < f64::from(PARTITIONS) {
        assert!(
            Instant::now() < deadline,
            "the shards did not share the partitions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held_by_a = shard_a.metric(held).await;
    assert!(held_by_a > 0.0, "shard a holds a share");
    shard_a.kill().await;
    let killed = Instant::now();
    while shard_b.metric(held).await < f64::from(PARTITIONS) {
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
        checkpointed_everything(&nats.url(), &store, PARTITIONS, Duration::from_secs(90)).await,
        "the shards did not checkpoint every part within 90 s"
    );
    assert!(
        shard_a.metric(held).await > 0.0,
        "the restarted shard took a share"
    );

    // The same frames through `serve`, in the order the gateway received them.
    let serve = support::TestServer::start_with(|c| {
        c.tracker.visit_gap = Duration::from_secs(30);
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    })
    .await;
    provision(serve.store(), &city).await;
    let mut serve = serve;
    serve.restart().await;
    let keys: HashMap<StationId, _> = tagwatch_sim::stations(&city)
        .into_iter()
        .map(|(s, key)| (s.id, key))
        .collect();
    let order = arrival_order(&nats.url(), &report.frames).await;
    replay(&order, &keys, serve.udp()).await;
    let serve_store = serve.stop_and_open_store().await;

    let visits = |visits: Vec<tagwatch_model::Visit>| {
        let mut keys: Vec<VisitKey> = visits.iter().map(visit_key).collect();
        keys.sort_unstable();
        keys
    };
    let cluster_visits = visits(store.all_visits().await.expect("visits"));
    let serve_visits = visits(serve_store.all_visits().await.expect("visits"));
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
