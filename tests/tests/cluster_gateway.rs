//! `tagwatch gateway` as a station and a tracker shard see it: a verified frame is split by the
//! partition of its vehicles, each part stored in JetStream once, and the station answered only
//! after JetStream stored every part (DUPLICATE for a resend, BUSY while JetStream is away).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use support::TestStation;
use tagwatch::config::StationsSection;
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch_cluster::bus::FRAMES_STREAM;
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::part::Part;
use tagwatch_cluster::partition::station_partition;
use tagwatch_cluster::{BusConfig, BusError, Groups};
use tagwatch_gateway::wire::{self, AckStatus, Body};
use tagwatch_model::{StationId, TagId};
use tagwatch_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARTITIONS: u16 = 8;
const STATION: u32 = 1001;

struct Cluster {
    nats: NatsServer,
    gateway: Option<RunningGateway>,
    station: TestStation,
    _db: tempfile::TempDir,
    database: String,
}

async fn options(nats: &NatsServer, database: &str, partitions: Option<u16>) -> GatewayOptions {
    GatewayOptions {
        nats: nats.url(),
        database: database.to_owned(),
        udp: "127.0.0.1:0".parse().expect("addr"),
        tcp: "127.0.0.1:0".parse().expect("addr"),
        stations: StationsSection::default(),
        clock_skew_limit: Duration::from_secs(120),
        bus: BusConfig {
            publish_timeout: Duration::from_millis(500),
            ..BusConfig::default()
        },
        partitions,
        refresh: Duration::from_millis(200),
        http: Some("127.0.0.1:0".parse().expect("addr")),
        gt06: None,
    }
}

/// A NATS server, a store with one station, a gateway, and the station; `None` when skipped.
async fn cluster() -> Option<Cluster> {
    let nats = NatsServer::start().await.expect("nats-server starts")?;
    let db = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", db.path().join("cluster.sqlite").display());
    let store = Store::open(&database).await.expect("store");
    store.migrate().await.expect("migrate");
    store
        .insert_station(&support::station(STATION), &support::key(STATION), now())
        .await
        .expect("station");
    let gateway = RunningGateway::start(options(&nats, &database, Some(PARTITIONS)).await)
        .await
        .expect("gateway starts");
    let station = TestStation::udp(STATION, 7, gateway.udp).await;
    Some(Cluster {
        nats,
        gateway: Some(gateway),
        station,
        _db: db,
        database,
    })
}

fn now() -> i64 {
    tagwatch_model::time::now_ms()
}

/// Every message in the frames stream: (subject, message id, payload).
async fn stored(nats: &NatsServer) -> Vec<(String, String, bytes::Bytes)> {
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let stream = jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await
        .expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut messages = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        messages.push((message.subject.to_string(), id, message.payload));
    }
    messages
}

fn tags_of(part: &Part) -> Vec<u32> {
    match &part.frame.body {
        Body::Detections(records) => records.iter().map(|r| r.tag.0).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn a_frame_is_stored_once_per_partition_then_accepted_and_a_resend_is_duplicate() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let tags: Vec<u32> = (1..=40).collect();
    let frame = cluster.station.detections(1, now(), &tags);
    assert_eq!(cluster.station.exchange(&frame).await, AckStatus::Accepted);

    let messages = stored(&cluster.nats).await;
    let partitions: BTreeSet<u16> = tags
        .iter()
        .map(|&t| Groups::default().partition(TagId(t), PARTITIONS))
        .chain([station_partition(StationId(STATION), PARTITIONS)])
        .collect();
    assert_eq!(
        messages.len(),
        partitions.len(),
        "one part per partition present, and the station's"
    );
    let mut seen = Vec::new();
    for (subject, id, payload) in &messages {
        let partition: u16 = subject
            .strip_prefix("tw.part.")
            .and_then(|p| p.parse().ok())
            .expect("a partition subject");
        assert_eq!(id, &format!("{STATION}.7.1.{partition}"));
        let part = Part::decode(partition, payload).expect("a part decodes");
        assert_eq!(part.frame.key(), frame.key());
        for tag in tags_of(&part) {
            assert_eq!(
                Groups::default().partition(TagId(tag), PARTITIONS),
                partition
            );
            seen.push(tag);
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, tags, "every detection in exactly one part");

    assert_eq!(cluster.station.exchange(&frame).await, AckStatus::Duplicate);
    assert_eq!(
        stored(&cluster.nats).await.len(),
        messages.len(),
        "nothing stored twice"
    );
    // A frame that heard no tag still tells the station's partition the station is alive.
    let empty = cluster.station.detections(2, now(), &[]);
    assert_eq!(cluster.station.exchange(&empty).await, AckStatus::Accepted);
    let after = stored(&cluster.nats).await;
    assert_eq!(after.len(), messages.len() + 1);
    let partition = station_partition(StationId(STATION), PARTITIONS);
    assert_eq!(
        after[messages.len()].1,
        format!("{STATION}.7.2.{partition}")
    );
}

#[tokio::test]
async fn frames_streamed_over_tcp_are_stored_in_order_and_acknowledged_on_the_connection() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let gateway = cluster.gateway.as_ref().expect("up");
    let mut stream = tokio::net::TcpStream::connect(gateway.tcp)
        .await
        .expect("connect");
    let station = &cluster.station;
    let mut bytes = Vec::new();
    for seq in 1..=5 {
        let frame = station.detections(seq, now(), &[seq, 100 + seq, 200 + seq]);
        bytes.extend_from_slice(&wire::encode(&frame, &station.key).expect("encode"));
    }
    stream.write_all(&bytes).await.expect("write");
    let ack_len = wire::HEADER_LEN + 1 + wire::MAC_LEN;
    let mut acks = vec![0u8; ack_len * 5];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut acks))
        .await
        .expect("ACKs in time")
        .expect("read");
    let mut seqs: Vec<u32> = acks
        .chunks(ack_len)
        .map(|chunk| {
            let ack = wire::decode_datagram(chunk, &station.key, 1024).expect("an ACK");
            assert_eq!(ack.body, Body::Ack(AckStatus::Accepted));
            ack.seq
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    // Within each partition, the parts are in the order the station sent its frames.
    let mut last_seq_of: std::collections::HashMap<String, u32> = Default::default();
    for (subject, id, _) in stored(&cluster.nats).await {
        let seq: u32 = id
            .split('.')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .expect("seq");
        if let Some(&before) = last_seq_of.get(&subject) {
            assert!(seq > before, "{subject}: {seq} after {before}");
        }
        last_seq_of.insert(subject, seq);
    }
}

#[tokio::test]
async fn a_forged_frame_gets_no_answer_and_nothing_is_published() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let mut forger = TestStation::udp(STATION, 7, cluster.gateway.as_ref().expect("up").udp).await;
    forger.key = support::key(STATION + 1);
    forger.send(&forger.detections(1, now(), &[5])).await;
    assert_eq!(forger.ack_within(Duration::from_millis(400)).await, None);
    let http = format!(
        "http://{}",
        cluster.gateway.as_ref().expect("up").http.expect("http")
    );
    assert_eq!(
        support::metric_at(&http, "tagwatch_frames_rejected_total").await,
        1.0,
        "the forged frame is counted"
    );
    // A status frame of the real station goes whole to the station's partition, which
    // watches its health.
    let status = cluster.station.status(2, now(), 0);
    assert_eq!(cluster.station.exchange(&status).await, AckStatus::Accepted);
    let messages = stored(&cluster.nats).await;
    assert_eq!(messages.len(), 1, "only the status frame: {messages:?}");
    let partition = station_partition(StationId(STATION), PARTITIONS);
    assert_eq!(messages[0].0, format!("tw.part.{partition}"));
    assert_eq!(messages[0].1, format!("{STATION}.7.2.{partition}"));
}

#[tokio::test]
async fn while_jetstream_is_away_the_station_is_told_busy_and_its_resend_is_stored_once() {
    let Some(mut cluster) = cluster().await else {
        return;
    };
    let first = cluster.station.detections(1, now(), &[1, 2, 3]);
    assert_eq!(cluster.station.exchange(&first).await, AckStatus::Accepted);
    let stored_before = stored(&cluster.nats).await.len();

    let health = format!(
        "http://{}/healthz",
        cluster.gateway.as_ref().expect("up").http.expect("http")
    );
    let status = |url: String| async move { reqwest::get(url).await.expect("healthz").status() };
    assert_eq!(status(health.clone()).await, 200);

    cluster.nats.kill().await;
    let second = cluster.station.detections(2, now(), &[4, 5, 6, 7, 8, 9]);
    assert_eq!(cluster.station.exchange(&second).await, AckStatus::Busy);
    assert_eq!(
        status(health.clone()).await,
        503,
        "unhealthy while NATS is away"
    );

    // Back: the station resends (as its firmware does after a BUSY) until it is stored.
    cluster
        .nats
        .restart()
        .await
        .expect("nats-server starts again");
    let mut answer = AckStatus::Busy;
    for _ in 0..40 {
        answer = cluster.station.exchange(&second).await;
        if answer != AckStatus::Busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ACCEPTED, or DUPLICATE when the publish refused as BUSY reached JetStream after all
    // (the client sends what it buffered once it reconnects): stored either way.
    assert!(
        matches!(answer, AckStatus::Accepted | AckStatus::Duplicate),
        "stored once NATS is back: {answer:?}"
    );
    assert_eq!(status(health).await, 200, "healthy again");
    let parts = stored(&cluster.nats).await.len() - stored_before;
    let expected: BTreeSet<u16> = [4, 5, 6, 7, 8, 9]
        .iter()
        .map(|&t| Groups::default().partition(TagId(t), PARTITIONS))
        .chain([station_partition(StationId(STATION), PARTITIONS)])
        .collect();
    assert_eq!(parts, expected.len(), "each part of the resent frame once");
    if let Some(gateway) = cluster.gateway.take() {
        gateway.stop().await;
    }
}

#[tokio::test]
async fn the_partition_count_is_the_one_the_cluster_was_created_with() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let other = RunningGateway::start(options(&cluster.nats, &cluster.database, Some(16)).await)
        .await
        .expect_err("another count is refused");
    let error = other.downcast::<BusError>().expect("a bus error");
    assert!(
        matches!(
            error,
            BusError::Partitions {
                existing: PARTITIONS,
                asked: 16
            }
        ),
        "{error}"
    );
    for bad in [0, 1_025] {
        let refused =
            RunningGateway::start(options(&cluster.nats, &cluster.database, Some(bad)).await)
                .await
                .expect_err("out of range");
        let error = refused.downcast::<BusError>().expect("a bus error");
        assert!(
            matches!(error, BusError::PartitionCount(n) if n == bad),
            "{error}"
        );
        assert!(error.to_string().contains("1..=1024"), "{error}");
    }
    let joining = RunningGateway::start(options(&cluster.nats, &cluster.database, None).await)
        .await
        .expect("a gateway that asks nothing joins");
    assert_eq!(joining.partitions, PARTITIONS);
    joining.stop().await;
}
