//! Store write throughput: visit rows committed per second into a SQLite file that already holds
//! a city's worth of visits (300,000 tags), in batches as the ingest loop makes them: most rows
//! extend an open visit (update), some open a new one (insert).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
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

fn store(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = runtime.block_on(Store::open(&url)).expect("store");
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
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("commit_visit_upserts_20k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                t += 1_000;
                // 90 % extend a random open visit, 10 % open a new one.
                let visits: Vec<Visit> = (0..BATCH)
                    .map(|_| {
                        let v = if rng.u8(0..10) == 0 {
                            next_id += 1;
                            visit(next_id, t)
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
                let batch = Batch {
                    visits,
                    extended_visits,
                    ..Batch::default()
                };
                let started = Instant::now();
                runtime.block_on(store.commit(&batch)).expect("commit");
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
