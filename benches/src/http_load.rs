//! Concurrent HTTP callers of one endpoint, as officers' screens are: `clients` tasks, each
//! calling `path(i)` in turn with a bearer token for a while, every answer's latency kept. The
//! API load bench and the end-to-end bench (API load while the reference city is ingested) use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a load step measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx, or no answer.
    pub errors: u64,
}

/// The `p` quantile (0..=1) of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1_000.0
}

/// `clients` concurrent callers of `path(i)` on `api` for `run`.
pub async fn load(
    api: &str,
    token: &str,
    clients: usize,
    run: Duration,
    path: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Load {
    let path = Arc::new(path);
    let errors = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + run;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (api, token, path, errors) = (
                api.to_owned(),
                token.to_owned(),
                path.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies = Vec::new();
                let mut i = c as u64;
                while Instant::now() < until {
                    let started = Instant::now();
                    let ok = client
                        .get(format!("{api}{}", path(i)))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        latencies.push(started.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    i += clients as u64;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_unstable();
    Load {
        rps: all.len() as f64 / run.as_secs_f64(),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}
