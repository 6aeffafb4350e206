//! # `tagwatch api`: a cluster's HTTP API and web map
//!
//! The same API and pages as `serve` (`tagwatch-api`), on the cluster's store and bus instead of
//! a tracker in the process:
//! - **alerts** come from the `TW_ALERTS` stream every shard publishes to; the SSE event id is
//!   the alert's stream sequence, so an officer's stream resumes with `Last-Event-ID` on any API
//!   node ([`tagwatch_cluster::alerts::follow`]);
//! - **changes** (thefts, armed vehicles, geofences, pairs, stations) are written to the store
//!   and then published to the `TW_COMMANDS` stream, which every shard reads
//!   ([`forward_commands`]);
//! - **stored history** (tracks, alerts, audit, accounts) comes from Postgres as in `serve`;
//! - **live questions** (where a vehicle is now, its track in memory, the arm check, tags near a
//!   point or through an area, dens, travelling-with, stations' last frames) are asked of the
//!   shards that own the partitions ([`tagwatch_cluster::ask`], [`ClusterShards`]): a vehicle's
//!   of its partition, an area's of all, each with a deadline; an answer says which partitions
//!   did not answer.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use prometheus_client::registry::Registry;
use tagwatch_api::listener::HttpLimits;
use tagwatch_api::live::{Gathered, Live, Shards};
use tagwatch_api::{ApiState, TokenHash};
use tagwatch_cluster::alerts;
use tagwatch_cluster::ask::Asker;
use tagwatch_cluster::bus::without_credentials;
use tagwatch_cluster::{commands, Bus, BusConfig, Groups};
use tagwatch_gateway::StationKeys;
use tagwatch_ingest::live::{AlertBus, DEFAULT_RING};
use tagwatch_ingest::Health;
use tagwatch_store::Store;
use tagwatch_tracker::questions::Question;
use tagwatch_tracker::Command;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ApiSection;

/// What an API node needs.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// NATS server URL(s), comma-separated.
    pub nats: String,
    /// The cluster's store (Postgres).
    pub database: String,
    pub http: SocketAddr,
    pub bus: BusConfig,
    /// The admin token among them is required.
    pub api: ApiSection,
    pub retention_days: u32,
    /// How long a partition's shard has to answer a live question.
    pub ask_deadline: Duration,
}

/// How often the API node reads the companion pairs again (which partition holds a vehicle).
const GROUPS_REFRESH: Duration = Duration::from_secs(5);

/// The shards, asked over NATS.
#[derive(Debug)]
struct ClusterShards(Asker);

impl Shards for ClusterShards {
    fn ask(&self, question: Question) -> BoxFuture<'static, Result<Gathered, String>> {
        let asker = self.0.clone();
        Box::pin(async move {
            let (answer, missing) = asker.ask(&question).await?;
            Ok(Gathered { answer, missing })
        })
    }
}

/// An API node that is running.
#[derive(Debug)]
pub struct RunningApi {
    pub http: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningApi {
    pub async fn start(options: ApiOptions) -> anyhow::Result<Self> {
        let admin_token = options
            .api
            .admin_token
            .as_ref()
            .context("an admin token is required")?;
        let store = Store::open(&options.database).await.with_context(|| {
            format!(
                "opening the store {}",
                without_credentials(&options.database)
            )
        })?;
        let bus = Bus::connect(&options.nats, options.bus.clone(), None).await?;
        let alert_bus = Arc::new(AlertBus::new(DEFAULT_RING));
        let shutdown = CancellationToken::new();
        let feed = alerts::follow(&bus.jetstream, alert_bus.clone(), shutdown.clone())
            .await
            .map_err(anyhow::Error::msg)
            .context("reading the alerts stream")?;
        let (commands_tx, commands_rx) = mpsc::channel(256);
        // A vehicle's partition depends on its pairs: read from the store, kept fresh.
        let (groups_tx, groups) = watch::channel(Arc::new(Groups::default()));
        crate::gateway_role::refresh(&store, None, &groups_tx)
            .await
            .context("reading companion pairs")?;
        let shards = ClusterShards(Asker::new(&bus, groups, options.ask_deadline));
        let api = &options.api;
        let limits = Arc::new(tagwatch_api::limits::Limits::configured(
            api.token_calls_per_s,
            api.token_call_burst,
            api.unauthenticated_per_min,
            api.unauthenticated_burst,
        ));
        let health = Arc::new(Health::default());
        let api_state = ApiState {
            store: store.clone(),
            keys: StationKeys::default(),
            tracker: commands_tx,
            live: Live::Shards(Arc::new(shards)),
            bus: alert_bus,
            admin_token: TokenHash::of(&admin_token.0),
            registry: Arc::new(Registry::default()),
            health: health.clone(),
            limits,
            tile_url: api.tile_url.clone(),
            roads: Default::default(),
            retention_days: Arc::new(AtomicU32::new(options.retention_days)),
            // GT06 trackers are served by `serve` only (docs/DEVICES.md): a cluster's API node
            // registers them in the store and lists what they last reported.
            devices: crate::devices::load_registry(&store).await?,
            audit: tagwatch_api::audit_writer::AuditWriter::start(store.clone()),
            identities: Default::default(),
        };
        // Lapsed hotlist entries close their cases.
        let expiry = tokio::spawn(tagwatch_api::hotlist::sweep_expired(
            api_state.clone(),
            shutdown.clone(),
        ));
        // Alerts to the registered webhooks.
        let webhooks = tokio::spawn(tagwatch_api::webhooks::run(
            api_state.clone(),
            api.webhook_backoff(),
            shutdown.clone(),
        ));
        let app = tagwatch_api::app(api_state);
        let http = TcpListener::bind(options.http)
            .await
            .with_context(|| format!("binding HTTP {}", options.http))?;
        let http_addr = http.local_addr()?;
        let tasks = vec![
            feed,
            expiry,
            webhooks,
            tokio::spawn(forward_commands(bus, commands_rx)),
            tokio::spawn(probe_store(store.clone(), health, shutdown.clone())),
            tokio::spawn(crate::gateway_role::keep_refreshing(
                store,
                None,
                groups_tx,
                GROUPS_REFRESH,
                shutdown.clone(),
            )),
            tokio::spawn(tagwatch_api::listener::serve(
                http,
                app,
                HttpLimits {
                    max_connections: 1_024,
                    header_timeout: api.http_header_timeout,
                },
                shutdown.clone(),
            )),
        ];
        tracing::info!(%http_addr, "tagwatch api serving");
        Ok(Self {
            http: http_addr,
            shutdown,
            tasks,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Keeps `/healthz` true to the store: this node commits nothing itself, so it asks the store a
/// small question every few seconds (503 while that fails).
async fn probe_store(store: Store, health: Arc<Health>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let ok = store.partition_state(0).await.is_ok();
        health
            .store_ok
            .store(ok, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Publishes each change the API made (already in the store) to the commands stream.
async fn forward_commands(bus: Bus, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.recv().await {
        let mut wait = Duration::from_millis(100);
        // The store has the change: a shard that restores a partition later finds it there. The
        // running ones learn it only from the stream, so keep trying while NATS is away.
        while let Err(error) = commands::publish(&bus.jetstream, &command).await {
            tracing::warn!(%error, "command not published yet; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
}
