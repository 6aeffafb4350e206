//! An officer's live alert stream: a stolen tag is heard → the alert arrives on an open SSE
//! stream; reconnecting with an older `Last-Event-ID` replays it with the same id, then goes on
//! live without a gap or a repeat.

mod support;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use std::time::Duration;
use support::{client, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

type Events = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

async fn open_stream(server: &TestServer, last_event_id: Option<&str>) -> Events {
    let mut request = client()
        .get(server.url("/api/v1/alerts/stream"))
        .bearer_auth(TOKEN);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.expect("stream opens");
    assert_eq!(response.status(), 200);
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|e| e.map_err(|e| e.to_string())),
    )
}

async fn next_alert(events: &mut Events) -> Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .expect("stream open")
            .expect("well-formed event");
        if event.event == "alert" {
            return event;
        }
    }
}

async fn no_alert_within(events: &mut Events, wait: Duration) {
    if let Ok(Some(Ok(event))) = tokio::time::timeout(wait, events.next()).await {
        assert_ne!(event.event, "alert", "unexpected alert {event:?}");
    }
}

/// Reports a theft; the owner had the vehicle until just now (no sighting before is looked back).
async fn report_theft(server: &TestServer, tag: u32) {
    let now = tagwatch_model::time::to_rfc3339(tagwatch_model::time::now_ms());
    let response = client()
        .post(server.url(&format!("/api/v1/vehicles/{tag}/theft")))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"note": "taken from the night market", "last_seen_at": now}))
        .send()
        .await
        .expect("theft");
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_stolen_tag_heard_raises_an_alert_live_and_on_resume() {
    let mut server = TestServer::start().await;
    provision(&server, 1001, 777).await;
    let station = TestStation::udp(1001, 3, server.udp()).await;
    let t0 = tagwatch_model::time::now_ms();
    // Heard before the theft: no alert.
    assert_eq!(
        station.exchange(&station.detections(1, t0, &[777])).await,
        AckStatus::Accepted
    );

    let mut live = open_stream(&server, None).await;
    report_theft(&server, 777).await;
    // Heard again, in a new visit (more than the 30 s visit gap later).
    let seen = t0 + 60_000;
    assert_eq!(
        station
            .exchange(&station.detections(2, seen, &[777, 778]))
            .await,
        AckStatus::Accepted
    );
    let event = next_alert(&mut live).await;
    let alert: serde_json::Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(alert["kind"], "stolen_sighting");
    assert_eq!(alert["tag"], 777);
    assert_eq!(alert["station"], 1001);
    let expected = support::station(1001).position;
    assert_eq!(alert["lat"].as_f64(), Some(expected.lat));
    assert_eq!(alert["lon"].as_f64(), Some(expected.lon));
    assert_eq!(alert["seen_at"], tagwatch_model::time::to_rfc3339(seen));
    assert_eq!(
        alert["late"], false,
        "heard a minute ahead of our clock is not late"
    );
    let seq: i64 = event.id.parse().expect("numeric id");
    assert_eq!(alert["seq"], seq);
    // Only one alert per visit: the same visit heard again raises nothing.
    station
        .exchange(&station.detections(3, seen + 1_000, &[777]))
        .await;
    no_alert_within(&mut live, Duration::from_millis(300)).await;

    // Reconnecting from before it replays it, with the same id and content.
    let mut resumed = open_stream(&server, Some(&(seq - 1).to_string())).await;
    let again = next_alert(&mut resumed).await;
    assert_eq!(again.id, event.id);
    assert_eq!(again.data, event.data);
    // Reconnecting from it replays nothing, and the next alert arrives live, once, on both.
    let mut caught_up = open_stream(&server, Some(&event.id)).await;
    no_alert_within(&mut caught_up, Duration::from_millis(300)).await;
    let later = seen + 120_000;
    station
        .exchange(&station.detections(4, later, &[777]))
        .await;
    for stream in [&mut live, &mut resumed, &mut caught_up] {
        let next = next_alert(stream).await;
        assert_eq!(next.id, (seq + 1).to_string());
    }

    // After a restart the stored alerts replay from the store with the same ids.
    drop((live, resumed, caught_up));
    server.restart().await;
    let mut after_restart = open_stream(&server, Some("0")).await;
    assert_eq!(next_alert(&mut after_restart).await.id, event.id);
    assert_eq!(
        next_alert(&mut after_restart).await.id,
        (seq + 1).to_string()
    );
}

/// A store that stops committing holds the frames' ACKs, not the alerts: with the ingest's batch
/// full and the writer stuck, a stolen tag's sighting still reaches the live stream; once the
/// store is back, every frame is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_holds_acks_not_alerts() {
    use sqlx::Connection;
    let server = TestServer::start_with(|c| c.ingest.max_batch_frames = 4).await;
    provision(&server, 1001, 777).await;
    let station = TestStation::udp(1001, 3, server.udp()).await;
    let mut live = open_stream(&server, None).await;
    report_theft(&server, 777).await;
    // Another connection takes SQLite's write lock: the server's commits wait for it.
    let url = format!("sqlite://{}", server.db_path().display());
    let mut blocker = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .expect("write lock");
    let t0 = tagwatch_model::time::now_ms();
    // The first flush waits on the lock in the writer, the second in the writer's queue; the
    // next four frames fill the batch (four frames).
    for seq in 1..=6 {
        station
            .send(&station.detections(seq, t0 + i64::from(seq), &[778]))
            .await;
        if seq <= 2 || seq == 6 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    station
        .send(&station.detections(7, t0 + 10, &[778, 777]))
        .await;
    let event = next_alert(&mut live).await;
    let alert: serde_json::Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(alert["kind"], "stolen_sighting");
    assert_eq!(alert["tag"], 777);
    assert!(
        station
            .ack_within(Duration::from_millis(200))
            .await
            .is_none(),
        "nothing is acknowledged while the store cannot commit"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");
    let mut acked = Vec::new();
    while acked.len() < 7 {
        let (seq, status) = station
            .ack_within(Duration::from_secs(15))
            .await
            .expect("every frame acknowledged once the store is back");
        assert_eq!(status, AckStatus::Accepted, "frame {seq}");
        acked.push(seq);
    }
    acked.sort_unstable();
    assert_eq!(acked, (1..=7).collect::<Vec<_>>());
}

/// The alert is published when the sighting is applied, the visit committed at the next flush:
/// an officer opening the alert's track in between still sees the sighting (from memory).
#[tokio::test]
async fn a_new_alerts_track_shows_its_sighting_before_the_store_commits_it() {
    // Flushes 10 s apart (the first at start): the whole test runs inside one gap.
    let server =
        TestServer::start_with(|c| c.store.flush_interval = Duration::from_millis(10_000)).await;
    provision(&server, 1001, 777).await;
    let station = TestStation::udp(1001, 3, server.udp()).await;
    let mut live = open_stream(&server, None).await;
    report_theft(&server, 777).await;
    let seen = tagwatch_model::time::now_ms();
    station.send(&station.detections(1, seen, &[777])).await;
    let alert = next_alert(&mut live).await;
    assert!(alert.data.contains("stolen_sighting"), "{}", alert.data);
    let stored = server.store().all_visits().await.expect("visits");
    assert!(stored.is_empty(), "the flush came early: {stored:?}");

    let (status, track) = support::get(
        &server,
        "/api/v1/vehicles/777/track?purpose=alert%20follow-up",
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{track}");
    let features = track["features"].as_array().expect("features");
    assert_eq!(features.len(), 1, "{track}");
    let visit = &features[0]["properties"];
    assert_eq!(visit["station"], 1001);
    assert_eq!(visit["first_seen"], tagwatch_model::time::to_rfc3339(seen));
    assert_eq!(visit["reads"], 2);
    assert_eq!(track["properties"]["truncated"], false);
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_clear_400() {
    let server = TestServer::start().await;
    let response = client()
        .get(server.url("/api/v1/alerts/stream"))
        .bearer_auth(TOKEN)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["field"], "Last-Event-ID");
}

#[tokio::test]
async fn an_alert_from_a_backlog_carries_its_own_time_and_says_it_is_late() {
    let server = TestServer::start().await;
    provision(&server, 1001, 555).await;
    report_theft(&server, 555).await;
    let mut live = open_stream(&server, None).await;
    let station = TestStation::udp(1001, 9, server.udp()).await;
    // A frame built two hours ago, arriving now (the station was cut off).
    let seen = tagwatch_model::time::now_ms() - 2 * 3_600_000;
    assert_eq!(
        station.exchange(&station.detections(1, seen, &[555])).await,
        AckStatus::Accepted
    );
    let alert: serde_json::Value =
        serde_json::from_str(&next_alert(&mut live).await.data).expect("json");
    assert_eq!(alert["seen_at"], tagwatch_model::time::to_rfc3339(seen));
    assert_eq!(alert["late"], true);
    assert!(alert["delay_s"].as_i64().expect("delay") >= 7_200);
}

#[tokio::test]
async fn a_held_panic_button_reaches_the_live_stream() {
    let server = TestServer::start().await;
    provision(&server, 1001, 321).await;
    let mut live = open_stream(&server, None).await;
    let station = TestStation::udp(1001, 2, server.udp()).await;
    let mut frame = station.detections(1, tagwatch_model::time::now_ms(), &[321]);
    if let tagwatch_gateway::wire::Body::Detections(records) = &mut frame.body {
        records[0].tag_flags = tagwatch_model::tag_flags::PANIC | tagwatch_model::tag_flags::MOVING;
    }
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let alert: serde_json::Value =
        serde_json::from_str(&next_alert(&mut live).await.data).expect("json");
    assert_eq!(alert["kind"], "panic");
    assert_eq!(alert["tag"], 321);
    assert_eq!(alert["station"], 1001);
}

#[tokio::test]
async fn a_stream_resumed_from_the_largest_sequence_stays_open() {
    // Found by schemathesis: resuming after the largest id the API allows, with an alert in the
    // live ring, overflowed a sequence sum and killed the stream's task.
    let server = TestServer::start().await;
    provision(&server, 1001, 556).await;
    report_theft(&server, 556).await;
    let mut live = open_stream(&server, None).await;
    let station = TestStation::udp(1001, 10, server.udp()).await;
    let seen = tagwatch_model::time::now_ms();
    station.exchange(&station.detections(1, seen, &[556])).await;
    next_alert(&mut live).await;

    let mut resumed = open_stream(&server, Some(&i64::MAX.to_string())).await;
    match tokio::time::timeout(Duration::from_millis(500), resumed.next()).await {
        Err(_) => {}
        Ok(Some(Ok(event))) => assert_ne!(event.event, "alert", "nothing is after i64::MAX"),
        Ok(other) => panic!("the stream ended: {other:?}"),
    }
}
