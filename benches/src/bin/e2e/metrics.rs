//! What the server says about itself: its Prometheus text at `/metrics`, read between steps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One scrape: every sample by its series (name with labels).
#[derive(Debug, Default, Clone)]
pub struct Scrape(pub HashMap<String, f64>);

impl Scrape {
    pub async fn take(client: &reqwest::Client, api: &str) -> anyhow::Result<Self> {
        let text = client
            .get(format!("{api}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let mut samples = HashMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((series, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.parse::<f64>() {
                    samples.insert(series.to_owned(), v);
                }
            }
        }
        Ok(Self(samples))
    }

    /// Every role's metrics at once (a cluster's gateway and shards), summed by series.
    pub async fn take_all(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<Self> {
        let mut samples: HashMap<String, f64> = HashMap::new();
        for url in urls {
            for (series, value) in Self::take(client, url).await?.0 {
                *samples.entry(series).or_default() += value;
            }
        }
        Ok(Self(samples))
    }

    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// `series` grew by this much since `before`.
    pub fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }

    /// The `q` quantile of histogram `name` (with its labels, if any) over the observations
    /// since `before`, as the upper bound of the bucket it falls in (seconds).
    pub fn quantile(&self, before: &Scrape, name: &str, q: f64) -> Option<f64> {
        // A labelled histogram (`name{kind="x"}`): its buckets carry the labels after `le`.
        let (prefix, suffix) = match name.split_once('{') {
            Some((base, labels)) => (format!("{base}_bucket{{le=\""), format!("\",{labels}")),
            None => (format!("{name}_bucket{{le=\""), "\"}".to_owned()),
        };
        let mut buckets: Vec<(f64, f64)> = self
            .0
            .keys()
            .filter_map(|k| {
                let le = k.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, self.delta(before, k)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        buckets
            .iter()
            .find(|(_, count)| *count >= q * total)
            .map(|(bound, _)| *bound)
    }
}

/// Waits (at most `limit`) until a checkpoint has covered every journaled frame: from then on
/// the visits table holds every visit the tracker has (no frames arrive any more), so the store
/// and the API can be compared on the same data.
pub async fn journal_checkpointed(
    client: &reqwest::Client,
    api: &str,
    limit: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while Scrape::take(client, api)
        .await?
        .get("tagwatch_journal_frames_pending")
        > 0.0
    {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("frames still journaled after {limit:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

/// This process's CPU time so far (user + system), seconds, and resident memory, MiB.
pub fn process_usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state field.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    (cpu, rss)
}

/// CPU time (user + system, seconds) of this process's live threads whose names start with one of
/// `prefixes` (Linux truncates thread names to 15 bytes).
pub fn threads_cpu_secs(prefixes: &[&str]) -> f64 {
    cpu_secs_under("/proc/self/task", |name| {
        prefixes.iter().any(|p| name.starts_with(p))
    })
}

/// CPU time (user + system, seconds) of the entries of `dir` (processes in `/proc`, threads in a
/// task directory) whose command name `keep` accepts; 0 where `dir` is missing.
fn cpu_secs_under(dir: &str, keep: impl Fn(&str) -> bool) -> f64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0.0;
    };
    let mut ticks = 0.0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name (which may hold spaces) is in parentheses; the fields follow the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !keep(head.split_once('(').map_or("", |(_, n)| n)) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        // utime and stime: fields 14 and 15 (1-based), 11 and 12 after the state field.
        ticks += field(11).unwrap_or(0.0) + field(12).unwrap_or(0.0);
    }
    ticks / 100.0
}

/// Datagrams the kernel dropped for want of room in a UDP socket's receive buffer, machine-wide
/// (`RcvbufErrors` in /proc/net/snmp); `None` where that file is missing.
pub fn udp_receive_drops() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// CPU time (user + system, seconds) of every process named `postgres` on this machine, for a
/// server on the same machine; 0 where `/proc` is missing.
pub fn postgres_cpu_secs() -> f64 {
    cpu_secs_under("/proc", |name| name == "postgres")
}

/// CPU seconds used so far by nats-server processes (a cluster run's bus).
pub fn nats_cpu_secs() -> f64 {
    cpu_secs_under("/proc", |name| name == "nats-server")
}

/// One second's sample of the bench: the process's RSS, the frames left in the stations' flash,
/// and the server's metrics (when the scrape answered within a second).
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    pub rss_mib: f64,
    pub in_flash: usize,
    pub scrape: Option<Scrape>,
}

/// Samples every second on a thread and runtime of its own: on the bench's runtime a sample
/// waited behind a thousand station tasks whenever they all had work (a reconnect storm left
/// three minutes without one).
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Samples RSS and `in_flash`, and the server's metrics at `api` if given.
    pub fn start(api: Option<String>, in_flash: Arc<AtomicUsize>) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("e2e-sampler".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let client = reqwest::Client::new();
                    let started = std::time::Instant::now();
                    let mut samples = Vec::new();
                    let mut every = tokio::time::interval(Duration::from_secs(1));
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    while !stopped.load(Ordering::Relaxed) {
                        every.tick().await;
                        let scrape = match &api {
                            Some(api) => tokio::time::timeout(
                                Duration::from_secs(1),
                                Scrape::take(&client, api),
                            )
                            .await
                            .ok()
                            .and_then(Result::ok),
                            None => None,
                        };
                        samples.push(Sample {
                            t: started.elapsed().as_secs_f64(),
                            rss_mib: process_usage().1,
                            in_flash: in_flash.load(Ordering::Relaxed),
                            scrape,
                        });
                    }
                    samples
                })
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops it and returns its samples, in time order.
    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join().unwrap_or_default())
            .await
            .unwrap_or_default()
    }
}
