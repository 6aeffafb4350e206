//! Webhooks, as a dispatch system on loopback hears them: an admin registers a URL with the
//! alert kinds it wants and a secret; each such alert arrives as JSON signed with an HMAC the
//! receiver can check; a receiver that fails is retried with growing delays until it answers,
//! across a server restart; every attempt is in the webhook's delivery log.

mod support;

use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{call, get, post, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;
use tokio::sync::mpsc;

const SECRET: &str = "cad-shared-secret-0123456789";

/// What the receiver got, when: its headers and body.
type Received = (std::time::Instant, HeaderMap, Vec<u8>);

/// A dispatch system's endpoint on loopback: answers each POST with the next status queued
/// (200 when none), and passes on what it received.
async fn receiver(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let statuses = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let app = axum::Router::new().route(
        "/cad/alerts",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            let statuses = statuses.clone();
            async move {
                let _ = tx.send((std::time::Instant::now(), headers, body.to_vec()));
                let next = statuses
                    .lock()
                    .expect("statuses")
                    .pop_front()
                    .unwrap_or(200);
                StatusCode::from_u16(next).expect("status")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/cad/alerts", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>, within: Duration) -> Option<Received> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Checks the signature the way a receiver would, from the documented scheme; the body's JSON.
fn verified((_, headers, body): &Received) -> Value {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("header {name}"))
            .to_owned()
    };
    let timestamp = header("x-tagwatch-timestamp");
    let now = tagwatch_model::time::now_ms() / 1000;
    let sent: i64 = timestamp.parse().expect("a number");
    assert!((now - sent).abs() < 30, "timestamp {sent} is now");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        header("x-tagwatch-signature"),
        expected,
        "signed with the secret"
    );
    assert_eq!(header("content-type"), "application/json");
    let json: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        header("x-tagwatch-delivery"),
        json["delivery_id"].to_string()
    );
    json
}

#[tokio::test]
async fn alerts_reach_a_webhook_signed_and_a_failing_one_is_retried_across_a_restart() {
    let mut server = TestServer::start_with(|config| {
        // Attempts 2 and 3 come 1.5 s and 3 s after the one before.
        config.api.webhook_first_retry = Duration::from_millis(1_500);
    })
    .await;
    support::provision(&server, 5001, 80).await;
    // Answers 503 twice, then takes the alerts.
    let (url, mut received) = receiver(vec![503, 503]).await;
    let (status, hook) = post(
        &server,
        "/api/v1/webhooks",
        TOKEN,
        json!({ "url": url, "kinds": ["stolen_sighting"], "secret": SECRET }),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    assert!(
        !hook.to_string().contains(SECRET),
        "the secret is never shown"
    );
    let id = hook["id"].as_i64().expect("id");
    let (_, list) = get(&server, "/api/v1/webhooks", TOKEN).await;
    assert_eq!(list["webhooks"][0]["kinds"], json!(["stolen_sighting"]));
    assert!(!list.to_string().contains(SECRET));

    // A sighting, then a theft report: the look-back raises a stolen sighting.
    let station = TestStation::udp(5001, 1, server.udp()).await;
    let now = tagwatch_model::time::now_ms();
    assert_eq!(
        station
            .exchange(&station.detections(1, now - 2_000, &[80]))
            .await,
        AckStatus::Accepted
    );
    let (status, _) = post(&server, "/api/v1/vehicles/80/theft", TOKEN, json!({})).await;
    assert_eq!(status, 201);

    // First attempt (503), then retries: the same delivery, signed each time.
    let first = verified(
        &next(&mut received, Duration::from_secs(10))
            .await
            .expect("attempt 1"),
    );
    assert_eq!(
        (&first["event"], &first["attempt"], &first["alert"]["kind"]),
        (&json!("alert"), &json!(1), &json!("stolen_sighting"))
    );
    assert_eq!(first["alert"]["tag"], 80);
    assert_eq!(first["alert"]["vehicle"]["plate"], "P-80");
    assert_eq!(first["alert"]["vehicle"]["stolen"], true);
    let second = verified(
        &next(&mut received, Duration::from_secs(10))
            .await
            .expect("attempt 2"),
    );
    assert_eq!(second["delivery_id"], first["delivery_id"]);
    assert_eq!(second["attempt"], 2);

    // The server restarts before the third attempt: the delivery was kept, and is made.
    server.restart().await;
    let third = verified(
        &next(&mut received, Duration::from_secs(15))
            .await
            .expect("attempt 3"),
    );
    assert_eq!(
        (&third["delivery_id"], &third["attempt"]),
        (&first["delivery_id"], &json!(3))
    );
    // The log: delivered after three attempts, the last outcome HTTP 200.
    let mut log = json!(null);
    for _ in 0..50 {
        log = get(&server, &format!("/api/v1/webhooks/{id}/deliveries"), TOKEN)
            .await
            .1;
        if log["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entry = &log["deliveries"][0];
    assert_eq!(
        (&entry["state"], &entry["attempts"], &entry["outcome"]),
        (&json!("delivered"), &json!(3), &json!("HTTP 200")),
        "{log}"
    );
    assert_eq!(entry["alert_seq"], first["alert"]["seq"]);
    assert!(entry["next_attempt_at"].is_null());
    // Nothing is delivered twice, and a kind it did not ask for (a panic button) is not sent.
    let station = TestStation::udp(5001, 2, server.udp()).await;
    let mut panic_frame = station.detections(1, tagwatch_model::time::now_ms(), &[80]);
    if let tagwatch_gateway::wire::Body::Detections(ref mut records) = panic_frame.body {
        records[0].tag_flags = tagwatch_model::tag_flags::PANIC;
    }
    assert_eq!(station.exchange(&panic_frame).await, AckStatus::Accepted);
    if let Some(extra) = next(&mut received, Duration::from_secs(2)).await {
        let extra = verified(&extra);
        assert_ne!(
            extra["delivery_id"], first["delivery_id"],
            "delivered twice"
        );
        assert_eq!(extra["alert"]["kind"], "stolen_sighting", "{extra}");
    }

    // Removed: nothing more is sent, and it is gone from the list.
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, list) = get(&server, "/api/v1/webhooks", TOKEN).await;
    assert_eq!(list["webhooks"], json!([]));
}

#[tokio::test]
async fn a_webhook_is_refused_with_the_field_at_fault() {
    let server = TestServer::start().await;
    for (body, field) in [
        (
            json!({ "url": "ftp://x.example/", "secret": SECRET }),
            "url",
        ),
        (json!({ "url": "not a url", "secret": SECRET }), "url"),
        (
            json!({ "url": "http://user:pw@x.example/", "secret": SECRET }),
            "url",
        ),
        (
            json!({ "url": "http://x.example/", "secret": "short" }),
            "secret",
        ),
        (
            json!({ "url": "http://x.example/", "secret": SECRET, "kinds": ["stolen"] }),
            "kinds",
        ),
    ] {
        let (status, answer) = post(&server, "/api/v1/webhooks", TOKEN, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    support::create_user(&server, "officer.w", "officer").await;
    let officer = support::login(&server, "officer.w").await;
    let (status, _) = post(
        &server,
        "/api/v1/webhooks",
        &officer,
        json!({ "url": "http://x.example/", "secret": SECRET }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = get(&server, "/api/v1/webhooks/99/deliveries", TOKEN).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        "/api/v1/webhooks/99",
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 404);
}
