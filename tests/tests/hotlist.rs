//! A force's stolen-vehicle list imported as CSV: one upload opens or updates the cases of the
//! registered vehicles it names (by plate however typed, or by tag), answers every refused line
//! with its field and why, alerts a listed vehicle's sightings since it was listed, and closes
//! the cases whose entries lapse.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{
    client, create_user, get, login, next_alert_within, open_events, post, TestServer, TestStation,
    TOKEN,
};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_model::time::{now_ms, to_rfc3339};

async fn register(server: &TestServer, tag: u32, plate: &str) {
    let (status, body) = post(
        server,
        "/api/v1/vehicles",
        TOKEN,
        json!({ "tag": tag, "plate": plate, "owner_name": "Zhou", "owner_phone": "1" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn upload(server: &TestServer, token: &str, csv: &str) -> (u16, Value) {
    let response = client()
        .post(server.url("/api/v1/hotlist"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn refusal(answer: &Value, line: u64) -> (Value, String) {
    let refused = answer["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .find(|r| r["line"] == line)
        .unwrap_or_else(|| panic!("line {line} refused in {answer}"));
    (
        refused["field"].clone(),
        refused["message"].as_str().expect("message").to_owned(),
    )
}

#[tokio::test]
async fn a_list_opens_and_updates_cases_and_says_which_lines_it_refused() {
    let server = TestServer::start().await;
    support::provision(&server, 4001, 60).await;
    register(&server, 61, "粤D·00061").await;
    register(&server, 62, "粤D·00062").await;
    register(&server, 63, "粤D·00063").await;
    // Two registrations whose plates differ only in separators: a plate-only line is ambiguous.
    register(&server, 64, "GD 123").await;
    register(&server, 65, "GD-123").await;
    // 63 was already reported stolen by the police.
    let (status, _) = post(&server, "/api/v1/vehicles/63/theft", TOKEN, json!({})).await;
    assert_eq!(status, 201);
    // 62 was heard two minutes ago, after the list reported it (five minutes ago).
    let station = TestStation::udp(4001, 1, server.udp()).await;
    let now = now_ms();
    assert_eq!(
        station
            .exchange(&station.detections(1, now - 120_000, &[62]))
            .await,
        AckStatus::Accepted
    );
    let mut events = open_events(&server, "/api/v1/alerts/stream", TOKEN).await;

    let reported = to_rfc3339(now - 300_000);
    let csv = format!(
        "plate,tag,reason,reported_at,expires_at\n\
         粤d 00061,,stolen from the market,2026-12-01,\n\
         ,62,taken at night,{reported},2099-12-31\n\
         粤D-00063,,listed too,2026-12-01,\n\
         GD123,,ambiguous,2026-12-01,\n\
         ZZ999,,not ours,2026-12-01,\n\
         ,abc,bad tag,2026-12-01,\n\
         粤D·00061,,listed twice,2026-12-01,\n\
         ,66,,2026-12-01,\n\
         ,67,from the future,2999-01-01,\n\
         ,68,lapsed,2026-12-01,2020-01-01\n\
         ,,no vehicle,2026-12-01,\n\
         ,69,bad date,yesterday,\n"
    );
    let (status, answer) = upload(&server, TOKEN, &csv).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["lines"], 12, "{answer}");
    assert_eq!(
        (
            &answer["opened"],
            &answer["updated"],
            &answer["already_reported"]
        ),
        (&json!(2), &json!(0), &json!(1)),
        "{answer}"
    );
    let applied: Vec<(u64, u64, String)> = answer["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .map(|a| {
            (
                a["line"].as_u64().expect("line"),
                a["tag"].as_u64().expect("tag"),
                a["outcome"].as_str().expect("outcome").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        applied,
        vec![
            (2, 61, "opened".to_owned()),
            (3, 62, "opened".to_owned()),
            (4, 63, "already_reported".to_owned())
        ]
    );
    assert_eq!(answer["refused"].as_array().expect("refused").len(), 9);
    for (line, field, says) in [
        (5, json!("plate"), "2 registered vehicles have this plate"),
        (6, json!("plate"), "no registered vehicle"),
        (7, json!("tag"), "not a number"),
        (
            8,
            json!(null),
            "the same vehicle (plate 粤D00061) as line 2",
        ),
        (9, json!("reason"), "reason is empty"),
        (10, json!("reported_at"), "in the future"),
        (11, json!("expires_at"), "already expired"),
        (12, json!(null), "neither a plate nor a tag"),
        (
            13,
            json!("reported_at"),
            "neither an RFC 3339 time nor a date",
        ),
    ] {
        let (f, message) = refusal(&answer, line);
        assert_eq!(f, field, "line {line}: {message}");
        assert!(message.contains(says), "line {line}: {message}");
    }

    // Listed vehicles are stolen now: 62's sighting since the listing is alerted at once.
    let alert = next_alert_within(&mut events, Duration::from_secs(10))
        .await
        .expect("the look-back alert");
    assert_eq!(
        (&alert["kind"], &alert["tag"]),
        (&json!("stolen_sighting"), &json!(62)),
        "{alert}"
    );
    assert_eq!(alert["vehicle"]["stolen"], true);
    // And 61's next sighting alerts.
    assert_eq!(
        station.exchange(&station.detections(2, now, &[61])).await,
        AckStatus::Accepted
    );
    let alert = next_alert_within(&mut events, Duration::from_secs(10))
        .await
        .expect("a sighting of a listed vehicle");
    assert_eq!(
        (&alert["tag"], &alert["detail"]["case"]),
        (&json!(61), &answer["applied"][0]["case_id"])
    );

    // The same list again, with a new reason for 62: its case is updated, not opened twice.
    let again = format!("tag,reason,reported_at\n62,taken at night (confirmed),{reported}\n");
    let (status, second) = upload(&server, TOKEN, &again).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        (&second["opened"], &second["updated"]),
        (&json!(0), &json!(1)),
        "{second}"
    );
    assert_eq!(
        second["applied"][0]["case_id"],
        answer["applied"][1]["case_id"]
    );

    // Whole-file refusals: an unknown column, no reason column, not CSV; roles; the audit log.
    for (csv, says) in [
        (
            "plate,colour,reason,reported_at\n",
            "unknown column \"colour\"",
        ),
        (
            "plate,reported_at\nAB1,2026-12-01\n",
            "no \"reason\" column",
        ),
        (
            "reason,reported_at\nx,2026-12-01\n",
            "\"plate\" or a \"tag\"",
        ),
    ] {
        let (status, body) = upload(&server, TOKEN, csv).await;
        assert_eq!(status, 400, "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(says), "{message}");
    }
    // A list larger than an ordinary request body (64 KiB) is taken whole; one over 4 MiB is not.
    let mut big = String::from("plate,reason,reported_at\n");
    for i in 0..3_000 {
        big.push_str(&format!(
            "QX{i:05},a list entry for someone else's car,2026-12-01\n"
        ));
    }
    assert!(big.len() > 64 * 1024);
    let (status, body) = upload(&server, TOKEN, &big).await;
    assert_eq!((status, &body["lines"]), (200, &json!(3_000)));
    assert_eq!(body["refused"].as_array().expect("refused").len(), 3_000);
    let huge = big.repeat(40);
    assert!(huge.len() > 4 << 20);
    let (status, body) = upload(&server, TOKEN, &huge).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("too_large")),
        "{body}"
    );
    create_user(&server, "li.na", "officer").await;
    let officer = login(&server, "li.na").await;
    let (status, _) = upload(&server, &officer, "tag,reason,reported_at\n").await;
    assert_eq!(status, 403);
    let (_, audit) = get(&server, "/api/v1/audit?limit=1000", TOKEN).await;
    let imports: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "hotlist.import")
        .map(|e| e["target"].as_str().expect("target"))
        .collect();
    assert_eq!(
        imports,
        vec![
            "hotlist lines:12 opened:2 updated:0 already_reported:1 refused:9",
            "hotlist lines:1 opened:0 updated:1 already_reported:0 refused:0",
            "hotlist lines:3000 opened:0 updated:0 already_reported:0 refused:3000"
        ]
    );
}

/// Whether the plate search says tag 70 (plate `P-70`) is stolen.
async fn stolen(server: &TestServer) -> Value {
    let url = "/api/v1/vehicles/search?plate=P-70&purpose=hotlist-check";
    let (_, body) = get(server, url, TOKEN).await;
    body["vehicles"][0]["vehicle"]["stolen"].clone()
}

#[tokio::test]
async fn a_lapsed_entry_closes_its_case() {
    let mut server = TestServer::start().await;
    support::provision(&server, 4002, 70).await;
    let expires = to_rfc3339(now_ms() + 1_500);
    let csv =
        format!("tag,reason,reported_at,expires_at\n70,listed briefly,2026-12-01,{expires}\n");
    let (status, answer) = upload(&server, TOKEN, &csv).await;
    assert_eq!((status, &answer["opened"]), (200, &json!(1)), "{answer}");
    assert_eq!(stolen(&server).await, json!(true));
    // The sweep runs at start and every minute: after the expiry, a restart sweeps at once.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    server.restart().await;
    let mut closed = false;
    for _ in 0..50 {
        if stolen(&server).await == json!(false) {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the lapsed entry's case is closed");
    // Its next sighting raises nothing.
    let mut events = open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let station = TestStation::udp(4002, 2, server.udp()).await;
    assert_eq!(
        station
            .exchange(&station.detections(1, now_ms(), &[70]))
            .await,
        AckStatus::Accepted
    );
    assert!(
        next_alert_within(&mut events, Duration::from_secs(2))
            .await
            .is_none(),
        "no alert for a vehicle no longer listed"
    );
}
