//! Outage test: a station is cut off for a simulated hour while the city goes on, then sends its
//! whole backlog. The server keeps 30 minutes of visits in memory, so most of the backlog lands
//! behind its hot window and must be merged with visits read back from the store. The final histories must equal what the frames imply
//! (the visits are neither split nor doubled by the late arrival) and agree with ground truth.
//! On SQLite, and on Postgres when `TAGWATCH_TEST_POSTGRES_URL` is set.

mod support;

use std::time::Duration;
use support::{expected_visits, provision_city, visit_key, TestServer, VisitKey};
use tagwatch_model::StationId;
use tagwatch_sim::{CityConfig, Outage, SimConfig, Transport};
use tokio_util::sync::CancellationToken;

const MINUTE: i64 = 60_000;

async fn outage_run(database: Option<String>) {
    let city = CityConfig {
        seed: 5,
        grid_w: 4,
        grid_h: 4,
        tags: 120,
        ..CityConfig::default()
    };
    let cut = StationId(city.first_station + 5);
    let mut server = TestServer::start_with(|c| {
        c.tracker.hot_window = Duration::from_secs(30 * 60);
        // Checkpoints also age visits out of the hot window; the simulation runs far faster
        // than real time, so they must come more often than the default 30 s to do so mid-run.
        c.store.checkpoint_interval = Some(Duration::from_millis(50));
        // A tight admission bound: when the drain falls behind, part of the backlog is refused
        // BUSY and comes back out of order (as lost frames do), behind the hot window, and must
        // still merge into unsplit visits (the tracker's property test covers every order).
        c.ingest.admission_bound = Duration::from_millis(20);
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
        if let Some(url) = database {
            c.store.database = url;
        }
    })
    .await;
    provision_city(server.store(), &city).await;
    server.restart().await;
    let sim = SimConfig {
        city,
        start_ms: 1_800_000_000_000,
        duration_ms: Some(80 * MINUTE),
        speed: None,
        transport: Transport::Udp,
        loss: 0.02,
        resend_after: Duration::from_millis(150),
        keep_frames: true,
        drain_timeout: Duration::from_secs(120),
        outages: vec![Outage {
            station: cut,
            starts_after_ms: 10 * MINUTE,
            lasts_ms: 60 * MINUTE,
        }],
        ..SimConfig::default()
    };
    let report = tagwatch_sim::run(sim, server.udp(), CancellationToken::new()).await;
    let stats = &report.stats;
    assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
    assert_eq!(
        stats.accepted + stats.duplicate,
        stats.frames_built,
        "{stats:?}"
    );
    let backlog = report
        .frames
        .iter()
        .filter(|f| f.station == cut)
        .filter(|f| {
            let t = f.time_ms as i64 - 1_800_000_000_000;
            (10 * MINUTE..70 * MINUTE).contains(&t)
        })
        .count();
    assert!(
        backlog > 1_000,
        "the station built an hour of frames: {backlog}"
    );
    let lookups = server.metric("tagwatch_history_lookups_total").await;
    assert!(lookups > 0.0, "the backlog reached behind the hot window");

    let store = server.stop_and_open_store().await;
    let stored = store.all_visits().await.expect("visits");
    let mut got: Vec<VisitKey> = stored.iter().map(visit_key).collect();
    got.sort_unstable();
    let expected = expected_visits(&report, 30_000);
    let at_cut = |v: &&VisitKey| v.1 == cut;
    assert_eq!(
        got.iter().filter(at_cut).count(),
        expected.iter().filter(at_cut).count(),
        "visits at the cut-off station"
    );
    assert!(
        got == expected,
        "histories differ from an uninterrupted station's"
    );
    // Against ground truth: every visit at the cut-off station lies where the tag really was.
    for v in stored.iter().filter(|v| v.station == cut) {
        let inside = |t: i64| {
            report.truth.iter().any(|i| {
                i.tag == v.tag && i.station == cut && i.enter_ms - 100 <= t && t <= i.exit_ms
            })
        };
        assert!(inside(v.first_seen_ms) && inside(v.last_seen_ms), "{v:?}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_backlog_merges_into_history_on_sqlite() {
    outage_run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_backlog_merges_into_history_on_postgres() {
    if let Some(url) = tagwatch_store::testing::fresh_postgres().await {
        outage_run(Some(url)).await;
    }
}
