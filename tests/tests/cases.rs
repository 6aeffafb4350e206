//! Case work as a dispatcher does it: the open theft cases, newest first, each with its vehicle,
//! where it came from, its latest sighting and its assignee; assigning one to an officer; a
//! case's history and sightings; a recovered vehicle's case leaving the list, closed in its
//! history.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{create_user, get, login, post, TestServer, TestStation, TOKEN};
use tagwatch_gateway::wire::AckStatus;

fn case_of(list: &Value, tag: u64) -> &Value {
    list["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("cases in {list}"))
        .iter()
        .find(|c| c["tag"] == tag)
        .unwrap_or_else(|| panic!("tag {tag} in {list}"))
}

#[tokio::test]
async fn open_cases_are_listed_assigned_and_closed_with_their_history() {
    let server = TestServer::start().await;
    support::provision(&server, 6001, 90).await;
    support::provision(&server, 6002, 91).await;
    create_user(&server, "disp.zhang", "dispatcher").await;
    create_user(&server, "off.wang", "officer").await;
    create_user(&server, "owner.li", "owner").await;
    let dispatcher = login(&server, "disp.zhang").await;
    let officer = login(&server, "off.wang").await;

    let station = TestStation::udp(6001, 1, server.udp()).await;
    let now = tagwatch_model::time::now_ms();
    assert_eq!(
        station
            .exchange(&station.detections(1, now - 3_000, &[90]))
            .await,
        AckStatus::Accepted
    );
    for tag in [90, 91] {
        let (status, _) = post(
            &server,
            &format!("/api/v1/vehicles/{tag}/theft"),
            TOKEN,
            json!({ "note": "taken at night" }),
        )
        .await;
        assert_eq!(status, 201);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // 90's look-back sighting is its latest (once the alert is stored); 91 was never heard.
    let mut list = json!(null);
    for _ in 0..50 {
        list = get(&server, "/api/v1/cases", &officer).await.1;
        if !case_of(&list, 90)["latest_sighting"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tags: Vec<u64> = list["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["tag"].as_u64().expect("tag"))
        .collect();
    assert_eq!(tags, vec![91, 90], "newest first: {list}");
    let ninety = case_of(&list, 90);
    assert_eq!(ninety["vehicle"]["plate"], "P-90");
    assert_eq!(ninety["vehicle"]["stolen"], true);
    assert_eq!(
        (&ninety["source"], &ninety["note"]),
        (&json!("report"), &json!("taken at night"))
    );
    assert_eq!(ninety["latest_sighting"]["station"], 6001, "{list}");
    assert!(ninety["assignee"].is_null());
    assert!(case_of(&list, 91)["latest_sighting"].is_null());
    let case = ninety["case_id"].as_i64().expect("case id");

    // The dispatcher assigns it to an officer; an officer may not; an owner cannot be assigned.
    let path = format!("/api/v1/cases/{case}/assign");
    let (status, assigned) = post(
        &server,
        &path,
        &dispatcher,
        json!({ "username": "off.wang" }),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["assignee"], "off.wang");
    let (status, _) = post(&server, &path, &officer, json!({ "username": "off.wang" })).await;
    assert_eq!(status, 403);
    let (status, body) = post(
        &server,
        &path,
        &dispatcher,
        json!({ "username": "owner.li" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("username"))
    );
    let (status, _) = post(
        &server,
        "/api/v1/cases/9999/assign",
        &dispatcher,
        json!({ "username": "off.wang" }),
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = get(&server, "/api/v1/cases", &officer).await;
    assert_eq!(case_of(&list, 90)["assignee"], "off.wang");

    // Recovered: out of the list; its file keeps the history and the sighting.
    let (status, _) = post(
        &server,
        "/api/v1/vehicles/90/recovered",
        &officer,
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, list) = get(&server, "/api/v1/cases", &officer).await;
    assert_eq!(list["cases"].as_array().expect("cases").len(), 1, "{list}");
    let (status, file) = get(&server, &format!("/api/v1/cases/{case}"), &officer).await;
    assert_eq!(status, 200, "{file}");
    assert!(file["closed_at"].is_string(), "{file}");
    let history: Vec<(String, String, String)> = file["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            (
                e["by"].as_str().expect("by").to_owned(),
                e["kind"].as_str().expect("kind").to_owned(),
                e["detail"].as_str().expect("detail").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("disp.zhang".into(), "assigned".into(), "off.wang".into()),
            ("off.wang".into(), "closed".into(), "recovered".into())
        ]
    );
    assert_eq!(file["sightings"].as_array().expect("sightings").len(), 1);
    assert_eq!(file["sightings"][0]["station"], 6001);
    // Owners see no cases; an id that is not a number is refused by name.
    let owner = login(&server, "owner.li").await;
    let (status, _) = get(&server, "/api/v1/cases", &owner).await;
    assert_eq!(status, 403);
    let (status, body) = get(&server, "/api/v1/cases/abc", &officer).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["field"]),
        (400, &json!("id"))
    );
}
