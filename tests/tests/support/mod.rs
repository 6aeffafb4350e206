//! Shared helpers: a real server on loopback, and a station that speaks raw TWB/1 to it.
#![allow(dead_code)]

pub mod cluster;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tagwatch::{Config, Secret, Server};
use tagwatch_gateway::wire::{self, AckStatus, Body, Frame, Record};
use tagwatch_model::{GeoPoint, SessionId, Station, StationId, StationKey, TagId, Vehicle};
use tagwatch_store::Store;
use tokio::net::UdpSocket;

pub const TOKEN: &str = "test-admin-token-0123456789";
/// `tracker.clock_skew_limit` for a simulated city that runs faster than real time or from a
/// fixed date: its stations' clocks are the simulation's, trusted as the demo trusts them (a
/// server otherwise moves every frame to its own clock).
#[allow(dead_code)]
pub const SIMULATED_CLOCKS: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A configuration on `database` with every socket on 127.0.0.1 at a port the system picks, and
/// the tests' admin token.
pub fn loopback(database: &str) -> Config {
    let mut config = Config::default();
    config.store.database = database.to_owned();
    config.listen = tagwatch::config::ListenSection::loopback();
    config.api.admin_token = Some(Secret(TOKEN.into()));
    config
}

/// A server on 127.0.0.1:0 over a SQLite file in a temp dir that outlives restarts.
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = loopback(&format!(
            "sqlite://{}",
            dir.path().join("tw.sqlite").display()
        ));
        config.store.flush_interval = Duration::from_millis(5);
        // The journal and checkpoints, as Postgres runs by default (SQLite's default writes
        // visits at every flush): the tests see visits not yet checkpointed.
        config.store.checkpoint_interval = Some(Duration::from_secs(30));
        tune(&mut config);
        let server = Server::start(&config).await.expect("server starts");
        Self {
            server: Some(server),
            dir,
            config,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("tw.sqlite")
    }

    pub fn get(&self) -> &Server {
        self.server.as_ref().expect("running")
    }

    pub fn udp(&self) -> SocketAddr {
        self.get().udp_addr
    }

    pub fn tcp(&self) -> SocketAddr {
        self.get().tcp_addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.get().http_addr)
    }

    pub fn store(&self) -> &Store {
        &self.get().store
    }

    /// Stops the server and starts a new one on the same database (fresh ports).
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.server = Some(Server::start(&self.config).await.expect("server restarts"));
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Stops the server and opens its database again. Stopping writes a checkpoint, so every
    /// visit is then in the visits table (while it runs, the latest are in the journal).
    pub async fn stop_and_open_store(&mut self) -> Store {
        self.stop().await;
        Store::open(&self.config.store.database)
            .await
            .expect("the store opens again")
    }

    /// The value of an unlabelled metric (or the sum over its labels) from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_at(&self.url(""), name).await
    }

    /// The value of one labelled series, e.g. `tagwatch_frames_rejected_total{reason="mac"}`.
    pub async fn series(&self, series: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }
}

/// The value of an unlabelled metric (or the sum over its labels) from the `/metrics` of the
/// server at `base` (`http://host:port`).
pub async fn metric_at(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// One API call with a bearer token; the answer's status and JSON body (null if none).
pub async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    call_at(&server.url(""), method, path, token, body).await
}

/// [`call`] against the server at `base` (`http://host:port`), e.g. a cluster's API node.
pub async fn call_at(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut request = client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

pub async fn get(
    server: &TestServer,
    path: &str,
    token: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    call(server, reqwest::Method::GET, path, token, None).await
}

pub async fn post(
    server: &TestServer,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (reqwest::StatusCode, serde_json::Value) {
    call(server, reqwest::Method::POST, path, token, Some(body)).await
}

/// Creates an account (as the admin) whose password is `{username}-password`.
pub async fn create_user(server: &TestServer, username: &str, role: &str) {
    let body = serde_json::json!({
        "username": username, "password": format!("{username}-password"), "role": role,
    });
    let (status, answer) = post(server, "/api/v1/users", TOKEN, body).await;
    assert_eq!(status, 201, "{answer}");
}

/// Logs in as a user made by [`create_user`]; returns the token.
pub async fn login(server: &TestServer, username: &str) -> String {
    let response = client()
        .post(server.url("/api/v1/login"))
        .json(&serde_json::json!({
            "username": username, "password": format!("{username}-password"),
        }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_owned()
}

pub fn station(id: u32) -> Station {
    Station {
        id: StationId(id),
        name: format!("Station {id}"),
        position: GeoPoint {
            lat: 23.26,
            lon: 116.59 + f64::from(id) / 10_000.0,
        },
    }
}

pub fn key(id: u32) -> StationKey {
    StationKey([u8::try_from(id % 251 + 1).expect("small"); 32])
}

/// Registers a station and a vehicle through the API.
pub async fn provision(server: &TestServer, station_id: u32, tag: u32) {
    let s = station(station_id);
    let response = client()
        .post(server.url("/api/v1/stations"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "id": station_id, "name": s.name, "lat": s.position.lat, "lon": s.position.lon,
            "key": key(station_id).to_hex(),
        }))
        .send()
        .await
        .expect("post station");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let vehicle = Vehicle {
        tag: TagId(tag),
        plate: format!("P-{tag}"),
        owner_name: "Chen".into(),
        owner_phone: "+86 1".into(),
        ..Default::default()
    };
    let response = client()
        .post(server.url("/api/v1/vehicles"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "tag": tag, "plate": vehicle.plate, "owner_name": vehicle.owner_name,
            "owner_phone": vehicle.owner_phone,
        }))
        .send()
        .await
        .expect("post vehicle");
    assert_eq!(
        response.status(),
        201,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

/// A station speaking raw TWB/1 over UDP.
pub struct TestStation {
    pub id: StationId,
    pub session: SessionId,
    pub key: StationKey,
    pub socket: UdpSocket,
}

impl TestStation {
    pub async fn udp(id: u32, session: u32, server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        socket.connect(server).await.expect("connect");
        Self {
            id: StationId(id),
            session: SessionId(session),
            key: key(id),
            socket,
        }
    }

    /// A frame of this station built at `time_ms` by its clock.
    pub fn frame(&self, seq: u32, time_ms: i64, body: Body) -> Frame {
        Frame {
            station: self.id,
            session: self.session,
            seq,
            time_ms: u64::try_from(time_ms).expect("positive"),
            position: None,
            body,
        }
    }

    pub fn detections(&self, seq: u32, time_ms: i64, tags: &[u32]) -> Frame {
        let records = tags
            .iter()
            .map(|&t| Record {
                tag: TagId(t),
                age_ms: 0,
                rssi: -60,
                reads: 2,
                tag_flags: 0,
                antenna: 1,
            })
            .collect();
        self.frame(seq, time_ms, Body::Detections(records))
    }

    /// A STATUS heartbeat built at `time_ms` by the station's clock, `backlog` frames waiting.
    #[allow(dead_code)]
    pub fn status(&self, seq: u32, time_ms: i64, backlog: u32) -> Frame {
        let status = wire::Status {
            uptime_s: 3_600,
            backlog,
            fw_version: 1,
            temp_c: 30,
            power: 0,
            tags_in_range: 0,
        };
        self.frame(seq, time_ms, Body::Status(status))
    }

    pub async fn send_bytes(&self, bytes: &[u8]) {
        self.socket.send(bytes).await.expect("send");
    }

    pub async fn send(&self, frame: &Frame) {
        let bytes = wire::encode(frame, &self.key).expect("encode");
        self.send_bytes(&bytes).await;
    }

    /// The next ACK, or None if nothing arrives within `wait`.
    pub async fn ack_within(&self, wait: Duration) -> Option<(u32, AckStatus)> {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(wait, self.socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        let frame = wire::decode_datagram(&buf[..n], &self.key, 1024).expect("a valid ACK");
        match frame.body {
            Body::Ack(status) => {
                assert_eq!((frame.station, frame.session), (self.id, self.session));
                Some((frame.seq, status))
            }
            other => panic!("expected an ACK, got {other:?}"),
        }
    }

    pub async fn ack(&self) -> (u32, AckStatus) {
        self.ack_within(Duration::from_secs(5))
            .await
            .expect("an ACK within 5 s")
    }

    /// Sends a frame and returns its ACK status.
    pub async fn exchange(&self, frame: &Frame) -> AckStatus {
        self.send(frame).await;
        let (seq, status) = self.ack().await;
        assert_eq!(seq, frame.seq);
        status
    }
}

/// Registers the city's stations (with the simulator's keys) directly in the store.
pub async fn provision_city(store: &Store, city: &tagwatch_sim::CityConfig) {
    for (s, key) in tagwatch_sim::stations(city) {
        let station = tagwatch_model::Station {
            id: s.id,
            name: format!("X{}", s.id),
            position: s.position,
        };
        store
            .insert_station(&station, &key, 0)
            .await
            .expect("station");
    }
}

/// (tag, station, first, last, reads, best rssi), sorted: what a visit means, without its id.
pub type VisitKey = (TagId, StationId, i64, i64, u32, i8);

pub fn visit_key(v: &tagwatch_model::Visit) -> VisitKey {
    (
        v.tag,
        v.station,
        v.first_seen_ms,
        v.last_seen_ms,
        v.reads,
        v.best_rssi,
    )
}

/// The visits the frames imply, computed the simple way: sort each (tag, station)'s detections
/// by time and cut wherever two are more than the gap apart.
pub fn expected_visits(report: &tagwatch_sim::SimReport, gap_ms: i64) -> Vec<VisitKey> {
    // (time, reads, rssi) of every detection, per (tag, station).
    type Detections = Vec<(i64, u8, i8)>;
    let mut by_pair: std::collections::HashMap<(TagId, StationId), Detections> =
        std::collections::HashMap::new();
    for frame in &report.frames {
        if let tagwatch_gateway::wire::Body::Detections(records) = &frame.body {
            for r in records {
                let t = frame.time_ms as i64 - i64::from(r.age_ms);
                by_pair
                    .entry((r.tag, frame.station))
                    .or_default()
                    .push((t, r.reads, r.rssi));
            }
        }
    }
    let mut visits = Vec::new();
    for ((tag, station), mut dets) in by_pair {
        dets.sort_unstable();
        let mut current: Option<VisitKey> = None;
        for (t, reads, rssi) in dets {
            match current.as_mut() {
                Some(v) if t - v.3 <= gap_ms => {
                    v.3 = t;
                    v.4 += u32::from(reads);
                    v.5 = v.5.max(rssi);
                }
                _ => {
                    visits.extend(current.take());
                    current = Some((tag, station, t, t, u32::from(reads), rssi));
                }
            }
        }
        visits.extend(current);
    }
    visits.sort_unstable();
    visits
}

/// A live SSE stream of parsed events.
pub type Events = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<eventsource_stream::Event, String>> + Send>,
>;

/// Opens `path` (an SSE endpoint) with `token`.
pub async fn open_events(server: &TestServer, path: &str, token: &str) -> Events {
    open_events_at(&server.url(path), token, None).await
}

/// Opens the SSE endpoint at `url` with `token`, resuming after `last_event_id` if given.
pub async fn open_events_at(url: &str, token: &str, last_event_id: Option<&str>) -> Events {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let mut request = client().get(url).bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.expect("stream opens");
    assert_eq!(response.status(), 200, "{url}");
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|e| e.map_err(|e| e.to_string())),
    )
}

/// The next `alert` event's JSON within `wait`, or None.
pub async fn next_alert_within(events: &mut Events, wait: Duration) -> Option<serde_json::Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .ok()??;
        let event = event.expect("well-formed event");
        if event.event == "alert" {
            return Some(serde_json::from_str(&event.data).expect("alert json"));
        }
    }
}

/// A loopback port free for both UDP and TCP (stations use the same port for both).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts this test binary again as a server process running its ignored test `child` (which
/// reads `spec` from the environment variable `env`), and waits until `http` answers `/healthz`.
pub async fn spawn_server_process(
    child: &str,
    env: &str,
    spec: &str,
    http: &str,
) -> tokio::process::Child {
    let process = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, spec)
        .env("TAGWATCH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the server process");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = client.get(format!("http://{http}/healthz")).send().await {
            if response.status().is_success() {
                return process;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server process did not come up within 30 s");
}
