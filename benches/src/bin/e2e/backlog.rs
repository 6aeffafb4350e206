//! The city-wide backlog: every station loses its uplink for an hour (by default of the command
//! line, `--backlog-minutes`), keeps its frames in flash, then all reconnect at once and send
//! the backlog while the city keeps driving. Measured from the moment they are back: how long
//! the backlog takes to drain, stolen-vehicle alerts from live frames and from backlog frames
//! (each from when its frame first left its station), queue wait, BUSY answers, and every
//! second the process's RSS, what is left in the stations' flash and what the server applied.
//!
//! The outage's hour is built as fast as the load generator can (the city clock runs ahead of
//! the wall clock meanwhile, which the bench's server is configured to accept), and the stations'
//! flash lives in this process: its RSS includes it, so "flat" is the figure to read, not its
//! level.

use crate::metrics::{process_usage, Sample, Sampler, Scrape};
use crate::replay::Replay;
use crate::AlertSeen;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Scenario<'a> {
    pub minutes: u64,
    pub max_drain: Duration,
    pub replay: &'a mut Replay,
    pub outage: &'a AtomicBool,
    pub unacked: &'a Arc<AtomicUsize>,
    pub client: &'a reqwest::Client,
    pub api: &'a str,
    pub alerts: &'a Arc<Mutex<Vec<AlertSeen>>>,
    pub out: &'a std::path::Path,
    /// The run's name, for the plot's file.
    pub name: &'a str,
}

/// One second of the drain.
#[derive(Debug, Clone, Copy)]
struct Second {
    t: f64,
    rss_mib: f64,
    in_flash: usize,
    applied_per_s: f64,
    busy_per_s: f64,
    expected_wait_s: f64,
}

pub async fn run(s: Scenario<'_>) -> anyhow::Result<Value> {
    let stations = s.replay.recording.stations.len();
    crate::settle_within(s.unacked, Duration::from_secs(60)).await;

    // The outage: the city drives on, every frame stays in its station.
    s.outage.store(true, Ordering::SeqCst);
    let built_from = Instant::now();
    let mut detections = 0;
    let mut overflow = 0;
    for minute in 0..s.minutes {
        let offered = s.replay.offer(60, 1_000.0, 1).await;
        detections += offered.detections;
        overflow += offered.overflow_frames;
        eprintln!(
            "  outage: minute {} of {} built, {} frames in the stations' flash",
            minute + 1,
            s.minutes,
            s.unacked.load(Ordering::Relaxed)
        );
    }
    let build_secs = built_from.elapsed().as_secs_f64();
    let backlog_frames = s.unacked.load(Ordering::Relaxed);
    // Frames up to these seqs were built during the outage (or before): the backlog.
    let backlog_upto: HashMap<u32, u32> = s
        .replay
        .recording
        .stations
        .iter()
        .zip(s.replay.seqs())
        .map(|(id, &seq)| (id.0, seq))
        .collect();

    // Back: everyone reconnects at once; the city goes on in real time.
    s.alerts.lock().expect("lock").clear();
    let before = Scrape::take(s.client, s.api).await?;
    s.outage.store(false, Ordering::SeqCst);
    let back = Instant::now();
    let sampler = Sampler::start(Some(s.api.to_owned()), s.unacked.clone())?;
    let mut drained_after = None;
    let mut offered_seconds = 0u64;
    while back.elapsed() < s.max_drain {
        s.replay.offer(1, 1.0, 1).await;
        offered_seconds += 1;
        let in_flash = s.unacked.load(Ordering::Relaxed);
        if offered_seconds.is_multiple_of(30) {
            eprintln!(
                "  backlog: {:.0} s after reconnecting, {in_flash} frames left in flash, RSS {:.0} MiB",
                back.elapsed().as_secs_f64(),
                process_usage().1
            );
        }
        // Drained: what is left is about a second of live frames in flight.
        if in_flash <= stations {
            drained_after = Some(back.elapsed().as_secs_f64());
            break;
        }
    }
    let samples = sampler.stop().await;
    let failed_scrapes = samples.iter().filter(|s| s.scrape.is_none()).count();
    let seconds = per_second(&samples, &before);
    let after = Scrape::take(s.client, s.api).await?;
    let alerts = s.alerts.lock().expect("lock").clone();
    let is_backlog = |a: &AlertSeen| {
        backlog_upto
            .get(&a.station)
            .is_some_and(|&upto| a.seq <= upto)
    };
    let (from_backlog, live): (Vec<AlertSeen>, Vec<AlertSeen>) =
        alerts.iter().partition(|a| is_backlog(a));
    let ms = |v: Option<f64>| v.map(|s| s * 1_000.0);
    let answered = |status: &str| {
        after.delta(
            &before,
            &format!("tagwatch_acks_sent_total{{status=\"{status}\"}}"),
        )
    };
    let answers: f64 = ["accepted", "duplicate", "rejected", "busy"]
        .iter()
        .map(|s| answered(s))
        .sum();
    let result = json!({
        "outage_minutes": s.minutes,
        "failed_metrics_scrapes": failed_scrapes,
        "backlog_frames": backlog_frames,
        "backlog_detections": detections,
        "frames_lost_at_build (station buffers full)": overflow,
        "seconds_to_build_the_outage": build_secs,
        "drained_after_s": drained_after,
        "detections_applied_per_s": after.delta(&before, "tagwatch_detections_applied_total") / back.elapsed().as_secs_f64(),
        "alerts_from_live_frames": latency(&live),
        "alerts_from_backlog_frames": latency(&from_backlog),
        "ingest_queue_wait_p50_ms_le": ms(after.quantile(&before, "tagwatch_ingest_queue_wait_seconds", 0.5)),
        "ingest_queue_wait_p99_ms_le": ms(after.quantile(&before, "tagwatch_ingest_queue_wait_seconds", 0.99)),
        "ingest_queue_wait_max_ms_le": ms(after.quantile(&before, "tagwatch_ingest_queue_wait_seconds", 1.0)),
        "server_alert_latency_ms": {
            "p50_le": ms(after.quantile(&before, crate::report::STOLEN_RAISE, 0.5)),
            "p99_le": ms(after.quantile(&before, crate::report::STOLEN_RAISE, 0.99)),
            "max_le": ms(after.quantile(&before, crate::report::STOLEN_RAISE, 1.0)),
        },
        "busy_answers": answered("busy"),
        "busy_percent": 100.0 * answered("busy") / answers.max(1.0),
        "history_lookups": after.delta(&before, "tagwatch_history_lookups_total"),
        "rss_mib_first": seconds.first().map(|s| s.rss_mib),
        "rss_mib_max": seconds.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
        "rss_mib_last": seconds.last().map(|s| s.rss_mib),
        "every_second": seconds.iter().map(|s| json!([s.t.round(), s.rss_mib.round(), s.in_flash, s.applied_per_s.round(), s.busy_per_s.round(), s.expected_wait_s])).collect::<Vec<_>>(),
        "every_second_columns": ["s after reconnecting", "RSS MiB", "frames in flash", "detections applied/s", "BUSY/s", "expected wait s"],
    });
    eprintln!("  backlog: {result:#}");
    let alert_points: Vec<(f64, f64, bool)> = alerts
        .iter()
        .map(|a| {
            (
                a.at.saturating_duration_since(back).as_secs_f64(),
                a.ms,
                is_backlog(a),
            )
        })
        .collect();
    let rows: Vec<(f64, f64, f64)> = seconds
        .iter()
        .map(|s| (s.t, s.rss_mib, s.in_flash as f64))
        .collect();
    crate::plot::backlog(
        &s.out.join(format!("backlog-{}.svg", s.name)),
        &alert_points,
        &rows,
    )?;
    Ok(result)
}

/// Each sample as a second of the drain; rates over the time since the last sample whose
/// scrape answered (a missed scrape leaves its own second's rates out, not its RSS).
fn per_second(samples: &[Sample], before: &Scrape) -> Vec<Second> {
    let mut last = (0.0, before);
    let mut seconds = Vec::with_capacity(samples.len());
    for sample in samples {
        let (applied_per_s, busy_per_s, expected_wait_s) = match &sample.scrape {
            Some(now) => {
                let dt = (sample.t - last.0).max(1e-3);
                let rates = (
                    now.delta(last.1, "tagwatch_detections_applied_total") / dt,
                    now.delta(last.1, "tagwatch_acks_sent_total{status=\"busy\"}") / dt,
                    now.get("tagwatch_ingest_expected_wait_seconds"),
                );
                last = (sample.t, now);
                rates
            }
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        seconds.push(Second {
            t: sample.t,
            rss_mib: sample.rss_mib,
            in_flash: sample.in_flash,
            applied_per_s,
            busy_per_s,
            expected_wait_s,
        });
    }
    seconds
}

/// Count and p50/p99/max of alert latencies, ms.
fn latency(alerts: &[AlertSeen]) -> Value {
    let mut ms: Vec<f64> = alerts.iter().map(|a| a.ms).collect();
    ms.sort_by(f64::total_cmp);
    json!({
        "count": ms.len(),
        "p50_ms": crate::report::percentile(&ms, 0.5),
        "p99_ms": crate::report::percentile(&ms, 0.99),
        "max_ms": crate::report::percentile(&ms, 1.0),
    })
}
