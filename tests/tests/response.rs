//! The police response to a hit, as officers and dispatchers do it through the API: patrol
//! units report where they are, an alert lists the nearest available ones, an officer accepts
//! or rejects it with a reason, and a dispatcher sends a unit, which is then busy.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use support::{create_user, get, login, post, provision, station, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::now_ms;

/// A server with a stolen-vehicle alert (tag 321 heard at station 1001), officer bob, dispatcher
/// carol and owner alice. Returns the alert's seq.
async fn hit() -> (TestServer, i64, String, String, String) {
    let server = TestServer::start().await;
    provision(&server, 1001, 321).await;
    for (user, role) in [
        ("bob", "officer"),
        ("carol", "dispatcher"),
        ("alice", "owner"),
    ] {
        create_user(&server, user, role).await;
    }
    let (status, _) = post(
        &server,
        "/api/v1/vehicles/321/theft",
        TOKEN,
        json!({"note": "gone"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let station = TestStation::udp(1001, 1, server.udp()).await;
    let frame = station.detections(1, now_ms(), &[321]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let (_, alerts) = get(&server, "/api/v1/alerts", TOKEN).await;
    let seq = alerts["alerts"][0]["seq"].as_i64().expect("an alert");
    let (bob, carol, alice) = (
        login(&server, "bob").await,
        login(&server, "carol").await,
        login(&server, "alice").await,
    );
    (server, seq, bob, carol, alice)
}

async fn report(server: &TestServer, token: &str, unit: &str, east_m: f64, available: bool) {
    let at = station(1001).position;
    let body = json!({
        "unit": unit, "lat": at.lat, "lon": at.lon + east_m / 102_000.0, "available": available,
    });
    let (status, answer) = post(server, "/api/v1/patrol/position", token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn unit_names(alert: &Value) -> Vec<&str> {
    alert["nearest_units"]
        .as_array()
        .expect("nearest_units")
        .iter()
        .map(|u| u["unit"].as_str().expect("unit"))
        .collect()
}

#[tokio::test]
async fn an_alert_lists_the_nearest_free_units_and_keeps_every_decision() {
    let (server, seq, bob, carol, alice) = hit().await;
    report(&server, &bob, "P-7", 3_000.0, true).await;
    report(&server, &bob, "P-12", 400.0, true).await;
    report(&server, &carol, "P-3", 100.0, false).await;
    let path = format!("/api/v1/alerts/{seq}");
    let (status, alert) = get(&server, &path, &bob).await;
    assert_eq!(status, StatusCode::OK, "{alert}");
    assert_eq!(
        (alert["status"].clone(), alert["tag"].clone()),
        (json!("open"), json!(321))
    );
    assert_eq!(
        unit_names(&alert),
        ["P-12", "P-7"],
        "nearest first, busy P-3 left out"
    );
    let d = alert["nearest_units"][0]["distance_m"]
        .as_f64()
        .expect("distance");
    assert!((350.0..450.0).contains(&d), "{d}");

    let (status, accepted) = post(
        &server,
        &format!("{path}/accept"),
        &bob,
        json!({"reason": "plate matches"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");
    // Officers decide; only dispatchers send units.
    let send = json!({"unit": "P-12", "note": "intercept at the bridge"});
    let (status, _) = post(&server, &format!("{path}/dispatch"), &bob, send.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, sent) = post(&server, &format!("{path}/dispatch"), &carol, send.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(
        (sent["action"].clone(), sent["unit"].clone()),
        (json!("dispatched"), json!("P-12"))
    );
    let (status, _) = post(&server, &format!("{path}/dispatch"), &carol, send).await;
    assert_eq!(status, StatusCode::CONFLICT, "P-12 is busy now");

    let (_, alert) = get(&server, &path, &carol).await;
    assert_eq!(alert["status"], "accepted");
    assert_eq!(unit_names(&alert), ["P-7"]);
    let actions: Vec<(&str, &str)> = alert["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().expect("action"),
                a["by"].as_str().expect("by"),
            )
        })
        .collect();
    assert_eq!(actions, [("accepted", "bob"), ("dispatched", "carol")]);

    // A change of mind is a new entry, and the status follows the latest decision.
    let (status, _) = post(
        &server,
        &format!("{path}/reject"),
        &carol,
        json!({"reason": "owner was driving"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, alert) = get(&server, &path, &bob).await;
    assert_eq!(
        (
            alert["status"].clone(),
            alert["actions"].as_array().map(Vec::len)
        ),
        (json!("rejected"), Some(3))
    );
    // A false hit frees the unit sent to it.
    assert_eq!(unit_names(&alert), ["P-12", "P-7"], "P-12 is free again");

    // Owners do none of this.
    let (status, _) = get(&server, &path, &alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &server,
        "/api/v1/patrol/position",
        &alice,
        json!({"unit": "X", "lat": 1.0, "lon": 1.0}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, units) = get(&server, "/api/v1/patrol/units", &bob).await;
    assert_eq!(
        (status, units["units"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(3))
    );
}

#[tokio::test]
async fn each_bad_field_of_a_response_is_named() {
    let (server, seq, bob, carol, _) = hit().await;
    report(&server, &bob, "P-1", 10.0, true).await;
    let path = format!("/api/v1/alerts/{seq}");
    let cases = [
        (format!("{path}/accept"), json!({"reason": "  "}), "reason"),
        (
            format!("{path}/reject"),
            json!({"reason": "x".repeat(201)}),
            "reason",
        ),
        (
            "/api/v1/alerts/abc/accept".to_owned(),
            json!({"reason": "ok"}),
            "seq",
        ),
        (format!("{path}/dispatch"), json!({"unit": "P-404"}), "unit"),
        (
            format!("{path}/dispatch"),
            json!({"unit": "P-1; DROP"}),
            "unit",
        ),
        (
            "/api/v1/patrol/position".to_owned(),
            json!({"unit": "P-1", "lat": 91.0, "lon": 0.0}),
            "lat",
        ),
        (
            "/api/v1/patrol/position".to_owned(),
            json!({"unit": "", "lat": 1.0, "lon": 0.0}),
            "unit",
        ),
    ];
    for (path, body, field) in cases {
        let (status, answer) = post(&server, &path, &carol, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{path} {body}: {answer}");
    }
    let (status, _) = post(
        &server,
        "/api/v1/alerts/999999/accept",
        &bob,
        json!({"reason": "ok"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&server, "/api/v1/alerts/999999", &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn units_are_ranked_from_where_the_vehicle_is_now() {
    let (server, seq, bob, _, _) = hit().await;
    // Tag 321 was alerted at 1001; since then it has been heard 1.2 km east, by a station there.
    let east = 1_200.0;
    let at = station(1001).position;
    let body = json!({
        "id": 2001, "name": "East gate", "lat": at.lat, "lon": at.lon + east / 102_000.0,
        "key": support::key(2001).to_hex(),
    });
    let (status, created) = post(&server, "/api/v1/stations", TOKEN, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let gate = TestStation::udp(2001, 1, server.udp()).await;
    // 100 s later (12 m/s: a plausible ride, not a clone).
    let frame = gate.detections(1, now_ms() + 100_000, &[321]);
    assert_eq!(gate.exchange(&frame).await, AckStatus::Accepted);
    report(&server, &bob, "P-near-alert", 0.0, true).await;
    report(&server, &bob, "P-near-vehicle", east, true).await;
    let (_, alert) = get(&server, &format!("/api/v1/alerts/{seq}"), &bob).await;
    assert_eq!(alert["station"], 1001, "the alert is where it was raised");
    assert_eq!(
        unit_names(&alert),
        ["P-near-vehicle", "P-near-alert"],
        "{alert}"
    );
}

/// An alert is on the live stream before the flush that stores it (alerts go first): an
/// officer who opens it at once, and a dispatcher who sends a unit, must not be told "no
/// alert".
#[tokio::test]
async fn an_alert_opened_the_moment_it_arrives_is_found_before_it_is_stored() {
    let server =
        TestServer::start_with(|c| c.store.flush_interval = Duration::from_millis(5_000)).await;
    provision(&server, 1001, 321).await;
    create_user(&server, "carol", "dispatcher").await;
    let carol = login(&server, "carol").await;
    let theft = json!({"note": "gone"});
    let (status, _) = post(&server, "/api/v1/vehicles/321/theft", TOKEN, theft).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut live = support::open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let station = TestStation::udp(1001, 1, server.udp()).await;
    station.send(&station.detections(1, now_ms(), &[321])).await;
    let alert = support::next_alert_within(&mut live, std::time::Duration::from_secs(5))
        .await
        .expect("the alert, live");
    let seq = alert["seq"].as_i64().expect("seq");
    assert!(
        server.store().alert(seq).await.expect("store").is_none(),
        "not stored yet (the flush waits 5 s)"
    );
    let (status, file) = get(&server, &format!("/api/v1/alerts/{seq}"), TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["tag"], 321);
    report(&server, &carol, "P-1", 100.0, true).await;
    let path = format!("/api/v1/alerts/{seq}/dispatch");
    let (status, sent) = post(&server, &path, &carol, json!({"unit": "P-1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
}
