//! # The gateway's network side: UDP and TCP listeners that admit authenticated frames.
//!
//! Both transports share [`Gateway::admit`]: find the station's key, verify the MAC (silence on
//! failure, as `PROTOCOL.md` requires), decode, and hand the frame on through a bounded channel.
//! When that channel is full the station is told BUSY and keeps its frame. ACKs for admitted
//! frames are sent later, after the store commit, through the frame's [`AckPath`].

use crate::keys::StationKeys;
use crate::metrics::{GatewayMetrics, KindLabel, StationLabel};
use crate::wire::{self, AckStatus, Body, Frame, Header, WireError};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_model::{FrameKey, StationKey};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{Decoder, FramedRead};
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
    /// Most TCP connections open at once.
    pub max_tcp_connections: usize,
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
    /// The connection's writer task; dropped ACKs are resent by the station's own retry.
    Tcp(mpsc::Sender<Bytes>),
}

/// Everything needed to acknowledge one frame later: the way back and the key to sign with.
#[derive(Debug, Clone)]
pub struct AckPath {
    replier: Replier,
    key: Arc<StationKey>,
    metrics: Arc<GatewayMetrics>,
}

impl AckPath {
    /// Signs and sends an ACK without waiting: a full socket buffer or a closed connection loses
    /// the ACK, which the station's resend recovers (it will then get DUPLICATE).
    pub fn send(&self, frame: FrameKey, status: AckStatus) {
        let ack = Frame {
            station: frame.station,
            session: frame.session,
            seq: frame.seq,
            time_ms: u64::try_from(tagwatch_model::time::now_ms()).unwrap_or(0),
            position: None,
            body: Body::Ack(status),
        };
        let Ok(bytes) = wire::encode(&ack, &self.key) else {
            return;
        };
        let sent = match &self.replier {
            Replier::Udp { socket, peer } => socket.try_send_to(&bytes, *peer).is_ok(),
            Replier::Tcp(tx) => tx.try_send(bytes.freeze()).is_ok(),
        };
        if sent {
            self.metrics.ack(status.as_str());
        } else {
            self.metrics.ack("dropped");
        }
    }
}

/// A verified, decoded frame on its way to the tracker.
#[derive(Debug)]
pub struct Inbound {
    pub frame: Frame,
    /// The frame's bytes as received (MAC included): what the journal keeps.
    pub raw: Vec<u8>,
    pub ack: AckPath,
    pub received_at: Instant,
    /// The station clock was further off ours than the configured limit.
    pub clock_skewed: bool,
}

impl Inbound {
    pub fn key(&self) -> FrameKey {
        self.frame.key()
    }
}

/// The outcome of admitting one frame, for the transport to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Handed on; its ACK follows the commit.
    Queued,
    /// Answered at once (REJECTED or BUSY).
    Answered(AckStatus),
    /// Unknown station or bad MAC: no answer.
    Silent,
    /// The tracker has stopped (shutdown): no answer, the station will resend.
    Closed,
}

/// Shared state of both listeners.
#[derive(Debug)]
pub struct Gateway {
    pub config: GatewayConfig,
    pub keys: StationKeys,
    pub metrics: Arc<GatewayMetrics>,
    tx: mpsc::Sender<Inbound>,
}

impl Gateway {
    pub fn new(
        config: GatewayConfig,
        keys: StationKeys,
        metrics: Arc<GatewayMetrics>,
        tx: mpsc::Sender<Inbound>,
    ) -> Self {
        Self {
            config,
            keys,
            metrics,
            tx,
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
                return self.reject(&ack, header, "unexpected_ack");
            }
            Ok(frame) => frame,
            Err(error) => return self.reject(&ack, header, error.reason()),
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
        let inbound = Inbound {
            frame,
            raw: bytes.to_vec(),
            ack,
            received_at: Instant::now(),
            clock_skewed,
        };
        match self.tx.try_send(inbound) {
            Ok(()) => Admission::Queued,
            Err(mpsc::error::TrySendError::Full(inbound)) => {
                self.metrics.reject("busy");
                inbound.ack.send(inbound.key(), AckStatus::Busy);
                Admission::Answered(AckStatus::Busy)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Admission::Closed,
        }
    }

    fn reject(&self, ack: &AckPath, header: Header, reason: &'static str) -> Admission {
        self.metrics.reject(reason);
        let key = FrameKey {
            station: tagwatch_model::StationId(header.station),
            session: tagwatch_model::SessionId(header.session),
            seq: header.seq,
        };
        ack.send(key, AckStatus::Rejected);
        Admission::Answered(AckStatus::Rejected)
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

/// Splits a TCP byte stream into whole frames (`check` first: an oversized or foreign header is
/// an error before any of its body is buffered).
#[derive(Debug)]
pub struct FrameCodec {
    max_body: usize,
}

impl FrameCodec {
    pub fn new(max_body: usize) -> Self {
        Self { max_body }
    }
}

/// Why a TCP stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("unparseable stream: {0}")]
    Wire(WireError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for FrameCodec {
    type Item = (Header, BytesMut);
    type Error = StreamError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match wire::check(src, self.max_body) {
            Ok(header) => Ok(Some((header, src.split_to(header.frame_len())))),
            Err(WireError::Incomplete { needed, have }) => {
                src.reserve(needed.saturating_sub(have));
                Ok(None)
            }
            Err(error) => Err(StreamError::Wire(error)),
        }
    }
}

/// Accepts TCP connections until `shutdown`.
pub async fn serve_tcp(listener: TcpListener, gateway: Arc<Gateway>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(gateway.config.max_tcp_connections));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => ok,
            Err(error) => {
                tracing::warn!(%error, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            gateway.metrics.reject("too_many_connections");
            continue;
        };
        gateway.metrics.tcp_connections.inc();
        let gateway = gateway.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, &gateway, shutdown).await;
            drop(slot);
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: &Gateway,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    // ACKs are written by their own task so that the commit path never waits on a slow reader.
    let (ack_tx, mut ack_rx) = mpsc::channel::<Bytes>(1024);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = ack_rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut frames = FramedRead::new(read, FrameCodec::new(gateway.config.max_body));
    let mut bad_macs_in_row = 0u32;
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = tokio::time::timeout(gateway.config.tcp_idle_timeout, frames.next()) => next,
        };
        let (header, bytes) = match next {
            Err(_idle) => break,
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(StreamError::Wire(error)))) => {
                gateway.metrics.reject(error.reason());
                gateway.metrics.tcp_closed_for_garbage.inc();
                tracing::debug!(%peer, %error, "closing tcp connection");
                break;
            }
            Ok(Some(Err(StreamError::Io(_)))) => break,
        };
        match gateway.admit(&bytes, header, peer.ip(), Replier::Tcp(ack_tx.clone())) {
            Admission::Silent => {
                bad_macs_in_row += 1;
                if bad_macs_in_row >= gateway.config.max_bad_macs_in_row {
                    gateway.metrics.tcp_closed_for_garbage.inc();
                    break;
                }
            }
            Admission::Closed => break,
            Admission::Queued | Admission::Answered(_) => bad_macs_in_row = 0,
        }
    }
    drop(ack_tx);
    // Pending ACKs still hold senders; once the last is used or dropped the writer ends.
    drop(writer);
}
