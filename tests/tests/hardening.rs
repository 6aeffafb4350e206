//! The HTTP API as an attacker tries it: login floods and lockouts, slowloris, revoked and
//! disabled accounts, refused queries that must still reach the audit log, and the small
//! holes (a 405 without the JSON error, an all-zero station key, another officer's unit).

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;
use support::{create_user, get, login, post, provision, TestServer, TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client whose requests come from `source` (any 127.0.0.0/8 address).
fn client_from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(source))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn login_from(
    server: &TestServer,
    source: [u8; 4],
    username: &str,
    password: &str,
) -> (StatusCode, Value) {
    let response = client_from(source)
        .post(server.url("/api/v1/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .expect("login");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_elsewhere_do_not_lock_an_officer_out() {
    let server = TestServer::start().await;
    create_user(&server, "alice", "officer").await;
    let mut limited = false;
    for _ in 0..12 {
        let (status, _) = login_from(&server, [127, 0, 0, 2], "alice", "wrong-guess-1").await;
        assert!(status == 401 || status == 429, "{status}");
        limited |= status == 429;
    }
    assert!(limited, "guessing from one address is slowed down");
    // The real officer, at the station house, still gets in.
    let (status, answer) = login_from(&server, [127, 0, 0, 3], "alice", "alice-password").await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_from_one_address_is_cut_short() {
    let server = TestServer::start().await;
    let started = std::time::Instant::now();
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let url = server.url("/api/v1/login");
            tokio::spawn(async move {
                client_from([127, 0, 0, 4])
                    .post(url)
                    .json(&json!({ "username": format!("user{i}"), "password": "guess-guess" }))
                    .send()
                    .await
                    .expect("answered")
                    .status()
            })
        })
        .collect();
    let mut refused = 0;
    let mut checked = 0;
    for attempt in attempts {
        match attempt.await.expect("joins") {
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            StatusCode::UNAUTHORIZED => checked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // At most a burst of them (30, then one a second) costs a password hash; the rest are
    // told to wait.
    let allowance = 30 + started.elapsed().as_secs() + 1;
    assert!(checked <= allowance, "{checked} passwords checked");
    assert_eq!(refused + checked, 200);
    assert!(tagwatch_api::auth::peak_hashes_at_once() <= tagwatch_api::auth::HASHES_AT_ONCE);
    // The server is as responsive as before.
    let (status, _) = get(&server, "/api/v1/me", TOKEN).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_half_sent_request_is_disconnected_within_seconds() {
    let server = TestServer::start_with(|c| {
        c.api.http_header_timeout = Duration::from_secs(1);
        c.api.http_connections = 4;
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = tokio::net::TcpStream::connect(server.get().http_addr)
            .await
            .expect("connect");
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: tagwatch\r\nX-Slow: ")
            .await
            .expect("write");
        slow.push(stream);
    }
    let started = std::time::Instant::now();
    // The first four hold every connection slot; all eight are gone within seconds, and the
    // health check is answered.
    for stream in &mut slow {
        let mut buf = [0u8; 512];
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(_)) => continue,
                Err(_) => break false,
            }
        };
        assert!(closed, "a half-sent request is still open after 5 s");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    let health = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_answered_408_within_seconds() {
    let server =
        TestServer::start_with(|c| c.api.http_header_timeout = Duration::from_secs(1)).await;
    let mut stream = tokio::net::TcpStream::connect(server.get().http_addr)
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /api/v1/login HTTP/1.1\r\nHost: tagwatch\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"user",
        )
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    // A byte every 200 ms: never the whole body, always something on the wire.
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still reading after 5 s"
        );
        let _ = stream.write_all(b" ").await;
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

/// Whether the stream ends (or says the session ended) within `wait`.
async fn stream_ends_within(events: &mut support::Events, wait: Duration) -> bool {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(event))) if event.event == "session_ended" => return true,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[tokio::test]
async fn revoked_and_disabled_accounts_lose_their_streams_and_logins() {
    let server = TestServer::start().await;
    create_user(&server, "bob", "officer").await;
    // Revocation ends the live stream within seconds.
    let bob = login(&server, "bob").await;
    let mut events = support::open_events(&server, "/api/v1/alerts/stream", &bob).await;
    let (status, _) = post(&server, "/api/v1/users/bob/revoke", TOKEN, json!({})).await;
    assert_eq!(status, 200);
    assert!(stream_ends_within(&mut events, Duration::from_secs(6)).await);
    // Disabling does too, and bars logging in until enabled again.
    let bob = login(&server, "bob").await;
    let mut events = support::open_events(&server, "/api/v1/alerts/stream", &bob).await;
    let (status, answer) = post(&server, "/api/v1/users/bob/disable", TOKEN, json!({})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(stream_ends_within(&mut events, Duration::from_secs(6)).await);
    assert_eq!(get(&server, "/api/v1/me", &bob).await.0, 401);
    let (status, _) = login_from(&server, [127, 0, 0, 1], "bob", "bob-password").await;
    assert_eq!(status, 403);
    let (status, _) = post(&server, "/api/v1/users/bob/enable", TOKEN, json!({})).await;
    assert_eq!(status, 200);
    let bob = login(&server, "bob").await;
    // Bob changes his own password: the old one stops working, his token goes on.
    let (status, answer) = post(
        &server,
        "/api/v1/me/password",
        &bob,
        json!({"current": "wrong-password", "new": "a-new-long-password"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(
        &server,
        "/api/v1/me/password",
        &bob,
        json!({"current": "bob-password", "new": "a-new-long-password"}),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    assert_eq!(get(&server, "/api/v1/me", &bob).await.0, 200);
    let (status, _) = login_from(&server, [127, 0, 0, 1], "bob", "bob-password").await;
    assert_eq!(status, 401);
    // An admin resets it: every session of bob's ends.
    let (status, _) = post(
        &server,
        "/api/v1/users/bob/password",
        TOKEN,
        json!({"password": "reset-by-the-admin"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&server, "/api/v1/me", &bob).await.0, 401);
    let (status, _) = login_from(&server, [127, 0, 0, 1], "bob", "reset-by-the-admin").await;
    assert_eq!(status, 200);
}

/// The audit entries of `actor`.
async fn audit_of(server: &TestServer, actor: &str) -> Vec<Value> {
    let (status, audit) = get(server, &format!("/api/v1/audit?actor={actor}"), TOKEN).await;
    assert_eq!(status, 200, "{audit}");
    audit["entries"].as_array().expect("entries").clone()
}

#[tokio::test]
async fn refused_movement_queries_are_audited_and_a_purpose_must_say_something() {
    let server = TestServer::start().await;
    provision(&server, 1001, 500).await;
    create_user(&server, "bob", "officer").await;
    create_user(&server, "alice", "owner").await;
    let bob = login(&server, "bob").await;
    let alice = login(&server, "alice").await;
    for filler in [
        "%E2%80%8B%E2%80%8B%E2%80%8B",
        "%00%00%00",
        "xxx",
        "---",
        "  a  ",
    ] {
        let (status, error) = get(
            &server,
            &format!("/api/v1/vehicles/500/track?purpose={filler}"),
            &bob,
        )
        .await;
        assert_eq!(status, 400, "{filler}: {error}");
        assert_eq!(error["error"]["field"], "purpose");
    }
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/500/track?purpose=case%20C-77",
        &bob,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/500/track?purpose=%E7%9B%97%E7%AA%83%E6%A1%88",
        &bob,
    )
    .await;
    assert_eq!(status, 200, "a purpose in Chinese says something");
    // Alerts about one vehicle are its sightings: a purpose, and an entry in the log.
    let (status, error) = get(&server, "/api/v1/alerts?tag=500", &bob).await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = get(&server, "/api/v1/alerts?tag=500&purpose=case%20C-77", &bob).await;
    assert_eq!(status, 200);
    let entries = audit_of(&server, "bob").await;
    let outcomes: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(outcomes.len(), 9, "{entries:?}");
    assert_eq!(
        outcomes[..5],
        [("vehicle.track", "refused: invalid_field"); 5]
    );
    assert_eq!(outcomes[5..7], [("vehicle.track", "answered"); 2]);
    assert_eq!(
        outcomes[7..],
        [
            ("vehicle.alerts", "refused: invalid_field"),
            ("vehicle.alerts", "answered")
        ]
    );
    // An owner asking for someone else's vehicle gets the answer for no vehicle at all, and
    // the attempt is logged.
    let (status, theirs) = get(&server, "/api/v1/vehicles/500/location", &alice).await;
    let (status_missing, missing) = get(&server, "/api/v1/vehicles/999/location", &alice).await;
    assert_eq!((status.as_u16(), status_missing.as_u16()), (404, 404));
    assert_eq!(
        theirs["error"]["message"]
            .as_str()
            .map(|m| m.replace("500", "999")),
        missing["error"]["message"].as_str().map(str::to_owned)
    );
    let (status, _) = get(
        &server,
        "/api/v1/tags/near?lat=23.26&lon=116.69&radius_m=100",
        &alice,
    )
    .await;
    assert_eq!(status, 403);
    let entries = audit_of(&server, "alice").await;
    let refused: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("tag:500", "refused: not_found"),
            ("tag:999", "refused: not_found"),
            ("area", "refused: forbidden"),
        ]
    );
    // A query refused for a malformed parameter is written too, naming why.
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/500/track?from=yesterday&purpose=case%20C-77",
        &bob,
    )
    .await;
    assert_eq!(status, 400);
    let last = audit_of(&server, "bob").await.pop().expect("an entry");
    assert_eq!(
        (
            last["action"].clone(),
            last["outcome"].clone(),
            last["target"].clone()
        ),
        (
            json!("vehicle.track"),
            json!("refused: invalid_field"),
            json!("tag:500")
        )
    );
    // So is one whose parameters cannot be read at all, with the purpose it states.
    for (path, action, target) in [
        (
            "/api/v1/tags/near?lat=north&lon=116.69&radius_m=100&purpose=case%20C-78",
            "tags.near",
            "area",
        ),
        (
            "/api/v1/vehicles/500/companions?within_s=-1&purpose=case%20C-78",
            "vehicle.companions",
            "tag:500",
        ),
        (
            "/api/v1/alerts?tag=500&limit=many&purpose=case%20C-78",
            "vehicle.alerts",
            "tag:500",
        ),
    ] {
        let (status, error) = get(&server, path, &bob).await;
        assert_eq!(status, 400, "{path}: {error}");
        let last = audit_of(&server, "bob").await.pop().expect("an entry");
        assert_eq!(
            [
                &last["action"],
                &last["target"],
                &last["purpose"],
                &last["outcome"]
            ],
            [
                &json!(action),
                &json!(target),
                &json!("case C-78"),
                &json!("refused: invalid_body")
            ],
            "{path}"
        );
    }
    // The log is searched by vehicle and by time too.
    let (_, by_tag) = get(&server, "/api/v1/audit?tag=999", TOKEN).await;
    assert_eq!(by_tag["entries"].as_array().map(Vec::len), Some(1));
    let (_, future) = get(&server, "/api/v1/audit?from=2999-01-01T00:00:00Z", TOKEN).await;
    assert_eq!(future["entries"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn the_small_holes_are_closed() {
    let server = TestServer::start().await;
    provision(&server, 1001, 500).await;
    create_user(&server, "bob", "officer").await;
    create_user(&server, "dave", "officer").await;
    let bob = login(&server, "bob").await;
    let dave = login(&server, "dave").await;
    // A method a path does not take: 405 with the JSON error.
    let response = reqwest::Client::new()
        .delete(server.url("/api/v1/stations"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // A body is a JSON object: serde would read a struct from an array (this opened a case).
    let (status, error) = post(
        &server,
        "/api/v1/vehicles/500/theft",
        &bob,
        json!([null, null]),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = get(&server, "/api/v1/audit?after=-1", TOKEN).await;
    assert_eq!(status, 400);
    // The admin token is not a user named admin in the audit log.
    create_user(&server, "admin", "officer").await;
    let (status, _) = get(
        &server,
        "/api/v1/vehicles/500/track?purpose=case%2012",
        TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(audit_of(&server, "admin").await.len(), 0);
    assert_eq!(audit_of(&server, "(admin%20token)").await.len(), 1);
    // An all-zero station key is no secret.
    let (status, error) = post(
        &server,
        "/api/v1/stations",
        TOKEN,
        json!({"id": 2002, "name": "Zero", "lat": 23.2, "lon": 116.6, "key": "0".repeat(64)}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "key");
    // One officer cannot move another's patrol unit.
    let unit = |lat: f64| json!({"unit": "P-7", "lat": lat, "lon": 116.6, "available": true});
    assert_eq!(
        post(&server, "/api/v1/patrol/position", &bob, unit(23.2))
            .await
            .0,
        200
    );
    assert_eq!(
        post(&server, "/api/v1/patrol/position", &dave, unit(23.9))
            .await
            .0,
        409
    );
    assert_eq!(
        post(&server, "/api/v1/patrol/position", &bob, unit(23.3))
            .await
            .0,
        200
    );
    // A box exactly 0.1 degrees wide, as typed.
    let (status, answer) = get(
        &server,
        &format!(
            "/api/v1/tags/through?south=23.2&west=116.6&north=23.3&east=116.7&from={}&to={}&purpose=case%2012",
            tagwatch_model::time::to_rfc3339(tagwatch_model::time::now_ms() - 600_000),
            tagwatch_model::time::to_rfc3339(tagwatch_model::time::now_ms()),
        ),
        &bob,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}
