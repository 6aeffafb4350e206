//! # The GT06 listener: devices' TCP connections in, a mobile reader's frames out.
//!
//! Beside the gateway's station listeners. A device logs in with its IMEI; an unknown one is
//! not answered and its connection closed. Each valid fix (and each alarm) becomes a TWB/1 frame
//! from the device's own station, signed with that station's key, carrying one detection of the
//! vehicle's tag at the fix's place and time, and goes through [`Gateway::admit`] like any
//! station's frame: the same journal, exactly-once bookkeeping and tracker. The device's
//! acknowledgement is written when the gateway reports the frame stored, so a fix is never
//! acknowledged before it is durable; heartbeats and messages that make no frame are
//! acknowledged at once.
//!
//! Engine commands wait in the [`Registry`] until the device is connected and, for a stop, its
//! latest fix says it is at most [`ENGINE_STOP_MAX_KMH`]; its text answer is reported back.

use crate::gt06::frame::{FrameCodec, StreamError};
use crate::gt06::{decode, reply, Frame};
use crate::metrics::{AlarmLabel, DeviceMetrics, KindLabel};
use crate::registry::{Device, EngineAction, LastReport, PendingCommand, Registry};
use crate::report::{Alarm, Fix, Message, Report};
use bytes::BytesMut;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tagwatch_gateway::server::Replier;
use tagwatch_gateway::wire::{self, AckStatus, Body, Position, Record};
use tagwatch_gateway::{Admission, Gateway};
use tagwatch_model::{tag_flags, FrameKey, GeoPoint, SessionId};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// A stop is sent only when the vehicle's latest fix says it is at most this fast. Cutting an
/// engine at speed can throw a rider; Concox's own firmware refuses `DYD#` above 20 km/h, so
/// waiting for the same limit on the server means the command is not spent on a refusal.
pub const ENGINE_STOP_MAX_KMH: u16 = 20;
/// ... and that fix is at most this old: a speed from minutes ago says nothing about now.
pub const ENGINE_STOP_FIX_MAX_AGE_MS: i64 = 120_000;
/// A speed at or above this sets the record's MOVING flag.
const MOVING_KMH: u16 = 5;
/// Signal given to a tracker's own detection: stronger than any roadside read, because a GPS
/// fix places the vehicle better than the range of a station does.
const GPS_RSSI: i8 = -30;
/// How often and how long a frame refused BUSY is offered again before it is given up.
const BUSY_RETRY: Duration = Duration::from_millis(250);
const BUSY_RETRIES: u32 = 40;
/// A device's report is written to the store at most this often (alarms and answers always).
const REPORT_PERSIST_EVERY_MS: i64 = 60_000;

/// Limits of the listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub max_connections: usize,
    /// A connection must log in this soon after it opens.
    pub login_timeout: Duration,
    /// A connection silent this long is closed (devices heartbeat every few minutes).
    pub idle_timeout: Duration,
    /// Unreadable frames in a row after which a connection is closed.
    pub max_bad_frames_in_row: u32,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            login_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            max_bad_frames_in_row: 16,
        }
    }
}

/// What the listener asks the store to keep (the binary writes them).
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceEvent {
    Report { imei: String, report: LastReport },
    CommandSent { id: i64, at_ms: i64 },
    CommandAnswered { id: i64, at_ms: i64, answer: String },
}

/// Shared by every connection.
#[derive(Debug)]
pub struct DeviceListener {
    pub config: ListenerConfig,
    pub registry: Registry,
    pub gateway: Arc<Gateway>,
    pub metrics: Arc<DeviceMetrics>,
    pub events: mpsc::Sender<DeviceEvent>,
    connections: Arc<Semaphore>,
}

impl DeviceListener {
    pub fn new(
        config: ListenerConfig,
        registry: Registry,
        gateway: Arc<Gateway>,
        metrics: Arc<DeviceMetrics>,
        events: mpsc::Sender<DeviceEvent>,
    ) -> Self {
        let connections = Arc::new(Semaphore::new(config.max_connections));
        Self {
            config,
            registry,
            gateway,
            metrics,
            events,
            connections,
        }
    }
}

/// Accepts device connections until `shutdown`.
pub async fn serve(listener: TcpListener, ctx: Arc<DeviceListener>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "GT06 accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
            ctx.metrics.reject("too_many_connections");
            continue;
        };
        ctx.metrics.connections.inc();
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            ctx.metrics.open.inc();
            let _ = stream.set_nodelay(true);
            let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
            Connection::new(ctx.clone(), peer, outcomes_tx)
                .run(stream, outcomes, shutdown)
                .await;
            ctx.metrics.open.dec();
            drop(permit);
        });
    }
}

/// A frame handed to the gateway, waiting for its outcome.
#[derive(Debug)]
struct Waiting {
    /// The device's acknowledgement, written once the frame is stored.
    ack: Option<Vec<u8>>,
    signed: BytesMut,
    retries: u32,
}

/// A logged-in device.
#[derive(Debug)]
struct Session {
    device: Device,
    session: SessionId,
    next_seq: u32,
    wake: Arc<tokio::sync::Notify>,
    last_fix: Option<Fix>,
    /// The command sent and not yet answered.
    sent_command: Option<i64>,
    next_server_serial: u16,
    persisted_at_ms: i64,
}

/// Why a connection ends.
#[derive(Debug)]
struct Close;

#[derive(Debug)]
struct Connection {
    ctx: Arc<DeviceListener>,
    peer: SocketAddr,
    session: Option<Session>,
    waiting: HashMap<u32, Waiting>,
    outcomes_tx: mpsc::UnboundedSender<(FrameKey, AckStatus)>,
    bad_in_row: u32,
}

impl Connection {
    fn new(
        ctx: Arc<DeviceListener>,
        peer: SocketAddr,
        outcomes_tx: mpsc::UnboundedSender<(FrameKey, AckStatus)>,
    ) -> Self {
        Self {
            ctx,
            peer,
            session: None,
            waiting: HashMap::new(),
            outcomes_tx,
            bad_in_row: 0,
        }
    }

    async fn run(
        mut self,
        stream: TcpStream,
        mut outcomes: mpsc::UnboundedReceiver<(FrameKey, AckStatus)>,
        shutdown: CancellationToken,
    ) {
        let (read, mut write) = stream.into_split();
        let mut frames = FramedRead::new(read, FrameCodec::default());
        let login_deadline = tokio::time::Instant::now() + self.ctx.config.login_timeout;
        loop {
            let (deadline, why) = match &self.session {
                None => (login_deadline, "login_timeout"),
                Some(_) => (
                    tokio::time::Instant::now() + self.ctx.config.idle_timeout,
                    "idle",
                ),
            };
            let wake = self.session.as_ref().map(|s| s.wake.clone());
            let woken = async {
                match &wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            let step = tokio::select! {
                _ = shutdown.cancelled() => Err(Close),
                _ = tokio::time::sleep_until(deadline) => {
                    self.ctx.metrics.reject(why);
                    Err(Close)
                }
                next = frames.next() => match next {
                    None => Err(Close),
                    Some(Ok(bytes)) => self.frame(&bytes, &mut write).await,
                    Some(Err(StreamError::Frame(error))) => {
                        self.ctx.metrics.reject(error.reason());
                        tracing::debug!(peer = %self.peer, %error, "GT06 stream unreadable");
                        Err(Close)
                    }
                    Some(Err(StreamError::Io(_))) => Err(Close),
                },
                Some((key, status)) = outcomes.recv() => self.outcome(key, status, &mut write).await,
                () = woken => self.woken(&mut write).await,
            };
            if step.is_err() {
                break;
            }
        }
        if let Some(session) = &self.session {
            self.ctx.registry.disconnect(session.device.imei);
        }
    }

    /// One whole frame from the device.
    async fn frame(&mut self, bytes: &[u8], write: &mut OwnedWriteHalf) -> Result<(), Close> {
        let metrics = self.ctx.metrics.clone();
        let parsed = match Frame::parse(bytes) {
            Ok(frame) => frame,
            Err(error) => return self.bad(error.reason()),
        };
        let message = match decode(&parsed) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(peer = %self.peer, %error, "GT06 message refused");
                return self.bad(error.reason());
            }
        };
        self.bad_in_row = 0;
        let now = tagwatch_model::time::now_ms();
        match message {
            Message::Login(login) => {
                metrics.message("login");
                if self.session.is_none() {
                    let now_s = u32::try_from(now / 1000).unwrap_or(u32::MAX);
                    let Some((device, session, wake)) =
                        self.ctx.registry.connect(login.imei, now_s)
                    else {
                        metrics.reject("unknown_device");
                        tracing::info!(peer = %self.peer, imei = %login.imei, "unknown GT06 device refused");
                        return Err(Close);
                    };
                    tracing::debug!(imei = %login.imei, station = %device.station, "GT06 device logged in");
                    self.session = Some(Session {
                        device,
                        session: SessionId(session),
                        next_seq: 1,
                        wake,
                        last_fix: None,
                        sent_command: None,
                        next_server_serial: 1,
                        persisted_at_ms: 0,
                    });
                }
                send(write, reply::ack(&parsed)).await?;
                self.woken(write).await
            }
            _ if self.session.is_none() => {
                metrics.reject("not_logged_in");
                Err(Close)
            }
            Message::TimeRequest => {
                metrics.message("time");
                send(write, Some(reply::time(now / 1000, parsed.serial))).await
            }
            Message::Unused => {
                metrics.message("unused");
                send(write, reply::ack(&parsed)).await
            }
            Message::Report(report) => {
                metrics.message("report");
                let ack = reply::ack(&parsed);
                self.report(report, ack, now, write).await
            }
        }
    }

    /// An unreadable frame: counted; too many in a row end the connection.
    fn bad(&mut self, reason: &'static str) -> Result<(), Close> {
        self.ctx.metrics.reject(reason);
        self.bad_in_row += 1;
        if self.bad_in_row >= self.ctx.config.max_bad_frames_in_row {
            Err(Close)
        } else {
            Ok(())
        }
    }

    async fn report(
        &mut self,
        report: Report,
        ack: Option<Vec<u8>>,
        now: i64,
        write: &mut OwnedWriteHalf,
    ) -> Result<(), Close> {
        let Some(session) = self.session.as_mut() else {
            return Err(Close);
        };
        let imei = session.device.imei;
        let registry = &self.ctx.registry;
        let Some(last) = registry.report(imei, now, report.fix, report.alarm, report.power) else {
            // Removed while connected.
            return Err(Close);
        };
        let fix = report.fix.filter(|f| f.valid);
        if let Some(fix) = fix {
            if session.last_fix.is_none_or(|old| old.at_ms <= fix.at_ms) {
                session.last_fix = Some(fix);
            }
        }
        if let Some(alarm) = report.alarm {
            self.ctx
                .metrics
                .alarms
                .get_or_create(&AlarmLabel {
                    alarm: alarm.as_str(),
                })
                .inc();
        }
        // A text is the answer to the command sent (one at a time); fixes may come before it.
        let answered = report
            .reply_text
            .as_ref()
            .and_then(|_| session.sent_command.take());
        if let (Some(text), Some(id)) = (&report.reply_text, answered) {
            self.ctx
                .metrics
                .commands
                .get_or_create(&KindLabel { kind: "answered" })
                .inc();
            registry.command_done(imei, id);
            let _ = self.ctx.events.try_send(DeviceEvent::CommandAnswered {
                id,
                at_ms: now,
                answer: text.clone(),
            });
        }
        let urgent = report.alarm.is_some() || report.reply_text.is_some();
        if urgent || now - session.persisted_at_ms >= REPORT_PERSIST_EVERY_MS {
            session.persisted_at_ms = now;
            let _ = self.ctx.events.try_send(DeviceEvent::Report {
                imei: imei.to_string(),
                report: last,
            });
        }
        let flags = report.alarm.map_or(0, alarm_flags);
        // Where the vehicle is: this fix, or for an alarm without one the latest.
        let placed = match (fix, flags) {
            (Some(fix), _) => Some((fix, fix.at_ms)),
            (None, 0) => None,
            (None, _) => match session.last_fix {
                Some(last) => Some((last, now)),
                None => {
                    self.ctx.metrics.reject("alarm_without_fix");
                    None
                }
            },
        };
        let Some((fix, at_ms)) = placed else {
            return send(write, ack).await.and(self.woken(write).await);
        };
        let moving = if fix.speed_kmh >= MOVING_KMH && report.fix.is_some() {
            tag_flags::MOVING
        } else {
            0
        };
        let Ok(position) = GeoPoint::new(fix.lat, fix.lon) else {
            return send(write, ack).await;
        };
        let (lat_e7, lon_e7) = position.to_e7();
        let seq = session.next_seq;
        session.next_seq += 1;
        let frame = wire::Frame {
            station: session.device.station,
            session: session.session,
            seq,
            time_ms: u64::try_from(at_ms).unwrap_or(0),
            position: Some(Position { lat_e7, lon_e7 }),
            body: Body::Detections(vec![Record {
                tag: session.device.tag,
                age_ms: 0,
                rssi: GPS_RSSI,
                reads: 1,
                tag_flags: flags | moving,
                antenna: 0,
            }]),
        };
        let Ok(signed) = wire::encode(&frame, &session.device.key) else {
            return send(write, ack).await;
        };
        if fix.valid && report.fix.is_some() {
            self.ctx.metrics.fixes.inc();
        }
        self.waiting.insert(
            seq,
            Waiting {
                ack,
                signed,
                retries: 0,
            },
        );
        // A command this fix allows follows its acknowledgement (`outcome`).
        self.hand_off(seq)
    }

    /// Offers a waiting frame to the gateway; its outcome comes back on `outcomes`.
    fn hand_off(&mut self, seq: u32) -> Result<(), Close> {
        let Some(waiting) = self.waiting.get(&seq) else {
            return Ok(());
        };
        let Ok(header) = wire::check(&waiting.signed, usize::MAX) else {
            return Ok(());
        };
        let replier = Replier::Local(self.outcomes_tx.clone());
        match self
            .ctx
            .gateway
            .admit(&waiting.signed, header, self.peer.ip(), replier)
        {
            Admission::Closed => Err(Close),
            Admission::Silent => {
                // The station's key is not the gateway's (it was replaced): the device
                // reconnects and picks up the new one.
                tracing::warn!(
                    station = header.station,
                    "GT06 frame not admitted: station key unknown to the gateway"
                );
                Err(Close)
            }
            Admission::Queued | Admission::Answered(_) => Ok(()),
        }
    }

    /// The gateway's word on a frame made from this device's report.
    async fn outcome(
        &mut self,
        key: FrameKey,
        status: AckStatus,
        write: &mut OwnedWriteHalf,
    ) -> Result<(), Close> {
        match status {
            AckStatus::Busy => {
                let Some(waiting) = self.waiting.get_mut(&key.seq) else {
                    return Ok(());
                };
                waiting.retries += 1;
                if waiting.retries > BUSY_RETRIES {
                    self.waiting.remove(&key.seq);
                    self.ctx.metrics.reject("busy_dropped");
                    return Ok(());
                }
                // Not reading the device meanwhile is the back-pressure it gets.
                tokio::time::sleep(BUSY_RETRY).await;
                self.hand_off(key.seq)
            }
            AckStatus::Accepted | AckStatus::Duplicate | AckStatus::Rejected => {
                if let Some(waiting) = self.waiting.remove(&key.seq) {
                    send(write, waiting.ack).await?;
                }
                self.woken(write).await
            }
        }
    }

    /// Something changed for this device (a command queued, the device removed): act on it.
    async fn woken(&mut self, write: &mut OwnedWriteHalf) -> Result<(), Close> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let imei = session.device.imei;
        let registry = &self.ctx.registry;
        if registry.device(imei).is_none() {
            return Err(Close);
        }
        if session.sent_command.is_some() {
            return Ok(());
        }
        let Some(PendingCommand { id, action }) = registry.next_command(imei) else {
            return Ok(());
        };
        let now = tagwatch_model::time::now_ms();
        if action == EngineAction::Stop && !slow_enough(session.last_fix, now) {
            return Ok(());
        }
        let serial = session.next_server_serial;
        session.next_server_serial = session.next_server_serial.wrapping_add(1).max(1);
        let Some(bytes) = reply::command(action.text(), id as u32, serial) else {
            return Ok(());
        };
        session.sent_command = Some(id);
        self.ctx
            .metrics
            .commands
            .get_or_create(&KindLabel { kind: "sent" })
            .inc();
        let _ = self
            .ctx
            .events
            .try_send(DeviceEvent::CommandSent { id, at_ms: now });
        tracing::info!(imei = %imei, action = action.as_str(), command = id, "engine command sent");
        send(write, Some(bytes)).await
    }
}

/// Whether the latest fix allows an engine stop now.
fn slow_enough(fix: Option<Fix>, now_ms: i64) -> bool {
    fix.is_some_and(|f| {
        f.speed_kmh <= ENGINE_STOP_MAX_KMH && now_ms - f.at_ms <= ENGINE_STOP_FIX_MAX_AGE_MS
    })
}

/// The tag flags that carry a device's alarm to the tracker's rules.
fn alarm_flags(alarm: Alarm) -> u8 {
    match alarm {
        Alarm::Sos => tag_flags::PANIC,
        Alarm::PowerCut => tag_flags::POWER_CUT,
        Alarm::LowBattery => tag_flags::LOW_BATTERY,
        Alarm::Tamper | Alarm::Removed => tag_flags::TAMPER,
        Alarm::Vibration => tag_flags::VIBRATION,
        _ => 0,
    }
}

/// Writes to the device; a device that does not read for 10 s is closed.
async fn send(write: &mut OwnedWriteHalf, bytes: Option<Vec<u8>>) -> Result<(), Close> {
    let Some(bytes) = bytes else {
        return Ok(());
    };
    match tokio::time::timeout(Duration::from_secs(10), write.write_all(&bytes)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Close),
    }
}
