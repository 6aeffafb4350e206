//! Watch lists through the API, as an administrator and an owner would use them: a geofence
//! and a companion pair are stored, survive a restart, and raise their alerts when the tags
//! they watch are heard by a station.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{
    call, create_user, get, login, post, provision, station, TestServer, TestStation, TOKEN,
};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::now_ms;

/// Registers a station (no vehicle) through the API.
async fn add_station(server: &TestServer, id: u32) {
    let s = station(id);
    let body = json!({
        "id": id, "name": s.name, "lat": s.position.lat, "lon": s.position.lon,
        "key": support::key(id).to_hex(),
    });
    let (status, answer) = post(server, "/api/v1/stations", TOKEN, body).await;
    assert_eq!(status, 201, "{answer}");
}

async fn add_vehicle(server: &TestServer, tag: u32, owner: Option<&str>) {
    let body = json!({
        "tag": tag, "plate": format!("P-{tag}"), "owner_name": "Lin", "owner_phone": "+86 2",
        "owner": owner,
    });
    let (status, answer) = post(server, "/api/v1/vehicles", TOKEN, body).await;
    assert_eq!(status, 201, "{answer}");
}

/// Stored alerts of one kind.
async fn alerts_of_kind(server: &TestServer, kind: &str) -> Vec<Value> {
    let (status, body) = get(server, "/api/v1/alerts?limit=100", TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == kind)
        .cloned()
        .collect()
}

/// A box around station `id` only (stations are 10 m apart along a line of latitude).
fn area_around(id: u32) -> Value {
    let p = station(id).position;
    let (dlat, dlon) = (0.0005, 0.00004);
    json!([
        [p.lat - dlat, p.lon - dlon],
        [p.lat + dlat, p.lon - dlon],
        [p.lat + dlat, p.lon + dlon],
        [p.lat - dlat, p.lon + dlon],
    ])
}

#[tokio::test]
async fn a_geofence_is_validated_kept_across_restarts_and_alerts_on_entering() {
    let mut server = TestServer::start().await;
    provision(&server, 1001, 321).await;
    add_station(&server, 1003).await;
    create_user(&server, "bob", "officer").await;
    let bob = login(&server, "bob").await;

    // Each bad field is named.
    let good = json!({"name": "depot", "area": area_around(1003), "tags": [321], "on_enter": true});
    for (change, field) in [
        (json!({"area": [[23.0, 116.0], [23.1, 116.0]]}), "area"),
        (
            json!({"area": [[23.0, 116.0], [23.0, 118.0], [24.0, 118.0]]}),
            "area",
        ),
        (
            json!({"area": [[95.0, 116.0], [23.0, 116.1], [23.1, 116.1]]}),
            "area",
        ),
        (json!({"tags": []}), "tags"),
        (json!({"tags": [0]}), "tags"),
        (json!({"on_enter": false}), "on_enter"),
        (json!({"name": " "}), "name"),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, answer) = post(&server, "/api/v1/geofences", TOKEN, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{change}: {answer}");
    }
    // Officers may read fences but not set them.
    let (status, _) = post(&server, "/api/v1/geofences", &bob, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, fence) = post(&server, "/api/v1/geofences", TOKEN, good).await;
    assert_eq!(status, StatusCode::CREATED, "{fence}");
    let id = fence["id"].as_i64().expect("id");

    server.restart().await;
    let (status, listed) = get(&server, "/api/v1/geofences", &bob).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["geofences"],
        json!([fence]),
        "kept across the restart"
    );

    // The tag is heard outside the fence, then only inside it: it entered.
    let outside = TestStation::udp(1001, 1, server.udp()).await;
    let inside = TestStation::udp(1003, 1, server.udp()).await;
    let now = now_ms();
    let frame = outside.detections(1, now - 40_000, &[321]);
    assert_eq!(outside.exchange(&frame).await, AckStatus::Accepted);
    assert!(alerts_of_kind(&server, "geofence").await.is_empty());
    let frame = inside.detections(1, now - 20_000, &[321]);
    assert_eq!(inside.exchange(&frame).await, AckStatus::Accepted);
    let alerts = alerts_of_kind(&server, "geofence").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["tag"], 321);
    assert_eq!(alerts[0]["station"], 1003);
    assert_eq!(alerts[0]["detail"]["fence"]["fence"], id);
    assert_eq!(alerts[0]["detail"]["fence"]["name"], "depot");
    assert_eq!(alerts[0]["detail"]["fence"]["entered"], true);

    // Deleted: gone from the list and from the tracker (leaving it raises nothing).
    let path = format!("/api/v1/geofences/{id}");
    let (status, _) = call(&server, Method::DELETE, &path, TOKEN, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&server, Method::DELETE, &path, TOKEN, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = call(&server, Method::DELETE, "/api/v1/geofences/x", TOKEN, None).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("id"))
    );
    let (_, listed) = get(&server, "/api/v1/geofences", &bob).await;
    assert_eq!(listed["geofences"], json!([]));
}

#[tokio::test]
async fn an_owner_pairs_their_own_tags_and_a_tag_heard_alone_alerts_after_a_restart() {
    let mut server = TestServer::start().await;
    create_user(&server, "alice", "owner").await;
    let alice = login(&server, "alice").await;
    add_station(&server, 1001).await;
    add_vehicle(&server, 321, Some("alice")).await;
    add_vehicle(&server, 322, Some("alice")).await;
    add_vehicle(&server, 999, None).await;
    let pair = |tag: u32, companion: i64| {
        let (server, alice) = (&server, alice.clone());
        async move {
            let path = format!("/api/v1/vehicles/{tag}/pair");
            call(
                server,
                Method::PUT,
                &path,
                &alice,
                Some(json!({ "companion": companion })),
            )
            .await
        }
    };
    // Not someone else's tag, on either side; not itself; not zero.
    assert_eq!(pair(999, 321).await.0, StatusCode::NOT_FOUND);
    let (status, answer) = pair(321, 999).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("companion"))
    );
    assert_eq!(pair(321, 321).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(pair(321, 0).await.0, StatusCode::BAD_REQUEST);
    let (status, answer) = pair(321, 322).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    server.restart().await;
    let alice = login(&server, "alice").await;
    let (status, kept) = get(&server, "/api/v1/vehicles/321/pair", &alice).await;
    assert_eq!(
        (status, kept),
        (StatusCode::OK, json!({"tag": 321, "companion": 322}))
    );

    // Heard without its companion: once the visit gap has passed with no sign of 322.
    let station = TestStation::udp(1001, 1, server.udp()).await;
    let frame = station.detections(1, now_ms() - 60_000, &[321]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let frame = station.detections(2, now_ms(), &[7]);
    assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    let alerts = alerts_of_kind(&server, "companion_missing").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["tag"], 321);

    let (status, _) = call(
        &server,
        Method::DELETE,
        "/api/v1/vehicles/321/pair",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = get(&server, "/api/v1/vehicles/321/pair", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
