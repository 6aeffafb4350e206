//! Officers narrow their alerts to their precinct (or any box) and to some kinds, on the live
//! stream and in the stored list; each bad filter is named.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use support::{
    get, next_alert_within, open_events, post, provision, station, TestServer, TestStation, TOKEN,
};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::now_ms;

/// A box `[south, west, north, east]` around station `id` only (stations 10 m apart along a line
/// of latitude; these tests use stations 500 m apart).
fn around(id: u32) -> [f64; 4] {
    let p = station(id).position;
    [p.lat - 0.001, p.lon - 0.001, p.lat + 0.001, p.lon + 0.001]
}

#[tokio::test]
async fn a_precinct_or_box_filter_passes_only_alerts_inside_it() {
    let server = TestServer::start().await;
    provision(&server, 1001, 11).await;
    provision(&server, 1050, 12).await;
    let [s, w, n, e] = around(1001);
    let body = json!({"name": "North", "area": [[s, w], [n, w], [n, e], [s, e]]});
    let (status, precinct) = post(&server, "/api/v1/precincts", TOKEN, body).await;
    assert_eq!(status, StatusCode::CREATED, "{precinct}");
    let id = precinct["id"].as_i64().expect("id");
    let (_, listed) = get(&server, "/api/v1/precincts", TOKEN).await;
    assert_eq!(listed["precincts"][0]["name"], "North");

    let mut north = open_events(
        &server,
        &format!("/api/v1/alerts/stream?precinct={id}"),
        TOKEN,
    )
    .await;
    let [s, w, n, e] = around(1050);
    let box_path = format!("/api/v1/alerts/stream?south={s}&west={w}&north={n}&east={e}");
    let mut south = open_events(&server, &box_path, TOKEN).await;
    let mut panics = open_events(
        &server,
        "/api/v1/alerts/stream?kinds=panic,tag_tamper",
        TOKEN,
    )
    .await;
    for tag in [11, 12] {
        let path = format!("/api/v1/vehicles/{tag}/theft");
        assert_eq!(
            post(&server, &path, TOKEN, json!({})).await.0,
            StatusCode::CREATED
        );
    }
    for (id, tag) in [(1001, 11), (1050, 12)] {
        let station = TestStation::udp(id, 1, server.udp()).await;
        let frame = station.detections(1, now_ms(), &[tag]);
        assert_eq!(station.exchange(&frame).await, AckStatus::Accepted);
    }
    let wait = Duration::from_secs(5);
    let got = next_alert_within(&mut north, wait)
        .await
        .expect("north's alert");
    assert_eq!(
        (got["tag"].clone(), got["station"].clone()),
        (json!(11), json!(1001))
    );
    let got = next_alert_within(&mut south, wait)
        .await
        .expect("the box's alert");
    assert_eq!(
        (got["tag"].clone(), got["station"].clone()),
        (json!(12), json!(1050))
    );
    for (name, stream) in [
        ("north", &mut north),
        ("box", &mut south),
        ("panics", &mut panics),
    ] {
        let extra = next_alert_within(stream, Duration::from_millis(500)).await;
        assert_eq!(extra, None, "{name} got an alert outside its filter");
    }

    let (status, list) = get(&server, &format!("/api/v1/alerts?precinct={id}"), TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    let tags: Vec<_> = list["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["tag"].clone())
        .collect();
    assert_eq!(tags, [json!(11)]);
    let (_, list) = get(&server, "/api/v1/alerts?kinds=stolen_sighting", TOKEN).await;
    assert_eq!(list["alerts"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn each_bad_filter_is_named() {
    let server = TestServer::start().await;
    for (query, field) in [
        ("precinct=999", "precinct"),
        ("south=23&west=116", "south"),
        ("south=24&west=116&north=23&east=117", "south"),
        ("south=91&west=116&north=92&east=117", "lat"),
        ("kinds=stolen_sighting,bogus", "kinds"),
        ("precinct=1&south=23&west=116&north=24&east=117", "precinct"),
    ] {
        for path in ["/api/v1/alerts", "/api/v1/alerts/stream"] {
            let (status, answer) = get(&server, &format!("{path}?{query}"), TOKEN).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}?{query}: {answer}");
            assert_eq!(answer["error"]["field"], field, "{path}?{query}: {answer}");
        }
    }
    let body = json!({"name": "x", "area": [[23.0, 116.0]]});
    let (status, answer) = post(&server, "/api/v1/precincts", TOKEN, body).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("area"))
    );
}
