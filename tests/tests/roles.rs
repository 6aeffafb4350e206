//! Accounts and roles through the API: logging in, what each role may and may not do, purposes
//! and the audit log for movement queries, owners confined to their own vehicles and alerts, and
//! expired, revoked and logged-out tokens.

mod support;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use support::{client, create_user, get, login, post, provision, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

type Events = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<eventsource_stream::Event, String>> + Send>,
>;

async fn open_stream(server: &TestServer, token: &str) -> Events {
    let response = client()
        .get(server.url("/api/v1/alerts/stream?after=0"))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|e| e.map_err(|e| e.to_string())),
    )
}

/// The tags of the next `n` alerts on a stream.
async fn alert_tags(stream: &mut Events, n: usize) -> Vec<i64> {
    let mut tags = Vec::new();
    while tags.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("well-formed");
        if event.event == "alert" {
            let alert: Value = serde_json::from_str(&event.data).expect("json");
            tags.push(alert["tag"].as_i64().expect("tag"));
        }
    }
    tags
}

/// A server with an owner (alice, owning tag 500), an officer (bob) and a dispatcher (carol);
/// tag 600 belongs to nobody with an account.
async fn city() -> (TestServer, String, String, String) {
    let server = TestServer::start().await;
    create_user(&server, "alice", "owner").await;
    create_user(&server, "bob", "officer").await;
    create_user(&server, "carol", "dispatcher").await;
    provision(&server, 1001, 600).await;
    let (status, vehicle) = post(
        &server,
        "/api/v1/vehicles",
        TOKEN,
        json!({"tag": 500, "plate": "A-500", "owner_name": "Alice", "owner_phone": "1", "owner": "alice"}),
    )
    .await;
    assert_eq!(status, 201, "{vehicle}");
    assert_eq!(vehicle["owner"], "alice");
    let (alice, bob, carol) = (
        login(&server, "alice").await,
        login(&server, "bob").await,
        login(&server, "carol").await,
    );
    (server, alice, bob, carol)
}

#[tokio::test]
async fn login_gives_a_token_and_refuses_wrong_passwords_alike() {
    let (server, alice, _, _) = city().await;
    let (status, me) = get(&server, "/api/v1/me", &alice).await;
    assert_eq!(
        (status, me["role"].clone()),
        (StatusCode::OK, json!("owner"))
    );
    for (username, password) in [("alice", "wrong-password"), ("nobody", "whatever-password")] {
        let response = client()
            .post(server.url("/api/v1/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["message"], "wrong username or password");
    }
}

#[tokio::test]
async fn only_admins_manage_users_and_each_field_is_checked() {
    let (server, alice, bob, _) = city().await;
    let body = json!({"username": "eve", "password": "long-enough-pw", "role": "admin"});
    for token in [&alice, &bob] {
        let (status, error) = post(&server, "/api/v1/users", token, body.clone()).await;
        assert_eq!(status, 403, "{error}");
        assert_eq!(error["error"]["code"], "forbidden");
    }
    let cases = [
        (
            json!({"username": "e", "password": "long-enough-pw", "role": "owner"}),
            "username",
        ),
        (
            json!({"username": "eve", "password": "short", "role": "owner"}),
            "password",
        ),
        (
            json!({"username": "eve", "password": "long-enough-pw", "role": "chief"}),
            "role",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = post(&server, "/api/v1/users", TOKEN, body).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field))
        );
    }
    let (status, _) = post(
        &server,
        "/api/v1/users",
        TOKEN,
        json!({"username": "alice", "password": "long-enough-pw", "role": "owner"}),
    )
    .await;
    assert_eq!(status, 409);
    // Vehicles are registered by admins, to existing owner accounts only.
    let vehicle =
        json!({"tag": 9, "plate": "Z-9", "owner_name": "Z", "owner_phone": "9", "owner": "bob"});
    let (status, error) = post(&server, "/api/v1/vehicles", TOKEN, vehicle.clone()).await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("owner"))
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles", &bob, vehicle).await.0,
        403
    );
    let station = json!({"id": 7, "name": "x", "lat": 1.0, "lon": 1.0, "key": "07".repeat(32)});
    assert_eq!(
        post(&server, "/api/v1/stations", &alice, station.clone())
            .await
            .0,
        403
    );
    assert_eq!(
        post(&server, "/api/v1/stations", &bob, station).await.0,
        403
    );
}

#[tokio::test]
async fn owners_see_and_act_on_their_own_vehicles_only() {
    let (server, alice, _, _) = city().await;
    let (status, mine) = get(&server, "/api/v1/me/vehicles", &alice).await;
    assert_eq!(status, 200);
    let tags: Vec<_> = mine["vehicles"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["tag"].clone())
        .collect();
    assert_eq!(tags, vec![json!(500)]);
    // Someone else's vehicle does not exist for an owner.
    let (status, error) = get(&server, "/api/v1/vehicles/600/location", &alice).await;
    assert_eq!(status, 404);
    let (_, missing) = get(&server, "/api/v1/vehicles/601/location", &alice).await;
    assert_eq!(
        error["error"]["message"]
            .as_str()
            .map(|m| m.replace("600", "601")),
        missing["error"]["message"].as_str().map(str::to_owned),
        "the same answer as for a tag nobody registered"
    );
    assert_eq!(
        get(&server, "/api/v1/vehicles/600/track", &alice).await.0,
        404
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles/600/theft", &alice, json!({}))
            .await
            .0,
        404
    );
    // Their own: no purpose needed, but the look is still audited.
    let (status, error) = get(&server, "/api/v1/vehicles/500/location", &alice).await;
    assert_eq!(status, 404, "not heard yet: {error}");
    assert_eq!(
        post(
            &server,
            "/api/v1/vehicles/500/theft",
            &alice,
            json!({"note": "gone"})
        )
        .await
        .0,
        201
    );
    assert_eq!(get(&server, "/api/v1/audit", &alice).await.0, 403);
    let (_, audit) = get(&server, "/api/v1/audit", TOKEN).await;
    // Her attempts at tag 600 come first, refused; then her own vehicle, answered.
    let entry = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["outcome"] == "answered")
        .expect("an answered query");
    assert_eq!(
        (entry["actor"].clone(), entry["target"].clone()),
        (json!("alice"), json!("tag:500"))
    );
    assert_eq!(entry["purpose"], "owner viewing their own vehicle");
}

#[tokio::test]
async fn officers_must_state_a_purpose_and_every_query_is_audited() {
    let (server, _, bob, carol) = city().await;
    for path in [
        "/api/v1/vehicles/600/location",
        "/api/v1/vehicles/600/track",
    ] {
        let (status, error) = get(&server, path, &bob).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("purpose"))
        );
        let (status, _) = get(&server, &format!("{path}?purpose=x"), &bob).await;
        assert_eq!(status, 400, "a purpose says something");
    }
    // Refused queries are not answered, but each is logged with why it was refused.
    let (_, audit) = get(&server, "/api/v1/audit", TOKEN).await;
    let outcomes: Vec<_> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["outcome"].clone())
        .collect();
    assert_eq!(outcomes, vec![json!("refused: invalid_field"); 4]);
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/600/track?purpose=case%202026-117",
        &bob,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/600/location?purpose=stop%20and%20check",
        &carol,
    )
    .await;
    assert_eq!(status, 404, "not heard yet, but the query was made");
    assert_eq!(get(&server, "/api/v1/audit", &bob).await.0, 403);
    let (_, audit) = get(&server, "/api/v1/audit?after=4", TOKEN).await;
    let entries = audit["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["actor"], "bob");
    assert_eq!(entries[0]["role"], "officer");
    assert_eq!(entries[0]["action"], "vehicle.track");
    assert_eq!(entries[0]["purpose"], "case 2026-117");
    assert_eq!(entries[1]["actor"], "carol");
    assert_eq!(entries[1]["action"], "vehicle.location");
    let (_, later) = get(
        &server,
        &format!("/api/v1/audit?after={}", entries[0]["id"]),
        TOKEN,
    )
    .await;
    assert_eq!(later["entries"].as_array().map(Vec::len), Some(1));
    let (status, error) = get(&server, "/api/v1/audit?limit=0", TOKEN).await;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("limit"))
    );
}

#[tokio::test]
async fn logged_out_revoked_and_expired_tokens_are_refused() {
    let (server, alice, bob, _) = city().await;
    let response = client()
        .post(server.url("/api/v1/logout"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), 204);
    assert_eq!(get(&server, "/api/v1/me", &alice).await.0, 401);

    let second = login(&server, "bob").await;
    let (status, revoked) = post(&server, "/api/v1/users/bob/revoke", TOKEN, json!({})).await;
    assert_eq!(
        (status, revoked["revoked"].clone()),
        (StatusCode::OK, json!(2))
    );
    for token in [&bob, &second] {
        assert_eq!(get(&server, "/api/v1/me", token).await.0, 401);
    }
    assert_eq!(
        post(&server, "/api/v1/users/nobody/revoke", TOKEN, json!({}))
            .await
            .0,
        404
    );

    // A token past its expiry.
    let carol = server
        .store()
        .user_by_name("carol")
        .await
        .expect("query")
        .expect("carol");
    let token = "expired-token-expired-token-expired";
    let hash = tagwatch_api::auth::token_hash(token);
    server
        .store()
        .insert_token(&hash, carol.id, 0, 1)
        .await
        .expect("insert");
    assert_eq!(get(&server, "/api/v1/me", token).await.0, 401);
}

#[tokio::test]
async fn an_owner_hears_alerts_about_their_own_vehicles_only() {
    let (server, alice, bob, _) = city().await;
    let station = TestStation::udp(1001, 4, server.udp()).await;
    // Both vehicles are stolen.
    assert_eq!(
        post(&server, "/api/v1/vehicles/500/theft", TOKEN, json!({}))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles/600/theft", TOKEN, json!({}))
            .await
            .0,
        201
    );
    let now = tagwatch_model::time::now_ms();
    assert_eq!(
        station.exchange(&station.detections(1, now, &[600])).await,
        AckStatus::Accepted
    );
    assert_eq!(
        station.exchange(&station.detections(2, now, &[500])).await,
        AckStatus::Accepted
    );
    let mut officer = open_stream(&server, &bob).await;
    assert_eq!(alert_tags(&mut officer, 2).await, vec![600, 500]);
    let mut owner = open_stream(&server, &alice).await;
    assert_eq!(alert_tags(&mut owner, 1).await, vec![500]);
    let more = tokio::time::timeout(Duration::from_millis(300), owner.next()).await;
    assert!(
        !matches!(&more, Ok(Some(Ok(e))) if e.event == "alert"),
        "alice must not hear about tag 600"
    );
}

#[tokio::test]
async fn a_recovered_vehicle_leaves_the_stolen_list_at_once() {
    let (server, alice, bob, _) = city().await;
    let station = TestStation::udp(1001, 6, server.udp()).await;
    let t0 = tagwatch_model::time::now_ms() - 600_000;
    assert_eq!(
        post(&server, "/api/v1/vehicles/500/theft", &alice, json!({}))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles/600/recovered", &alice, json!({}))
            .await
            .0,
        404,
        "not hers"
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles/600/recovered", &bob, json!({}))
            .await
            .0,
        409,
        "no open case"
    );
    station.exchange(&station.detections(1, t0, &[500])).await;
    let (status, list) = get(&server, "/api/v1/alerts", &bob).await;
    assert_eq!(status, 200);
    assert_eq!(list["alerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["alerts"][0]["tag"], 500);

    let (status, closed) = post(&server, "/api/v1/vehicles/500/recovered", &alice, json!({})).await;
    assert_eq!(status, 200, "{closed}");
    // Heard again in a new visit: no alert now.
    station
        .exchange(&station.detections(2, t0 + 120_000, &[500]))
        .await;
    let (_, list) = get(&server, "/api/v1/alerts", &bob).await;
    assert_eq!(
        list["alerts"].as_array().map(Vec::len),
        Some(1),
        "no alert after recovery"
    );
    // Stolen again later: a new case, alerts resume.
    assert_eq!(
        post(&server, "/api/v1/vehicles/500/theft", &bob, json!({}))
            .await
            .0,
        201
    );
    station
        .exchange(&station.detections(3, t0 + 240_000, &[500]))
        .await;
    let (_, list) = get(&server, "/api/v1/alerts?tag=500&purpose=case%2012", &bob).await;
    assert_eq!(list["alerts"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_alert_list_is_filtered_for_owners_and_validated() {
    let (server, alice, bob, _) = city().await;
    let station = TestStation::udp(1001, 8, server.udp()).await;
    for tag in [500, 600] {
        assert_eq!(
            post(
                &server,
                &format!("/api/v1/vehicles/{tag}/theft"),
                TOKEN,
                json!({})
            )
            .await
            .0,
            201
        );
    }
    let now = tagwatch_model::time::now_ms();
    station
        .exchange(&station.detections(1, now, &[500, 600]))
        .await;
    let (_, all) = get(&server, "/api/v1/alerts", &bob).await;
    assert_eq!(all["alerts"].as_array().map(Vec::len), Some(2));
    let (_, mine) = get(&server, "/api/v1/alerts", &alice).await;
    let tags: Vec<_> = mine["alerts"]
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["tag"].clone())
        .collect();
    assert_eq!(tags, vec![json!(500)]);
    // Someone else's vehicle is no vehicle at all for an owner.
    let (status, _) = get(&server, "/api/v1/alerts?tag=600", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("after=-1", "after"),
        ("tag=x", "tag"),
    ] {
        let (status, error) = get(&server, &format!("/api/v1/alerts?{query}"), &bob).await;
        assert_eq!(
            (status, error["error"]["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn an_armed_vehicle_that_moves_alerts_its_owner_even_after_a_restart() {
    let (mut server, alice, bob, _) = city().await;
    provision(&server, 1100, 601).await; // a station about 1 km east of 1001
                                         // Not heard yet: cannot be armed; someone else's: does not exist for alice.
    let (status, error) = post(&server, "/api/v1/vehicles/500/arm", &alice, json!({})).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        post(&server, "/api/v1/vehicles/600/arm", &alice, json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        post(&server, "/api/v1/vehicles/500/disarm", &alice, json!({}))
            .await
            .0,
        409,
        "not armed"
    );

    let t0 = tagwatch_model::time::now_ms() - 3_600_000;
    let home = TestStation::udp(1001, 1, server.udp()).await;
    home.exchange(&home.detections(1, t0, &[500])).await;
    let (status, armed) = post(&server, "/api/v1/vehicles/500/arm", &alice, json!({})).await;
    assert_eq!(
        (status, armed["station"].clone()),
        (StatusCode::OK, json!(1001))
    );
    home.exchange(&home.detections(2, t0 + 60_000, &[500]))
        .await;
    let (_, list) = get(&server, "/api/v1/alerts", &bob).await;
    assert_eq!(list["alerts"], json!([]), "still where it was parked");

    // The server restarts; the vehicle is taken 1 km away.
    server.restart().await;
    let away = TestStation::udp(1100, 1, server.udp()).await;
    away.exchange(&away.detections(1, t0 + 120_000, &[500]))
        .await;
    let mut owner = open_stream(&server, &alice).await;
    assert_eq!(alert_tags(&mut owner, 1).await, vec![500]);
    let (_, list) = get(&server, "/api/v1/alerts", &alice).await;
    assert_eq!(list["alerts"][0]["kind"], "armed_moved");
    assert_eq!(list["alerts"][0]["station"], 1100);

    let alice = login(&server, "alice").await; // tokens survive restarts too, but be explicit
    assert_eq!(
        post(&server, "/api/v1/vehicles/500/disarm", &alice, json!({}))
            .await
            .0,
        200
    );
    away.exchange(&away.detections(2, t0 + 900_000, &[500]))
        .await;
    let (_, list) = get(&server, "/api/v1/alerts", &bob).await;
    assert_eq!(
        list["alerts"].as_array().map(Vec::len),
        Some(1),
        "disarmed: nothing new"
    );
}

#[tokio::test]
async fn a_token_calling_too_fast_is_told_to_wait_and_others_are_not() {
    let (server, alice, bob, _) = city().await;
    let mut limited = None;
    for _ in 0..400 {
        let response = client()
            .get(server.url("/api/v1/me"))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("request");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("a burst of 400 calls is limited");
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        get(&server, "/api/v1/me", &bob).await.0,
        200,
        "bob has his own quota"
    );
}

#[tokio::test]
async fn guessing_a_password_is_held_back() {
    let (server, _, _, _) = city().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = client()
            .post(server.url("/api/v1/login"))
            .json(&json!({"username": "bob", "password": "guess-guess-guess"}))
            .send()
            .await
            .expect("login");
        statuses.push(response.status().as_u16());
    }
    // The city fixture logged bob in once already: 9 more guesses, then held back.
    assert_eq!(&statuses[..9], &[401; 9]);
    assert!(statuses[9..].iter().all(|&s| s == 429), "{statuses:?}");
}

#[tokio::test]
async fn police_see_each_stations_health_from_its_heartbeats() {
    let (server, alice, bob, _) = city().await;
    provision(&server, 1010, 602).await; // never sends a heartbeat
    let station = TestStation::udp(1001, 3, server.udp()).await;
    let now = tagwatch_model::time::now_ms();
    let status = tagwatch_gateway::wire::Frame {
        station: tagwatch_model::StationId(1001),
        session: tagwatch_model::SessionId(3),
        seq: 1,
        time_ms: u64::try_from(now - 5_000).expect("positive"),
        position: None,
        body: tagwatch_gateway::wire::Body::Status(tagwatch_gateway::wire::Status {
            uptime_s: 3_600,
            backlog: 12,
            fw_version: 0x0102,
            temp_c: -3,
            power: 0x81, // battery, with a power fault
            tags_in_range: 40,
        }),
    };
    assert_eq!(station.exchange(&status).await, AckStatus::Accepted);
    assert_eq!(get(&server, "/api/v1/stations", &alice).await.0, 403);
    let (status, body) = get(&server, "/api/v1/stations", &bob).await;
    assert_eq!(status, 200, "{body}");
    let stations = body["stations"].as_array().expect("list");
    assert_eq!(stations.len(), 2);
    let (heard, quiet) = (&stations[0], &stations[1]);
    assert_eq!(
        (heard["id"].clone(), heard["silent"].clone()),
        (json!(1001), json!(false))
    );
    let health = &heard["health"];
    assert_eq!(health["backlog"], 12);
    assert_eq!(health["temp_c"], -3);
    assert_eq!(
        (health["power"].clone(), health["power_fault"].clone()),
        (json!("battery"), json!(true))
    );
    // Station clock minus ours, as the clock-skew alert gives it: five seconds behind.
    let skew = health["clock_skew_ms"].as_i64().expect("skew");
    assert!((-6_000..=-5_000).contains(&skew), "{skew}");
    assert_eq!(
        (quiet["id"].clone(), quiet["silent"].clone()),
        (json!(1010), json!(true))
    );
    assert_eq!(quiet["health"], Value::Null);
    // The power fault was alerted, once.
    let (_, alerts) = get(&server, "/api/v1/alerts?kinds=station_power_fault", &bob).await;
    let faults = alerts["alerts"].as_array().expect("alerts");
    assert_eq!(faults.len(), 1, "{alerts}");
    assert_eq!(faults[0]["station"], 1001);
    // A station that sends detections but no heartbeat is not silent.
    let quiet_one = TestStation::udp(1010, 1, server.udp()).await;
    quiet_one
        .exchange(&quiet_one.detections(1, now, &[602]))
        .await;
    let (_, body) = get(&server, "/api/v1/stations", &bob).await;
    assert_eq!(body["stations"][1]["silent"], json!(false), "{body}");
}
