//! When the ingest falls behind (a checkpoint's take, the machine's other work), frames queue
//! up between the gateway and the tracker. A stolen tag's sighting must not wait behind that
//! backlog: the ingest task is driven directly here, its gateway queue filled before it starts,
//! so the backlog is exact and nothing depends on timing.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use support::TestStation;
use tagwatch::ingest::{run_ingest, IngestConfig, IngestParts};
use tagwatch::journal::Replayed;
use tagwatch::metrics::PipelineMetrics;
use tagwatch_api::live::{AlertBus, DEFAULT_RING};
use tagwatch_api::Health;
use tagwatch_gateway::dedupe::{Dedupe, DEFAULT_WINDOW};
use tagwatch_gateway::metrics::GatewayMetrics;
use tagwatch_gateway::server::Replier;
use tagwatch_gateway::wire::{self, Frame};
use tagwatch_gateway::{Admission, Gateway, GatewayConfig, StationKeys};
use tagwatch_model::{AlertKind, CaseId, GeoPoint, Station, StationId, TagId};
use tagwatch_tracker::{Tracker, TrackerConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const BACKLOG: u32 = 3_000;
const STOLEN: u32 = 777;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_sighting_goes_before_a_backlog_of_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = tagwatch_store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("t.sqlite").display()
    ))
    .await
    .expect("store");
    let mut tracker = Tracker::new(TrackerConfig::default(), 1, 1);
    let keys = StationKeys::default();
    for id in [1001, 1002] {
        tracker.set_station(&Station {
            id: StationId(id),
            name: format!("station {id}"),
            position: GeoPoint::new(22.5 + f64::from(id - 1000) * 0.01, 114.0).expect("point"),
        });
        keys.insert(StationId(id), support::key(id));
    }
    tracker.report_stolen(TagId(STOLEN), CaseId(1));

    // The gateway's queue: a backlog from station 1001, then the stolen tag at station 1002.
    let (frames_tx, frames_rx) = mpsc::channel(16_384);
    let gateway = Gateway::new(
        GatewayConfig::default(),
        keys.clone(),
        Arc::new(GatewayMetrics::default()),
        frames_tx,
    );
    // ACKs would go here; none are sent, as nothing commits in this test.
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let peer = socket.local_addr().expect("addr");
    let now = tagwatch_model::time::now_ms();
    let busy = TestStation::udp(1001, 1, peer).await;
    let hot = TestStation::udp(1002, 1, peer).await;
    let send = |station: &TestStation, f: Frame| {
        let bytes = wire::encode(&f, &station.key).expect("encode");
        let header = wire::datagram_header(&bytes, 32 * 1024).expect("header");
        let replier = Replier::Udp {
            socket: socket.clone(),
            peer,
        };
        let admitted = gateway.admit(&bytes, header, IpAddr::V4(Ipv4Addr::LOCALHOST), replier);
        assert!(matches!(admitted, Admission::Queued), "{admitted:?}");
    };
    for seq in 1..=BACKLOG {
        let tags: Vec<u32> = (0..20).map(|i| 100_000 + (seq * 20 + i) % 5_000).collect();
        send(&busy, busy.detections(seq, now, &tags));
    }
    send(&hot, hot.detections(1, now, &[STOLEN, 500]));

    let bus = Arc::new(AlertBus::new(DEFAULT_RING));
    let mut live = bus.subscribe(None).live;
    let metrics = Arc::new(PipelineMetrics::default());
    // The writer is never answered: its queue (one flush) fills and batches keep growing, but
    // never to `max_batch_frames`, so the ingest does not hold back.
    let (writer, _writer_rx) = mpsc::channel(1);
    let (_commands_tx, commands) = mpsc::channel(1);
    let (_queries_tx, queries) = mpsc::channel(1);
    let (_committed_tx, committed) = mpsc::unbounded_channel();
    let ingest = tokio::spawn(run_ingest(
        tracker,
        Dedupe::new(DEFAULT_WINDOW),
        IngestParts {
            store,
            frames: frames_rx,
            commands,
            queries,
            committed,
            writer,
            bus: bus.clone(),
            health: Arc::new(Health::default()),
            metrics: metrics.clone(),
        },
        IngestConfig {
            flush_interval: Duration::from_millis(100),
            max_batch_frames: 1_000_000,
            queue_frames: 16_384,
            checkpoint_interval: Duration::from_secs(3_600),
        },
        Replayed {
            frames: 0,
            next_seq: 1,
        },
        CancellationToken::new(),
    ));

    let alert = tokio::time::timeout(Duration::from_secs(30), live.recv())
        .await
        .expect("an alert within 30 s")
        .expect("the bus is open");
    let applied_by_then = metrics.frames_applied.get();
    ingest.abort();
    assert_eq!(alert.kind, AlertKind::StolenSighting);
    assert_eq!(alert.tag, Some(TagId(STOLEN)));
    assert_eq!(alert.station, StationId(1002));
    // Before the change it came after the whole backlog (3,001 frames applied); the ingest may
    // apply a few more while this task wakes up.
    assert!(
        applied_by_then < u64::from(BACKLOG) / 3,
        "{applied_by_then} frames applied before the stolen sighting was alerted"
    );
}
