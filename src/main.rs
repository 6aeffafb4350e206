//! The `tagwatch` command: thin; the work lives in the library crates.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tagwatch::api_role::{ApiOptions, RunningApi};
use tagwatch::config::{ListenSection, StoreSection};
use tagwatch::demo::{self, DemoOptions};
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch::shard_role::{RunningShard, ShardOptions};
use tagwatch::{Config, Secret, Server};
use tagwatch_cluster::BusConfig;
use tagwatch_model::{GeoPoint, Station, StationId, StationKey};
use tagwatch_sim::Transport;
use tagwatch_store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "tagwatch",
    version,
    about = "Finds stolen vehicles from roadside tag readers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run gateway (UDP + TCP), tracker, store and HTTP API.
    Serve(ServeArgs),
    /// Run a cluster's gateway: station frames verified, split by partition and published to
    /// NATS JetStream (acknowledged once stored); any number may run.
    Gateway(GatewayArgs),
    /// Run a cluster's tracker shard: applies its share of the partitions from NATS JetStream
    /// and commits them to Postgres; any number may run, and the others take over a dead one's.
    Shard(ShardArgs),
    /// Run a cluster's HTTP API and web map: alerts from NATS JetStream, history from
    /// Postgres, changes published to the shards; any number may run.
    Api(ApiArgs),
    /// Run a whole simulated city against a real server in this process.
    Demo(DemoArgs),
    /// Create or upgrade the database schema (safe to run twice).
    Migrate(DatabaseArgs),
    /// Drop visits older than the retention period now (the server also does it hourly).
    Retention {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Keep this many days of visits (theft-case vehicles' visits are always kept)
        #[arg(long, default_value_t = StoreSection::default().retention_days)]
        days: u32,
    },
    /// Provision stations in the database (before `serve`; while serving, use the API).
    Station {
        #[command(subcommand)]
        command: StationCommand,
    },
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(
        long,
        env = "TAGWATCH_DATABASE",
        default_value_t = StoreSection::default().database
    )]
    database: String,
}

/// The flags of `serve`: each sets one key of the configuration (named in its help), over the
/// file; defaults are the configuration's own (`tagwatch.example.toml`).
#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML file of settings (see tagwatch.example.toml); flags and environment override it.
    #[arg(long, env = "TAGWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Print the configuration in effect (defaults, file, environment, flags) as TOML, and exit.
    #[arg(long)]
    print_config: bool,
    /// [store] database: sqlite://PATH (created if missing) or postgres://USER@HOST/DB
    #[arg(long, env = "TAGWATCH_DATABASE")]
    database: Option<String>,
    /// [listen] udp: UDP address for station frames
    #[arg(long, env = "TAGWATCH_UDP")]
    udp: Option<SocketAddr>,
    /// [listen] tcp: TCP address for station frames
    #[arg(long, env = "TAGWATCH_TCP")]
    tcp: Option<SocketAddr>,
    /// [listen] http: HTTP address of the API and the web map
    #[arg(long, env = "TAGWATCH_HTTP")]
    http: Option<SocketAddr>,
    /// [listen] gt06: TCP address for GT06 GPS trackers (default 0.0.0.0:5023); "" turns it off
    #[arg(long, env = "TAGWATCH_GT06")]
    gt06: Option<String>,
    /// [api] admin_token: administrator bearer token (at least 16 characters); generated and
    /// printed if unset.
    #[arg(long, env = "TAGWATCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// [store] flush_interval: longest a frame waits for its store flush, e.g. 20ms
    #[arg(long, env = "TAGWATCH_FLUSH_INTERVAL", value_parser = humantime::parse_duration)]
    flush_interval: Option<Duration>,
    /// [store] checkpoint_interval: how often a flush also writes the changed visits (frames are
    /// journaled in between), e.g. 30s; 0s: every flush
    #[arg(long, env = "TAGWATCH_CHECKPOINT_INTERVAL", value_parser = humantime::parse_duration)]
    checkpoint_interval: Option<Duration>,
    /// [tracker] visit_gap: detections of a tag at one station closer than this are one visit,
    /// e.g. 30s
    #[arg(long, env = "TAGWATCH_VISIT_GAP", value_parser = humantime::parse_duration)]
    visit_gap: Option<Duration>,
    /// [api] tile_url: map tile URL template for the web map, e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png (unset: a plain background that works
    /// offline)
    #[arg(long, env = "TAGWATCH_TILE_URL")]
    tile_url: Option<String>,
}

impl ServeArgs {
    /// Defaults, then the file, then environment and flags.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        let listen = &mut config.listen;
        listen.udp = self.udp.unwrap_or(listen.udp);
        listen.tcp = self.tcp.unwrap_or(listen.tcp);
        listen.http = self.http.unwrap_or(listen.http);
        if let Some(gt06) = &self.gt06 {
            listen.gt06 = tagwatch::config::parse_optional_addr(gt06)
                .map_err(|e| anyhow::anyhow!("--gt06: {e}"))?;
        }
        let store = &mut config.store;
        store.database = self.database.unwrap_or(store.database.clone());
        store.flush_interval = self.flush_interval.unwrap_or(store.flush_interval);
        store.checkpoint_interval = self.checkpoint_interval.or(store.checkpoint_interval);
        config.tracker.visit_gap = self.visit_gap.unwrap_or(config.tracker.visit_gap);
        let api = &mut config.api;
        api.admin_token = self.admin_token.map(Secret).or(api.admin_token.take());
        api.tile_url = self.tile_url.or(api.tile_url.take());
        config.validate()?;
        Ok(config)
    }
}

#[derive(Debug, Args)]
struct GatewayArgs {
    /// NATS server URL(s) of the cluster, comma-separated, e.g. nats://10.0.0.1:4222
    #[arg(long, env = "TAGWATCH_NATS")]
    nats: String,
    #[command(flatten)]
    db: DatabaseArgs,
    /// UDP address for station frames
    #[arg(long, env = "TAGWATCH_UDP", default_value_t = ListenSection::default().udp)]
    udp: SocketAddr,
    /// TCP address for station frames
    #[arg(long, env = "TAGWATCH_TCP", default_value_t = ListenSection::default().tcp)]
    tcp: SocketAddr,
    /// Partitions to create the cluster with (the first process to start creates it; a later
    /// one giving another count is refused) [default: the cluster's, or 64 for a new one]
    #[arg(long)]
    partitions: Option<u16>,
    /// Copies of the stream the NATS cluster keeps (3 on a three-node cluster)
    #[arg(long, default_value_t = BusConfig::default().replicas)]
    replicas: usize,
    /// How often station keys and companion pairs are read from the store again, e.g. 5s
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    refresh: Duration,
    /// HTTP address of the gateway's /metrics and /healthz (none when unset)
    #[arg(long, env = "TAGWATCH_HTTP")]
    http: Option<SocketAddr>,
    /// TCP address for GT06 GPS trackers, e.g. 0.0.0.0:5023 (none when unset)
    #[arg(long, env = "TAGWATCH_GT06")]
    gt06: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct ShardArgs {
    /// NATS server URL(s) of the cluster, comma-separated, e.g. nats://10.0.0.1:4222
    #[arg(long, env = "TAGWATCH_NATS")]
    nats: String,
    #[command(flatten)]
    db: DatabaseArgs,
    /// This shard's name, unique among the running shards (letters, digits, - and _)
    /// [default: shard- and 8 random hex digits]
    #[arg(long, env = "TAGWATCH_SHARD_NAME")]
    name: Option<String>,
    /// Copies of the streams the NATS cluster keeps, if this process creates them (3 on a
    /// three-node cluster)
    #[arg(long, default_value_t = BusConfig::default().replicas)]
    replicas: usize,
    /// A dead shard's partitions are taken over by the others after this, e.g. 6s
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// How often each partition's applied frames are committed, e.g. 100ms
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    flush: Duration,
    /// How often each partition's changed visits are written, e.g. 30s (a partition taken over
    /// is applied again from its last checkpoint)
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    checkpoint: Duration,
    /// HTTP address of the shard's /metrics and /healthz (none when unset)
    #[arg(long, env = "TAGWATCH_HTTP")]
    http: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct ApiArgs {
    /// NATS server URL(s) of the cluster, comma-separated, e.g. nats://10.0.0.1:4222
    #[arg(long, env = "TAGWATCH_NATS")]
    nats: String,
    #[command(flatten)]
    db: DatabaseArgs,
    /// HTTP address of the API and the web map
    #[arg(long, env = "TAGWATCH_HTTP", default_value_t = ListenSection::default().http)]
    http: SocketAddr,
    /// Copies of the streams the NATS cluster keeps, if this process creates them (3 on a
    /// three-node cluster)
    #[arg(long, default_value_t = BusConfig::default().replicas)]
    replicas: usize,
    /// Administrator bearer token (at least 16 characters), the same on every API node
    #[arg(long, env = "TAGWATCH_ADMIN_TOKEN")]
    admin_token: String,
    /// Map tile URL template for the web map, e.g. https://tile.example.org/{z}/{x}/{y}.png
    #[arg(long, env = "TAGWATCH_TILE_URL")]
    tile_url: Option<String>,
    /// How long the shards have to answer a live question (where a vehicle is, tags near a
    /// point); partitions that did not answer in time are named in the answer
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    ask_deadline: Duration,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// HTTP address of the API
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Database for the demo city (recreated at start)
    #[arg(long, default_value = "sqlite://tagwatch-demo.sqlite")]
    database: String,
    /// Intersections per side of the square road grid (one station each)
    #[arg(long, default_value_t = 16)]
    grid: u32,
    /// Tagged vehicles
    #[arg(long, default_value_t = 5_000)]
    tags: u32,
    /// Simulated seconds per real second; 0 runs as fast as the server acknowledges
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Station transport
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportArg,
    /// Report a vehicle stolen after this many seconds
    #[arg(long, default_value_t = 10)]
    steal_after: u64,
    /// Vehicles that also carry a GT06 GPS tracker (the first tags), reporting every 10-30 s
    #[arg(long, default_value_t = 250)]
    gps_trackers: u32,
    /// Stop by itself after this many seconds (default: run until Ctrl-C)
    #[arg(long)]
    seconds: Option<u64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Password of the demo's `officer` and `dispatcher` web map accounts [default: random, printed]
    #[arg(long, env = "TAGWATCH_DEMO_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Map tile URL template for the web map [default: none, a plain background]
    #[arg(long, env = "TAGWATCH_TILE_URL")]
    tile_url: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
}

#[derive(Debug, Subcommand)]
enum StationCommand {
    /// Add a station; prints its key (generated unless given) once.
    Add {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        id: u32,
        #[arg(long)]
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// 64 hex characters; generated when absent
        #[arg(long)]
        key: Option<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAGWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Gateway(args) => gateway(args).await,
        Command::Shard(args) => shard(args).await,
        Command::Api(args) => api(args).await,
        Command::Demo(args) => {
            let options = DemoOptions {
                http: args.http,
                database: args.database,
                grid: args.grid,
                tags: args.tags,
                speed: (args.speed > 0.0).then_some(args.speed),
                transport: match args.transport {
                    TransportArg::Udp => Transport::Udp,
                    TransportArg::Tcp => Transport::Tcp,
                },
                steal_after: Duration::from_secs(args.steal_after),
                run_for: args.seconds.map(Duration::from_secs),
                seed: args.seed,
                password: args.password,
                tile_url: args.tile_url,
                gps_trackers: args.gps_trackers,
            };
            demo::run(options, &mut std::io::stdout()).await.map(|_| ())
        }
        Command::Retention { db, days } => {
            anyhow::ensure!(days > 0, "--days must be at least 1");
            let store = Store::open(&db.database).await?;
            let cutoff = tagwatch_model::time::now_ms() - i64::from(days) * 86_400_000;
            let dropped = store.retain(cutoff).await?;
            println!(
                "{dropped} visits older than {days} days dropped from {}",
                db.database
            );
            Ok(())
        }
        Command::Migrate(args) => {
            let store = Store::open(&args.database).await?;
            store.migrate().await?;
            println!("{} is up to date", args.database);
            Ok(())
        }
        Command::Station {
            command:
                StationCommand::Add {
                    db,
                    id,
                    name,
                    lat,
                    lon,
                    key,
                },
        } => {
            let position = GeoPoint::new(lat, lon)?;
            if id == 0 || StationId(id).is_device() {
                anyhow::bail!(
                    "--id must be 1..={}: ids from {} up are GPS trackers' (POST /api/v1/trackers)",
                    tagwatch_model::DEVICE_STATIONS_FROM - 1,
                    tagwatch_model::DEVICE_STATIONS_FROM
                );
            }
            let (key, generated) = match key {
                Some(hex) => (StationKey::from_hex(&hex).context("--key")?, false),
                None => (StationKey::from_hex(&tagwatch::random_hex(32)?)?, true),
            };
            let store = Store::open(&db.database).await?;
            let station = Station {
                id: StationId(id),
                name,
                position,
            };
            store
                .insert_station(&station, &key, tagwatch_model::time::now_ms())
                .await?;
            println!("station {id} added");
            if generated {
                println!(
                    "key (shown once; provision it into the station): {}",
                    key.to_hex()
                );
            }
            Ok(())
        }
    }
}

async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let config = Config::default();
    let gateway = RunningGateway::start(GatewayOptions {
        nats: args.nats,
        database: args.db.database,
        udp: args.udp,
        tcp: args.tcp,
        stations: config.stations,
        clock_skew_limit: config.tracker.clock_skew_limit,
        bus: BusConfig {
            replicas: args.replicas,
            ..BusConfig::default()
        },
        partitions: args.partitions,
        refresh: args.refresh,
        http: args.http,
        gt06: args.gt06,
    })
    .await?;
    println!(
        "TagWatch gateway: stations → udp {} / tcp {}; {} partitions",
        gateway.udp, gateway.tcp, gateway.partitions
    );
    let signal = tagwatch::signals::stop_requested().await?;
    println!("{signal}: stopping…");
    gateway.stop().await;
    Ok(())
}

async fn shard(args: ShardArgs) -> anyhow::Result<()> {
    if args.lease_ttl < Duration::from_secs(1) || args.flush.is_zero() || args.checkpoint.is_zero()
    {
        anyhow::bail!("--lease-ttl must be at least 1s, --flush and --checkpoint more than 0");
    }
    let name = match args.name {
        Some(name) => name,
        None => format!("shard-{}", tagwatch::random_hex(4)?),
    };
    let config = Config::default();
    let shard = RunningShard::start(ShardOptions {
        nats: args.nats,
        database: args.db.database,
        name: name.clone(),
        tracker: config.tracker.tracker_config(),
        bus: BusConfig {
            replicas: args.replicas,
            ..BusConfig::default()
        },
        lease_ttl: args.lease_ttl,
        flush_interval: args.flush,
        checkpoint_interval: args.checkpoint,
        http: args.http,
    })
    .await?;
    println!(
        "TagWatch shard {name}: applying its share of {} partitions",
        shard.partitions
    );
    let signal = tagwatch::signals::stop_requested().await?;
    println!("{signal}: committing and handing the partitions on…");
    shard.stop().await;
    Ok(())
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let mut config = Config::default();
    config.api.admin_token = Some(Secret(args.admin_token));
    config.api.tile_url = args.tile_url;
    config.validate()?;
    let api = RunningApi::start(ApiOptions {
        nats: args.nats,
        database: args.db.database,
        http: args.http,
        bus: BusConfig {
            replicas: args.replicas,
            ..BusConfig::default()
        },
        api: config.api,
        retention_days: config.store.retention_days,
        ask_deadline: args.ask_deadline,
    })
    .await?;
    println!("TagWatch API: http://{}/", api.http);
    let signal = tagwatch::signals::stop_requested().await?;
    println!("{signal}: stopping…");
    api.stop().await;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let print = args.print_config;
    let mut config = args.into_config()?;
    if print {
        print!("{}", config.to_toml());
        return Ok(());
    }
    if config.api.admin_token.is_none() {
        let token = tagwatch::random_hex(24)?;
        // Printed once to the operator's terminal, never to the log.
        println!(
            "No admin token configured (TAGWATCH_ADMIN_TOKEN); generated for this run: {token}"
        );
        config.api.admin_token = Some(Secret(token));
    }
    let server = Server::start(&config).await?;
    println!(
        "TagWatch: stations → udp {} / tcp {}; API → http://{}",
        server.udp_addr, server.tcp_addr, server.http_addr
    );
    let signal = tagwatch::signals::stop_requested().await?;
    println!("{signal}: shutting down…");
    server.shutdown().await;
    Ok(())
}
