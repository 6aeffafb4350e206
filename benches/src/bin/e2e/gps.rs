//! GPS trackers beside the stations: `--gps-trackers N` vehicles that carry only a GT06 tracker
//! (their tags are not in the replayed recording, so no station places them elsewhere), driving
//! straight across the city at 20-50 km/h and reporting every 10-30 s over TCP, as the
//! simulator's trackers do, for the whole run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tagwatch_model::{TagId, Vehicle};
use tagwatch_sim::city::CityConfig;
use tagwatch_sim::gps::{self, GpsConfig, GpsStats};
use tokio_util::sync::CancellationToken;

/// The trackers' vehicles' tags: far above any copy of the city's.
pub const FIRST_TAG: u32 = 4_000_000_001;

/// Registers `n` vehicles with a tracker each.
pub async fn provision(store: &tagwatch_store::Store, n: u32) -> anyhow::Result<()> {
    let now = tagwatch_model::time::now_ms();
    let vehicles: Vec<Vehicle> = (0..n)
        .map(|i| Vehicle {
            tag: TagId(FIRST_TAG + i),
            plate: format!("GPS-{i:06}"),
            owner_name: format!("Rider {i}"),
            owner_phone: "+86 139 0000 0000".into(),
            ..Default::default()
        })
        .collect();
    for chunk in vehicles.chunks(10_000) {
        store.insert_vehicles(chunk, now).await?;
    }
    for i in 0..n {
        tagwatch::demo::register_tracker(store, TagId(FIRST_TAG + i), now).await?;
    }
    Ok(())
}

/// The trackers, driving; their counters.
pub struct GpsLoad {
    pub stats: Arc<GpsStats>,
    pub trackers: u32,
}

/// Starts `n` trackers reporting to `server` until `stop`.
pub fn start(server: SocketAddr, city: &CityConfig, n: u32, stop: CancellationToken) -> GpsLoad {
    let stats = Arc::new(GpsStats::default());
    let now = tagwatch_model::time::now_ms();
    let (mut trackers, _tasks) = gps::start(
        &GpsConfig::new(server, n),
        FIRST_TAG,
        now,
        city.seed,
        stats.clone(),
        stop.clone(),
    );
    let size = [
        f64::from(city.grid_w.saturating_sub(1)) * city.spacing_m,
        f64::from(city.grid_h.saturating_sub(1)) * city.spacing_m,
    ];
    let mut rng = fastrand::Rng::with_seed(city.seed ^ 0x6770);
    let mut motion: Vec<([f64; 2], [f64; 2])> = (0..n)
        .map(|_| {
            let speed = rng.f64() * 8.3 + 5.6; // 20-50 km/h, m/s
            let heading = rng.f64() * std::f64::consts::TAU;
            (
                [rng.f64() * size[0], rng.f64() * size[1]],
                [speed * heading.sin(), speed * heading.cos()],
            )
        })
        .collect();
    let city = city.clone();
    tokio::spawn(async move {
        let tick = Duration::from_millis(200);
        let mut interval = tokio::time::interval(tick);
        while !stop.is_cancelled() {
            tokio::select! {
                _ = interval.tick() => {}
                () = stop.cancelled() => break,
            }
            let now = tagwatch_model::time::now_ms();
            for (tracker, (xy, v)) in trackers.iter_mut().zip(&mut motion) {
                for axis in 0..2 {
                    xy[axis] += v[axis] * tick.as_secs_f64();
                    // Turn back at the city's edge.
                    if xy[axis] < 0.0 || xy[axis] > size[axis] {
                        v[axis] = -v[axis];
                        xy[axis] = xy[axis].clamp(0.0, size[axis]);
                    }
                }
                tracker.due(now, *xy, city.geo_of(*xy));
            }
        }
    });
    GpsLoad { stats, trackers: n }
}
