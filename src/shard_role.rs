//! # `tagwatch shard`: a cluster's tracker shard
//!
//! Holds the leases of its share of the partitions and applies each with a worker
//! ([`tagwatch_cluster::shard`]): parts from JetStream into the partition's tracker, visits and
//! alerts into Postgres with the partition's sequence, alerts onto the alerts stream. Any number
//! can run; each takes ⌈partitions ÷ shards⌉, and the partitions of a shard that dies are taken
//! over by the others once its leases expire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tagwatch_api::listener::HttpLimits;
use tagwatch_cluster::apply_partition::Shared;
use tagwatch_cluster::bus::without_credentials;
use tagwatch_cluster::lease::Leases;
use tagwatch_cluster::shard::{run_shard, ShardMetrics};
use tagwatch_cluster::{Bus, BusConfig, Groups};
use tagwatch_ingest::PipelineMetrics;
use tagwatch_store::Store;
use tagwatch_tracker::TrackerConfig;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::gateway_role::{health_response, metrics_response};

/// What a shard needs.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// NATS server URL(s), comma-separated.
    pub nats: String,
    /// The cluster's store (Postgres).
    pub database: String,
    /// This shard's name among the shards: letters, digits, `-` and `_`, unique.
    pub name: String,
    pub tracker: TrackerConfig,
    pub bus: BusConfig,
    /// A lease not renewed for this long is free for another shard: how long a dead shard's
    /// partitions wait.
    pub lease_ttl: Duration,
    /// How often a partition's applied frames are committed (and acknowledged).
    pub flush_interval: Duration,
    /// How often a partition's changed visits are written: a partition that moves is applied
    /// again from its last checkpoint.
    pub checkpoint_interval: Duration,
    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub http: Option<SocketAddr>,
}

/// A shard that is running.
#[derive(Debug)]
pub struct RunningShard {
    pub http: Option<SocketAddr>,
    pub partitions: u16,
    pub metrics: Arc<ShardMetrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningShard {
    /// Connects to the store and the bus, joins the leases and starts applying its share.
    pub async fn start(options: ShardOptions) -> anyhow::Result<Self> {
        let store = Store::open(&options.database).await.with_context(|| {
            format!(
                "opening the store {}",
                without_credentials(&options.database)
            )
        })?;
        let bus = Bus::connect(&options.nats, options.bus.clone(), None).await?;
        let leases = Leases::open(&bus, &options.name, options.lease_ttl)
            .await
            .map_err(anyhow::Error::msg)
            .context("joining the partition leases")?;
        let groups = Groups::from_pairs(store.pairs().await?);
        let metrics = Arc::new(ShardMetrics::default());
        let pipeline = Arc::new(PipelineMetrics::default());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        pipeline.register(&mut registry);
        let partitions = bus.partitions;
        let shared = Arc::new(Shared {
            bus: bus.clone(),
            store,
            holder: options.name.clone(),
            tracker: options.tracker,
            groups,
            flush_interval: options.flush_interval,
            checkpoint_interval: options.checkpoint_interval,
            pipeline,
            metrics: metrics.clone(),
        });
        let http = match options.http {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding HTTP {addr}"))?,
            ),
            None => None,
        };
        let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;
        let shutdown = CancellationToken::new();
        let mut tasks = vec![tokio::spawn(run_shard(
            shared,
            leases,
            options.lease_ttl,
            shutdown.clone(),
        ))];
        if let Some(http) = http {
            let status = Status {
                bus,
                metrics: metrics.clone(),
                registry: Arc::new(registry),
            };
            tasks.push(tokio::spawn(tagwatch_api::listener::serve(
                http,
                Router::new()
                    .route("/metrics", get(metrics_text))
                    .route("/healthz", get(health))
                    .with_state(status),
                HttpLimits {
                    max_connections: 64,
                    header_timeout: Duration::from_secs(5),
                },
                shutdown.clone(),
            )));
        }
        tracing::info!(name = %options.name, partitions, ?http_addr, "tagwatch shard running");
        Ok(Self {
            http: http_addr,
            partitions,
            metrics,
            shutdown,
            tasks,
        })
    }

    /// Stops: every partition's applied frames are committed and its lease given back.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

#[derive(Debug, Clone)]
struct Status {
    bus: Bus,
    metrics: Arc<ShardMetrics>,
    registry: Arc<Registry>,
}

/// `GET /metrics`: the shard's counters, Prometheus text.
async fn metrics_text(State(status): State<Status>) -> Response {
    metrics_response(&status.registry)
}

/// `GET /healthz`: 200 while connected to NATS, 503 otherwise; and the partitions held.
async fn health(State(status): State<Status>) -> Response {
    health_response(
        status.bus.is_connected(),
        serde_json::json!({
            "partitions_held": status.metrics.partitions_held.get(),
            "partitions": status.bus.partitions,
        }),
    )
}
