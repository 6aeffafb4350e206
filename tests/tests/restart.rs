//! The server is stopped and started again on the same store: what was acknowledged is there,
//! resent frames are answered DUPLICATE and change nothing, and open visits carry on.

mod support;

use std::time::Duration;
use support::{provision, TestServer, TestStation};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::TagId;

#[tokio::test]
async fn resent_frames_after_a_restart_are_duplicates_and_change_nothing() {
    // No checkpoint while it runs: the frames are in the journal until the server stops.
    let mut server = TestServer::start_with(|c| {
        c.store.checkpoint_interval = Some(Duration::from_millis(300_000))
    })
    .await;
    provision(&server, 1001, 900).await;
    let t0 = tagwatch_model::time::now_ms();
    let station = TestStation::udp(1001, 11, server.udp()).await;
    let frames: Vec<_> = (1..=5)
        .map(|seq| station.detections(seq, t0 + i64::from(seq) * 1_000, &[900, 901]))
        .collect();
    for frame in &frames {
        assert_eq!(station.exchange(frame).await, AckStatus::Accepted);
    }
    let journaled = server.store().journal_after(0, 100).await.expect("journal");
    assert_eq!(
        journaled.len(),
        5,
        "ACKed frames are durable in the journal"
    );
    assert!(server
        .store()
        .all_visits()
        .await
        .expect("visits")
        .is_empty());

    // Stopping writes the checkpoint: the visits, and no journal left.
    server.restart().await;
    let before = server.store().all_visits().await.expect("visits");
    assert_eq!(before.len(), 2, "one visit per tag");
    assert!(before.iter().all(|v| v.reads == 10), "{before:?}");
    assert!(server
        .store()
        .journal_after(0, 100)
        .await
        .expect("journal")
        .is_empty());

    let station = TestStation::udp(1001, 11, server.udp()).await;
    for frame in &frames {
        assert_eq!(station.exchange(frame).await, AckStatus::Duplicate);
    }
    assert!(server
        .store()
        .journal_after(0, 100)
        .await
        .expect("journal")
        .is_empty());

    // The next frame continues the open visits instead of starting new ones.
    let next = station.detections(6, t0 + 6_000, &[900]);
    assert_eq!(station.exchange(&next).await, AckStatus::Accepted);
    let store = server.stop_and_open_store().await;
    let after = store.all_visits().await.expect("visits");
    assert_eq!(after.len(), 2);
    let visit = after.iter().find(|v| v.tag == TagId(900)).expect("visit");
    assert_eq!((visit.reads, visit.last_seen_ms), (12, t0 + 6_000));
    assert_eq!(
        visit.id,
        before
            .iter()
            .find(|v| v.tag == TagId(900))
            .expect("visit")
            .id
    );
    store.close().await;
}

#[tokio::test]
async fn without_a_journal_every_acknowledged_frame_is_in_the_visits_at_once() {
    // The default on SQLite: each flush writes the visits itself.
    let mut server =
        TestServer::start_with(|c| c.store.checkpoint_interval = Some(Duration::from_millis(0)))
            .await;
    provision(&server, 1001, 900).await;
    let t0 = tagwatch_model::time::now_ms();
    let station = TestStation::udp(1001, 11, server.udp()).await;
    for seq in 1..=3 {
        let frame = station.detections(seq, t0 + i64::from(seq) * 1_000, &[900]);
        assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
        let visits = server.store().all_visits().await.expect("visits");
        assert_eq!(visits.len(), 1);
        assert_eq!(visits[0].last_seen_ms, t0 + i64::from(seq) * 1_000);
    }
    assert!(server
        .store()
        .journal_after(0, 100)
        .await
        .expect("journal")
        .is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_journal_gauge_reads_zero_only_once_the_visits_are_stored() {
    let server =
        TestServer::start_with(|c| c.store.checkpoint_interval = Some(Duration::from_millis(200)))
            .await;
    provision(&server, 1001, 900).await;
    let t0 = tagwatch_model::time::now_ms();
    let station = TestStation::udp(1001, 11, server.udp()).await;
    for seq in 1..=3 {
        let frame = station.detections(seq, t0 + i64::from(seq) * 1_000, &[900, 901]);
        assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    }
    // Nothing arrives any more: the checkpoint that covers the frames must still bring the
    // gauge to zero, and zero must mean the visits table is complete.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("tagwatch_journal_frames_pending").await > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "frames still pending after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let visits = server.store().all_visits().await.expect("visits");
    assert_eq!(visits.len(), 2, "{visits:?}");
    assert!(
        visits
            .iter()
            .all(|v| v.reads == 6 && v.last_seen_ms == t0 + 3_000),
        "{visits:?}"
    );
}
