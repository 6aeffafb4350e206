//! # GPS trackers on some of the city's vehicles, speaking GT06 over TCP as a device does.
//!
//! Each fitted vehicle's tracker reports its fix every 10-30 s (its own interval), with the speed
//! and course its last two positions give. Its connection logs in with the tracker's IMEI,
//! heartbeats, keeps every fix until it is acknowledged, and now and then drops (a device moving
//! between cells does): it reconnects after 1-5 s, logs in again and resends what was not
//! acknowledged, oldest first.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tagwatch_devices::gt06::{device, frame, reply, Frame};
use tagwatch_devices::{Fix, Imei};
use tagwatch_model::{GeoPoint, TagId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Which vehicles carry a tracker, and where it reports.
#[derive(Debug, Clone)]
pub struct GpsConfig {
    /// The server's GT06 listener.
    pub server: SocketAddr,
    /// The first `fitted` tags of the city carry one.
    pub fitted: u32,
    /// Each tracker's report interval is drawn from this range once.
    pub interval_ms: std::ops::Range<i64>,
    /// Chance that a connection drops after a report.
    pub drop_chance: f64,
}

impl GpsConfig {
    pub fn new(server: SocketAddr, fitted: u32) -> Self {
        Self {
            server,
            fitted,
            interval_ms: 10_000..30_000,
            drop_chance: 0.02,
        }
    }
}

/// The IMEI the simulator gives the tracker on `tag` (so a server can register it first).
pub fn tracker_imei(tag: TagId) -> Imei {
    // 860,000,000,000,000 plus a u32 stays within 15 digits.
    Imei::from_u64(860_000_000_000_000 + u64::from(tag.0)).expect("a tag's IMEI has 15 digits")
}

/// What the trackers did, summed.
#[derive(Debug, Default)]
pub struct GpsStats {
    pub fixes: AtomicU64,
    pub acked: AtomicU64,
    pub connects: AtomicU64,
    pub drops: AtomicU64,
}

impl GpsStats {
    pub fn snapshot(&self) -> [u64; 4] {
        [
            self.fixes.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.connects.load(Ordering::Relaxed),
            self.drops.load(Ordering::Relaxed),
        ]
    }
}

/// One tracker as the city sees it: when it reports next and where it was last.
#[derive(Debug)]
pub struct Tracker {
    pub tag: TagId,
    interval_ms: i64,
    next_ms: i64,
    last: Option<(i64, [f64; 2])>,
    fixes: mpsc::UnboundedSender<Fix>,
}

impl Tracker {
    /// The tracker's fix now, if it is due: its position, and the speed and course since its
    /// last fix (`xy` metres east and north).
    pub fn due(&mut self, now_ms: i64, xy: [f64; 2], geo: GeoPoint) {
        if now_ms < self.next_ms {
            return;
        }
        self.next_ms = now_ms + self.interval_ms;
        let (speed_kmh, course_deg) = match self.last {
            Some((t, from)) if now_ms > t => {
                let (dx, dy) = (xy[0] - from[0], xy[1] - from[1]);
                let metres = dx.hypot(dy);
                let speed = metres / ((now_ms - t) as f64 / 1000.0) * 3.6;
                let course = if metres < 1.0 {
                    0.0
                } else {
                    dx.atan2(dy).to_degrees().rem_euclid(360.0)
                };
                (speed.round().min(255.0) as u16, course.round() as u16 % 360)
            }
            _ => (0, 0),
        };
        self.last = Some((now_ms, xy));
        let _ = self.fixes.send(Fix {
            at_ms: now_ms,
            lat: geo.lat,
            lon: geo.lon,
            speed_kmh,
            course_deg,
            valid: true,
            satellites: Some(9),
            ignition: Some(speed_kmh > 0),
        });
    }
}

/// Starts a connection task for each fitted tag; returns the trackers for the city's loop and
/// the tasks (each ends once its tracker is dropped and its last fix is acknowledged).
pub fn start(
    config: &GpsConfig,
    first_tag: u32,
    start_ms: i64,
    seed: u64,
    stats: Arc<GpsStats>,
    stop: CancellationToken,
) -> (Vec<Tracker>, Vec<tokio::task::JoinHandle<()>>) {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6770_7331);
    let mut tasks = Vec::new();
    let trackers = (0..config.fitted)
        .map(|i| {
            let tag = TagId(first_tag + i);
            let interval_ms = rng.i64(config.interval_ms.clone());
            let (fixes, rx) = mpsc::unbounded_channel();
            let device = Connection {
                server: config.server,
                imei: tracker_imei(tag),
                drop_chance: config.drop_chance,
                rng: fastrand::Rng::with_seed(seed ^ u64::from(tag.0) << 16),
                stats: stats.clone(),
            };
            tasks.push(tokio::spawn(device.run(rx, stop.clone())));
            Tracker {
                tag,
                interval_ms,
                next_ms: start_ms + rng.i64(0..interval_ms),
                last: None,
                fixes,
            }
        })
        .collect();
    (trackers, tasks)
}

/// A tracker's TCP connection, re-opened when it drops.
struct Connection {
    server: SocketAddr,
    imei: Imei,
    drop_chance: f64,
    rng: fastrand::Rng,
    stats: Arc<GpsStats>,
}

impl Connection {
    async fn run(mut self, mut fixes: mpsc::UnboundedReceiver<Fix>, stop: CancellationToken) {
        let mut unacked: VecDeque<Fix> = VecDeque::new();
        let mut serial: u16 = 0;
        let mut open = true;
        while open && !stop.is_cancelled() {
            let Ok(mut stream) = TcpStream::connect(self.server).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            self.stats.connects.fetch_add(1, Ordering::Relaxed);
            serial = serial.wrapping_add(1);
            if exchange(&mut stream, &device::login(self.imei, serial))
                .await
                .is_none()
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // What the last connection left unacknowledged, oldest first.
            let mut alive = true;
            while let Some(fix) = unacked.front().copied() {
                serial = serial.wrapping_add(1);
                if exchange(&mut stream, &device::fix(&fix, serial))
                    .await
                    .is_none()
                {
                    alive = false;
                    break;
                }
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                unacked.pop_front();
            }
            // Nothing more on a connection that failed while catching up.
            while alive && open {
                let fix = tokio::select! {
                    _ = stop.cancelled() => { open = false; break; }
                    fix = fixes.recv() => fix,
                };
                let Some(fix) = fix else {
                    // The city is done; what is left was sent (and acknowledged) already.
                    open = false;
                    break;
                };
                self.stats.fixes.fetch_add(1, Ordering::Relaxed);
                unacked.push_back(fix);
                serial = serial.wrapping_add(1);
                if exchange(&mut stream, &device::fix(&fix, serial))
                    .await
                    .is_none()
                {
                    break;
                }
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                unacked.pop_front();
                if self.rng.f64() < self.drop_chance {
                    break;
                }
            }
            if open {
                self.stats.drops.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                let pause = Duration::from_millis(self.rng.u64(1_000..5_000));
                tokio::select! {
                    _ = stop.cancelled() => open = false,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Sends one message and waits for its acknowledgement (10 s); None if the connection failed.
async fn exchange(stream: &mut TcpStream, message: &[u8]) -> Option<()> {
    let sent = Frame::parse(message).ok()?;
    let expected = reply::ack(&sent)?;
    stream.write_all(message).await.ok()?;
    let mut buffer = Vec::new();
    let read = async {
        loop {
            if let Ok(total) = frame::check(&buffer, frame::MAX_FRAME_LEN) {
                let got: Vec<u8> = buffer.drain(..total).collect();
                // A command (engine stop) may come unasked: a simulated device ignores it.
                if got == expected {
                    return Some(());
                }
                continue;
            }
            let mut chunk = [0u8; 256];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()?
}
