//! # A tracker shard: the partitions it holds the leases of, each applied by a worker.
//!
//! Every `lease_ttl / 3` the shard renews its leases and takes its fair share
//! ([`crate::lease::Leases::round`]); a partition gained gets a worker
//! ([`crate::apply_partition`]), a partition lost has its worker stopped (which commits what it
//! applied, unless another shard has committed since: then the commit is fenced and dropped). A
//! worker that fails is started again at the next round while the lease is still held, from
//! what the store holds. When a shard dies its leases age out after `lease_ttl`, and the other
//! shards' next rounds take its partitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::apply_partition::{apply_partition, Shared, Stopped};
use crate::lease::Leases;

/// What a shard reports in `/metrics`.
#[derive(Debug)]
pub struct ShardMetrics {
    pub partitions_held: Gauge,
    pub parts_applied: Counter,
    /// Applied again after a partition moved (from its checkpoint to what was committed).
    pub parts_replayed: Counter,
    pub checkpoints: Counter,
    pub parts_duplicate: Counter,
    pub parts_unreadable: Counter,
    /// Live questions from API nodes answered.
    pub questions: Counter,
    pub commits: Counter,
    pub commit_seconds: Histogram,
    pub fenced: Counter,
    pub worker_failures: Counter,
    /// From taking a partition to reading its first part: restoring its tracker.
    pub claim_seconds: Histogram,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self {
            partitions_held: Gauge::default(),
            parts_applied: Counter::default(),
            parts_replayed: Counter::default(),
            checkpoints: Counter::default(),
            parts_duplicate: Counter::default(),
            parts_unreadable: Counter::default(),
            questions: Counter::default(),
            commits: Counter::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            fenced: Counter::default(),
            worker_failures: Counter::default(),
            claim_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
        }
    }
}

impl ShardMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tagwatch_shard_partitions_held",
            "Partitions this shard applies now",
            self.partitions_held.clone(),
        );
        registry.register(
            "tagwatch_shard_parts_applied",
            "Frame parts applied to the tracker",
            self.parts_applied.clone(),
        );
        registry.register(
            "tagwatch_shard_parts_replayed",
            "Frame parts applied again after a partition moved here (from its checkpoint)",
            self.parts_replayed.clone(),
        );
        registry.register(
            "tagwatch_shard_checkpoints",
            "Partition checkpoints committed (changed visits and seen frames)",
            self.checkpoints.clone(),
        );
        registry.register(
            "tagwatch_shard_questions",
            "Live questions from API nodes answered by this shard's partitions",
            self.questions.clone(),
        );
        registry.register(
            "tagwatch_shard_parts_duplicate",
            "Frame parts skipped: their frame was applied in the partition before",
            self.parts_duplicate.clone(),
        );
        registry.register(
            "tagwatch_shard_parts_unreadable",
            "Frame parts on the bus that did not decode (skipped)",
            self.parts_unreadable.clone(),
        );
        registry.register(
            "tagwatch_shard_commits",
            "Partition batches committed",
            self.commits.clone(),
        );
        registry.register(
            "tagwatch_shard_commit_seconds",
            "Time to number a batch's alerts and commit it",
            self.commit_seconds.clone(),
        );
        registry.register(
            "tagwatch_shard_fenced",
            "Commits refused because another shard applies the partition now",
            self.fenced.clone(),
        );
        registry.register(
            "tagwatch_shard_worker_failures",
            "Partition workers that stopped on an error (restarted at the next lease round)",
            self.worker_failures.clone(),
        );
        registry.register(
            "tagwatch_shard_claim_seconds",
            "Time from taking a partition to applying it (its tracker restored)",
            self.claim_seconds.clone(),
        );
    }
}

/// The running workers, by partition.
struct Workers {
    shared: Arc<Shared>,
    running: HashMap<u16, (CancellationToken, JoinHandle<()>)>,
}

impl Workers {
    fn start(&mut self, partition: u16) {
        let stop = CancellationToken::new();
        let shared = self.shared.clone();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            match apply_partition(shared.clone(), partition, token).await {
                Ok(Stopped::Asked) => {}
                Ok(Stopped::Fenced) => {
                    tracing::warn!(partition, "partition applied by another shard now")
                }
                Err(error) => {
                    shared.metrics.worker_failures.inc();
                    tracing::warn!(
                        partition,
                        error = format!("{error:#}"),
                        "partition worker failed"
                    );
                }
            }
        });
        self.running.insert(partition, (stop, task));
    }

    async fn stop(&mut self, partition: u16) {
        if let Some((stop, task)) = self.running.remove(&partition) {
            stop.cancel();
            let _ = task.await;
        }
    }

    /// Workers that ended on their own are forgotten, to be started again.
    fn forget_finished(&mut self) {
        self.running.retain(|_, (_, task)| !task.is_finished());
    }
}

/// Runs a shard until `shutdown`: lease rounds, workers started and stopped. On shutdown every
/// worker commits and the leases are given back, so the others take over at once.
pub async fn run_shard(
    shared: Arc<Shared>,
    mut leases: Leases,
    lease_ttl: Duration,
    shutdown: CancellationToken,
) {
    let mut workers = Workers {
        shared: shared.clone(),
        running: HashMap::new(),
    };
    let mut rounds = tokio::time::interval(lease_ttl / 3);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = rounds.tick() => {}
        }
        let round = match leases.round_keeping_surplus().await {
            Ok(round) => round,
            Err(error) => {
                // Unreachable NATS: the leases will lapse if this goes on, and the workers'
                // commits are fenced once another shard has the partitions.
                tracing::warn!(%error, "lease round failed");
                continue;
            }
        };
        for &partition in &round.lost {
            workers.stop(partition).await;
        }
        // Committed before the lease goes: the next holder starts from all of it.
        for &partition in &round.surplus {
            workers.stop(partition).await;
            leases.give_back(partition).await;
        }
        workers.forget_finished();
        for partition in leases.held() {
            if !workers.running.contains_key(&partition) {
                workers.start(partition);
            }
        }
        shared
            .metrics
            .partitions_held
            .set(i64::try_from(workers.running.len()).unwrap_or(i64::MAX));
        if !round.gained.is_empty() || !round.lost.is_empty() || !round.surplus.is_empty() {
            tracing::info!(
                gained = ?round.gained,
                lost = ?round.lost,
                given_back = ?round.surplus,
                holders = round.holders,
                "partition leases changed"
            );
        }
    }
    let partitions: Vec<u16> = workers.running.keys().copied().collect();
    for partition in partitions {
        workers.stop(partition).await;
    }
    leases.release_all().await;
}
