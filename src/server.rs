//! # The whole single-node pipeline in one process: gateway (UDP + TCP) → ingest (dedupe +
//! tracker) → store writer, and the HTTP API beside them.
//!
//! [`Server::start`] restores the live state from the store (station keys, the stolen hotlist,
//! open visits, the exactly-once watermarks), binds every socket, and spawns the tasks.
//! [`Server::shutdown`] stops listening, flushes what was applied, and waits for the writer.

use crate::config::Config;
use crate::descriptors;
use anyhow::Context;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tagwatch_api::listener::HttpLimits;
use tagwatch_api::{ApiState, TokenHash};
use tagwatch_gateway::metrics::GatewayMetrics;
use tagwatch_gateway::{Gateway, GatewayConfig, StationKeys};
use tagwatch_ingest::live::{AlertBus, DEFAULT_RING};
use tagwatch_ingest::{Health, Ingest, IngestConfig, IngestParts, PipelineMetrics, Restored};
use tagwatch_store::Store;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for the last flush to commit before giving up on it (its frames are
/// then simply not ACKed, and the stations resend them).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often partitions are prepared ahead and retention runs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Prepares the coming days' storage and drops visits past retention, at start and hourly.
async fn maintain(
    store: Store,
    retention_days: Arc<AtomicU32>,
    limits: Arc<tagwatch_api::limits::Limits>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        limits.forget_idle();
        let now = tagwatch_model::time::now_ms();
        if let Err(error) = store.prepare(now).await {
            tracing::warn!(%error, "preparing storage ahead failed; retrying in an hour");
        }
        let retention_days = retention_days.load(Ordering::Relaxed);
        let cutoff = now - i64::from(retention_days) * 86_400_000;
        match store.retain(cutoff).await {
            Ok(0) => {}
            Ok(dropped) => tracing::info!(dropped, retention_days, "old visits dropped"),
            Err(error) => tracing::warn!(%error, "retention failed; retrying in an hour"),
        }
    }
}

/// Receive buffer asked of the kernel for the stations' UDP socket. A thousand stations sending
/// their one-second frames at about the same moment arrive as a burst: over a megabyte at the
/// reference city, 9 MB at 860,000 detections a second. The default buffer (208 KiB on Linux)
/// overflows and the kernel drops datagrams, which their stations then resend seconds later.
/// The kernel caps it at `net.core.rmem_max`. Memory is taken only while datagrams wait.
pub const UDP_RECEIVE_BUFFER: usize = 32 << 20;

/// Binds the stations' UDP socket with a receive buffer sized for bursts.
pub(crate) fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::warn!(%error, "could not enlarge the UDP receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if granted < UDP_RECEIVE_BUFFER {
        tracing::info!(
            granted,
            wanted = UDP_RECEIVE_BUFFER,
            "UDP receive buffer capped by net.core.rmem_max; raise it for large deployments"
        );
    }
    UdpSocket::from_std(socket.into())
}

/// Runs the ingest on a thread of its own, with a single-threaded runtime, and returns a task
/// that ends when it does. Every frame and every alert passes through this one task: on the
/// shared workers, each time it yielded (every few milliseconds, so that the alert streams run)
/// it waited for a whole round of the other ready tasks, which is a thousand stations'
/// connections when a city reconnects at once (the e2e bench's backlog scenario measured up to
/// 400 ms from a frame's arrival to its alert). The kernel now shares the cores between it and
/// the workers instead. What it waits for (channels, timers, the store's connections) works from
/// any runtime.
fn spawn_ingest(
    ingest: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done_tx, done) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || {
            runtime.block_on(ingest);
            drop(done_tx);
        })?;
    Ok(tokio::spawn(async move {
        let _ = done.await;
    }))
}

/// Waits for a task up to `limit`; gives the handle back if it is still running.
async fn bounded(limit: Duration, mut task: JoinHandle<()>) -> Result<(), JoinHandle<()>> {
    match tokio::time::timeout(limit, &mut task).await {
        Ok(_) => Ok(()),
        Err(_) => Err(task),
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The GT06 listener, when configured.
    pub gt06_addr: Option<SocketAddr>,
    pub store: Store,
    pub bus: Arc<AlertBus>,
    shutdown: CancellationToken,
    abandon: CancellationToken,
    listeners: Vec<JoinHandle<()>>,
    ingest: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Server {
    /// Starts everything; `admin_token` must be set in `config` (see `Config::admin_token`).
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        config.validate()?;
        let admin_token = config
            .api
            .admin_token
            .as_ref()
            .context("an admin token is required")?;
        let database = &config.store.database;
        let store = Store::open(database)
            .await
            .with_context(|| format!("opening the store at {database}"))?;

        // The live state, restored from the store.
        let tracker_config = config.tracker.tracker_config();
        let keys = StationKeys::default();
        // An administrator's retention setting outlives the configuration file's.
        let retention_days = match store
            .setting(tagwatch_api::handlers::admin::RETENTION_KEY)
            .await?
        {
            Some(days) => days.parse().unwrap_or(config.store.retention_days),
            None => config.store.retention_days,
        };
        let retention_days = Arc::new(AtomicU32::new(retention_days));

        let mut registry = Registry::default();
        let gateway_metrics = Arc::new(GatewayMetrics::default());
        gateway_metrics.register(&mut registry);
        let pipeline_metrics = Arc::new(PipelineMetrics::default());
        pipeline_metrics.register(&mut registry);
        let device_metrics = Arc::new(tagwatch_devices::metrics::DeviceMetrics::default());
        device_metrics.register(&mut registry);
        let Restored {
            tracker,
            dedupe,
            replayed,
        } = tagwatch_ingest::restore(&store, tracker_config, &keys, &pipeline_metrics).await?;
        let health = Arc::new(Health::default());
        health
            .store_ok
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let bus = Arc::new(AlertBus::new(DEFAULT_RING));

        let (frames_tx, frames_rx) = mpsc::channel(config.ingest.queue_frames);
        let (commands_tx, commands_rx) = mpsc::channel(256);
        let (queries_tx, queries_rx) = mpsc::channel(256);
        let (committed_tx, committed_rx) = mpsc::unbounded_channel();
        // One flush committing and one waiting: beyond that the ingest task waits.
        let (writer_tx, writer_rx) = mpsc::channel(1);

        let listen = &config.listen;
        let udp =
            Arc::new(bind_udp(listen.udp).with_context(|| format!("binding UDP {}", listen.udp))?);
        let tcp = TcpListener::bind(listen.tcp)
            .await
            .with_context(|| format!("binding TCP {}", listen.tcp))?;
        let http = TcpListener::bind(listen.http)
            .await
            .with_context(|| format!("binding HTTP {}", listen.http))?;
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let http_addr = http.local_addr()?;

        let files = descriptors::budget(
            descriptors::raise_limit(),
            config.stations.tcp_connections,
            config.api.http_connections,
        );
        tracing::info!(
            open_file_limit = files.limit,
            station_tcp_connections = files.tcp_connections,
            http_connections = files.http_connections,
            "connections within the open-file limit"
        );
        if files.tcp_connections < config.stations.tcp_connections {
            tracing::warn!(
                configured = config.stations.tcp_connections,
                allowed = files.tcp_connections,
                "fewer station TCP connections than configured: raise the open-file limit (LimitNOFILE, ulimit -n)"
            );
        }
        let gateway = Arc::new(Gateway::new(
            GatewayConfig {
                max_body: config.stations.max_frame_body,
                clock_skew_limit_ms: u64::try_from(tracker_config.clock_skew_limit_ms)
                    .unwrap_or(u64::MAX),
                max_tcp_connections: files.tcp_connections,
                max_tcp_per_source: config.stations.tcp_connections_per_source,
                tcp_auth_timeout: config.stations.tcp_auth_timeout,
                ..GatewayConfig::default()
            },
            keys.clone(),
            gateway_metrics,
            frames_tx,
        ));
        let shutdown = CancellationToken::new();
        let abandon = CancellationToken::new();
        let devices = crate::devices::load_registry(&store).await?;
        let (gt06_addr, device_tasks) = crate::devices::start(
            listen.gt06,
            store.clone(),
            devices.clone(),
            gateway.clone(),
            device_metrics,
            shutdown.clone(),
        )
        .await?;

        let writer = tokio::spawn(tagwatch_ingest::run_writer(
            store.clone(),
            writer_rx,
            committed_tx,
            health.clone(),
            pipeline_metrics.clone(),
            abandon.clone(),
        ));
        let ingest = Ingest::new(
            tracker,
            dedupe,
            IngestParts {
                store: store.clone(),
                frames: frames_rx,
                commands: commands_rx,
                queries: queries_rx,
                committed: committed_rx,
                writer: writer_tx,
                bus: bus.clone(),
                health: health.clone(),
                metrics: pipeline_metrics,
            },
            IngestConfig {
                flush_interval: config.store.flush_interval,
                max_batch_frames: config.ingest.max_batch_frames,
                admission_bound: config.ingest.admission_bound,
                checkpoint_interval: config.store.checkpoint_interval(),
            },
            replayed,
        );
        let ingest =
            spawn_ingest(ingest.run(shutdown.clone())).context("starting the ingest thread")?;
        let limits = Arc::new(tagwatch_api::limits::Limits::configured(
            config.api.token_calls_per_s,
            config.api.token_call_burst,
            config.api.unauthenticated_per_min,
            config.api.unauthenticated_burst,
        ));
        let api_state = ApiState {
            store: store.clone(),
            keys,
            tracker: commands_tx,
            live: tagwatch_api::live::Live::Tracker(queries_tx),
            bus: bus.clone(),
            admin_token: TokenHash::of(&admin_token.0),
            registry: Arc::new(registry),
            health,
            limits: limits.clone(),
            tile_url: config.api.tile_url.clone(),
            roads: Arc::new(config.api.roads.clone()),
            retention_days: retention_days.clone(),
            devices: devices.clone(),
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
            config.api.webhook_backoff(),
            shutdown.clone(),
        ));
        let api = tagwatch_api::app(api_state);
        let maintenance = tokio::spawn(maintain(
            store.clone(),
            retention_days,
            limits.clone(),
            shutdown.clone(),
        ));
        let http_shutdown = shutdown.clone();
        let mut listeners = vec![
            maintenance,
            expiry,
            webhooks,
            tokio::spawn(tagwatch_gateway::serve_udp(
                udp,
                gateway.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(tagwatch_gateway::serve_tcp(tcp, gateway, shutdown.clone())),
            tokio::spawn(tagwatch_api::listener::serve(
                http,
                api,
                HttpLimits {
                    max_connections: files.http_connections,
                    header_timeout: config.api.http_header_timeout,
                },
                http_shutdown,
            )),
        ];
        listeners.extend(device_tasks);
        tracing::info!(%udp_addr, %tcp_addr, %http_addr, "tagwatch serving");
        Ok(Self {
            udp_addr,
            tcp_addr,
            http_addr,
            gt06_addr,
            store,
            bus,
            shutdown,
            abandon,
            listeners,
            ingest,
            writer,
        })
    }

    /// Stops accepting, flushes what was applied, and waits for the last commit.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        // Ends the live alert streams, which would otherwise hold the HTTP server open.
        self.bus.close();
        for listener in self.listeners {
            if let Err(still_running) = bounded(Duration::from_secs(5), listener).await {
                still_running.abort();
            }
        }
        // The ingest task flushes what it applied; with the store down that flush may never be
        // taken, so every wait is bounded and what is not committed is simply not ACKed.
        if let Err(ingest) = bounded(SHUTDOWN_GRACE, self.ingest).await {
            ingest.abort();
        }
        if let Err(writer) = bounded(SHUTDOWN_GRACE, self.writer).await {
            tracing::warn!("the last flush did not commit in time; its frames will be resent");
            self.abandon.cancel();
            writer.abort();
        }
        self.store.close().await;
    }
}
