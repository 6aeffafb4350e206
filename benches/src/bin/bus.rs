//! # `tagwatch-bus`: how much a cluster's gateway stores in JetStream per second, on this machine
//!
//! Starts a `nats-server` of its own (JetStream, file storage, one node), a store with the
//! stations, and `tagwatch gateway` in this process; then stations send DETECTIONS frames over
//! UDP, each keeping a window of frames unacknowledged, for a while. A frame is acknowledged only
//! once JetStream has stored every part of it, so the ACCEPTED rate is what the gateway and the
//! bus sustain together. Reported: frames, detections and parts stored per second, ACK latency,
//! BUSY answers, and the stream's size.
//!
//! `cargo run --release -p tagwatch-benches --bin tagwatch-bus -- --partitions 64 --records 700`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tagwatch::config::StationsSection;
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch_cluster::bus::FRAMES_STREAM;
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::BusConfig;
use tagwatch_gateway::wire::{self, AckStatus, Body, Frame, Record};
use tagwatch_model::{GeoPoint, SessionId, Station, StationId, StationKey, TagId};
use tagwatch_store::Store;
use tokio::net::UdpSocket;

#[derive(Debug, Parser)]
struct Args {
    /// Stations sending at once
    #[arg(long, default_value_t = 64)]
    stations: u32,
    /// Detection records per frame (700: a busy intersection of the city × 10)
    #[arg(long, default_value_t = 700)]
    records: usize,
    /// The cluster's partition count
    #[arg(long, default_value_t = 64)]
    partitions: u16,
    /// Frames each station keeps unacknowledged
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Seconds to send for
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

#[derive(Debug, Default)]
struct Counts {
    accepted: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(nats) = NatsServer::start().await? else {
        anyhow::bail!("nats-server is needed (apt-get install nats-server)");
    };
    let dir = tempfile::tempdir()?;
    let database = format!("sqlite://{}", dir.path().join("bus.sqlite").display());
    let store = Store::open(&database).await?;
    store.migrate().await?;
    for id in 1..=args.stations {
        let station = Station {
            id: StationId(id),
            name: format!("station {id}"),
            position: GeoPoint::new(23.0 + f64::from(id) / 1_000.0, 116.0)?,
        };
        store.insert_station(&station, &key(id), 0).await?;
    }
    let gateway = RunningGateway::start(GatewayOptions {
        nats: nats.url(),
        database,
        udp: "127.0.0.1:0".parse()?,
        tcp: "127.0.0.1:0".parse()?,
        stations: StationsSection {
            max_frame_body: wire::MAX_BODY_LEN,
            ..StationsSection::default()
        },
        clock_skew_limit: Duration::from_secs(120),
        bus: BusConfig::default(),
        partitions: Some(args.partitions),
        refresh: Duration::from_secs(60),
        http: None,
        gt06: None,
    })
    .await?;
    eprintln!(
        "gateway on udp {} → JetStream (1 node, file storage), {} partitions; {} stations × {} frames of {} records",
        gateway.udp, args.partitions, args.stations, args.window, args.records
    );
    let counts = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut stations = Vec::new();
    for id in 1..=args.stations {
        let counts = counts.clone();
        let (server, records, window) = (gateway.udp, args.records, args.window);
        stations.push(tokio::spawn(async move {
            station(id, server, records, window, until, &counts).await
        }));
    }
    let mut latencies = Vec::new();
    for station in stations {
        latencies.extend(station.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let accepted = counts.accepted.load(Ordering::Relaxed) as f64;
    let client = async_nats::connect(nats.url()).await?;
    let info = async_nats::jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await?
        .get_info()
        .await?;
    println!(
        "stored {:.0} frames/s = {:.0} detections/s = {:.0} parts/s (JetStream messages); ACK p50 {:.1} ms p99 {:.1} ms; BUSY {}; other answers {}; stream {} messages, {:.1} MiB",
        accepted / secs,
        accepted * args.records as f64 / secs,
        info.state.messages as f64 / secs,
        pct(0.5),
        pct(0.99),
        counts.busy.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        info.state.messages,
        info.state.bytes as f64 / 1_048_576.0,
    );
    gateway.stop().await;
    Ok(())
}

fn key(id: u32) -> StationKey {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&id.to_be_bytes());
    key[4..].fill(0x5a);
    StationKey(key)
}

/// One station: keeps `window` frames unacknowledged until `until`; returns its ACK latencies
/// (ms) of ACCEPTED frames. A frame told BUSY is not resent (the next one goes instead).
async fn station(
    id: u32,
    server: std::net::SocketAddr,
    records: usize,
    window: usize,
    until: Instant,
    counts: &Counts,
) -> anyhow::Result<Vec<f64>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket.connect(server).await?;
    let key = key(id);
    let mut rng = fastrand::Rng::with_seed(u64::from(id));
    let mut sent: HashMap<u32, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut seq = 0u32;
    let mut buf = vec![0u8; 512];
    while Instant::now() < until || !sent.is_empty() {
        while Instant::now() < until && sent.len() < window {
            seq += 1;
            let frame = Frame {
                station: StationId(id),
                session: SessionId(1),
                seq,
                time_ms: u64::try_from(tagwatch_model::time::now_ms()).unwrap_or(0),
                position: None,
                body: Body::Detections(
                    (0..records)
                        .map(|_| Record {
                            tag: TagId(rng.u32(1..=3_000_000)),
                            age_ms: rng.u16(0..1_000),
                            rssi: -60,
                            reads: 1,
                            tag_flags: 0,
                            antenna: 1,
                        })
                        .collect(),
                ),
            };
            socket.send(&wire::encode(&frame, &key)?).await?;
            sent.insert(seq, Instant::now());
        }
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await
        else {
            // Lost answers (a full socket buffer): give up on what is outstanding.
            sent.clear();
            continue;
        };
        let ack = wire::decode_datagram(&buf[..n], &key, 1024)?;
        let Body::Ack(status) = ack.body else {
            continue;
        };
        let Some(at) = sent.remove(&ack.seq) else {
            continue;
        };
        match status {
            AckStatus::Accepted => {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                latencies.push(at.elapsed().as_secs_f64() * 1_000.0);
            }
            AckStatus::Busy => {
                counts.busy.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.other.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(latencies)
}
