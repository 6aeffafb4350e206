//! # GPS trackers in `serve`: the registry loaded from the store, the GT06 listener started,
//! and what the listener reports written back to the store.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tagwatch_devices::listener::{self, DeviceEvent, DeviceListener, ListenerConfig};
use tagwatch_devices::metrics::DeviceMetrics;
use tagwatch_devices::registry::{Device, EngineAction, LastReport, PendingCommand, Registry};
use tagwatch_devices::Imei;
use tagwatch_gateway::{Gateway, StationKeys};
use tagwatch_store::Store;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every registered tracker with its latest report and its commands not yet answered.
pub async fn load_registry(store: &Store) -> anyhow::Result<Registry> {
    let registry = Registry::default();
    let (devices, pending, reports) = read_trackers(store).await?;
    registry.sync(devices, pending);
    for (imei, report) in reports {
        registry.restore_report(imei, report);
    }
    Ok(registry)
}

type Stored = (
    Vec<Device>,
    Vec<(Imei, PendingCommand)>,
    Vec<(Imei, LastReport)>,
);

/// The trackers in the store, their unanswered commands and their stored reports.
async fn read_trackers(store: &Store) -> anyhow::Result<Stored> {
    let (mut devices, mut pending, mut reports) = (Vec::new(), Vec::new(), Vec::new());
    for row in store.trackers().await.context("reading the trackers")? {
        let Some(imei) = Imei::parse(&row.imei) else {
            tracing::warn!(
                imei = row.imei,
                "stored tracker IMEI is not 15 digits; left out"
            );
            continue;
        };
        devices.push(Device {
            imei,
            tag: row.tag,
            station: row.station,
            key: Arc::new(row.key),
        });
        if let Some(report) = row.report.as_deref() {
            match serde_json::from_str::<LastReport>(report) {
                Ok(report) => reports.push((imei, report)),
                Err(error) => tracing::warn!(%imei, %error, "stored tracker report unreadable"),
            }
        }
        for command in store.pending_commands(&row.imei).await? {
            if let Some(action) = EngineAction::parse(&command.action) {
                pending.push((
                    imei,
                    PendingCommand {
                        id: command.id,
                        action,
                    },
                ));
            }
        }
    }
    Ok((devices, pending, reports))
}

/// Reads the trackers and their unanswered commands again every `every` (a cluster's gateway:
/// registrations and commands made through any API node reach it within that). Each tracker's
/// station key goes to `keys` at once, so a device the registry has just learned of is not
/// refused by a gateway whose station keys are read on their own schedule.
pub async fn keep_registry(
    store: Store,
    registry: Registry,
    keys: StationKeys,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match read_trackers(&store).await {
            Ok((devices, pending, _)) => {
                for device in &devices {
                    keys.insert(device.station, (*device.key).clone());
                }
                registry.sync(devices, pending);
            }
            Err(error) => tracing::warn!(%error, "could not read the trackers again"),
        }
    }
}

/// Binds the GT06 listener (when configured) and starts it and the task that stores what it
/// reports. Returns the bound address and the tasks.
pub async fn start(
    addr: Option<SocketAddr>,
    store: Store,
    registry: Registry,
    gateway: Arc<Gateway>,
    metrics: Arc<DeviceMetrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<(Option<SocketAddr>, Vec<JoinHandle<()>>)> {
    let Some(addr) = addr else {
        return Ok((None, Vec::new()));
    };
    let socket = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the GT06 listener on {addr}"))?;
    let bound = socket.local_addr()?;
    let (events_tx, events) = mpsc::channel(4096);
    let ctx = Arc::new(DeviceListener::new(
        ListenerConfig::default(),
        registry,
        gateway,
        metrics,
        events_tx,
    ));
    let tasks = vec![
        tokio::spawn(listener::serve(socket, ctx, shutdown)),
        tokio::spawn(keep_events(store, events)),
    ];
    tracing::info!(gt06 = %bound, "GT06 trackers listening");
    Ok((Some(bound), tasks))
}

/// Writes the listener's reports and command outcomes to the store, in order. A failed write is
/// logged: the report is in memory and the next one replaces it; a command's outcome is shown
/// from memory until the restart, which sends an unanswered command again.
async fn keep_events(store: Store, mut events: mpsc::Receiver<DeviceEvent>) {
    while let Some(event) = events.recv().await {
        let written = match &event {
            DeviceEvent::Report { imei, report } => match serde_json::to_string(report) {
                Ok(json) => {
                    store
                        .set_tracker_report(imei, report.received_at_ms, &json)
                        .await
                }
                Err(_) => Ok(()),
            },
            DeviceEvent::CommandSent { id, at_ms } => store.command_sent(*id, *at_ms).await,
            DeviceEvent::CommandAnswered { id, at_ms, answer } => {
                store.command_answered(*id, *at_ms, answer).await
            }
        };
        if let Err(error) = written {
            tracing::warn!(%error, "storing a tracker's report or command outcome failed");
        }
    }
}
