//! # `tagwatch demo`: the simulated city against a real server, in one process.
//!
//! Provisions the city's stations and vehicles into a fresh embedded store, starts the server
//! (gateway, tracker, store, API), runs the simulator against its UDP or TCP port, reports a
//! vehicle stolen through the HTTP API a little later, and prints each alert as it arrives on
//! the API's SSE stream — the same path a patrol officer's screen uses. Simulated patrol units
//! drive the city, report their positions and are dispatched to the stolen vehicle's sightings
//! ([`crate::demo_patrol`]).

use crate::config::ListenSection;
use crate::{random_hex, Config, Secret, Server};
use anyhow::Context;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tagwatch_model::{time::now_ms, Role, Station, TagId, Vehicle};
use tagwatch_sim::{CityConfig, SimConfig, Transport};
use tokio_util::sync::CancellationToken;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub http: SocketAddr,
    pub database: String,
    pub grid: u32,
    pub tags: u32,
    /// `None`: as fast as the server acknowledges.
    pub speed: Option<f64>,
    pub transport: Transport,
    pub steal_after: Duration,
    pub run_for: Option<Duration>,
    pub seed: u64,
    /// Password of the demo's `officer` and `dispatcher` accounts (random when not given).
    pub password: Option<String>,
    /// Map tile URL template for the web page (none: a plain background).
    pub tile_url: Option<String>,
    /// Vehicles (the first tags) that also carry a GT06 GPS tracker.
    pub gps_trackers: u32,
}

/// What the demo saw, for tests and the closing summary.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub stolen: Option<TagId>,
    pub alerts: Vec<serde_json::Value>,
    pub frames_built: u64,
    pub frames_acked: u64,
    pub detections: u64,
    /// GPS fixes the simulated trackers reported, and those the server acknowledged.
    pub gps_fixes: u64,
    pub gps_fixes_acked: u64,
    pub elapsed: Duration,
}

fn line(out: &mut impl Write, text: std::fmt::Arguments<'_>) {
    // The terminal going away is no reason to stop the demo.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Runs the demo until Ctrl-C (or `run_for`), printing to `out`.
pub async fn run(options: DemoOptions, out: &mut impl Write) -> anyhow::Result<DemoSummary> {
    if let Some(path) = options.database.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let city = CityConfig {
        seed: options.seed,
        grid_w: options.grid,
        grid_h: options.grid,
        tags: options.tags,
        ..CityConfig::default()
    };
    line(
        out,
        format_args!(
            "Provisioning the city: {} stations, {} tagged vehicles…",
            options.grid * options.grid,
            options.tags
        ),
    );
    let token = random_hex(24)?;
    let mut config = Config::default();
    config.store.database = options.database.clone();
    config.listen = ListenSection {
        http: options.http,
        ..ListenSection::loopback()
    };
    config.api.admin_token = Some(Secret(token.clone()));
    config.api.tile_url = options.tile_url.clone();
    config.api.roads = city
        .roads()
        .iter()
        .map(|[a, b]| [[a.lat, a.lon], [b.lat, b.lon]])
        .collect();
    // The simulated stations' clocks run at the simulation's speed, ahead of real time.
    if !options.speed.is_some_and(|s| s <= 1.0) {
        config.tracker.clock_skew_limit = Duration::from_secs(365 * 86_400);
    }
    // The demo picks the vehicle to steal from the stored visits: on Postgres, checkpoints every
    // second (not every 30 s) put the first visits there before the theft.
    if !options.database.starts_with("sqlite:") {
        config.store.checkpoint_interval = Some(Duration::from_secs(1));
    }
    let password = match &options.password {
        Some(p) => p.clone(),
        None => random_hex(8)?,
    };
    let gps_trackers = options.gps_trackers.min(city.tags);
    provision(&config.store.database, &city, &password).await?;
    {
        let store = tagwatch_store::Store::open(&config.store.database).await?;
        provision_trackers(&store, &city, gps_trackers, now_ms()).await?;
        store.close().await;
    }
    let server = Server::start(&config).await?;
    let api = format!("http://{}", server.http_addr);
    line(out, format_args!("TagWatch is running."));
    line(
        out,
        format_args!(
            "  map:          {api}/  (log in as officer or dispatcher, password {password})"
        ),
    );
    line(
        out,
        format_args!(
            "  owner app:    {api}/owner  (log in as owner, password {password}: {DEMO_OWNED} vehicles)"
        ),
    );
    line(out, format_args!("  API:          {api}"));
    line(out, format_args!("  admin token:  {token}"));
    line(
        out,
        format_args!(
            "  stations:     udp {}  tcp {}",
            server.udp_addr, server.tcp_addr
        ),
    );
    if let (Some(gt06), true) = (server.gt06_addr, gps_trackers > 0) {
        line(
            out,
            format_args!("  GPS trackers: {gps_trackers} vehicles carry one (GT06 on tcp {gt06})"),
        );
    }
    line(
        out,
        format_args!(
            "  try:          curl -N -H 'Authorization: Bearer {token}' {api}/api/v1/alerts/stream"
        ),
    );
    line(out, format_args!("  metrics:      {api}/metrics"));
    line(out, format_args!("Press Ctrl-C to stop."));

    let stop = CancellationToken::new();
    let sim = SimConfig {
        city,
        speed: options.speed,
        transport: options.transport,
        loss: 0.01,
        drain_timeout: Duration::from_secs(5),
        gps: server
            .gt06_addr
            .filter(|_| gps_trackers > 0)
            .map(|addr| tagwatch_sim::gps::GpsConfig::new(addr, gps_trackers)),
        ..SimConfig::default()
    };
    let target = match options.transport {
        Transport::Udp => server.udp_addr,
        Transport::Tcp => server.tcp_addr,
    };
    let patrol_city = sim.city.clone();
    let sim_task = tokio::spawn(tagwatch_sim::run(sim, target, stop.clone()));
    let client = reqwest::Client::new();
    let link = crate::demo_patrol::PatrolLink {
        client: client.clone(),
        api: api.clone(),
        officer_token: crate::demo_patrol::login(&client, &api, "officer", &password).await?,
        dispatcher_token: crate::demo_patrol::login(&client, &api, "dispatcher", &password).await?,
    };
    let (sightings, sightings_rx) = tokio::sync::mpsc::unbounded_channel();
    let (said_tx, mut said) = tokio::sync::mpsc::unbounded_channel();
    let patrol_task = tokio::spawn(crate::demo_patrol::run(
        patrol_city,
        options.speed.unwrap_or(1.0),
        link,
        sightings_rx,
        said_tx,
        stop.clone(),
    ));
    line(
        out,
        format_args!(
            "  patrol:       {} units (P-1…) drive the city and are dispatched to stolen vehicles",
            crate::demo_patrol::DEMO_UNITS
        ),
    );
    let stream = client
        .get(format!("{api}/api/v1/alerts/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .context("opening the alert stream")?
        .error_for_status()?
        .bytes_stream()
        .eventsource();
    tokio::pin!(stream);

    let started = Instant::now();
    let mut summary = DemoSummary::default();
    let steal_at = tokio::time::sleep(options.steal_after);
    tokio::pin!(steal_at);
    let mut stolen = false;
    let end = tokio::time::sleep(options.run_for.unwrap_or(Duration::from_secs(u64::MAX / 4)));
    tokio::pin!(end);
    let signal = crate::signals::stop_requested();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            () = &mut end => break,
            () = &mut steal_at, if !stolen => {
                stolen = true;
                match steal_one(&client, &api, &token, &server).await {
                    Ok(Some(tag)) => {
                        summary.stolen = Some(tag);
                        line(out, format_args!(
                            "[{:>5.1}s] Owner reports vehicle with tag {tag} stolen.",
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    Ok(None) => line(out, format_args!("No vehicle heard yet; nothing stolen.")),
                    Err(error) => line(out, format_args!("Reporting the theft failed: {error:#}")),
                }
            }
            Some(said) = said.recv() => line(out, format_args!(
                "[{:>5.1}s] {said}",
                started.elapsed().as_secs_f64()
            )),
            event = stream.next() => match event {
                Some(Ok(event)) if event.event == "alert" => {
                    let alert: serde_json::Value = serde_json::from_str(&event.data)?;
                    line(out, format_args!(
                        "[{:>5.1}s] ALERT #{} {} tag {} at station {} ({:.5}, {:.5}) seen {}",
                        started.elapsed().as_secs_f64(),
                        event.id,
                        alert["kind"].as_str().unwrap_or("?"),
                        alert["tag"],
                        alert["station"],
                        alert["lat"].as_f64().unwrap_or(f64::NAN),
                        alert["lon"].as_f64().unwrap_or(f64::NAN),
                        alert["seen_at"].as_str().unwrap_or("?"),
                    ));
                    if alert["kind"] == "stolen_sighting" {
                        let _ = sightings.send(alert.clone());
                    }
                    summary.alerts.push(alert);
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => anyhow::bail!("alert stream broke: {error}"),
                None => anyhow::bail!("alert stream ended"),
            }
        }
    }
    stop.cancel();
    patrol_task.await.context("patrol task")?;
    let report = sim_task.await.context("simulator task")?;
    summary.elapsed = started.elapsed();
    summary.frames_built = report.stats.frames_built;
    summary.frames_acked = report.stats.accepted + report.stats.duplicate;
    summary.detections = report.detections_built;
    [summary.gps_fixes, summary.gps_fixes_acked] = [report.gps[0], report.gps[1]];
    server.shutdown().await;
    let secs = summary.elapsed.as_secs_f64().max(0.001);
    line(out, format_args!(
        "Stopped after {:.1}s: {} frames built, {} acknowledged, {} detections ({:.0}/s), {} alerts.",
        secs,
        summary.frames_built,
        summary.frames_acked,
        summary.detections,
        summary.detections as f64 / secs,
        summary.alerts.len()
    ));
    if summary.gps_fixes > 0 {
        line(
            out,
            format_args!(
                "GPS trackers: {} fixes reported, {} acknowledged, {} connections ({} dropped on purpose).",
                report.gps[0], report.gps[1], report.gps[2], report.gps[3]
            ),
        );
    }
    Ok(summary)
}

/// Registers the city's stations (with the simulator's keys), one vehicle per tag, and the
/// accounts `officer`, `dispatcher` and `owner` with `password`; the owner owns the city's
/// first [`DEMO_OWNED`] vehicles.
async fn provision(database: &str, city: &CityConfig, password: &str) -> anyhow::Result<()> {
    let store = tagwatch_store::Store::open(database).await?;
    let now = now_ms();
    let mut owner = None;
    for (username, role) in [
        ("officer", Role::Officer),
        ("dispatcher", Role::Dispatcher),
        ("owner", Role::Owner),
    ] {
        let hash = tagwatch_api::auth::hash_password(password.to_owned())
            .await
            .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?;
        let id = store.insert_user(username, &hash, role, now).await?;
        if role == Role::Owner {
            owner = Some(id);
        }
    }
    provision_city(&store, city, now).await?;
    if let Some(owner) = owner {
        for i in 0..DEMO_OWNED.min(city.tags) {
            store
                .set_vehicle_owner(TagId(city.first_tag + i), owner)
                .await?;
        }
    }
    store.close().await;
    Ok(())
}

/// Registers the simulated city's stations (with the simulator's keys) and one vehicle per tag
/// (the demo, and the end-to-end bench).
pub async fn provision_city(
    store: &tagwatch_store::Store,
    city: &CityConfig,
    now: i64,
) -> anyhow::Result<()> {
    for (station, key) in tagwatch_sim::stations(city) {
        let station = Station {
            id: station.id,
            name: format!("Intersection {}", station.id),
            position: station.position,
        };
        store.insert_station(&station, &key, now).await?;
    }
    let vehicles: Vec<Vehicle> = (0..city.tags)
        .map(|i| Vehicle {
            tag: TagId(city.first_tag + i),
            plate: demo_plate(i),
            make: MAKES[i as usize % MAKES.len()].0.into(),
            model: MAKES[i as usize % MAKES.len()].1.into(),
            colour: COLOURS[i as usize % COLOURS.len()].into(),
            owner_name: format!("Owner {}", i + 1),
            owner_phone: format!("+86 138 {:04} {:04}", i / 10_000, i % 10_000),
        })
        .collect();
    for chunk in vehicles.chunks(50_000) {
        store.insert_vehicles(chunk, now).await?;
    }
    Ok(())
}

/// Vehicles of the demo's `owner` account (the city's first ones).
pub const DEMO_OWNED: u32 = 5;

/// Motorcycles common in the reference deployment's province, for the simulated registrations.
const MAKES: [(&str, &str); 6] = [
    ("Honda", "Wave 110"),
    ("Yamaha", "JYM125"),
    ("Haojue", "HJ125"),
    ("Suzuki", "GSX250R"),
    ("Zongshen", "ZS150"),
    ("Loncin", "LX200"),
];
const COLOURS: [&str; 5] = ["red", "black", "white", "blue", "silver"];

/// The `i`th simulated vehicle's plate, in the province's style: `粤`, a city letter, `·` and
/// a letter and four digits (letters from the 24 used on plates, no I or O); distinct for every
/// `i` below 24 × 24 × 10⁴ (5.76 million).
pub fn demo_plate(i: u32) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let letter = |n: u32| LETTERS[n as usize % LETTERS.len()] as char;
    let (city, serial) = (i / 240_000, i % 240_000);
    format!(
        "粤{}·{}{:04}",
        letter(city),
        letter(serial / 10_000),
        serial % 10_000
    )
}

/// Registers a GT06 tracker on each of the city's first `fitted` vehicles, with the IMEI the
/// simulator gives it (the demo, and the end-to-end bench).
pub async fn provision_trackers(
    store: &tagwatch_store::Store,
    city: &CityConfig,
    fitted: u32,
    now: i64,
) -> anyhow::Result<()> {
    for i in 0..fitted.min(city.tags) {
        register_tracker(store, TagId(city.first_tag + i), now).await?;
    }
    Ok(())
}

/// Registers the tracker the simulator fits to `tag` (its IMEI), with a random station key.
pub async fn register_tracker(
    store: &tagwatch_store::Store,
    tag: TagId,
    now: i64,
) -> anyhow::Result<()> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
    let imei = tagwatch_sim::gps::tracker_imei(tag).to_string();
    store
        .insert_tracker(&imei, tag, "gt06", &tagwatch_model::StationKey(key), now)
        .await?;
    Ok(())
}

/// Reports the most recently heard vehicle stolen, through the API as an owner's app would.
async fn steal_one(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    server: &Server,
) -> anyhow::Result<Option<TagId>> {
    let Some(tag) = server.store.most_recent_tag().await? else {
        return Ok(None);
    };
    client
        .post(format!("{api}/api/v1/vehicles/{tag}/theft"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "note": "taken from outside the market (demo)" }))
        .send()
        .await?
        .error_for_status()?;
    Ok(Some(tag))
}

#[cfg(test)]
mod tests {
    use super::demo_plate;

    #[test]
    fn demo_plates_are_distinct_searchable_and_look_like_the_provinces() {
        let plates: std::collections::HashSet<String> = (0..300_000)
            .map(|i| tagwatch_model::plate_key(&demo_plate(i)))
            .collect();
        assert_eq!(
            plates.len(),
            300_000,
            "the reference city's plates are distinct"
        );
        assert_eq!(demo_plate(0), "粤A·A0000");
        assert_eq!(demo_plate(250_001), "粤B·B0001");
    }
}
