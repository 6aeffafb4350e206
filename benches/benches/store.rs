//! Store write throughput: visit rows committed per second into a database that already holds a
//! city's worth of visits (300,000 tags), in batches as the ingest loop makes them: most rows
//! extend an open visit (update), some open a new one (insert).
//!
//! On SQLite always; on Postgres when `TAGWATCH_TEST_POSTGRES_URL` is set, side by side with the
//! ceiling: a plain `COPY` of the same number of rows straight into the same table.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlx::Connection;
use std::time::{Duration, Instant};
use tagwatch_model::{StationId, TagId, Visit, VisitId};
use tagwatch_store::{Batch, Store};

const TAGS: i64 = 300_000;
const BATCH: usize = 20_000;

fn visit(id: i64, t: i64) -> Visit {
    Visit {
        id: VisitId(id),
        tag: TagId(u32::try_from(id % TAGS + 1).expect("fits")),
        station: StationId(u32::try_from(id % 1000 + 1).expect("fits")),
        first_seen_ms: t,
        last_seen_ms: t,
        best_rssi: -60,
        reads: 1,
    }
}

/// A batch as the tracker makes it: 90 % extensions of open visits, 10 % new visits.
fn batch(rng: &mut fastrand::Rng, next_id: &mut i64, t: i64) -> Batch {
    let visits: Vec<Visit> = (0..BATCH)
        .map(|_| {
            let v = if rng.u8(0..10) == 0 {
                *next_id += 1;
                visit(*next_id, t)
            } else {
                let mut v = visit(rng.i64(1..=TAGS), 0);
                v.last_seen_ms = t;
                v.reads = 2;
                v
            };
            // Keyed by id: a batch holds each visit once, as the tracker's does.
            (v.id, v)
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    let (extended_visits, visits) = visits.into_iter().partition(|v| v.id.0 <= TAGS);
    Batch {
        visits,
        extended_visits,
        ..Batch::default()
    }
}

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    bench_backend(c, &runtime, &url, "store_sqlite", None);
    // fresh_postgres says so when TAGWATCH_TEST_POSTGRES_URL is not set.
    if let Some(url) = runtime.block_on(tagwatch_store::testing::fresh_postgres()) {
        bench_backend(c, &runtime, &url, "store_postgres", Some(&url));
    }
}

fn bench_backend(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    name: &str,
    postgres: Option<&str>,
) {
    let store = runtime.block_on(Store::open(url)).expect("store");
    // The city's open visits, one per tag.
    let mut next_id = 1i64;
    runtime.block_on(async {
        for chunk in (0..TAGS).collect::<Vec<_>>().chunks(50_000) {
            let visits = chunk.iter().map(|&i| visit(i + 1, 0)).collect();
            store
                .commit(&Batch {
                    visits,
                    ..Batch::default()
                })
                .await
                .expect("seed");
        }
    });
    next_id += TAGS;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut t = 1i64;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("commit_visit_upserts_20k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                t += 1_000;
                let batch = batch(&mut rng, &mut next_id, t);
                let started = Instant::now();
                runtime.block_on(store.commit(&batch)).expect("commit");
                total += started.elapsed();
            }
            total
        })
    });
    if let Some(url) = postgres {
        // The ceiling: the same number of rows, new ids, COPYed straight into the same table.
        let mut conn = runtime
            .block_on(sqlx::PgConnection::connect(url))
            .expect("connect");
        group.bench_function("plain_copy_20k_ceiling", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    t += 1_000;
                    let mut text = String::new();
                    for _ in 0..BATCH {
                        next_id += 1;
                        let v = visit(next_id, t);
                        text.push_str(&format!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                            v.id.0,
                            v.tag.0,
                            v.station.0,
                            v.first_seen_ms,
                            v.last_seen_ms,
                            v.best_rssi,
                            v.reads
                        ));
                    }
                    let started = Instant::now();
                    runtime.block_on(async {
                        let mut tx = conn.begin().await.expect("begin");
                        let mut copy = tx
                            .copy_in_raw(
                                "COPY visits (id, tag, station, first_seen, last_seen, \
                                 best_rssi, reads) FROM STDIN",
                            )
                            .await
                            .expect("copy");
                        copy.send(text.into_bytes()).await.expect("send");
                        copy.finish().await.expect("finish");
                        tx.commit().await.expect("commit");
                    });
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(benches, store);
criterion_main!(benches);
