//! When the ingest falls behind (a checkpoint's take, a slow store, the machine's other work),
//! frames queue up between the gateway and the tracker. A stolen tag's sighting must not wait
//! behind that backlog, nor a pressed panic button: their alerts are raised as their frames
//! are taken in. The ingest task is driven
//! directly here, its gateway queue filled before it starts, so the backlog is exact and nothing
//! depends on timing.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use support::TestStation;
use tagwatch_gateway::metrics::GatewayMetrics;
use tagwatch_gateway::server::Replier;
use tagwatch_gateway::wire::{self, Frame};
use tagwatch_gateway::{Admission, Gateway, GatewayConfig, StationKeys};
use tagwatch_ingest::admission::Class;
use tagwatch_ingest::dedupe::{Dedupe, DEFAULT_WINDOW};
use tagwatch_ingest::journal::Replayed;
use tagwatch_ingest::live::{AlertBus, DEFAULT_RING};
use tagwatch_ingest::{run_ingest, Health, IngestConfig, IngestParts, PipelineMetrics};
use tagwatch_model::{AlertKind, CaseId, GeoPoint, Station, StationId, TagId};
use tagwatch_tracker::{Tracker, TrackerConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const STOLEN: u32 = 777;
/// A tag whose panic button is pressed (not stolen, not armed).
const PANICKING: u32 = 600;

/// The ingest task, started on a gateway queue already holding `backlog` frames of 20 tags from
/// station 1001, then `plain` frames of station 1002, one of station 1002 carrying a stolen
/// tag and one whose tag's panic button is pressed. Its writer never answers: one flush fills
/// its queue.
struct Driven {
    ingest: tokio::task::JoinHandle<()>,
    live: tokio::sync::broadcast::Receiver<tagwatch_model::Alert>,
    metrics: Arc<PipelineMetrics>,
    /// Kept so that the ingest's queues stay open (it stops when the gateway's closes).
    _open: (
        Gateway,
        mpsc::Receiver<tagwatch_ingest::Flush>,
        mpsc::Sender<tagwatch_tracker::Command>,
        mpsc::Sender<tagwatch_tracker::Query>,
    ),
}

async fn drive(
    dir: &std::path::Path,
    backlog: u32,
    plain: u32,
    admission_bound: Duration,
    max_batch_frames: usize,
) -> Driven {
    let store =
        tagwatch_store::Store::open(&format!("sqlite://{}", dir.join("t.sqlite").display()))
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
    // ACKs (BUSY at most, as nothing commits in this test) go to a socket nobody reads.
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
    for seq in 1..=backlog {
        let tags: Vec<u32> = (0..20).map(|i| 100_000 + (seq * 20 + i) % 5_000).collect();
        send(&busy, busy.detections(seq, now, &tags));
    }
    for seq in 1..=plain {
        send(&hot, hot.detections(seq, now, &[500, 501]));
    }
    send(&hot, hot.detections(plain + 1, now, &[STOLEN, 500]));
    let mut pressed = hot.detections(plain + 2, now, &[500, PANICKING]);
    if let wire::Body::Detections(records) = &mut pressed.body {
        records[1].tag_flags = tagwatch_model::tag_flags::PANIC;
    }
    send(&hot, pressed);

    let bus = Arc::new(AlertBus::new(DEFAULT_RING));
    let live = bus.subscribe(None).live;
    let metrics = Arc::new(PipelineMetrics::default());
    // The writer is never answered: its queue (one flush) fills and batches keep growing; unless
    // `max_batch_frames` is small, never to it, so the ingest does not hold back.
    let (writer, writer_rx) = mpsc::channel(1);
    let (commands_tx, commands) = mpsc::channel(1);
    let (queries_tx, queries) = mpsc::channel(1);
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
            max_batch_frames,
            admission_bound,
            checkpoint_interval: Duration::from_secs(3_600),
        },
        Replayed {
            frames: 0,
            next_seq: 1,
        },
        CancellationToken::new(),
    ));
    Driven {
        ingest,
        live,
        metrics,
        _open: (gateway, writer_rx, commands_tx, queries_tx),
    }
}

/// Waits for the stolen sighting's alert; returns the frames applied by then (counted after the
/// alert, so an upper bound).
async fn stolen_alert(driven: &mut Driven) -> u64 {
    let alert = tokio::time::timeout(Duration::from_secs(30), driven.live.recv())
        .await
        .expect("an alert within 30 s")
        .expect("the bus is open");
    let applied_by_then = driven.metrics.frames_applied.get();
    assert_eq!(alert.kind, AlertKind::StolenSighting);
    assert_eq!(alert.tag, Some(TagId(STOLEN)));
    assert_eq!(alert.station, StationId(1002));
    applied_by_then
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_sighting_goes_before_a_backlog_of_frames() {
    const BACKLOG: u32 = 3_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut driven = drive(dir.path(), BACKLOG, 0, Duration::from_secs(1), 1_000_000).await;
    let applied_by_then = stolen_alert(&mut driven).await;
    driven.ingest.abort();
    // Before the change it came after the whole backlog (3,001 frames applied); the ingest may
    // apply a few more while this task wakes up.
    assert!(
        applied_by_then < u64::from(BACKLOG) / 3,
        "{applied_by_then} frames applied before the stolen sighting was alerted"
    );
}

/// Deeper than the 8,192 frames the ingest used to sort (the rest waited, unsorted, in the
/// gateway's queue): everything taken in is sorted, so the alert still comes first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_sighting_goes_before_a_backlog_deeper_than_the_old_hot_queue() {
    const BACKLOG: u32 = 12_000;
    let dir = tempfile::tempdir().expect("tempdir");
    // A bound far above this backlog's cost: every frame is queued, none is refused.
    let mut driven = drive(dir.path(), BACKLOG, 0, Duration::from_secs(60), 1_000_000).await;
    let applied_by_then = stolen_alert(&mut driven).await;
    driven.ingest.abort();
    assert_eq!(driven.metrics.refused(Class::Live).get(), 0);
    // Before: 12,001 - 8,192 = 3,809 frames applied first.
    assert!(
        applied_by_then < 1_000,
        "{applied_by_then} frames applied before the stolen sighting was alerted"
    );
}

/// Over the admission bound, frames are told BUSY at once instead of queued; a frame carrying a
/// stolen sighting raises its alert all the same, whether it is queued or refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_frames_are_refused_at_once_but_not_an_alert() {
    const BACKLOG: u32 = 12_000;
    let dir = tempfile::tempdir().expect("tempdir");
    // 10 ms at the assumed 250,000 detections a second: about a hundred of these frames.
    let mut driven = drive(dir.path(), BACKLOG, 0, Duration::from_millis(10), 1_000_000).await;
    let applied_by_then = stolen_alert(&mut driven).await;
    let refused = driven.metrics.refused(Class::Live).get();
    // Every frame is applied or refused, at once or when its turn came past twice the bound
    // (`late`): wait until the ingest has settled them all.
    let settled = |m: &PipelineMetrics| {
        m.refused(Class::Live).get() + m.refused_late().get() + m.frames_applied.get()
    };
    let all_taken = async {
        while settled(&driven.metrics) < u64::from(BACKLOG) + 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all_taken)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "every frame applied or refused: {} settled",
                settled(&driven.metrics)
            )
        });
    driven.ingest.abort();
    assert!(
        refused > u64::from(BACKLOG) * 9 / 10,
        "{refused} refused: most of the backlog is left to the station"
    );
    assert!(applied_by_then < 200, "{applied_by_then}");
    let panic = tokio::time::timeout(Duration::from_secs(5), driven.live.recv())
        .await
        .expect("the panic alert")
        .expect("the bus is open");
    assert_eq!(
        (panic.kind, panic.tag, panic.station),
        (AlertKind::Panic, Some(TagId(PANICKING)), StationId(1002))
    );
    assert_eq!(
        driven.metrics.alerts_ahead.get(),
        2,
        "stolen and panic, once each"
    );
}

/// A batch waits for a writer that never answers: nothing more is applied, and the stolen
/// sighting queued behind 70 frames is never applied; its alert comes all the same (before
/// 2026-12-06 it had to be applied first, ahead of its station's earlier frames, and waited for
/// the commit once a held batch's allowance for such frames was used).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_sighting_is_alerted_while_the_batch_waits_for_the_store() {
    const MAX_BATCH: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut driven = drive(dir.path(), 50, 20, Duration::from_secs(60), MAX_BATCH).await;
    let applied_by_then = stolen_alert(&mut driven).await;
    // At most one batch flushed (the writer's queue holds one) and the next, full, held for
    // good: the sighting's frame is not among them.
    assert!(
        applied_by_then <= 2 * MAX_BATCH as u64,
        "{applied_by_then} frames applied before the stolen sighting was alerted"
    );
    let panic = tokio::time::timeout(Duration::from_secs(5), driven.live.recv())
        .await
        .expect("the panic alert, its frame not applied either")
        .expect("the bus is open");
    assert_eq!(panic.kind, AlertKind::Panic);
    assert_eq!(
        driven.metrics.alerts_ahead.get(),
        2,
        "stolen and panic, once each"
    );
    driven.ingest.abort();
}
