//! Each step's figures, where the server saturated and why, and the results file.

use crate::metrics::Scrape;
use serde_json::{json, Value};
use tagwatch_sim::city::CityConfig;
use tagwatch_sim::Transport;

/// What a step measured, before the figures are derived.
pub struct StepInput<'a> {
    /// Offered traffic as a multiple of the reference city's.
    pub load: u32,
    pub speed: f64,
    pub tags: u64,
    pub offered_detections: f64,
    pub offer_secs: f64,
    pub drain_secs: f64,
    pub unsettled_frames: usize,
    pub overflow_frames: usize,
    pub before: &'a Scrape,
    pub after: &'a Scrape,
    pub cpu_secs: f64,
    /// The server's threads alone (its runtime and the trajectory builder).
    pub server_cpu_secs: f64,
    pub postgres_cpu_secs: f64,
    pub rss_mib: f64,
    /// (seconds into the step, MiB), every second.
    pub rss_series: &'a [(f64, f64)],
    pub alert_latencies_ms: &'a [f64],
    pub udp_drops: Option<u64>,
}

/// One step's figures. ACK and flush latencies come from the server's histograms, so they are
/// bucket upper bounds (powers of two from 0.5 ms).
#[derive(Debug, Clone)]
pub struct Step {
    pub load: u32,
    pub speed: f64,
    /// Tags in the city during the step.
    pub tags: u64,
    pub offered_per_s: f64,
    pub applied_per_s: f64,
    pub frames_acked_per_s: f64,
    /// Frames answered BUSY (the gateway's queue full, or past the ingest's admission bound).
    pub busy_frames: f64,
    /// BUSY answers as a share of all answers, percent.
    pub busy_percent: f64,
    pub unsettled_frames: usize,
    pub ack_p50_ms: Option<f64>,
    pub ack_p99_ms: Option<f64>,
    pub alerts: usize,
    pub alert_p50_ms: Option<f64>,
    pub alert_p99_ms: Option<f64>,
    /// The slowest alert: with a few hundred alerts a step, p99 is the third slowest, and one
    /// pause of the server's ingest shows here first.
    pub alert_max_ms: Option<f64>,
    pub store_rows_per_s: f64,
    /// Visit rows per second of flush time: what the store writes while it is busy.
    pub store_rows_per_busy_s: f64,
    pub flush_p99_ms: Option<f64>,
    /// Visit rows written by checkpoints per second of the step, and the checkpoints' longest.
    pub checkpoint_rows_per_s: f64,
    pub checkpoint_p99_ms: Option<f64>,
    /// How long the ingest task stopped to collect a checkpoint's changes (p99).
    pub checkpoint_take_p99_ms: Option<f64>,
    /// The longest stop of the ingest task for the tracker's upkeep (upper bound of its bucket).
    pub upkeep_max_ms: Option<f64>,
    /// How long frames waited for the ingest, p99 (upper bound of its bucket).
    pub queue_wait_p99_ms: Option<f64>,
    /// The server's own measure of alerts: from the frame's arrival to the alert's publication,
    /// p99 and max (upper bounds of their buckets).
    pub server_alert_p99_ms: Option<f64>,
    pub server_alert_max_ms: Option<f64>,
    /// Stolen and armed alerts raised as their frame was taken in (before it was applied).
    pub alerts_ahead: f64,
    /// The longest turn of the ingest's loop, by what it did (bucket bounds).
    pub ingest_step_max_ms: Vec<(&'static str, Option<f64>)>,
    /// Checkpoint rows per second of checkpoint commit time: visit rows the store writes.
    pub checkpoint_rows_per_busy_s: f64,
    /// The server's checkpoint interval at the end of the step (stretched while checkpoints
    /// take long), and the journal it would apply again after a crash then, in seconds of the
    /// step's frames.
    pub checkpoint_interval_s: f64,
    pub journal_s: f64,
    /// This process (server and load generator), percent of one core.
    pub cpu_percent: f64,
    /// The server's threads, percent of one core; the rest of `cpu_percent` is the load
    /// generator's (the stations' uplinks, the recording's frames, the alert listener).
    pub server_cpu_percent: f64,
    /// Every `postgres` process on the machine, percent of one core.
    pub postgres_cpu_percent: f64,
    pub rss_mib: f64,
    pub rss_max_mib: f64,
    pub rss_series: Vec<(f64, f64)>,
    /// Datagrams the kernel dropped at full UDP receive buffers during the step.
    pub udp_drops: Option<u64>,
    /// Every offered detection applied, every frame settled, nothing refused BUSY.
    pub sustained: bool,
    /// When not sustained: the stage that limits, from the server's metrics.
    pub limit: Option<&'static str>,
}

/// The server's histogram of stolen-vehicle alerts, from a frame's arrival to the alert.
/// What the ingest's loop turns are labelled by (`tagwatch_ingest_step_seconds`).
const INGEST_STEPS: [&str; 8] = [
    "slice",
    "take_in",
    "flush",
    "take_step",
    "clock",
    "command",
    "query",
    "committed",
];

pub const STOLEN_RAISE: &str = "tagwatch_alert_raise_seconds{kind=\"stolen_sighting\"}";

/// Longest journal, in seconds of frames, a sustained step may leave for a crash to apply again:
/// checkpoints stretch under load (twice their commit time), but past this they fall behind.
const MAX_JOURNAL_S: f64 = 120.0;

/// The `q` quantile of `sorted` (nearest rank); `None` when it is empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

impl Step {
    pub fn measure(i: StepInput<'_>) -> Self {
        let (b, a) = (i.before, i.after);
        let secs = i.offer_secs.max(0.001);
        let applied = a.delta(b, "tagwatch_detections_applied_total");
        let answered = |status: &str| {
            a.delta(
                b,
                &format!("tagwatch_acks_sent_total{{status=\"{status}\"}}"),
            )
        };
        let busy = answered("busy");
        let answers: f64 = ["accepted", "duplicate", "rejected", "busy"]
            .iter()
            .map(|s| answered(s))
            .sum();
        let ms = |s: Option<f64>| s.map(|v| v * 1_000.0);
        let flush_p99_ms = ms(a.quantile(b, "tagwatch_store_flush_seconds", 0.99));
        let ack_p99_ms = ms(a.quantile(b, "tagwatch_ack_latency_seconds", 0.99));
        // The journal a crash would apply again, in seconds of the step's frames.
        let journal_s = {
            let frames_per_s = a.delta(b, "tagwatch_frames_journaled_total") / secs;
            a.get("tagwatch_journal_frames_pending") / frames_per_s.max(1e-9)
        };
        // An ACK slower than the stations' resend timeout (3 s) makes them send again; a journal
        // longer than MAX_JOURNAL_S means checkpoints fall behind (and a crash costs minutes).
        let sustained = applied >= 0.99 * i.offered_detections
            && journal_s <= MAX_JOURNAL_S
            && i.unsettled_frames == 0
            && i.overflow_frames == 0
            && busy == 0.0
            && ack_p99_ms.is_some_and(|p| p < 3_000.0);
        let cpu_percent = 100.0 * i.cpu_secs / (secs + i.drain_secs);
        let server_cpu_percent = 100.0 * i.server_cpu_secs / (secs + i.drain_secs);
        let postgres_cpu_percent = 100.0 * i.postgres_cpu_secs / (secs + i.drain_secs);
        let flush_rows = a.delta(b, "tagwatch_store_flush_rows_sum");
        let flush_secs = a.delta(b, "tagwatch_store_flush_seconds_sum");
        let cpu_busy = cpu_percent + postgres_cpu_percent;
        let limit = (!sustained).then(|| {
            if flush_p99_ms.is_some_and(|f| f >= 1_000.0) {
                "store (flushes take a second or more)"
            } else if journal_s > MAX_JOURNAL_S {
                "store (checkpoints fall behind: over 2 minutes of journal)"
            } else if ack_p99_ms.is_none_or(|p| p >= 3_000.0) && cpu_busy > 140.0 {
                "CPU: frames wait to be applied (flushes stay under 1 s) while server, load generator and Postgres share the two cores"
            } else if ack_p99_ms.is_none_or(|p| p >= 3_000.0) {
                "ACK latency above the stations' 3 s resend timeout"
            } else if busy > 0.0 {
                "tracker / ingest (more offered than it applies within its admission bound: BUSY)"
            } else if i.overflow_frames > 0 || i.unsettled_frames > 0 {
                "gateway / ACK (frames left unacknowledged)"
            } else if cpu_percent + postgres_cpu_percent > 190.0 {
                "CPU (both cores busy: server, load generator and Postgres)"
            } else {
                "unclear: applied fell behind offered"
            }
        });
        Self {
            load: i.load,
            speed: i.speed,
            tags: i.tags,
            offered_per_s: i.offered_detections / secs,
            applied_per_s: applied / secs,
            frames_acked_per_s: a.delta(b, "tagwatch_acks_sent_total{status=\"accepted\"}") / secs,
            busy_frames: busy,
            busy_percent: 100.0 * busy / answers.max(1.0),
            unsettled_frames: i.unsettled_frames,
            ack_p50_ms: ms(a.quantile(b, "tagwatch_ack_latency_seconds", 0.5)),
            ack_p99_ms,
            alerts: i.alert_latencies_ms.len(),
            alert_p50_ms: percentile(i.alert_latencies_ms, 0.5),
            alert_p99_ms: percentile(i.alert_latencies_ms, 0.99),
            alert_max_ms: percentile(i.alert_latencies_ms, 1.0),
            store_rows_per_s: flush_rows / secs,
            store_rows_per_busy_s: if flush_secs > 0.0 {
                flush_rows / flush_secs
            } else {
                0.0
            },
            flush_p99_ms,
            checkpoint_rows_per_s: a.delta(b, "tagwatch_checkpoint_rows_sum") / secs,
            checkpoint_p99_ms: ms(a.quantile(b, "tagwatch_checkpoint_seconds", 0.99)),
            checkpoint_take_p99_ms: ms(a.quantile(b, "tagwatch_checkpoint_take_seconds", 0.99)),
            upkeep_max_ms: ms(a.quantile(b, "tagwatch_tracker_upkeep_seconds", 1.0)),
            queue_wait_p99_ms: ms(a.quantile(b, "tagwatch_ingest_queue_wait_seconds", 0.99)),
            server_alert_p99_ms: ms(a.quantile(b, STOLEN_RAISE, 0.99)),
            server_alert_max_ms: ms(a.quantile(b, STOLEN_RAISE, 1.0)),
            alerts_ahead: a.delta(b, "tagwatch_alerts_ahead_total"),
            ingest_step_max_ms: INGEST_STEPS
                .iter()
                .map(|&step| {
                    let name = format!("tagwatch_ingest_step_seconds{{step=\"{step}\"}}");
                    (step, ms(a.quantile(b, &name, 1.0)))
                })
                .collect(),
            checkpoint_interval_s: a.get("tagwatch_checkpoint_interval_seconds"),
            journal_s,
            checkpoint_rows_per_busy_s: {
                let secs = a.delta(b, "tagwatch_checkpoint_seconds_sum");
                if secs > 0.0 {
                    a.delta(b, "tagwatch_checkpoint_rows_sum") / secs
                } else {
                    0.0
                }
            },
            cpu_percent,
            server_cpu_percent,
            postgres_cpu_percent,
            rss_mib: i.rss_mib,
            rss_max_mib: i.rss_series.iter().map(|s| s.1).fold(i.rss_mib, f64::max),
            rss_series: i.rss_series.to_vec(),
            udp_drops: i.udp_drops,
            sustained,
            limit,
        }
    }

    /// The ingest's longest loop turns, longest first: what a frame's alerts may have waited behind.
    fn longest_turns(&self) -> String {
        let mut turns: Vec<_> = self
            .ingest_step_max_ms
            .iter()
            .filter_map(|&(step, ms)| Some((step, ms?)))
            .collect();
        turns.sort_by(|a, b| b.1.total_cmp(&a.1));
        turns
            .iter()
            .take(3)
            .map(|(step, ms)| format!("{step} ≤{ms} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn fmt_ms(v: Option<f64>) -> String {
        v.map_or("-".into(), |v| format!("{v:.1}"))
    }

    pub fn print(&self) {
        eprintln!(
            "  ×{:<3} {:>9} tags  offered {:>9.0}/s applied {:>9.0}/s  BUSY {:.1}%  queue wait p99 ≤{} ms  ACK p50 ≤{} p99 ≤{} ms  alert p50 {} p99 {} max {} ms ({}; in the server p99 ≤{} max ≤{} ms; {:.0} raised ahead; longest ingest turn {})  rows {:>8.0}/s ({:.0}/s busy) + checkpoints {:>7.0}/s (p99 ≤{} ms, taken in ≤{} ms, every {:.0} s, journal {:.0} s)  upkeep max ≤{} ms  CPU server {:>3.0}% + load generator {:>3.0}% + Postgres {:>3.0}%  RSS {:.0} MiB (max {:.0})  UDP drops {}  {}",
            self.load,
            self.tags,
            self.offered_per_s,
            self.applied_per_s,
            self.busy_percent,
            Self::fmt_ms(self.queue_wait_p99_ms),
            Self::fmt_ms(self.ack_p50_ms),
            Self::fmt_ms(self.ack_p99_ms),
            Self::fmt_ms(self.alert_p50_ms),
            Self::fmt_ms(self.alert_p99_ms),
            Self::fmt_ms(self.alert_max_ms),
            self.alerts,
            Self::fmt_ms(self.server_alert_p99_ms),
            Self::fmt_ms(self.server_alert_max_ms),
            self.alerts_ahead,
            self.longest_turns(),
            self.store_rows_per_s,
            self.store_rows_per_busy_s,
            self.checkpoint_rows_per_s,
            Self::fmt_ms(self.checkpoint_p99_ms),
            Self::fmt_ms(self.checkpoint_take_p99_ms),
            self.checkpoint_interval_s,
            self.journal_s,
            Self::fmt_ms(self.upkeep_max_ms),
            self.server_cpu_percent,
            self.cpu_percent - self.server_cpu_percent,
            self.postgres_cpu_percent,
            self.rss_mib,
            self.rss_max_mib,
            self.udp_drops.map_or("-".into(), |d| d.to_string()),
            self.limit.unwrap_or("sustained"),
        );
    }

    fn json(&self) -> Value {
        json!({
            "load": self.load,
            "speed": self.speed,
            "tags": self.tags,
            "offered_detections_per_s": self.offered_per_s,
            "applied_detections_per_s": self.applied_per_s,
            "frames_acked_per_s": self.frames_acked_per_s,
            "busy_frames": self.busy_frames,
            "busy_percent": self.busy_percent,
            "unsettled_frames": self.unsettled_frames,
            "ack_latency_ms": { "p50_le": self.ack_p50_ms, "p99_le": self.ack_p99_ms },
            "alert_latency_ms": { "count": self.alerts, "p50": self.alert_p50_ms, "p99": self.alert_p99_ms, "max": self.alert_max_ms },
            "store_rows_per_s": self.store_rows_per_s,
            "store_rows_per_busy_s": self.store_rows_per_busy_s,
            "store_flush_p99_ms_le": self.flush_p99_ms,
            "checkpoint_rows_per_s": self.checkpoint_rows_per_s,
            "checkpoint_p99_ms_le": self.checkpoint_p99_ms,
            "checkpoint_take_p99_ms_le": self.checkpoint_take_p99_ms,
            "tracker_upkeep_max_ms_le": self.upkeep_max_ms,
            "ingest_queue_wait_p99_ms_le": self.queue_wait_p99_ms,
            "server_alert_latency_ms": { "p99_le": self.server_alert_p99_ms, "max_le": self.server_alert_max_ms },
            "alerts_ahead": self.alerts_ahead,
            "ingest_turn_max_ms_le": self.ingest_step_max_ms.iter().map(|(step, ms)| (step.to_string(), json!(ms))).collect::<serde_json::Map<_, _>>(),
            "checkpoint_rows_per_busy_s": self.checkpoint_rows_per_busy_s,
            "checkpoint_interval_s": self.checkpoint_interval_s,
            "journal_pending_s": self.journal_s,
            "cpu_percent": self.cpu_percent,
            "server_cpu_percent": self.server_cpu_percent,
            "load_generator_cpu_percent": self.cpu_percent - self.server_cpu_percent,
            "postgres_cpu_percent": self.postgres_cpu_percent,
            "rss_mib": self.rss_mib,
            "rss_max_mib": self.rss_max_mib,
            "rss_mib_every_second": self.rss_series.iter().map(|s| s.1.round()).collect::<Vec<_>>(),
            "udp_receive_buffer_drops": self.udp_drops,
            "sustained": self.sustained,
            "limited_by": self.limit,
        })
    }
}

/// One store × transport run.
pub struct Run {
    pub store: String,
    pub transport: Transport,
    pub steps: Vec<Step>,
    /// UDP runs: the gateway's frames/s against iperf3's loopback datagrams/s.
    pub loopback: Option<Value>,
    /// Postgres runs: the server killed after the last step and started again, the journal
    /// left since its last checkpoint applied again.
    pub restart: Option<Value>,
    /// The city-wide backlog scenario, when run.
    pub backlog: Option<Value>,
    /// Frames built, acknowledged and applied over the whole run.
    pub exactly_once: Option<Value>,
    /// GPS trackers reporting beside the stations (`--gps-trackers`).
    pub gps: Option<Value>,
}

impl Run {
    pub fn new(
        store: &str,
        transport: Transport,
        steps: Vec<Step>,
        loopback: Option<Value>,
        restart: Option<Value>,
    ) -> Self {
        Self {
            store: store.to_owned(),
            transport,
            steps,
            loopback,
            restart,
            backlog: None,
            exactly_once: None,
            gps: None,
        }
    }

    /// The highest step with everything applied and acknowledged, below the first that was not.
    pub fn best(&self) -> Option<&Step> {
        // Only steps below the first one that failed: one lucky step past it does not count.
        self.steps
            .iter()
            .take_while(|s| s.sustained)
            .max_by(|a, b| a.applied_per_s.total_cmp(&b.applied_per_s))
    }

    fn name(&self) -> String {
        format!("{} / {:?}", self.store, self.transport).to_lowercase()
    }
}

pub fn write(
    dir: &std::path::Path,
    city: &CityConfig,
    recording: &crate::stream::Recording,
    synchronized: bool,
    runs: &[Run],
    side_by_side: Option<&Value>,
) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let doc = json!({
        "machine": { "cpus": cpus, "os": std::env::consts::OS, "arch": std::env::consts::ARCH },
        "city": {
            "stations": city.grid_w * city.grid_h, "tags": city.tags,
            "real_time_detections_per_s": recording.rate(),
            "stolen_fraction": 1.0 / f64::from(crate::STOLEN_EVERY),
            "stations_send": if synchronized { "all at the start of each second" } else { "each at its own moment within the second" },
        },
        "runs": runs.iter().map(|r| json!({
            "store": r.store,
            "transport": format!("{:?}", r.transport).to_lowercase(),
            "highest_sustained_detections_per_s": r.best().map(|s| s.applied_per_s),
            "steps": r.steps.iter().map(Step::json).collect::<Vec<_>>(),
            "gateway_vs_loopback_udp": r.loopback,
            "restart_after_crash": r.restart,
            "city_wide_backlog": r.backlog,
            "exactly_once": r.exactly_once,
            "gps_trackers": r.gps,
        })).collect::<Vec<_>>(),
        "side_by_side": side_by_side,
    });
    let path = dir.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    eprintln!("Results: {}", path.display());
    Ok(path)
}

/// The closing summary: per run, the highest sustained rate and its latencies, and what
/// stopped the next step.
pub fn summary(runs: &[Run], side_by_side: Option<&Value>) {
    println!("| store / transport | highest sustained detections/s | tags | ACK p99 | alert p99 | RSS | next step limited by |");
    println!("|---|---|---|---|---|---|---|");
    for run in runs {
        let best = run.best();
        let stopped = run.steps.iter().find(|s| !s.sustained);
        println!(
            "| {} | {} | {} | {} ms | {} ms | {} MiB | {} |",
            run.name(),
            best.map_or("none".into(), |s| format!("{:.0}", s.applied_per_s)),
            best.map_or("-".into(), |s| s.tags.to_string()),
            best.map_or("-".into(), |s| Step::fmt_ms(s.ack_p99_ms)),
            best.map_or("-".into(), |s| Step::fmt_ms(s.alert_p99_ms)),
            best.map_or("-".into(), |s| format!("{:.0}", s.rss_mib)),
            stopped.and_then(|s| s.limit).unwrap_or("not reached"),
        );
    }
    if let Some(side) = side_by_side {
        crate::side_by_side::summary(side);
    }
}
