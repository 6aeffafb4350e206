//! The server as a process the operating system manages: stopped by SIGTERM (systemd, docker,
//! Kubernetes) and run under a low open-file limit. The server process is this test binary
//! re-run in "child" mode (`process_child`), as in the crash test.

mod support;

use std::time::Duration;
use support::{free_port, key, spawn_server_process, station, TestStation, TOKEN};
use tagwatch::config::ListenSection;
use tagwatch::Server;
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::{TagId, Vehicle};
use tagwatch_store::Store;
use tokio::process::Child;

/// Set in the child: `database|udp|tcp|http|nofile` (nofile 0: leave the limit alone).
const CHILD_ENV: &str = "TAGWATCH_PROCESS_CHILD";

/// The server process. Does nothing unless started by a test of this file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the server process of this file's tests; they start it"]
async fn process_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [database, udp, tcp, http, nofile] = parts.as_slice() else {
        panic!("bad {CHILD_ENV}: {spec}");
    };
    let nofile: u64 = nofile.parse().expect("nofile");
    if nofile > 0 {
        // Soft and hard: the server cannot raise it, as on a host configured that way.
        rlimit::setrlimit(rlimit::Resource::NOFILE, nofile, nofile).expect("setrlimit");
    }
    let mut config = support::loopback(database);
    config.listen = ListenSection {
        udp: udp.parse().expect("udp"),
        tcp: tcp.parse().expect("tcp"),
        http: http.parse().expect("http"),
        gt06: None,
    };
    // The journal between checkpoints: only an orderly stop leaves none behind.
    config.store.checkpoint_interval = Some(Duration::from_secs(300));
    let server = Server::start(&config).await.expect("the server starts");
    // As `tagwatch serve` does; an orphan ends by itself.
    tokio::select! {
        signal = tagwatch::signals::stop_requested() => {
            signal.expect("signal handlers");
            server.shutdown().await;
        }
        () = tokio::time::sleep(Duration::from_secs(120)) => {}
    }
}

struct ServerProcess {
    child: Child,
    station: std::net::SocketAddr,
    http: String,
    database: String,
    _dir: tempfile::TempDir,
}

/// A provisioned store (station 1001, tag 500) and a server process on it.
async fn spawn(nofile: u64) -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", dir.path().join("tw.sqlite").display());
    {
        let store = Store::open(&database).await.expect("store");
        store
            .insert_station(&station(1001), &key(1001), 0)
            .await
            .expect("station");
        let vehicle = Vehicle {
            tag: TagId(500),
            plate: "P-500".into(),
            owner_name: "Chen".into(),
            owner_phone: "+86 1".into(),
            ..Default::default()
        };
        store.insert_vehicle(&vehicle, 0).await.expect("vehicle");
        store.close().await;
    }
    let port = free_port();
    let http = format!("127.0.0.1:{}", free_port());
    let spec = format!("{database}|127.0.0.1:{port}|127.0.0.1:{port}|{http}|{nofile}");
    let child = spawn_server_process("process_child", CHILD_ENV, &spec, &http).await;
    ServerProcess {
        child,
        station: format!("127.0.0.1:{port}").parse().expect("addr"),
        http,
        database,
        _dir: dir,
    }
}

async fn healthy(http: &str) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    client
        .get(format!("http://{http}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_in_order() {
    let mut server = spawn(0).await;
    let station = TestStation::udp(1001, 7, server.station).await;
    let now = tagwatch_model::time::now_ms();
    let frame = station.detections(1, now, &[500]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let pid = server.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server stops within 30 s")
        .expect("wait");
    assert!(
        status.success(),
        "SIGTERM ends the server normally, not by the signal: {status:?}"
    );
    // The orderly stop wrote its last checkpoint: the visit is stored and no journal is left
    // for the next start to apply.
    let store = Store::open(&server.database).await.expect("store");
    assert_eq!(store.journal_after(0, 10).await.expect("journal").len(), 0);
    let visits = store.all_visits().await.expect("visits");
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].tag, TagId(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_station_connections_cannot_starve_the_api_of_descriptors() {
    const NOFILE: u64 = 256;
    let server = spawn(NOFILE).await;
    // More connections than the process has descriptors, from a few addresses (the cap per
    // source is not what is tested here).
    let mut idle = Vec::new();
    for i in 0..300u32 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        let source = format!("127.0.0.{}:0", 2 + i % 3);
        socket.bind(source.parse().expect("addr")).expect("bind");
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(1), socket.connect(server.station)).await
        {
            idle.push(stream);
        }
    }
    // The health check and the API still answer.
    assert!(
        healthy(&server.http).await,
        "/healthz answers with {} idle station connections open",
        idle.len()
    );
    let response = reqwest::Client::new()
        .get(format!("http://{}/api/v1/stations", server.http))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), 200);
    drop(idle);
}
