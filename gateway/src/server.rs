//! # The gateway's network side: UDP and TCP listeners that admit authenticated frames.
//!
//! Both transports share [`Gateway::admit`]: find the station's key, verify the MAC (silence on
//! failure, as `PROTOCOL.md` requires), decode, and hand the frame on through a bounded channel.
//! When that channel is full the station is told BUSY and keeps its frame. ACKs for admitted
//! frames are sent later, after the store commit, through the frame's [`AckPath`].

use crate::framing::{FrameCodec, StreamError};
use crate::keys::StationKeys;
use crate::metrics::{GatewayMetrics, KindLabel, StationLabel};
use crate::wire::{self, AckStatus, Body, Frame, Header};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_model::{FrameKey, StationKey};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Limits and tolerances of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest body accepted; a TCP header declaring more ends the connection.
    pub max_body: usize,
    /// Bad-MAC frames in a row after which a TCP connection is closed.
    pub max_bad_macs_in_row: u32,
    /// A frame whose station clock differs from ours by more than this is flagged (still stored).
    pub clock_skew_limit_ms: u64,
    /// Most TCP connections open at once (the server lowers it to fit its open-file limit).
    pub max_tcp_connections: usize,
    /// Most TCP connections from one source address that have not yet sent a frame with a valid
    /// MAC, so that one address cannot take every slot. Authenticated connections do not count:
    /// a thousand stations behind one NAT address (or the bench's loopback) are all served.
    pub max_tcp_per_source: usize,
    /// A TCP connection that has not sent a frame with a valid MAC this long after it opened is
    /// closed: only an authenticated station may hold a slot for long.
    pub tcp_auth_timeout: Duration,
    /// A TCP connection silent this long is closed; the station reconnects when it has data.
    pub tcp_idle_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body: 32 * 1024,
            max_bad_macs_in_row: 16,
            clock_skew_limit_ms: 120_000,
            max_tcp_connections: 4096,
            max_tcp_per_source: 64,
            tcp_auth_timeout: Duration::from_secs(5),
            tcp_idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Where the ACK for a frame goes.
#[derive(Debug, Clone)]
pub enum Replier {
    Udp {
        socket: Arc<UdpSocket>,
        peer: SocketAddr,
    },
    /// The connection's writer task, through a queue that never drops (see [`AckQueue`]).
    Tcp(AckQueue),
    /// A listener in this process that made the frame on a device's behalf (a GPS tracker's
    /// report, `tagwatch-devices`): it is told the outcome, not sent a signed ACK frame, and
    /// answers the device in the device's own protocol.
    Local(mpsc::UnboundedSender<(FrameKey, AckStatus)>),
}

/// ACKs a TCP connection has yet to write. An ACK is never dropped while the connection is
/// open: a station that does not read its ACKs instead stops being read (its reader waits while
/// [`AckQueue::MAX_QUEUED`] are queued), so it is the station's own frames that wait, in its
/// flash, not ACKs lost for it to resend.
#[derive(Debug, Clone)]
pub struct AckQueue {
    tx: mpsc::UnboundedSender<Bytes>,
    room: Arc<AckRoom>,
}

/// How many ACKs wait for a connection's writer; shared by its reader, writer and senders.
#[derive(Debug, Default)]
struct AckRoom {
    queued: AtomicUsize,
    drained: Notify,
}

impl AckRoom {
    /// The writer has written one.
    fn written(&self) {
        if self.queued.fetch_sub(1, Ordering::Relaxed) <= AckQueue::MAX_QUEUED {
            self.drained.notify_one();
        }
    }

    fn full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= AckQueue::MAX_QUEUED
    }
}

impl AckQueue {
    /// ACKs queued beyond which the connection's frames are no longer read. Frames already
    /// admitted still get theirs, so the queue is bounded by this plus the frames in the pipeline.
    pub const MAX_QUEUED: usize = 1_024;

    fn new() -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(AckRoom::default());
        (Self { tx, room }, rx)
    }

    /// False only when the connection's writer has gone (the connection is closed).
    fn push(&self, ack: Bytes) -> bool {
        self.room.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(ack).is_ok() {
            true
        } else {
            self.room.queued.fetch_sub(1, Ordering::Relaxed);
            false
        }
    }

    /// Waits until the writer has room again.
    async fn until_room(&self) {
        while self.room.full() {
            let drained = self.room.drained.notified();
            if !self.room.full() {
                break;
            }
            drained.await;
        }
    }
}

/// Everything needed to acknowledge one frame later: the way back and the key to sign with.
#[derive(Debug, Clone)]
pub struct AckPath {
    replier: Replier,
    key: Arc<StationKey>,
    metrics: Arc<GatewayMetrics>,
}

impl AckPath {
    /// Signs and sends an ACK without waiting. Over UDP a full socket buffer loses it, and over
    /// TCP a closed connection; the station's resend recovers either (it then gets DUPLICATE).
    pub fn send(&self, frame: FrameKey, status: AckStatus) {
        let sent = match &self.replier {
            Replier::Udp { socket, peer } => self
                .signed_ack(frame, status)
                .is_some_and(|bytes| socket.try_send_to(&bytes, *peer).is_ok()),
            Replier::Tcp(queue) => self
                .signed_ack(frame, status)
                .is_some_and(|bytes| queue.push(bytes.freeze())),
            Replier::Local(outcomes) => outcomes.send((frame, status)).is_ok(),
        };
        if sent {
            self.metrics.ack(status.as_str());
        } else {
            self.metrics.ack("dropped");
        }
    }

    /// The ACK frame for a station, signed with its key.
    fn signed_ack(&self, frame: FrameKey, status: AckStatus) -> Option<BytesMut> {
        let ack = Frame {
            station: frame.station,
            session: frame.session,
            seq: frame.seq,
            time_ms: u64::try_from(tagwatch_model::time::now_ms()).unwrap_or(0),
            position: None,
            body: Body::Ack(status),
        };
        wire::encode(&ack, &self.key).ok()
    }
}

/// What an authenticated frame brings to the ingest.
#[derive(Debug)]
pub enum Content {
    /// A well-formed frame, to apply.
    Frame(Frame),
    /// A frame with a valid MAC whose content is invalid (answered REJECTED). It will never be
    /// applied, but its sequence number is settled: the session's watermark moves past it, so
    /// the frames after it are not held up behind the gap it would otherwise leave.
    Rejected { key: FrameKey, reason: &'static str },
}

/// An authenticated frame on its way to the tracker.
#[derive(Debug)]
pub struct Inbound {
    pub content: Content,
    /// The frame's bytes as received (MAC included): what the journal keeps.
    pub raw: Vec<u8>,
    pub ack: AckPath,
    pub received_at: Instant,
    /// The station clock was further off ours than the configured limit.
    pub clock_skewed: bool,
}

impl Inbound {
    pub fn key(&self) -> FrameKey {
        match &self.content {
            Content::Frame(frame) => frame.key(),
            Content::Rejected { key, .. } => *key,
        }
    }

    /// The frame, unless it was rejected.
    pub fn frame(&self) -> Option<&Frame> {
        match &self.content {
            Content::Frame(frame) => Some(frame),
            Content::Rejected { .. } => None,
        }
    }
}

/// The outcome of admitting one frame, for the transport to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handed on; its ACK (ACCEPTED, or REJECTED for invalid content) follows the commit.
    Queued,
    /// Answered at once (BUSY, or REJECTED when there is no sequence number to settle).
    Answered(AckStatus),
    /// Unknown station or bad MAC: no answer.
    Silent,
    /// The tracker has stopped (shutdown): no answer, the station will resend.
    Closed,
}

/// Why a frame was not handed on.
#[derive(Debug)]
pub enum Refused {
    /// No room: the station is told BUSY and resends later.
    Busy(Box<Inbound>),
    /// What comes next has stopped (shutdown): no answer, the station resends.
    Closed,
}

/// Where authenticated frames go next: this process's ingest (`serve`, a bounded channel) or
/// the cluster's bus (`tagwatch gateway`, in the cluster crate). Either acknowledges each frame
/// it takes through the frame's [`AckPath`], once what it promises is durable.
pub trait Handoff: Send + Sync + std::fmt::Debug {
    /// Takes `inbound` on, or gives it back when there is no room. Never waits.
    fn hand_off(&self, inbound: Inbound) -> Result<(), Refused>;
}

impl Handoff for mpsc::Sender<Inbound> {
    fn hand_off(&self, inbound: Inbound) -> Result<(), Refused> {
        self.try_send(inbound).map_err(|error| match error {
            mpsc::error::TrySendError::Full(inbound) => Refused::Busy(Box::new(inbound)),
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })
    }
}

/// Shared state of both listeners.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub keys: StationKeys,
    pub metrics: Arc<GatewayMetrics>,
    next: Box<dyn Handoff>,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        keys: StationKeys,
        metrics: Arc<GatewayMetrics>,
        next: impl Handoff + 'static,
    ) -> Self {
        Self {
            config,
            keys,
            metrics,
            next: Box::new(next),
        }
    }

    /// Authenticates, decodes and queues one frame delimited by `header`.
    pub fn admit(
        &self,
        bytes: &[u8],
        header: Header,
        source: IpAddr,
        replier: Replier,
    ) -> Admission {
        let station = tagwatch_model::StationId(header.station);
        let Some(key) = self.keys.get(station) else {
            self.metrics.reject("unknown_station");
            self.metrics.unauthenticated_from(source);
            return Admission::Silent;
        };
        if wire::verify(bytes, &key).is_err() {
            self.metrics.reject("mac");
            self.metrics.unauthenticated_from(source);
            self.metrics
                .bad_mac_by_station
                .get_or_create(&StationLabel {
                    station: header.station,
                })
                .inc();
            return Admission::Silent;
        }
        let ack = AckPath {
            replier,
            key,
            metrics: self.metrics.clone(),
        };
        let frame = match wire::decode_verified(bytes) {
            Ok(frame) if frame.kind() == wire::Kind::Ack => {
                return self.reject(bytes, ack, header, "unexpected_ack");
            }
            Ok(frame) => frame,
            Err(error) => return self.reject(bytes, ack, header, error.reason()),
        };
        let kind = match &frame.body {
            Body::Detections(records) => {
                self.metrics.detections.inc_by(records.len() as u64);
                "detections"
            }
            Body::Status(_) => "status",
            Body::Ack(_) => "ack",
        };
        self.metrics.frames.get_or_create(&KindLabel { kind }).inc();
        let now = u64::try_from(tagwatch_model::time::now_ms()).unwrap_or(0);
        let clock_skewed = now.abs_diff(frame.time_ms) > self.config.clock_skew_limit_ms;
        if clock_skewed {
            self.metrics.clock_skew_frames.inc();
        }
        self.queue(Inbound {
            content: Content::Frame(frame),
            raw: bytes.to_vec(),
            ack,
            received_at: Instant::now(),
            clock_skewed,
        })
    }

    /// Hands a frame on, or answers BUSY when the queue is full.
    fn queue(&self, inbound: Inbound) -> Admission {
        match self.next.hand_off(inbound) {
            Ok(()) => Admission::Queued,
            Err(Refused::Busy(inbound)) => {
                self.metrics.reject("busy");
                inbound.ack.send(inbound.key(), AckStatus::Busy);
                Admission::Answered(AckStatus::Busy)
            }
            Err(Refused::Closed) => Admission::Closed,
        }
    }

    /// A frame from a known station whose content is invalid. With a sequence number it goes
    /// on to the ingest, which settles that number and answers REJECTED once the settlement is
    /// committed (and again to every resend); without one (session or seq 0) there is nothing
    /// to settle and the answer is immediate.
    fn reject(
        &self,
        bytes: &[u8],
        ack: AckPath,
        header: Header,
        reason: &'static str,
    ) -> Admission {
        self.metrics.reject(reason);
        let key = FrameKey {
            station: tagwatch_model::StationId(header.station),
            session: tagwatch_model::SessionId(header.session),
            seq: header.seq,
        };
        if header.session == 0 || header.seq == 0 {
            ack.send(key, AckStatus::Rejected);
            return Admission::Answered(AckStatus::Rejected);
        }
        self.queue(Inbound {
            content: Content::Rejected { key, reason },
            raw: bytes.to_vec(),
            ack,
            received_at: Instant::now(),
            clock_skewed: false,
        })
    }
}

/// Receives datagrams until `shutdown`; each must be exactly one frame.
pub async fn serve_udp(socket: Arc<UdpSocket>, gateway: Arc<Gateway>, shutdown: CancellationToken) {
    // One byte more than the largest valid frame, so an oversized datagram is seen as such rather
    // than silently truncated to a valid-looking size.
    let mut buf = vec![0u8; wire::HEADER_LEN + wire::MAX_BODY_LEN + wire::MAC_LEN + 1];
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, peer) = match received {
            Ok(ok) => ok,
            Err(error) => {
                // ICMP port-unreachable from an earlier send shows up here on some systems.
                tracing::debug!(%error, "udp receive error");
                continue;
            }
        };
        let datagram = &buf[..len];
        match wire::datagram_header(datagram, gateway.config.max_body) {
            Ok(header) => {
                let replier = Replier::Udp {
                    socket: socket.clone(),
                    peer,
                };
                gateway.admit(datagram, header, peer.ip(), replier);
            }
            Err(error) => {
                // Not even a frame: nothing to authenticate an answer with.
                gateway.metrics.reject(error.reason());
                gateway.metrics.unauthenticated_from(peer.ip());
            }
        }
    }
}

/// Unauthenticated TCP connections per source address, for [`GatewayConfig::max_tcp_per_source`].
#[derive(Debug, Default)]
struct Sources(std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>);

/// One connection counted against its source; uncounted when dropped.
#[derive(Debug)]
struct SourceSlot {
    sources: Arc<Sources>,
    source: IpAddr,
}

impl Sources {
    fn take(self: &Arc<Self>, source: IpAddr, max: usize) -> Option<SourceSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(source).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            sources: self.clone(),
            source,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.sources.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

/// Longest an ACK write may wait for the station to read: past it the connection is given up.
const ACK_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a closed connection's writer may still deliver the ACKs of frames it had admitted
/// (they follow the next commit) before it is stopped.
const ACK_LINGER: Duration = Duration::from_secs(5);

/// Accepts TCP connections until `shutdown`.
pub async fn serve_tcp(listener: TcpListener, gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(gateway.config.max_tcp_connections));
    let sources = Arc::new(Sources::default());
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => ok,
            Err(error) => {
                // Out of descriptors, most likely: wait for some to be released.
                tracing::warn!(%error, "tcp accept failed");
                gateway.metrics.reject("accept_failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            gateway.metrics.reject("too_many_connections");
            continue;
        };
        let Some(source_slot) = sources.take(peer.ip(), gateway.config.max_tcp_per_source) else {
            gateway.metrics.reject("too_many_connections_from_source");
            continue;
        };
        gateway.metrics.tcp_connections.inc();
        let gateway = gateway.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, &gateway, source_slot, shutdown).await;
            drop(slot);
        });
    }
}

/// Why a connection's reader stopped waiting for the next frame.
enum Next {
    Frame(Header, BytesMut),
    Close,
}

/// Reads the next frame, within the connection's deadline: the authentication deadline until it
/// has sent a frame with a valid MAC, then the idle timeout.
async fn next_frame(
    frames: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>,
    deadline: tokio::time::Instant,
    peer: SocketAddr,
    gateway: &Gateway,
) -> Next {
    match tokio::time::timeout_at(deadline, frames.next()).await {
        Err(_) => Next::Close,
        Ok(None | Some(Err(StreamError::Io(_)))) => Next::Close,
        Ok(Some(Ok((header, bytes)))) => Next::Frame(header, bytes),
        Ok(Some(Err(StreamError::Wire(error)))) => {
            gateway.metrics.reject(error.reason());
            gateway.metrics.tcp_closed_for_garbage.inc();
            tracing::debug!(%peer, %error, "closing tcp connection");
            Next::Close
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: &Gateway,
    source_slot: SourceSlot,
    shutdown: CancellationToken,
) {
    // Held until the connection authenticates; then it no longer counts against its source.
    let mut source_slot = Some(source_slot);
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    // ACKs are written by their own task so that the commit path never waits on a slow reader.
    let (acks, mut ack_rx) = AckQueue::new();
    // The writer counts what it has written, but holds no sender: it ends with the last one.
    let room = acks.room.clone();
    let mut writer = tokio::spawn(async move {
        while let Some(bytes) = ack_rx.recv().await {
            match tokio::time::timeout(ACK_WRITE_TIMEOUT, write.write_all(&bytes)).await {
                Ok(Ok(())) => room.written(),
                _ => break,
            }
        }
    });
    let config = &gateway.config;
    let mut frames = FramedRead::new(read, FrameCodec::new(config.max_body));
    let mut bad_macs_in_row = 0u32;
    let mut authenticated = false;
    let opened = tokio::time::Instant::now();
    loop {
        let deadline = if authenticated {
            tokio::time::Instant::now() + config.tcp_idle_timeout
        } else {
            opened + config.tcp_auth_timeout
        };
        // A station that does not read its ACKs is not read either, until it does (or its
        // idle time runs out).
        let read = async {
            if tokio::time::timeout_at(deadline, acks.until_room())
                .await
                .is_err()
            {
                return Next::Close;
            }
            next_frame(&mut frames, deadline, peer, gateway).await
        };
        let (header, bytes) = tokio::select! {
            () = shutdown.cancelled() => break,
            next = read => match next {
                Next::Frame(header, bytes) => (header, bytes),
                Next::Close => break,
            },
        };
        match gateway.admit(&bytes, header, peer.ip(), Replier::Tcp(acks.clone())) {
            Admission::Silent => {
                bad_macs_in_row += 1;
                if bad_macs_in_row >= config.max_bad_macs_in_row {
                    gateway.metrics.tcp_closed_for_garbage.inc();
                    break;
                }
            }
            Admission::Closed => break,
            Admission::Queued | Admission::Answered(_) => {
                bad_macs_in_row = 0;
                authenticated = true;
                drop(source_slot.take());
            }
        }
    }
    if !authenticated && opened.elapsed() >= config.tcp_auth_timeout {
        gateway.metrics.reject("tcp_auth_timeout");
    }
    // The frames admitted still get their ACKs (they follow the next commit); the writer ends
    // when the last of them is sent, or is stopped after a while.
    drop(acks);
    if tokio::time::timeout(ACK_LINGER, &mut writer).await.is_err() {
        writer.abort();
    }
}
