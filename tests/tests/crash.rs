//! Crash test: the simulated city streams to a server *process* that is killed with SIGKILL
//! several times at random moments and restarted on the same store. At the end:
//! - every frame the simulator built was acknowledged, none rejected;
//! - the stored visits equal those an uninterrupted run stores — the visits the frames imply,
//!   computed independently (the pipeline test shows an uninterrupted run stores exactly these);
//! - no alert was stored twice: each visit of the stolen vehicle carries at most one alert;
//! - kills land between checkpoints, so each start applies the frame journal again (checked).
//!
//! Runs on SQLite, and on Postgres when `TAGWATCH_TEST_POSTGRES_URL` is set. The server process
//! is this test binary itself, re-run in "child" mode (`crash_child`), so no separately built
//! binary is needed.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{
    expected_visits, free_port, provision_city, spawn_server_process, visit_key, VisitKey,
};
use tagwatch::config::ListenSection;
use tagwatch::Server;
use tagwatch_model::{TagId, Vehicle};
use tagwatch_sim::{CityConfig, SimConfig, Transport};
use tagwatch_store::Store;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

/// Set in the child: `database|udp|tcp|http`.
const CHILD_ENV: &str = "TAGWATCH_CRASH_CHILD";
const KILLS: u32 = 4;

/// The server process the crash test kills. Does nothing unless started by the crash test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the crash test's server process; the crash test starts it"]
async fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [database, udp, tcp, http] = parts.as_slice() else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let mut config = support::loopback(database);
    config.listen = ListenSection {
        udp: udp.parse().expect("udp"),
        tcp: tcp.parse().expect("tcp"),
        http: http.parse().expect("http"),
        gt06: None,
    };
    config.store.flush_interval = Duration::from_millis(10);
    // Checkpoints 0.3 s apart and kills 0.2–1.2 s apart: kills land before, during and between
    // checkpoints, and leave a journal behind, which the next start applies again.
    config.store.checkpoint_interval = Some(Duration::from_millis(300));
    config.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    let _server = Server::start(&config).await.expect("the server starts");
    // The parent kills us; an orphan ends by itself.
    tokio::time::sleep(Duration::from_secs(240)).await;
}

async fn spawn_server(spec: &str, http: &str) -> Child {
    spawn_server_process("crash_child", CHILD_ENV, spec, http).await
}

async fn crash_run(database: String) {
    let city = CityConfig {
        seed: 7,
        grid_w: 4,
        grid_h: 4,
        tags: 150,
        ..CityConfig::default()
    };
    let stolen = TagId(city.first_tag + 3);
    {
        let store = Store::open(&database).await.expect("store");
        provision_city(&store, &city).await;
        let vehicle = Vehicle {
            tag: stolen,
            plate: "STOLEN-1".into(),
            owner_name: "Wang".into(),
            owner_phone: "+86 2".into(),
            ..Default::default()
        };
        store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
        store
            .open_case(stolen, 0, "crash test")
            .await
            .expect("case");
        store.close().await;
    }
    let (udp, http) = (free_port(), free_port());
    let udp_addr = format!("127.0.0.1:{udp}");
    let http_addr = format!("127.0.0.1:{http}");
    let spec = format!("{database}|{udp_addr}|127.0.0.1:0|{http_addr}");
    let mut child = spawn_server(&spec, &http_addr).await;

    let sim = SimConfig {
        city,
        start_ms: 1_800_000_000_000,
        duration_ms: Some(15 * 60_000),
        // Paced (9 s of real time), so every kill lands mid-run however fast the machine is.
        speed: Some(100.0),
        transport: Transport::Udp,
        loss: 0.02,
        resend_after: Duration::from_millis(150),
        keep_frames: true,
        drain_timeout: Duration::from_secs(120),
        ..SimConfig::default()
    };
    let target = udp_addr.parse().expect("addr");
    let sim = tokio::spawn(tagwatch_sim::run(sim, target, CancellationToken::new()));
    let mut rng = fastrand::Rng::with_seed(2026);
    let mut kills = 0;
    let mut replayed = 0.0;
    while kills < KILLS && !sim.is_finished() {
        tokio::time::sleep(Duration::from_millis(rng.u64(200..1_200))).await;
        child.kill().await.expect("SIGKILL the server");
        kills += 1;
        child = spawn_server(&spec, &http_addr).await;
        replayed += support::metric_at(
            &format!("http://{http_addr}"),
            "tagwatch_frames_replayed_total",
        )
        .await;
    }
    let report = sim.await.expect("simulator");
    child.kill().await.expect("stop the server");
    assert!(
        replayed > 0.0,
        "the kills left journaled frames to apply again"
    );
    // The last run's journal, applied again by a server that then stops cleanly (a checkpoint).
    let mut config = support::loopback(&database);
    config.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    Server::start(&config)
        .await
        .expect("the server starts once more")
        .shutdown()
        .await;
    let stats = &report.stats;
    eprintln!("{database}: {kills} kills, {stats:?}");
    assert_eq!(
        kills, KILLS,
        "the run ended before every kill: make it longer"
    );

    assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(
        stats.accepted + stats.duplicate,
        stats.frames_built,
        "{stats:?}"
    );

    let store = Store::open(&database).await.expect("reopen");
    let stored = store.all_visits().await.expect("visits");
    let mut got: Vec<VisitKey> = stored.iter().map(visit_key).collect();
    got.sort_unstable();
    let expected = expected_visits(&report, 30_000);
    assert_eq!(got.len(), expected.len(), "visit count");
    assert!(
        got == expected,
        "stored visits differ from an uninterrupted run's"
    );

    let alerts = store.alerts_for_tag(stolen, 10_000).await.expect("alerts");
    assert!(
        !alerts.is_empty(),
        "the stolen vehicle was heard, so it was alerted"
    );
    let mut per_visit: HashMap<i64, u32> = HashMap::new();
    for alert in &alerts {
        let visit = stored
            .iter()
            .find(|v| {
                Some(v.tag) == alert.tag
                    && v.station == alert.station
                    && v.first_seen_ms <= alert.seen_at_ms
                    && alert.seen_at_ms <= v.last_seen_ms
            })
            .unwrap_or_else(|| panic!("alert {alert:?} outside every stored visit"));
        *per_visit.entry(visit.id.0).or_default() += 1;
    }
    assert!(
        per_visit.values().all(|&n| n == 1),
        "a visit was alerted twice: {per_visit:?}"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    crash_run(format!(
        "sqlite://{}",
        dir.path().join("crash.sqlite").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing_on_postgres() {
    if let Some(url) = tagwatch_store::testing::fresh_postgres().await {
        crash_run(url).await;
    }
}
