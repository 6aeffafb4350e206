//! # The demo's patrol units and dispatcher, speaking to TagWatch as real ones would.
//!
//! The simulator's units ([`tagwatch_sim::patrol`], the same ones `tagwatch-recovery` measures)
//! drive the demo city's roads at the simulation's speed and report their positions every
//! second through `POST /api/v1/patrol/position` (as the `officer` account's terminals). On each
//! `stolen_sighting` the dispatcher reads the alert's file (`GET /api/v1/alerts/{seq}`: the
//! nearest available units and the predicted next stations), picks a unit and a place by the
//! intercept policy, and sends it with `POST /api/v1/alerts/{seq}/dispatch` (as the
//! `dispatcher` account). The web map shows the units moving.

use anyhow::Context;
use serde_json::{json, Value};
use std::time::Duration;
use tagwatch_model::{GeoPoint, TagId};
use tagwatch_sim::patrol::{Dispatcher, Patrol, PatrolConfig, Policy, Predicted, Sighting};
use tagwatch_sim::CityConfig;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Units in the demo city.
pub const DEMO_UNITS: u32 = 6;

/// Call sign of the unit numbered `id`.
fn call_sign(id: u32) -> String {
    format!("P-{id}")
}

/// Logs in as `username` and returns the session token.
pub async fn login(
    client: &reqwest::Client,
    api: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let body: Value = client
        .post(format!("{api}/api/v1/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("logging in as {username}"))?
        .json()
        .await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the login answer")
}

/// What the patrol task needs to speak to the API.
pub struct PatrolLink {
    pub client: reqwest::Client,
    pub api: String,
    pub officer_token: String,
    pub dispatcher_token: String,
}

/// Tokens are secrets: never printed.
impl std::fmt::Debug for PatrolLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatrolLink")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// Runs the units until `stop`: moves and reports them every second, and dispatches one on each
/// stolen sighting received on `alerts`. Sends a line to print for each dispatch on `said`.
pub async fn run(
    city: CityConfig,
    speed: f64,
    link: PatrolLink,
    mut alerts: mpsc::UnboundedReceiver<Value>,
    said: mpsc::UnboundedSender<String>,
    stop: CancellationToken,
) {
    let config = PatrolConfig {
        units: DEMO_UNITS,
        seed: city.seed,
        ..PatrolConfig::default()
    };
    let mut patrol = Patrol::new(&city, config);
    let mut dispatcher = Dispatcher::new(Policy::Intercept);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut sim_ms = 0i64;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                let step_ms = (1_000.0 * speed) as i64;
                patrol.step(step_ms);
                sim_ms += step_ms;
                dispatcher.tick(&mut patrol, sim_ms);
                if let Err(error) = report_positions(&link, &patrol).await {
                    let _ = said.send(format!("Patrol units could not report: {error:#}"));
                }
            }
            Some(alert) = alerts.recv() => {
                match dispatch(&link, &mut patrol, &mut dispatcher, &alert, sim_ms).await {
                    Ok(Some(line)) => { let _ = said.send(line); }
                    Ok(None) => {}
                    Err(error) => { let _ = said.send(format!("Dispatch failed: {error:#}")); }
                }
            }
        }
    }
}

async fn report_positions(link: &PatrolLink, patrol: &Patrol) -> anyhow::Result<()> {
    for unit in patrol.units() {
        let at = patrol.position(unit);
        link.client
            .post(format!("{}/api/v1/patrol/position", link.api))
            .bearer_auth(&link.officer_token)
            .json(&json!({
                "unit": call_sign(unit.id), "lat": at.lat, "lon": at.lon,
                "available": unit.is_available(),
            }))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(())
}

/// Reads the alert's file, picks a unit and a place, and sends it (a unit already on the case
/// is moved, not sent again). Returns the line to print.
async fn dispatch(
    link: &PatrolLink,
    patrol: &mut Patrol,
    dispatcher: &mut Dispatcher,
    alert: &Value,
    now_ms: i64,
) -> anyhow::Result<Option<String>> {
    let (Some(seq), Some(tag)) = (alert["seq"].as_i64(), alert["tag"].as_u64()) else {
        return Ok(None);
    };
    let tag = TagId(u32::try_from(tag)?);
    let file: Value = link
        .client
        .get(format!("{}/api/v1/alerts/{seq}", link.api))
        .bearer_auth(&link.dispatcher_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let nearest: Vec<u32> = file["nearest_units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["unit"].as_str()?.strip_prefix("P-")?.parse().ok())
        .collect();
    let point = |v: &Value| -> Option<GeoPoint> {
        Some(GeoPoint {
            lat: v["lat"].as_f64()?,
            lon: v["lon"].as_f64()?,
        })
    };
    let Some(position) = point(&file) else {
        return Ok(None);
    };
    let predicted = file["detail"]["intercept"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some(Predicted {
                position: point(i)?,
                probability: i["probability"].as_f64()?,
                eta_s: i["eta_s"].as_f64()?,
                eta_high_s: i["eta_high_s"].as_f64()?,
            })
        })
        .collect();
    let sighting = Sighting {
        tag,
        position,
        speed_mps: file["detail"]["speed_mps"].as_f64(),
        predicted,
    };
    let already = patrol.unit_on(tag).map(|u| u.id);
    let Some(id) = dispatcher.on_sighting(patrol, &sighting, &nearest, now_ms) else {
        return Ok(Some(format!("No unit free for alert #{seq}.")));
    };
    if already == Some(id) {
        return Ok(Some(format!(
            "{} follows tag {tag} (alert #{seq}).",
            call_sign(id)
        )));
    }
    link.client
        .post(format!("{}/api/v1/alerts/{seq}/dispatch", link.api))
        .bearer_auth(&link.dispatcher_token)
        .json(&json!({ "unit": call_sign(id), "note": "demo dispatcher: intercept" }))
        .send()
        .await?
        .error_for_status()?;
    Ok(Some(format!(
        "Dispatched {} to alert #{seq} (tag {tag}).",
        call_sign(id)
    )))
}
