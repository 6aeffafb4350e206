//! # A cluster's partitions in the store: how far each has been applied, and which frames.
//!
//! A tracker shard (issue 18) commits a partition's alerts together with a [`PartitionStep`]:
//! the partition's last applied JetStream sequence moves to the new one and its version up by
//! one, in the same transaction, only from the version the shard read (or last committed), or
//! the whole batch fails with [`crate::Error::Fenced`]. So
//! a shard that lost its lease and has not noticed yet cannot commit over the shard that took
//! the partition over. Now and then a step is a checkpoint: the batch carries the visits changed
//! since the last one and the frames applied (by station and session, as runs of sequence
//! numbers, for resends older than JetStream's duplicate window), and the checkpoint sequence
//! moves up to the applied one. A shard taking the partition restores the visits and seen frames
//! of the checkpoint and applies the stream again from there (JetStream is the journal); the
//! checkpoint also keeps the tracker's rule state that visits alone do not rebuild.

use crate::{to_u32, Result, Store};
use tagwatch_model::{SessionId, StationId};

/// One partition's advance, committed with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStep {
    pub partition: u16,
    /// The partition's version the shard read (or last committed): the commit is refused if
    /// anyone has committed since.
    pub version: u64,
    /// The applied sequence the shard read (0: nothing applied yet).
    pub from_seq: u64,
    /// The last stream sequence the batch covers.
    pub to_seq: u64,
    /// A checkpoint: the batch's visits and `seen` bring the store up to `to_seq`.
    pub checkpoint: bool,
    /// Sessions whose applied frames changed since the last checkpoint, with all their runs
    /// (a checkpoint's only).
    pub seen: Vec<SeenRuns>,
    /// The tracker's rule state as of `to_seq` (a checkpoint's only; the cluster crate reads and
    /// writes its text).
    pub rule_state: Option<String>,
}

/// The frames of one station session a partition has applied, as the text of their runs
/// (`1-40,42,44-50`; the cluster crate reads and writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRuns {
    pub station: StationId,
    pub session: SessionId,
    pub runs: String,
}

/// Where a partition stands in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionState {
    /// Commits so far (see [`PartitionStep::version`]).
    pub version: u64,
    pub applied_seq: u64,
    /// The sequence the stored visits and `seen` are as of (at most `applied_seq`).
    pub checkpoint_seq: u64,
    pub seen: Vec<SeenRuns>,
    /// The rule state of the checkpoint, if one was written.
    pub rule_state: Option<String>,
}

pub(crate) fn seq_column(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| crate::Error::Corrupt(format!("stream sequence {seq}")))
}

/// Runs a step's statements in the batch's transaction `$tx` (SQL written for Postgres; `$sql`
/// rewrites it for the backend). Shared by both backends' commits.
macro_rules! advance_partition {
    ($tx:expr, $step:expr, $sql:expr) => {{
        let step: &$crate::partitions::PartitionStep = $step;
        let now = tagwatch_model::time::now_ms();
        let partition = i64::from(step.partition);
        sqlx::query(&$sql(
            "INSERT INTO cluster_partitions \
             (partition, applied_seq, checkpoint_seq, version, updated_at) \
             VALUES ($1, 0, 0, 0, $2) ON CONFLICT (partition) DO NOTHING",
        ))
        .bind(partition)
        .bind(now)
        .execute(&mut **$tx)
        .await?;
        let moved = sqlx::query(&$sql(
            "UPDATE cluster_partitions SET applied_seq = $1, updated_at = $2, \
             checkpoint_seq = CASE WHEN $5 THEN $1 ELSE checkpoint_seq END, \
             rule_state = CASE WHEN $5 THEN $7 ELSE rule_state END, \
             version = version + 1 \
             WHERE partition = $3 AND version = $4 AND applied_seq = $6",
        ))
        .bind($crate::partitions::seq_column(step.to_seq)?)
        .bind(now)
        .bind(partition)
        .bind($crate::partitions::seq_column(step.version)?)
        .bind(step.checkpoint)
        .bind($crate::partitions::seq_column(step.from_seq)?)
        .bind(step.rule_state.as_deref())
        .execute(&mut **$tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Err($crate::Error::Fenced {
                partition: step.partition,
                expected: step.version,
            });
        }
        for seen in &step.seen {
            sqlx::query(&$sql(
                "INSERT INTO cluster_seen (partition, station, session, runs, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (partition, station, session) \
                 DO UPDATE SET runs = excluded.runs, updated_at = excluded.updated_at",
            ))
            .bind(partition)
            .bind(i64::from(seen.station.0))
            .bind(i64::from(seen.session.0))
            .bind(seen.runs.as_str())
            .bind(now)
            .execute(&mut **$tx)
            .await?;
        }
    }};
}
pub(crate) use advance_partition;

impl Store {
    /// How far `partition` has been applied and the frames it applied (nothing yet: zero and
    /// none).
    pub async fn partition_state(&self, partition: u16) -> Result<PartitionState> {
        on_backend!(self, |pool, sql| {
            let applied: Option<(i64, i64, i64, Option<String>)> = sqlx::query_as(&sql(
                "SELECT applied_seq, checkpoint_seq, version, rule_state FROM cluster_partitions \
                 WHERE partition = $1",
            ))
            .bind(i64::from(partition))
            .fetch_optional(pool)
            .await?;
            let rows: Vec<(i64, i64, String)> = sqlx::query_as(&sql(
                "SELECT station, session, runs FROM cluster_seen WHERE partition = $1",
            ))
            .bind(i64::from(partition))
            .fetch_all(pool)
            .await?;
            let seq = |seq: i64| {
                u64::try_from(seq).map_err(|_| {
                    crate::Error::Corrupt(format!("partition {partition} sequence {seq}"))
                })
            };
            let (applied_seq, checkpoint_seq, version, rule_state) = match applied {
                Some((applied, checkpoint, version, rule_state)) => {
                    (seq(applied)?, seq(checkpoint)?, seq(version)?, rule_state)
                }
                None => (0, 0, 0, None),
            };
            let seen = rows
                .into_iter()
                .map(|(station, session, runs)| {
                    Ok(SeenRuns {
                        station: StationId(to_u32(station)?),
                        session: SessionId(to_u32(session)?),
                        runs,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(PartitionState {
                version,
                applied_seq,
                checkpoint_seq,
                seen,
                rule_state,
            })
        })
    }
}
