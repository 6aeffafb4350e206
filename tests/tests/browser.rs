//! The pages in a real browser: the demo city (server + simulator) runs in this process, and
//! `web/tests/browser.mjs` drives Debian's Chromium through playwright-core against it: an
//! officer's shift (history after a reload, plate search, an alert with its predicted stations,
//! accept, dispatch, track export) and an owner's evening (arm, the vehicle moves, its alert,
//! report the theft, recovered), each in English and in Chinese, with screenshots
//! (`target/browser/{officer,owner}-{en,zh}.png`).
//!
//! Needs node, `web/node_modules/playwright-core` (`npm ci` in `web/`) and `/usr/bin/chromium`
//! (`apt install chromium`); `.ci/run` installs them. Without them the test says it was skipped,
//! except under CI, where a missing prerequisite fails it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use support::free_port;
use tagwatch::demo::{run, DemoOptions};
use tagwatch_sim::Transport;

const PASSWORD: &str = "browser-test-password";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What is missing to run a browser, if anything.
fn missing_prerequisites(web: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        missing.push(format!("{chromium} (apt install chromium)"));
    }
    if !web.join("node_modules/playwright-core").exists() {
        missing.push("web/node_modules/playwright-core (npm ci in web/)".into());
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (apt install nodejs)".into());
    }
    missing
}

/// A station name that would put an element with id `injected` on the page if read as HTML.
const HOSTILE_NAME: &str = "<img src=x id=injected>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officers_shift_and_an_owners_evening_in_english_and_chinese() {
    let web = workspace().join("web");
    let missing = missing_prerequisites(&web);
    if !missing.is_empty() {
        let message = format!("browser test needs: {}", missing.join(", "));
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("SKIPPED: {message}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let database = format!("sqlite://{}", dir.path().join("demo.sqlite").display());
    let options = DemoOptions {
        http,
        database: database.clone(),
        grid: 6,
        tags: 300,
        speed: Some(5.0),
        transport: Transport::Udp,
        steal_after: Duration::from_secs(3),
        run_for: Some(Duration::from_secs(420)),
        seed: 11,
        password: Some(PASSWORD.into()),
        tile_url: None,
        gps_trackers: 0,
    };
    let demo = tokio::spawn(async move {
        let mut out = Vec::new();
        run(options, &mut out).await.map(|_| out)
    });
    let url = format!("http://{http}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the demo server did not come up on {url}");
    // A station whose installer typed HTML as its name: the map must show it as text.
    let store = tagwatch_store::Store::open(&database)
        .await
        .expect("the demo's store");
    let hostile = tagwatch_model::Station {
        id: tagwatch_model::StationId(990_001),
        name: HOSTILE_NAME.into(),
        position: tagwatch_model::GeoPoint {
            lat: 23.26,
            lon: 116.59,
        },
    };
    store
        .insert_station(&hostile, &tagwatch_model::StationKey([7; 32]), 0)
        .await
        .expect("a station named in HTML");
    store.close().await;
    // The page itself is served, with its script and Leaflet.
    for path in [
        "/",
        "/owner",
        "/app.js",
        "/owner.js",
        "/common.js",
        "/i18n.js",
        "/vendor/leaflet.js",
        "/vendor/leaflet.css",
    ] {
        let response = client
            .get(format!("{url}{path}"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
    }

    let shots = workspace().join("target/browser");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let names = ["officer-en", "officer-zh", "owner-en", "owner-zh"];
    for name in names {
        let _ = std::fs::remove_file(shots.join(format!("{name}.png")));
    }
    let browser = tokio::process::Command::new("node")
        .arg("tests/browser.mjs")
        .args(["--url", &url, "--password", PASSWORD, "--shots"])
        .arg(&shots)
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(400), browser)
        .await
        .expect("the browser test finished within 400 s")
        .expect("node runs");
    demo.abort();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{log}");
    assert!(output.status.success(), "browser test failed:\n{log}");
    assert!(log.contains("live alert: #"), "{log}");
    assert!(log.contains("station names shown as text"), "{log}");
    assert!(log.contains("all pages passed"), "{log}");
    for name in names {
        let shot = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&shot).expect("screenshot").len();
        assert!(size > 10_000, "{name}: screenshot of {size} bytes");
    }
}
