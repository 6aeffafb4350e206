//! # A station's uplink: delivers its frames at least once, as `PROTOCOL.md` asks of firmware.
//!
//! Every frame is kept until an ACK says ACCEPTED, DUPLICATE or REJECTED; unacknowledged frames
//! are resent oldest first after a timeout. A new frame goes out as soon as it is built, ahead of
//! any backlog (live traffic first). BUSY halves the window of unacknowledged frames (each ACK
//! grows it by one again) and pauses resends and the backlog for a back-off (see [`Backoff`]),
//! after which the refused frames are sent again. Over
//! UDP, outgoing datagrams and incoming ACKs are dropped with the configured probability; over TCP
//! only ACKs are (the stream itself is reliable), and a broken connection is re-opened.

use bytes::BytesMut;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::framing::FrameCodec;
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
    /// While set, the station's network is down: nothing is sent or received, and its frames
    /// pile up in flash until it comes back (a city-wide outage in the benches).
    pub down: Option<Arc<AtomicBool>>,
    /// Frames listed here get the moment of their first send (the benches' alert latency,
    /// measured from when a frame first left its station, backlog or not).
    pub first_sends: Option<FirstSends>,
}

/// (station, seq) of frames to watch → when each was first sent.
pub type FirstSends = Arc<std::sync::Mutex<std::collections::HashMap<(u32, u32), Option<Instant>>>>;

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
    /// The frame's own time (the station's clock).
    time_ms: u64,
    /// Sent at least once (`sent_at` is cleared again by a BUSY).
    sent_before: bool,
    /// Sent more than once: its ACK says nothing about the ACK latency (which send it answers?).
    resent: bool,
}

/// A frame never sent and built within this of the newest one is live: it goes out at once,
/// before the backlog, whatever the window and the pause.
const LIVE_FOR_MS: u64 = 5_000;

/// What a BUSY does, as `PROTOCOL.md` asks of firmware. The window of unacknowledged frames
/// starts at [`Backoff::FIRST_WINDOW`] on each connection, grows by one with each ACCEPTED or
/// DUPLICATE (doubling every round trip) up to the configured one, and is halved (at least one) by
/// a BUSY: stations sharing a server that is full converge to equal shares of it, as TCP flows do,
/// and a thousand stations reconnecting with hours of flash do not all send their whole window
/// at once. Resends and the backlog pause: 250 ms after the first BUSY, doubling with each BUSY
/// in a row up to 8 s, each drawn at random between half and one and a half times that (a
/// thousand stations refused at once do not all come back at once); the next ACCEPTED or
/// DUPLICATE ends the run.
#[derive(Debug)]
struct Backoff {
    in_a_row: u32,
    until: Option<Instant>,
    window: usize,
    largest: usize,
    /// Average ACK latency of frames sent once (seconds), for the resend timeout.
    ack_latency_s: f64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const LONGEST: Duration = Duration::from_secs(8);
    const FIRST_WINDOW: usize = 4;

    /// A new connection: the window starts small again.
    fn connected(&mut self) {
        self.window = Self::FIRST_WINDOW.min(self.largest);
    }

    fn new(window: usize) -> Self {
        Self {
            in_a_row: 0,
            until: None,
            window: window.max(1),
            largest: window.max(1),
            ack_latency_s: 0.0,
        }
    }

    /// An ACK for a frame sent once, `latency` after it was sent.
    fn acked_after(&mut self, latency: Duration) {
        self.ack_latency_s = 0.875 * self.ack_latency_s + 0.125 * latency.as_secs_f64();
    }

    /// How long an unacknowledged frame waits before it is resent: three times the average ACK
    /// latency, at least `minimum`, at most a minute. A server slow to commit (its ACKs come
    /// late, not lost) then does not get every frame twice.
    fn resend_after(&self, minimum: Duration) -> Duration {
        Duration::from_secs_f64((3.0 * self.ack_latency_s).min(60.0)).max(minimum)
    }

    fn holding(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now < t)
    }

    /// A BUSY: pause (the BUSYs for the other frames of the same burst, arriving during the
    /// pause, do not lengthen it).
    fn busy(&mut self, now: Instant, rng: &mut fastrand::Rng) {
        if self.holding(now) {
            return;
        }
        self.window = (self.window / 2).max(1);
        self.in_a_row += 1;
        let base = Self::FIRST
            .saturating_mul(1 << (self.in_a_row - 1).min(6))
            .min(Self::LONGEST);
        self.until = Some(now + base.mul_f64(0.5 + rng.f64()));
    }

    fn settled(&mut self) {
        self.in_a_row = 0;
        self.window = (self.window + 1).min(self.largest);
    }
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
    let mut backoff = Backoff::new(config.window);
    let mut station = 0;
    loop {
        let down = config
            .down
            .as_ref()
            .is_some_and(|d| d.load(Ordering::Relaxed));
        if down && conn.take().is_some() {
            stats.reconnects += 1;
        }
        if !down && conn.is_none() && Instant::now() >= next_connect {
            match connect(&config).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff.connected();
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
                station = frame.station.0;
                let Ok(bytes) = wire::encode(&frame, &key) else {
                    continue;
                };
                pending.insert(
                    frame.seq,
                    Pending {
                        bytes: bytes.freeze(),
                        sent_at: None,
                        time_ms: frame.time_ms,
                        sent_before: false,
                        resent: false,
                    },
                );
                unacked.fetch_add(1, Ordering::Relaxed);
            }
            Event::Received(Ok(bytes)) => {
                if config.loss > 0.0 && rng.f64() < config.loss {
                    stats.lost_in += 1;
                } else {
                    settle(
                        &bytes,
                        &key,
                        &mut pending,
                        &mut stats,
                        &unacked,
                        &mut backoff,
                        &mut rng,
                    );
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
            let room = Room {
                window: backoff.window,
                paused: backoff.holding(Instant::now()),
                resend_after: backoff.resend_after(config.resend_after),
            };
            if send_due(
                c,
                &config,
                station,
                room,
                &mut pending,
                &mut stats,
                &mut rng,
            )
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
    backoff: &mut Backoff,
    rng: &mut fastrand::Rng,
) {
    let Ok(frame) = wire::decode_datagram(bytes, key, wire::MAX_BODY_LEN) else {
        return;
    };
    let Body::Ack(status) = frame.body else {
        return;
    };
    if status == AckStatus::Busy {
        stats.busy += 1;
        // Sent again once the pause is over.
        if let Some(p) = pending.get_mut(&frame.seq) {
            p.sent_at = None;
        }
        backoff.busy(Instant::now(), rng);
        return;
    }
    backoff.settled();
    let Some(settled) = pending.remove(&frame.seq) else {
        stats.late_acks += 1;
        return;
    };
    if let (false, Some(sent_at)) = (settled.resent, settled.sent_at) {
        backoff.acked_after(sent_at.elapsed());
    }
    unacked.fetch_sub(1, Ordering::Relaxed);
    match status {
        AckStatus::Accepted => stats.accepted += 1,
        AckStatus::Duplicate => stats.duplicate += 1,
        AckStatus::Rejected | AckStatus::Busy => stats.rejected += 1,
    }
}

/// What the uplink may send besides its live frames.
#[derive(Debug, Clone, Copy)]
struct Room {
    /// Unacknowledged frames at most (live ones count, but are sent anyway).
    window: usize,
    /// Resends and the backlog wait (a BUSY's pause).
    paused: bool,
    /// An unacknowledged frame is resent after this long.
    resend_after: Duration,
}

/// Sends live frames at once, then never-sent and overdue ones oldest first, within the window
/// and unless paused.
async fn send_due(
    conn: &mut Conn,
    config: &LinkConfig,
    station: u32,
    room: Room,
    pending: &mut BTreeMap<u32, Pending>,
    stats: &mut LinkStats,
    rng: &mut fastrand::Rng,
) -> std::io::Result<()> {
    let now = Instant::now();
    let overdue = |p: &Pending| p.sent_at.is_none_or(|t| now - t >= room.resend_after);
    let newest_ms = pending.values().next_back().map_or(0, |p| p.time_ms);
    let live = |p: &Pending| {
        p.sent_at.is_none() && !p.sent_before && newest_ms.saturating_sub(p.time_ms) < LIVE_FOR_MS
    };
    let mut outstanding = pending.values().filter(|p| !overdue(p)).count();
    // Live frames are the newest: found from the end, sent in order.
    let first_live = pending
        .iter()
        .rev()
        .take_while(|(_, p)| live(p))
        .last()
        .map(|(&seq, _)| seq);
    let (mut live_frames, mut backlog) = (Vec::new(), Vec::new());
    for (&seq, p) in pending.iter_mut() {
        if first_live.is_some_and(|first| seq >= first) {
            live_frames.push((seq, p));
        } else {
            backlog.push((seq, p));
        }
    }
    let mut first_sent = Vec::new();
    let mut result = Ok(());
    let live_count = live_frames.len();
    for (i, (seq, p)) in live_frames.into_iter().chain(backlog).enumerate() {
        let is_live = i < live_count;
        if !is_live && (room.paused || outstanding >= room.window) {
            break;
        }
        if !overdue(p) {
            continue;
        }
        if p.sent_at.is_some() || p.sent_before {
            stats.resends += 1;
            p.resent = true;
        } else {
            first_sent.push(seq);
        }
        p.sent_before = true;
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
            Conn::Tcp { writer, .. } => {
                if let Err(e) = writer.write_all(&p.bytes).await {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    if let (Some(marks), false) = (&config.first_sends, first_sent.is_empty()) {
        let mut marks = marks.lock().expect("first sends lock");
        for seq in first_sent {
            if let Some(mark @ None) = marks.get_mut(&(station, seq)) {
                *mark = Some(now);
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_pauses_the_uplink_longer_each_time_in_a_row_until_a_frame_settles() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut backoff = Backoff::new(256);
        let t0 = Instant::now();
        backoff.busy(t0, &mut rng);
        assert_eq!(backoff.window, 128, "the window halves");
        let first = backoff.until.expect("paused") - t0;
        assert!(
            (Duration::from_millis(125)..Duration::from_millis(375)).contains(&first),
            "{first:?}"
        );
        // The other BUSYs of the same burst do not lengthen the pause.
        backoff.busy(t0 + Duration::from_millis(100), &mut rng);
        assert_eq!(backoff.until.expect("paused") - t0, first);
        assert_eq!(backoff.window, 128, "once per burst");
        let mut now = t0;
        for _ in 0..10 {
            now = backoff.until.expect("paused");
            assert!(!backoff.holding(now));
            backoff.busy(now, &mut rng);
        }
        let longest = backoff.until.expect("paused") - now;
        assert!(
            (Duration::from_secs(4)..Duration::from_secs(12)).contains(&longest),
            "capped near 8 s: {longest:?}"
        );
        assert_eq!(backoff.window, 1, "never below one");
        backoff.settled();
        assert_eq!(backoff.window, 2, "each ACK grows it by one");
        let now = backoff.until.expect("paused");
        backoff.busy(now, &mut rng);
        assert!(backoff.until.expect("paused") - now < Duration::from_millis(375));
    }

    #[test]
    fn late_acks_stretch_the_resend_timeout() {
        let mut pacing = Backoff::new(8);
        let minimum = Duration::from_secs(3);
        assert_eq!(pacing.resend_after(minimum), minimum);
        for _ in 0..60 {
            pacing.acked_after(Duration::from_secs(4));
        }
        let stretched = pacing.resend_after(minimum);
        assert!(
            (Duration::from_secs(11)..=Duration::from_secs(12)).contains(&stretched),
            "three times the ACK latency: {stretched:?}"
        );
        for _ in 0..60 {
            pacing.acked_after(Duration::from_secs(100));
        }
        assert_eq!(pacing.resend_after(minimum), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn new_frames_go_out_before_the_backlog_which_goes_oldest_first() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let config = LinkConfig {
            server: server.local_addr().expect("addr"),
            transport: Transport::Udp,
            loss: 0.0,
            resend_after: Duration::from_secs(5),
            window: 4,
            seed: 1,
            down: None,
            first_sends: Some(FirstSends::default()),
        };
        let marks = config.first_sends.clone().expect("marks");
        marks.lock().expect("lock").insert((9, 6), None);
        marks.lock().expect("lock").insert((9, 5), None);
        let mut conn = connect(&config).await.expect("connect");
        // seqs 1..=5 built ten minutes before 6 and 7 (a backlog after an outage).
        let mut pending: BTreeMap<u32, Pending> = (1..=7u32)
            .map(|seq| {
                let pending = Pending {
                    bytes: bytes::Bytes::from(seq.to_be_bytes().to_vec()),
                    sent_at: None,
                    time_ms: if seq <= 5 { 1_000 } else { 601_000 },
                    sent_before: false,
                    resent: false,
                };
                (seq, pending)
            })
            .collect();
        let mut stats = LinkStats::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let room = Room {
            window: 4,
            paused: false,
            resend_after: config.resend_after,
        };
        send_due(
            &mut conn,
            &config,
            9,
            room,
            &mut pending,
            &mut stats,
            &mut rng,
        )
        .await
        .expect("sent");
        let mut order = Vec::new();
        let mut buf = [0u8; 16];
        for _ in 0..4 {
            let n = server.recv(&mut buf).await.expect("datagram");
            order.push(u32::from_be_bytes(buf[..n].try_into().expect("4 bytes")));
        }
        assert_eq!(
            order,
            [6, 7, 1, 2],
            "live first, then the backlog oldest first"
        );
        assert_eq!(stats.sends, 4, "the window holds the rest back");
        // A new frame during a BUSY's pause still goes at once; the backlog waits.
        pending.insert(
            8,
            Pending {
                bytes: bytes::Bytes::from(8u32.to_be_bytes().to_vec()),
                sent_at: None,
                time_ms: 602_000,
                sent_before: false,
                resent: false,
            },
        );
        for p in pending.values_mut() {
            p.sent_at = p.sent_at.map(|t| t - Duration::from_secs(10));
        }
        let paused = Room {
            window: 4,
            paused: true,
            resend_after: config.resend_after,
        };
        send_due(
            &mut conn,
            &config,
            9,
            paused,
            &mut pending,
            &mut stats,
            &mut rng,
        )
        .await
        .expect("sent");
        let n = server.recv(&mut buf).await.expect("datagram");
        assert_eq!(u32::from_be_bytes(buf[..n].try_into().expect("4 bytes")), 8);
        assert_eq!(stats.sends, 5, "nothing overdue is resent while paused");
        let marks = marks.lock().expect("lock");
        assert!(marks[&(9, 6)].is_some(), "a watched frame sent is stamped");
        assert_eq!(marks[&(9, 5)], None, "one not sent yet is not");
    }
}
