//! # History for late data: stored visits brought back into the tracker's memory.
//!
//! A station's backlog arrives after the visits it belongs with may have left memory. Before
//! such a frame is applied, the ingest asks here for the stored visits of its tags at its station
//! over the frame's window, in one query per frame (a backlog frame carries a hundred tags; one
//! query each made the drain after an outage wait on a thousand round trips a second).

use crate::{visit_from_row, Result, Store, VisitRow};
use tagwatch_model::{StationId, TagId, Visit};

const COLUMNS: &str = "id, tag, station, first_seen, last_seen, best_rssi, reads";

impl Store {
    /// The visits of any of `tags` at `station` overlapping `[from_ms, to_ms]`, in no particular
    /// order.
    pub async fn visits_near(
        &self,
        station: StationId,
        tags: &[TagId],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Visit>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = tags.iter().map(|t| i64::from(t.0)).collect();
        let rows: Vec<VisitRow> = match self {
            // The tag list as one JSON array: SQLite has no array parameters.
            Store::Sqlite(s) => {
                let list = serde_json::to_string(&ids).expect("integers serialize");
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM visits WHERE station = ? \
                     AND tag IN (SELECT value FROM json_each(?)) \
                     AND first_seen <= ? AND last_seen >= ?"
                ))
                .bind(i64::from(station.0))
                .bind(list)
                .bind(to_ms)
                .bind(from_ms)
                .fetch_all(&s.reader)
                .await?
            }
            Store::Postgres(s) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM visits WHERE station = $1 AND tag = ANY($2) \
                     AND first_seen <= $3 AND last_seen >= $4"
                ))
                .bind(i64::from(station.0))
                .bind(ids)
                .bind(to_ms)
                .bind(from_ms)
                .fetch_all(&s.reader)
                .await?
            }
        };
        rows.into_iter().map(visit_from_row).collect()
    }
}

impl Store {
    /// Every visit, in id order (tests and exports).
    pub async fn all_visits(&self) -> Result<Vec<Visit>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<VisitRow> = sqlx::query_as(&sql(
                "SELECT id, tag, station, first_seen, last_seen, best_rssi, reads FROM visits \
                 ORDER BY id",
            ))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(visit_from_row).collect()
        })
    }
}
