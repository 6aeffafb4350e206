//! Store-down test: Postgres becomes unreachable while the city streams. The server must stop
//! acknowledging (no ACK, or BUSY) rather than acknowledge what is not durable, keep its memory
//! bounded (the ingest queue is bounded, the batch waits for the writer), say so on `/healthz`,
//! and once Postgres is back, commit everything: the final visits equal an uninterrupted run's.
//!
//! Postgres is reached through a TCP proxy in this test, which the test cuts and restores.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{expected_visits, provision_city, visit_key, TestServer, VisitKey};
use tagwatch_sim::{CityConfig, SimConfig, Transport};
use tagwatch_store::Store;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Forwards 127.0.0.1:port → Postgres while `up`; when cut, closes every connection and refuses
/// new ones.
async fn proxy(target: String, up: Arc<AtomicBool>, cut: Arc<tokio::sync::Notify>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if !up.load(Ordering::SeqCst) {
                continue; // dropped: connection refused in effect
            }
            let target = target.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = copy_bidirectional(&mut client, &mut server) => {}
                    () = cut.notified() => {}
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_stops_acks_then_everything_recovers() {
    let Some(url) = tagwatch_store::testing::fresh_postgres().await else {
        return;
    };
    let city = CityConfig {
        seed: 11,
        grid_w: 4,
        grid_h: 4,
        tags: 150,
        ..CityConfig::default()
    };
    {
        let store = Store::open(&url).await.expect("store");
        provision_city(&store, &city).await;
        store.close().await;
    }
    let (_, db) = url.rsplit_once('/').expect("url has a database");
    let up = Arc::new(AtomicBool::new(true));
    let cut = Arc::new(tokio::sync::Notify::new());
    let port = proxy("127.0.0.1:5432".into(), up.clone(), cut.clone()).await;
    let proxied = format!("postgres://postgres@127.0.0.1:{port}/{db}");
    let mut server = TestServer::start_with(|c| {
        c.store.database = proxied;
        c.ingest.queue_frames = 128;
        c.ingest.max_batch_frames = 128;
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    })
    .await;

    let sim = SimConfig {
        city,
        start_ms: 1_800_000_000_000,
        duration_ms: Some(10 * 60_000),
        speed: None,
        transport: Transport::Udp,
        resend_after: Duration::from_millis(200),
        // Stations with deep backlogs: more unacknowledged frames than the server will hold.
        max_unacked_per_station: 100,
        window: 64,
        keep_frames: true,
        drain_timeout: Duration::from_secs(120),
        ..SimConfig::default()
    };
    let sim = tokio::spawn(tagwatch_sim::run(
        sim,
        server.udp(),
        CancellationToken::new(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // Postgres goes away.
    up.store(false, Ordering::SeqCst);
    cut.notify_waiters();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let health = reqwest::get(server.url("/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 503, "the outage shows on /healthz");
    let accepted_during = server
        .series("tagwatch_acks_sent_total{status=\"accepted\"}")
        .await;
    let in_flight: serde_json::Value = health.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        server
            .series("tagwatch_acks_sent_total{status=\"accepted\"}")
            .await,
        accepted_during,
        "nothing is ACCEPTED while the store is down"
    );
    let busy = server
        .series("tagwatch_acks_sent_total{status=\"busy\"}")
        .await;
    assert!(busy > 0.0, "a stalled ingest answers BUSY");
    // Memory stays bounded: once the ingest has measured that nothing drains (a second or so),
    // it queues nothing more, so what the server holds stops growing while the store stays down;
    // the stations keep the rest.
    let held = |health: &serde_json::Value| {
        health["frames_in_flight"].as_u64().expect("in flight")
            + health["queue_depth"].as_u64().expect("queue")
    };
    let held_then = held(&in_flight);
    let health: serde_json::Value = reqwest::get(server.url("/healthz"))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    let held_now = held(&health);
    assert!(
        held_now <= held_then + 64,
        "still growing 1.5 s later: {held_then} then {held_now} frames held"
    );

    // Postgres is back: everything resumes and nothing is lost.
    up.store(true, Ordering::SeqCst);
    let report = sim.await.expect("simulator");
    let stats = &report.stats;
    assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
    assert_eq!(
        stats.accepted + stats.duplicate,
        stats.frames_built,
        "{stats:?}"
    );
    assert_eq!(
        reqwest::get(server.url("/healthz"))
            .await
            .expect("healthz")
            .status(),
        200
    );
    let store = server.stop_and_open_store().await;
    let stored = store.all_visits().await.expect("visits");
    let mut got: Vec<VisitKey> = stored.iter().map(visit_key).collect();
    got.sort_unstable();
    assert!(
        got == expected_visits(&report, 30_000),
        "visits differ after the outage"
    );
    store.close().await;
}
