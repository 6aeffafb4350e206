//! # The audit log's writer: concurrent queries' entries committed together.
//!
//! Every movement query writes its audit entry before it is answered. One commit per entry made
//! the log the API's ceiling (2,020 location requests/s at 128 clients, each waiting for its own
//! fsync). Here the entries of queries that arrive while a commit is under way wait for the next
//! one, and that one commits them all in one transaction: each query is still answered only
//! after its entry is durable, and under load a commit carries many entries.

use tagwatch_model::AuditEntry;
use tagwatch_store::Store;
use tokio::sync::{mpsc, oneshot};

/// Most entries one commit carries.
const MAX_GROUP: usize = 512;
/// Entries waiting for a commit at most; beyond it, a query waits to hand its entry over.
const QUEUE: usize = 4_096;

type Waiting = (AuditEntry, oneshot::Sender<Result<(), String>>);

/// Hands entries to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Waiting>,
}

impl AuditWriter {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_groups(store, rx));
        Self { tx }
    }

    /// Appends `entry`; returns once it is committed (or why it could not be).
    pub async fn append(&self, entry: AuditEntry) -> Result<(), String> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send((entry, done))
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?;
        committed
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?
    }
}

/// Takes what has queued (at least one entry), commits it as one transaction, answers each.
async fn write_groups(store: Store, mut rx: mpsc::Receiver<Waiting>) {
    let mut group: Vec<Waiting> = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let entries: Vec<AuditEntry> = group.iter().map(|(entry, _)| entry.clone()).collect();
        let outcome = store
            .append_audits(&entries)
            .await
            .map_err(|e| e.to_string());
        if let Err(error) = &outcome {
            tracing::error!(%error, entries = entries.len(), "audit entries could not be written");
        }
        for (_, done) in group.drain(..) {
            let _ = done.send(outcome.clone());
        }
    }
}
