//! # `tagwatch-e2e`: how much city one server holds, against the alternatives.
//!
//! Runs the real server on loopback, on SQLite and on Postgres, with its stations speaking UDP or
//! TCP through the simulator's own uplink (at-least-once delivery, resends, ACK handling). The
//! traffic is the simulator's reference city (1,024 stations, 300,000 tags; 1 % reported stolen),
//! recorded once and replayed; each step offers a larger multiple of it, by default with that many
//! copies of the city's vehicles (so 300,000 tags, 600,000, … into the millions), until the server
//! no longer keeps up. For each step it reports the detections offered and applied, frames
//! acknowledged, ACK latency, the latency from a frame's hand-off to its station's uplink to the
//! stolen-vehicle alert on a live SSE client, CPU (the server's threads, on a runtime of their
//! own; the load generator's; Postgres), resident memory and store rows per second, all read from
//! the server's own metrics except the alert latency, which the SSE client measures, and the
//! stage that stopped it. On Postgres the server is then killed and started again, and the time
//! it takes to apply its journal again is reported. Side by side, in the same run:
//! the gateway against `iperf3`'s loopback UDP, and (first Postgres run) the officers' spatial
//! queries against PostGIS over the same visits and the store's writes against a plain `COPY`.
//! Results go to `target/e2e/results.json` with plots beside it and a summary on stdout.
//!
//! `cargo run --release -p tagwatch-benches --bin tagwatch-e2e -- --help`
//!
//! Why this file is long (about 700 lines): the command line and one run's sequence (provision,
//! start, offer each step, restart, compare, settle); what each part measures lives in its own
//! module (`report`, `metrics`, `backlog`, `side_by_side`, `plot`, `replay`, `stream`).

mod api_load;
mod backlog;
mod cluster;
mod gps;
mod loopback;
mod metrics;
mod plot;
mod replay;
mod report;
mod side_by_side;
mod stream;

use anyhow::Context;
use clap::Parser;
use futures_util::StreamExt;
use metrics::{process_usage, Scrape};
use replay::{Handoffs, Replay};
use report::{Run, Step};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tagwatch::config::ListenSection;
use tagwatch::{Config, Secret, Server};
use tagwatch_model::TagId;
use tagwatch_sim::city::CityConfig;
use tagwatch_sim::link::{run_link, LinkConfig};
use tagwatch_sim::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "e2e-bench-admin-token-0123456789";
/// The server runtime's thread name; with the ingest's thread, the tracker's index builder and
/// SQLite's connection workers (sqlx runs each SQLite connection on a thread of its own), the
/// server's threads.
const SERVER_THREADS: &str = "server";
const SERVER_THREAD_PREFIXES: [&str; 4] = [SERVER_THREADS, "ingest", "trajectory", "sqlx-sqlite"];
/// Every this-many-th tag is reported stolen before the run.
const STOLEN_EVERY: u32 = 100;

/// What each step grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Grow {
    /// More vehicles: step `n` carries `n` copies of the city's tags, in real time
    Tags,
    /// Faster time: step `n` replays the same city `n` times faster than real time
    Speed,
}

#[derive(Debug, Parser)]
#[command(about = "End-to-end benchmark: the reference city against a real server, step by step")]
struct Args {
    /// Offered load of each step, as multiples of the reference city's real-time traffic
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6,8,10,12,16", value_parser = parse_load)]
    loads: Vec<u32>,
    /// Steps still run after the first one not sustained (the curve past saturation, and memory
    /// with more tags)
    #[arg(long, default_value_t = 1)]
    beyond: usize,
    /// How a step raises the load: more tags (up to millions) or faster time
    #[arg(long, value_enum, default_value = "tags")]
    grow: Grow,
    /// Seconds each step offers its load, measured (by default one checkpoint interval, so each
    /// step pays for one checkpoint of its visits)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    step_seconds: u64,
    /// Seconds of each step's load offered before its measurement starts (new tags arrive)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    settle_seconds: u64,
    /// Stores to run on: sqlite, postgres, cluster (Postgres behind the cluster roles: NATS
    /// JetStream, a gateway, `--shards` tracker shards and an API node on this machine)
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    stores: Vec<String>,
    /// Tracker shards of a `cluster` run
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    shards: u16,
    /// Station transports: udp, tcp
    #[arg(long, value_delimiter = ',', default_value = "udp,tcp")]
    transports: Vec<String>,
    /// Tagged vehicles in the city (one copy)
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    tags: u32,
    /// Seconds of city traffic recorded and replayed; by default the whole schedule's, so no
    /// vehicle jumps back to where it was when the recording starts over (the stolen ones would
    /// then raise no new sighting alerts, being still in their open visits)
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=1_800))]
    record_seconds: Option<u64>,
    /// Seconds of real-time traffic before the first step, not reported (the first sightings of
    /// every stolen tag already in the city raise a burst of alerts)
    #[arg(long, default_value_t = 10)]
    warmup_seconds: u64,
    /// The server's checkpoint interval in ms (unset: the server's default for the store)
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// Every station sends its second at the start of each second (a synchronized burst of the
    /// whole city's traffic each second), instead of at its own moment within the second
    #[arg(long)]
    synchronized: bool,
    /// Skip the side-by-side comparisons (PostGIS queries, plain COPY) of the first Postgres run
    #[arg(long)]
    no_side_by_side: bool,
    /// After the steps, a city-wide outage of this many minutes: every station keeps its frames,
    /// then all reconnect at once and send their backlog while the city keeps driving (0: none)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=240))]
    backlog_minutes: u64,
    /// Longest the backlog is given to drain before the scenario is reported as not drained
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=240))]
    backlog_max_drain_minutes: u64,
    /// Skip the crash and restart at the end of a Postgres run (minutes after the largest steps)
    #[arg(long)]
    no_restart: bool,
    /// Vehicles that carry only a GT06 GPS tracker, reporting every 10-30 s over TCP through the
    /// whole run beside the stations (`serve` runs only)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4_000))]
    gps_trackers: u32,
    /// During the first step, officers' queries (location, near, plate search) from 1 to 128
    /// concurrent callers, measured while the city is ingested
    #[arg(long)]
    api_load: bool,
    /// Where results.json and the plots go
    #[arg(long, default_value = "target/e2e")]
    out: std::path::PathBuf,
    /// Only draw the plots of an earlier results.json
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

impl Args {
    /// City seconds one run offers if every step is run: the warm-up, then each step's settling
    /// and measured seconds at its speed.
    fn city_seconds(&self) -> u64 {
        let speed = |load: u32| match self.grow {
            Grow::Tags => 1,
            Grow::Speed => u64::from(load),
        };
        self.warmup_seconds
            + self
                .loads
                .iter()
                .map(|&l| (self.settle_seconds + self.step_seconds) * speed(l))
                .sum::<u64>()
    }
}

/// A step's load: a whole multiple of the reference city's traffic, 1 to 64.
fn parse_load(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a load: a whole multiple of the city's traffic, 1 to 64"
        )),
    }
}

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
    if args.transports.iter().any(|t| t == "udp") {
        raise_udp_receive_limit();
    }
    let city = CityConfig {
        tags: args.tags,
        ..CityConfig::default()
    };
    let record_seconds = args
        .record_seconds
        .unwrap_or_else(|| args.city_seconds().min(1_800));
    eprintln!(
        "Recording {record_seconds} s of the city ({} stations, {} tags)…",
        city.grid_w * city.grid_h,
        city.tags
    );
    let recording = Arc::new(stream::record(&city, record_seconds as usize));
    eprintln!(
        "  {} detections, {:.0} per second of real time",
        recording.detections,
        recording.rate()
    );
    let transports = args
        .transports
        .iter()
        .map(|t| match t.as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            other => anyhow::bail!("unknown transport {other:?} (udp or tcp)"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(other) = args
        .stores
        .iter()
        .find(|s| !matches!(s.as_str(), "sqlite" | "postgres" | "cluster"))
    {
        anyhow::bail!("unknown store {other:?} (sqlite, postgres or cluster)");
    }
    let side_by_side = !args.no_side_by_side && args.stores.iter().any(|s| s == "postgres");
    if side_by_side {
        // The setup step: PostGIS from Debian's package, before anything is measured.
        side_by_side::install_postgis().await?;
    }
    let mut runs = Vec::new();
    let mut compared = None;
    for store in &args.stores {
        for &transport in &transports {
            let Some(database) = database(store).await? else {
                eprintln!("Skipping {store}: TAGWATCH_TEST_POSTGRES_URL is not set");
                continue;
            };
            eprintln!("== {store} over {transport:?}");
            let compare = side_by_side && store == "postgres" && compared.is_none();
            let (run, side) = run_one(
                &args, &city, &recording, store, &database, transport, compare,
            )
            .await?;
            remove_database(store, &database).await?;
            runs.push(run);
            compared = compared.or(side);
        }
    }
    let results = report::write(
        &args.out,
        &city,
        &recording,
        args.synchronized,
        &runs,
        compared.as_ref(),
    )?;
    plot::plot(&results)?;
    report::summary(&runs, compared.as_ref());
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
        "postgres" | "cluster" => Ok(tagwatch_store::testing::fresh_postgres().await),
        other => anyhow::bail!("unknown store {other:?} (sqlite, postgres or cluster)"),
    }
}

/// Drops a run's database once its figures are taken: each Postgres run leaves over a million
/// visits (and the PostGIS copies) behind otherwise.
async fn remove_database(store: &str, database: &str) -> anyhow::Result<()> {
    match store {
        "postgres" | "cluster" => {
            let admin = std::env::var(tagwatch_store::testing::POSTGRES_URL_VAR)?;
            let name = database.rsplit_once('/').map_or(database, |(_, name)| name);
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
            sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
            )
            .await?;
        }
        _ => {
            let path = database.trim_start_matches("sqlite://");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            if let Some(dir) = std::path::Path::new(path).parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
    Ok(())
}

async fn provision(database: &str, city: &CityConfig, gps_trackers: u32) -> anyhow::Result<()> {
    let store = tagwatch_store::Store::open(database).await?;
    let now = tagwatch_model::time::now_ms();
    tagwatch::demo::provision_city(&store, city, now).await?;
    gps::provision(&store, gps_trackers).await?;
    for i in (0..city.tags).step_by(STOLEN_EVERY as usize) {
        store
            .open_case(TagId(city.first_tag + i), now, "e2e bench")
            .await?;
    }
    store.close().await;
    Ok(())
}

/// One store × transport run: the warm-up, the steps until one is not sustained, the gateway
/// against loopback UDP (UDP runs), and, when `compare`, the side-by-side comparisons on the
/// data the run stored.
/// Raises the kernel's cap on socket receive buffers (`net.core.rmem_max`) to what the server's
/// UDP socket asks for, as the server's log tells operators of large deployments to; below it,
/// the bursts of the larger steps overflow the buffer and datagrams wait for their resend.
fn raise_udp_receive_limit() {
    const PATH: &str = "/proc/sys/net/core/rmem_max";
    let wanted = tagwatch::server::UDP_RECEIVE_BUFFER;
    let Some(current) = std::fs::read_to_string(PATH)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        return;
    };
    if current >= wanted {
        return;
    }
    match std::fs::write(PATH, wanted.to_string()) {
        Ok(()) => {
            eprintln!("Raised net.core.rmem_max from {current} to {wanted} bytes for the UDP runs")
        }
        Err(e) => eprintln!(
            "net.core.rmem_max is {current} bytes and could not be raised to {wanted} ({e}): \
             the UDP runs' larger bursts will overflow the server's receive buffer"
        ),
    }
}

async fn run_one(
    args: &Args,
    city: &CityConfig,
    recording: &Arc<stream::Recording>,
    store: &str,
    database: &str,
    transport: Transport,
    compare: bool,
) -> anyhow::Result<(Run, Option<serde_json::Value>)> {
    provision(database, city, args.gps_trackers)
        .await
        .context("provisioning")?;
    let mut config = Config::default();
    config.store.database = database.to_owned();
    config.listen = ListenSection::loopback();
    config.api.admin_token = Some(Secret(TOKEN.into()));
    // Replayed faster than real time, the stations' clocks run ahead on purpose.
    config.tracker.clock_skew_limit = Duration::from_secs(365 * 86_400);
    // The side-by-side queries (and the API load) come back to back from one token.
    config.api.token_calls_per_s = 10_000_000;
    config.api.token_call_burst = 10_000_000;
    config.store.checkpoint_interval = args.checkpoint_interval_ms.map(Duration::from_millis);
    let mut server_runtime = ServerRuntime::new()?;
    let cluster = store == "cluster";
    let mut server = if cluster {
        let shards = usize::from(args.shards);
        let config = config.clone();
        UnderTest::Cluster(Box::new(
            server_runtime
                .get()
                .spawn(async move { cluster::ClusterUnderTest::start(&config, shards).await })
                .await??,
        ))
    } else {
        UnderTest::Serve(Box::new(start_server(server_runtime.get(), &config).await?))
    };
    let mut api = format!("http://{}", server.http_addr());
    let metrics_urls = server.metrics_urls();
    let client = reqwest::Client::new();
    let stop = CancellationToken::new();

    // One uplink per station, as the simulator's firmware has.
    let target = match transport {
        Transport::Udp => server.udp_addr(),
        Transport::Tcp => server.tcp_addr(),
    };
    let keys: HashMap<_, _> = tagwatch_sim::stations(city)
        .into_iter()
        .map(|(s, k)| (s.id, k))
        .collect();
    let unacked = Arc::new(AtomicUsize::new(0));
    let outage = Arc::new(AtomicBool::new(false));
    let handoffs = Handoffs::default();
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
            down: Some(outage.clone()),
            first_sends: Some(handoffs.clone()),
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
    let mut replay = Replay::new(
        recording.clone(),
        uplinks,
        handoffs,
        city.first_tag,
        STOLEN_EVERY,
    );
    replay.synchronized = args.synchronized;
    let alert_latencies = listen_for_alerts(&api, replay.handoffs.clone()).await?;
    let gps_load = match (&server, args.gps_trackers) {
        (UnderTest::Serve(s), n) if n > 0 => {
            let addr = s.gt06_addr.context("the GT06 listener is on")?;
            Some(gps::start(addr, city, n, stop.clone()))
        }
        _ => None,
    };
    let mut gps_steps = Vec::new();

    if args.warmup_seconds > 0 {
        replay.offer(args.warmup_seconds as i64, 1.0, 1).await;
        settle(&unacked).await;
        eprintln!("  warm-up done ({} s at real time)", args.warmup_seconds);
    }
    let mut steps = Vec::new();
    for &load in &args.loads {
        let (speed, copies) = match args.grow {
            Grow::Tags => (1.0, load),
            Grow::Speed => (f64::from(load), 1),
        };
        // New tags arrive (or time speeds up) before the step is measured.
        let city_seconds = |secs: u64| (secs as f64 * speed).round() as i64;
        replay
            .offer(city_seconds(args.settle_seconds), speed, copies)
            .await;
        let before = Scrape::take_all(&client, &metrics_urls).await?;
        // The process's CPU, and the NATS server's in a cluster run (the load generator's share
        // is what the server's leaves).
        let (cpu_before, _) = process_usage();
        let cpu_before = cpu_before + metrics::nats_cpu_secs();
        // A cluster's bus is part of its server.
        let server_cpu =
            || metrics::threads_cpu_secs(&SERVER_THREAD_PREFIXES) + metrics::nats_cpu_secs();
        let server_before = server_cpu();
        let postgres_before = metrics::postgres_cpu_secs();
        let drops_before = metrics::udp_receive_drops();
        alert_latencies.lock().expect("lock").clear();
        let rss = metrics::Sampler::start(None, unacked.clone())?;
        let gps_before = gps_load
            .as_ref()
            .map(|g| (g.stats.snapshot(), Instant::now()));
        let queries = (args.api_load && steps.is_empty()).then(|| {
            tokio::spawn(api_load::run(
                api.clone(),
                TOKEN.to_owned(),
                city.clone(),
                Duration::from_secs(args.step_seconds),
            ))
        });
        let offered = replay
            .offer(city_seconds(args.step_seconds), speed, copies)
            .await;
        if let Some(queries) = queries {
            let rows = queries.await.context("the API load")?;
            let json = api_load::report(&rows);
            std::fs::create_dir_all(&args.out)?;
            let name = format!("api-load-{store}-{transport:?}.json").to_lowercase();
            std::fs::write(args.out.join(name), serde_json::to_string_pretty(&json)?)?;
        }
        let drain_secs = settle(&unacked).await;
        let after = Scrape::take_all(&client, &metrics_urls).await?;
        let (cpu_after, rss_mib) = process_usage();
        let cpu_after = cpu_after + metrics::nats_cpu_secs();
        let rss_series: Vec<(f64, f64)> =
            rss.stop().await.iter().map(|s| (s.t, s.rss_mib)).collect();
        let mut alerts: Vec<f64> = alert_latencies
            .lock()
            .expect("lock")
            .iter()
            .map(|a| a.ms)
            .collect();
        alerts.sort_by(f64::total_cmp);
        let step = Step::measure(report::StepInput {
            load,
            speed,
            tags: u64::from(city.tags) * u64::from(copies),
            offered_detections: offered.detections as f64,
            offer_secs: offered.secs,
            drain_secs,
            unsettled_frames: unacked.load(Ordering::Relaxed),
            overflow_frames: offered.overflow_frames,
            before: &before,
            after: &after,
            cpu_secs: cpu_after - cpu_before,
            server_cpu_secs: server_cpu() - server_before,
            postgres_cpu_secs: metrics::postgres_cpu_secs() - postgres_before,
            rss_mib,
            rss_series: &rss_series,
            alert_latencies_ms: &alerts,
            udp_drops: metrics::udp_receive_drops()
                .zip(drops_before)
                .map(|(a, b)| a.saturating_sub(b)),
        });
        if let (Some(g), Some((then, since))) = (&gps_load, gps_before) {
            let now = g.stats.snapshot();
            let secs = since.elapsed().as_secs_f64();
            let gps_step = serde_json::json!({
                "load": load,
                "trackers": g.trackers,
                "fixes_sent_per_s": (now[0] - then[0]) as f64 / secs,
                "fixes_acked_per_s": (now[1] - then[1]) as f64 / secs,
                "fixes_stored_by_server": after.get("tagwatch_gt06_fixes_total") - before.get("tagwatch_gt06_fixes_total"),
                "reconnects": now[2] - then[2],
            });
            eprintln!("  gps: {gps_step}");
            gps_steps.push(gps_step);
        }
        replay.handoffs.lock().expect("lock").clear();
        step.print();
        steps.push(step);
        if steps.iter().filter(|s| !s.sustained).count() > args.beyond {
            break;
        }
    }
    let backlog = if args.backlog_minutes > 0 && !cluster {
        Some(
            backlog::run(backlog::Scenario {
                minutes: args.backlog_minutes,
                max_drain: Duration::from_secs(args.backlog_max_drain_minutes * 60),
                replay: &mut replay,
                outage: &outage,
                unacked: &unacked,
                client: &client,
                api: &api,
                alerts: &alert_latencies,
                out: &args.out,
                name: &format!("{store}-{transport:?}").to_lowercase(),
            })
            .await?,
        )
    } else {
        None
    };
    // Every frame built is finally acknowledged and applied exactly once: the stations resend
    // what was refused BUSY (after their back-off), and nothing is applied twice.
    let waited = settle_within(&unacked, Duration::from_secs(600)).await;
    let end = Scrape::take_all(&client, &metrics_urls).await?;
    // A cluster's shards apply parts of frames: their detections are what they count.
    // GPS trackers' fixes are frames too (of their own stations), applied beside the stations'.
    let applied_frames =
        end.get("tagwatch_frames_applied_total") - end.get("tagwatch_gt06_fixes_total");
    stop.cancel();
    let mut link_stats = tagwatch_sim::LinkStats::default();
    for link in links {
        if let Ok(stats) = link.await {
            link_stats.add(&stats);
        }
    }
    let exactly_once = serde_json::json!({
        "frames_built": link_stats.frames_built,
        "accepted": link_stats.accepted,
        "duplicate": link_stats.duplicate,
        "rejected": link_stats.rejected,
        "busy_answers": link_stats.busy,
        "unacknowledged_at_end": link_stats.unacked_at_end,
        "frames_applied_by_server": applied_frames,
        "settle_seconds": waited,
        "every_frame_acknowledged": link_stats.unacked_at_end == 0
            && link_stats.accepted + link_stats.duplicate == link_stats.frames_built,
        "applied_exactly_once": (!cluster).then_some(applied_frames == link_stats.frames_built as f64),
        "detections_applied": end.get("tagwatch_detections_applied_total"),
        "parts_applied": end.get("tagwatch_shard_parts_applied_total"),
        "parts_duplicate": end.get("tagwatch_shard_parts_duplicate_total"),
        "shard_worker_failures": end.get("tagwatch_shard_worker_failures_total"),
        "shard_commits_fenced": end.get("tagwatch_shard_fenced_total"),
    });
    eprintln!("  exactly once: {exactly_once}");
    // The gateway alone against loopback UDP, with frames it has already applied (seq 1).
    let loopback = match transport {
        Transport::Udp if !cluster => {
            let datagrams: Vec<_> = (0..recording.stations.len())
                .filter_map(|station| {
                    let mut seq = 0;
                    let reads = &recording.seconds[0][station];
                    let frame = recording
                        .frames(
                            station,
                            reads,
                            replay.session,
                            &mut seq,
                            replay.sim_start_ms,
                        )
                        .into_iter()
                        .next()?;
                    tagwatch_gateway::wire::encode(&frame, &keys[&frame.station]).ok()
                })
                .collect();
            Some(loopback::compare(&client, &api, server.udp_addr(), &datagrams).await?)
        }
        Transport::Udp | Transport::Tcp => None,
    };
    let restart = if let (UnderTest::Serve(_), "postgres", false) =
        (&server, store, args.no_restart)
    {
        // A crash: the server's runtime is dropped with everything in it, nothing flushed.
        let pending = Scrape::take(&client, &api)
            .await?
            .get("tagwatch_journal_frames_pending");
        server_runtime = ServerRuntime::new()?;
        let started = Instant::now();
        server = UnderTest::Serve(Box::new(
            start_server(server_runtime.get(), &config)
                .await
                .context("starting again after the crash")?,
        ));
        let start_secs = started.elapsed().as_secs_f64();
        api = format!("http://{}", server.http_addr());
        let after = Scrape::take(&client, &api).await?;
        let frames = after.get("tagwatch_frames_replayed_total");
        let detections = after.get("tagwatch_detections_applied_total");
        eprintln!(
            "  restart after a crash: {frames:.0} journaled frames ({detections:.0} detections) applied again, started in {start_secs:.1} s"
        );
        Some(serde_json::json!({
            "journal_frames_pending_at_crash": pending,
            "frames_replayed": frames,
            "detections_replayed": detections,
            "start_seconds": start_secs,
        }))
    } else {
        None
    };
    let side = if compare && !cluster {
        metrics::journal_checkpointed(
            &client,
            &api,
            // After the restart, the first checkpoint carries the whole journal applied again
            // (millions of visits at the larger steps).
            config.store.checkpoint_interval() + Duration::from_secs(300),
        )
        .await
        .context("waiting for the visits to be checkpointed")?;
        let window = (replay.sim_start_ms, replay.sim_now_ms());
        let stations: Vec<_> = tagwatch_sim::stations(city)
            .into_iter()
            .map(|(s, _)| s.position)
            .collect();
        let tags = (city.first_tag, city.tags);
        let steps_rows = steps
            .iter()
            .map(|s| s.checkpoint_rows_per_busy_s)
            .fold(0.0, f64::max);
        Some(
            side_by_side::compare(
                &client, &api, TOKEN, database, &stations, tags, window, steps_rows,
            )
            .await
            .context("side-by-side comparisons")?,
        )
    } else {
        None
    };
    server_runtime
        .get()
        .spawn(async move { server.shutdown().await })
        .await?;
    let mut run = Run::new(store, transport, steps, loopback, restart);
    run.backlog = backlog;
    run.exactly_once = Some(exactly_once);
    if let Some(g) = &gps_load {
        let [fixes, acked, connects, drops] = g.stats.snapshot();
        run.gps = Some(serde_json::json!({
            "trackers": g.trackers,
            "fixes_sent": fixes,
            "fixes_acked": acked,
            "connections": connects,
            "dropped_on_purpose": drops,
            "steps": gps_steps,
        }));
    }
    Ok((run, side))
}

/// The server's own runtime, as it would have in its own process: its tasks never queue behind
/// the load generator's, and its threads' CPU is counted apart. Dropping it shuts it down without
/// waiting (a runtime may not block inside another's tasks), also when a run ends in an error.
struct ServerRuntime(Option<tokio::runtime::Runtime>);

impl ServerRuntime {
    fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SERVER_THREADS)
            // Blocking threads (checkpoint sorting) stay, so their CPU is still counted.
            .thread_keep_alive(Duration::from_secs(3_600))
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a run measures: `serve`, or the cluster's roles.
enum UnderTest {
    Serve(Box<Server>),
    Cluster(Box<cluster::ClusterUnderTest>),
}

impl UnderTest {
    fn udp_addr(&self) -> std::net::SocketAddr {
        match self {
            UnderTest::Serve(s) => s.udp_addr,
            UnderTest::Cluster(c) => c.udp_addr(),
        }
    }

    fn tcp_addr(&self) -> std::net::SocketAddr {
        match self {
            UnderTest::Serve(s) => s.tcp_addr,
            UnderTest::Cluster(c) => c.tcp_addr(),
        }
    }

    fn http_addr(&self) -> std::net::SocketAddr {
        match self {
            UnderTest::Serve(s) => s.http_addr,
            UnderTest::Cluster(c) => c.http_addr(),
        }
    }

    /// Where its metrics are read (a cluster's are summed over its roles).
    fn metrics_urls(&self) -> Vec<String> {
        match self {
            UnderTest::Serve(s) => vec![format!("http://{}", s.http_addr)],
            UnderTest::Cluster(c) => c.metrics_urls(),
        }
    }

    async fn shutdown(self) {
        match self {
            UnderTest::Serve(s) => (*s).shutdown().await,
            UnderTest::Cluster(c) => c.stop().await,
        }
    }
}

async fn start_server(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
) -> anyhow::Result<Server> {
    let config = config.clone();
    runtime
        .spawn(async move { Server::start(&config).await })
        .await?
}

/// Waits until every offered frame is acknowledged, at most 10 s; returns the seconds waited.
async fn settle(unacked: &AtomicUsize) -> f64 {
    settle_within(unacked, Duration::from_secs(10)).await
}

/// Waits until every offered frame is acknowledged, at most `limit`; returns the seconds waited.
async fn settle_within(unacked: &AtomicUsize, limit: Duration) -> f64 {
    let started = Instant::now();
    while unacked.load(Ordering::Relaxed) > 0 && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed().as_secs_f64()
}

/// A stolen-vehicle alert the SSE client received: the frame that raised it, how long after
/// that frame first left its station, and when it arrived.
#[derive(Debug, Clone, Copy)]
pub struct AlertSeen {
    pub station: u32,
    pub seq: u32,
    pub ms: f64,
    pub at: Instant,
}

/// A live SSE client for stolen-vehicle alerts: each alert whose frame's first send is known adds
/// itself, with its latency, to the returned list. It runs on a thread and runtime of its own, as
/// an officer's browser would: on the bench's runtime it queued behind a thousand stations'
/// tasks sending their flash, and measured that wait rather than the server's.
async fn listen_for_alerts(
    api: &str,
    handoffs: Handoffs,
) -> anyhow::Result<Arc<Mutex<Vec<AlertSeen>>>> {
    let latencies: Arc<Mutex<Vec<AlertSeen>>> = Arc::default();
    let found = latencies.clone();
    let url = format!("{api}/api/v1/alerts/stream?kinds=stolen_sighting");
    let (connected_tx, connected) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("e2e-alert-client".into())
        .spawn(move || {
            runtime.block_on(async move {
                let response = reqwest::Client::new()
                    .get(url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status);
                let sse = match response {
                    Ok(sse) => {
                        let _ = connected_tx.send(Ok(()));
                        sse
                    }
                    Err(error) => {
                        let _ = connected_tx.send(Err(error.into()));
                        return;
                    }
                };
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
                        if let Some(Some(sent)) = sent {
                            found.lock().expect("lock").push(AlertSeen {
                                station,
                                seq,
                                ms: sent.elapsed().as_secs_f64() * 1_000.0,
                                at: Instant::now(),
                            });
                        }
                    }
                }
            });
        })?;
    connected.await??;
    Ok(latencies)
}
