//! # The store writer: commits what the ingest hands it, then acknowledges.
//!
//! Flushes commit in order, one transaction each, retrying while the store is down; only after a
//! flush commits do its frames get their ACK, and the ingest hears which frames are now durable
//! ([`Committed`]). A checkpoint (the changed visits, see [`crate::journal`]) commits after the flush
//! it followed, on a task of its own, so the frames' ACKs never wait for it.

use crate::health::Health;
use crate::metrics::PipelineMetrics;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagwatch_gateway::wire::AckStatus;
use tagwatch_gateway::AckPath;
use tagwatch_model::{time::now_ms, FrameKey};
use tagwatch_store::{Batch, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A frame applied and waiting for its flush to commit.
#[derive(Debug)]
pub(crate) struct PendingAck {
    pub(crate) path: AckPath,
    pub(crate) key: FrameKey,
    /// ACCEPTED, or REJECTED for a frame whose sequence number was only settled.
    pub(crate) status: AckStatus,
    pub(crate) received_at: Instant,
}

/// One flush: what to commit, and whom to tell once it is committed.
#[derive(Debug)]
pub struct Flush {
    pub(crate) batch: Batch,
    pub(crate) acks: Vec<PendingAck>,
    /// A checkpoint to commit once this flush is, on its own.
    pub(crate) checkpoint: Option<Batch>,
    /// This flush's batch is itself a checkpoint.
    pub(crate) inline_checkpoint: bool,
}

/// What the writer reports back once a flush is committed.
#[derive(Debug)]
pub struct Committed {
    pub(crate) frames: Vec<FrameKey>,
    pub(crate) checkpoint: bool,
}

/// The store writer: commits flushes in order, retrying while the store is down, then ACKs.
/// A flush's checkpoint goes to [`run_checkpoints`] once the flush is committed.
pub async fn run_writer(
    store: Store,
    mut flushes: mpsc::Receiver<Flush>,
    committed: mpsc::UnboundedSender<Committed>,
    health: Arc<Health>,
    metrics: Arc<PipelineMetrics>,
    abandon: CancellationToken,
) {
    let (to_checkpoint, checkpoints) = mpsc::unbounded_channel();
    let checkpointer = tokio::spawn(run_checkpoints(
        store.clone(),
        checkpoints,
        committed.clone(),
        health.clone(),
        metrics.clone(),
        abandon.clone(),
    ));
    while let Some(mut flush) = flushes.recv().await {
        let started = Instant::now();
        sort_visits(&mut flush.batch);
        if !commit_until_done(
            &store,
            &flush.batch,
            Commit::Flush,
            &health,
            &metrics,
            &abandon,
        )
        .await
        {
            return;
        }
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.flush_rows.observe(flush.batch.rows() as f64);
        let mut keys = Vec::with_capacity(flush.acks.len());
        for ack in flush.acks {
            ack.path.send(ack.key, ack.status);
            metrics
                .ack_latency
                .observe(ack.received_at.elapsed().as_secs_f64());
            keys.push(ack.key);
        }
        if let Some(checkpoint) = flush.checkpoint {
            if to_checkpoint.send(checkpoint).is_err() {
                return;
            }
        }
        let done = Committed {
            frames: keys,
            checkpoint: flush.inline_checkpoint,
        };
        // After the last flush the ingest task is gone: its checkpoint still goes above.
        let _ = committed.send(done);
    }
    // The last checkpoint commits before the writer is done.
    drop(to_checkpoint);
    let _ = checkpointer.await;
}

/// Commits checkpoints in order, each after the flush it followed, while the writer goes on
/// with the next flushes; reports each to the ingest task.
async fn run_checkpoints(
    store: Store,
    mut checkpoints: mpsc::UnboundedReceiver<Batch>,
    committed: mpsc::UnboundedSender<Committed>,
    health: Arc<Health>,
    metrics: Arc<PipelineMetrics>,
    abandon: CancellationToken,
) {
    while let Some(mut batch) = checkpoints.recv().await {
        let started = Instant::now();
        // Millions of rows at a busy checkpoint: sorting them would hold a runtime worker (and
        // the tasks queued on it: flushes, ACKs, alerts) for a good part of a second.
        let sorted = tokio::task::spawn_blocking(move || {
            sort_visits(&mut batch);
            batch
        })
        .await;
        let Ok(batch) = sorted else {
            tracing::error!("sorting a checkpoint's visits failed; its journal stays");
            return;
        };
        if !commit_until_done(
            &store,
            &batch,
            Commit::Checkpoint,
            &health,
            &metrics,
            &abandon,
        )
        .await
        {
            return;
        }
        metrics
            .checkpoint_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.checkpoint_rows.observe(batch.rows() as f64);
        let done = Committed {
            frames: Vec::new(),
            checkpoint: true,
        };
        // The ingest task is gone at shutdown; the checkpoint is committed all the same.
        let _ = committed.send(done);
    }
}

/// Visit rows in id order: ids grow with time, so the rows land together in the store's
/// partitions and indexes. Sorted here rather than in the tracker, to keep it off the ingest path.
fn sort_visits(batch: &mut Batch) {
    batch.visits.sort_unstable_by_key(|v| v.id);
    batch.extended_visits.sort_unstable_by_key(|v| v.id);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    Flush,
    Checkpoint,
}

/// Commits `batch`, retrying with backoff while the store is down; false if abandoned first.
async fn commit_until_done(
    store: &Store,
    batch: &Batch,
    kind: Commit,
    health: &Health,
    metrics: &PipelineMetrics,
    abandon: &CancellationToken,
) -> bool {
    let mut backoff = Duration::from_millis(50);
    loop {
        let result = match kind {
            Commit::Flush => store.commit(batch).await,
            Commit::Checkpoint => store.commit_checkpoint(batch).await,
        };
        match result {
            Ok(()) => break,
            Err(error) => {
                health.store_ok.store(false, Ordering::Relaxed);
                metrics.store_errors.inc();
                match kind {
                    Commit::Flush => {
                        tracing::warn!(%error, retry_in = ?backoff, "store commit failed; holding ACKs");
                    }
                    Commit::Checkpoint => {
                        tracing::warn!(%error, retry_in = ?backoff, "checkpoint commit failed; the journal keeps its frames");
                    }
                }
                tokio::select! {
                    () = abandon.cancelled() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    health.store_ok.store(true, Ordering::Relaxed);
    health.last_commit_ms.store(now_ms(), Ordering::Relaxed);
    true
}
