//! Side by side, on the data a Postgres run stored: the three spatial questions an officer asks
//! (tags within a radius now, tags through an area in a time window, a tag's track) answered by
//! TagWatch's API and by PostGIS with GiST indexes over the same visits; and the store's visit
//! rows per second against a plain `COPY` of the same rows.
//!
//! PostGIS gets the tables a PostGIS design would have: every visit as a point with its time
//! range, the moves between a tag's consecutive visits as lines (so "through an area" also finds
//! a tag that drove across it between stations, as TagWatch's trajectory index does), and each
//! tag's last place, each with a GiST index. Its queries are timed from this process over one
//! pooled connection; TagWatch's over HTTP, so they include the request, JSON and the audit-log
//! commit that every movement query makes.

use anyhow::Context;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::GeoPoint;

/// Queries of each kind timed on each side, after [`WARMUP`] untimed ones.
const QUERIES: usize = 100;
const WARMUP: usize = 10;
/// "Near": the radius, and how long ago the tag may last have been heard.
const NEAR_RADIUS_M: f64 = 300.0;
const NEAR_MINUTES: i64 = 15;
/// "Through": a box this many metres on a side, over the last this-many seconds of the run.
const BOX_SIDE_M: f64 = 400.0;
const THROUGH_WINDOW_S: i64 = 30;
/// The most rows either side returns (the API's own maximum).
const LIMIT: i64 = 5_000;
/// Visit rows per transaction in the plain `COPY` (about one flush of the reference city).
const COPY_CHUNK: usize = 20_000;
const METRES_PER_DEGREE: f64 = 111_320.0;

/// The benchmark's setup step: makes sure the Postgres server at `TAGWATCH_TEST_POSTGRES_URL`
/// offers PostGIS, installing Debian's `postgresql-<major>-postgis-3` when it does not.
pub async fn install_postgis() -> anyhow::Result<()> {
    let url = std::env::var(tagwatch_store::testing::POSTGRES_URL_VAR)
        .context("the PostGIS comparison needs TAGWATCH_TEST_POSTGRES_URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let available = || async {
        sqlx::query("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
            .fetch_optional(&pool)
            .await
            .map(|r| r.is_some())
    };
    if available().await? {
        return Ok(());
    }
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&pool)
        .await?;
    let package = format!("postgresql-{}-postgis-3", version / 10_000);
    eprintln!("Installing {package} (the PostGIS comparison)…");
    let installed = tokio::process::Command::new("apt-get")
        .args(["install", "-y", "-qq", &package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .await;
    anyhow::ensure!(
        installed.is_ok_and(|s| s.success()) && available().await?,
        "PostGIS is missing and could not be installed (apt-get install {package}); \
         run with --no-side-by-side to skip the comparisons"
    );
    pool.close().await;
    Ok(())
}

/// Latencies of one kind of query on one side, with what they returned.
struct Timed {
    ms: Vec<f64>,
    answers: Vec<HashSet<u32>>,
}

impl Timed {
    fn new() -> Self {
        Self {
            ms: Vec::new(),
            answers: Vec::new(),
        }
    }

    fn percentile(&self, q: f64) -> f64 {
        let mut sorted = self.ms.clone();
        sorted.sort_by(f64::total_cmp);
        crate::report::percentile(&sorted, q).unwrap_or(f64::NAN)
    }

    fn mean_rows(&self) -> f64 {
        self.answers.iter().map(HashSet::len).sum::<usize>() as f64
            / self.answers.len().max(1) as f64
    }
}

/// How alike two sides' answers are: the mean Jaccard index of their sets of tags.
fn agreement(a: &Timed, b: &Timed) -> f64 {
    let pairs = a.answers.iter().zip(&b.answers);
    let n = a.answers.len().min(b.answers.len()).max(1) as f64;
    pairs
        .map(|(x, y)| {
            let union = x.union(y).count();
            if union == 0 {
                1.0
            } else {
                x.intersection(y).count() as f64 / union as f64
            }
        })
        .sum::<f64>()
        / n
}

fn comparison(tagwatch: &Timed, postgis: &Timed) -> Value {
    let (t50, p50) = (tagwatch.percentile(0.5), postgis.percentile(0.5));
    json!({
        "queries": tagwatch.ms.len(),
        "tagwatch_api_ms": { "p50": t50, "p99": tagwatch.percentile(0.99) },
        "postgis_ms": { "p50": p50, "p99": postgis.percentile(0.99) },
        "postgis_over_tagwatch_p50": p50 / t50,
        "mean_rows": { "tagwatch": tagwatch.mean_rows(), "postgis": postgis.mean_rows() },
        "answer_agreement_jaccard": agreement(tagwatch, postgis),
    })
}

/// A query's inputs, the same for both sides.
enum Ask {
    Near(GeoPoint),
    Through {
        south: f64,
        west: f64,
        north: f64,
        east: f64,
    },
    Track(u32),
}

/// Builds PostGIS's tables over the run's visits, times both sides and the `COPY`; returns the
/// figures for the results file. `window` is the run's city time; `tagwatch_rows_per_busy_s` the
/// best visit rows per second of checkpoint commit the run's steps measured.
#[allow(clippy::too_many_arguments)]
pub async fn compare(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    database: &str,
    stations: &[GeoPoint],
    (first_tag, tags): (u32, u32),
    window: (i64, i64),
    tagwatch_rows_per_busy_s: f64,
) -> anyhow::Result<Value> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(database)
        .await?;
    eprintln!("  side by side: building PostGIS tables over the run's visits…");
    let build = build_postgis(&pool).await?;
    eprintln!("  {build}");
    let mut rng = fastrand::Rng::with_seed(6);
    let jitter = |rng: &mut fastrand::Rng| (rng.f64() - 0.5) * 200.0 / METRES_PER_DEGREE;
    let mut asks = |kind: u8| -> Vec<Ask> {
        (0..WARMUP + QUERIES)
            .map(|_| {
                let s = stations[rng.usize(..stations.len())];
                let (lat, lon) = (s.lat + jitter(&mut rng), s.lon + jitter(&mut rng));
                match kind {
                    0 => Ask::Near(GeoPoint { lat, lon }),
                    1 => {
                        let half = BOX_SIDE_M / 2.0 / METRES_PER_DEGREE;
                        let half_lon = half / lat.to_radians().cos();
                        Ask::Through {
                            south: lat - half,
                            west: lon - half_lon,
                            north: lat + half,
                            east: lon + half_lon,
                        }
                    }
                    _ => Ask::Track(first_tag + rng.u32(..tags)),
                }
            })
            .collect()
    };
    let kinds = [
        ("tags_within_radius_now", asks(0)),
        ("tags_through_area_in_window", asks(1)),
        ("track_of_a_tag", asks(2)),
    ];
    let mut figures = serde_json::Map::new();
    for (name, asks) in &kinds {
        let (mut ours, mut theirs) = (Timed::new(), Timed::new());
        for (i, ask) in asks.iter().enumerate() {
            let started = Instant::now();
            let answer = ask_tagwatch(client, api, token, ask, window).await?;
            let ms = started.elapsed().as_secs_f64() * 1_000.0;
            if i >= WARMUP {
                ours.ms.push(ms);
                ours.answers.push(answer);
            }
            let started = Instant::now();
            let answer = ask_postgis(&pool, ask, window).await?;
            let ms = started.elapsed().as_secs_f64() * 1_000.0;
            if i >= WARMUP {
                theirs.ms.push(ms);
                theirs.answers.push(answer);
            }
        }
        let figure = comparison(&ours, &theirs);
        eprintln!(
            "  {name}: TagWatch API p50 {:.2} ms p99 {:.2} ms, PostGIS p50 {:.2} ms p99 {:.2} ms (PostGIS/TagWatch {:.2}); {:.0} vs {:.0} rows, agreement {:.2}",
            ours.percentile(0.5),
            ours.percentile(0.99),
            theirs.percentile(0.5),
            theirs.percentile(0.99),
            figure["postgis_over_tagwatch_p50"].as_f64().unwrap_or(f64::NAN),
            ours.mean_rows(),
            theirs.mean_rows(),
            figure["answer_agreement_jaccard"].as_f64().unwrap_or(f64::NAN),
        );
        figures.insert((*name).into(), figure);
    }
    let floor = api_floor(client, api, token, first_tag).await?;
    eprintln!("  API floor (a vehicle's location: HTTP + auth + audit commit + memory): p50 {floor:.2} ms");
    let copy = plain_copy(&pool, tagwatch_rows_per_busy_s).await?;
    pool.close().await;
    Ok(json!({
        "postgis": {
            "build": build,
            "queries": figures,
            "api_floor_location_p50_ms": floor,
            "setup": format!(
                "radius {NEAR_RADIUS_M} m (last {NEAR_MINUTES} min); box {BOX_SIDE_M} m a side over \
                 the last {THROUGH_WINDOW_S} s; track over the whole run; limit {LIMIT}; \
                 {QUERIES} queries each after {WARMUP} untimed"
            ),
        },
        "copy": copy,
    }))
}

/// PostGIS's tables and GiST indexes over the run's visits; says how long each took.
async fn build_postgis(pool: &PgPool) -> anyhow::Result<Value> {
    let statements = [
        "CREATE EXTENSION IF NOT EXISTS postgis",
        "DROP TABLE IF EXISTS gis_visits, gis_moves, gis_now",
        "CREATE TABLE gis_visits AS SELECT v.id, v.tag, v.station, v.first_seen, v.last_seen, \
         v.best_rssi, v.reads, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS geom \
         FROM visits v JOIN stations s ON s.id = v.station",
        "CREATE INDEX gis_visits_place_time ON gis_visits \
         USING gist (geom, int8range(first_seen, last_seen, '[]'))",
        "CREATE INDEX gis_visits_tag ON gis_visits (tag, first_seen)",
        // A move runs from one visit's end to the next one's start (they may overlap in time
        // when two stations hear the tag at once).
        "CREATE TABLE gis_moves AS SELECT tag, least(t0, t1) AS t0, greatest(t0, t1) AS t1, \
         ST_MakeLine(geom, next) AS geom FROM (SELECT tag, last_seen AS t0, geom, \
         lead(first_seen) OVER w AS t1, lead(geom) OVER w AS next FROM gis_visits \
         WINDOW w AS (PARTITION BY tag ORDER BY first_seen, id)) m \
         WHERE next IS NOT NULL AND NOT ST_Equals(geom, next)",
        "CREATE INDEX gis_moves_place_time ON gis_moves \
         USING gist (geom, int8range(t0, t1, '[]'))",
        "CREATE TABLE gis_now AS SELECT DISTINCT ON (tag) tag, station, last_seen, \
         geom::geography AS geog FROM gis_visits ORDER BY tag, last_seen DESC",
        "CREATE INDEX gis_now_place ON gis_now USING gist (geog)",
        "ANALYZE gis_visits, gis_moves, gis_now",
    ];
    let started = Instant::now();
    for statement in statements {
        pool.execute(statement)
            .await
            .with_context(|| format!("building PostGIS tables: {statement}"))?;
    }
    let count = |table: &'static str| async move {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
    };
    Ok(json!({
        "visits": count("gis_visits").await?,
        "moves": count("gis_moves").await?,
        "tags": count("gis_now").await?,
        "build_s": started.elapsed().as_secs_f64(),
    }))
}

/// The "through" window: the run's last [`THROUGH_WINDOW_S`], starting no earlier than a few
/// seconds into the run, after the server had started (before that, the tracker would rightly
/// send the question to the store).
fn through_window((start, end): (i64, i64)) -> (i64, i64) {
    ((end - THROUGH_WINDOW_S * 1_000).max(start + 5_000), end)
}

/// Asks the API; returns the tags (near, through), or for a track the seconds into the run at
/// which its visits began, so both sides' answers compare as sets.
async fn ask_tagwatch(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    ask: &Ask,
    (start, end): (i64, i64),
) -> anyhow::Result<HashSet<u32>> {
    let purpose = ("purpose", "e2e bench: side by side with PostGIS".to_owned());
    let request = match ask {
        Ask::Near(p) => client.get(format!("{api}/api/v1/tags/near")).query(&[
            ("lat", p.lat.to_string()),
            ("lon", p.lon.to_string()),
            ("radius_m", NEAR_RADIUS_M.to_string()),
            ("minutes", NEAR_MINUTES.to_string()),
            ("limit", LIMIT.to_string()),
            purpose,
        ]),
        Ask::Through {
            south,
            west,
            north,
            east,
        } => client.get(format!("{api}/api/v1/tags/through")).query(&[
            ("south", south.to_string()),
            ("west", west.to_string()),
            ("north", north.to_string()),
            ("east", east.to_string()),
            ("from", to_rfc3339(through_window((start, end)).0)),
            ("to", to_rfc3339(end)),
            ("limit", LIMIT.to_string()),
            purpose,
        ]),
        Ask::Track(tag) => client
            .get(format!("{api}/api/v1/vehicles/{tag}/track"))
            .query(&[
                ("from", to_rfc3339(start)),
                ("to", to_rfc3339(end)),
                purpose,
            ]),
    };
    let response = request.bearer_auth(token).send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "the API answered {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    // Decoded whole into types, as the database driver decodes each row on the other side.
    let answer: ApiAnswer = serde_json::from_slice(&bytes)?;
    // The comparison is of TagWatch's own index: an answer from the store would not be.
    anyhow::ensure!(
        answer.source.as_deref().is_none_or(|s| s == "memory"),
        "the API answered from {:?}, not from memory: the window is not covered",
        answer.source
    );
    Ok(match ask {
        Ask::Track(_) => answer
            .features
            .iter()
            .filter_map(|f| tagwatch_model::time::from_rfc3339(&f.properties.first_seen).ok())
            .map(|ms| second_of_run(ms, start))
            .collect(),
        _ => answer.tags.iter().map(|t| t.tag).collect(),
    })
}

/// What the API's near, through and track answers carry.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // decoded for the cost of it; only some fields are compared
struct ApiAnswer {
    source: Option<String>,
    #[serde(default)]
    tags: Vec<ApiTag>,
    #[serde(default)]
    features: Vec<ApiFeature>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct ApiTag {
    tag: u32,
    station: Option<u32>,
    lat: Option<f64>,
    lon: Option<f64>,
    seen_at: Option<String>,
    distance_m: Option<f64>,
    first_seen: Option<String>,
    last_seen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct ApiFeature {
    geometry: ApiPoint,
    properties: ApiVisit,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct ApiPoint {
    coordinates: [f64; 2],
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct ApiVisit {
    station: u32,
    first_seen: String,
    last_seen: String,
    best_rssi: i64,
    reads: i64,
}

/// A track's visits compare by the second of the run they began in.
fn second_of_run(ms: i64, start: i64) -> u32 {
    u32::try_from((ms - start) / 1_000).unwrap_or(u32::MAX)
}

/// The same question in SQL; the answer in the same form as [`ask_tagwatch`]'s.
async fn ask_postgis(
    pool: &PgPool,
    ask: &Ask,
    (start, end): (i64, i64),
) -> anyhow::Result<HashSet<u32>> {
    let tag = |t: i64| u32::try_from(t).unwrap_or(u32::MAX);
    Ok(match ask {
        Ask::Near(p) => sqlx::query_as::<_, (i64, i64, f64, f64, i64, f64)>(
            "SELECT tag, station, ST_Y(geog::geometry) AS lat, ST_X(geog::geometry) AS lon, \
             last_seen, ST_Distance(geog, p) AS distance FROM gis_now, \
             (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS p) q \
             WHERE ST_DWithin(geog, p, $3) AND last_seen >= $4 \
             ORDER BY distance LIMIT $5",
        )
        .bind(p.lat)
        .bind(p.lon)
        .bind(NEAR_RADIUS_M)
        .bind(now_ms() - NEAR_MINUTES * 60_000)
        .bind(LIMIT)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| tag(r.0))
        .collect(),
        Ask::Through {
            south,
            west,
            north,
            east,
        } => {
            let (from, to) = through_window((start, end));
            sqlx::query_as::<_, (i64, i64, i64)>(
                "WITH area AS (SELECT ST_MakeEnvelope($1, $2, $3, $4, 4326) AS b), \
                 hits AS (SELECT tag, greatest(first_seen, $5) AS f, least(last_seen, $6) AS l \
                 FROM gis_visits, area WHERE geom && b \
                 AND int8range(first_seen, last_seen, '[]') && int8range($5, $6, '[]') \
                 UNION ALL \
                 SELECT tag, greatest(t0, $5), least(t1, $6) FROM gis_moves, area \
                 WHERE geom && b AND ST_Intersects(geom, b) \
                 AND int8range(t0, t1, '[]') && int8range($5, $6, '[]')) \
                 SELECT tag, min(f) AS first_seen, max(l) AS last_seen FROM hits \
                 GROUP BY tag ORDER BY tag LIMIT $7",
            )
            .bind(west)
            .bind(south)
            .bind(east)
            .bind(north)
            .bind(from)
            .bind(to)
            .bind(LIMIT)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| tag(r.0))
            .collect()
        }
        Ask::Track(t) => sqlx::query_as::<_, (i64, i64, i64, i64, i64, i64, f64, f64)>(
            "SELECT id, station, first_seen, last_seen, best_rssi, reads, ST_Y(geom) AS lat, \
             ST_X(geom) AS lon FROM gis_visits \
             WHERE tag = $1 AND first_seen <= $2 AND last_seen >= $3 \
             ORDER BY first_seen, id LIMIT 10000",
        )
        .bind(i64::from(*t))
        .bind(end)
        .bind(start)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| second_of_run(r.2, start))
        .collect(),
    })
}

/// The cheapest audited query, for scale: a vehicle's location (memory) over HTTP with its
/// audit-log commit. Median of [`QUERIES`] calls, ms.
async fn api_floor(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    first_tag: u32,
) -> anyhow::Result<f64> {
    let mut timed = Timed::new();
    for i in 0..QUERIES {
        let started = Instant::now();
        client
            .get(format!(
                "{api}/api/v1/vehicles/{}/location",
                first_tag + i as u32
            ))
            .query(&[("purpose", "e2e bench: API floor")])
            .bearer_auth(token)
            .send()
            .await?
            .bytes()
            .await?;
        timed.ms.push(started.elapsed().as_secs_f64() * 1_000.0);
    }
    Ok(timed.percentile(0.5))
}

/// The run's visit rows `COPY`ed, a flush-sized chunk per transaction, into a plain table with
/// the visits table's columns and indexes; rows per second against TagWatch's.
async fn plain_copy(pool: &PgPool, tagwatch_rows_per_busy_s: f64) -> anyhow::Result<Value> {
    let mut conn = pool.acquire().await?;
    let mut exported = Vec::new();
    {
        use futures_util::TryStreamExt;
        let mut out = conn
            .copy_out_raw(
                "COPY (SELECT id, tag, station, first_seen, last_seen, best_rssi, reads \
                 FROM visits) TO STDOUT",
            )
            .await?;
        while let Some(chunk) = out.try_next().await? {
            exported.extend_from_slice(&chunk);
        }
    }
    conn.execute(
        "DROP TABLE IF EXISTS copy_target; \
         CREATE TABLE copy_target (id bigint PRIMARY KEY, tag bigint NOT NULL, \
         station bigint NOT NULL, first_seen bigint NOT NULL, last_seen bigint NOT NULL, \
         best_rssi bigint NOT NULL, reads bigint NOT NULL); \
         CREATE INDEX copy_target_tag_first ON copy_target (tag, first_seen); \
         CREATE INDEX copy_target_station_first ON copy_target (station, first_seen)",
    )
    .await?;
    let lines: Vec<&[u8]> = exported.split_inclusive(|&b| b == b'\n').collect();
    let started = Instant::now();
    for chunk in lines.chunks(COPY_CHUNK) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut copy = tx.copy_in_raw("COPY copy_target FROM STDIN").await?;
        copy.send(chunk.concat()).await?;
        copy.finish().await?;
        tx.commit().await?;
    }
    let secs = started
        .elapsed()
        .max(Duration::from_micros(1))
        .as_secs_f64();
    let copy_rows_per_s = lines.len() as f64 / secs;
    eprintln!(
        "  plain COPY: {} visit rows in chunks of {COPY_CHUNK}: {copy_rows_per_s:.0} rows/s; TagWatch's checkpoints: {tagwatch_rows_per_busy_s:.0} visit rows per second of checkpoint commit ({:.2}×)",
        lines.len(),
        tagwatch_rows_per_busy_s / copy_rows_per_s
    );
    Ok(json!({
        "rows": lines.len(),
        "chunk_rows": COPY_CHUNK,
        "plain_copy_rows_per_s": copy_rows_per_s,
        "tagwatch_visit_rows_per_checkpoint_s": tagwatch_rows_per_busy_s,
        "tagwatch_over_copy": tagwatch_rows_per_busy_s / copy_rows_per_s,
    }))
}

/// The comparisons as a few lines of the closing summary.
pub fn summary(side: &Value) {
    let queries = &side["postgis"]["queries"];
    println!();
    println!("| query (same visits) | TagWatch API p50 / p99 | PostGIS p50 / p99 | PostGIS ÷ TagWatch (p50) | agreement |");
    println!("|---|---|---|---|---|");
    for (name, q) in queries.as_object().into_iter().flatten() {
        let f = |v: &Value| v.as_f64().map_or("-".into(), |v| format!("{v:.2}"));
        println!(
            "| {name} | {} / {} ms | {} / {} ms | {} | {} |",
            f(&q["tagwatch_api_ms"]["p50"]),
            f(&q["tagwatch_api_ms"]["p99"]),
            f(&q["postgis_ms"]["p50"]),
            f(&q["postgis_ms"]["p99"]),
            f(&q["postgis_over_tagwatch_p50"]),
            f(&q["answer_agreement_jaccard"]),
        );
    }
    let copy = &side["copy"];
    println!(
        "\nVisit rows/s: TagWatch's checkpoints {:.0}, plain COPY {:.0} ({:.2}×)",
        copy["tagwatch_visit_rows_per_checkpoint_s"]
            .as_f64()
            .unwrap_or(0.0),
        copy["plain_copy_rows_per_s"].as_f64().unwrap_or(0.0),
        copy["tagwatch_over_copy"].as_f64().unwrap_or(0.0),
    );
}
