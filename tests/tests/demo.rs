//! `tagwatch demo` end to end, shortened: the city is provisioned, the server runs, a vehicle is
//! reported stolen through the API, and its alert is printed from the SSE stream.

use std::time::Duration;
use tagwatch::demo::{run, DemoOptions};
use tagwatch_sim::Transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_reports_a_theft_and_prints_its_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DemoOptions {
        http: "127.0.0.1:0".parse().expect("addr"),
        database: format!("sqlite://{}", dir.path().join("demo.sqlite").display()),
        grid: 5,
        tags: 200,
        speed: Some(20.0),
        transport: Transport::Udp,
        steal_after: Duration::from_secs(2),
        run_for: Some(Duration::from_secs(8)),
        seed: 3,
        password: None,
        tile_url: None,
        gps_trackers: 20,
    };
    let mut out = Vec::new();
    let summary = run(options, &mut out).await.expect("demo runs");
    let printed = String::from_utf8(out).expect("utf-8");
    let stolen = summary
        .stolen
        .unwrap_or_else(|| panic!("a vehicle was stolen:\n{printed}"));
    assert!(!summary.alerts.is_empty(), "no alert in:\n{printed}");
    assert!(
        summary.alerts.iter().all(|a| a["tag"] == stolen.0),
        "{printed}"
    );
    assert!(printed.contains("ALERT #1 stolen_sighting"), "{printed}");
    // A simulated unit was sent to it, through the API.
    assert!(printed.contains("Dispatched P-"), "{printed}");
    assert!(printed.contains("admin token:"), "{printed}");
    assert!(summary.frames_built > 0);
    assert_eq!(summary.frames_acked, summary.frames_built, "{printed}");
    // The GPS trackers reported over GT06 and every fix was acknowledged (stored).
    assert!(summary.gps_fixes > 0, "{printed}");
    assert_eq!(summary.gps_fixes_acked, summary.gps_fixes, "{printed}");
    assert!(
        printed.contains("GPS trackers: 20 vehicles carry one"),
        "{printed}"
    );
}
