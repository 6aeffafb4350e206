//! # `tagwatch-e2e`: how much city one server holds.
//!
//! Runs the real server on loopback, on SQLite and on Postgres, with its stations speaking UDP or
//! TCP through the simulator's own uplink (at-least-once delivery, resends, ACK handling). The
//! traffic is the simulator's reference city (1,024 stations, 300,000 tags; 1 % reported stolen),
//! recorded once and replayed at rising speed: each step offers more detections per second, until
//! the server no longer keeps up. For each step it reports the detections offered and applied,
//! frames acknowledged, ACK latency, the latency from a frame's hand-off to its station's uplink
//! to the stolen-vehicle alert on a live SSE client, CPU, resident memory and store rows per
//! second, all read from the server's own metrics except the alert latency, which the SSE client
//! measures. Results go to `target/e2e/results.json` with a summary on stdout.
//!
//! `cargo run --release -p tagwatch-benches --bin tagwatch-e2e -- --help`

mod loopback;
mod metrics;
mod plot;
mod report;
mod stream;

use anyhow::Context;
use clap::Parser;
use futures_util::StreamExt;
use metrics::{process_usage, Scrape};
use report::{Run, Step};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tagwatch::{Config, Secret, Server};
use tagwatch_model::{SessionId, TagId};
use tagwatch_sim::city::CityConfig;
use tagwatch_sim::link::{run_link, LinkConfig};
use tagwatch_sim::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "e2e-bench-admin-token-0123456789";
/// Every this-many-th tag is reported stolen before the run.
const STOLEN_EVERY: u32 = 100;

#[derive(Debug, Parser)]
#[command(about = "End-to-end benchmark: the reference city against a real server, step by step")]
struct Args {
    /// Offered load of each step, as multiples of the reference city's real-time traffic
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,12,16,24,32")]
    speeds: Vec<f64>,
    /// Seconds each step offers its load
    #[arg(long, default_value_t = 10)]
    step_seconds: u64,
    /// Stores to run on: sqlite, postgres
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    stores: Vec<String>,
    /// Station transports: udp, tcp
    #[arg(long, value_delimiter = ',', default_value = "udp,tcp")]
    transports: Vec<String>,
    /// Tagged vehicles in the city
    #[arg(long, default_value_t = 300_000)]
    tags: u32,
    /// Seconds of city traffic recorded and replayed
    #[arg(long, default_value_t = 30)]
    record_seconds: usize,
    /// Seconds of real-time traffic before the first step, not reported (the first sightings of
    /// every stolen tag already in the city raise a burst of alerts)
    #[arg(long, default_value_t = 10)]
    warmup_seconds: u64,
    /// Where results.json and the plots go
    #[arg(long, default_value = "target/e2e")]
    out: std::path::PathBuf,
    /// Only draw the plots of an earlier results.json
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

/// Hand-off times of frames that carry a stolen tag, by (station, seq), for alert latency.
type Handoffs = Arc<Mutex<HashMap<(u32, u32), Instant>>>;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(results) = &args.plot {
        return plot::plot(results);
    }
    let city = CityConfig {
        tags: args.tags,
        ..CityConfig::default()
    };
    eprintln!(
        "Recording {} s of the city ({} stations, {} tags)…",
        args.record_seconds,
        city.grid_w * city.grid_h,
        city.tags
    );
    let recording = Arc::new(stream::record(&city, args.record_seconds));
    eprintln!(
        "  {} detections, {:.0} per second of real time",
        recording.detections,
        recording.rate()
    );
    let mut runs = Vec::new();
    for store in &args.stores {
        for transport in &args.transports {
            let transport = match transport.as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                other => anyhow::bail!("unknown transport {other:?} (udp or tcp)"),
            };
            let Some(database) = database(store).await? else {
                eprintln!("Skipping {store}: TAGWATCH_TEST_POSTGRES_URL is not set");
                continue;
            };
            eprintln!("== {store} over {transport:?}");
            runs.push(run_one(&args, &city, &recording, store, &database, transport).await?);
        }
    }
    let results = report::write(&args.out, &city, &recording, &runs)?;
    plot::plot(&results)?;
    report::summary(&runs);
    Ok(())
}

/// A fresh database for a run.
async fn database(store: &str) -> anyhow::Result<Option<String>> {
    match store {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("tagwatch-e2e-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("e2e.sqlite");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            Ok(Some(format!("sqlite://{}", path.display())))
        }
        "postgres" => Ok(tagwatch_store::testing::fresh_postgres().await),
        other => anyhow::bail!("unknown store {other:?} (sqlite or postgres)"),
    }
}

async fn provision(database: &str, city: &CityConfig) -> anyhow::Result<()> {
    let store = tagwatch_store::Store::open(database).await?;
    let now = tagwatch_model::time::now_ms();
    tagwatch::demo::provision_city(&store, city, now).await?;
    for i in (0..city.tags).step_by(STOLEN_EVERY as usize) {
        store
            .open_case(TagId(city.first_tag + i), now, "e2e bench")
            .await?;
    }
    store.close().await;
    Ok(())
}

async fn run_one(
    args: &Args,
    city: &CityConfig,
    recording: &Arc<stream::Recording>,
    store: &str,
    database: &str,
    transport: Transport,
) -> anyhow::Result<Run> {
    provision(database, city).await.context("provisioning")?;
    let config = Config {
        database: database.to_owned(),
        udp: "127.0.0.1:0".parse()?,
        tcp: "127.0.0.1:0".parse()?,
        http: "127.0.0.1:0".parse()?,
        admin_token: Some(Secret(TOKEN.into())),
        // Replayed faster than real time, the stations' clocks run ahead on purpose.
        clock_skew_limit_s: 365 * 86_400,
        ..Config::default()
    };
    let server = Server::start(&config).await?;
    let api = format!("http://{}", server.http_addr);
    let client = reqwest::Client::new();
    let stop = CancellationToken::new();

    // Live alerts: latency from the hand-off of the frame that raised each.
    let handoffs: Handoffs = Arc::default();
    let alert_latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let sse = client
        .get(format!("{api}/api/v1/alerts/stream?kinds=stolen_sighting"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .error_for_status()?;
    let listener = {
        let (handoffs, latencies) = (handoffs.clone(), alert_latencies.clone());
        tokio::spawn(async move {
            let mut events = eventsource_stream::Eventsource::eventsource(sse.bytes_stream());
            while let Some(Ok(event)) = events.next().await {
                if event.event != "alert" {
                    continue;
                }
                let Ok(alert) = serde_json::from_str::<serde_json::Value>(&event.data) else {
                    continue;
                };
                // Alert ids are `{scope}-{tag}-{station}-{session}-{seq}`.
                let id = alert["id"].as_str().unwrap_or_default();
                let mut parts = id.rsplit('-');
                let seq = parts.next().and_then(|s| s.parse().ok());
                let _session = parts.next();
                let station = parts.next().and_then(|s| s.parse().ok());
                if let (Some(station), Some(seq)) = (station, seq) {
                    let sent = handoffs.lock().expect("lock").remove(&(station, seq));
                    if let Some(sent) = sent {
                        latencies
                            .lock()
                            .expect("lock")
                            .push(sent.elapsed().as_secs_f64() * 1_000.0);
                    }
                }
            }
        })
    };

    // One uplink per station, as the simulator's firmware has.
    let target = match transport {
        Transport::Udp => server.udp_addr,
        Transport::Tcp => server.tcp_addr,
    };
    let keys: HashMap<_, _> = tagwatch_sim::stations(city)
        .into_iter()
        .map(|(s, k)| (s.id, k))
        .collect();
    let unacked = Arc::new(AtomicUsize::new(0));
    let mut uplinks = Vec::new();
    let mut links = Vec::new();
    for (i, id) in recording.stations.iter().enumerate() {
        let (tx, rx) = mpsc::channel(4_096);
        let link = LinkConfig {
            server: target,
            transport,
            loss: 0.0,
            resend_after: Duration::from_secs(3),
            window: 256,
            seed: i as u64,
        };
        links.push(tokio::spawn(run_link(
            link,
            keys[id].clone(),
            rx,
            unacked.clone(),
            stop.clone(),
        )));
        uplinks.push(tx);
    }

    let session = SessionId(1);
    let mut seqs = vec![0u32; recording.stations.len()];
    let mut sim_second: i64 = 0;
    let sim_start = tagwatch_model::time::now_ms() / 1_000 * 1_000;
    let mut steps = Vec::new();
    let warmup = (args.warmup_seconds > 0).then_some(0.0);
    for speed in warmup.into_iter().chain(args.speeds.iter().copied()) {
        // Speed 0 marks the warm-up: real time, for `warmup_seconds`, not reported.
        let (speed, step_seconds, report) = match speed {
            0.0 => (1.0, args.warmup_seconds, false),
            s => (s, args.step_seconds, true),
        };
        let before = Scrape::take(&client, &api).await?;
        let (cpu_before, _) = process_usage();
        let drops_before = metrics::udp_receive_drops();
        alert_latencies.lock().expect("lock").clear();
        let started = Instant::now();
        let seconds = (step_seconds as f64 * speed).round() as i64;
        let (mut offered, mut overflow) = (0usize, 0usize);
        for k in 0..seconds {
            let due = started + Duration::from_secs_f64(k as f64 / speed);
            tokio::time::sleep_until(due.into()).await;
            let recorded = &recording.seconds[(sim_second as usize) % recording.seconds.len()];
            let sim_ms = sim_start + sim_second * 1_000;
            sim_second += 1;
            for s in recorded {
                seqs[s.station] += 1;
                let frame = recording.frame(s, session, seqs[s.station], sim_ms);
                let carries_stolen = s
                    .reads
                    .iter()
                    .any(|(tag, _, _)| (tag.0 - city.first_tag).is_multiple_of(STOLEN_EVERY));
                if carries_stolen {
                    handoffs
                        .lock()
                        .expect("lock")
                        .insert((frame.station.0, frame.seq), Instant::now());
                }
                offered += s.reads.len();
                if uplinks[s.station].try_send(frame).is_err() {
                    overflow += 1;
                }
            }
        }
        // The step covers `seconds` of city time: its last second is offered, then it ends.
        let offer_secs = seconds as f64 / speed;
        tokio::time::sleep_until((started + Duration::from_secs_f64(offer_secs)).into()).await;
        // Let what was offered settle (a server that keeps up settles at once).
        let drain_started = Instant::now();
        while unacked.load(Ordering::Relaxed) > 0
            && drain_started.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drain_s = drain_started.elapsed().as_secs_f64();
        let after = Scrape::take(&client, &api).await?;
        let (cpu_after, rss_mib) = process_usage();
        let mut alerts = alert_latencies.lock().expect("lock").clone();
        alerts.sort_by(f64::total_cmp);
        let step = Step::measure(report::StepInput {
            speed,
            offered_detections: offered as f64,
            offer_secs,
            drain_secs: drain_s,
            unsettled_frames: unacked.load(Ordering::Relaxed),
            overflow_frames: overflow,
            before: &before,
            after: &after,
            cpu_secs: cpu_after - cpu_before,
            rss_mib,
            alert_latencies_ms: &alerts,
            udp_drops: metrics::udp_receive_drops()
                .zip(drops_before)
                .map(|(a, b)| a.saturating_sub(b)),
        });
        handoffs.lock().expect("lock").clear();
        if !report {
            eprintln!("  warm-up done ({step_seconds} s at real time)");
            continue;
        }
        step.print();
        let sustained = step.sustained;
        steps.push(step);
        if !sustained {
            break;
        }
    }
    stop.cancel();
    for link in links {
        let _ = link.await;
    }
    listener.abort();
    // The gateway alone against loopback UDP, with frames it has already applied (seq 1).
    let loopback = match transport {
        Transport::Udp => {
            let datagrams: Vec<_> = recording.seconds[0]
                .iter()
                .filter_map(|s| {
                    let frame = recording.frame(s, session, 1, sim_start);
                    tagwatch_gateway::wire::encode(&frame, &keys[&frame.station]).ok()
                })
                .collect();
            Some(loopback::compare(&client, &api, server.udp_addr, &datagrams).await?)
        }
        Transport::Tcp => None,
    };
    server.shutdown().await;
    Ok(Run::new(store, transport, steps, loopback))
}
