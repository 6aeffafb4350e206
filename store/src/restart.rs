//! # What a start reads back: the next ids, the sessions' watermarks and the frame journal not yet
//! checkpointed. Both backends run the same SQL.

use crate::{to_u32, JournalEntry, Result, Store};
use tagwatch_model::{SessionId, StationId, Watermark};

impl Store {
    /// Journaled frames with `seq > after`, in order, at most `limit` (replayed at start).
    pub async fn journal_after(&self, after: i64, limit: u32) -> Result<Vec<JournalEntry>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(&sql(
                "SELECT seq, applied_at, first_visit_id, frame FROM frame_journal \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            ))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(crate::journal_entry).collect())
        })
    }

    /// The next unused visit id and alert seq.
    pub async fn next_ids(&self) -> Result<(i64, i64)> {
        on_backend!(self, reader, |pool, sql| {
            let (visit, alert): (i64, i64) = sqlx::query_as(&sql(
                "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM visits), \
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts)",
            ))
            .fetch_one(pool)
            .await?;
            Ok((visit, alert))
        })
    }

    pub async fn watermarks(&self) -> Result<Vec<Watermark>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql(
                "SELECT station, session, contiguous, above FROM watermarks",
            ))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(station, session, contiguous, above)| {
                    Ok(Watermark {
                        station: StationId(to_u32(station)?),
                        session: SessionId(to_u32(session)?),
                        contiguous: to_u32(contiguous)?,
                        above: crate::split_seqs(&above)?,
                    })
                })
                .collect()
        })
    }
}
