//! What an officer sees of a vehicle: registration stores its plate, make, model and colour; an
//! admin corrects them; police find a vehicle by its plate however it is typed (stating a
//! purpose, audited with the tags found); every alert and area result names the vehicle and
//! says whether it is stolen, live on the stream too. Never the owner's contact. And the
//! console's history: the latest alerts, newest first, with their status.

mod support;

use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use support::{
    call, create_user, get, login, next_alert_within, open_events, post, TestServer, TestStation,
    TOKEN,
};
use tagwatch_gateway::wire::AckStatus;

async fn register(server: &TestServer, tag: u32, plate: &str, description: [&str; 3]) {
    let [make, model, colour] = description;
    let (status, body) = post(
        server,
        "/api/v1/vehicles",
        TOKEN,
        json!({ "tag": tag, "plate": plate, "make": make, "model": model, "colour": colour,
                "owner_name": "Chen Wei", "owner_phone": "+86 138 0000 0001" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (&body["plate"], &body["make"], &body["colour"]),
        (&json!(plate), &json!(make), &json!(colour))
    );
}

#[tokio::test]
async fn registration_edits_and_plate_search() {
    let server = TestServer::start().await;
    register(&server, 7, "粤A·B1234", ["Honda", "Wave 110", "red"]).await;
    register(&server, 8, "粤A·B1299", ["Yamaha", "JYM125", "black"]).await;
    register(&server, 9, "GD-Z 777", ["", "", ""]).await;
    // Without a description: empty, not refused.
    let (status, body) = post(
        &server,
        "/api/v1/vehicles",
        TOKEN,
        json!({ "tag": 10, "plate": "XY 1", "owner_name": "Li", "owner_phone": "1" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["make"]),
        (201, &json!("")),
        "{body}"
    );
    // The same plate typed another way is the same plate for search, but registration keeps
    // the raw text's uniqueness; a plate of separators only is refused by name.
    for (plate, why) in [("-·-", "letters or digits"), ("A", "letters or digits")] {
        let (status, body) = post(
            &server,
            "/api/v1/vehicles",
            TOKEN,
            json!({ "tag": 11, "plate": plate, "owner_name": "Li", "owner_phone": "1" }),
        )
        .await;
        assert_eq!(status, 400, "{plate}: {body}");
        assert_eq!(body["error"]["field"], "plate");
        assert!(body["error"]["message"]
            .as_str()
            .expect("present")
            .contains(why));
    }

    create_user(&server, "wang", "officer").await;
    let officer = login(&server, "wang").await;
    let search = |plate: &str, purpose: &str| {
        format!(
            "/api/v1/vehicles/search?plate={}&purpose={purpose}",
            urlencode(plate)
        )
    };
    // Case, spaces, hyphens and the middle dot do not matter; the exact plate comes first.
    for typed in ["粤a b1234", "粤A-B1234", "粤AB1234"] {
        let (status, body) = get(&server, &search(typed, "case-77"), &officer).await;
        assert_eq!(status, 200, "{body}");
        let found = body["vehicles"].as_array().expect("vehicles");
        assert_eq!(found.len(), 1, "{typed}: {body}");
        assert_eq!(found[0]["tag"], 7);
        let label = &found[0]["vehicle"];
        assert_eq!(
            (&label["plate"], &label["make"], &label["model"]),
            (&json!("粤A·B1234"), &json!("Honda"), &json!("Wave 110"))
        );
        assert_eq!(
            (&label["colour"], &label["stolen"]),
            (&json!("red"), &json!(false))
        );
        // Never heard: no location. Never the owner's contact.
        assert!(found[0]["location"].is_null(), "{body}");
        assert!(!body.to_string().contains("+86"), "{body}");
    }
    // A prefix finds both of its vehicles.
    let (_, body) = get(&server, &search("粤A B12", "case-77"), &officer).await;
    let tags: Vec<u64> = body["vehicles"]
        .as_array()
        .expect("present")
        .iter()
        .map(|v| v["tag"].as_u64().expect("present"))
        .collect();
    assert_eq!(tags, vec![7, 8], "{body}");
    assert_eq!(body["truncated"], false);
    // Nothing matches: an empty answer, not an error.
    let (status, body) = get(&server, &search("QQ99", "case-77"), &officer).await;
    assert_eq!(
        (
            status.as_u16(),
            body["vehicles"].as_array().expect("present").len()
        ),
        (200, 0)
    );

    // Refusals: no purpose, too short a plate, an owner.
    let (status, body) = get(&server, "/api/v1/vehicles/search?plate=GDZ777", &officer).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("purpose"))
    );
    let (status, body) = get(&server, &search("Z", "case-77"), &officer).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("plate"))
    );
    create_user(&server, "chen", "owner").await;
    let owner = login(&server, "chen").await;
    let (status, _) = get(&server, &search("GDZ777", "mine"), &owner).await;
    assert_eq!(status, 403);

    // Each search is in the audit log with its purpose, and so is each vehicle it found.
    let (_, audit) = get(&server, "/api/v1/audit?actor=wang&limit=1000", TOKEN).await;
    let lines = audit["entries"].as_array().expect("entries");
    let answered = |target: &str| {
        lines.iter().any(|l| {
            l["action"] == "vehicle.search"
                && l["target"] == target
                && l["purpose"] == "case-77"
                && l["outcome"] == "answered"
        })
    };
    for target in [
        "plate:粤AB1234",
        "plate:粤AB12",
        "plate:QQ99",
        "tag:7",
        "tag:8",
    ] {
        assert!(answered(target), "{target}: {audit}");
    }
    let (_, by_tag) = get(&server, "/api/v1/audit?tag=8", TOKEN).await;
    assert!(
        by_tag["entries"]
            .as_array()
            .expect("present")
            .iter()
            .any(|l| l["action"] == "vehicle.search" && l["actor"] == "wang"),
        "{by_tag}"
    );
    let refused = lines
        .iter()
        .filter(|l| {
            l["outcome"]
                .as_str()
                .expect("present")
                .starts_with("refused")
        })
        .count();
    assert!(refused >= 2, "{audit}");

    // An admin corrects the record: a new plate and a repaint; the rest stays.
    let (status, body) = call(
        &server,
        Method::PATCH,
        "/api/v1/vehicles/9",
        TOKEN,
        Some(json!({ "plate": "GD-Z 778", "colour": "blue", "make": "Suzuki" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            &body["plate"],
            &body["colour"],
            &body["make"],
            &body["owner_name"]
        ),
        (
            &json!("GD-Z 778"),
            &json!("blue"),
            &json!("Suzuki"),
            &json!("Chen Wei")
        )
    );
    let (_, body) = get(&server, &search("gdz778", "case-78"), &officer).await;
    assert_eq!(body["vehicles"][0]["vehicle"]["colour"], "blue", "{body}");
    let (_, body) = get(&server, &search("GDZ777", "case-78"), &officer).await;
    assert_eq!(
        body["vehicles"].as_array().expect("present").len(),
        0,
        "{body}"
    );
    // Only an admin edits; a plate already on another vehicle is a conflict; unknown tag 404.
    for (token, tag, change, expected) in [
        (officer.as_str(), 9, json!({ "colour": "green" }), 403),
        (TOKEN, 9, json!({ "plate": "粤A·B1234" }), 409),
        (TOKEN, 99, json!({ "colour": "green" }), 404),
        (TOKEN, 9, json!({ "plate": "" }), 400),
        (TOKEN, 9, json!({ "colour": "x".repeat(201) }), 400),
    ] {
        let path = format!("/api/v1/vehicles/{tag}");
        let (status, body) = call(&server, Method::PATCH, &path, token, Some(change)).await;
        assert_eq!(status.as_u16(), expected, "{body}");
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn alerts_and_area_results_name_the_vehicle_and_flag_the_stolen_one() {
    let server = TestServer::start().await;
    support::provision(&server, 2001, 40).await;
    register(&server, 41, "粤B·C5555", ["Haojue", "HJ125", "white"]).await;
    let station = TestStation::udp(2001, 1, server.udp()).await;
    let now = tagwatch_model::time::now_ms();
    assert_eq!(
        station
            .exchange(&station.detections(1, now - 5_000, &[40, 41]))
            .await,
        AckStatus::Accepted
    );
    // Reported stolen: the look-back alerts its latest sighting, live.
    let mut events = open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let (status, body) = post(&server, "/api/v1/vehicles/41/theft", TOKEN, json!({})).await;
    assert_eq!(status, 201, "{body}");
    let live = loop {
        let alert = next_alert_within(&mut events, Duration::from_secs(10))
            .await
            .expect("a stolen sighting on the stream");
        if alert["kind"] == "stolen_sighting" && alert["tag"] == 41 {
            break alert;
        }
    };
    let label = json!({ "plate": "粤B·C5555", "make": "Haojue", "model": "HJ125",
                        "colour": "white", "stolen": true });
    assert_eq!(live["vehicle"], label, "{live}");
    // The same in the list and on the alert's own page.
    // (Listed from the store: once the alert's batch is committed.)
    let mut listed = None;
    for _ in 0..50 {
        let (_, list) = get(&server, "/api/v1/alerts", TOKEN).await;
        listed = list["alerts"]
            .as_array()
            .expect("present")
            .iter()
            .find(|a| a["seq"] == live["seq"])
            .cloned();
        if listed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = listed.expect("the alert is listed");
    assert_eq!(listed["vehicle"], label);
    let (_, one) = get(&server, &format!("/api/v1/alerts/{}", live["seq"]), TOKEN).await;
    assert_eq!(one["vehicle"], label, "{one}");
    assert!(!one.to_string().contains("+86"), "{one}");

    // Near the station: both vehicles, the stolen one flagged, the other named.
    let p = support::station(2001).position;
    let (status, near) = get(
        &server,
        &format!(
            "/api/v1/tags/near?lat={}&lon={}&radius_m=300&purpose=case-5",
            p.lat, p.lon
        ),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{near}");
    let by_tag = |answer: &serde_json::Value, tag: u64| {
        answer["tags"]
            .as_array()
            .expect("present")
            .iter()
            .find(|t| t["tag"] == tag)
            .unwrap_or_else(|| panic!("tag {tag} in {answer}"))["vehicle"]
            .clone()
    };
    assert_eq!(by_tag(&near, 41), label);
    assert_eq!(by_tag(&near, 40)["plate"], "P-40");
    assert_eq!(by_tag(&near, 40)["stolen"], false);
    // Through the area over the last minute: the same labels.
    let from = tagwatch_model::time::to_rfc3339(now - 60_000);
    let to = tagwatch_model::time::to_rfc3339(now + 1_000);
    let (status, through) = get(
        &server,
        &format!(
            "/api/v1/tags/through?south={}&west={}&north={}&east={}&from={from}&to={to}&purpose=case-5",
            p.lat - 0.01,
            p.lon - 0.01,
            p.lat + 0.01,
            p.lon + 0.01
        ),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{through}");
    assert_eq!(by_tag(&through, 41), label);
    assert_eq!(by_tag(&through, 40)["stolen"], false);

    // Plate search finds the stolen one, stolen, and where it was just seen.
    let (_, found) = get(
        &server,
        "/api/v1/vehicles/search?plate=%E7%B2%A4BC5555&purpose=case-5",
        TOKEN,
    )
    .await;
    assert_eq!(found["vehicles"][0]["vehicle"], label, "{found}");
    assert_eq!(found["vehicles"][0]["location"]["station"], 2001, "{found}");

    // Recovered: no longer flagged.
    let (status, _) = post(&server, "/api/v1/vehicles/41/recovered", TOKEN, json!({})).await;
    assert_eq!(status, 200);
    let (_, one) = get(&server, &format!("/api/v1/alerts/{}", live["seq"]), TOKEN).await;
    assert_eq!(one["vehicle"]["stolen"], false, "{one}");
    // A repaint shows in the next answer (the API's own edit is never served stale).
    let (status, _) = call(
        &server,
        Method::PATCH,
        "/api/v1/vehicles/41",
        TOKEN,
        Some(json!({ "colour": "green" })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, one) = get(&server, &format!("/api/v1/alerts/{}", live["seq"]), TOKEN).await;
    assert_eq!(one["vehicle"]["colour"], "green", "{one}");
}

/// The console's alert history after a reload: the latest alerts newest first, each with its
/// status, and paging back from there.
#[tokio::test]
async fn the_latest_alerts_come_newest_first_with_their_status() {
    let server = TestServer::start().await;
    support::provision(&server, 3001, 50).await;
    for tag in [51, 52] {
        register(&server, tag, &format!("粤C·{tag}"), ["Honda", "", "red"]).await;
    }
    let station = TestStation::udp(3001, 1, server.udp()).await;
    let now = tagwatch_model::time::now_ms();
    assert_eq!(
        station
            .exchange(&station.detections(1, now - 5_000, &[50, 51, 52]))
            .await,
        AckStatus::Accepted
    );
    // Three thefts reported: three look-back alerts, seq 1..=3, in this order.
    for tag in [50, 51, 52] {
        let path = format!("/api/v1/vehicles/{tag}/theft");
        let (status, body) = post(&server, &path, TOKEN, json!({})).await;
        assert_eq!(status, 201, "{body}");
    }
    // (Listed from the store: once all three alerts' batches are committed.)
    for _ in 0..50 {
        let (_, all) = get(&server, "/api/v1/alerts?limit=10", TOKEN).await;
        if all["alerts"].as_array().is_some_and(|a| a.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latest = "/api/v1/alerts?before=9007199254740991&limit=2";
    let (_, page) = get(&server, latest, TOKEN).await;
    let seqs = |page: &serde_json::Value| {
        page["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| (a["tag"].as_u64().expect("tag"), a["status"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(&page),
        vec![(52, json!("open")), (51, json!("open"))],
        "{page}"
    );
    let newest = page["alerts"][0]["seq"].as_i64().expect("seq");
    let (status, _) = post(
        &server,
        &format!("/api/v1/alerts/{newest}/reject"),
        TOKEN,
        json!({ "reason": "owner was riding it" }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, page) = get(&server, latest, TOKEN).await;
    assert_eq!(seqs(&page)[0], (52, json!("rejected")), "{page}");
    // Paging back: below the second one.
    let second = page["alerts"][1]["seq"].as_i64().expect("seq");
    let (_, older) = get(
        &server,
        &format!("/api/v1/alerts?before={second}&limit=10"),
        TOKEN,
    )
    .await;
    assert_eq!(seqs(&older), vec![(50, json!("open"))], "{older}");
    // `before` must be a sequence number.
    let (status, body) = get(&server, "/api/v1/alerts?before=0", TOKEN).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("before"))
    );
}
