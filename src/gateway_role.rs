//! # `tagwatch gateway`: where stations reach a cluster
//!
//! The same UDP and TCP listeners as `serve` (`tagwatch-gateway`: framing, MAC, limits), with
//! verified frames handed to the bus ([`tagwatch_cluster::BusHandoff`]) instead of an ingest: a
//! station's frame is acknowledged once JetStream has stored every part of it. A gateway keeps
//! no state of its own, so any number can run, and a station may reach any of them. Station
//! keys and companion pairs come from the store, read at start and every `refresh` after (a
//! station provisioned through the API is heard within that). With `--gt06` it also takes GPS
//! trackers (`tagwatch-devices`), whose frames go the same way; trackers and their engine
//! commands are read again every `refresh` too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use tagwatch_api::listener::HttpLimits;
use tagwatch_cluster::bus::without_credentials;
use tagwatch_cluster::publish::PublishMetrics;
use tagwatch_cluster::{Bus, BusConfig, BusHandoff, Groups};
use tagwatch_gateway::metrics::GatewayMetrics;
use tagwatch_gateway::{Gateway, GatewayConfig, StationKeys};
use tagwatch_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::StationsSection;
use crate::server::bind_udp;

/// What a gateway needs.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// NATS server URL(s), comma-separated.
    pub nats: String,
    /// The cluster's store (station keys, companion pairs).
    pub database: String,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub stations: StationsSection,
    pub clock_skew_limit: Duration,
    pub bus: BusConfig,
    /// The partition count to create the cluster with, or to insist on.
    pub partitions: Option<u16>,
    /// How often station keys and companion pairs are read again.
    pub refresh: Duration,
    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub http: Option<SocketAddr>,
    /// Where GT06 GPS trackers connect, if anywhere.
    pub gt06: Option<SocketAddr>,
}

/// A gateway that is running.
#[derive(Debug)]
pub struct RunningGateway {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub http: Option<SocketAddr>,
    pub gt06: Option<SocketAddr>,
    /// The cluster's partition count.
    pub partitions: u16,
    pub metrics: Arc<GatewayMetrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// Connects to the store and the bus, and starts listening.
    pub async fn start(options: GatewayOptions) -> anyhow::Result<Self> {
        let store = Store::open(&options.database).await.with_context(|| {
            format!(
                "opening the store {}",
                without_credentials(&options.database)
            )
        })?;
        let bus = Bus::connect(&options.nats, options.bus.clone(), options.partitions).await?;
        let keys = StationKeys::default();
        let (groups_tx, groups) = watch::channel(Arc::new(Groups::default()));
        refresh(&store, Some(&keys), &groups_tx)
            .await
            .context("reading station keys and companion pairs")?;
        let udp = Arc::new(
            bind_udp(options.udp).with_context(|| format!("binding UDP {}", options.udp))?,
        );
        let tcp = TcpListener::bind(options.tcp)
            .await
            .with_context(|| format!("binding TCP {}", options.tcp))?;
        let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
        let partitions = bus.partitions;
        let publishing = Arc::new(PublishMetrics::default());
        let (handoff, publisher) = BusHandoff::start(bus.clone(), groups, publishing.clone());
        let metrics = Arc::new(GatewayMetrics::default());
        let http = match options.http {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding HTTP {addr}"))?,
            ),
            None => None,
        };
        let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;
        let gateway = Arc::new(Gateway::new(
            GatewayConfig {
                max_body: options.stations.max_frame_body,
                clock_skew_limit_ms: u64::try_from(options.clock_skew_limit.as_millis())
                    .unwrap_or(u64::MAX),
                max_tcp_connections: options.stations.tcp_connections,
                max_tcp_per_source: options.stations.tcp_connections_per_source,
                tcp_auth_timeout: options.stations.tcp_auth_timeout,
                ..GatewayConfig::default()
            },
            keys.clone(),
            metrics.clone(),
            handoff,
        ));
        let device_metrics = Arc::new(tagwatch_devices::metrics::DeviceMetrics::default());
        let mut registry = registry_of(&metrics, &publishing);
        device_metrics.register(&mut registry);
        let status = Status {
            bus,
            keys: keys.clone(),
            partitions,
            registry: Arc::new(registry),
        };
        let shutdown = CancellationToken::new();
        let devices = crate::devices::load_registry(&store).await?;
        let (gt06_addr, device_tasks) = crate::devices::start(
            options.gt06,
            store.clone(),
            devices.clone(),
            gateway.clone(),
            device_metrics,
            shutdown.clone(),
        )
        .await?;
        let registry_task = gt06_addr.map(|_| {
            tokio::spawn(crate::devices::keep_registry(
                store.clone(),
                devices,
                keys.clone(),
                options.refresh,
                shutdown.clone(),
            ))
        });
        let mut tasks = vec![
            tokio::spawn(tagwatch_gateway::serve_udp(
                udp,
                gateway.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(tagwatch_gateway::serve_tcp(tcp, gateway, shutdown.clone())),
            tokio::spawn(keep_refreshing(
                store,
                Some(keys),
                groups_tx,
                options.refresh,
                shutdown.clone(),
            )),
            publisher,
        ];
        tasks.extend(device_tasks);
        tasks.extend(registry_task);
        if let Some(http) = http {
            tasks.push(tokio::spawn(tagwatch_api::listener::serve(
                http,
                status_routes(status),
                HttpLimits {
                    max_connections: 64,
                    header_timeout: Duration::from_secs(5),
                },
                shutdown.clone(),
            )));
        }
        tracing::info!(%udp_addr, %tcp_addr, ?http_addr, partitions, "tagwatch gateway serving");
        Ok(Self {
            udp: udp_addr,
            tcp: tcp_addr,
            http: http_addr,
            gt06: gt06_addr,
            partitions,
            metrics,
            shutdown,
            tasks,
        })
    }

    /// Stops listening; frames handed on are published and answered first.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// What `/metrics` and `/healthz` report.
#[derive(Debug, Clone)]
struct Status {
    bus: Bus,
    keys: StationKeys,
    partitions: u16,
    registry: Arc<Registry>,
}

fn registry_of(metrics: &GatewayMetrics, publishing: &PublishMetrics) -> Registry {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    publishing.register(&mut registry);
    registry
}

fn status_routes(status: Status) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(health))
        .with_state(status)
}

/// `GET /metrics`: the gateway's counters, Prometheus text.
async fn metrics_text(State(status): State<Status>) -> Response {
    metrics_response(&status.registry)
}

/// A role's `/metrics` answer: its registry as Prometheus text.
pub fn metrics_response(registry: &Registry) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// `GET /healthz`: 200 while connected to NATS (frames can be stored), 503 otherwise.
async fn health(State(status): State<Status>) -> Response {
    health_response(
        status.bus.is_connected(),
        serde_json::json!({
            "stations": status.keys.len(),
            "partitions": status.partitions,
        }),
    )
}

/// A role's `/healthz` answer: 200 while connected to NATS, 503 otherwise, with `details`.
pub fn health_response(connected: bool, mut details: serde_json::Value) -> Response {
    details["nats"] = (if connected {
        "connected"
    } else {
        "disconnected"
    })
    .into();
    let code = if connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(details)).into_response()
}

/// Reads station keys (if it is given them) and companion pairs again every `every` until
/// `shutdown` (an API node needs only the pairs, to know a vehicle's partition).
pub(crate) async fn keep_refreshing(
    store: Store,
    keys: Option<StationKeys>,
    groups: watch::Sender<Arc<Groups>>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = refresh(&store, keys.as_ref(), &groups).await {
            // The keys and pairs read last stay in force meanwhile.
            tracing::warn!(%error, "could not read station keys and pairs again");
        }
    }
}

pub(crate) async fn refresh(
    store: &Store,
    keys: Option<&StationKeys>,
    groups: &watch::Sender<Arc<Groups>>,
) -> anyhow::Result<()> {
    if let Some(keys) = keys {
        let stations = store.stations().await?;
        keys.replace_all(stations.into_iter().map(|(s, key)| (s.id, key)));
    }
    let fresh = Groups::from_pairs(store.pairs().await?);
    groups.send_if_modified(|current| {
        let changed = **current != fresh;
        if changed {
            *current = Arc::new(fresh);
        }
        changed
    });
    Ok(())
}
