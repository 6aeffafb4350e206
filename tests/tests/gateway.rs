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

/// A frame with an invalid record (zero reads) from an authenticated station.
fn invalid(station: &TestStation, seq: u32) -> Frame {
    let mut frame = station.detections(seq, now(), &[500]);
    frame.body = Body::Detections(vec![Record {
        tag: TagId(500),
        age_ms: 0,
        rssi: -50,
        reads: 0,
        tag_flags: 0,
        antenna: 1,
    }]);
    frame
}

#[tokio::test]
async fn a_rejected_frame_settles_its_number_so_the_session_goes_on() {
    let (mut server, station) = setup().await;
    assert_eq!(
        station.exchange(&invalid(&station, 1)).await,
        AckStatus::Rejected
    );
    assert_eq!(
        station
            .exchange(&station.detections(2, now(), &[500]))
            .await,
        AckStatus::Accepted
    );
    // The session's window starts after the rejected frame: 4,096 frames on, a frame is
    // applied, not told BUSY for good (a rejected frame used to leave a gap nothing filled).
    let far = station.detections(2 + 4_096, now(), &[500]);
    assert_eq!(station.exchange(&far).await, AckStatus::Accepted);
    // A resend of the rejected frame gets the same answer, and nothing of it is stored.
    assert_eq!(
        station.exchange(&invalid(&station, 1)).await,
        AckStatus::Rejected
    );
    assert_eq!(server.metric("tagwatch_frames_applied_total").await, 2.0);
    // The settlement is committed: it holds across a restart.
    server.restart().await;
    let station = TestStation::udp(1001, 7, server.udp()).await;
    assert_eq!(
        station.exchange(&invalid(&station, 1)).await,
        AckStatus::Rejected
    );
    assert_eq!(station.exchange(&far).await, AckStatus::Duplicate);
    let next = station.detections(3, now(), &[500]);
    assert_eq!(station.exchange(&next).await, AckStatus::Accepted);
}

/// The next ACK on a TCP connection, within 5 s, verified with the station's key.
async fn tcp_ack(stream: &mut TcpStream, station: &TestStation) -> Frame {
    let mut ack = vec![0u8; wire::HEADER_LEN + 1 + wire::MAC_LEN];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut ack))
        .await
        .expect("an ACK in time")
        .expect("read");
    wire::decode_datagram(&ack, &station.key, 1024).expect("ack")
}

/// A TCP connection whose receive buffer is small, so that ACKs back up when it does not read.
async fn tcp_small_receive_buffer(server: &TestServer) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket.connect(server.tcp()).await.expect("connect")
}

#[tokio::test]
async fn tcp_a_backlog_sent_at_once_gets_every_ack_even_when_the_station_reads_late() {
    let (server, station) = setup().await;
    let stream = tcp_small_receive_buffer(&server).await;
    let (mut read, mut write) = stream.into_split();
    const FRAMES: u32 = 4_096;
    let mut backlog = Vec::new();
    for seq in 1..=FRAMES {
        backlog.extend_from_slice(
            &wire::encode(&station.detections(seq, now(), &[500]), &station.key).expect("encode"),
        );
    }
    // The whole backlog in one write, while the station reads nothing for a second: the
    // server must hold back (stop reading frames), not drop ACKs.
    let writer = tokio::spawn(async move {
        write.write_all(&backlog).await.expect("write the backlog");
        write
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ack_len = wire::HEADER_LEN + 1 + wire::MAC_LEN;
    let mut acks = vec![0u8; ack_len * FRAMES as usize];
    tokio::time::timeout(Duration::from_secs(20), read.read_exact(&mut acks))
        .await
        .expect("every ACK within 20 s")
        .expect("read");
    let mut seqs = Vec::new();
    for chunk in acks.chunks(ack_len) {
        let ack = wire::decode_datagram(chunk, &station.key, 1024).expect("ack");
        assert_eq!(ack.body, Body::Ack(AckStatus::Accepted));
        seqs.push(ack.seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), FRAMES as usize, "one ACK per frame");
    let _write = writer.await.expect("writer");
    assert_eq!(
        server
            .series("tagwatch_acks_sent_total{status=\"dropped\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn tcp_one_source_cannot_take_every_slot() {
    let server = TestServer::start_with(|c| c.stations.tcp_connections_per_source = 4).await;
    provision(&server, 1001, 500).await;
    // Authenticated stations do not count against their address (stations behind one NAT).
    let station = TestStation::udp(1001, 7, server.udp()).await;
    let mut stations = Vec::new();
    for seq in 1..=6 {
        let mut stream = tcp(&server).await;
        let frame =
            wire::encode(&station.detections(seq, now(), &[500]), &station.key).expect("encode");
        stream.write_all(&frame).await.expect("write");
        tcp_ack(&mut stream, &station).await;
        stations.push(stream);
    }
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(tcp(&server).await);
    }
    let mut fifth = tcp(&server).await;
    assert!(
        closed_within(&mut fifth, Duration::from_secs(2)).await,
        "a fifth unauthenticated connection from the same address is closed at once"
    );
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"too_many_connections_from_source\"}")
            .await,
        1.0
    );
    // A station at another address is still served.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let mut stream = socket.connect(server.tcp()).await.expect("connect");
    let frame = wire::encode(&station.detections(7, now(), &[500]), &station.key).expect("encode");
    stream.write_all(&frame).await.expect("write");
    let ack = tcp_ack(&mut stream, &station).await;
    assert_eq!(ack.body, Body::Ack(AckStatus::Accepted));
    drop((idle, stations));
}

#[tokio::test]
async fn tcp_a_connection_that_never_authenticates_is_closed_within_seconds() {
    let server =
        TestServer::start_with(|c| c.stations.tcp_auth_timeout = Duration::from_secs(1)).await;
    provision(&server, 1001, 500).await;
    let station = TestStation::udp(1001, 7, server.udp()).await;
    let mut silent = tcp(&server).await;
    let mut authenticated = tcp(&server).await;
    let frame = wire::encode(&station.detections(1, now(), &[500]), &station.key).expect("encode");
    authenticated.write_all(&frame).await.expect("write");
    let started = std::time::Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);
    assert!(started.elapsed() < Duration::from_secs(4));
    // The station that sent a valid frame keeps its connection past the deadline (reading
    // its ACK drains it; the connection stays open).
    assert!(!closed_within(&mut authenticated, Duration::from_millis(1_500)).await);
    let frame = wire::encode(&station.detections(2, now(), &[500]), &station.key).expect("encode");
    authenticated.write_all(&frame).await.expect("still open");
    tcp_ack(&mut authenticated, &station).await;
    assert_eq!(
        server
            .series("tagwatch_frames_rejected_total{reason=\"tcp_auth_timeout\"}")
            .await,
        1.0
    );
}
