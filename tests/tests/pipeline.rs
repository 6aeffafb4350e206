//! The whole pipeline under the simulated city: a few dozen stations, a few hundred tags and 5 %
//! packet loss, over UDP and over TCP, against the real server on loopback.
//!
//! Checked, after the run:
//! - delivery: every frame the simulator built was finally acknowledged (ACCEPTED, or DUPLICATE
//!   when its ACCEPTED was lost), none rejected, and the server applied each exactly once;
//! - exactness: the stored visits equal the visits computed independently here from the frames
//!   the simulator built (same tags, stations, first/last times, read counts and best RSSI);
//! - truth: against the simulator's ground truth (which tag was in which station's range, when),
//!   every visit's first and last detection lie inside a true in-range interval (precision), and
//!   nearly every interval long enough to be heard has a visit (recall). Tolerance: a tag beacons
//!   every 2 s and is heard 60–70 % of the time, so a visit starts after the true entry and ends
//!   before the true exit by a few seconds; a 20 s interval holds ~10 beacons, all missed with
//!   probability below 0.5^10, so recall over such intervals must be ≥ 0.99;
//! - no false alerts: nothing is stolen or flagged, so no watch rule may fire.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::{expected_visits, provision_city, visit_key, TestServer, VisitKey};
use tagwatch_model::{StationId, TagId};
use tagwatch_sim::{CityConfig, SimConfig, Transport, TruthInterval};
use tokio_util::sync::CancellationToken;

fn city() -> CityConfig {
    CityConfig {
        seed: 42,
        grid_w: 6,
        grid_h: 6,
        tags: 300,
        ..CityConfig::default()
    }
}

fn within_truth(
    truth: &HashMap<(TagId, StationId), Vec<TruthInterval>>,
    tag: TagId,
    station: StationId,
    t: i64,
) -> bool {
    // A beacon during the tick a tag enters range is heard at the tick's end position: allow it.
    const TICK_MS: i64 = 100;
    truth.get(&(tag, station)).is_some_and(|ts| {
        ts.iter()
            .any(|i| i.enter_ms - TICK_MS <= t && t <= i.exit_ms)
    })
}

async fn run_city(transport: Transport) {
    let server = TestServer::start_with(|c| {
        c.tracker.visit_gap = Duration::from_secs(30);
        c.tracker.clock_skew_limit = support::SIMULATED_CLOCKS;
    })
    .await;
    let city = city();
    provision_city(server.store(), &city).await;
    // The city was provisioned behind the running server's back: restart so it loads the keys.
    let mut server = server;
    server.restart().await;
    let sim = SimConfig {
        city,
        start_ms: 1_800_000_000_000,
        duration_ms: Some(8 * 60_000),
        speed: None,
        transport,
        loss: 0.05,
        resend_after: Duration::from_millis(150),
        keep_frames: true,
        drain_timeout: Duration::from_secs(60),
        ..SimConfig::default()
    };
    let target = match transport {
        Transport::Udp => server.udp(),
        Transport::Tcp => server.tcp(),
    };
    let report = tagwatch_sim::run(sim, target, CancellationToken::new()).await;
    let stats = &report.stats;
    eprintln!("{transport:?}: {stats:?} in {:?}", report.real);

    // Delivery: every frame settled, exactly once.
    assert!(stats.frames_built > 1_000, "a meaningful run: {stats:?}");
    assert_eq!(stats.frames_built, report.frames.len() as u64);
    assert_eq!(stats.unacked_at_end, 0, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(
        stats.accepted + stats.duplicate,
        stats.frames_built,
        "{stats:?}"
    );
    assert!(
        stats.lost_in > 0,
        "the loss must have been exercised: {stats:?}"
    );
    assert!(
        stats.duplicate + stats.late_acks > 0,
        "resends must have met DUPLICATE: {stats:?}"
    );
    let applied = server.metric("tagwatch_frames_applied_total").await;
    assert_eq!(
        applied, stats.frames_built as f64,
        "each frame applied exactly once"
    );

    // Exactness: the stored visits are exactly those the frames imply.
    let store = server.stop_and_open_store().await;
    let stored = store.all_visits().await.expect("visits");
    let mut stored_keys: Vec<VisitKey> = stored.iter().map(visit_key).collect();
    stored_keys.sort_unstable();
    let expected = expected_visits(&report, 30_000);
    assert_eq!(stored_keys.len(), expected.len());
    assert!(
        stored_keys == expected,
        "stored visits differ from the frames' visits"
    );

    // Truth: precision and recall.
    let mut truth: HashMap<(TagId, StationId), Vec<TruthInterval>> = HashMap::new();
    for t in &report.truth {
        truth.entry((t.tag, t.station)).or_default().push(*t);
    }
    for v in &stored {
        assert!(
            within_truth(&truth, v.tag, v.station, v.first_seen_ms)
                && within_truth(&truth, v.tag, v.station, v.last_seen_ms),
            "visit {v:?} outside the ground truth"
        );
    }
    let long: Vec<&TruthInterval> = report
        .truth
        .iter()
        .filter(|t| t.exit_ms - t.enter_ms >= 20_000)
        .collect();
    let found = long
        .iter()
        .filter(|t| {
            stored.iter().any(|v| {
                v.tag == t.tag
                    && v.station == t.station
                    && v.first_seen_ms <= t.exit_ms
                    && v.last_seen_ms >= t.enter_ms
            })
        })
        .count();
    let recall = found as f64 / long.len() as f64;
    eprintln!(
        "{transport:?}: recall {recall:.4} over {} intervals ≥ 20 s",
        long.len()
    );
    assert!(long.len() > 100);
    assert!(recall >= 0.99, "recall {recall}");

    // Nothing is stolen, no tag raises a flag, and vehicles drive at most 14 m/s between
    // overlapping stations: any alert (a clone suspected, say) would be a false one.
    // Only the stations' clocks are off: the simulation runs faster than real time.
    let alerts = store.alerts_after(0, 10_000).await.expect("alerts");
    let false_alerts: Vec<_> = alerts
        .iter()
        .filter(|a| a.kind != tagwatch_model::AlertKind::StationClockSkew)
        .collect();
    assert!(false_alerts.is_empty(), "false alerts: {false_alerts:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_over_udp_with_loss_matches_ground_truth() {
    run_city(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_city_over_tcp_with_lost_acks_matches_ground_truth() {
    run_city(Transport::Tcp).await;
}
