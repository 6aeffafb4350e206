//! # Stored alerts: what the live stream resumes from and a vehicle's alert history. Both
//! backends run the same SQL.

use crate::{alert_from_row, AlertRow, Result, Store};
use tagwatch_model::{Alert, TagId};

impl Store {
    /// Alerts with `seq > after`, oldest first, at most `limit`.
    pub async fn alerts_after(&self, after: i64, limit: u32) -> Result<Vec<Alert>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<AlertRow> = sqlx::query_as(&sql("SELECT seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail FROM alerts \
                 WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(alert_from_row).collect()
        })
    }

    /// Alerts with `after < seq < before`, newest first, at most `limit`: the latest ones, and
    /// paging back through history.
    pub async fn alerts_before(&self, after: i64, before: i64, limit: u32) -> Result<Vec<Alert>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<AlertRow> = sqlx::query_as(&sql("SELECT seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail FROM alerts \
                 WHERE seq > $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"))
            .bind(after)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(alert_from_row).collect()
        })
    }

    /// The latest alerts about one tag, newest first.
    pub async fn alerts_for_tag(&self, tag: TagId, limit: u32) -> Result<Vec<Alert>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<AlertRow> = sqlx::query_as(&sql("SELECT seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail FROM alerts \
                 WHERE tag = $1 ORDER BY seq DESC LIMIT $2"))
            .bind(i64::from(tag.0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(alert_from_row).collect()
        })
    }
}
