//! What an officer is told must be true: hand-built scenarios with exact answers, sent to the
//! real server as stations would and read back as an officer would.

mod support;

use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use support::{client, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::{from_rfc3339, now_ms};

async fn get(server: &TestServer, path: &str) -> (reqwest::StatusCode, Value) {
    support::get(server, path, TOKEN).await
}

async fn report_theft(server: &TestServer, tag: u32) {
    let note = serde_json::json!({"note": "taken from outside the market"});
    let path = format!("/api/v1/vehicles/{tag}/theft");
    assert_eq!(support::post(server, &path, TOKEN, note).await.0, 201);
}

/// The next alert on `events` about `tag`.
async fn alert_about(events: &mut support::Events, tag: u32) -> Value {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an alert within 5 s")
            .expect("stream open")
            .expect("well-formed event");
        if event.event == "alert" {
            let alert: Value = serde_json::from_str(&event.data).expect("json");
            if alert["tag"] == tag {
                return alert;
            }
        }
    }
}

/// `seen_at` of `tag`'s location, in Unix ms (it must be RFC 3339).
async fn located_at(server: &TestServer, tag: u32) -> (u64, i64) {
    let (status, location) = get(
        server,
        &format!("/api/v1/vehicles/{tag}/location?purpose=case%20C-16"),
    )
    .await;
    assert_eq!(status, 200, "{location}");
    let seen = location["seen_at"].as_str().expect("seen_at is text");
    let seen_ms = from_rfc3339(seen).unwrap_or_else(|_| panic!("not RFC 3339: {seen}"));
    (location["station"].as_u64().expect("station"), seen_ms)
}

#[tokio::test]
async fn a_station_clock_far_ahead_moves_nobody_elses_time() {
    let server = TestServer::start().await;
    for (station, tag) in [(1001, 1), (1002, 2), (1003, 3), (1004, 4)] {
        provision(&server, station, tag).await;
    }
    report_theft(&server, 2).await;
    report_theft(&server, 3).await;
    let mut live = support::open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let now = now_ms();
    let (good, ahead, third, broken) = (
        TestStation::udp(1001, 1, server.udp()).await,
        TestStation::udp(1002, 1, server.udp()).await,
        TestStation::udp(1003, 1, server.udp()).await,
        TestStation::udp(1004, 1, server.udp()).await,
    );
    // Tag 3 (stolen) is heard now at 1003: raised at once.
    assert_eq!(
        third.exchange(&third.detections(1, now, &[3])).await,
        AckStatus::Accepted
    );
    assert_eq!(alert_about(&mut live, 3).await["station"], 1003);
    // Station 1002's clock runs ten minutes ahead; it hears the stolen tag 2.
    assert_eq!(
        ahead
            .exchange(&ahead.detections(1, now + 600_000, &[2]))
            .await,
        AckStatus::Accepted
    );
    // The sighting is alerted, at the time the server can trust, saying it was moved.
    let alert = alert_about(&mut live, 2).await;
    let seen = from_rfc3339(alert["seen_at"].as_str().expect("seen_at")).expect("RFC 3339");
    assert!(
        (now..=now_ms()).contains(&seen),
        "placed when it arrived, not ten minutes ahead: {alert}"
    );
    let moved = alert["detail"]["clock_corrected_s"]
        .as_f64()
        .expect("the alert says its time was corrected");
    assert!((595.0..=600.0).contains(&moved), "{moved}");
    let (station, seen) = located_at(&server, 2).await;
    assert_eq!(station, 1002);
    assert!(seen <= now_ms(), "tag 2 is not placed in the future");

    // Everyone else's time goes on by the server's clock: tag 1 moves from 1001 to 1003.
    good.exchange(&good.detections(2, now - 40_000, &[1])).await;
    third.exchange(&third.detections(2, now_ms(), &[1])).await;
    let (station, _) = located_at(&server, 1).await;
    assert_eq!(station, 1003, "tag 1's location follows it");
    let (status, track) = get(&server, "/api/v1/vehicles/1/track?purpose=case%20C-16").await;
    assert_eq!(status, 200);
    assert_eq!(
        track["features"].as_array().map(Vec::len),
        Some(2),
        "{track}"
    );
    // Tag 3, heard seconds ago, is not "dark" for ten minutes.
    let (status, dens) = get(
        &server,
        "/api/v1/dens?dark_minutes=5&min_tags=1&purpose=case%20C-16",
    )
    .await;
    assert_eq!(status, 200, "{dens}");
    assert_eq!(dens["dens"], serde_json::json!([]), "{dens}");

    // A frame stamped with the largest time the wire allows: placed now, written as RFC 3339.
    let mut frame = broken.detections(1, 0, &[4]);
    frame.time_ms = u64::MAX;
    assert_eq!(broken.exchange(&frame).await, AckStatus::Accepted);
    let (station, seen) = located_at(&server, 4).await;
    assert_eq!(station, 1004);
    assert!((now..=now_ms()).contains(&seen), "{seen}");
}

#[tokio::test]
async fn a_station_clock_behind_is_put_right_once_a_status_measures_it() {
    let server = TestServer::start().await;
    provision(&server, 1005, 5).await;
    report_theft(&server, 5).await;
    let mut live = support::open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let behind = TestStation::udp(1005, 1, server.udp()).await;
    // Ten minutes behind: its heartbeat, sent with nothing queued, says so.
    let now = now_ms();
    assert_eq!(
        behind.exchange(&behind.status(1, now - 600_000, 0)).await,
        AckStatus::Accepted
    );
    // Its sighting of the stolen tag 5 is of now, not ten minutes ago (and not "late").
    behind
        .exchange(&behind.detections(2, now_ms() - 600_000, &[5]))
        .await;
    let alert = alert_about(&mut live, 5).await;
    let seen = from_rfc3339(alert["seen_at"].as_str().expect("seen_at")).expect("RFC 3339");
    assert!((now..=now_ms()).contains(&seen), "{alert}");
    assert_eq!(alert["late"], false, "{alert}");
    let moved = alert["detail"]["clock_corrected_s"]
        .as_f64()
        .expect("moved");
    assert!((-600.5..=-599.0).contains(&moved), "{moved}");
}

#[tokio::test]
async fn a_theft_reported_without_a_time_alerts_the_sighting_just_before_it() {
    let server = TestServer::start().await;
    provision(&server, 1006, 6).await;
    provision(&server, 1007, 7).await;
    let mut live = support::open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let station = TestStation::udp(1006, 1, server.udp()).await;
    let seen = now_ms() - 5_000;
    station
        .exchange(&station.detections(1, seen, &[6, 7]))
        .await;
    // Tag 7's owner armed it after that sighting: they had it then.
    let armed = client()
        .post(server.url("/api/v1/vehicles/7/arm"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("arm");
    assert_eq!(armed.status(), 200);
    report_theft(&server, 7).await;
    report_theft(&server, 6).await;
    // Tag 6, never armed: the last 24 hours are looked back over, and the sighting five seconds
    // before the report is alerted (tag 7's, from before it was armed, is not).
    let alert = alert_about(&mut live, 6).await;
    assert_eq!(alert["kind"], "stolen_sighting");
    assert_eq!(alert["detail"]["look_back"], true, "{alert}");
    assert_eq!(
        alert["seen_at"],
        tagwatch_model::time::to_rfc3339(seen),
        "{alert}"
    );
    let (_, alerts) = get(&server, "/api/v1/alerts?tag=7&purpose=case%20C-16").await;
    assert_eq!(alerts["alerts"], serde_json::json!([]), "{alerts}");
}

/// Station 1002 is a patrol car's reader, provisioned at its precinct. The car drives 5 km north
/// and hears tag 2 there: every answer (location, track, radius, area from memory and from the
/// store, the station list) places the read where the car was, none at the precinct.
#[tokio::test]
async fn every_answer_places_a_mobile_read_where_the_reader_was() {
    let server = TestServer::start().await;
    provision(&server, 1001, 1).await;
    provision(&server, 1002, 2).await;
    let precinct = support::station(1002).position;
    let car = tagwatch_model::GeoPoint {
        lat: precinct.lat + 0.045,
        lon: precinct.lon,
    };
    let reader = TestStation::udp(1002, 1, server.udp()).await;
    let now = now_ms();
    let mut frame = reader.detections(1, now, &[2]);
    frame.position = Some(tagwatch_gateway::wire::Position {
        lat_e7: (car.lat * 1e7).round() as i32,
        lon_e7: (car.lon * 1e7).round() as i32,
    });
    assert_eq!(reader.exchange(&frame).await, AckStatus::Accepted);
    let near = |p: tagwatch_model::GeoPoint| {
        (p.lat - car.lat).abs() < 1e-6 && (p.lon - car.lon).abs() < 1e-6
    };
    let point = |lat: &Value, lon: &Value| tagwatch_model::GeoPoint {
        lat: lat.as_f64().expect("lat"),
        lon: lon.as_f64().expect("lon"),
    };

    let (_, location) = get(&server, "/api/v1/vehicles/2/location?purpose=case%20C-3").await;
    assert!(
        near(point(&location["lat"], &location["lon"])),
        "{location}"
    );
    let (_, track) = get(&server, "/api/v1/vehicles/2/track?purpose=case%20C-3").await;
    let features = track["features"].as_array().expect("features");
    assert_eq!(features.len(), 1, "{track}");
    let xy = &features[0]["geometry"]["coordinates"];
    assert!(near(point(&xy[1], &xy[0])), "{track}");

    let radius = |p: tagwatch_model::GeoPoint| {
        format!(
            "/api/v1/tags/near?lat={}&lon={}&radius_m=500&purpose=case%20C-3",
            p.lat, p.lon
        )
    };
    let tags = |body: &Value| -> Vec<u64> {
        body["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t["tag"].as_u64().expect("tag"))
            .collect()
    };
    assert_eq!(tags(&get(&server, &radius(car)).await.1), vec![2]);
    assert_eq!(
        tags(&get(&server, &radius(precinct)).await.1),
        Vec::<u64>::new()
    );

    let through = |p: tagwatch_model::GeoPoint, from_ms: i64| {
        let (from, to) = (
            tagwatch_model::time::to_rfc3339(from_ms),
            tagwatch_model::time::to_rfc3339(now + 60_000),
        );
        format!(
            "/api/v1/tags/through?south={}&west={}&north={}&east={}&from={from}&to={to}&purpose=case%20C-3",
            p.lat - 0.002, p.lon - 0.002, p.lat + 0.002, p.lon + 0.002
        )
    };
    // From memory (from the first detection on), then from the store (a window before the tracker's first
    // detection); the visit reaches the store with the next flush.
    for (from, source) in [(now, "memory"), (now - 7_200_000, "store")] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = get(&server, &through(car, from)).await;
            assert_eq!(
                (status.as_u16(), body["source"].as_str()),
                (200, Some(source)),
                "{body}"
            );
            if tags(&body) == vec![2] {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{source}: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, body) = get(&server, &through(precinct, from)).await;
        assert_eq!(tags(&body), Vec::<u64>::new(), "{source}: {body}");
    }

    let (_, list) = get(&server, "/api/v1/stations").await;
    let stations = list["stations"].as_array().expect("stations");
    let car_reader = stations.iter().find(|s| s["id"] == 1002).expect("1002");
    assert_eq!(car_reader["mobile"], true, "{list}");
    assert!(
        near(point(&car_reader["lat"], &car_reader["lon"])),
        "{list}"
    );
    assert_eq!(
        car_reader["position_at"],
        tagwatch_model::time::to_rfc3339(now)
    );
    let fixed = stations.iter().find(|s| s["id"] == 1001).expect("1001");
    assert_eq!(
        (fixed["mobile"].clone(), fixed["position_at"].clone()),
        (Value::Bool(false), Value::Null)
    );

    // After a restart, the stored track and last location still place it where the car was.
    let mut server = server;
    server.restart().await;
    let (_, track) = get(&server, "/api/v1/vehicles/2/track?purpose=case%20C-3").await;
    let xy = &track["features"][0]["geometry"]["coordinates"];
    assert!(near(point(&xy[1], &xy[0])), "{track}");
    let (_, list) = get(&server, "/api/v1/stations").await;
    let car_reader = list["stations"]
        .as_array()
        .expect("stations")
        .iter()
        .find(|s| s["id"] == 1002)
        .cloned()
        .expect("1002");
    assert!(
        near(point(&car_reader["lat"], &car_reader["lon"])),
        "{list}"
    );
}
