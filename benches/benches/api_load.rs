//! API load check: the real server (SQLite, loopback) with 200 stations and 20,000 placed tags;
//! concurrent clients call the location, radius and plate search endpoints as officers do (each call states a
//! purpose and is written to the audit log first), then thousands of live SSE clients wait for
//! alerts and the time until every one of them has each alert is measured.
//!
//! `cargo bench -p tagwatch-benches --bench api_load` (about a minute). Figures go to stdout and
//! to `target/api-load.json`. A benchmark, not a test: nothing here asserts a timing.

use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch::config::ListenSection;
use tagwatch::{Config, Secret, Server};
use tagwatch_benches::http_load::{load, percentile};
use tagwatch_gateway::wire::{self, Body, Frame, Record};
use tagwatch_model::time::now_ms;
use tagwatch_model::{GeoPoint, Role, SessionId, Station, StationId, StationKey, TagId, Vehicle};
use tokio::net::UdpSocket;

const TOKEN: &str = "load-bench-admin-token-0123456789";
const STATIONS: u32 = 200;
const TAGS_PER_STATION: u32 = 100;
const RUN: Duration = Duration::from_secs(4);

fn position(i: u32) -> GeoPoint {
    GeoPoint {
        lat: 23.0 + f64::from(i / 20) * 0.003,
        lon: 116.0 + f64::from(i % 20) * 0.003,
    }
}

fn key(i: u32) -> StationKey {
    StationKey([(i % 251) as u8 + 1; 32])
}

fn tag_of(station: u32, n: u32) -> u32 {
    1 + station * TAGS_PER_STATION + n
}

/// Sends one frame of every tag at its station and waits for each ACK.
async fn place_tags(server: &Server, seq: u32, only: Option<u32>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(server.udp_addr).await.expect("connect");
    for s in 0..STATIONS {
        let tags: Vec<u32> = match only {
            Some(tag) if (tag - 1) / TAGS_PER_STATION == s => vec![tag],
            Some(_) => continue,
            None => (0..TAGS_PER_STATION).map(|n| tag_of(s, n)).collect(),
        };
        let frame = Frame {
            station: StationId(s + 1),
            session: SessionId(1),
            seq,
            time_ms: u64::try_from(now_ms()).expect("positive"),
            position: None,
            body: Body::Detections(
                tags.iter()
                    .map(|&t| Record {
                        tag: TagId(t),
                        age_ms: 0,
                        rssi: -60,
                        reads: 1,
                        tag_flags: 0,
                        antenna: 1,
                    })
                    .collect(),
            ),
        };
        let bytes = wire::encode(&frame, &key(s + 1)).expect("encode");
        socket.send(&bytes).await.expect("send");
        let mut buf = [0u8; 128];
        tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("an ACK")
            .expect("recv");
    }
}

async fn start() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}", dir.path().join("load.sqlite").display());
    let store = tagwatch_store::Store::open(&database).await.expect("store");
    let now = now_ms();
    for s in 0..STATIONS {
        let station = Station {
            id: StationId(s + 1),
            name: format!("S{}", s + 1),
            position: position(s),
        };
        store
            .insert_station(&station, &key(s + 1), now)
            .await
            .expect("station");
    }
    let vehicles: Vec<Vehicle> = (0..STATIONS)
        .flat_map(|s| (0..TAGS_PER_STATION).map(move |n| tag_of(s, n)))
        .map(|t| Vehicle {
            tag: TagId(t),
            plate: format!("L-{t}"),
            owner_name: "Load".into(),
            owner_phone: "0".into(),
            ..Default::default()
        })
        .collect();
    store
        .insert_vehicles(&vehicles, now)
        .await
        .expect("vehicles");
    let hash = tagwatch_api::auth::hash_password("load-officer-pw".into())
        .await
        .expect("hash");
    store
        .insert_user("officer", &hash, Role::Officer, now)
        .await
        .expect("user");
    store.close().await;
    let mut config = Config::default();
    config.store.database = database;
    config.listen = ListenSection::loopback();
    config.api.admin_token = Some(Secret(TOKEN.into()));
    config.store.flush_interval = Duration::from_millis(5);
    // The load comes from a few tokens; the per-token limit is not what is measured.
    config.api.token_calls_per_s = 10_000_000;
    config.api.token_call_burst = 10_000_000;
    let server = Server::start(&config).await.expect("server");
    place_tags(&server, 1, None).await;
    (server, dir)
}

async fn officer_token(client: &reqwest::Client, api: &str) -> String {
    let body: serde_json::Value = client
        .post(format!("{api}/api/v1/login"))
        .json(&serde_json::json!({"username": "officer", "password": "load-officer-pw"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    body["token"].as_str().expect("token").to_owned()
}

/// Opens `clients` SSE streams, raises `alerts` stolen-tag alerts one by one, and measures for
/// each the time from the frame's send to its delivery on every stream.
async fn fan_out(
    server: &Server,
    api: &str,
    token: &str,
    clients: usize,
    alerts: u32,
    raised: &mut u32,
) -> serde_json::Value {
    let delivered = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, Instant)>();
    let mut streams = Vec::new();
    for _ in 0..clients {
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{api}/api/v1/alerts/stream"))
            .bearer_auth(token)
            .send()
            .await
            .expect("stream");
        let (delivered, tx) = (delivered.clone(), tx.clone());
        streams.push(tokio::spawn(async move {
            let mut events = eventsource_stream::Eventsource::eventsource(response.bytes_stream());
            while let Some(Ok(event)) = events.next().await {
                // The theft report's own look-back alert (the tag's earlier sighting) comes
                // before the frame is sent: only the live sighting's alert is timed.
                if event.event == "alert" && !event.data.contains("\"look_back\":true") {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send((event.id.parse().unwrap_or(0), Instant::now()));
                }
            }
        }));
    }
    let http = reqwest::Client::new();
    let mut all_in = Vec::new();
    let mut each = Vec::new();
    for _ in 0..alerts {
        // A fresh tag each time: a stolen tag alerts once per visit.
        let k = *raised;
        *raised += 1;
        let tag = tag_of(k % STATIONS, k / STATIONS);
        http.post(format!("{api}/api/v1/vehicles/{tag}/theft"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"note": "load"}))
            .send()
            .await
            .expect("theft");
        let sent = Instant::now();
        place_tags(server, 10 + k, Some(tag)).await;
        let mut got = 0;
        while got < clients {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some((_, at))) => {
                    each.push(at.duration_since(sent).as_micros() as u64);
                    got += 1;
                }
                _ => break,
            }
        }
        all_in.push(sent.elapsed().as_micros() as u64);
    }
    for s in streams {
        s.abort();
    }
    each.sort_unstable();
    all_in.sort_unstable();
    let expected = clients as u64 * u64::from(alerts);
    serde_json::json!({
        "clients": clients,
        "alerts": alerts,
        "delivered": delivered.load(Ordering::Relaxed),
        "expected": expected,
        "delivery_p50_ms": percentile(&each, 0.5),
        "delivery_p99_ms": percentile(&each, 0.99),
        "all_clients_have_it_max_ms": percentile(&all_in, 1.0),
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (server, _dir) = start().await;
        let api = format!("http://{}", server.http_addr);
        let client = reqwest::Client::new();
        let token = officer_token(&client, &api).await;
        let mut report = serde_json::json!({ "requests": [], "sse": [] });
        println!("| endpoint | clients | requests/s | p50 ms | p99 ms | errors |");
        println!("|---|---|---|---|---|---|");
        for clients in [1, 8, 32, 128] {
            let location = load(&api, &token, clients, RUN, |i| {
                let tag = tag_of((i % u64::from(STATIONS)) as u32, (i % 100) as u32);
                format!("/api/v1/vehicles/{tag}/location?purpose=load+check")
            })
            .await;
            let near = load(&api, &token, clients, RUN, |i| {
                let p = position((i % u64::from(STATIONS)) as u32);
                format!("/api/v1/tags/near?lat={}&lon={}&radius_m=500&purpose=load+check", p.lat, p.lon)
            })
            .await;
            let plate = load(&api, &token, clients, RUN, |i| {
                let tag = tag_of((i % u64::from(STATIONS)) as u32, (i % 100) as u32);
                format!("/api/v1/vehicles/search?plate=L-{tag}&purpose=load+check")
            })
            .await;
            for (name, r) in [
                ("location", &location),
                ("tags/near 500 m", &near),
                ("plate search", &plate),
            ] {
                println!(
                    "| {name} | {clients} | {:.0} | {:.2} | {:.2} | {} |",
                    r.rps, r.p50_ms, r.p99_ms, r.errors
                );
                report["requests"].as_array_mut().expect("array").push(serde_json::json!({
                    "endpoint": name, "clients": clients, "rps": r.rps,
                    "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "errors": r.errors,
                }));
            }
        }
        println!();
        println!("| SSE clients | alerts | delivered / expected | delivery p50 ms | p99 ms | last client has it, max ms |");
        println!("|---|---|---|---|---|---|");
        let mut raised = 0;
        for clients in [100, 1_000, 5_000] {
            let r = fan_out(&server, &api, &token, clients, 5, &mut raised).await;
            println!(
                "| {} | {} | {} / {} | {:.1} | {:.1} | {:.1} |",
                r["clients"], r["alerts"], r["delivered"], r["expected"],
                r["delivery_p50_ms"].as_f64().unwrap_or(f64::NAN),
                r["delivery_p99_ms"].as_f64().unwrap_or(f64::NAN),
                r["all_clients_have_it_max_ms"].as_f64().unwrap_or(f64::NAN),
            );
            report["sse"].as_array_mut().expect("array").push(r);
        }
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/api-load.json");
        std::fs::write(&out, serde_json::to_string_pretty(&report).expect("json")).expect("write");
        println!("\nwritten {}", out.display());
        server.shutdown().await;
    });
}
