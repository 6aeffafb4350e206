//! # A station's uplink: delivers its frames at least once, as `PROTOCOL.md` asks of firmware.
//!
//! Every frame is kept until an ACK says ACCEPTED, DUPLICATE or REJECTED; unacknowledged frames
//! are resent oldest first after a timeout; BUSY just leaves the frame for a later resend. Over
//! UDP, outgoing datagrams and incoming ACKs are dropped with the configured probability; over TCP
//! only ACKs are (the stream itself is reliable), and a broken connection is re-opened.

use bytes::BytesMut;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::server::FrameCodec;
use tagwatch_gateway::wire::{self, AckStatus, Body, Frame};
use tagwatch_model::StationKey;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Which transport a station uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How a station talks to the gateway.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub server: SocketAddr,
    pub transport: Transport,
    /// Probability that a datagram (UDP, both ways) or an ACK (TCP) is lost.
    pub loss: f64,
    /// An unacknowledged frame is resent after this long.
    pub resend_after: Duration,
    /// Frames outstanding (sent, not yet acknowledged, not overdue) at most.
    pub window: usize,
    pub seed: u64,
}

/// What one link did; summed over stations for a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub frames_built: u64,
    pub sends: u64,
    pub resends: u64,
    /// Frames whose first final ACK was ACCEPTED.
    pub accepted: u64,
    /// Frames whose first final ACK was DUPLICATE (their ACCEPTED was lost on the way).
    pub duplicate: u64,
    pub rejected: u64,
    pub busy: u64,
    /// ACKs for frames already settled (answers to resends).
    pub late_acks: u64,
    pub lost_out: u64,
    pub lost_in: u64,
    pub reconnects: u64,
    pub unacked_at_end: u64,
}

impl LinkStats {
    pub fn add(&mut self, o: &LinkStats) {
        self.frames_built += o.frames_built;
        self.sends += o.sends;
        self.resends += o.resends;
        self.accepted += o.accepted;
        self.duplicate += o.duplicate;
        self.rejected += o.rejected;
        self.busy += o.busy;
        self.late_acks += o.late_acks;
        self.lost_out += o.lost_out;
        self.lost_in += o.lost_in;
        self.reconnects += o.reconnects;
        self.unacked_at_end += o.unacked_at_end;
    }
}

#[derive(Debug)]
struct Pending {
    bytes: bytes::Bytes,
    sent_at: Option<Instant>,
}

#[derive(Debug)]
enum Conn {
    Udp(UdpSocket, Vec<u8>),
    Tcp {
        reader: FramedRead<OwnedReadHalf, FrameCodec>,
        writer: OwnedWriteHalf,
    },
}

async fn connect(config: &LinkConfig) -> std::io::Result<Conn> {
    match config.transport {
        Transport::Udp => {
            let bind: SocketAddr = if config.server.is_ipv4() {
                ([127, 0, 0, 1], 0).into()
            } else {
                (std::net::Ipv6Addr::LOCALHOST, 0).into()
            };
            let socket = UdpSocket::bind(bind).await?;
            socket.connect(config.server).await?;
            Ok(Conn::Udp(socket, vec![0; 2048]))
        }
        Transport::Tcp => {
            let stream =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(config.server))
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            stream.set_nodelay(true)?;
            let (read, writer) = stream.into_split();
            Ok(Conn::Tcp {
                reader: FramedRead::new(read, FrameCodec::new(wire::MAX_BODY_LEN)),
                writer,
            })
        }
    }
}

async fn receive(conn: &mut Option<Conn>) -> std::io::Result<BytesMut> {
    match conn {
        Some(Conn::Udp(socket, buf)) => {
            let n = socket.recv(buf).await?;
            Ok(BytesMut::from(&buf[..n]))
        }
        Some(Conn::Tcp { reader, .. }) => match reader.next().await {
            Some(Ok((_, bytes))) => Ok(bytes),
            Some(Err(e)) => Err(std::io::Error::other(e.to_string())),
            None => Err(std::io::ErrorKind::UnexpectedEof.into()),
        },
        None => std::future::pending().await,
    }
}

enum Event {
    Frame(Option<Frame>),
    Received(std::io::Result<BytesMut>),
    Tick,
    Stop,
}

/// Runs one station's uplink until its frame source closes and every frame is settled, or until
/// `stop`. `unacked` mirrors the number of unsettled frames for the driver's pacing.
pub async fn run_link(
    config: LinkConfig,
    key: StationKey,
    mut frames: mpsc::Receiver<Frame>,
    unacked: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> LinkStats {
    let mut stats = LinkStats::default();
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let mut pending: BTreeMap<u32, Pending> = BTreeMap::new();
    let mut conn: Option<Conn> = None;
    let mut frames_open = true;
    let mut ticker = tokio::time::interval(Duration::from_millis(25));
    let mut next_connect = Instant::now();
    loop {
        if conn.is_none() && Instant::now() >= next_connect {
            match connect(&config).await {
                Ok(c) => {
                    conn = Some(c);
                    // Whatever was in flight on the old connection is sent again.
                    for p in pending.values_mut() {
                        p.sent_at = None;
                    }
                }
                Err(_) => next_connect = Instant::now() + Duration::from_millis(100),
            }
        }
        let event = tokio::select! {
            biased;
            () = stop.cancelled() => Event::Stop,
            received = receive(&mut conn) => Event::Received(received),
            frame = frames.recv(), if frames_open => Event::Frame(frame),
            _ = ticker.tick() => Event::Tick,
        };
        match event {
            Event::Stop => break,
            Event::Frame(None) => frames_open = false,
            Event::Frame(Some(frame)) => {
                stats.frames_built += 1;
                let Ok(bytes) = wire::encode(&frame, &key) else {
                    continue;
                };
                pending.insert(
                    frame.seq,
                    Pending {
                        bytes: bytes.freeze(),
                        sent_at: None,
                    },
                );
                unacked.fetch_add(1, Ordering::Relaxed);
            }
            Event::Received(Ok(bytes)) => {
                if config.loss > 0.0 && rng.f64() < config.loss {
                    stats.lost_in += 1;
                } else {
                    settle(&bytes, &key, &mut pending, &mut stats, &unacked);
                }
            }
            Event::Received(Err(_)) => {
                if config.transport == Transport::Tcp {
                    conn = None;
                    stats.reconnects += 1;
                }
            }
            Event::Tick => {}
        }
        if let Some(c) = conn.as_mut() {
            if send_due(c, &config, &mut pending, &mut stats, &mut rng)
                .await
                .is_err()
                && config.transport == Transport::Tcp
            {
                conn = None;
                stats.reconnects += 1;
            }
        }
        if !frames_open && pending.is_empty() {
            break;
        }
    }
    stats.unacked_at_end = pending.len() as u64;
    stats
}

fn settle(
    bytes: &[u8],
    key: &StationKey,
    pending: &mut BTreeMap<u32, Pending>,
    stats: &mut LinkStats,
    unacked: &AtomicUsize,
) {
    let Ok(frame) = wire::decode_datagram(bytes, key, wire::MAX_BODY_LEN) else {
        return;
    };
    let Body::Ack(status) = frame.body else {
        return;
    };
    if status == AckStatus::Busy {
        stats.busy += 1;
        return;
    }
    if pending.remove(&frame.seq).is_none() {
        stats.late_acks += 1;
        return;
    }
    unacked.fetch_sub(1, Ordering::Relaxed);
    match status {
        AckStatus::Accepted => stats.accepted += 1,
        AckStatus::Duplicate => stats.duplicate += 1,
        AckStatus::Rejected | AckStatus::Busy => stats.rejected += 1,
    }
}

/// Sends never-sent and overdue frames, oldest first, within the window.
async fn send_due(
    conn: &mut Conn,
    config: &LinkConfig,
    pending: &mut BTreeMap<u32, Pending>,
    stats: &mut LinkStats,
    rng: &mut fastrand::Rng,
) -> std::io::Result<()> {
    let now = Instant::now();
    let overdue = |p: &Pending| p.sent_at.is_none_or(|t| now - t >= config.resend_after);
    let mut outstanding = pending.values().filter(|p| !overdue(p)).count();
    for p in pending.values_mut() {
        if outstanding >= config.window {
            break;
        }
        if !overdue(p) {
            continue;
        }
        if p.sent_at.is_some() {
            stats.resends += 1;
        }
        p.sent_at = Some(now);
        outstanding += 1;
        stats.sends += 1;
        match conn {
            Conn::Udp(socket, _) => {
                if config.loss > 0.0 && rng.f64() < config.loss {
                    stats.lost_out += 1;
                    continue;
                }
                // A full socket buffer is a lost datagram; the resend covers it.
                let _ = socket.send(&p.bytes).await;
            }
            Conn::Tcp { writer, .. } => writer.write_all(&p.bytes).await?,
        }
    }
    Ok(())
}
