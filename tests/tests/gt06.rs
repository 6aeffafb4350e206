//! A GPS tracker speaking GT06 to the real server, as a device would: an unknown IMEI is refused;
//! a registered one logs in, heartbeats and sends fixes, each acknowledged with its serial; the
//! fixes are in the vehicle's location (with the device's speed and course) and track; an SOS
//! reaches the officers' live stream; an engine stop waits while the vehicle moves and reaches
//! the device once it is slow, and its answer is shown.

mod support;

use std::time::Duration;
use support::{call, get, next_alert_within, open_events, post, provision, TestServer, TOKEN};
use tagwatch_devices::gt06::{device, reply, Frame};
use tagwatch_devices::{Fix, Imei};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TAG: u32 = 41;
const IMEI: &str = "868120300212345";
const PURPOSE: &str = "case 2026-117 pursuit";

/// A device's connection: it sends messages and reads the server's frames.
struct Device {
    stream: TcpStream,
    buffer: Vec<u8>,
    serial: u16,
}

impl Device {
    async fn connect(server: &TestServer) -> Self {
        let addr = server.get().gt06_addr.expect("the GT06 listener is on");
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            stream,
            buffer: Vec::new(),
            serial: 0,
        }
    }

    fn next_serial(&mut self) -> u16 {
        self.serial += 1;
        self.serial
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// The next whole frame from the server within `wait`; None on timeout or close.
    async fn frame_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Ok(total) = tagwatch_devices::gt06::frame::check(&self.buffer, 1024) {
                return Some(self.buffer.drain(..total).collect());
            }
            let mut chunk = [0u8; 512];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a message and expects its acknowledgement: same protocol and serial.
    async fn exchange(&mut self, bytes: Vec<u8>) {
        self.send(&bytes).await;
        let sent = Frame::parse(&bytes).expect("our frame");
        let ack = self
            .frame_within(Duration::from_secs(5))
            .await
            .expect("an acknowledgement");
        assert_eq!(
            ack,
            reply::ack(&sent).expect("acknowledged kind"),
            "the exact acknowledgement"
        );
    }

    /// Whether the server closed the connection (EOF) within `wait`, having sent nothing.
    async fn closed_silently_within(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(wait, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn fix_at(at_ms: i64, lat: f64, lon: f64, speed_kmh: u16, course_deg: u16) -> Fix {
    Fix {
        at_ms,
        lat,
        lon,
        speed_kmh,
        course_deg,
        valid: true,
        satellites: Some(9),
        ignition: Some(true),
    }
}

#[tokio::test]
async fn a_gt06_tracker_reports_into_the_vehicles_track_alerts_and_takes_an_engine_stop() {
    let server = TestServer::start().await;
    provision(&server, 1, TAG).await;

    // Before registration the IMEI is unknown: no answer, connection closed, counted.
    let imei = Imei::parse(IMEI).expect("imei");
    let mut stranger = Device::connect(&server).await;
    let login = device::login(imei, 1);
    stranger.send(&login).await;
    assert!(
        stranger
            .closed_silently_within(Duration::from_secs(5))
            .await,
        "an unknown device is refused without a reply"
    );
    assert_eq!(
        server
            .series("tagwatch_gt06_rejected_total{reason=\"unknown_device\"}")
            .await,
        1.0
    );

    // Registration: bad IMEIs and unknown tags are refused with the field named.
    let (status, body) = post(
        &server,
        "/api/v1/trackers",
        TOKEN,
        serde_json::json!({"imei": "12345", "tag": TAG}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (400, Some("imei")),
        "{body}"
    );
    let (status, _) = post(
        &server,
        "/api/v1/trackers",
        TOKEN,
        serde_json::json!({"imei": IMEI, "tag": 999}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, tracker) = post(
        &server,
        "/api/v1/trackers",
        TOKEN,
        serde_json::json!({"imei": IMEI, "tag": TAG}),
    )
    .await;
    assert_eq!(status, 201, "{tracker}");
    let (status, _) = post(
        &server,
        "/api/v1/trackers",
        TOKEN,
        serde_json::json!({"imei": IMEI, "tag": TAG}),
    )
    .await;
    assert_eq!(status, 409, "registered twice");
    let station = tracker["station"].as_u64().expect("station");
    assert!(station >= 3_000_000_000);

    let mut events = open_events(&server, "/api/v1/alerts/stream", TOKEN).await;
    let mut d = Device::connect(&server).await;
    let serial = d.next_serial();
    d.exchange(device::login(imei, serial)).await;
    let serial = d.next_serial();
    d.exchange(device::heartbeat(5, serial)).await;

    // Five fixes heading east at 60 km/h, 20 s apart (about 330 m each).
    let start = tagwatch_model::time::now_ms() - 120_000;
    let fixes: Vec<Fix> = (0..5)
        .map(|i| {
            fix_at(
                start + i * 20_000,
                23.1000,
                116.6000 + 0.0033 * i as f64,
                60,
                90,
            )
        })
        .collect();
    for f in &fixes {
        let serial = d.next_serial();
        d.exchange(device::fix(f, serial)).await;
    }

    let (status, location) = get(
        &server,
        &format!("/api/v1/vehicles/{TAG}/location?purpose={PURPOSE}"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{location}");
    let last = fixes.last().expect("fixes");
    assert_eq!(location["source"], "gps", "{location}");
    assert_eq!(location["station"].as_u64(), Some(station));
    assert!(
        (location["lat"].as_f64().expect("lat") - last.lat).abs() < 1e-5,
        "{location}"
    );
    assert!(
        (location["lon"].as_f64().expect("lon") - last.lon).abs() < 1e-5,
        "{location}"
    );
    assert_eq!(location["gps"]["speed_kmh"], 60);
    assert_eq!(location["gps"]["course_deg"], 90);
    assert_eq!(location["speed_mps"].as_f64(), Some(16.7));

    // The track: one point per fix, in time order, each marked as a GPS fix. Fixes reach the
    // store's table of reader fixes at the next flush.
    let mut points = Vec::new();
    for _ in 0..50 {
        let (status, track) = get(
            &server,
            &format!("/api/v1/vehicles/{TAG}/track?purpose={PURPOSE}"),
            TOKEN,
        )
        .await;
        assert_eq!(status, 200, "{track}");
        points = track["features"].as_array().expect("features").clone();
        if points.len() == fixes.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(points.len(), fixes.len(), "{points:?}");
    for (point, f) in points.iter().zip(&fixes) {
        assert_eq!(point["properties"]["source"], "gps");
        let [lon, lat] = [
            point["geometry"]["coordinates"][0].as_f64(),
            point["geometry"]["coordinates"][1].as_f64(),
        ];
        assert!(
            (lat.expect("lat") - f.lat).abs() < 1e-5 && (lon.expect("lon") - f.lon).abs() < 1e-5,
            "{point}"
        );
    }

    // In an area query near the last fix.
    let (status, near) = get(
        &server,
        &format!(
            "/api/v1/tags/near?lat={}&lon={}&radius_m=200&purpose={PURPOSE}",
            last.lat, last.lon
        ),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{near}");
    assert!(
        near.to_string().contains(&format!("\"tag\":{TAG}")),
        "{near}"
    );

    // And among the tags that passed through a box around the middle of the drive.
    let from = tagwatch_model::time::to_rfc3339(start - 60_000);
    let to = tagwatch_model::time::to_rfc3339(tagwatch_model::time::now_ms());
    let (status, through) = get(
        &server,
        &format!("/api/v1/tags/through?south=23.09&west=116.605&north=23.11&east=116.608&from={from}&to={to}&purpose={PURPOSE}"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200, "{through}");
    assert!(
        through.to_string().contains(&format!("\"tag\":{TAG}")),
        "{through}"
    );

    // SOS: a panic alert at the fix, naming the device, on the live stream.
    let sos_fix = fix_at(start + 100_000, 23.1000, 116.6170, 0, 90);
    let serial = d.next_serial();
    d.exchange(device::alarm(&sos_fix, 0x01, serial)).await;
    let alert = loop {
        let alert = next_alert_within(&mut events, Duration::from_secs(5))
            .await
            .expect("the SOS alert");
        if alert["kind"] == "panic" {
            break alert;
        }
    };
    assert_eq!(alert["tag"], TAG);
    assert_eq!(alert["station"].as_u64(), Some(station));
    assert_eq!(alert["detail"]["device"], IMEI);
    assert!(
        (alert["lon"].as_f64().expect("lon") - sos_fix.lon).abs() < 1e-5,
        "{alert}"
    );
    assert_eq!(
        server
            .series("tagwatch_gt06_alarms_total{alarm=\"sos\"}")
            .await,
        1.0
    );

    // Engine stop: only for a stolen vehicle, with a purpose.
    let engine = format!("/api/v1/vehicles/{TAG}/engine");
    let (status, _) = post(
        &server,
        &engine,
        TOKEN,
        serde_json::json!({"action": "stop", "purpose": PURPOSE}),
    )
    .await;
    assert_eq!(status, 409, "not reported stolen");
    let (status, _) = post(
        &server,
        &format!("/api/v1/vehicles/{TAG}/theft"),
        TOKEN,
        serde_json::json!({"note": "taken"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = post(
        &server,
        &engine,
        TOKEN,
        serde_json::json!({"action": "stop"}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (400, Some("purpose")),
        "{body}"
    );

    // Moving at 60 km/h: the stop is queued, not sent.
    let now = tagwatch_model::time::now_ms();
    let serial = d.next_serial();
    d.exchange(device::fix(&fix_at(now, 23.1000, 116.6200, 60, 90), serial))
        .await;
    let (status, queued) = post(
        &server,
        &engine,
        TOKEN,
        serde_json::json!({"action": "stop", "purpose": PURPOSE}),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["commands"][0]["state"], "queued");
    assert!(
        d.frame_within(Duration::from_millis(1500)).await.is_none(),
        "nothing is sent to a moving vehicle"
    );

    // Slowed to 8 km/h: the fix is acknowledged, then the command follows.
    let slow = fix_at(tagwatch_model::time::now_ms(), 23.1000, 116.6210, 8, 90);
    let serial = d.next_serial();
    d.exchange(device::fix(&slow, serial)).await;
    let command = d
        .frame_within(Duration::from_secs(5))
        .await
        .expect("the engine stop");
    let parsed = Frame::parse(&command).expect("a valid frame");
    assert_eq!(parsed.protocol, 0x80);
    assert!(parsed.content.ends_with(b"DYD#"), "{:?}", parsed.content);
    let flag = u32::from_be_bytes(parsed.content[1..5].try_into().expect("flag"));
    // A fix before the answer (devices report on their own schedule) does not lose the command.
    let stopped = fix_at(tagwatch_model::time::now_ms(), 23.1000, 116.6211, 0, 90);
    let serial = d.next_serial();
    d.exchange(device::fix(&stopped, serial)).await;
    let serial = d.next_serial();
    d.exchange(device::command_reply("DYD=Success!", flag, serial))
        .await;
    let mut answered = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, commands) = get(&server, &engine, TOKEN).await;
        answered = commands["commands"][0].clone();
        if answered["state"] == "answered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered["answer"], "DYD=Success!", "{answered}");
    assert!(answered["sent_at"].is_string());

    // The owner's resume is refused while the case is open; the tracker list shows the report.
    let (status, trackers) = get(&server, "/api/v1/trackers", TOKEN).await;
    assert_eq!(status, 200);
    let listed = &trackers["trackers"][0];
    assert_eq!(
        (listed["imei"].as_str(), listed["connected"].as_bool()),
        (Some(IMEI), Some(true)),
        "{trackers}"
    );
    assert_eq!(listed["last_report"]["fix"]["speed_kmh"], 0);
    assert_eq!(listed["last_report"]["alarm"], "sos");

    // The owner may not stop the engine, nor resume it while the case is open; once the
    // vehicle is recovered they may, and the resume goes out whatever the speed.
    support::create_user(&server, "rider", "owner").await;
    let rider_id = server
        .store()
        .user_by_name("rider")
        .await
        .expect("store")
        .expect("rider")
        .id;
    server
        .store()
        .set_vehicle_owner(tagwatch_model::TagId(TAG), rider_id)
        .await
        .expect("owner");
    let rider = support::login(&server, "rider").await;
    let (status, _) = post(
        &server,
        &engine,
        &rider,
        serde_json::json!({"action": "stop"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &server,
        &engine,
        &rider,
        serde_json::json!({"action": "resume"}),
    )
    .await;
    assert_eq!(status, 409, "still reported stolen");
    let (status, _) = post(
        &server,
        &format!("/api/v1/vehicles/{TAG}/recovered"),
        &rider,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let serial = d.next_serial();
    d.exchange(device::fix(
        &fix_at(tagwatch_model::time::now_ms(), 23.1, 116.63, 45, 90),
        serial,
    ))
    .await;
    let (status, resumed) = post(
        &server,
        &engine,
        &rider,
        serde_json::json!({"action": "resume"}),
    )
    .await;
    assert_eq!(status, 202, "{resumed}");
    let command = d
        .frame_within(Duration::from_secs(5))
        .await
        .expect("the resume");
    assert!(Frame::parse(&command)
        .expect("frame")
        .content
        .ends_with(b"HFYD#"));
    let (_, mine) = get(&server, "/api/v1/trackers", &rider).await;
    assert_eq!(
        mine["trackers"].as_array().map(Vec::len),
        Some(1),
        "the owner sees their tracker"
    );

    // Removed: its connection is closed at once.
    let (status, _) = call(
        &server,
        reqwest::Method::DELETE,
        &format!("/api/v1/trackers/{IMEI}"),
        TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        d.closed_silently_within(Duration::from_secs(5)).await,
        "a removed tracker is disconnected"
    );
}

#[tokio::test]
async fn garbage_and_forged_frames_are_counted_and_cost_only_themselves() {
    let server = TestServer::start().await;
    provision(&server, 1, TAG).await;
    let (status, _) = post(
        &server,
        "/api/v1/trackers",
        TOKEN,
        serde_json::json!({"imei": IMEI, "tag": TAG}),
    )
    .await;
    assert_eq!(status, 201);
    let imei = Imei::parse(IMEI).expect("imei");

    // A message before the login closes the connection.
    let mut early = Device::connect(&server).await;
    early.send(&device::heartbeat(5, 1)).await;
    assert!(early.closed_silently_within(Duration::from_secs(5)).await);
    assert_eq!(
        server
            .series("tagwatch_gt06_rejected_total{reason=\"not_logged_in\"}")
            .await,
        1.0
    );

    // A frame with a bad CRC is dropped, unanswered; the next good one is answered.
    let mut d = Device::connect(&server).await;
    d.exchange(device::login(imei, 1)).await;
    let mut corrupt = device::fix(
        &fix_at(tagwatch_model::time::now_ms(), 23.1, 116.6, 0, 0),
        2,
    );
    let at = corrupt.len() - 5;
    corrupt[at] ^= 0xFF;
    d.send(&corrupt).await;
    d.exchange(device::heartbeat(5, 3)).await;
    assert_eq!(
        server
            .series("tagwatch_gt06_rejected_total{reason=\"crc\"}")
            .await,
        1.0
    );

    // A position off the earth: refused by name, nothing stored.
    let mut bad = fix_at(tagwatch_model::time::now_ms(), 23.1, 116.6, 0, 0);
    bad.lat = 95.0;
    d.send(&device::fix(&bad, 4)).await;
    d.exchange(device::heartbeat(5, 5)).await;
    assert_eq!(
        server
            .series("tagwatch_gt06_rejected_total{reason=\"position\"}")
            .await,
        1.0
    );

    // An oversized extended frame ends the connection before its body is read.
    d.send(&[0x79, 0x79, 0xFF, 0xFF, 0x70]).await;
    assert!(d.closed_silently_within(Duration::from_secs(5)).await);
    assert_eq!(
        server
            .series("tagwatch_gt06_rejected_total{reason=\"too_long\"}")
            .await,
        1.0
    );
    let (status, _) = get(
        &server,
        &format!("/api/v1/vehicles/{TAG}/location?purpose={PURPOSE}"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 404, "no fix was stored");
}
