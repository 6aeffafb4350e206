//! The HTTP API as an administrator or officer uses it: authentication, every validation error
//! (naming its field), conflicts, unknown ids, limits, and the happy paths' shapes.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

async fn post(server: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let response = client()
        .post(server.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    let response = client()
        .get(server.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn station_body() -> Value {
    json!({"id": 1001, "name": "North gate", "lat": 23.26, "lon": 116.59, "key": "01".repeat(32)})
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let server = TestServer::start().await;
    for token in [None, Some("wrong-token-wrong-token")] {
        let mut request = client().get(server.url("/api/v1/vehicles/1/location"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // Health and metrics are open to the monitoring system.
    assert_eq!(
        reqwest::get(server.url("/healthz"))
            .await
            .expect("get")
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(server.url("/metrics"))
            .await
            .expect("get")
            .status(),
        200
    );
}

#[tokio::test]
async fn station_fields_are_validated_by_name() {
    let server = TestServer::start().await;
    let cases = [
        ("id", json!(0)),
        ("id", json!(4_294_967_296_i64)),
        ("name", json!("   ")),
        ("lat", json!(91.0)),
        ("lon", json!(-181.0)),
        ("key", json!("abc")),
        ("key", json!("zz".repeat(32))),
    ];
    for (field, value) in cases {
        let mut body = station_body();
        body[field] = value.clone();
        let (status, error) = post(&server, "/api/v1/stations", body).await;
        assert_eq!(status, 400, "{field}={value}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let mut unknown = station_body();
    unknown["colour"] = json!("red");
    let (status, error) = post(&server, "/api/v1/stations", unknown).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("colour"),
        "{error}"
    );
}

#[tokio::test]
async fn a_station_is_created_once() {
    let server = TestServer::start().await;
    let (status, body) = post(&server, "/api/v1/stations", station_body()).await;
    assert_eq!(status, 201);
    assert_eq!(body["id"], 1001);
    assert!(body.get("key").is_none(), "the key is never echoed back");
    let (status, error) = post(&server, "/api/v1/stations", station_body()).await;
    assert_eq!(status, 409);
    assert_eq!(error["error"]["code"], "conflict");
}

#[tokio::test]
async fn a_station_without_a_key_gets_one_shown_once_that_its_frames_verify_with() {
    let server = TestServer::start().await;
    let mut body = station_body();
    body.as_object_mut().expect("object").remove("key");
    let (status, created) = post(&server, "/api/v1/stations", body).await;
    assert_eq!(status, 201, "{created}");
    let hex = created["key"].as_str().expect("the generated key, once");
    let key = tagwatch_model::StationKey::from_hex(hex).expect("64 hex characters");
    let (_, listed) = get(&server, "/api/v1/stations").await;
    assert!(!listed.to_string().contains(hex), "never shown again");
    assert_eq!(
        listed["stations"][0]["last_frame_at"],
        json!(null),
        "not heard yet"
    );
    let mut station = TestStation::udp(1001, 1, server.udp()).await;
    station.key = key;
    let frame = station.detections(1, tagwatch_model::time::now_ms(), &[]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let (_, listed) = get(&server, "/api/v1/stations").await;
    assert!(
        listed["stations"][0]["last_frame_at"].is_string(),
        "{listed}"
    );
}

#[tokio::test]
async fn a_new_station_is_heard_at_once_without_a_restart() {
    let server = TestServer::start().await;
    provision(&server, 1001, 5).await;
    let station = TestStation::udp(1001, 1, server.udp()).await;
    let frame = station.detections(1, tagwatch_model::time::now_ms(), &[5]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
}

#[tokio::test]
async fn vehicles_are_validated_and_unique() {
    let server = TestServer::start().await;
    let body =
        json!({"tag": 12345678, "plate": "粤A-12345", "owner_name": "Li", "owner_phone": "1"});
    assert_eq!(post(&server, "/api/v1/vehicles", body.clone()).await.0, 201);
    assert_eq!(post(&server, "/api/v1/vehicles", body.clone()).await.0, 409);
    let mut same_plate = body.clone();
    same_plate["tag"] = json!(2);
    let (status, error) = post(&server, "/api/v1/vehicles", same_plate).await;
    assert_eq!(status, 409);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("plate"),
        "{error}"
    );
    let mut bad = body.clone();
    bad["tag"] = json!(-1);
    assert_eq!(
        post(&server, "/api/v1/vehicles", bad).await.1["error"]["field"],
        "tag"
    );
    let mut long = body;
    long["owner_name"] = json!("x".repeat(201));
    assert_eq!(
        post(&server, "/api/v1/vehicles", long).await.1["error"]["field"],
        "owner_name"
    );
    let (status, error) = post(&server, "/api/v1/vehicles", json!("not an object")).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "invalid_body");
}

#[tokio::test]
async fn theft_reports_need_a_known_vehicle_and_open_one_case() {
    let server = TestServer::start().await;
    let (status, error) = post(&server, "/api/v1/vehicles/99/theft", json!({})).await;
    assert_eq!(status, 404);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("99"));
    let (status, error) = post(&server, "/api/v1/vehicles/abc/theft", json!({})).await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("tag"))
    );
    provision(&server, 1001, 99).await;
    // An empty body is a theft report without a note.
    let response = client()
        .post(server.url("/api/v1/vehicles/99/theft"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert!(body["case_id"].as_i64().is_some());
    let (status, _) = post(
        &server,
        "/api/v1/vehicles/99/theft",
        json!({"note": "again"}),
    )
    .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn location_and_track_answer_from_the_visits() {
    let server = TestServer::start().await;
    provision(&server, 1001, 42).await;
    provision_second_station(&server).await;
    assert_eq!(
        get(&server, "/api/v1/vehicles/43/location?purpose=case-1")
            .await
            .0,
        404
    );
    let (status, error) = get(&server, "/api/v1/vehicles/42/location?purpose=case-1").await;
    assert_eq!(status, 404);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("not been heard"));

    let t0 = tagwatch_model::time::now_ms() - 600_000;
    let a = TestStation::udp(1001, 1, server.udp()).await;
    let b = TestStation::udp(1002, 1, server.udp()).await;
    assert_eq!(
        a.exchange(&a.detections(1, t0, &[42])).await,
        AckStatus::Accepted
    );
    assert_eq!(
        b.exchange(&b.detections(1, t0 + 90_000, &[42])).await,
        AckStatus::Accepted
    );

    let (status, location) = get(&server, "/api/v1/vehicles/42/location?purpose=case-1").await;
    assert_eq!(status, 200);
    assert_eq!(location["station"], 1002);
    assert_eq!(
        location["seen_at"],
        tagwatch_model::time::to_rfc3339(t0 + 90_000)
    );
    assert_eq!(
        location["lat"].as_f64(),
        Some(support::station(1002).position.lat)
    );
    // From 1001 to 1002 in 90 s: the movement the tracker estimates.
    let (p, q) = (
        support::station(1001).position,
        support::station(1002).position,
    );
    let metres =
        ((q.lat - p.lat) * 111_320.0).hypot((q.lon - p.lon) * 111_320.0 * p.lat.to_radians().cos());
    let speed = location["speed_mps"].as_f64().expect("speed");
    assert!((speed - metres / 90.0).abs() < 0.2, "{location}");
    assert!(location["heading_deg"]
        .as_f64()
        .is_some_and(|h| (0.0..360.0).contains(&h)));
    assert_eq!(
        location["placed_since"],
        tagwatch_model::time::to_rfc3339(t0 + 90_000)
    );

    let response = client()
        .get(server.url("/api/v1/vehicles/42/track?purpose=case-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/geo+json");
    let track: Value = response.json().await.expect("json");
    assert_eq!(track["type"], "FeatureCollection");
    let stations: Vec<_> = track["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["station"].as_i64().expect("station"))
        .collect();
    assert_eq!(stations, vec![1001, 1002], "in time order");
    let first = &track["features"][0]["geometry"]["coordinates"];
    assert_eq!(first[0].as_f64(), Some(support::station(1001).position.lon));

    let from = tagwatch_model::time::to_rfc3339(t0 + 60_000);
    let (_, later) = get(
        &server,
        &format!("/api/v1/vehicles/42/track?purpose=case-1&from={from}"),
    )
    .await;
    assert_eq!(later["features"].as_array().map(Vec::len), Some(1));
}

async fn provision_second_station(server: &TestServer) {
    let s = support::station(1002);
    let (status, _) = post(
        server,
        "/api/v1/stations",
        json!({"id": 1002, "name": s.name, "lat": s.position.lat, "lon": s.position.lon,
               "key": support::key(1002).to_hex()}),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn track_parameters_are_validated() {
    let server = TestServer::start().await;
    provision(&server, 1001, 42).await;
    let cases = [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
    ];
    for (query, field) in cases {
        let (status, error) = get(&server, &format!("/api/v1/vehicles/42/track?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(error["error"]["field"], field, "{query}: {error}");
    }
    let (status, _) = get(&server, "/api/v1/vehicles/42/track?bogus=1").await;
    assert_eq!(status, 400);
    assert_eq!(get(&server, "/api/v1/vehicles/7/track").await.0, 404);
}

#[tokio::test]
async fn oversized_bodies_and_unknown_paths_get_clear_errors() {
    let server = TestServer::start().await;
    let huge = json!({"note": "x".repeat(100_000)});
    provision(&server, 1001, 42).await;
    let (status, error) = post(&server, "/api/v1/vehicles", huge).await;
    assert_eq!(status, 413, "{error}");
    let (status, error) = get(&server, "/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "not_found");
}

#[tokio::test]
async fn health_reports_the_pipeline() {
    let server = TestServer::start().await;
    let (status, health) = get(&server, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store_ok"], true);
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    for name in [
        "tagwatch_frames_received_total{kind=\"detections\"} 0",
        "tagwatch_detections_received_total 0",
        "tagwatch_frames_rejected_total{reason=\"mac\"} 0",
        "tagwatch_acks_sent_total{status=\"accepted\"} 0",
        "tagwatch_ack_latency_seconds",
        "tagwatch_store_flush_rows",
        "tagwatch_store_flush_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}
