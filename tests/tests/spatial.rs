//! Spatial queries as an officer makes them: tags near a point now, tags through an area in a
//! time window, each validated, refused to owners, and audited with its purpose.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

async fn get(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let response = client()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Stations 1001 and 1010 (~92 m apart) and 1100 (~1 km east of 1001); tags 1 and 2 heard at
/// 1001 now, tag 3 at 1010 now, tag 4 at 1100 now, tag 5 at 1001 half an hour ago.
async fn scene() -> (TestServer, i64) {
    let server = TestServer::start().await;
    for (station, vehicle) in [(1001, 1), (1010, 2), (1100, 3)] {
        provision(&server, station, vehicle).await;
    }
    let now = tagwatch_model::time::now_ms();
    for (station, seq, time, tags) in [
        (1001, 1, now - 1_800_000, vec![5]),
        (1001, 2, now, vec![1, 2]),
        (1010, 1, now, vec![3]),
        (1100, 1, now, vec![4]),
    ] {
        let s = TestStation::udp(station, 1, server.udp()).await;
        assert_eq!(
            s.exchange(&s.detections(seq, time, &tags)).await,
            AckStatus::Accepted
        );
    }
    (server, now)
}

fn at_1001() -> String {
    let p = support::station(1001).position;
    format!("lat={}&lon={}", p.lat, p.lon)
}

#[tokio::test]
async fn tags_near_a_point_are_those_heard_recently_within_the_radius() {
    let (server, _) = scene().await;
    let path = format!(
        "/api/v1/tags/near?{}&radius_m=150&purpose=case%2077",
        at_1001()
    );
    let (status, body) = get(&server, &path, TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let tags: Vec<_> = body["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["tag"].as_i64().expect("tag"))
        .collect();
    assert_eq!(
        tags,
        vec![1, 2, 3],
        "nearest station first; not tag 4 (1 km) nor 5 (30 min ago)"
    );
    let far = body["tags"][2]["distance_m"].as_f64().expect("distance");
    assert!((85.0..100.0).contains(&far), "{far}");
    let path = format!(
        "/api/v1/tags/near?{}&radius_m=150&minutes=60&purpose=case%2077",
        at_1001()
    );
    let (_, body) = get(&server, &path, TOKEN).await;
    assert_eq!(
        body["tags"].as_array().map(Vec::len),
        Some(4),
        "tag 5 within the hour"
    );
    let path = format!(
        "/api/v1/tags/near?{}&radius_m=2000&purpose=case%2077",
        at_1001()
    );
    assert_eq!(
        get(&server, &path, TOKEN).await.1["tags"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

#[tokio::test]
async fn tags_through_an_area_come_from_memory_or_for_older_windows_from_the_store() {
    let (server, now) = scene().await;
    let p = support::station(1100).position;
    let through = |from_ms: i64| {
        let (from, to) = (
            tagwatch_model::time::to_rfc3339(from_ms),
            tagwatch_model::time::to_rfc3339(now + 60_000),
        );
        format!(
            "/api/v1/tags/through?south={}&west={}&north={}&east={}&from={from}&to={to}&purpose=burglary%20on%20Elm%20St",
            p.lat - 0.001, p.lon - 0.001, p.lat + 0.001, p.lon + 0.001
        )
    };
    let (status, body) = get(&server, &through(now - 60_000), TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "memory");
    let tags = body["tags"].as_array().expect("tags");
    assert_eq!(tags.len(), 1, "{body}");
    assert_eq!(tags[0]["tag"], json!(4));
    assert_eq!(
        tags[0]["first_seen"],
        json!(tagwatch_model::time::to_rfc3339(now))
    );
    // Before the tracker's first detection (30 minutes ago): the stored visits answer.
    let (status, body) = get(&server, &through(now - 7_200_000), TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "store");
    assert_eq!(body["tags"][0]["tag"], json!(4), "{body}");
    let (_, audit) = get(&server, "/api/v1/audit", TOKEN).await;
    let last = audit["entries"]
        .as_array()
        .and_then(|e| e.last().cloned())
        .expect("entry");
    assert_eq!(
        (last["action"].clone(), last["purpose"].clone()),
        (json!("tags.through"), json!("burglary on Elm St"))
    );
}

#[tokio::test]
async fn tags_arriving_together_are_companions_and_the_query_is_audited() {
    let (server, _) = scene().await;
    let path = "/api/v1/vehicles/1/companions?min_times=1&purpose=case%2012";
    let (status, body) = get(&server, path, TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["companions"],
        json!([{"tag": 2, "times": 1, "stations": [1001]}]),
        "tag 2 arrived with it; tag 5 was there 30 minutes before"
    );
    let (_, body) = get(
        &server,
        "/api/v1/vehicles/1/companions?purpose=case%2012",
        TOKEN,
    )
    .await;
    assert_eq!(body["companions"], json!([]), "three times by default");
    for (path, field) in [
        (
            "/api/v1/vehicles/1/companions?within_s=0&purpose=case%2012",
            "within_s",
        ),
        (
            "/api/v1/vehicles/1/companions?min_times=0&purpose=case%2012",
            "min_times",
        ),
        (
            "/api/v1/vehicles/1/companions?from=2020-01-01T00:00:00Z&purpose=case%2012",
            "from",
        ),
        ("/api/v1/vehicles/1/companions", "purpose"),
        ("/api/v1/dens?radius_m=-1&purpose=case%2012", "radius_m"),
        (
            "/api/v1/dens?dark_minutes=0&purpose=case%2012",
            "dark_minutes",
        ),
        ("/api/v1/dens", "purpose"),
    ] {
        let (status, error) = get(&server, path, TOKEN).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{path}"
        );
    }
    let (_, audit) = get(&server, "/api/v1/audit", TOKEN).await;
    let actions: Vec<_> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions.first(), Some(&json!("vehicle.companions")));
}

#[tokio::test]
async fn a_stolen_vehicle_gone_dark_shows_as_a_den() {
    let (server, _) = scene().await;
    // Tag 5, heard at 1001 half an hour ago, is registered and reported stolen.
    let created = client()
        .post(server.url("/api/v1/vehicles"))
        .bearer_auth(TOKEN)
        .json(&json!({"tag": 5, "plate": "P-5", "owner_name": "Li", "owner_phone": "+86 5"}))
        .send()
        .await
        .expect("vehicle");
    assert_eq!(created.status(), 201);
    let reported = client()
        .post(server.url("/api/v1/vehicles/5/theft"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("theft");
    assert_eq!(reported.status(), 201);
    let (status, body) = get(
        &server,
        "/api/v1/dens?dark_minutes=20&min_tags=1&purpose=case%2012",
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let dens = body["dens"].as_array().expect("dens");
    assert_eq!(dens.len(), 1, "{body}");
    assert_eq!(dens[0]["tags"][0]["tag"], json!(5));
    assert_eq!(dens[0]["tags"][0]["station"], json!(1001));
    let (_, body) = get(
        &server,
        "/api/v1/dens?dark_minutes=40&min_tags=1&purpose=case%2012",
        TOKEN,
    )
    .await;
    assert_eq!(body["dens"], json!([]), "not dark for 40 minutes yet");
}

#[tokio::test]
async fn spatial_queries_are_validated_refused_to_owners_and_need_a_purpose() {
    let (server, _) = scene().await;
    let near = |rest: &str| format!("/api/v1/tags/near?{rest}");
    for (path, field) in [
        (near(&format!("{}&radius_m=150", at_1001())), "purpose"),
        (near(&format!("{}&radius_m=0&purpose=case%201", at_1001())), "radius_m"),
        (near(&format!("{}&radius_m=9000&purpose=case%201", at_1001())), "radius_m"),
        (near("lat=91&lon=0&radius_m=10&purpose=case%201"), "lat"),
        (near("lat=0&lon=181&radius_m=10&purpose=case%201"), "lon"),
        (near(&format!("{}&radius_m=10&minutes=0&purpose=case%201", at_1001())), "minutes"),
        ("/api/v1/tags/through?south=0&west=0&north=1&east=1&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&purpose=case%201".into(), "north"),
        ("/api/v1/tags/through?south=0&west=0&north=0.01&east=0.01&from=2026-01-02T00:00:00Z&to=2026-01-01T01:00:00Z&purpose=case%201".into(), "from"),
        ("/api/v1/tags/through?south=0&west=0&north=0.01&east=0.01&from=2026-01-01T00:00:00Z&to=2026-01-03T01:00:00Z&purpose=case%201".into(), "from"),
        ("/api/v1/tags/through?south=1&west=0&north=0.01&east=0.01&from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z&purpose=case%201".into(), "south"),
    ] {
        let (status, error) = get(&server, &path, TOKEN).await;
        assert_eq!((status, error["error"]["field"].clone()), (StatusCode::BAD_REQUEST, json!(field)), "{path}");
    }
    let (status, _) = get(&server, "/api/v1/tags/near?lat=1", TOKEN).await;
    assert_eq!(status, 400, "missing parameters");
    // Owners may not look at other people's movements.
    let body = json!({"username": "alice", "password": "alice-password", "role": "owner"});
    let created = client()
        .post(server.url("/api/v1/users"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("user");
    assert_eq!(created.status(), 201);
    let login: Value = client()
        .post(server.url("/api/v1/login"))
        .json(&json!({"username": "alice", "password": "alice-password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let alice = login["token"].as_str().expect("token");
    let path = near(&format!("{}&radius_m=150&purpose=curious", at_1001()));
    assert_eq!(get(&server, &path, alice).await.0, 403);
    let (_, audit) = get(&server, "/api/v1/audit", TOKEN).await;
    let outcomes: Vec<_> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["actor"].clone(), e["outcome"].clone()))
        .collect();
    // Nine malformed parameters and one missing purpose above, the query missing parameters,
    // then the owner's attempt.
    let mut expected = vec![(json!("(admin token)"), json!("refused: invalid_field")); 10];
    expected.push((json!("(admin token)"), json!("refused: invalid_body")));
    expected.push((json!("alice"), json!("refused: forbidden")));
    assert_eq!(
        outcomes, expected,
        "refused queries get no answer, and each is logged with why"
    );
}

#[tokio::test]
async fn companions_before_anything_is_heard_are_none_not_an_error() {
    // Found by schemathesis: with nothing in memory, the default window (as far back as memory
    // reaches) was refused as if the caller had given a `from` too early.
    let server = TestServer::start().await;
    let (status, body) = get(
        &server,
        "/api/v1/vehicles/1/companions?purpose=case%2012",
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["companions"], json!([]));
}
