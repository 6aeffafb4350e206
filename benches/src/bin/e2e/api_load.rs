//! Officers' queries while the city is ingested (`--api-load`): during the first step, callers
//! ask for a vehicle's location, the tags near a station and a plate search, 1 to 128 at a time,
//! each query stating a purpose and written to the audit log before it is answered, as in
//! service. The same mix without the ingest is `cargo bench --bench api_load`.

use std::time::Duration;
use tagwatch_benches::http_load::{load, Load};
use tagwatch_sim::city::CityConfig;

/// Concurrent callers, per endpoint.
const CLIENTS: [usize; 4] = [1, 8, 32, 128];
const ENDPOINTS: [&str; 3] = ["location", "tags/near 500 m", "plate search"];

pub struct Row {
    pub endpoint: &'static str,
    pub clients: usize,
    pub load: Load,
}

/// Percent-encodes a query value (plates hold `粤` and `·`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs every endpoint at every client count within `window` (an equal share each).
pub async fn run(api: String, token: String, city: CityConfig, window: Duration) -> Vec<Row> {
    let each = (window / (CLIENTS.len() * ENDPOINTS.len()) as u32).max(Duration::from_secs(1));
    let stations: Vec<(f64, f64)> = tagwatch_sim::stations(&city)
        .iter()
        .map(|(s, _)| (s.position.lat, s.position.lon))
        .collect();
    let mut rows = Vec::new();
    for clients in CLIENTS {
        for endpoint in ENDPOINTS {
            let (first, tags) = (city.first_tag, city.tags);
            // Spread over the city's vehicles (a prime stride), not the same few.
            let pick = move |i: u64| ((i * 7_919) % u64::from(tags)) as u32;
            let stations = stations.clone();
            let path: Box<dyn Fn(u64) -> String + Send + Sync> = match endpoint {
                "location" => Box::new(move |i| {
                    format!(
                        "/api/v1/vehicles/{}/location?purpose=load+check",
                        first + pick(i)
                    )
                }),
                "tags/near 500 m" => Box::new(move |i| {
                    let (lat, lon) = stations[i as usize % stations.len()];
                    format!("/api/v1/tags/near?lat={lat}&lon={lon}&radius_m=500&purpose=load+check")
                }),
                _ => Box::new(move |i| {
                    let plate = tagwatch::demo::demo_plate(pick(i));
                    format!(
                        "/api/v1/vehicles/search?plate={}&purpose=load+check",
                        encode(&plate)
                    )
                }),
            };
            let load = load(&api, &token, clients, each, path).await;
            rows.push(Row {
                endpoint,
                clients,
                load,
            });
        }
    }
    rows
}

/// The rows as a Markdown table (stderr, like the steps) and as JSON.
pub fn report(rows: &[Row]) -> serde_json::Value {
    eprintln!("  API queries during the step:");
    eprintln!("  | endpoint | clients | requests/s | p50 ms | p99 ms | errors |");
    eprintln!("  |---|---|---|---|---|---|");
    for r in rows {
        eprintln!(
            "  | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            r.endpoint, r.clients, r.load.rps, r.load.p50_ms, r.load.p99_ms, r.load.errors
        );
    }
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "endpoint": r.endpoint, "clients": r.clients, "rps": r.load.rps,
                    "p50_ms": r.load.p50_ms, "p99_ms": r.load.p99_ms, "errors": r.load.errors,
                })
            })
            .collect(),
    )
}
