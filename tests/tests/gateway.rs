//! The gateway as a station sees it: every rejection path of the UDP and TCP servers.

mod support;

use std::time::Duration;
use support::{provision, TestServer, TestStation};
use tagwatch_gateway::wire::{self, AckStatus, Body, Frame, Record};
use tagwatch_model::{SessionId, StationId, StationKey, TagId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SILENCE: Duration = Duration::from_millis(400);

async fn setup() -> (TestServer, TestStation) {
    let server = TestServer::start().await;
    provision(&server, 1001, 500).await;
    let station = TestStation::udp(1001, 7, server.udp()).await;
    (server, station)
}

fn now() -> i64 {
    tagwatch_model::time::now_ms()
}

#[tokio::test]
async fn a_valid_frame_is_accepted_then_duplicate() {
    let (server, station) = setup().await;
    let frame = station.detections(1, now(), &[500]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    assert_eq!(station.exchange(&frame).await, AckStatus::Duplicate);
    assert_eq!(server.metric("tagwatch_frames_applied_total").await, 1.0);
    assert_eq!(server.metric("tagwatch_frames_duplicate_total").await, 1.0);
}

#[tokio::test]
async fn an_unknown_station_gets_no_answer_and_is_counted() {
    let (server, _) = setup().await;
    let stranger = TestStation::udp(4242, 1, server.udp()).await;
    stranger.send(&stranger.detections(1, now(), &[500])).await;
    assert_eq!(stranger.ack_within(SILENCE).await, None);
    let counted = server
        .series("tagwatch_frames_rejected_total{reason=\"unknown_station\"}")
        .await;
    assert_eq!(counted, 1.0);
}

#[tokio::test]
async fn a_forged_mac_gets_no_answer_and_is_counted_per_station() {
    let (server, station) = setup().await;
    let forged = wire::encode(
        &station.detections(1, now(), &[500]),
        &StationKey([0xee; 32]),
    )
    .expect("encode");
    station.send_bytes(&forged).await;
    assert_eq!(station.ack_within(SILENCE).await, None);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"mac\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .series("tagwatch_bad_mac_frames_by_station_total{station=\"1001\"}")
            .await,
        1.0
    );
    // Nothing of it was applied.
    assert_eq!(server.metric("tagwatch_frames_applied_total").await, 0.0);
}

#[tokio::test]
async fn a_datagram_that_is_not_exactly_one_frame_is_dropped_and_counted() {
    let (server, station) = setup().await;
    let mut bytes = wire::encode(&station.detections(1, now(), &[500]), &station.key)
        .expect("encode")
        .to_vec();
    bytes.push(0);
    station.send_bytes(&bytes).await;
    station.send_bytes(b"hello").await;
    station
        .send_bytes(b"TW\x09garbage-garbage-garbage-garbage")
        .await;
    assert_eq!(station.ack_within(SILENCE).await, None);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"length\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"magic\"}")
            .await,
        1.0
    );
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"version\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_authenticated_but_invalid_frame_is_rejected() {
    let (server, station) = setup().await;
    let mut frame = station.detections(1, now(), &[500]);
    frame.body = Body::Detections(vec![Record {
        tag: TagId(500),
        age_ms: 0,
        rssi: -50,
        reads: 0,
        tag_flags: 0,
        antenna: 1,
    }]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Rejected);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"zero_reads\"}")
            .await,
        1.0
    );
    // A station may not send ACKs.
    let mut ack = station.detections(2, now(), &[]);
    ack.body = Body::Ack(AckStatus::Accepted);
    assert_eq!(station.exchange(&ack).await, AckStatus::Rejected);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"unexpected_ack\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_frame_far_ahead_of_its_session_is_told_busy() {
    let (server, station) = setup().await;
    let frame = station.detections(100_000, now(), &[500]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Busy);
    assert_eq!(
        server.metric("tagwatch_frames_too_far_ahead_total").await,
        1.0
    );
    // Once the gap is filled from below, the same seq range is accepted.
    assert_eq!(
        station
            .exchange(&station.detections(1, now(), &[500]))
            .await,
        AckStatus::Accepted
    );
}

#[tokio::test]
async fn a_skewed_clock_is_flagged_but_the_frame_is_stored() {
    let (server, station) = setup().await;
    let frame = station.detections(1, now() - 3_600_000, &[500]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    assert_eq!(server.metric("tagwatch_clock_skew_frames_total").await, 1.0);
}

async fn tcp(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.tcp()).await.expect("connect")
}

/// Reads until the server closes the connection (Ok(0)) or the wait runs out.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn tcp_streams_frames_and_acks_on_the_same_connection() {
    let (server, station) = setup().await;
    let mut stream = tcp(&server).await;
    let mut bytes = Vec::new();
    for seq in 1..=3 {
        bytes.extend_from_slice(
            &wire::encode(&station.detections(seq, now(), &[500]), &station.key).expect("encode"),
        );
    }
    // Frames back to back, split at an awkward place.
    stream.write_all(&bytes[..40]).await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&bytes[40..]).await.expect("write");
    let ack_len = wire::HEADER_LEN + 1 + wire::MAC_LEN;
    let mut acks = vec![0u8; ack_len * 3];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut acks))
        .await
        .expect("acks in time")
        .expect("read");
    let mut seqs = Vec::new();
    for chunk in acks.chunks(ack_len) {
        let ack = wire::decode_datagram(chunk, &station.key, 1024).expect("ack");
        assert_eq!(ack.body, Body::Ack(AckStatus::Accepted));
        seqs.push(ack.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3]);
}

#[tokio::test]
async fn tcp_garbage_closes_the_connection() {
    let (server, _) = setup().await;
    let mut stream = tcp(&server).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
    assert_eq!(
        server.metric("tagwatch_tcp_closed_for_garbage_total").await,
        1.0
    );
}

#[tokio::test]
async fn tcp_oversized_length_closes_before_the_body_arrives() {
    let (server, station) = setup().await;
    let mut header = wire::encode(&station.detections(1, now(), &[]), &station.key)
        .expect("encode")[..wire::HEADER_LEN]
        .to_vec();
    header[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
    let mut stream = tcp(&server).await;
    stream.write_all(&header).await.expect("write");
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"too_long\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn tcp_closes_after_too_many_bad_macs_in_a_row() {
    let (server, station) = setup().await;
    let mut stream = tcp(&server).await;
    let forged =
        wire::encode(&station.detections(1, now(), &[500]), &StationKey([1; 32])).expect("encode");
    for _ in 0..16 {
        if stream.write_all(&forged).await.is_err() {
            break;
        }
    }
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"mac\"}")
            .await,
        16.0
    );
}

#[tokio::test]
async fn sessions_are_independent_after_a_reboot() {
    let (server, station) = setup().await;
    assert_eq!(
        station
            .exchange(&station.detections(1, now(), &[500]))
            .await,
        AckStatus::Accepted
    );
    let rebooted = TestStation::udp(1001, 8, server.udp()).await;
    let frame = Frame {
        session: SessionId(8),
        ..rebooted.detections(1, now(), &[500])
    };
    assert_eq!(frame.station, StationId(1001));
    assert_eq!(rebooted.exchange(&frame).await, AckStatus::Accepted);
}
