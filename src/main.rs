//! The `tagwatch` command: thin; the work lives in the library crates.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use tagwatch::demo::{self, DemoOptions};
use tagwatch::{Config, Secret, Server};
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
    /// Run a whole simulated city against a real server in this process.
    Demo(DemoArgs),
    /// Create or upgrade the database schema (safe to run twice).
    Migrate(DatabaseArgs),
    /// Drop visits older than the retention period now (the server also does it hourly).
    Retention {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Keep this many days of visits (theft-case vehicles' visits are always kept)
        #[arg(long, default_value_t = 90)]
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
    /// sqlite://PATH or sqlite::memory:
    #[arg(
        long,
        env = "TAGWATCH_DATABASE",
        default_value = "sqlite://tagwatch.sqlite"
    )]
    database: String,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// TOML file with any of the settings below (flags and environment override it).
    #[arg(long, env = "TAGWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// sqlite://PATH (created if missing) or postgres://USER@HOST/DB [default: sqlite://tagwatch.sqlite]
    #[arg(long, env = "TAGWATCH_DATABASE")]
    database: Option<String>,
    /// UDP address for station frames [default: 0.0.0.0:7700]
    #[arg(long, env = "TAGWATCH_UDP")]
    udp: Option<SocketAddr>,
    /// TCP address for station frames [default: 0.0.0.0:7700]
    #[arg(long, env = "TAGWATCH_TCP")]
    tcp: Option<SocketAddr>,
    /// HTTP address of the API [default: 127.0.0.1:8080]
    #[arg(long, env = "TAGWATCH_HTTP")]
    http: Option<SocketAddr>,
    /// Administrator bearer token (at least 16 characters); generated and printed if unset.
    #[arg(long, env = "TAGWATCH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Longest a frame waits for its store flush, ms [default: 20]
    #[arg(long, env = "TAGWATCH_FLUSH_INTERVAL_MS")]
    flush_interval_ms: Option<u64>,
    /// How often a flush also writes the changed visits (frames are journaled in between), ms;
    /// 0: every flush [default: 30000 on Postgres, 0 on SQLite]
    #[arg(long, env = "TAGWATCH_CHECKPOINT_INTERVAL_MS")]
    checkpoint_interval_ms: Option<u64>,
    /// Detections of a tag at one station closer than this are one visit, s [default: 30]
    #[arg(long, env = "TAGWATCH_VISIT_GAP_S")]
    visit_gap_s: Option<u64>,
    /// Map tile URL template for the web map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png
    /// [default: none, a plain background that works offline]
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
        if let Some(v) = self.database {
            config.database = v;
        }
        if let Some(v) = self.udp {
            config.udp = v;
        }
        if let Some(v) = self.tcp {
            config.tcp = v;
        }
        if let Some(v) = self.http {
            config.http = v;
        }
        if let Some(v) = self.admin_token {
            config.admin_token = Some(Secret(v));
        }
        if let Some(v) = self.flush_interval_ms {
            config.flush_interval_ms = v;
        }
        if let Some(v) = self.checkpoint_interval_ms {
            config.checkpoint_interval_ms = Some(v);
        }
        if let Some(v) = self.visit_gap_s {
            config.visit_gap_s = v;
        }
        if let Some(v) = self.tile_url {
            config.tile_url = Some(v);
        }
        config.validate()?;
        Ok(config)
    }
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
                steal_after: std::time::Duration::from_secs(args.steal_after),
                run_for: args.seconds.map(std::time::Duration::from_secs),
                seed: args.seed,
                password: args.password,
                tile_url: args.tile_url,
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
            if id == 0 {
                anyhow::bail!("--id must be 1..=4294967295");
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.into_config()?;
    if config.admin_token.is_none() {
        let token = tagwatch::random_hex(24)?;
        // Printed once to the operator's terminal, never to the log.
        println!(
            "No admin token configured (TAGWATCH_ADMIN_TOKEN); generated for this run: {token}"
        );
        config.admin_token = Some(Secret(token));
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
